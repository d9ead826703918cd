package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// The write loop (execute) against a fake event log and read model: what
// it appends, when it tries again, and when it stops.

// bumped is the event of the test aggregate, a counter.
type bumped struct {
	By int `json:"by"`
}

func (bumped) EventType() string { return "counter.bumped" }

// counter is the test aggregate's state.
type counter struct {
	N       int
	Version uint64
}

// fakeLog is an event log whose appends answer what the test scripts, and a
// read model holding one counter. An append that is stored applies its
// events at once (WaitFor never waits); a conflicting one stands for a
// concurrent writer, whose event the read model applies when the loop
// catches up with the subject.
type fakeLog struct {
	mu       sync.Mutex
	results  []error // what each append answers, in order; nil (or none left): stored
	appends  [][]events.Message
	lastSeqs []string // subjects asked for their last sequence
	waits    []uint64 // sequences waited for
	head     uint64   // last stream sequence
	// waitErr, when set, is what WaitFor answers after a stored append.
	waitErr error

	// The read model: one counter, its last stream sequence, whether it exists.
	state   counter
	seq     uint64
	exists  bool
	pending int // concurrent bumps stored but not yet applied
}

func (f *fakeLog) Append(_ context.Context, msgs ...events.Message) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.appends = append(f.appends, msgs)
	var err error
	if len(f.results) > 0 {
		err, f.results = f.results[0], f.results[1:]
	}
	if errors.Is(err, events.ErrConflict) {
		f.head++ // someone else's event, on the subject the decision was on
		f.pending++
		return 0, err
	}
	if err != nil {
		return 0, err
	}
	for range msgs {
		f.head++
		f.state = counter{N: f.state.N + 1, Version: f.state.Version + 1}
	}
	f.seq, f.exists = f.head, true
	return f.head, nil
}

func (f *fakeLog) LastSequence(_ context.Context, subject string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastSeqs = append(f.lastSeqs, subject)
	return f.head, nil
}

func (f *fakeLog) Head(context.Context) (uint64, error) { return f.head, nil }

func (f *fakeLog) WaitFor(_ context.Context, seq uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits = append(f.waits, seq)
	for ; f.pending > 0; f.pending-- { // catching up applies the concurrent writes
		f.state = counter{N: f.state.N + 10, Version: f.state.Version + 1}
		f.seq, f.exists = seq, true
	}
	return f.waitErr
}

func (f *fakeLog) WaitCurrent(context.Context) error { return nil }

// counterAggregate is the fake's counter as the write loop reads it.
func (f *fakeLog) counterAggregate() aggregate[counter] {
	return aggregate[counter]{
		ref: ref{"counter", "c-1"},
		load: func() (counter, uint64, bool) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.state, f.seq, f.exists
		},
		version: func(c counter) uint64 { return c.Version },
	}
}

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newTestService returns a service on a fake log holding a counter at
// version 2, its last event at stream sequence 5.
func newTestService(t *testing.T, results ...error) (*Service, *fakeLog) {
	t.Helper()
	f := &fakeLog{results: results, head: 5, seq: 5, exists: true, state: counter{N: 2, Version: 2}}
	s := New(f, f, nil, nil, nil, Config{Now: func() time.Time { return testNow }, MaxAttempts: 4})
	return s, f
}

// decisions records the states decided on, and decides bumps.
type decisions struct {
	seen   []counter
	events int   // bumps to decide each time
	err    error // and the error to decide with
}

func (d *decisions) decide(c counter) ([]domain.Event, error) {
	d.seen = append(d.seen, c)
	var evs []domain.Event
	for i := range d.events {
		evs = append(evs, bumped{By: i + 1})
	}
	return evs, d.err
}

// envelope decodes what an appended message holds.
func envelope(t *testing.T, m events.Message) events.Envelope {
	t.Helper()
	var env events.Envelope
	if err := json.Unmarshal(m.Data, &env); err != nil {
		t.Fatalf("message %s: %v", m.ID, err)
	}
	return env
}

// commandID is the command ID of an appended message (<command ID>-<index>).
func commandID(t *testing.T, m events.Message, index int) string {
	t.Helper()
	id, ok := strings.CutSuffix(m.ID, fmt.Sprintf("-%d", index))
	if !ok || !strings.HasPrefix(id, "cmd-") {
		t.Fatalf("message ID %q is not <command ID>-%d", m.ID, index)
	}
	return id
}

