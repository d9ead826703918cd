package projections_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/projections"
)

// sliceSource delivers records from memory: the first stop of them, then (on
// the next Consume) the rest, as after a reconnection. Each says how many
// follow it, as the store's do (Record.Pending): the runner hands records
// over in batches until one has none after it.
type sliceSource struct {
	recs []events.Record
	stop int
	runs int
}

func (s *sliceSource) Head(context.Context) (uint64, error) { return uint64(len(s.recs)), nil }

func (s *sliceSource) Consume(ctx context.Context, start uint64, fn func(events.Record) error) error {
	s.runs++
	for _, r := range s.recs[start-1:] {
		if s.runs == 1 && r.StreamSeq > uint64(s.stop) {
			return errors.New("connection lost")
		}
		r.Pending = uint64(len(s.recs)) - r.StreamSeq
		if err := fn(r); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

// runAll runs a runner of model over src until it has applied every record,
// and stops it when the test ends.
func runAll(t *testing.T, src *sliceSource, model *projections.Model, log *slog.Logger) {
	t.Helper()
	r := projections.NewRunner(src, model, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if err := r.WaitFor(wctx, uint64(len(src.recs))); err != nil {
		t.Fatalf("applied %d of %d: %v", r.Applied(), len(src.recs), err)
	}
}

// TestRunnerAppliesInStreamOrder: events decoded in parallel, in batches, are
// applied in stream order, none lost or repeated, across a restart of the
// consumer (in the middle of a batch: what was delivered before it is
// applied), and an undecodable one is skipped in its place. Model.Apply ignores a sequence
// at or below the last applied, so any reordering would lose events.
func TestRunnerAppliesInStreamOrder(t *testing.T) {
	const users = 3000
	src := &sliceSource{stop: 1234}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	add := func(data []byte) {
		src.recs = append(src.recs, events.Record{StreamSeq: uint64(len(src.recs) + 1), Data: data})
	}
	for i := 0; i < users; i++ {
		id := fmt.Sprintf("user-%d", i)
		for _, e := range []domain.Event{
			domain.UserCreated{UserID: id, Username: id, CreatedAt: at},
			domain.UserRoleGranted{UserID: id, Tenant: "prod", Role: domain.RoleEditor},
			domain.UserRoleRevoked{UserID: id, Tenant: "prod"},
			domain.UserRoleGranted{UserID: id, Tenant: "staging", Role: domain.RoleViewer},
		} {
			b, err := events.Encode("evt", domain.AggregateUser, id, 1, at, events.Meta{Actor: events.System}, e)
			if err != nil {
				t.Fatal(err)
			}
			add(b)
		}
		if i == 777 {
			add([]byte("not an event"))
		}
	}
	model := projections.NewModel()
	runAll(t, src, model, nil)
	if model.Skipped() != 1 || src.runs != 2 {
		t.Fatalf("%d skipped, %d consumer runs", model.Skipped(), src.runs)
	}
	for i := 0; i < users; i++ {
		u, _, ok := model.User(fmt.Sprintf("user-%d", i))
		if !ok || u.Version != 4 || len(u.Tenants) != 1 || u.Tenants["staging"] != domain.RoleViewer {
			t.Fatalf("user-%d: %v %+v", i, ok, u)
		}
	}
}

// BenchmarkReplayFromMemory: decode and apply of a 100,000-event stream held
// in memory (no NATS): the runner's own share of a replay at start.
func BenchmarkReplayFromMemory(b *testing.B) {
	src := &sliceSource{stop: 1 << 30}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	meta := events.Meta{Actor: events.Actor{Type: "user", ID: "user-01JBENCH"}, Request: events.RequestInfo{IP: "203.0.113.7", UserAgent: "bench/1.0"}}
	add := func(agg, id string, e domain.Event) {
		d, err := events.Encode("evt-"+id, agg, id, 1, at, meta, e)
		if err != nil {
			b.Fatal(err)
		}
		src.recs = append(src.recs, events.Record{StreamSeq: uint64(len(src.recs) + 1), Data: d})
	}
	for u := 0; len(src.recs) < 100_000; u++ {
		uid := fmt.Sprintf("user-%d", u)
		add(domain.AggregateUser, uid, domain.UserCreated{UserID: uid, Username: uid, CreatedAt: at})
		for s := 0; s < 10; s++ {
			sid := fmt.Sprintf("sess-%d-%d", u, s)
			add(domain.AggregateSession, sid, domain.SessionStarted{SessionID: sid, UserID: uid, RefreshTokenHash: sid, StartedAt: at, ExpiresAt: at.Add(time.Hour)})
			for k := 0; k < 6; k++ {
				add(domain.AggregateSession, sid, domain.SessionRefreshed{SessionID: sid, TokenID: fmt.Sprintf("tok-%d-%d-%d", u, s, k), At: at})
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		src.runs = 0
		r := projections.NewRunner(src, projections.NewModel(), nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		start := time.Now()
		go func() { defer close(done); r.Run(ctx) }()
		if err := r.WaitFor(context.Background(), uint64(len(src.recs))); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(src.recs))/time.Since(start).Seconds(), "events/s")
		cancel()
		<-done
	}
}

// chanSource delivers the records sent on recs, then fails with the error
// sent on fail.
type chanSource struct {
	recs chan events.Record
	fail chan error
	head uint64
}

func (s *chanSource) Head(context.Context) (uint64, error) { return s.head, nil }

func (s *chanSource) Consume(ctx context.Context, start uint64, fn func(events.Record) error) error {
	for {
		select {
		case r := <-s.recs:
			if r.StreamSeq < start {
				continue
			}
			if err := fn(r); err != nil {
				return err
			}
		case err := <-s.fail:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// TestRunnerBatchesWaitForNothing: a live event (none after it in the stream)
// is applied as it comes, not held for a batch to fill; records said to have
// others after them are applied once those come, or at once when the
// consumer stops before they do.
func TestRunnerBatchesWaitForNothing(t *testing.T) {
	src := &chanSource{recs: make(chan events.Record), fail: make(chan error)}
	r := projections.NewRunner(src, projections.NewModel(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rec := func(seq, pending uint64) events.Record {
		id := fmt.Sprintf("user-%d", seq)
		b, err := events.Encode("evt", domain.AggregateUser, id, 1, at, events.Meta{Actor: events.System}, domain.UserCreated{UserID: id, Username: id, CreatedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		return events.Record{StreamSeq: seq, Data: b, Pending: pending}
	}
	waitFor := func(seq uint64) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer wcancel()
		if err := r.WaitFor(wctx, seq); err != nil {
			t.Fatalf("WaitFor(%d): %v (applied %d)", seq, err, r.Applied())
		}
	}
	// Live: each applied before the next is sent.
	for seq := uint64(1); seq <= 5; seq++ {
		src.recs <- rec(seq, 0)
		waitFor(seq)
	}
	// Two said to have more after them: held until the third comes.
	src.recs <- rec(6, 2)
	src.recs <- rec(7, 1)
	src.recs <- rec(8, 0)
	waitFor(8)
	// One said to have another after it, then the consumer fails: applied
	// as the consumer stops, and consuming starts again after it.
	src.recs <- rec(9, 1)
	src.fail <- errors.New("connection lost")
	waitFor(9)
	src.recs <- rec(10, 0)
	waitFor(10)
	if _, _, ok := r.Model().User("user-10"); !ok || r.Model().Skipped() != 0 {
		t.Fatalf("user-10 %v, %d skipped", ok, r.Model().Skipped())
	}
}

// TestRunnerLogsUnknownTypesOnce: events of a type this build does not know
// (a newer build wrote them, as during a rolling upgrade) are skipped and
// logged once per type at WARN; an event that does not decode at all is an
// ERROR each time. All are counted.
func TestRunnerLogsUnknownTypesOnce(t *testing.T) {
	src := &sliceSource{stop: 1 << 30}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	known, err := events.Encode("evt", domain.AggregateUser, "user-1", 1, at, events.Meta{Actor: events.System},
		domain.UserCreated{UserID: "user-1", Username: "u1", CreatedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	future := bytes.Replace(known, []byte(`"type":"user.created"`), []byte(`"type":"user.from_the_future"`), 1)
	if bytes.Equal(future, known) {
		t.Fatalf("no type member to replace in %s", known)
	}
	for _, data := range [][]byte{known, future, future, []byte("not an event"), future, []byte("not an event")} {
		src.recs = append(src.recs, events.Record{StreamSeq: uint64(len(src.recs) + 1), Data: data})
	}
	var logs bytes.Buffer
	model := projections.NewModel()
	runAll(t, src, model, slog.New(slog.NewTextHandler(&logs, nil)))
	out := logs.String()
	if n := strings.Count(out, "level=WARN msg=\"skipping events of a type this build does not know"); n != 1 {
		t.Errorf("%d WARN lines for the unknown type, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "level=ERROR msg=\"skipping undecodable event\""); n != 2 {
		t.Errorf("%d ERROR lines for the undecodable events, want 2:\n%s", n, out)
	}
	if model.Skipped() != 5 {
		t.Errorf("%d skipped, want 5", model.Skipped())
	}
}
