package events_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/natstest"
)

// damagedStore appends n events to a new embedded store in dir, stops it,
// and returns the stream's folder.
func damagedStore(t *testing.T, dir string, n int) string {
	t.Helper()
	ns, err := events.StartEmbedded(events.EmbeddedOptions{StoreDir: dir, SyncAlways: true})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := events.ConnectEmbedded(ns)
	if err != nil {
		t.Fatal(err)
	}
	st, err := events.OpenStore(context.Background(), nc, events.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := st.Append(context.Background(), events.Message{Subject: events.Subject("user", fmt.Sprint("u", i)), ID: fmt.Sprint("c", i), Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	nc.Close()
	ns.Shutdown()
	ns.WaitForShutdown()
	return filepath.Join(dir, "jetstream", "$G", "streams", events.StreamName)
}

// TestEmbeddedStoreWithAnUnloadableStreamIsRefused: when nats-server cannot
// load the stream from its folder (here its metafile's checksum does not
// match; an outside check, 18r, made a message block unreadable to the
// service's user: TestBinaryRefusesAStreamItCannotRead), the embedded
// server's start fails naming the
// folder and what the server said, and the folder is left as it was —
// before, the service found no stream and created one, which wiped it.
func TestEmbeddedStoreWithAnUnloadableStreamIsRefused(t *testing.T) {
	dir := t.TempDir()
	streamDir := damagedStore(t, dir, 20)
	if err := os.WriteFile(filepath.Join(streamDir, "meta.sum"), []byte("0000000000000000"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := natstest.Listing(t, streamDir)

	ns, err := events.StartEmbedded(events.EmbeddedOptions{StoreDir: dir, SyncAlways: true})
	if err == nil {
		ns.Shutdown()
		t.Fatal("the embedded server started on a stream it could not load")
	}
	if !errors.Is(err, events.ErrStoreRefused) || !strings.Contains(err.Error(), streamDir) || !strings.Contains(err.Error(), "nats-server said: ") {
		t.Fatalf("error %v: want ErrStoreRefused naming %s and what the server said", err, streamDir)
	}
	t.Log(err)
	if after := natstest.Listing(t, streamDir); after != before {
		t.Fatalf("the stream's folder changed:\nbefore %s\nafter  %s", before, after)
	}
}

// TestOpenStoreRefusesToCreateTheStreamBesideSnapshots: the snapshot bucket
// is made only after the stream, so a bucket without the stream means the
// stream was lost (or not loaded by an external server): OpenStore refuses
// at once rather than create an empty stream.
func TestOpenStoreRefusesToCreateTheStreamBesideSnapshots(t *testing.T) {
	ns, err := events.StartEmbedded(events.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := events.ConnectEmbedded(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: events.SnapshotBucket}); err != nil {
		t.Fatal(err)
	}
	if _, err := events.OpenStore(ctx, nc, events.StoreConfig{}); !errors.Is(err, events.ErrStoreRefused) {
		t.Fatalf("OpenStore beside a snapshot bucket without the stream: %v, want ErrStoreRefused", err)
	}
	if ctx.Err() != nil {
		t.Fatal("OpenStore retried until its context ended instead of refusing at once")
	}
	if _, err := js.Stream(ctx, events.StreamName); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("the stream was created: %v", err)
	}
}

// TestOpenStoreRefusesAStreamBelowWhatWasSeen: a stream whose last sequence
// is below a sequence recorded outside it — StoreConfig.Seen (the data
// folder's marker), or the latest snapshot's in the bucket beside it — lost
// events (nats-server loads a stream whose msgs/ folder was removed whole as
// a new one: an outside check, 18r2). OpenStore refuses it, naming both
// sequences, the record and how to drop it; a missing stream is not
// created. A stream at or above what was seen opens, and so does one begun
// at a later sequence (FirstSeq) below which nothing was seen.
func TestOpenStoreRefusesAStreamBelowWhatWasSeen(t *testing.T) {
	ns, err := events.StartEmbedded(events.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := events.ConnectEmbedded(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	marker := func(seq uint64) []events.Seen {
		return []events.Seen{{Seq: seq, Where: "the marker /data/stream-sequence", Drop: "remove the file /data/stream-sequence"}}
	}
	refused := func(t *testing.T, err error, want ...string) {
		t.Helper()
		if !errors.Is(err, events.ErrStoreRefused) {
			t.Fatalf("OpenStore: %v, want ErrStoreRefused", err)
		}
		if ctx.Err() != nil {
			t.Fatal("OpenStore retried until its context ended instead of refusing at once")
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("the refusal does not say %q:\n%v", w, err)
			}
		}
	}

	// Missing stream, a marker: not created.
	_, err = events.OpenStore(ctx, nc, events.StoreConfig{Seen: marker(7)})
	refused(t, err, "does not exist", "recorded sequence 7", "restore the store from your backup", "remove the file /data/stream-sequence")
	if _, err := js.Stream(ctx, events.StreamName); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("the stream was created: %v", err)
	}

	st, err := events.OpenStore(ctx, nc, events.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := st.Append(ctx, events.Message{Subject: events.Subject("user", fmt.Sprint("u", i)), ID: fmt.Sprint("c", i), Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = events.OpenStore(ctx, nc, events.StoreConfig{Seen: marker(6)})
	refused(t, err, "ends at sequence 5", "the marker /data/stream-sequence recorded sequence 6", "remove the file /data/stream-sequence")
	if _, err := events.OpenStore(ctx, nc, events.StoreConfig{Seen: marker(5)}); err != nil {
		t.Fatalf("a stream at the marker: %v", err)
	}

	// A snapshot of a later sequence than the stream's last (its metadata
	// as Snapshots.SaveFrom writes it).
	obs, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: events.SnapshotBucket})
	if err != nil {
		t.Fatal(err)
	}
	put := func(seq uint64) {
		t.Helper()
		if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: "read-models", Metadata: map[string]string{
			"sequence": fmt.Sprint(seq), "format": "1", "event-id": "evt", "event-time": time.Now().UTC().Format(time.RFC3339Nano),
		}}, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	put(5)
	if _, err := events.OpenStore(ctx, nc, events.StoreConfig{}); err != nil {
		t.Fatalf("a snapshot at the stream's last sequence: %v", err)
	}
	put(9)
	_, err = events.OpenStore(ctx, nc, events.StoreConfig{})
	refused(t, err, "ends at sequence 5", "the latest read-model snapshot in the bucket "+events.SnapshotBucket+" recorded sequence 9", "delete that bucket")

	// A stream begun at a later sequence (the bench's start-up case).
	ns2, err := events.StartEmbedded(events.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns2.Shutdown(); ns2.WaitForShutdown() })
	nc2, err := events.ConnectEmbedded(ns2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc2.Close)
	js2, err := jetstream.New(nc2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js2.CreateStream(ctx, jetstream.StreamConfig{Name: events.StreamName, Subjects: []string{events.SubjectPrefix + ".>"}, FirstSeq: 100}); err != nil {
		t.Fatal(err)
	}
	if _, err := events.OpenStore(ctx, nc2, events.StoreConfig{Seen: marker(99)}); err != nil {
		t.Fatalf("a stream begun at 100, 99 seen: %v", err)
	}
}
