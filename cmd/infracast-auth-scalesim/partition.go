package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// The layouts of partitioned sessions.
//
// subjects: one stream, INFRACAST_AUTH as the service creates it, sessions on
// infracast.auth.session.<slot>.<id>. A replica reads it with one ordered
// consumer per filter — infracast.auth.user.> and each of its slots'
// infracast.auth.session.<slot>.> — at once: one consumer with all the
// filters (FilterSubjects) delivers some 70 times slower on nats-server
// 2.15.2 (measured here as multifilter, for a bounded time).
//
// streams: users in a stream of their own, each slot's sessions in another
// (INFRACAST_AUTH_SESSIONS_<slot>); a replica consumes the users stream and
// its slots' streams, one ordered consumer each, at once.
const (
	usersStream       = "INFRACAST_AUTH_USERS"
	usersSubjects     = "infracast.users"
	slotStreamPrefix  = "INFRACAST_AUTH_SESSIONS_"
	slotSubjectPrefix = "infracast.sessions"
)

// streamConfig is the event stream's configuration (events.OpenStore) for
// another name and subject space.
func streamConfig(name, subjects string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: name, Subjects: []string{subjects + ".>"}, Storage: jetstream.FileStorage, Replicas: 1,
		Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardNew, MaxMsgsPerSubject: -1,
		Duplicates: 2 * time.Minute, AllowAtomicPublish: true, AllowDirect: true, DenyDelete: true, DenyPurge: true,
	}
}

func sessionSubject(slot int, id string) string {
	return fmt.Sprintf("%s.%s.%d.%s", events.SubjectPrefix, domain.AggregateSession, slot, id)
}

// population of the partitioned stream, as loaded.
type loaded struct {
	users    int
	perSlot  []int // session events per slot
	sessions []int // sessions per slot
}

func (l loaded) total() int {
	t := l.users
	for _, n := range l.perSlot {
		t += n
	}
	return t
}

