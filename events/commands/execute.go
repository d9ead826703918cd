package commands

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"strconv"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// ref names one aggregate: its kind (domain.AggregateUser, …) and its ID.
type ref struct{ kind, id string }

// subject is where the aggregate's events are stored.
func (r ref) subject() string { return events.Subject(r.kind, r.id) }

// aggregate is one aggregate as the write loop reads it.
type aggregate[S any] struct {
	ref
	// load reads its state from the read models, with the stream sequence
	// of its last event (0: none yet) and whether it exists.
	load func() (S, uint64, bool)
	// version is the number of events a state was folded from.
	version func(S) uint64
}

// write is one command on its way through execute.
type write[S any] struct {
	// on is the aggregate the command is decided against.
	on aggregate[S]
	// missing is the answer when on does not exist; nil: decide against
	// its zero state.
	missing error
	// decide decides the command against on's current state.
	decide func(S) ([]domain.Event, error)
	// into, when set, is the aggregate the decided events are appended to
	// instead of on — a new one they start, or (with intoVersion) one that
	// has events — stored only if on's subject has not moved since its
	// state was read (the expectation is on on's subject, none on into's:
	// events.Message.ExpectSubject; one event only).
	into ref
	// intoVersion, with into, is the number of events into's state was
	// folded from when decide read it (the envelope's aggregate version);
	// nil: into is new.
	intoVersion func() uint64
}

// execute runs a command through the write loop that every command on an
// existing aggregate takes: read the aggregate's state from the read
// models, decide, append the decided events expecting the aggregate's
// subject to be still at the sequence the state was read at, wait until the
// read models have applied them, and return the state read again.
//
//   - The aggregate does not exist: w.missing is the answer (nil: decide on
//     the zero state), once the read models have caught up with its
//     subject (it may have been created through another replica).
//   - No events: nothing is appended.
//   - Events and an error: the events are a trace of the refusal (reuse
//     detection, see domain.DecideSession); they are appended, then the
//     error is the answer.
//   - The append conflicts (events.ErrConflict: someone wrote to the subject
//     since it was read): take the subject's turn among this replica's
//     writers (subjectLocks; waiting while ctx lasts, else its error), catch
//     up with the subject, read and decide again, under a new command ID,
//     the turn held until the answer. The first attempt is optimistic — no
//     lock — unless another writer of this replica holds or waits for the
//     turn. After Config.MaxAttempts conflicts (left for another replica's
//     writers to cause): ErrTooManyConflicts.
//   - Any other error ends the loop, events.ErrOutcomeUnknown included: a
//     write that may have been stored is not decided again on top of
//     itself. (Within one attempt the store retries an unanswered append
//     with the same message IDs, <command ID>-<index>, and recognises its
//     own write when it landed.)
func execute[S any](ctx context.Context, s *Service, meta events.Meta, w write[S]) (S, error) {
	subject := w.on.subject()
	t := turns{locks: &s.subjects}
	defer t.release()
	if s.subjects.busy(subject) {
		// Others of this replica take turns on it: wait for ours, and
		// decide on what the one before wrote.
		if err := t.cover(ctx, subject); err != nil {
			var zero S
			return zero, err
		}
	}
	for i := 0; i < s.cfg.MaxAttempts; i++ {
		out, err := attempt(ctx, s, meta, w, NewID("cmd"))
		if !errors.Is(err, events.ErrConflict) {
			return out, err
		}
		s.conflicts.Add(1)
		if err := t.cover(ctx, subject); err != nil {
			return out, err
		}
		last, lerr := s.log.LastSequence(ctx, subject)
		if lerr != nil {
			return out, lerr
		}
		if err := s.proj.WaitFor(ctx, last); err != nil {
			return out, err
		}
		if i > 2 { // heavy contention: spread the retries out
			time.Sleep(time.Duration(mathrand.IntN(1000*(i+1))) * time.Microsecond)
		}
	}
	var zero S
	return zero, ErrTooManyConflicts
}

// attempt is one round of execute: read, decide, append.
func attempt[S any](ctx context.Context, s *Service, meta events.Meta, w write[S], commandID string) (S, error) {
	var zero S
	state, seq, ok := w.on.load()
	if !ok && w.missing != nil {
		// Made through another replica a moment ago, and not applied here
		// yet? (A revocation answered "nothing to do" would be lost.) One
		// round trip to the event store, only when it is not found.
		if err := s.catchUpSubject(ctx, w.on.subject()); err != nil {
			return zero, err
		}
		if state, seq, ok = w.on.load(); !ok {
			return zero, w.missing
		}
	}
	evs, refusal := w.decide(state)
	if len(evs) > 0 {
		if _, err := s.appendEvents(ctx, meta, commandID, w.address(state, seq, evs)); err != nil {
			return zero, err
		}
	}
	if refusal != nil {
		return zero, refusal
	}
	state, _, _ = w.on.load()
	return state, nil
}

