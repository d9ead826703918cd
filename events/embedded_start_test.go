package events_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infracast/auth/events"
)

// slowRecovery makes nats-server's recovery of the stream in dir (made by
// damagedStore) wait until release is called: its first message block is
// replaced by a named pipe that gives the block's bytes only then, as a
// recovery after a crash at millions of events takes tens of seconds
// reading them (outside check 20s).
func slowRecovery(t *testing.T, streamDir string) (release func()) {
	t.Helper()
	blocks, err := filepath.Glob(filepath.Join(streamDir, "msgs", "*.blk"))
	if err != nil || len(blocks) == 0 {
		t.Fatalf("no message block: %v", err)
	}
	blk := blocks[0]
	content, err := os.ReadFile(blk)
	if err != nil {
		t.Fatal(err)
	}
	// Without its index the server reads the blocks, as after a crash.
	if err := os.Remove(filepath.Join(streamDir, "msgs", "index.db")); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if err := os.Remove(blk); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(blk, 0o600); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-released
		// Opening blocks until the server opens it to read; then the
		// pipe gives way to the block's own file for later reads.
		f, err := os.OpenFile(blk, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		tmp := blk + ".tmp"
		if err := os.WriteFile(tmp, content, 0o600); err != nil {
			t.Error(err)
		}
		if err := os.Rename(tmp, blk); err != nil {
			t.Error(err)
		}
		if _, err := f.Write(content); err != nil && !errors.Is(err, syscall.EPIPE) { // EPIPE: the server gave up reading
			t.Error(err)
		}
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}()
	var once bool
	release = func() {
		if !once {
			once = true
			close(released)
			<-done
		}
	}
	t.Cleanup(release)
	return release
}

// TestEmbeddedStartWaitsForARecoveryAndSaysSo: a recovery of the stream
// that takes long is waited for — no fixed 30 s (outside check 20s: at 9.2
// million events the recovery after a crash took ~26 s, and a stream a few
// days older would never have started) — and reported meanwhile: the
// stream being recovered, and for how long.
func TestEmbeddedStartWaitsForARecoveryAndSaysSo(t *testing.T) {
	every := events.EmbeddedProgressEvery
	events.EmbeddedProgressEvery = 10 * time.Millisecond
	t.Cleanup(func() { events.EmbeddedProgressEvery = every })
	dir := t.TempDir()
	release := slowRecovery(t, damagedStore(t, dir, 20))

	seen := make(chan events.EmbeddedProgress, 1000)
	started := make(chan error, 1)
	go func() {
		ns, err := events.StartEmbedded(events.EmbeddedOptions{StoreDir: dir, SyncAlways: true, StartTimeout: time.Minute,
			Progress: func(p events.EmbeddedProgress) {
				select {
				case seen <- p:
				default:
				}
			}})
		if err == nil {
			defer ns.WaitForShutdown()
			ns.Shutdown()
		}
		started <- err
	}()
	deadline := time.After(30 * time.Second)
	for recovering := 0; recovering < 3; {
		select {
		case p := <-seen:
			if p.Recovering == events.StreamName {
				recovering++
				if s := p.String(); !strings.Contains(s, "recovering the stream "+events.StreamName) {
					t.Fatalf("progress in words: %q", s)
				}
			}
		case err := <-started:
			t.Fatalf("the start ended while the stream was being recovered: %v", err)
		case <-deadline:
			t.Fatal("no progress naming the stream being recovered")
		}
	}
	release()
	select {
	case err := <-started:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("not ready after the recovery")
	}
}

// TestEmbeddedStartGivesUpAfterItsTimeout: past StartTimeout the start
// fails with ErrEmbeddedNotReady, saying what the server was doing.
func TestEmbeddedStartGivesUpAfterItsTimeout(t *testing.T) {
	// Not t.TempDir: the server given up on finishes its recovery in the
	// background, writing into the folder, after the test.
	dir := backgroundStoreDir(t, "embedded-start-timeout-")
	release := slowRecovery(t, damagedStore(t, dir, 20))
	began := time.Now()
	ns, err := events.StartEmbedded(events.EmbeddedOptions{StoreDir: dir, SyncAlways: true, StartTimeout: 300 * time.Millisecond})
	if err == nil {
		ns.Shutdown()
		t.Fatal("started while the stream was being recovered")
	}
	release()
	if !errors.Is(err, events.ErrEmbeddedNotReady) || !strings.Contains(err.Error(), "300ms") || !strings.Contains(err.Error(), events.StreamName) {
		t.Fatalf("error %v: want ErrEmbeddedNotReady naming the bound and the stream being recovered", err)
	}
	if d := time.Since(began); d > 20*time.Second {
		t.Fatalf("gave up after %s", d)
	}
}

// TestEmbeddedStartEndsWithItsContext: a shutdown asked for while
// nats-server recovers the stream ends the wait at once, with the
// context's error — not at the end of the recovery, nor of StartTimeout
// (outside check 20r5: a SIGTERM then waited for the recovery and the
// process exited 1).
func TestEmbeddedStartEndsWithItsContext(t *testing.T) {
	every := events.EmbeddedProgressEvery
	events.EmbeddedProgressEvery = 10 * time.Millisecond
	t.Cleanup(func() { events.EmbeddedProgressEvery = every })
	// Not t.TempDir: as above, the server's recovery ends in the background.
	dir := backgroundStoreDir(t, "embedded-start-canceled-")
	release := slowRecovery(t, damagedStore(t, dir, 20))
	ctx, cancel := context.WithCancel(context.Background())
	recovering := make(chan struct{}, 1)
	started := make(chan error, 1)
	go func() {
		ns, err := events.StartEmbeddedContext(ctx, events.EmbeddedOptions{StoreDir: dir, SyncAlways: true, StartTimeout: time.Hour,
			Progress: func(p events.EmbeddedProgress) {
				if p.Recovering == events.StreamName {
					select {
					case recovering <- struct{}{}:
					default:
					}
				}
			}})
		if err == nil {
			ns.Shutdown()
		}
		started <- err
	}()
	select {
	case <-recovering:
	case err := <-started:
		t.Fatalf("the start ended before the recovery: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no recovery under way")
	}
	cancel()
	select {
	case err := <-started:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v: want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the start went on waiting for the recovery after its context ended")
	}
	release()
}

// backgroundStoreDir makes a store folder for a server given up on, whose
// recovery goes on in the background writing into it after the test (so
// not t.TempDir); the test's cleanup removes it once nothing writes there,
// polling for at most 10 s.
func backgroundStoreDir(t *testing.T, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for err := os.RemoveAll(dir); err != nil; err = os.RemoveAll(dir) {
			if time.Now().After(deadline) {
				t.Errorf("removing the store: %v", err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	return dir
}