func runPartition(ctx context.Context, c *config) ([]result, error) {
	dir, err := os.MkdirTemp("", "infracast-scalesim-partition-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	t0 := time.Now()
	pop, err := fillPartitions(ctx, dir, c)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	total := pop.total()
	fmt.Fprintf(c.log, "   loaded %d users and %d sessions (%d events) in each layout in %s (no fsync)\n",
		pop.users, c.sessions/c.perUser*c.perUser, total, time.Since(t0).Round(time.Millisecond))

	ns, err := startServer(dir, true)
	if err != nil {
		return nil, err
	}
	defer stopServer(ns)
	nc, err := connect(ns, "replica")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	all := make([]int, c.slots)
	for s := range all {
		all[s] = s
	}
	// Warm the server's block caches and the page cache, unmeasured.
	if _, _, err := replaySubjects(ctx, js, all, pop); err != nil {
		return nil, err
	}

	type point struct {
		n, want, sessions int
		owned             []int
		modelBytes        []float64
		wall, cpu         map[string][]float64 // by layout, one per repeat, ms
	}
	var points []*point
	for _, n := range c.partitions {
		p := &point{n: n, want: pop.users, wall: map[string][]float64{}, cpu: map[string][]float64{}}
		for s := 0; s < c.slots; s += n { // partition 0 of n: the slots s with s mod n = 0
			p.owned = append(p.owned, s)
			p.want += pop.perSlot[s]
			p.sessions += pop.sessions[s]
		}
		points = append(points, p)
	}
	layouts := []string{"subjects", "streams"}
	// Each repeat replays every partition count in turn, so that a burst of
	// other load on the machine spreads over all of them.
	for rep := 0; rep < c.repeats; rep++ {
		for _, p := range points {
			for _, layout := range layouts {
				var (
					d time.Duration
					m *simModel
				)
				cpu0 := cpuTime()
				if layout == "subjects" {
					d, m, err = replaySubjects(ctx, js, p.owned, pop)
				} else {
					d, m, err = replayStreams(ctx, js, p.owned, pop)
				}
				cpu := cpuTime() - cpu0
				if err != nil {
					return nil, fmt.Errorf("%d partitions, %s: %w", p.n, layout, err)
				}
				if u, s := m.counts(); u != pop.users || s != p.sessions {
					return nil, fmt.Errorf("%d partitions, %s: replayed %d users and %d sessions, want %d and %d", p.n, layout, u, s, pop.users, p.sessions)
				}
				// The consumers' buffers go first, then the model.
				time.Sleep(50 * time.Millisecond)
				heap()
				with := heap()
				runtime.KeepAlive(m)
				m = nil
				p.modelBytes = append(p.modelBytes, float64(with-heap()))
				p.wall[layout] = append(p.wall[layout], d.Seconds()*1e3)
				p.cpu[layout] = append(p.cpu[layout], cpu.Seconds()*1e3)
			}
		}
	}
	var rs []result
	for _, p := range points {
		for _, layout := range layouts {
			med, lo, hi := spread(p.wall[layout])
			cpu, _, _ := spread(p.cpu[layout])
			what := "one stream, one ordered consumer per filter (users, each slot), at once"
			if layout == "streams" {
				what = "users stream + one stream per slot, one ordered consumer each, at once"
			}
			params := map[string]any{
				"partitions": p.n, "events": p.want, "events_share": float64(p.want) / float64(total),
				"events_per_s": float64(p.want) / (med / 1e3), "users": pop.users, "sessions": p.sessions,
				"cpu_ms": cpu,
			}
			if points[0].n == 1 {
				params["cpu_share"] = cpu / median(points[0].cpu[layout])
				// The same repeat's replay of everything, as the unit.
				var ratios []float64
				for i, w := range p.wall[layout] {
					ratios = append(ratios, w/points[0].wall[layout][i])
				}
				params["wall_share"] = median(ratios)
			}
			rs = append(rs, result{Name: fmt.Sprintf("partition.replay.%s.n%d", layout, p.n), Value: med, Unit: "ms", Min: ptr(lo), Max: ptr(hi),
				Samples: int64(c.repeats), Params: params, what: fmt.Sprintf("replay of 1 of %d partitions to caught up: %s", p.n, what)})
		}
		med, lo, hi := spread(p.modelBytes)
		rs = append(rs, result{Name: fmt.Sprintf("partition.memory.n%d", p.n), Value: med / 1e6, Unit: "MB/replica", Min: ptr(lo / 1e6), Max: ptr(hi / 1e6),
			Samples: int64(len(p.modelBytes)), Params: map[string]any{"partitions": p.n, "users": pop.users, "sessions": p.sessions},
			what: fmt.Sprintf("live heap of the replica's model: every user, %d sessions", p.sessions)})
		if p.n > 1 && c.multiLimit > 0 {
			cpu0 := cpuTime()
			got, d, err := replayMultiFilter(ctx, js, p.owned, pop, c.multiLimit)
			cpu := cpuTime() - cpu0
			if err != nil {
				return nil, fmt.Errorf("%d partitions, one consumer with every filter: %w", p.n, err)
			}
			rate := float64(got) / d.Seconds()
			rs = append(rs, result{Name: fmt.Sprintf("partition.replay.multifilter.n%d", p.n), Value: rate, Unit: "events/s", Samples: int64(got),
				Params: map[string]any{"partitions": p.n, "events": p.want, "filters": 1 + len(p.owned),
					"replay_ms_extrapolated": float64(p.want) / rate * 1e3, "cpu_us_per_event": cpu.Seconds() * 1e6 / float64(max(got, 1))},
				what: fmt.Sprintf("the subjects layout read by one consumer with all %d filters, for at most %s", 1+len(p.owned), c.multiLimit)})
		}
	}
	// memory = a + b × sessions held, least squares over the partition counts:
	// b is the cost of a session, a / users that of a user (with the maps'
	// fixed overhead).
	if len(points) >= 2 {
		var sx, sy, sxx, sxy, k float64
		for _, p := range points {
			y := median(p.modelBytes)
			x := float64(p.sessions)
			sx, sy, sxx, sxy, k = sx+x, sy+y, sxx+x*x, sxy+x*y, k+1
		}
		if den := k*sxx - sx*sx; den != 0 {
			b := (k*sxy - sx*sy) / den
			a := (sy - b*sx) / k
			rs = append(rs,
				result{Name: "partition.model.user", Value: a / float64(pop.users), Unit: "B/user", Samples: int64(len(points)),
					what: "the simulation's model (the shape before issue 15's compaction): per user, from the fit"},
				result{Name: "partition.model.session", Value: b, Unit: "B/session", Samples: int64(len(points)),
					what: "the same per session held"})
		}
	}
	return rs, nil
}

// fillPartitions loads the same population in both layouts, without fsync.
func fillPartitions(ctx context.Context, dir string, c *config) (loaded, error) {
	pop := loaded{perSlot: make([]int, c.slots), sessions: make([]int, c.slots)}
	ns, err := startServer(dir, false)
	if err != nil {
		return pop, err
	}
	defer stopServer(ns)
	nc, err := connect(ns, "load")
	if err != nil {
		return pop, err
	}
	defer nc.Close()
	if _, err := events.OpenStore(ctx, nc, events.StoreConfig{}); err != nil {
		return pop, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return pop, err
	}
	if _, err := js.CreateStream(ctx, streamConfig(usersStream, usersSubjects)); err != nil {
		return pop, err
	}
	for s := 0; s < c.slots; s++ {
		if _, err := js.CreateStream(ctx, streamConfig(fmt.Sprint(slotStreamPrefix, s), fmt.Sprint(slotSubjectPrefix, ".", s))); err != nil {
			return pop, err
		}
	}
	l := &loader{js: js}
	pub := l.pub
	err = population(c.sessions, c.perUser, c.slots, func(agg, id string, slot int, data []byte) error {
		if agg == domain.AggregateUser {
			pop.users++
			if err := pub(events.Subject(agg, id), data); err != nil {
				return err
			}
			return pub(usersSubjects+"."+id, data)
		}
		if pop.perSlot[slot]%2 == 0 { // two events per session, one after the other
			pop.sessions[slot]++
		}
		pop.perSlot[slot]++
		if err := pub(sessionSubject(slot, id), data); err != nil {
			return err
		}
		return pub(fmt.Sprintf("%s.%d.%s", slotSubjectPrefix, slot, id), data)
	})
	if err != nil {
		return pop, err
	}
	return pop, l.wait()
}

// replaySubjects replays, as a replica of the owned slots would, the users and
// those slots' sessions from the one stream: one consumer per filter, at once
// (one unfiltered consumer when every slot is owned).
func replaySubjects(ctx context.Context, js jetstream.JetStream, owned []int, pop loaded) (time.Duration, *simModel, error) {
	var parts []part
	if len(owned) == len(pop.perSlot) {
		parts = []part{{events.StreamName, nil, pop.total()}}
	} else {
		parts = append(parts, part{events.StreamName, []string{events.Subject(domain.AggregateUser, ">")}, pop.users})
		for _, s := range owned {
			parts = append(parts, part{events.StreamName, []string{sessionSubject(s, ">")}, pop.perSlot[s]})
		}
	}
	return replayParts(ctx, js, parts)
}

// replayStreams replays the users stream and the owned slots' streams at once.
func replayStreams(ctx context.Context, js jetstream.JetStream, owned []int, pop loaded) (time.Duration, *simModel, error) {
	parts := []part{{usersStream, nil, pop.users}}
	for _, s := range owned {
		parts = append(parts, part{fmt.Sprint(slotStreamPrefix, s), nil, pop.perSlot[s]})
	}
	return replayParts(ctx, js, parts)
}

// replayMultiFilter is replaySubjects with one consumer holding every filter,
// for at most limit: it returns the events delivered and the time taken.
func replayMultiFilter(ctx context.Context, js jetstream.JetStream, owned []int, pop loaded, limit time.Duration) (int, time.Duration, error) {
	filters := []string{events.Subject(domain.AggregateUser, ">")}
	want := pop.users
	for _, s := range owned {
		filters = append(filters, sessionSubject(s, ">"))
		want += pop.perSlot[s]
	}
	start := time.Now()
	n, err := consume(ctx, js, part{events.StreamName, filters, want}, newSimModel(), start.Add(limit))
	return n, time.Since(start), err
}

// part is what one consumer of a replay reads: a stream, filtered, and how
// many events that is.
type part struct {
	stream  string
	filters []string
	want    int
}

func replayParts(ctx context.Context, js jetstream.JetStream, parts []part) (time.Duration, *simModel, error) {
	m := newSimModel()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(parts))
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := consume(ctx, js, p, m, time.Time{}); err != nil {
				errs <- fmt.Errorf("%s %v: %w", p.stream, p.filters, err)
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	close(errs)
	return d, m, <-errs
}

// consume delivers p.want events through an ordered consumer, decodes each
// as the service does and applies it to m; it stops early at until (if set)
// and returns how many it applied.
func consume(ctx context.Context, js jetstream.JetStream, p part, m *simModel, until time.Time) (int, error) {
	cons, err := js.OrderedConsumer(ctx, p.stream, jetstream.OrderedConsumerConfig{FilterSubjects: p.filters})
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	tctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	stop := context.AfterFunc(tctx, it.Stop)
	defer stop()
	n := 0
	for ; n < p.want; n++ {
		if !until.IsZero() && n%64 == 0 && time.Now().After(until) {
			return n, nil
		}
		msg, err := it.Next()
		if err != nil {
			return n, fmt.Errorf("after %d of %d events: %w", n, p.want, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return n, err
		}
		env, ev, err := events.Decode(msg.Data())
		if err != nil {
			return n, err
		}
		m.apply(md.Sequence.Stream, env, ev)
	}
	return n, nil
}