func TestExecuteAppendsTheDecisionOnTheStateItWasDecidedOn(t *testing.T) {
	s, f := newTestService(t)
	d := &decisions{events: 2}
	meta := events.Meta{Actor: events.Actor{Type: "user", ID: "user-1"}}
	got, err := execute(context.Background(), s, meta, write[counter]{on: f.counterAggregate(), decide: d.decide})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.appends) != 1 {
		t.Fatalf("%d appends, want 1 (both events in one atomic append)", len(f.appends))
	}
	msgs := f.appends[0]
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	cmd := commandID(t, msgs[0], 0)
	for i, m := range msgs {
		if m.Subject != events.Subject("counter", "c-1") || m.ExpectSeq != 5 || m.ExpectSubject != "" {
			t.Errorf("message %d: subject %q, expect %d on %q; want the counter's subject, expected at 5, the sequence its state was read at",
				i, m.Subject, m.ExpectSeq, m.ExpectSubject)
		}
		if id := commandID(t, m, i); id != cmd {
			t.Errorf("message %d belongs to command %s, message 0 to %s: one command, one ID", i, id, cmd)
		}
		env := envelope(t, m)
		if env.Sequence != uint64(3+i) || env.Aggregate != "counter" || env.AggregateID != "c-1" ||
			env.Type != "counter.bumped" || !env.OccurredAt.Equal(testNow) || env.Actor != meta.Actor {
			t.Errorf("message %d: envelope %+v; want counter c-1 event %d, at the service's now, by the command's actor", i, env, 3+i)
		}
	}
	if len(f.waits) != 1 || f.waits[0] != 7 {
		t.Errorf("waited for %v, want [7]: the answer is read after the read model applied the append", f.waits)
	}
	if want := (counter{N: 4, Version: 4}); got != want {
		t.Errorf("returned %+v, want the state read again after the append, %+v", got, want)
	}
	if s.Conflicts() != 0 {
		t.Errorf("Conflicts() = %d, want 0", s.Conflicts())
	}
}

func TestExecuteRetriesAConflictOnTheCaughtUpState(t *testing.T) {
	s, f := newTestService(t, fmt.Errorf("%w: wrong last sequence", events.ErrConflict))
	d := &decisions{events: 1}
	got, err := execute(context.Background(), s, events.Meta{}, write[counter]{on: f.counterAggregate(), decide: d.decide})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.appends) != 2 {
		t.Fatalf("%d appends, want 2: the conflict, and the append decided again", len(f.appends))
	}
	if want := []string{events.Subject("counter", "c-1")}; fmt.Sprint(f.lastSeqs) != fmt.Sprint(want) {
		t.Errorf("asked the last sequence of %v, want %v: the loop catches up with the subject that moved", f.lastSeqs, want)
	}
	if len(f.waits) < 1 || f.waits[0] != 6 {
		t.Errorf("waited for %v; want 6 (the subject's last sequence) first", f.waits)
	}
	if len(d.seen) != 2 || d.seen[0] != (counter{N: 2, Version: 2}) || d.seen[1] != (counter{N: 12, Version: 3}) {
		t.Errorf("decided on %+v; want the state read first, then the state caught up with the concurrent write", d.seen)
	}
	first, second := f.appends[0][0], f.appends[1][0]
	if first.ExpectSeq != 5 || second.ExpectSeq != 6 {
		t.Errorf("expected sequences %d then %d, want 5 then 6", first.ExpectSeq, second.ExpectSeq)
	}
	if envelope(t, second).Sequence != 4 {
		t.Errorf("the retried event is event %d of the counter, want 4", envelope(t, second).Sequence)
	}
	if commandID(t, first, 0) == commandID(t, second, 0) {
		t.Error("the retry kept the command ID: a new decision is a new command (the store's landed-write recognition is by message ID)")
	}
	if want := (counter{N: 13, Version: 4}); got != want {
		t.Errorf("returned %+v, want %+v", got, want)
	}
	if s.Conflicts() != 1 {
		t.Errorf("Conflicts() = %d, want 1", s.Conflicts())
	}
}

func TestExecuteGivesUpOnPersistentConflicts(t *testing.T) {
	conflict := fmt.Errorf("%w: wrong last sequence", events.ErrConflict)
	s, f := newTestService(t, conflict, conflict, conflict, conflict, conflict)
	d := &decisions{events: 1}
	_, err := execute(context.Background(), s, events.Meta{}, write[counter]{on: f.counterAggregate(), decide: d.decide})
	if !errors.Is(err, ErrTooManyConflicts) {
		t.Fatalf("err = %v, want ErrTooManyConflicts", err)
	}
	if len(f.appends) != 4 || len(d.seen) != 4 {
		t.Errorf("%d appends of %d decisions, want MaxAttempts (4) of each", len(f.appends), len(d.seen))
	}
	if s.Conflicts() != 4 {
		t.Errorf("Conflicts() = %d, want 4", s.Conflicts())
	}
}

func TestExecuteAppendsNothingWithoutEvents(t *testing.T) {
	refused := errors.New("refused")
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"nothing to change", nil},
		{"refused", refused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f := newTestService(t)
			d := &decisions{err: tc.err}
			got, err := execute(context.Background(), s, events.Meta{}, write[counter]{on: f.counterAggregate(), decide: d.decide})
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if len(f.appends) != 0 || len(f.waits) != 0 {
				t.Errorf("%d appends, %d waits; want none", len(f.appends), len(f.waits))
			}
			if tc.err == nil && got != (counter{N: 2, Version: 2}) {
				t.Errorf("returned %+v, want the state as it is", got)
			}
		})
	}
}

