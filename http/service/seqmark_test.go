package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/events"
)

// TestSeqMarkIsWrittenWhole: the marker is replaced by a rename of a
// fsync'd temporary file — it reads back whole, holds only the number, and
// no temporary file is left beside it; none reads as no marker.
func TestSeqMarkIsWrittenWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, seqMarkFile)
	if _, ok, err := readSeqMark(path); ok || err != nil {
		t.Fatalf("no marker: ok %v, err %v", ok, err)
	}
	for _, seq := range []uint64{1, 12345, 18446744073709551615} {
		if err := writeSeqMark(path, seq); err != nil {
			t.Fatal(err)
		}
		got, ok, err := readSeqMark(path)
		if err != nil || !ok || got != seq {
			t.Fatalf("read back %d, %v, %v; want %d", got, ok, err, seq)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != fmt.Sprintf("%d\n", seq) {
			t.Fatalf("the file holds %q (%v)", b, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != seqMarkFile {
		t.Fatalf("the folder holds %v, want only %s", entries, seqMarkFile)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("the marker's mode: %v (%v), want 0600", info.Mode(), err)
	}
	// A temporary file left by a crash is no obstacle to the next write.
	if err := os.WriteFile(filepath.Join(dir, "."+seqMarkFile+"-123"), []byte("4"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeSeqMark(path, 7); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedSeqMarkRefusesTheStart: a marker that does not read as a
// sequence — the service writes it whole or not at all, so the data folder
// was damaged or tampered with — refuses the start rather than drop the
// check, naming the file to remove.
func TestDamagedSeqMarkRefusesTheStart(t *testing.T) {
	for _, content := range []string{"", "12a\n", "-3\n", "99999999999999999999999\n"} {
		c := testConfig(t)
		path := filepath.Join(c.DataDir, seqMarkFile)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Start(context.Background(), c, nil)
		if !errors.Is(err, events.ErrStoreRefused) || !strings.Contains(err.Error(), "remove the file "+path) {
			t.Fatalf("marker %q: Start: %v, want ErrStoreRefused naming the file to remove", content, err)
		}
		if _, err := os.Stat(filepath.Join(c.DataDir, "jetstream")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("marker %q: the store was opened before the marker was read (%v)", content, err)
		}
	}
}

// TestStartRefusesAStreamBelowTheMarker: a clean shutdown leaves the marker
// at the last sequence applied, and the background writes bring it up
// while running; a start whose stream ends below it (here: the marker
// raised, as if the store had been replaced by an older one) is refused,
// naming both sequences and the file; with the file removed — an older
// backup restored on purpose, a data folder from a build before the marker
// — it starts, and writes the marker again.
func TestStartRefusesAStreamBelowTheMarker(t *testing.T) {
	every := seqMarkEvery
	t.Cleanup(func() { seqMarkEvery = every })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := testConfig(t)
	c.BootstrapPassword = "a-bootstrap-password"
	path := filepath.Join(c.DataDir, seqMarkFile)
	// run starts the service, waits until it is ready (its admin created),
	// and stops it; written while running: whether the marker is to be
	// looked for before the shutdown (else only the shutdown writes it).
	run := func(whileRunning bool) uint64 {
		t.Helper()
		seqMarkEvery = time.Hour
		if whileRunning {
			seqMarkEvery = 10 * time.Millisecond
		}
		s, err := Start(ctx, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.WaitReady(ctx, nil); err != nil {
			t.Fatal(err)
		}
		applied := s.Runner.Applied()
		if applied == 0 {
			t.Fatal("nothing applied")
		}
		if whileRunning {
			checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
				if seq, _, err := readSeqMark(path); err != nil || seq != applied {
					return fmt.Errorf("marker %d (%v), want %d", seq, err, applied)
				}
				return nil
			})
		} else if _, ok, err := readSeqMark(path); ok || err != nil {
			t.Fatalf("a marker before the first write: %v, %v", ok, err)
		}
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if seq, ok, err := readSeqMark(path); err != nil || !ok || seq != applied {
			t.Fatalf("after a clean shutdown the marker is %d (%v, %v), want %d", seq, ok, err, applied)
		}
		return applied
	}
	last := run(false)
	if err := writeSeqMark(path, last+100); err != nil {
		t.Fatal(err)
	}
	_, err := Start(ctx, c, nil)
	for _, want := range []string{fmt.Sprintf("ends at sequence %d", last), fmt.Sprintf("recorded sequence %d", last+100), "restore the store from your backup", "remove the file " + path} {
		if !errors.Is(err, events.ErrStoreRefused) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Start: %v, want ErrStoreRefused saying %q", err, want)
		}
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	run(true)
}
