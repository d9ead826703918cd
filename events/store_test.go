package events_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/natstest"
)

func openStore(t *testing.T) *events.Store {
	t.Helper()
	return natstest.EmbeddedStore(t, events.EmbeddedOptions{SyncAlways: true})
}

func TestAppendExpectsSubjectSequence(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	subj := events.Subject("user", "user-1")
	seq, err := st.Append(ctx, events.Message{Subject: subj, ExpectSeq: 0, ID: "c1", Data: []byte(`{}`)})
	if err != nil || seq != 1 {
		t.Fatalf("first append: seq=%d err=%v", seq, err)
	}
	// A second "must be new" append conflicts.
	if _, err := st.Append(ctx, events.Message{Subject: subj, ExpectSeq: 0, ID: "c2", Data: []byte(`{}`)}); !errors.Is(err, events.ErrConflict) {
		t.Fatalf("want conflict, got %v", err)
	}
	// The same message ID again is a duplicate: stored once.
	seq, err = st.Append(ctx, events.Message{Subject: subj, ExpectSeq: 0, ID: "c1", Data: []byte(`{}`)})
	if err != nil || seq != 1 {
		t.Fatalf("duplicate append: seq=%d err=%v", seq, err)
	}
	seq, err = st.Append(ctx, events.Message{Subject: subj, ExpectSeq: 1, ID: "c3", Data: []byte(`{}`)})
	if err != nil || seq != 2 {
		t.Fatalf("second append: seq=%d err=%v", seq, err)
	}
	if last, _ := st.LastSequence(ctx, subj); last != 2 {
		t.Fatalf("last sequence %d", last)
	}
}

