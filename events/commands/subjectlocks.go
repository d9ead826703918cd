package commands

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
)

// subjectLocks take turns among this replica's writers to one subject once
// they have run into each other. Every command's first attempt is
// optimistic and takes no lock (the hot path: a login, a refresh); after a
// conflict, the retries hold the subject's lock, so the writers of this
// replica go one at a time, each deciding on the state its predecessor
// wrote — while another replica's writers still conflict and retry as
// before. Without it, local writers kept defeating one another: each
// attempt spans an fsync'd append (3–4 ms), and an outside check (18w: 8
// threads refreshing one session) saw 36 of 4,000 refreshes answered
// ErrTooManyConflicts, one after 25 conflicts in a row. A first attempt
// waits its turn too while the subject's lock is held or waited for
// (busy): it would only conflict, and, winning, overtake the waiters.
//
// An entry lives while a writer holds or waits for it (bounded by the
// requests in flight); the map's mutex is held for map operations only,
// never across an append. The turns are first come, first served (a
// channel's senders queue in order).
type subjectLocks struct {
	// entries is len(m), read without the mutex: 0, as nearly always, and
	// no first attempt needs to look.
	entries atomic.Int64
	mu      sync.Mutex
	m       map[string]*subjectLock
}

// subjectLock is one subject's lock: the turn is a value in turn.
type subjectLock struct {
	turn chan struct{} // capacity 1: full while a writer holds the lock
	refs int           // writers holding or waiting (under subjectLocks.mu)
}

// busy reports whether a writer of this replica holds or waits for the
// lock of one of subjects. No lock, no allocation while no subject is
// locked anywhere.
func (l *subjectLocks) busy(subjects ...string) bool {
	if l.entries.Load() == 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, sub := range subjects {
		if _, ok := l.m[sub]; ok {
			return true
		}
	}
	return false
}

// lock waits for subject's turn, while ctx lasts (its error: the waiter is
// gone and the entry released), and returns its unlock.
func (l *subjectLocks) lock(ctx context.Context, subject string) (unlock func(), err error) {
	l.mu.Lock()
	e := l.m[subject]
	if e == nil {
		if l.m == nil {
			l.m = map[string]*subjectLock{}
		}
		e = &subjectLock{turn: make(chan struct{}, 1)}
		l.m[subject] = e
		l.entries.Add(1)
	}
	e.refs++
	l.mu.Unlock()
	select {
	case e.turn <- struct{}{}:
		return func() {
			<-e.turn
			l.release(subject, e)
		}, nil
	case <-ctx.Done():
		l.release(subject, e)
		return nil, ctx.Err()
	}
}

// release forgets a holder or waiter of e, and e once it has none.
func (l *subjectLocks) release(subject string, e *subjectLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.refs--; e.refs == 0 {
		delete(l.m, subject)
		l.entries.Add(-1)
	}
}

// turns are the subject locks one command holds. Its zero value holds none;
// release gives them all back.
type turns struct {
	locks   *subjectLocks
	held    []string // sorted
	unlocks []func()
}

// covers reports whether t holds the locks of all subjects.
func (t *turns) covers(subjects []string) bool {
	for _, sub := range subjects {
		if _, ok := slices.BinarySearch(t.held, sub); !ok {
			return false
		}
	}
	return true
}

// cover makes t hold the locks of subjects (besides those it holds). When
// it needs one it does not hold, it gives back all it holds and takes the
// union in sorted order: every command takes its locks in that order and
// waits for none while holding one out of it, so none waits for another
// that waits for it.
func (t *turns) cover(ctx context.Context, subjects ...string) error {
	if t.covers(subjects) {
		return nil
	}
	want := slices.Concat(t.held, subjects)
	slices.Sort(want)
	want = slices.Compact(want)
	t.release()
	for _, sub := range want {
		unlock, err := t.locks.lock(ctx, sub)
		if err != nil {
			t.release()
			return err
		}
		t.held = append(t.held, sub)
		t.unlocks = append(t.unlocks, unlock)
	}
	return nil
}

// release gives back every lock t holds.
func (t *turns) release() {
	for i := len(t.unlocks) - 1; i >= 0; i-- {
		t.unlocks[i]()
	}
	t.held, t.unlocks = t.held[:0], t.unlocks[:0]
}

// expected lists the subjects whose sequences evs' appends expect (each
// event's own, or its ExpectSubject's): the subjects a conflict of theirs
// is on.
func expected(evs []pending) []string {
	out := make([]string, 0, len(evs))
	for _, p := range evs {
		if p.expectOn != "" {
			out = append(out, p.expectOn)
		} else {
			out = append(out, ref{p.aggregate, p.id}.subject())
		}
	}
	return out
}
