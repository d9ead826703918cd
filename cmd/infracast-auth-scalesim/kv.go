package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// kvBucket holds the cold sessions: key = session ID, value = coldSession.
const kvBucket = "INFRACAST_AUTH_SESSIONS"

var kvConfig = jetstream.KeyValueConfig{
	Bucket: kvBucket, Description: "cold sessions (scale simulation)",
	History: 1, Storage: jetstream.FileStorage, Replicas: 1,
}

// kvSide is two replicas' view of the server: A writes, B reads and watches,
// each on its own TCP connection; both also hold today's event store.
type kvSide struct {
	ncA, ncB       *nats.Conn
	kvA, kvB       jetstream.KeyValue
	storeA, storeB *events.Store
}

func openKVSide(ctx context.Context, ns *server.Server) (*kvSide, error) {
	s := &kvSide{}
	var err error
	if s.ncA, err = connect(ns, "replica-a"); err != nil {
		return nil, err
	}
	if s.ncB, err = connect(ns, "replica-b"); err != nil {
		s.ncA.Close()
		return nil, err
	}
	for _, side := range []struct {
		nc    *nats.Conn
		kv    *jetstream.KeyValue
		store **events.Store
	}{{s.ncA, &s.kvA, &s.storeA}, {s.ncB, &s.kvB, &s.storeB}} {
		js, err := jetstream.New(side.nc)
		if err != nil {
			s.close()
			return nil, err
		}
		if *side.kv, err = js.CreateOrUpdateKeyValue(ctx, kvConfig); err != nil {
			s.close()
			return nil, fmt.Errorf("KV bucket: %w", err)
		}
		if *side.store, err = events.OpenStore(ctx, side.nc, events.StoreConfig{}); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

func (s *kvSide) close() {
	for _, nc := range []*nats.Conn{s.ncA, s.ncB} {
		if nc != nil {
			nc.Close()
		}
	}
}

// runKV measures the cold-session design: sessions in a KV bucket, the hot
// set in an LRU in front.
func runKV(ctx context.Context, c *config) ([]result, error) {
	root, err := os.MkdirTemp("", "infracast-scalesim-kv-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	dir, emptyDir := filepath.Join(root, "store"), filepath.Join(root, "empty")
	n := c.kvSessions
	hot := max(1, int(float64(n)*c.hotShare))
	keys := make([]string, n)
	users := make([]string, max(1, n/2))
	for i := range users {
		users[i] = newID("user")
	}
	now := time.Now()

	// Load, without fsync.
	t0 := time.Now()
	valueBytes, err := fillKV(ctx, dir, keys, users, now)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	fmt.Fprintf(c.log, "   loaded %d sessions into %s in %s (no fsync)\n", n, kvBucket, time.Since(t0).Round(time.Millisecond))

	// The reference: the same server, clients and bucket, empty.
	emptyHeap, err := footprint(ctx, emptyDir, 0)
	if err != nil {
		return nil, fmt.Errorf("empty server: %w", err)
	}

	// Everything else on the loaded folder, fsync on every write.
	before := heap()
	ns, err := startServer(dir, true)
	if err != nil {
		return nil, err
	}
	defer stopServer(ns)
	side, err := openKVSide(ctx, ns)
	if err != nil {
		return nil, err
	}
	defer side.close()
	if c.cacheWait > 0 {
		fmt.Fprintf(c.log, "   waiting %s for the server's block caches to expire\n", c.cacheWait)
		time.Sleep(c.cacheWait)
	}
	idleHeap := heap() - before
	st, err := side.kvB.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.Values() != uint64(n) {
		return nil, fmt.Errorf("the bucket holds %d values, want %d", st.Values(), n)
	}
	disk, err := streamDirSize(dir, "KV_"+kvBucket)
	if err != nil {
		return nil, err
	}
	sessJSON, _ := json.Marshal(domain.EvolveSession(domain.Session{}, domain.SessionStarted{
		SessionID: keys[0], UserID: users[0], RefreshTokenHash: hashToken(keys[0]), StartedAt: now, ExpiresAt: now.Add(time.Hour),
	}))
	rs := []result{
		{Name: "kv.value", Value: float64(valueBytes) / float64(n), Unit: "B/session", Samples: int64(n),
			Params: map[string]any{"domain_session_json_bytes": len(sessJSON)},
			what:   "packed cold session (the KV value; domain.Session as JSON for comparison in params)"},
		{Name: "kv.disk", Value: float64(disk) / float64(n), Unit: "B/session", Samples: int64(n),
			Params: map[string]any{"stream_bytes_per_session": float64(st.Bytes()) / float64(n), "sessions": n},
			what:   "the bucket's folder on disk per session (one replica of the stream; ×3 at R3)"},
		{Name: "kv.server_memory.idle", Value: float64(idleHeap-emptyHeap) / float64(n), Unit: "B/session", Samples: int64(n),
			Params: map[string]any{"cache_wait_s": c.cacheWait.Seconds(), "sessions": n},
			what:   "nats-server live heap per session at rest (its per-subject index), over an empty bucket's"},
	}

	// What a hot entry costs a replica.
	// The LRU holds the hot set and a quarter more: room for the cold
	// sessions looked up between two uses of a hot one, at 90 % hits.
	capacity := hot + hot/4 + 64
	h0 := heap()
	cache := newLRU(capacity)
	for i := 0; i < hot; i++ {
		cache.add(keys[i], coldFor(i, users[i%len(users)], now))
	}
	lruBytes := heap() - h0
	runtime.KeepAlive(cache)
	rs = append(rs, result{Name: "kv.lru_entry", Value: float64(lruBytes) / float64(hot), Unit: "B/session", Samples: int64(hot),
		what: "a hot session in the replica's LRU (the packed state decoded, key, list links)"})

	// A cold lookup alone: one requester.
	rng := rand.New(rand.NewPCG(1, 2))
	get := func(k string) (coldSession, error) {
		e, err := side.kvB.Get(ctx, k)
		if err != nil {
			return coldSession{}, fmt.Errorf("get %s: %w", k, err)
		}
		return unmarshalCold(e.Value())
	}
	if _, err := runOps(1, c.lookupDur/4, func(int) func() error { // warm up
		return func() error { _, err := get(keys[rng.IntN(n)]); return err }
	}); err != nil {
		return nil, err
	}
	un, err := runOps(1, c.lookupDur, func(int) func() error {
		return func() error { _, err := get(keys[rng.IntN(n)]); return err }
	})
	if err != nil {
		return nil, err
	}
	rs = append(rs, result{Name: "kv.get", Value: un.rate(), Unit: "gets/s", P50: un.us(0.5), P99: un.us(0.99), Samples: un.n,
		Params: map[string]any{"lookers": 1, "cpu_us_per_op": un.cpuPerOp()}, what: "one cold lookup at a time: KV get over loopback TCP + decode"})

	// Lookups through the LRU, lookers at once, h % of them to the hot set
	// (uniformly), the others to the cold sessions (uniformly): a cold one
	// is fetched and enters the LRU, evicting the least recently used.
	for _, h := range c.hits {
		cache := newLRU(capacity)
		for i := 0; i < hot; i++ {
			cache.add(keys[i], coldFor(i, users[i%len(users)], now))
		}
		hits := make([]int64, c.lookers)
		total := make([]int64, c.lookers)
		s, err := runOps(c.lookers, c.lookupDur, func(w int) func() error {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(h*1000)))
			return func() error {
				var k string
				if rng.Float64()*100 < h {
					k = keys[rng.IntN(hot)]
				} else {
					k = keys[hot+rng.IntN(n-hot)]
				}
				total[w]++
				if _, ok := cache.get(k); ok {
					hits[w]++
					return nil
				}
				v, err := get(k)
				if err != nil {
					return err
				}
				cache.add(k, v)
				return nil
			}
		})
		if err != nil {
			return nil, err
		}
		var hit, tot int64
		for w := range hits {
			hit, tot = hit+hits[w], tot+total[w]
		}
		observed := 100 * float64(hit) / float64(max(tot, 1))
		rs = append(rs, result{Name: fmt.Sprintf("kv.lookup.hot%g", h), Value: s.rate(), Unit: "lookups/s", P50: s.us(0.5), P99: s.us(0.99),
			Samples: s.n, Params: map[string]any{"hot_lookups_pct": h, "hit_observed_pct": observed, "lookers": c.lookers, "hot": hot, "sessions": n, "cpu_us_per_op": s.cpuPerOp()},
			what: fmt.Sprintf("%g%% of lookups to the hot set: LRU, KV on a miss; %d at once; %.4g%% hits", h, c.lookers, observed)})
	}

	// Revocation: a KV put seen by B's watch, next to today's path (an
	// append seen by B's ordered consumer), alternately.
	revs, err := measureRevocations(ctx, c, side, keys, users, now)
	if err != nil {
		return nil, err
	}
	rs = append(rs, revs...)

	servingHeap := heap() - before
	rs = append(rs, result{Name: "kv.server_memory.serving", Value: float64(servingHeap-emptyHeap) / float64(n), Unit: "B/session", Samples: int64(n),
		Params: map[string]any{"sessions": n},
		what:   "the same right after the lookups: blocks read by cold gets stay cached 10 s after their last use"})
	return rs, nil
}

// fillKV creates the bucket (and today's stream, for the revocation
// baseline) and puts one cold session per key, without fsync. It returns the
// bytes of the values.
func fillKV(ctx context.Context, dir string, keys, users []string, now time.Time) (int, error) {
	ns, err := startServer(dir, false)
	if err != nil {
		return 0, err
	}
	defer stopServer(ns)
	nc, err := connect(ns, "load")
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	kv, err := js.CreateKeyValue(ctx, kvConfig)
	if err != nil {
		return 0, err
	}
	if _, err := events.OpenStore(ctx, nc, events.StoreConfig{}); err != nil {
		return 0, err
	}
	total := 0
	l := &loader{js: js}
	for i := range keys {
		keys[i] = newID("sess")
		cs := coldFor(i, users[i%len(users)], now)
		b := cs.marshal()
		total += len(b)
		if err := l.pub("$KV."+kvBucket+"."+keys[i], b); err != nil {
			return 0, err
		}
	}
	if err := l.wait(); err != nil {
		return 0, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return 0, err
	}
	if st.Values() != uint64(len(keys)) {
		return 0, fmt.Errorf("loaded %d values, want %d", st.Values(), len(keys))
	}
	return total, nil
}

// footprint is the live heap an fsync'd server on dir takes with the two
// replicas' clients, the bucket and the stream open.
func footprint(ctx context.Context, dir string, wait time.Duration) (int64, error) {
	before := heap()
	ns, err := startServer(dir, true)
	if err != nil {
		return 0, err
	}
	defer stopServer(ns)
	side, err := openKVSide(ctx, ns)
	if err != nil {
		return 0, err
	}
	defer side.close()
	time.Sleep(wait)
	return heap() - before, nil
}

// measureRevocations: c.revocations revocations each way, alternately, after
// a few unmeasured ones. KV: A puts a session's state with Revoked set; B's
// watch of the bucket delivers it. Stream (today): A appends session.revoked
// through events.Store (expected subject sequence, message ID, as the
// service); B's events.Store.Consume delivers it.
func measureRevocations(ctx context.Context, c *config, side *kvSide, keys, users []string, now time.Time) ([]result, error) {
	w, err := side.kvB.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	head, err := side.storeB.Head(ctx)
	if err != nil {
		return nil, err
	}
	recs := make(chan uint64, 1024)
	cctx, cancel := context.WithCancel(ctx)
	consumed := make(chan error, 1)
	go func() {
		consumed <- side.storeB.Consume(cctx, head+1, func(r events.Record) error {
			recs <- r.StreamSeq
			return nil
		})
	}()
	defer func() { cancel(); <-consumed }()

	rng := rand.New(rand.NewPCG(3, 4))
	const warm = 10
	var kvAll, kvAck, stAll, stAck sample
	timeout := func() <-chan time.Time { return time.After(5 * time.Second) }
	for i := 0; i < warm+c.revocations; i++ {
		// KV.
		j := rng.IntN(len(keys))
		cs := coldFor(j, users[j%len(users)], now)
		cs.Revoked = true
		b := cs.marshal()
		t0 := time.Now()
		rev, err := side.kvA.Put(ctx, keys[j], b)
		if err != nil {
			return nil, fmt.Errorf("put: %w", err)
		}
		tAck := time.Now()
	kv:
		for {
			select {
			case e := <-w.Updates():
				if e != nil && e.Key() == keys[j] && e.Revision() == rev {
					break kv
				}
			case <-timeout():
				return nil, fmt.Errorf("the watch did not deliver revision %d", rev)
			}
		}
		tGot := time.Now()
		if i >= warm {
			kvAll.lat, kvAck.lat = append(kvAll.lat, tGot.Sub(t0)), append(kvAck.lat, tGot.Sub(tAck))
		}

		// Stream.
		sid := newID("sess")
		data, err := events.Encode(newID("evt"), domain.AggregateSession, sid, 1, now, meta, domain.SessionRevoked{SessionID: sid, Reason: domain.RevokeReasonRevoked})
		if err != nil {
			return nil, err
		}
		t0 = time.Now()
		seq, err := side.storeA.Append(ctx, events.Message{Subject: events.Subject(domain.AggregateSession, sid), ID: newID("cmd") + "-0", Data: data})
		if err != nil {
			return nil, fmt.Errorf("append: %w", err)
		}
		tAck = time.Now()
	stream:
		for {
			select {
			case got := <-recs:
				if got == seq {
					break stream
				}
			case err := <-consumed:
				return nil, fmt.Errorf("consumer ended: %v", err)
			case <-timeout():
				return nil, fmt.Errorf("the consumer did not deliver sequence %d", seq)
			}
		}
		tGot = time.Now()
		if i >= warm {
			stAll.lat, stAck.lat = append(stAll.lat, tGot.Sub(t0)), append(stAck.lat, tGot.Sub(tAck))
		}
	}
	ms := func(s *sample) float64 { return *s.us(0.99) / 1e3 }
	n := int64(c.revocations)
	return []result{
		{Name: "kv.revoke", Value: ms(&kvAll), Unit: "ms p99", P50: kvAll.us(0.5), P99: kvAll.us(0.99), Samples: n,
			what: "A's KV put (fsync'd) → B's watch delivers it, B on its own TCP connection"},
		{Name: "kv.revoke.after_ack", Value: ms(&kvAck), Unit: "ms p99", P50: kvAck.us(0.5), P99: kvAck.us(0.99), Samples: n,
			what: "the same from A's acknowledgement"},
		{Name: "stream.revoke", Value: ms(&stAll), Unit: "ms p99", P50: stAll.us(0.5), P99: stAll.us(0.99), Samples: n,
			what: "today: A appends session.revoked (fsync'd) → B's ordered consumer delivers it"},
		{Name: "stream.revoke.after_ack", Value: ms(&stAck), Unit: "ms p99", P50: stAck.us(0.5), P99: stAck.us(0.99), Samples: n,
			what: "the same from A's acknowledgement (the bench's propagation baseline)"},
	}, nil
}