func TestExecuteAppendsTheTraceOfARefusal(t *testing.T) {
	s, f := newTestService(t)
	d := &decisions{events: 2, err: domain.ErrRefreshReused}
	_, err := execute(context.Background(), s, events.Meta{}, write[counter]{on: f.counterAggregate(), decide: d.decide})
	if !errors.Is(err, domain.ErrRefreshReused) {
		t.Fatalf("err = %v, want the refusal", err)
	}
	if len(f.appends) != 1 || len(f.appends[0]) != 2 {
		t.Fatalf("appends %v; want the two events decided with the refusal, in one append", f.appends)
	}
}

// An append whose outcome is not known may have been stored: deciding again
// on top of it could apply the command twice. It is the answer as it is.
func TestExecuteDoesNotRetryAnUnknownOutcome(t *testing.T) {
	for _, tc := range []struct {
		name    string
		append  error
		waitErr error
		want    error
	}{
		{"append unconfirmed", fmt.Errorf("%w (last attempt: timeout)", events.ErrOutcomeUnknown), nil, events.ErrOutcomeUnknown},
		{"stored, not applied here in time", nil, context.DeadlineExceeded, events.ErrOutcomeUnknown},
		{"store unreachable", fmt.Errorf("%w: no responders", events.ErrUnavailable), nil, events.ErrUnavailable},
		{"append rejected", errors.New("events: append rejected (10054): maximum messages exceeded"), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f := newTestService(t, tc.append)
			f.waitErr = tc.waitErr
			d := &decisions{events: 1}
			_, err := execute(context.Background(), s, events.Meta{}, write[counter]{on: f.counterAggregate(), decide: d.decide})
			want := tc.want
			if want == nil {
				want = tc.append
			}
			if !errors.Is(err, want) {
				t.Fatalf("err = %v, want %v", err, want)
			}
			if len(f.appends) != 1 || len(d.seen) != 1 || len(f.lastSeqs) != 0 || s.Conflicts() != 0 {
				t.Errorf("%d appends, %d decisions, %d catch-ups, %d conflicts; want one attempt and no retry",
					len(f.appends), len(d.seen), len(f.lastSeqs), s.Conflicts())
			}
		})
	}
}

func TestExecuteOnAMissingAggregate(t *testing.T) {
	t.Run("missing is the answer", func(t *testing.T) {
		s, f := newTestService(t)
		f.state, f.seq, f.exists = counter{}, 0, false
		d := &decisions{events: 1}
		_, err := execute(context.Background(), s, events.Meta{}, write[counter]{
			on: f.counterAggregate(), missing: domain.ErrNotFound, decide: d.decide,
		})
		if !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		if len(d.seen) != 0 || len(f.appends) != 0 {
			t.Errorf("%d decisions, %d appends; want none", len(d.seen), len(f.appends))
		}
	})
	t.Run("decided on the zero state", func(t *testing.T) {
		s, f := newTestService(t)
		f.state, f.seq, f.exists = counter{}, 0, false
		d := &decisions{events: 1}
		if _, err := execute(context.Background(), s, events.Meta{}, write[counter]{on: f.counterAggregate(), decide: d.decide}); err != nil {
			t.Fatal(err)
		}
		if len(d.seen) != 1 || d.seen[0] != (counter{}) {
			t.Errorf("decided on %+v, want the zero state", d.seen)
		}
		if m := f.appends[0][0]; m.ExpectSeq != 0 || envelope(t, m).Sequence != 1 {
			t.Errorf("expect %d, event %d; want 0 (the subject must be new) and 1", m.ExpectSeq, envelope(t, m).Sequence)
		}
	})
}

// A decision on one aggregate can start another (a login's session, decided
// on the user): the event goes to the new aggregate's subject, stored only
// if the first one's subject has not moved since it was read.
func TestExecuteIntoANewAggregate(t *testing.T) {
	s, f := newTestService(t, fmt.Errorf("%w: wrong last sequence", events.ErrConflict))
	d := &decisions{events: 1}
	into := ref{"tally", "t-1"}
	if _, err := execute(context.Background(), s, events.Meta{}, write[counter]{
		on: f.counterAggregate(), into: into, decide: d.decide,
	}); err != nil {
		t.Fatal(err)
	}
	if len(f.appends) != 2 {
		t.Fatalf("%d appends, want 2", len(f.appends))
	}
	for i, want := range []uint64{5, 6} {
		m := f.appends[i][0]
		if m.Subject != into.subject() || m.ExpectSeq != want || m.ExpectSubject != events.Subject("counter", "c-1") {
			t.Errorf("append %d: %q expecting %d on %q; want %q expecting %d on the counter's subject",
				i, m.Subject, m.ExpectSeq, m.ExpectSubject, into.subject(), want)
		}
		if env := envelope(t, m); env.Aggregate != "tally" || env.AggregateID != "t-1" || env.Sequence != 1 {
			t.Errorf("append %d: envelope of %s %s event %d; want the first event of tally t-1", i, env.Aggregate, env.AggregateID, env.Sequence)
		}
	}
	if want := []string{events.Subject("counter", "c-1")}; fmt.Sprint(f.lastSeqs) != fmt.Sprint(want) {
		t.Errorf("caught up with %v, want %v: the subject the expectation is on", f.lastSeqs, want)
	}
}
