package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/http/service"
	"github.com/infracast/auth/projections"
)

// The audit case (issue 16): a generated year of history (historyGen: 10k
// users, 500 tenants, 100k API keys, role grants and removals,
// deactivations, sessions and revocations over 365 days) in the stream of a
// running service; the latency of the questions an access review asks, over
// HTTP as clients ask them; and, in a process of its own, the read models'
// memory and start-up from a snapshot with this history, against the same
// without the audit journal and access history.
var auditEvents = flag.Int("audit-events", 1_000_000, "events in the audit case's generated year of history")

const auditChildEnv = "INFRACAST_BENCH_AUDIT_CHILD"

func caseAudit(ctx context.Context, b *bench) ([]result, error) {
	if os.Getenv(auditChildEnv) != "" {
		return auditModels(b)
	}
	rs, err := auditQueries(ctx, b)
	if err != nil {
		return rs, err
	}
	more, err := caseInChild(ctx, b, "audit", auditChildEnv, []string{"-audit-events", strconv.Itoa(*auditEvents)}, map[string]string{
		"audit.memory":  "the same history without the audit journal and access history",
		"audit.startup": "restoring the snapshot of the same history without them",
	}, true)
	return append(rs, more...), err
}

// auditQueries fills a stream with the history, starts the service on it and
// measures the access and audit questions' latencies, one at a time.
func auditQueries(ctx context.Context, b *bench) ([]result, error) {
	password := commands.NewID("pw")
	// Filled without fsync on every write: the history is the setting, not
	// what is measured.
	es, err := openEmbeddedStore(ctx, "audit", events.EmbeddedOptions{Listen: "127.0.0.1:-1",
		Users: []events.EmbeddedUser{{Name: events.EmbeddedReplicaUser, Password: password}}},
		func(ns *server.Server) (*nats.Conn, error) {
			return nats.Connect(ns.ClientURL(), nats.UserInfo(events.EmbeddedReplicaUser, password))
		})
	if err != nil {
		return nil, err
	}
	defer es.close()
	st, ns := es.st, es.ns
	// The service starts on the empty stream (its bootstrap admin is the
	// reader), then the history is written and it follows.
	in, err := startInstance(ctx, func(c *service.Config) {
		c.NATSURLs, c.NATSUser, c.NATSPassword = []string{ns.ClientURL()}, events.EmbeddedReplicaUser, password
		c.MasterKey, c.JWTKeys = randomKey(), [][]byte{randomKey()}
	})
	if err != nil {
		return nil, err
	}
	defer in.close()
	t0 := time.Now()
	end := time.Now().UTC().Add(-time.Hour)
	g := newHistoryGen(16, *auditEvents, end)
	js := st.JetStream()
	if err := g.run(*auditEvents, func(h historyEvent) error {
		data, err := events.Encode(commands.NewID("evt"), h.agg, h.id, h.seq, h.at, h.meta, h.ev)
		if err != nil {
			return err
		}
		for {
			_, err = js.PublishAsync(events.Subject(h.agg, h.id), data)
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				return err
			}
			select { // a busy machine: let the acknowledgements catch up
			case <-js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				return err
			}
		}
	}); err != nil {
		return nil, err
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(10 * time.Minute):
		return nil, errors.New("publishing the history did not complete")
	}
	head, err := st.Head(ctx)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	err = in.svc.Runner.WaitFor(wctx, head)
	cancel()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(b.log, "   %d events of history (%d users, %d API keys, %d tenants) written and applied by the service in %s\n",
		g.n, len(g.users), len(g.keys), len(g.tenants), time.Since(t0).Round(time.Millisecond))
	admin, err := in.login(adminUser, adminPassword)
	if err != nil {
		return nil, err
	}

	rng := rand.New(rand.NewPCG(7, 7))
	moment := func() string {
		return g.start.Add(time.Duration(rng.Int64N(int64(end.Sub(g.start))))).Format(time.RFC3339Nano)
	}
	measure := func(n int, path func() string, check func([]byte) error) (sample, error) {
		var s sample
		for range n {
			p := path()
			var raw json.RawMessage
			start := time.Now()
			if err := in.call("GET", p, admin.Token, nil, &raw, 200); err != nil {
				return s, err
			}
			s.lat = append(s.lat, time.Since(start))
			s.n++
			if err := check(raw); err != nil {
				return s, fmt.Errorf("%s: %w", p, err)
			}
		}
		return s, nil
	}
	var nonEmpty int
	tenantAccess, err := measure(1000, func() string {
		return "/api/v1/tenants/" + g.tenants[rng.IntN(len(g.tenants))] + "/access?permission=findings:read&at=" + url.QueryEscape(moment())
	}, func(raw []byte) error {
		var r struct {
			Principals []json.RawMessage `json:"principals"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		if len(r.Principals) > 0 {
			nonEmpty++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	userAccess, err := measure(1000, func() string {
		return "/api/v1/users/" + g.users[rng.IntN(len(g.users))].id + "/access?at=" + url.QueryEscape(moment())
	}, func([]byte) error { return nil })
	if err != nil {
		return nil, err
	}
	var pageSizes int
	auditPage, err := measure(300, func() string {
		q := url.Values{"limit": {"100"}}
		switch rng.IntN(4) {
		case 0:
			q.Set("tenant", g.tenants[rng.IntN(len(g.tenants))])
		case 1:
			q.Set("type", "apikey.")
			q.Set("since", moment())
		case 2:
			q.Set("actor", g.users[rng.IntN(50)].id) // a platform admin: they act all year
			q.Set("order", "desc")
		default:
			q.Set("tenant", g.tenants[rng.IntN(len(g.tenants))])
			q.Set("type", "user.")
			q.Set("order", "desc")
		}
		return "/api/v1/audit/events?" + q.Encode()
	}, func(raw []byte) error {
		var r struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		pageSizes += len(r.Events)
		return nil
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(b.log, "   tenant access answers listing someone: %d of 1000; audit pages: %.0f events on average\n",
		nonEmpty, float64(pageSizes)/300)
	if nonEmpty == 0 || pageSizes == 0 {
		return nil, errors.New("the access and audit answers are empty: the history was not read")
	}
	return []result{
		latencyResult("audit.access_tenant", "GET /tenants/{t}/access?permission=findings:read&at= (500 tenants, a random moment of the year)", &tenantAccess, 20),
		latencyResult("audit.access_user", "GET /users/{id}/access?at=", &userAccess, 5),
		latencyResult("audit.page", "GET /audit/events, a filtered page of 100", &auditPage, 50),
	}, nil
}

// latencyResult reports a sample's p99 in milliseconds against a bound; it
// has no baseline, what is what the requests are.
func latencyResult(name, what string, s *sample, p99Below float64) result {
	p99 := float64(s.quantile(0.99)) / float64(time.Millisecond)
	r := result{Name: name, Value: p99, Unit: "ms p99", Samples: s.n, P50: us(s.quantile(0.5)), P99: us(s.quantile(0.99)), baselineName: what, noBaseline: true}
	r.valueBelow(p99Below)
	return r
}

// auditModels (in the child): the history applied to a model with the audit
// journal and access history and to one without; resident heap and the time
// a fresh model takes to restore each one's snapshot.
func auditModels(b *bench) ([]result, error) {
	// The audit journal's filled chunks go to a file, as the service has
	// them (DataDir/audit-journal).
	journalDir, err := os.MkdirTemp("", "infracast-auth-bench-journal-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(journalDir)
	newModel := func(history bool) *projections.Model {
		m := projections.NewModel()
		m.NoHistory, m.JournalDir = !history, journalDir
		return m
	}
	build := func(history bool) (*projections.Model, int64, error) {
		before := heap()
		m := newModel(history)
		var seq uint64
		g := newHistoryGen(16, *auditEvents, time.Now().UTC().Add(-time.Hour))
		err := g.run(*auditEvents, func(h historyEvent) error {
			seq++
			m.Apply(seq, events.Envelope{Type: h.ev.EventType(), Version: 1, Aggregate: h.agg, AggregateID: strings.Clone(h.id), Sequence: h.seq,
				OccurredAt: h.at, Actor: h.meta.Actor, Request: h.meta.Request}, h.ev)
			return nil
		})
		return m, heap() - before, err
	}
	startup := func(m *projections.Model) (time.Duration, int, error) {
		f := m.Freeze()
		var buf bytes.Buffer
		_, err := f.WriteTo(&buf)
		f.Release()
		if err != nil {
			return 0, 0, err
		}
		size := buf.Len()
		best := time.Duration(1 << 62)
		for range 3 {
			fresh := newModel(!m.NoHistory)
			t0 := time.Now()
			if _, err := fresh.RestoreFrom(bytes.NewReader(buf.Bytes())); err != nil {
				return 0, 0, err
			}
			best = min(best, time.Since(t0))
		}
		return best, size, nil
	}
	var heaps [2]int64
	var starts [2]time.Duration
	var sizes [2]int
	for i, history := range []bool{false, true} {
		m, h, err := build(history)
		if err != nil {
			return nil, err
		}
		heaps[i] = h
		if starts[i], sizes[i], err = startup(m); err != nil {
			return nil, err
		}
		fmt.Fprintf(b.log, "   history %v: heap %.1f MB, snapshot %.1f MB restored in %s\n", history, float64(h)/1e6, float64(sizes[i])/1e6, starts[i].Round(time.Millisecond))
	}
	mem := result{Name: "audit.memory", Value: float64(heaps[1]) / 1e6, Unit: "MB heap", Baseline: float64(heaps[0]) / 1e6,
		Ratio: ratio(float64(heaps[1]), float64(heaps[0])), Samples: int64(*auditEvents), baselineName: "the same history without the audit journal and access history"}
	mem.ratioBelow(1.25)
	st := result{Name: "audit.startup", Value: starts[1].Seconds(), Unit: "s restore", Baseline: starts[0].Seconds(),
		Ratio: ratio(starts[1].Seconds(), starts[0].Seconds()), Samples: int64(*auditEvents), baselineName: "restoring the snapshot of the same history without them"}
	st.ratioBelow(1.25)
	return []result{mem, st}, nil
}

// ratioBelow: the target is a ratio at most maxRatio (a cost against its baseline).
func (r *result) ratioBelow(maxRatio float64) {
	ok := r.Ratio <= maxRatio
	r.Target, r.OK = fmt.Sprintf("ratio <= %.2f", maxRatio), &ok
}
