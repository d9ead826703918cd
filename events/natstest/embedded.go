package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/infracast/auth/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// EmbeddedStore starts an embedded nats-server with JetStream in o.StoreDir
// (a temporary folder when empty), connects in-process and opens the event
// stream. Everything stops at the test's cleanup.
func EmbeddedStore(tb testing.TB, o events.EmbeddedOptions) *events.Store {
	tb.Helper()
	nc := embeddedConn(tb, o)
	st, err := events.OpenStore(context.Background(), nc, events.StoreConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// StoreWithDeletes is EmbeddedStore (in a temporary folder, with cfg) on a
// stream created beforehand with DenyDelete off — the service's own stream
// denies deletes — so that a test can delete messages with DeleteMsg: a
// stream with messages missing at its end, as a last block cut short leaves
// one.
func StoreWithDeletes(tb testing.TB, cfg events.StoreConfig) *events.Store {
	tb.Helper()
	nc := embeddedConn(tb, events.EmbeddedOptions{})
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: events.StreamName, Subjects: []string{events.SubjectPrefix + ".>"}, Storage: jetstream.FileStorage,
		Replicas: 1, Duplicates: 2 * time.Minute, AllowAtomicPublish: true, AllowDirect: true,
		Discard: jetstream.DiscardNew, DenyPurge: true,
	}); err != nil {
		tb.Fatal(err)
	}
	cfg.AllowDelete = true // else the start denies deletes, for good
	st, err := events.OpenStore(ctx, nc, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// embeddedConn starts an embedded nats-server with JetStream in o.StoreDir
// (a temporary folder when empty) and connects to it in-process; both stop
// at the test's cleanup.
func embeddedConn(tb testing.TB, o events.EmbeddedOptions) *nats.Conn {
	tb.Helper()
	if o.StoreDir == "" {
		o.StoreDir = tb.TempDir()
	}
	ns, err := events.StartEmbedded(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := events.ConnectEmbedded(ns)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}
