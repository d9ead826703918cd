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

// storeLockFile is the file in an embedded store's directory that one
// process at a time holds locked (flock): two nats-servers writing one
// JetStream store would corrupt it, and nats-server itself does not check.
const storeLockFile = "infracast.lock"

// ErrStoreInUse: another process (or a server of this process still
// running) has the embedded store's directory.
var ErrStoreInUse = errors.New("events: the store is in use by another process")

// storeLock is a held lock on a store directory, released once its server
// has shut down.
type storeLock struct {
	abs      string
	f        *os.File
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
	f, err := os.OpenFile(filepath.Join(abs, storeLockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("events: store lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (is another instance running on the same data folder?)", ErrStoreInUse, abs)
		}
		return nil, fmt.Errorf("events: store lock %s: %w", abs, err)
	}
	l := &storeLock{abs: abs, f: f, released: make(chan struct{})}
	storeLocksMu.Lock()
	storeLocks[abs] = l
	storeLocksMu.Unlock()
	return l, nil
}

// holdUntilShutdown releases the lock once ns has shut down.
func (l *storeLock) holdUntilShutdown(ns *server.Server) {
	go func() {
		ns.WaitForShutdown()
		l.release()
	}()
}

// release unlocks the directory (closing the file drops the flock).
func (l *storeLock) release() {
	storeLocksMu.Lock()
	if storeLocks[l.abs] == l {
		delete(storeLocks, l.abs)
	}
	storeLocksMu.Unlock()
	l.f.Close()
	close(l.released)
}
