package events

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// An embedded store's directory is held by one process at a time: two
// nats-servers writing one JetStream store would corrupt it, and nats-server
// itself does not check. The lock (flock) is on the directory itself, which
// cannot be unlinked while it holds the store (a lock file alone could be
// deleted from under its lock: an outside check, 18r, then ran a second
// instance beside the first), and on storeLockFile in it, which builds
// before this one lock instead: while replicas of both share a data folder
// during an upgrade, each build's lock excludes the other.
const storeLockFile = "infracast.lock"

// ErrStoreInUse: another process (or a server of this process still
// running) has the embedded store's directory.
var ErrStoreInUse = errors.New("events: the store is in use by another process")

// storeLock is a held lock on a store directory, released once its server
// has shut down.
type storeLock struct {
	abs      string
	dir, f   *os.File // flocked: the directory, and storeLockFile in it
	released chan struct{}
}

var (
	storeLocksMu sync.Mutex
	storeLocks   = map[string]*storeLock{} // held by this process, by absolute directory
)

// lockStore takes the store directory for this process. A server of this
// process that was just shut down releases it a moment later (see
// holdUntilShutdown): a restart on the same directory waits for that, for up
// to wait.
func lockStore(dir string, wait time.Duration) (*storeLock, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("events: store directory %s: %w", dir, err)
	}
	storeLocksMu.Lock()
	prev := storeLocks[abs]
	storeLocksMu.Unlock()
	if prev != nil {
		select {
		case <-prev.released:
		case <-time.After(wait):
			return nil, fmt.Errorf("%w: %s is held by a server of this process that is still running", ErrStoreInUse, abs)
		}
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("events: store directory: %w", err)
	}
	// The directory first: a second instance of this build is refused there
	// even when the lock file was deleted.
	d, err := flockOpen(abs, os.O_RDONLY, abs)
	if err != nil {
		return nil, err
	}
	f, err := flockOpen(filepath.Join(abs, storeLockFile), os.O_CREATE|os.O_RDWR, abs)
	if err != nil {
		d.Close()
		return nil, err
	}
	l := &storeLock{abs: abs, dir: d, f: f, released: make(chan struct{})}
	storeLocksMu.Lock()
	storeLocks[abs] = l
	storeLocksMu.Unlock()
	return l, nil
}

// flockOpen opens path and locks it (exclusive, without waiting); store
// names the store directory in a refusal.
func flockOpen(path string, flag int, store string) (*os.File, error) {
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, fmt.Errorf("events: store lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (is another instance running on the same data folder?)", ErrStoreInUse, store)
		}
		return nil, fmt.Errorf("events: store lock %s: %w", path, err)
	}
	return f, nil
}

// holdUntilShutdown releases the lock once ns has shut down.
func (l *storeLock) holdUntilShutdown(ns *server.Server) {
	go func() {
		ns.WaitForShutdown()
		l.release()
	}()
}

// release unlocks the directory (closing the files drops the flocks), and
// only then forgets the lock: a restart of this process that found no lock
// of its own while the files were still open was refused as "in use by
// another process" (a fresh-clone CI run, TestScaleSimQuick).
func (l *storeLock) release() {
	l.f.Close()
	l.dir.Close()
	storeLocksMu.Lock()
	if storeLocks[l.abs] == l {
		delete(storeLocks, l.abs)
	}
	storeLocksMu.Unlock()
	close(l.released)
}
