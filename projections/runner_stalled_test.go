package projections

import (
	"context"
	"errors"
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
