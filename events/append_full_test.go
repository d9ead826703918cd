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

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/infracast/auth/events"
)

// TestAppendToAFullStoreFailsAtOnce: a store at its limit (the embedded
// server's is 75% of the disk free at its start; here 256 KiB) refuses an
// append with JetStream's "insufficient resources", which stays so until an
// operator frees space and restarts the server: the append answers at once
// that nothing was stored and why, instead of trying again for RetryFor
// (an outside check saw every write take ~5 s on a full disk). Nothing
// acknowledged before is lost.
func TestAppendToAFullStoreFailsAtOnce(t *testing.T) {
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), SyncAlways: true,
		JetStreamMaxStore: 256 << 10, NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx := context.Background()
	const retryFor = 20 * time.Second
	st, err := events.OpenStore(ctx, nc, events.StoreConfig{RetryFor: retryFor})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"padding":"` + strings.Repeat("x", 8<<10) + `"}`)
	var stored uint64
	for i := 0; ; i++ {
		if i > 200 {
			t.Fatalf("%d appends of 8 KiB into a 256 KiB store, none refused", i)
		}
		start := time.Now()
		seq, err := st.Append(ctx, events.Message{Subject: events.Subject("user", fmt.Sprintf("user-%d", i)), ID: fmt.Sprintf("full-%d", i), Data: data})
		if err == nil {
			stored = seq
			continue
		}
		if !errors.Is(err, events.ErrUnavailable) || !strings.Contains(err.Error(), "event store is full") {
			t.Fatalf("append %d: %v, want ErrUnavailable saying the store is full", i, err)
		}
		if took := time.Since(start); took >= retryFor {
			t.Fatalf("the refusal took %s: tried again for RetryFor", took)
		}
		break
	}
	if head, err := st.Head(ctx); err != nil || head != stored {
		t.Fatalf("head %d (%v), want the last acknowledged append %d", head, err, stored)
	}
}

// TestAppendBeyondTheAccountsLimitFailsAtOnce: the NATS account the
// service logs in with has a JetStream storage limit (jetstream { max_file })
// and it is reached: JetStream answers 10002 "resource limits exceeded for
// account". The append fails at once as ErrUnavailable saying nothing was
// stored — the contract's 503 — as for a full store, not as an unknown
// rejection (an outside check, 20n, saw 500 INTERNAL).
func TestAppendBeyondTheAccountsLimitFailsAtOnce(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte(`listen: 127.0.0.1:-1
jetstream { store_dir: "`+filepath.ToSlash(filepath.Join(dir, "js"))+`" }
accounts { SMALL { jetstream: { max_file: 128K, max_mem: 1M }, users: [ { user: small, password: "small-password-0123456789" } ] } }
`), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoLog, opts.NoSigs = true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo("small", "small-password-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx := context.Background()
	const retryFor = 20 * time.Second
	st, err := events.OpenStore(ctx, nc, events.StoreConfig{RetryFor: retryFor})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"padding":"` + strings.Repeat("x", 8<<10) + `"}`)
	for i := 0; ; i++ {
		if i > 200 {
			t.Fatalf("%d appends of 8 KiB into an account limited to 128 KiB, none refused", i)
		}
		start := time.Now()
		_, err := st.Append(ctx, events.Message{Subject: events.Subject("user", fmt.Sprintf("user-%d", i)), ID: fmt.Sprintf("account-%d", i), Data: data})
		if err == nil {
			continue
		}
		if !errors.Is(err, events.ErrUnavailable) || !strings.Contains(err.Error(), "event store is full") {
			t.Fatalf("append %d: %v, want ErrUnavailable saying the store is full", i, err)
		}
		if took := time.Since(start); took >= retryFor {
			t.Fatalf("the refusal took %s: tried again for RetryFor", took)
		}
		return
	}
}