// TestAppendExpectsAnotherSubjectsSequence: a message on a new subject decided
// against another subject's state (a session started against its user) is
// stored only while that subject has not moved, and a retry of one that was
// stored is recognised even after it has.
func TestAppendExpectsAnotherSubjectsSequence(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	user, s1, s2 := events.Subject("user", "u"), events.Subject("session", "s1"), events.Subject("session", "s2")
	useq, err := st.Append(ctx, events.Message{Subject: user, ID: "u1", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	started := events.Message{Subject: s1, ExpectSeq: useq, ExpectSubject: user, ID: "s1", Data: []byte(`{}`)}
	seq, err := st.Append(ctx, started)
	if err != nil || seq != 2 {
		t.Fatalf("session against the current user: seq=%d err=%v", seq, err)
	}
	// The user moves on: a decision on the old state conflicts and stores nothing.
	if _, err := st.Append(ctx, events.Message{Subject: user, ExpectSeq: useq, ID: "u2", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, events.Message{Subject: s2, ExpectSeq: useq, ExpectSubject: user, ID: "s2", Data: []byte(`{}`)}); !errors.Is(err, events.ErrConflict) {
		t.Fatalf("session against a stale user: want conflict, got %v", err)
	}
	if last, _ := st.LastSequence(ctx, s2); last != 0 {
		t.Fatalf("the refused session was stored at %d", last)
	}
	// A retry of the stored one, with its now stale expectation, is its success.
	if seq, err := st.Append(ctx, started); err != nil || seq != 2 {
		t.Fatalf("retry of a stored message: seq=%d err=%v", seq, err)
	}
	// The expectation cannot be moved inside a batch.
	if _, err := st.Append(ctx, started, events.Message{Subject: user, ID: "u3", Data: []byte(`{}`)}); err == nil {
		t.Fatal("a batch with ExpectSubject was accepted")
	}
}

// TestAppendExpectsEverySubjectOfAKind: an expectation on a subject with a
// "*" token (every signing key's, for a decision on which key signs) is the
// last sequence of any subject it matches: a message on a new subject among
// them stored since — another replica's new key — is a conflict, and
// LastSequence answers it for the catch-up (outside check 20r4).
func TestAppendExpectsEverySubjectOfAKind(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	all, k1, k2, k3 := events.Subject("signingkey", "*"), events.Subject("signingkey", "k1"), events.Subject("signingkey", "k2"), events.Subject("signingkey", "k3")
	if _, err := st.Append(ctx, events.Message{Subject: events.Subject("user", "u"), ID: "u1", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	seq, err := st.Append(ctx, events.Message{Subject: k1, ExpectSeq: 0, ExpectSubject: all, ID: "k1", Data: []byte(`{}`)})
	if err != nil {
		t.Fatalf("first of its kind: %v", err)
	}
	// Another subject of the kind lands: a decision on the set before it conflicts.
	if _, err := st.Append(ctx, events.Message{Subject: k2, ID: "k2", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, events.Message{Subject: k3, ExpectSeq: seq, ExpectSubject: all, ID: "k3", Data: []byte(`{}`)}); !errors.Is(err, events.ErrConflict) {
		t.Fatalf("decided before another subject of the kind moved: want conflict, got %v", err)
	}
	last, err := st.LastSequence(ctx, all)
	if err != nil || last != seq+1 {
		t.Fatalf("last sequence of the kind: %d %v, want %d", last, err, seq+1)
	}
	if _, err := st.Append(ctx, events.Message{Subject: k3, ExpectSeq: last, ExpectSubject: all, ID: "k3-again", Data: []byte(`{}`)}); err != nil {
		t.Fatalf("decided again on the kind's last sequence: %v", err)
	}
}

// TestAppendIntoASubjectWithHistoryExpectingAnother: a message decided
// against another subject's state may go to a subject that has many
// messages after that state's sequence (mfa.reset, decided on the user,
// onto the user's factors). A retry of it once stored is its success,
// though the other subject has moved on: before, the store looked for it
// among the first 8 messages after the expected sequence only, and a
// caller's retry was told "conflict" (found checking 13r2's fix).
func TestAppendIntoASubjectWithHistoryExpectingAnother(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	user, factors := events.Subject("user", "u"), events.Subject("mfa", "u")
	useq, err := st.Append(ctx, events.Message{Subject: user, ID: "u1", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	last := uint64(0)
	for i := range 12 {
		if last, err = st.Append(ctx, events.Message{Subject: factors, ExpectSeq: last, ID: fmt.Sprintf("m%d", i), Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	reset := events.Message{Subject: factors, ExpectSeq: useq, ExpectSubject: user, ID: "reset", Data: []byte(`{}`)}
	seq, err := st.Append(ctx, reset)
	if err != nil || seq != last+1 {
		t.Fatalf("reset decided on the current user: seq=%d err=%v, want %d", seq, err, last+1)
	}
	if _, err := st.Append(ctx, events.Message{Subject: user, ExpectSeq: useq, ID: "u2", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Append(ctx, reset); err != nil || got != seq {
		t.Fatalf("retry of the stored reset: seq=%d err=%v, want %d", got, err, seq)
	}
}

func TestAppendBatchIsAtomic(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	a, b := events.Subject("username", "alice"), events.Subject("user", "user-a")
	seq, err := st.Append(ctx,
		events.Message{Subject: a, ID: "r1", Data: []byte(`{"a":1}`)},
		events.Message{Subject: b, ID: "u1", Data: []byte(`{"b":1}`)})
	if err != nil || seq != 2 {
		t.Fatalf("batch: seq=%d err=%v", seq, err)
	}
	// The reservation exists, so a second batch fails whole: nothing of it is stored.
	c := events.Subject("user", "user-b")
	_, err = st.Append(ctx,
		events.Message{Subject: a, ID: "r2", Data: []byte(`{}`)},
		events.Message{Subject: c, ID: "u2", Data: []byte(`{}`)})
	if !errors.Is(err, events.ErrConflict) {
		t.Fatalf("want conflict, got %v", err)
	}
	if last, _ := st.LastSequence(ctx, c); last != 0 {
		t.Fatalf("half-applied batch: %s has seq %d", c, last)
	}
	if head, _ := st.Head(ctx); head != 2 {
		t.Fatalf("head %d, want 2", head)
	}
}

func TestOpenStoreConcurrently(t *testing.T) {
	ns, err := events.StartEmbedded(events.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			nc, err := events.ConnectEmbedded(ns)
			if err != nil {
				errs <- err
				return
			}
			defer nc.Close()
			_, err = events.OpenStore(context.Background(), nc, events.StoreConfig{})
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("replica %d could not open the stream: %v", i, err)
		}
	}
}
