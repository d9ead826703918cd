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
	"github.com/nats-io/nats.go/jetstream"
)

// TestStartReplacesASnapshotItCouldNotRestore: a start that cannot use the
// latest snapshot — one that does not decode (after an upgrade, an older
// build's that skipped this build's events), or one of another stream (the
// stream restored from a backup older than the snapshot) — replays the whole
// stream, and then saves a snapshot of its own at once, rather than taking
// the refused one for current and replaying the whole stream again at every
// start until the stream has grown by SnapshotEvery. (An outside check found
// the second kind taken for current.)
func TestStartReplacesASnapshotItCouldNotRestore(t *testing.T) {
	for _, tc := range []struct {
		name, refused string
		plant         func(ctx context.Context, t *testing.T, s *Service, snaps *events.Snapshots)
	}{
		{"does not decode", "read-model snapshot unreadable; replaying the whole stream",
			func(ctx context.Context, t *testing.T, s *Service, snaps *events.Snapshots) {
				// Authentic (its MAC is right), at the stream's head, but
				// not a snapshot inside.
				if _, err := snaps.SaveFrom(ctx, s.Model.Applied(), projections.SnapshotFormat, func(w io.Writer) error {
					_, err := w.Write([]byte("not a snapshot"))
					return err
				}); err != nil {
					t.Fatal(err)
				}
			}},
		{"of another stream", "taken from another stream",
			func(ctx context.Context, t *testing.T, s *Service, _ *events.Snapshots) {
				// Saved by a deployment with the same master key but
				// another stream (its events are other events).
				c := testConfig(t)
				c.SnapshotEvery, c.MasterKey = 0, s.cfg.MasterKey
				other, err := Start(ctx, c, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer func() {
					if err := other.Shutdown(ctx); err != nil {
						t.Error(err)
					}
				}()
				if err := other.WaitReady(ctx, io.Discard); err != nil {
					t.Fatal(err)
				}
				createUsers(ctx, t, other, "other")
				theirs, err := other.Store.Snapshots(ctx, events.SnapshotMACKey(c.MasterKey))
				if err != nil {
					t.Fatal(err)
				}
				// At this stream's head: within SnapshotEvery of it.
				if _, err := theirs.SaveFrom(ctx, min(other.Model.Applied(), s.Model.Applied()), projections.SnapshotFormat, func(w io.Writer) error {
					_, err := w.Write([]byte("refused before it is read"))
					return err
				}); err != nil {
					t.Fatal(err)
				}
				from, err := other.Store.JetStream().ObjectStore(ctx, events.SnapshotBucket)
				if err != nil {
					t.Fatal(err)
				}
				to, err := s.Store.JetStream().ObjectStore(ctx, events.SnapshotBucket)
				if err != nil {
					t.Fatal(err)
				}
				objs, err := from.List(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range objs {
					r, err := from.Get(ctx, o.Name)
					if err != nil {
						t.Fatal(err)
					}
					_, err = to.Put(ctx, jetstream.ObjectMeta{Name: o.Name, Description: o.Description, Metadata: o.Metadata, Opts: o.Opts}, r)
					r.Close()
					if err != nil {
						t.Fatal(err)
					}
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// A first run without snapshots of its own (no loop racing the
			// one planted) writes a few events.
			c := testConfig(t)
			c.SnapshotEvery = 0
			s, err := Start(ctx, c, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.WaitReady(ctx, io.Discard); err != nil {
				t.Fatal(err)
			}
			createUsers(ctx, t, s, "user")
			snaps, err := s.Store.Snapshots(ctx, events.SnapshotMACKey(s.cfg.MasterKey))
			if err != nil {
				t.Fatal(err)
			}
			tc.plant(ctx, t, s, snaps)
			if err := s.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}

			// The second start refuses it and replays, then saves a
			// snapshot of its own at once (with no new event); the third
			// start restores that one.
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
				if out := logs.String(); run == 0 && (!strings.Contains(out, tc.refused) ||
					strings.Contains(out, "read models restored from a snapshot")) {
					t.Fatalf("the start did not refuse the snapshot:\n%s", out)
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
		})
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

// createUsers creates six users named prefix0…prefix5 through s's commands.
func createUsers(ctx context.Context, t *testing.T, s *Service, prefix string) {
	t.Helper()
	for i := range 6 {
		name := fmt.Sprintf("%s%d", prefix, i)
		if _, err := s.Commands.CreateUser(ctx, events.Meta{}, commands.CreateUserInput{
			Username: name, Email: name + "@example.com", Password: "a-long-enough-passphrase-" + name,
		}); err != nil {
			t.Fatal(err)
		}
	}
}
