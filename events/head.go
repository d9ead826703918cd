package events

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// headTimeout bounds one question to the stream's leader for its head; every
// caller also waits no longer than its own context.
const headTimeout = 2 * time.Second

// heads shares the questions for the stream's head between concurrent
// callers (lists, SCIM requests and unknown secrets catching up while another
// replica serves): one question is in flight at a time, and every caller that
// arrives meanwhile waits for the next one, which is sent once the one in
// flight has its answer. A caller's answer therefore always comes from a
// question sent after it arrived — it includes every event stored before the
// caller asked, as its own question would — and under load the event store
// answers about one question per round trip, not one per request.
type heads struct {
	mu      sync.Mutex
	running *headAnswer // the question in flight, if any
	waiting *headAnswer // the next one, for the callers that came after it was sent
}

type headAnswer struct {
	done chan struct{}
	seq  uint64
	err  error
}

// get returns the head as ask (one question to the event store) answers it.
func (h *heads) get(ctx context.Context, ask func(context.Context) (uint64, error)) (uint64, error) {
	h.mu.Lock()
	a := h.waiting
	switch {
	case h.running == nil:
		a = &headAnswer{done: make(chan struct{})}
		h.running = a
		go h.ask(a, ask)
	case a == nil:
		a = &headAnswer{done: make(chan struct{})}
		h.waiting = a
	}
	h.mu.Unlock()
	select {
	case <-a.done:
		return a.seq, a.err
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}

// ask answers a, then sends the question its waiting callers need, if any.
func (h *heads) ask(a *headAnswer, ask func(context.Context) (uint64, error)) {
	for a != nil {
		ctx, cancel := context.WithTimeout(context.Background(), headTimeout)
		a.seq, a.err = ask(ctx)
		cancel()
		h.mu.Lock()
		next := h.waiting
		h.waiting, h.running = nil, next
		h.mu.Unlock()
		close(a.done)
		a = next
	}
}
