package events_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infracast/auth/events"
)

// TestHeadsShareQuestions: callers that arrive while a question is in flight
// all wait for the next one — one question for all of them, sent after they
// arrived — and a lone caller asks its own.
func TestHeadsShareQuestions(t *testing.T) {
	var h events.Heads
	var asked atomic.Uint64
	release := make(chan struct{})
	first := make(chan struct{})
	ask := func(context.Context) (uint64, error) {
		n := asked.Add(1)
		if n == 1 {
			close(first)
			<-release // the first question stays in flight
		}
		return n, nil // the answer: which question this was
	}

	var wg sync.WaitGroup
	got := make([]uint64, 21)
	wg.Add(1)
	go func() {
		defer wg.Done()
		var err error
		if got[0], err = h.Get(context.Background(), ask); err != nil {
			t.Error(err)
		}
	}()
	<-first
	// Twenty callers arrive while the first question is in flight.
	var arrived atomic.Int32
	for i := 1; i <= 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			arrived.Add(1)
			seq, err := h.Get(context.Background(), ask)
			if err != nil {
				t.Error(err)
			}
			got[i] = seq
		}()
	}
	waitUntil(t, "twenty callers waiting", func() bool {
		return arrived.Load() == 20 && h.Waiting()
	})
	// One that has not joined yet when the first question is answered
	// waits for a later question: its answer still comes after it arrived.
	close(release)
	wg.Wait()
	if got[0] != 1 {
		t.Errorf("the first caller got question %d's answer, want 1", got[0])
	}
	for i := 1; i <= 20; i++ {
		if got[i] < 2 {
			t.Errorf("caller %d got question %d's answer, which was sent before it arrived", i, got[i])
		}
	}
	if n := asked.Load(); n > 3 {
		t.Errorf("%d questions for 21 callers, want at most 3", n)
	}

	// Alone, each call asks anew.
	before := asked.Load()
	for i := uint64(1); i <= 3; i++ {
		if seq, err := h.Get(context.Background(), ask); err != nil || seq != before+i {
			t.Fatalf("call %d: %d, %v; want %d", i, seq, err, before+i)
		}
	}
}

// TestHeadsErrorsAndCancel: a failed question fails its callers with the
// event store's error, and a caller whose context ends stops waiting with
// ErrUnavailable while the question goes on.
func TestHeadsErrorsAndCancel(t *testing.T) {
	var h events.Heads
	boom := errors.New("boom")
	if _, err := h.Get(context.Background(), func(context.Context) (uint64, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	stuck := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := h.Get(ctx, func(context.Context) (uint64, error) { <-stuck; return 7, nil })
	if !errors.Is(err, events.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	close(stuck)
	// The next caller is not stuck behind it for good.
	waitUntil(t, "a fresh answer", func() bool {
		seq, err := h.Get(context.Background(), func(context.Context) (uint64, error) { return 9, nil })
		return err == nil && seq == 9
	})
}
