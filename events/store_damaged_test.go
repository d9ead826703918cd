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
