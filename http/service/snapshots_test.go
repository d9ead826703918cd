package service

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/projections"
)

// TestStartReplacesASnapshotItCouldNotRestore: a start that cannot use the
// latest snapshot (here one that does not decode; after an upgrade, an older
// build's that skipped this build's events) replays the whole stream, and
// then saves a snapshot of its own at once, rather than taking the refused
// one for current and replaying the whole stream again at every start until
// the stream has grown by SnapshotEvery.
func TestStartReplacesASnapshotItCouldNotRestore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A first run without snapshots of its own (no loop racing the one
	// planted below) writes a few events.
	c := testConfig(t)
	c.SnapshotEvery = 0
	s, err := Start(ctx, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReady(ctx, io.Discard); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		name := fmt.Sprintf("user%d", i)
		if _, err := s.Commands.CreateUser(ctx, events.Meta{}, commands.CreateUserInput{
			Username: name, Email: name + "@example.com", Password: "a-long-enough-passphrase-" + name,
		}); err != nil {
			t.Fatal(err)
		}
	}
	// The latest snapshot is one no build can restore: authentic (its MAC
	// is right), at the stream's head, but not a snapshot inside.
	snaps, err := s.Store.Snapshots(ctx, events.SnapshotMACKey(s.cfg.MasterKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snaps.SaveFrom(ctx, s.Model.Applied(), projections.SnapshotFormat, func(w io.Writer) error {
		_, err := w.Write([]byte("not a snapshot"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// The second start refuses it and replays, then saves a snapshot of its
	// own at once (with no new event); the third start restores that one.
	c.SnapshotEvery, c.SnapshotInterval = 5, 10*time.Millisecond
	for run, want := range []string{"read-model snapshot saved", "read models restored from a snapshot"} {
		var logs syncBuffer
		s, err = Start(ctx, c, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.WaitReady(ctx, io.Discard); err != nil {
			t.Fatal(err)
		}
		if out := logs.String(); run == 0 && (!strings.Contains(out, "read-model snapshot unreadable; replaying the whole stream") ||
			strings.Contains(out, "read models restored from a snapshot")) {
			t.Fatalf("the start did not refuse the snapshot that does not decode:\n%s", out)
		}
		checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			if !strings.Contains(logs.String(), want) {
				return fmt.Errorf("start %d: no %q in the log:\n%s", run+2, want, logs.String())
			}
			return nil
		})
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the service's concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
