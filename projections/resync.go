package projections

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// resyncState tracks whether the model is current with the event store
// after reconnections. It lives inside Runner.
type resyncState struct {
	// The model is current when the head taken for the latest Resync
	// (synced == requested) has been applied.
	requested atomic.Uint64
	synced    atomic.Uint64
	// pending is how many events followed the last one delivered.
	pending atomic.Uint64

	once   sync.Once
	signal chan struct{} // to resyncLoop: take the head again
	kick   chan struct{} // to Run: stop waiting and consume again

	mu         sync.Mutex
	stopConsum context.CancelFunc // ends the running Consume
}

func (s *resyncState) init() {
	s.once.Do(func() { s.signal, s.kick = make(chan struct{}, 1), make(chan struct{}, 1) })
}

func (s *resyncState) ch() chan struct{} {
	s.init()
	return s.signal
}

func (s *resyncState) kicked() <-chan struct{} {
	s.init()
	return s.kick
}

// consumeContext returns the context for one Consume, which restart ends.
func (s *resyncState) consumeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	cctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	s.stopConsum = cancel
	s.mu.Unlock()
	return cctx, cancel
}

// restart ends the running Consume, or the wait before the next one: the
// consumer may have lived on a server that is gone, and waiting for its
// missed heartbeats would leave the model behind for that long.
func (s *resyncState) restart() {
	s.init()
	s.mu.Lock()
	if s.stopConsum != nil {
		s.stopConsum()
	}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Resync tells the runner that the event store may have moved on without it
// — the connection to NATS was lost, or has just come back. The model stays
// readable, but Current reports false until the stream head, taken anew once
// NATS answers, has been applied.
//
// Its consumer is started again too: it may have lived on a server that is
// gone (and on a disconnection it is no use anyway).
func (r *Runner) Resync() {
	r.sync.requested.Add(1)
	select {
	case r.sync.ch() <- struct{}{}:
	default:
	}
	r.sync.restart()
}

// resyncLoop takes the head again after every Resync, retrying until the
// event store answers. Run starts it.
func (r *Runner) resyncLoop(ctx context.Context) {
	signal := r.sync.ch()
	for {
		select {
		case <-ctx.Done():
			return
		case <-signal:
		}
		backoff := 20 * time.Millisecond
		for {
			gen := r.sync.requested.Load()
			hctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			head, err := r.src.Head(hctx)
			cancel()
			if err == nil {
				raise(&r.target, head)
				raise(&r.sync.synced, gen)
				r.log.Info("event store head taken again", "head", head, "applied", r.model.Applied())
				r.wake()
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-signal: // a newer resync: try again at once
				backoff = 20 * time.Millisecond
				continue
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
		}
	}
}

// raise sets v to n unless it is already larger.
func raise(v *atomic.Uint64, n uint64) {
	for old := v.Load(); n > old && !v.CompareAndSwap(old, n); old = v.Load() {
	}
}

// wake wakes every WaitFor and WaitCurrent.
func (r *Runner) wake() {
	r.mu.Lock()
	if r.notify != nil {
		close(r.notify)
		r.notify = nil
	}
	r.mu.Unlock()
}

// Current reports whether the model has caught up with the stream head as it
// was at start and after the latest reconnection to the event store: the
// replica may then decide commands against it. Reads do not wait for it.
func (r *Runner) Current() bool {
	return r.ready.Load() && r.sync.synced.Load() == r.sync.requested.Load() &&
		r.model.Applied() >= r.target.Load()
}

// WaitCurrent blocks until Current is true or ctx ends.
func (r *Runner) WaitCurrent(ctx context.Context) error {
	return r.waitUntil(ctx, r.Current)
}
