package events

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestSnapshotsOfTheFirstKindStillLoad: a snapshot authenticated as the
// first ones were (an HMAC over the whole content in the metadata's "mac")
// loads, and one with that HMAC wrong does not.
func TestSnapshotsOfTheFirstKindStillLoad(t *testing.T) {
	ctx := context.Background()
	sn, info, meta := oldSnapshot(t, 3)
	data := []byte("a gob snapshot of format 3")
	put := func(mac string) {
		meta["mac"] = mac
		if _, err := sn.obs.Put(ctx, jetstream.ObjectMeta{Name: snapshotObject, Metadata: meta}, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	put(sn.mac(info, data))
	if _, got, err := sn.Load(ctx, 3); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("load: %q %v", got, err)
	}
	put(sn.mac(info, []byte("something else")))
	if _, _, err := sn.Load(ctx, 3); err == nil {
		t.Fatal("a snapshot with a wrong HMAC loaded")
	}
}

// TestSnapshotsOfTheSecondKindStillLoad: a snapshot authenticated as builds
// before session 7 did (the MAC of the object's digest in "mac-digest")
// loads; with that MAC wrong it does not.
func TestSnapshotsOfTheSecondKindStillLoad(t *testing.T) {
	ctx := context.Background()
	sn, info, meta := oldSnapshot(t, 10)
	data := []byte("a snapshot of format 10, authenticated by its digest")
	oi, err := sn.obs.Put(ctx, jetstream.ObjectMeta{Name: snapshotObject, Metadata: meta}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	meta[macDigest] = sn.macOfDigest(info, oi.Digest)
	if _, err := sn.obs.Put(ctx, jetstream.ObjectMeta{Name: snapshotObject, Metadata: meta}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if got, loaded, err := sn.Load(ctx, 10); err != nil || !bytes.Equal(loaded, data) || got.Size != uint64(len(data)) {
		t.Fatalf("load: %+v %q %v", got, loaded, err)
	}
	meta[macDigest] = sn.macOfDigest(info, "SHA-256=something-else")
	if _, err := sn.obs.Put(ctx, jetstream.ObjectMeta{Name: snapshotObject, Metadata: meta}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sn.Load(ctx, 10); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("a snapshot with a wrong MAC: %v", err)
	}
}

// oldSnapshot opens the snapshots of a stream of one event, and describes a
// snapshot of the given format at that event as an earlier build would
// have: its info, and its metadata without the authentication.
func oldSnapshot(t *testing.T, format int) (*Snapshots, SnapshotInfo, map[string]string) {
	t.Helper()
	ctx := context.Background()
	st := embeddedServer(t)()
	sn, err := st.Snapshots(ctx, SnapshotMACKey(bytes.Repeat([]byte{byte(format)}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	seq, err := st.Append(ctx, Message{Subject: Subject("user", "a"), ID: "ma", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.leaderGet(ctx, seq, "")
	if err != nil {
		t.Fatal(err)
	}
	info := SnapshotInfo{Sequence: seq, Format: format, EventID: m.id, EventTime: m.time}
	return sn, info, map[string]string{
		"sequence": strconv.FormatUint(seq, 10), "format": strconv.Itoa(format), "event-id": info.EventID,
		"event-time": info.EventTime.Format(time.RFC3339Nano), "taken": time.Now().Format(time.RFC3339Nano),
	}
}
