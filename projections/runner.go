package projections

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/infracast/auth/events"
)

// Source is the part of the event store the runner reads.
type Source interface {
	Head(ctx context.Context) (uint64, error)
	Consume(ctx context.Context, start uint64, fn func(events.Record) error) error
}

var _ Source = (*events.Store)(nil)

// Runner keeps a Model up to date with the stream.
type Runner struct {
	src   Source
	model *Model
	log   *slog.Logger

	target  atomic.Uint64 // head sequence taken before consuming
	applied atomic.Uint64
	ready   atomic.Bool

	mu     sync.Mutex
	notify chan struct{} // closed and cleared whenever applied advances
}

// NewRunner returns a runner that feeds model from src.
func NewRunner(src Source, model *Model, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{src: src, model: model, log: log}
}

// Model returns the model the runner feeds.
func (r *Runner) Model() *Model { return r.model }

// Run replays the stream from the model's last applied sequence and keeps
// applying new events until ctx ends. If consuming fails (the event store is
// unreachable) it retries with backoff; the model keeps answering meanwhile.
func (r *Runner) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		head, err := r.src.Head(ctx)
		if err == nil {
			r.target.Store(head)
			r.markReadyIfCaughtUp()
			err = r.src.Consume(ctx, r.model.Applied()+1, r.apply)
		}
		if ctx.Err() != nil {
			return nil
		}
		r.log.Warn("projection consumer stopped; retrying", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil
}

func (r *Runner) apply(rec events.Record) error {
	env, ev, err := events.Decode(rec.Data)
	if err != nil {
		r.log.Error("skipping undecodable event", "stream_seq", rec.StreamSeq, "subject", rec.Subject, "err", err)
		r.model.Skip(rec.StreamSeq)
	} else {
		r.model.Apply(rec.StreamSeq, env, ev)
	}
	r.applied.Store(rec.StreamSeq)
	r.markReadyIfCaughtUp()
	r.mu.Lock()
	if r.notify != nil {
		close(r.notify)
		r.notify = nil
	}
	r.mu.Unlock()
	return nil
}

func (r *Runner) markReadyIfCaughtUp() {
	if !r.ready.Load() && r.model.Applied() >= r.target.Load() {
		r.ready.Store(true)
		r.log.Info("read models caught up", "stream_seq", r.model.Applied())
	}
}

// Ready reports whether the model has caught up with the stream head as it
// was when consuming started.
func (r *Runner) Ready() bool { return r.ready.Load() }

// Applied returns the last stream sequence applied to the model.
func (r *Runner) Applied() uint64 { return r.model.Applied() }

// Lag returns how many events the model is behind the head taken at start (0 once caught up).
func (r *Runner) Lag() uint64 {
	t, a := r.target.Load(), r.model.Applied()
	if a >= t {
		return 0
	}
	return t - a
}

// WaitFor blocks until the model has applied stream sequence seq, so that a
// request can read its own writes.
func (r *Runner) WaitFor(ctx context.Context, seq uint64) error {
	for {
		r.mu.Lock()
		if r.model.Applied() >= seq {
			r.mu.Unlock()
			return nil
		}
		if r.notify == nil {
			r.notify = make(chan struct{})
		}
		ch := r.notify
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
