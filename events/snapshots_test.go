package events_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
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

// TestSnapshotsStream: a snapshot of many chunks is written as it is
// produced and read back as it arrives, identical; a chunk slipped into the
// object afterwards fails the read at its end, as does a snapshot whose
// digest was replaced.
func TestSnapshotsStream(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	key := events.SnapshotMACKey(bytes.Repeat([]byte{9}, 32))
	sn, err := st.Snapshots(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := st.Append(ctx, events.Message{Subject: events.Subject("user", "a"), ID: "ma", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 5<<20+123)
	rand.Read(data)
	info, err := sn.SaveFrom(ctx, seq, 7, func(w io.Writer) error {
		for b := data; len(b) > 0; b = b[min(len(b), 70_000):] { // written in pieces
			if _, err := w.Write(b[:min(len(b), 70_000)]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || info.Size != uint64(len(data)) {
		t.Fatalf("save: %+v %v", info, err)
	}
	read := func() ([]byte, error) {
		_, r, err := sn.Open(ctx, 7)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return io.ReadAll(r)
	}
	if got, err := read(); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %d bytes, %v", len(got), err)
	}
	// A writer that fails leaves the snapshot before it.
	if _, err := sn.SaveFrom(ctx, seq, 7, func(w io.Writer) error {
		w.Write([]byte("half a snapshot"))
		return errors.New("out of luck")
	}); err == nil {
		t.Fatal("a failed write saved")
	}
	if got, err := read(); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after a failed save: %d bytes, %v", len(got), err)
	}
	// One more chunk on the object's chunk subject.
	obs, err := st.JetStream().ObjectStore(ctx, events.SnapshotBucket)
	if err != nil {
		t.Fatal(err)
	}
	oi, err := obs.GetInfo(ctx, "read-models")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.JetStream().Publish(ctx, "$O."+events.SnapshotBucket+".C."+oi.NUID, []byte("admin for everyone")); err != nil {
		t.Fatal(err)
	}
	if _, err := read(); !errors.Is(err, events.ErrNoSnapshot) {
		t.Fatalf("a snapshot with a chunk added: %v", err)
	}
}
