package projections

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infracast/auth/events"
)

// flakySource has an empty stream; its consumers fail to start while
// failing is set (a JetStream cluster without quorum), and read until their
// context ends otherwise.
type flakySource struct{ failing, headFails atomic.Bool }

func (s *flakySource) Head(context.Context) (uint64, error) {
	if s.headFails.Load() {
		return 0, errors.New("stream info: JetStream system temporarily unavailable")
	}
	return 0, nil
}

func (s *flakySource) Consume(ctx context.Context, _ uint64, _ func(events.Record) error) error {
	if s.failing.Load() {
		return errors.New("create consumer: JetStream system temporarily unavailable")
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestRunnerStalled: a runner whose consumers keep failing to start says so
// (Stalled, which turns the service's /ready 503), and stops saying so once
// a consumer has been reading for consumerSettled; a healthy one never does;
// one whose consumer runs but whose stream's head cannot be read says so
// too.
func TestRunnerStalled(t *testing.T) {
	src := &flakySource{}
	src.failing.Store(true)
	r := NewRunner(src, NewModel(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	waitFor := func(what string, cond func() bool) { // polls, up to a deadline
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); <-tick.C {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20 s", what)
			}
		}
	}
	waitFor("stalled while consumers fail", r.Stalled)
	src.failing.Store(false)
	waitFor("reading again once a consumer has settled", func() bool { return !r.Stalled() })
	// Healthy: it stays so, sampled over 20 ticks.
	for range 20 {
		if r.Stalled() {
			t.Fatal("a reading runner said it was stalled")
		}
		<-tick.C
	}
	// The consumer still runs (its node survived) but the stream's head
	// cannot be read (no leader): stalled too, until it can again.
	src.headFails.Store(true)
	waitFor("stalled while the head cannot be read", r.Stalled)
	src.headFails.Store(false)
	waitFor("the head readable again", func() bool { return !r.Stalled() })
}

// silentSource's first consumer reads until silence is closed, then ends
// as a consumer that missed its heartbeats does; later ones hang until
// their context ends (as creating one over a frozen connection does, for a
// while).
type silentSource struct {
	silence  chan struct{}
	attempts atomic.Int32
}

func (s *silentSource) Head(context.Context) (uint64, error) { return 0, nil }

func (s *silentSource) Consume(ctx context.Context, _ uint64, _ func(events.Record) error) error {
	if s.attempts.Add(1) == 1 {
		select {
		case <-s.silence:
			return fmt.Errorf("%w: consume: %w: nats: no heartbeat received", events.ErrUnavailable, events.ErrStreamSilent)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestRunnerStalledWhenTheStreamGoesSilent: a consumer that had been reading
// and then missed its heartbeats (its NATS node frozen) makes the runner
// Stalled at once — /ready 503 — not only after two more failed attempts or
// headStale. (An outside check: with a node frozen, a replica stayed ready
// for up to 1.4 s after a revocation through another replica had been
// answered, and was sent traffic it answered from its stale model.)
func TestRunnerStalledWhenTheStreamGoesSilent(t *testing.T) {
	src := &silentSource{silence: make(chan struct{})}
	r := NewRunner(src, NewModel(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(20 * time.Second); !r.Ready() || r.Stalled(); <-tick.C {
		if time.Now().After(deadline) {
			t.Fatal("not reading within 20 s")
		}
	}
	close(src.silence)
	// Stalled from the moment the silent consumer ends until another one
	// has settled (consumerSettled): polled, never missed.
	for deadline := time.Now().Add(consumerSettled); !r.Stalled(); <-tick.C {
		if time.Now().After(deadline) {
			t.Fatalf("not stalled within %v of the stream going silent (%d attempts)", consumerSettled, src.attempts.Load())
		}
	}
}
