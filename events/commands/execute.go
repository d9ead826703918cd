package commands

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
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
	// into, when set, is a new aggregate that the decided events start,
	// instead of being appended to on: they are stored only if on's subject
	// has not moved since its state was read (the expectation is on on's
	// subject: events.Message.ExpectSubject; one event only).
	into ref
	// decided, when set, lets the command be answered as soon as its
	// events are stored, before the local read models have applied them:
	// the answer is decided(state, events), the state the events lead to.
	// Only for events on on (not into) that change nothing but on's own
	// state, and nothing of it that the request path reads (Authorize,
	// AuthorizeKey): a client holding the answer may use it on this replica
	// at once, and the read models apply the events moments later. Until
	// they have, commands on on are decided against that state (load, acked).
	// A refusal's trace is never answered early.
	decided func(S, []domain.Event) S
}

// execute runs a command through the write loop that every command on an
// existing aggregate takes: read the aggregate's state from the read
// models, decide, append the decided events expecting the aggregate's
// subject to be still at the sequence the state was read at, wait until the
// read models have applied them, and return the state read again (with
// w.decided: return the state the events lead to, once they are stored).
//
//   - The aggregate does not exist: w.missing is the answer (nil: decide on
//     the zero state).
//   - No events: nothing is appended.
//   - Events and an error: the events are a trace of the refusal (reuse
//     detection, see domain.DecideSession); they are appended, then the
//     error is the answer.
//   - The append conflicts (events.ErrConflict: someone wrote to the subject
//     since it was read): catch up with the subject, read and decide again,
//     under a new command ID. After Config.MaxAttempts conflicts:
//     ErrTooManyConflicts.
//   - Any other error ends the loop, events.ErrOutcomeUnknown included: a
//     write that may have been stored is not decided again on top of
//     itself. (Within one attempt the store retries an unanswered append
//     with the same message IDs, <command ID>-<index>, and recognises its
//     own write when it landed.)
func execute[S any](ctx context.Context, s *Service, meta events.Meta, w write[S]) (S, error) {
	subject := w.on.subject()
	for i := 0; i < s.cfg.MaxAttempts; i++ {
		out, err := attempt(ctx, s, meta, w, NewID("cmd"))
		if !errors.Is(err, events.ErrConflict) {
			return out, err
		}
		s.conflicts.Add(1)
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
	state, seq, ok, err := load(ctx, s, w.on)
	if err != nil {
		return zero, err
	}
	if !ok && w.missing != nil {
		return zero, w.missing
	}
	evs, refusal := w.decide(state)
	if len(evs) > 0 && refusal == nil && w.decided != nil && w.into == (ref{}) {
		// Answered once stored; until the read models have applied it,
		// the aggregate is read from here (load).
		at, err := s.store(ctx, meta, commandID, w.address(state, seq, evs))
		if err != nil {
			return zero, err
		}
		next := w.decided(state, evs)
		s.acked.record(w.on.subject(), at, next, s.proj.Applied())
		return next, nil
	}
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

// load reads a's state, with the stream sequence of its last event and
// whether it exists: from the read models; or, when an append on a answered
// before the read models applied it (write.decided) is newer than what
// they hold, the state that append led to. That state is a's, as of that
// sequence, as surely as the read models' would be: the append was stored
// only on top of the state it was decided on (the expected subject
// sequence), and its events are folded by the same domain function. A
// decision on it is appended with that expectation too, so anything written
// to a since (by another replica) makes it conflict, and execute catches up
// from the read models.
func load[S any](ctx context.Context, s *Service, a aggregate[S]) (S, uint64, bool, error) {
	state, seq, ok := a.load()
	w, found := s.acked.after(a.subject(), seq)
	if !found {
		return state, seq, ok, nil
	}
	if st, isS := w.state.(S); isS && time.Since(w.at) < ackedFor {
		return st, w.seq, true, nil
	}
	// Not applied for so long that the read models are stuck (or, never
	// so, not a state of this aggregate's type): wait for them, and fail
	// if they do not catch up, as any command does.
	if err := s.proj.WaitFor(ctx, w.seq); err != nil {
		return state, seq, ok, err
	}
	state, seq, ok = a.load()
	return state, seq, ok, nil
}

// address says where decided events go: after the events of on, read at
// stream sequence seq in state; or, with into, at the start of into, stored
// only if on's subject is still at seq.
func (w write[S]) address(state S, seq uint64, evs []domain.Event) []pending {
	if w.into == (ref{}) {
		return onAggregate(w.on.ref, w.on.version(state), seq, evs)
	}
	out := onAggregate(w.into, 0, seq, evs)
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
// read model has applied them.
func (s *Service) appendEvents(ctx context.Context, meta events.Meta, commandID string, evs []pending) (uint64, error) {
	seq, err := s.store(ctx, meta, commandID, evs)
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

// store encodes and appends events atomically, once the read models are
// current (waitCurrent).
func (s *Service) store(ctx context.Context, meta events.Meta, commandID string, evs []pending) (uint64, error) {
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
	return seq, err
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

// acked holds the appends answered once stored (write.decided), before the
// local read models applied them: for each subject, the stream sequence of
// the last such append and the aggregate's state after it, until the read
// models have applied it. A command on the aggregate decides against that
// state meanwhile (load), and a look-up that finds nothing while any of them
// is outstanding looks again once it is applied (settleAll): the client
// that got the answer reads its own write on this replica, as if the
// command had waited.
type acked struct {
	max   atomic.Uint64 // the highest sequence recorded
	mu    sync.Mutex
	subj  map[string]ackedWrite // by subject, until applied
	sweep int                   // clear out the applied entries at this size
}

type ackedWrite struct {
	seq   uint64
	state any       // the aggregate's state after it
	at    time.Time // when it was answered
}

// ackedFor is how long the state an answered append led to is decided on
// while the read models have not applied it. They normally do within a
// millisecond or so; after this long they are stuck or far behind, and a
// command waits for them instead (failing if they do not catch up in time),
// as it would have had the append waited.
const ackedFor = time.Second

// record notes an append to subject answered at sequence seq, leading to
// state, the read models being at applied.
func (a *acked) record(subject string, seq uint64, state any, applied uint64) {
	a.mu.Lock()
	if a.subj == nil {
		a.subj = make(map[string]ackedWrite)
	}
	if len(a.subj) >= a.sweep {
		for k, w := range a.subj {
			if w.seq <= applied {
				delete(a.subj, k)
			}
		}
		a.sweep = max(64, 2*len(a.subj))
	}
	if seq > a.subj[subject].seq {
		a.subj[subject] = ackedWrite{seq: seq, state: state, at: time.Now()}
	}
	a.mu.Unlock()
	for old := a.max.Load(); seq > old && !a.max.CompareAndSwap(old, seq); old = a.max.Load() {
	}
}

// after returns the answered append to subject that is newer than seq, the
// subject's last sequence in the read models, if there is one.
func (a *acked) after(subject string, seq uint64) (ackedWrite, bool) {
	if a.max.Load() <= seq {
		return ackedWrite{}, false // none newer anywhere: the common case
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	w, ok := a.subj[subject]
	if ok && w.seq <= seq {
		delete(a.subj, subject) // applied
		return ackedWrite{}, false
	}
	return w, ok
}

// Settle waits until the local read models have applied every write this
// service has answered: a refresh is answered once stored, before they
// apply it (write.decided). Requests need not call it — the write side reads
// its own answered writes (load, settleAll), and the request path does not
// depend on them — but a check that reads the read models directly does.
func (s *Service) Settle(ctx context.Context) error {
	_, err := s.settleAll(ctx)
	return err
}

// settleAll waits until the read models have applied every append answered
// before they applied it; it reports whether there was any to wait for.
func (s *Service) settleAll(ctx context.Context) (bool, error) {
	seq := s.acked.max.Load()
	if seq <= s.proj.Applied() {
		return false, nil
	}
	return true, s.proj.WaitFor(ctx, seq)
}
