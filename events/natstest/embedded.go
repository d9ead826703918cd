package natstest

import (
	"context"
	"testing"

	"github.com/infracast/auth/events"
)

// EmbeddedStore starts an embedded nats-server with JetStream in o.StoreDir
// (a temporary folder when empty), connects in-process and opens the event
// stream. Everything stops at the test's cleanup.
func EmbeddedStore(tb testing.TB, o events.EmbeddedOptions) *events.Store {
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
	st, err := events.OpenStore(context.Background(), nc, events.StoreConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}
