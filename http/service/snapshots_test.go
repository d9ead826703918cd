package service

import (
	"context"
	"fmt"
	"io"
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
	c := testConfig(t)
	c.SnapshotEvery, c.SnapshotInterval = 5, 10*time.Millisecond
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
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if s.SnapshotSequence() == 0 {
			return fmt.Errorf("no snapshot saved (applied %d)", s.Model.Applied())
		}
		return nil
	})
	// The latest snapshot becomes one no build can restore: authentic (its
	// MAC is right), at the stream's head, but not a snapshot inside.
	head := s.Model.Applied()
	if _, err := s.snapshots.SaveFrom(ctx, head, projections.SnapshotFormat, func(w io.Writer) error {
		_, err := w.Write([]byte("not a snapshot"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	s, err = Start(ctx, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	if err := s.WaitReady(ctx, io.Discard); err != nil {
		t.Fatal(err)
	}
	if s.SnapshotSequence() != 0 {
		t.Fatalf("restored the snapshot that does not decode (sequence %d)", s.SnapshotSequence())
	}
	// With no new event, a snapshot that decodes replaces it.
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		info, r, err := s.snapshots.Open(ctx, projections.SnapshotFormat)
		if err != nil {
			return err
		}
		defer r.Close()
		if _, err := projections.NewModel().RestoreFrom(r); err != nil {
			return fmt.Errorf("the latest snapshot (sequence %d) does not restore: %v", info.Sequence, err)
		}
		return nil
	})
}
