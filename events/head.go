package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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

// tail is what the store last learnt of a stream with missing messages
// (deleted, or lost from its files: a last block cut short, as an outside
// check, 18r, left one). The stream's last sequence may then be one whose
// message no longer exists; a replica catching up to it — the runner at
// start, a command reading its own writes — would wait forever for an
// event nobody can deliver (/ready and every /api/v1 route 503, nothing
// logged). The head is the last message that exists instead.
type tail struct {
	mu               sync.Mutex
	lastSeq, deleted uint64 // as the stream's info had them
	head             uint64 // the last stored message then
}

// lastStored returns the sequence of the stream's last stored message,
// given its info's last sequence and count of missing messages (not 0). It
// asks the stream's leader for its last message only when the missing count
// changed since the last answer: with the same count, every message after
// the last known sequence was stored, so the info's last sequence is, as in
// the common case, the head — a damaged stream costs one more question only
// until it is known. A tail found missing is logged (once) as a warning.
func (s *Store) lastStored(ctx context.Context, lastSeq, deleted uint64) (uint64, error) {
	t := &s.tail
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.deleted == deleted && lastSeq >= t.lastSeq && t.lastSeq != 0 {
		if lastSeq > t.lastSeq {
			t.lastSeq, t.head = lastSeq, lastSeq
		}
		return t.head, nil
	}
	m, err := s.leaderMsgGet(ctx, msgGetRequest{LastFor: SubjectPrefix + ".>"})
	var head uint64
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound): // every message is missing
	case err != nil:
		return 0, fmt.Errorf("%w: last message: %v", ErrUnavailable, err)
	default:
		head = m.seq
	}
	if head < lastSeq {
		s.cfg.Log.Warn("the stream's last events are missing (deleted, or lost from the store's files): they cannot be read, and the read models follow the last event stored; restore the store from a backup to get them back",
			"stream", s.name, "missing_from_seq", head+1, "missing_to_seq", lastSeq, "missing_in_stream", deleted)
	}
	t.lastSeq, t.deleted, t.head = lastSeq, deleted, head
	return head, nil
}
