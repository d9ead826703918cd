package events

import (
	"bytes"
	"context"
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
	ns, err := StartEmbedded(EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := ConnectEmbedded(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	st, err := OpenStore(ctx, nc, StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := st.Snapshots(ctx, SnapshotMACKey(bytes.Repeat([]byte{3}, 32)))
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
	info := SnapshotInfo{Sequence: seq, Format: 3, EventID: m.id, EventTime: m.time}
	data := []byte("a gob snapshot of format 3")
	put := func(mac string) {
		if _, err := sn.obs.Put(ctx, jetstream.ObjectMeta{Name: snapshotObject, Metadata: map[string]string{
			"sequence": strconv.FormatUint(seq, 10), "format": "3", "event-id": info.EventID,
			"event-time": info.EventTime.Format(time.RFC3339Nano), "taken": time.Now().Format(time.RFC3339Nano), "mac": mac,
		}}, bytes.NewReader(data)); err != nil {
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
