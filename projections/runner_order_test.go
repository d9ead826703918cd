package projections_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/projections"
)

// sliceSource delivers records from memory: the first stop of them, then (on
// the next Consume) the rest, as after a reconnection.
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
		if err := fn(r); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestRunnerAppliesInStreamOrder: events decoded in parallel are applied in
// stream order, none lost or repeated, across a restart of the consumer, and
// an undecodable one is skipped in its place. Model.Apply ignores a sequence
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
	r := projections.NewRunner(src, model, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if err := r.WaitFor(wctx, uint64(len(src.recs))); err != nil {
		t.Fatalf("applied %d of %d: %v", r.Applied(), len(src.recs), err)
	}
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
