package events_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/infracast/auth/events"
)

// TestSnapshotsAreUsedOnlyWhenAuthenticAndOfThisStream: a snapshot loads
// back with the key that saved it, in its format, on the stream it was taken
// from — and is refused otherwise: another key (a forged or tampered
// snapshot), another format, a stream whose event at that sequence differs.
func TestSnapshotsAreUsedOnlyWhenAuthenticAndOfThisStream(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	key := events.SnapshotMACKey(bytes.Repeat([]byte{7}, 32))
	sn, err := st.Snapshots(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := sn.Load(ctx, 1); !errors.Is(err, events.ErrNoSnapshot) {
		t.Fatalf("load from an empty bucket: %v", err)
	}
	for i, subj := range []string{"a", "b", "c"} {
		if _, err := st.Append(ctx, events.Message{Subject: events.Subject("user", subj), ID: "m" + subj, Data: []byte(`{}`)}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	data := []byte("the read models at 2")
	if _, err := sn.Save(ctx, 2, 1, data); err != nil {
		t.Fatal(err)
	}
	info, got, err := sn.Load(ctx, 1)
	if err != nil || !bytes.Equal(got, data) || info.Sequence != 2 || info.EventID != "mb" {
		t.Fatalf("load: %+v %q %v", info, got, err)
	}
	if latest, err := sn.Latest(ctx); err != nil || latest.Sequence != 2 || latest.Size != uint64(len(data)) {
		t.Fatalf("latest: %+v %v", latest, err)
	}
	if _, _, err := sn.Load(ctx, 2); !errors.Is(err, events.ErrNoSnapshot) {
		t.Fatalf("a snapshot of another format: %v", err)
	}
	other, err := st.Snapshots(ctx, events.SnapshotMACKey(bytes.Repeat([]byte{8}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.Load(ctx, 1); !errors.Is(err, events.ErrNoSnapshot) {
		t.Fatalf("a snapshot under another master key: %v", err)
	}
	// Someone with write access to the bucket replaces the content.
	obs, err := st.JetStream().ObjectStore(ctx, events.SnapshotBucket)
	if err != nil {
		t.Fatal(err)
	}
	oi, err := obs.GetInfo(ctx, "read-models")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: "read-models", Metadata: oi.Metadata}, bytes.NewReader([]byte("admin for everyone"))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sn.Load(ctx, 1); !errors.Is(err, events.ErrNoSnapshot) {
		t.Fatalf("a tampered snapshot: %v", err)
	}
	// A snapshot naming an event this stream does not hold at that sequence.
	fresh := openStore(t)
	for _, subj := range []string{"x", "y"} {
		if _, err := fresh.Append(ctx, events.Message{Subject: events.Subject("user", subj), ID: "m" + subj, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	fsn, err := fresh.Snapshots(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fsn.Save(ctx, 2, 1, data); err != nil {
		t.Fatal(err)
	}
	fobs, _ := fresh.JetStream().ObjectStore(ctx, events.SnapshotBucket)
	foi, _ := fobs.GetInfo(ctx, "read-models")
	md := foi.Metadata
	md["event-id"] = "mb" // claims to be the other stream's snapshot
	if _, err := fobs.Put(ctx, jetstream.ObjectMeta{Name: "read-models", Metadata: md}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fsn.Load(ctx, 1); !errors.Is(err, events.ErrNoSnapshot) {
		t.Fatalf("a snapshot of another stream: %v", err)
	}
}
