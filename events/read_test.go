package events_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/infracast/auth/events"
)

// TestReadSeqs: events come back by stream sequence, in the order asked,
// however many and in whatever order; a sequence the stream does not hold is
// left out.
func TestReadSeqs(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	const n = 300
	subjects := []string{events.Subject("user", "u1"), events.Subject("apikey", "k1"), events.Subject("session", "s1")}
	last := map[string]uint64{}
	for i := 1; i <= n; i++ {
		subj := subjects[i%len(subjects)]
		seq, err := st.Append(ctx, events.Message{Subject: subj, ExpectSeq: last[subj], ID: fmt.Sprintf("c%d", i), Data: fmt.Appendf(nil, `{"n":%d}`, i)})
		if err != nil || seq != uint64(i) {
			t.Fatalf("append %d: seq=%d err=%v", i, seq, err)
		}
		last[subj] = seq
	}
	want := []uint64{250, 3, 1, 300, 299, 17, 17, 100}
	got, err := st.ReadSeqs(ctx, append(want, n+1, n+50))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i, r := range got {
		if r.StreamSeq != want[i] || string(r.Data) != fmt.Sprintf(`{"n":%d}`, want[i]) || r.Subject != subjects[want[i]%3] {
			t.Fatalf("event %d: seq %d subject %s data %s, want seq %d", i, r.StreamSeq, r.Subject, r.Data, want[i])
		}
	}
	all := make([]uint64, n)
	for i := range all {
		all[i] = uint64(n - i)
	}
	got, err = st.ReadSeqs(ctx, all)
	if err != nil || len(got) != n || got[0].StreamSeq != n || got[n-1].StreamSeq != 1 {
		t.Fatalf("every event: %d read, err %v", len(got), err)
	}
	if got, err := st.ReadSeqs(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("no sequence: %v %v", got, err)
	}

	// A context that has ended is an error, not a short answer.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := st.ReadSeqs(done, all); err == nil {
		t.Fatal("a cancelled read answered")
	}
}

// TestReadSubject: every event of one subject, oldest first, across several
// batches, and nothing of the others.
func TestReadSubject(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	a, b := events.Subject("session", "sess-a"), events.Subject("session", "sess-b")
	var lastA, lastB uint64
	var wantA []uint64
	for i := 1; i <= 700; i++ { // more than two batches of a
		subj, last := a, &lastA
		if i%4 == 0 {
			subj, last = b, &lastB
		}
		seq, err := st.Append(ctx, events.Message{Subject: subj, ExpectSeq: *last, ID: fmt.Sprintf("c%d", i), Data: fmt.Appendf(nil, `{"n":%d}`, i)})
		if err != nil {
			t.Fatal(err)
		}
		*last = seq
		if subj == a {
			wantA = append(wantA, seq)
		}
	}
	for _, upTo := range []uint64{0, lastA} {
		got, err := st.ReadSubject(ctx, a, upTo)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(wantA) {
			t.Fatalf("upTo %d: %d events of a, want %d", upTo, len(got), len(wantA))
		}
		for i, r := range got {
			if r.StreamSeq != wantA[i] || r.Subject != a || string(r.Data) != fmt.Sprintf(`{"n":%d}`, wantA[i]) {
				t.Fatalf("upTo %d: event %d: seq %d %s %s, want seq %d", upTo, i, r.StreamSeq, r.Subject, r.Data, wantA[i])
			}
		}
	}
	if got, err := st.ReadSubject(ctx, events.Subject("session", "sess-none"), 0); err != nil || len(got) != 0 {
		t.Fatalf("a subject without events: %d events, %v", len(got), err)
	}
}