// address says where decided events go: after the events of on, read at
// stream sequence seq in state; or, with into, at the start of into (after
// its intoVersion events), stored only if on's subject is still at seq.
func (w write[S]) address(state S, seq uint64, evs []domain.Event) []pending {
	if w.into == (ref{}) {
		return onAggregate(w.on.ref, w.on.version(state), seq, evs)
	}
	version := uint64(0)
	if w.intoVersion != nil {
		version = w.intoVersion()
	}
	out := onAggregate(w.into, version, seq, evs)
	for i := range out {
		out[i].expectOn = w.on.subject()
	}
	return out
}

// pending is one decided event and where it goes.
type pending struct {
	aggregate, id string
	expect        uint64
	expectOn      string // the subject whose last sequence expect is; empty: the event's own
	version       uint64 // aggregate version before this event
	event         domain.Event
}

// onAggregate addresses decided events to an aggregate whose state had
// version events, the last at stream sequence expect (0: a new aggregate).
func onAggregate(a ref, version, expect uint64, evs []domain.Event) []pending {
	out := make([]pending, len(evs))
	for i, e := range evs {
		out[i] = pending{aggregate: a.kind, id: a.id, expect: expect, version: version + uint64(i), event: e}
	}
	return out
}

// appendEvents encodes and appends events atomically and waits until the local
// read model has applied them — and, when they take access away
// (domain.Narrows), until every other replica has too (Config.Barrier).
func (s *Service) appendEvents(ctx context.Context, meta events.Meta, commandID string, evs []pending) (uint64, error) {
	seq, err := s.storeEvents(ctx, meta, commandID, evs)
	if err != nil {
		return 0, err
	}
	if narrows(evs) {
		s.barrier(ctx, seq)
	}
	return seq, nil
}

// barrier waits until every other replica has applied the stream up to seq
// (Config.Barrier; 0: nothing to wait for).
func (s *Service) barrier(ctx context.Context, seq uint64) {
	if s.cfg.Barrier != nil && seq > 0 {
		s.cfg.Barrier.Wait(ctx, seq)
	}
}

// storeEvents is appendEvents without the barrier: for a caller that
// appends several times and waits for the other replicas once, at the end.
func (s *Service) storeEvents(ctx context.Context, meta events.Meta, commandID string, evs []pending) (uint64, error) {
	msgs := make([]events.Message, len(evs))
	now := s.cfg.Now()
	for i, p := range evs {
		data, err := events.Encode(NewID("evt"), p.aggregate, p.id, p.version+1, now, meta, p.event)
		if err != nil {
			return 0, err
		}
		msgs[i] = events.Message{
			Subject: events.Subject(p.aggregate, p.id), ExpectSeq: p.expect, ExpectSubject: p.expectOn,
			ID: commandID + "-" + strconv.Itoa(i), Data: data,
		}
	}
	if err := s.waitCurrent(ctx); err != nil {
		return 0, err
	}
	start := time.Now()
	seq, err := s.log.Append(ctx, msgs...)
	if s.cfg.ObserveAppend != nil {
		s.cfg.ObserveAppend(time.Since(start), err)
	}
	if err != nil {
		return 0, err
	}
	if err := s.proj.WaitFor(ctx, seq); err != nil {
		// Stored, but this replica has not applied it in time: the answer
		// cannot be built, and must not claim that nothing changed.
		return 0, fmt.Errorf("%w: stored at sequence %d, not yet applied here: %v", events.ErrOutcomeUnknown, seq, err)
	}
	return seq, nil
}

// narrows reports whether any of evs takes access away (domain.Narrows).
func narrows(evs []pending) bool {
	for _, p := range evs {
		if domain.Narrows(p.event.EventType()) {
			return true
		}
	}
	return false
}

// currentWait bounds how long a command waits for the read models to catch up
// after a reconnection before answering ErrUnavailable.
const currentWait = 2 * time.Second

// waitCurrent holds an append back while the read models catch up after a
// reconnection to the event store (decisions made on stale state would only
// run into conflicts), and refuses it if that takes longer than currentWait.
// While NATS is unreachable it does not wait: Append decides (it gives the
// connection a moment to come back, then refuses).
func (s *Service) waitCurrent(ctx context.Context) error {
	// Nearly always current: say so without a timer, the runner's lock or
	// the NATS connection's (both contended by every append and every
	// event applied; this took 0.1–0.2 ms of each refresh under load).
	if c, ok := s.proj.(interface{ Current() bool }); ok && c.Current() {
		return nil
	}
	if c, ok := s.log.(interface{ Connected() bool }); ok && !c.Connected() {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, currentWait)
	defer cancel()
	if err := s.proj.WaitCurrent(wctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: read models are catching up with the event store", events.ErrUnavailable)
	}
	return nil
}
