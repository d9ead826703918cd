package events_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/infracast/auth/events"
)

// readModel stands in for a replica's projections.Runner: Apply advances it,
// WaitFor waits for it, and it records the sequences it was asked for.
type readModel struct {
	mu      sync.Mutex
	applied uint64
	changed chan struct{}
	asked   []uint64
}

func newReadModel() *readModel { return &readModel{changed: make(chan struct{})} }

func (m *readModel) Apply(seq uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applied = seq
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *readModel) Applied() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applied
}

func (m *readModel) WaitFor(ctx context.Context, seq uint64) error {
	for {
		m.mu.Lock()
		if ctx.Err() == nil || len(m.asked) == 0 || m.asked[len(m.asked)-1] != seq {
			m.asked = append(m.asked, seq)
		}
		if m.applied >= seq {
			m.mu.Unlock()
			return nil
		}
		ch := m.changed
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (m *readModel) WasAsked(seq uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.asked {
		if s == seq {
			return true
		}
	}
	return false
}

// barrierServer starts an embedded nats-server; connect opens another
// client connection to it (one per replica).
func barrierServer(t *testing.T) (connect func() *nats.Conn) {
	t.Helper()
	ns, err := events.StartEmbedded(events.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return func() *nats.Conn {
		nc, err := events.ConnectEmbedded(ns)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
}

type outcomes struct {
	mu   sync.Mutex
	seen []string
}

func (o *outcomes) observe(_ time.Duration, outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, outcome)
}

func (o *outcomes) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.seen...)
}

// barrierKey is the deployment's in these tests.
var barrierKey = []byte("0123456789abcdef0123456789abcdef")

func startBarrier(t *testing.T, nc *nats.Conn, m *readModel, cfg events.BarrierConfig) *events.Barrier {
	t.Helper()
	cfg.Applied, cfg.AppliedSeq = m.WaitFor, m.Applied
	if cfg.Key == nil {
		cfg.Key = barrierKey
	}
	b, err := events.NewBarrier(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	b.Announce()
	return b
}

// waitUntil polls cond (every millisecond) until it holds, failing the test
// after 10 s; waitWithin is the same with another deadline.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, 10*time.Second, what, cond)
}

func waitWithin(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBarrierWaitsUntilEveryReplicaApplied: Wait on replica A returns only
// once B and C have both applied the sequence — not when A sent the
// request, not when the first of them answered.
func TestBarrierWaitsUntilEveryReplicaApplied(t *testing.T) {
	connect := barrierServer(t)
	var seen outcomes
	ma, mb, mc := newReadModel(), newReadModel(), newReadModel()
	ma.Apply(5) // A stored and applied sequence 5
	a := startBarrier(t, connect(), ma, events.BarrierConfig{Timeout: 30 * time.Second, Observe: seen.observe})
	startBarrier(t, connect(), mb, events.BarrierConfig{Timeout: 30 * time.Second})
	startBarrier(t, connect(), mc, events.BarrierConfig{Timeout: 30 * time.Second})
	waitUntil(t, "A hears of B and C", func() bool { return a.Peers() == 2 })

	type state struct{ b, c uint64 }
	returned := make(chan state, 1)
	go func() {
		a.Wait(context.Background(), 5)
		returned <- state{mb.Applied(), mc.Applied()} // what B and C had applied when Wait returned
	}()
	waitUntil(t, "B and C are asked for sequence 5", func() bool { return mb.WasAsked(5) && mc.WasAsked(5) })
	mb.Apply(5)
	mc.Apply(4) // not enough
	mc.Apply(5)
	got := <-returned
	if got.b < 5 || got.c < 5 {
		t.Fatalf("Wait returned before every replica applied sequence 5: B at %d, C at %d", got.b, got.c)
	}
	if o := seen.list(); len(o) != 1 || o[0] != "confirmed" {
		t.Fatalf("outcomes %v, want [confirmed]", o)
	}

	// Already applied everywhere: answered at once, still confirmed.
	a.Wait(context.Background(), 3)
	if o := seen.list(); len(o) != 2 || o[1] != "confirmed" {
		t.Fatalf("outcomes %v, want a second confirmed", o)
	}
}

// TestBarrierAloneReturnsAtOnce: a replica with no other has nobody to wait
// for, and returns at once (having published a notice nobody answers).
func TestBarrierAloneReturnsAtOnce(t *testing.T) {
	connect := barrierServer(t)
	var seen outcomes
	a := startBarrier(t, connect(), newReadModel(), events.BarrierConfig{Timeout: time.Hour, Observe: seen.observe})
	a.Wait(context.Background(), 1_000_000) // nobody has it; nobody is asked
	if o := seen.list(); len(o) != 0 {
		t.Fatalf("outcomes %v for a replica alone", o)
	}
}

// TestBarrierStopsWaitingForASilentReplica: a replica that does not answer
// holds a Wait up for Timeout once, is counted, and is not waited for again
// until it is heard of.
func TestBarrierStopsWaitingForASilentReplica(t *testing.T) {
	connect := barrierServer(t)
	var seen outcomes
	ma := newReadModel()
	ma.Apply(9)
	a := startBarrier(t, connect(), ma, events.BarrierConfig{Timeout: 100 * time.Millisecond, Heartbeat: time.Hour, Observe: seen.observe})
	stuck := newReadModel() // never applies anything
	startBarrier(t, connect(), stuck, events.BarrierConfig{Timeout: time.Hour, Heartbeat: time.Hour})
	waitUntil(t, "A hears of the stuck replica", func() bool { return a.Peers() == 1 })

	a.Wait(context.Background(), 9)
	if o := seen.list(); len(o) != 1 || o[0] != "timeout" {
		t.Fatalf("outcomes %v, want [timeout]", o)
	}
	if n := a.Peers(); n != 0 {
		t.Fatalf("A still waits for %d silent replicas", n)
	}
	a.Wait(context.Background(), 9) // not waited for again
	if o := seen.list(); len(o) != 1 {
		t.Fatalf("outcomes %v: the silent replica was waited for again", o)
	}
}

// TestBarrierForgetsReplicasThatLeave: a replica that stops says goodbye;
// one that vanishes (its connection gone) is forgotten after three missed
// heartbeats. Either way nobody waits for it.
func TestBarrierForgetsReplicasThatLeave(t *testing.T) {
	connect := barrierServer(t)
	cfg := events.BarrierConfig{Timeout: time.Hour, Heartbeat: 20 * time.Millisecond}
	a := startBarrier(t, connect(), newReadModel(), cfg)
	b := startBarrier(t, connect(), newReadModel(), cfg)
	ncC := connect()
	startBarrier(t, ncC, newReadModel(), cfg)
	waitUntil(t, "A hears of B and C", func() bool { return a.Peers() == 2 })

	b.Close()
	waitUntil(t, "A forgets B, which said goodbye", func() bool { return a.Peers() == 1 })
	ncC.Close() // no goodbye
	waitUntil(t, "A forgets C, which went silent", func() bool { return a.Peers() == 0 })
}

// TestBarrierDropsForgedAndMalformedMessages: a NATS user who may publish
// on the barrier's subjects but has not the deployment's key can neither add
// a replica that does not exist, nor make a replica forget one that does
// (a forged goodbye), nor get an answer to a request, nor confirm for a
// replica that has not applied the sequence. Malformed messages do nothing
// either.
func TestBarrierDropsForgedAndMalformedMessages(t *testing.T) {
	connect := barrierServer(t)
	var seen outcomes
	var rejected atomic.Int64
	ma, mb := newReadModel(), newReadModel()
	ma.Apply(7)
	a := startBarrier(t, connect(), ma, events.BarrierConfig{Timeout: 200 * time.Millisecond, Heartbeat: time.Hour,
		Observe: seen.observe, Rejected: func() { rejected.Add(1) }})
	b := startBarrier(t, connect(), mb, events.BarrierConfig{Heartbeat: time.Hour})
	waitUntil(t, "A hears of B", func() bool { return a.Peers() == 1 })

	prefix := events.ReplicaSubjectPrefix + "." + events.StreamName
	forger := connect()
	now := fmt.Sprint(time.Now().UnixMilli())
	for _, payload := range []string{
		"up FAKE " + now + " AAAAAAAAAAAAAAAAAAAAAA",             // a replica that does not exist
		"down " + b.ID() + " " + now + " AAAAAAAAAAAAAAAAAAAAAA", // B leaving, forged
		"", "up", "up X", "down " + b.ID(), "up Y 1 2 3",
	} {
		if err := forger.Publish(prefix+".presence", []byte(payload)); err != nil {
			t.Fatal(err)
		}
	}
	answers, err := forger.SubscribeSync(forger.NewInbox())
	if err != nil {
		t.Fatal(err)
	}
	for _, payload := range []string{"7 FAKE AAAAAAAAAAAAAAAAAAAAAA", "", "x", "7", "7 r", "-1 r x", "18446744073709551616 r x"} {
		if err := forger.PublishRequest(prefix+".applied", answers.Subject, []byte(payload)); err != nil {
			t.Fatal(err)
		}
	}
	if err := forger.Flush(); err != nil { // the server has them all, before what follows
		t.Fatal(err)
	}
	// A sentinel from a real replica: once A hears of C, it has seen
	// everything forged before.
	c := startBarrier(t, connect(), newReadModel(), events.BarrierConfig{Heartbeat: time.Hour})
	waitUntil(t, "A hears of C", func() bool { return a.Peers() >= 2 })
	if n := a.Peers(); n != 2 {
		t.Fatalf("A hears of %d replicas, want B and C: a forged heartbeat counted or a forged goodbye removed B", n)
	}
	if rejected.Load() < 2 {
		t.Fatalf("%d forged messages rejected by A, want the forged heartbeat and goodbye at least", rejected.Load())
	}

	// A forged confirmation for B and C does not end A's wait: they have
	// not applied sequence 7.
	confirm, err := forger.Subscribe(prefix+".applied", func(m *nats.Msg) {
		for _, id := range []string{b.ID(), c.ID()} {
			for _, forged := range []string{id + " AAAAAAAAAAAAAAAAAAAAAA", id} {
				if err := m.Respond([]byte(forged)); err != nil {
					t.Errorf("forging a confirmation: %v", err)
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := confirm.Unsubscribe(); err != nil {
			t.Error(err)
		}
	}()
	if err := forger.Flush(); err != nil {
		t.Fatal(err)
	}
	a.Wait(context.Background(), 7)
	if o := seen.list(); len(o) != 1 || o[0] != "timeout" {
		t.Fatalf("outcomes %v, want [timeout]: forged confirmations were taken", o)
	}
	// Nothing answered the forged requests: B and C would have answered at
	// once, long before A's timeout, and the flush brings whatever the
	// server sent the forger before it.
	if err := forger.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _, err := answers.Pending(); err != nil || n != 0 {
		t.Fatalf("%d forged or malformed requests answered (%v)", n, err)
	}
}

// TestBarrierWaitsOnlyForAnnouncedReplicas: a replica still catching up at
// start (it refuses every request) is not waited for until it announces
// itself; it answers the others' requests all along.
func TestBarrierWaitsOnlyForAnnouncedReplicas(t *testing.T) {
	connect := barrierServer(t)
	var seen outcomes
	ma := newReadModel()
	ma.Apply(2)
	a := startBarrier(t, connect(), ma, events.BarrierConfig{Timeout: 30 * time.Second, Heartbeat: 10 * time.Millisecond, Observe: seen.observe})
	mb := newReadModel()
	b, err := events.NewBarrier(connect(), events.BarrierConfig{Applied: mb.WaitFor, AppliedSeq: mb.Applied, Heartbeat: 10 * time.Millisecond, Key: barrierKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	// B heard of A (A announced) and would answer; A hears nothing of B.
	waitUntil(t, "B hears of A", func() bool { return b.Peers() == 1 })
	a.Wait(context.Background(), 2)
	if n := a.Peers(); n != 0 || len(seen.list()) != 0 {
		t.Fatalf("A waited for a replica that has not announced itself: peers %d, outcomes %v", n, seen.list())
	}
	b.Announce()
	if n := a.Peers(); n != 1 {
		// Announce returns once NATS has the announcement; A's connection
		// may take a moment more to deliver it.
		waitUntil(t, "A hears of B", func() bool { return a.Peers() == 1 })
	}
	mb.Apply(2)
	a.Wait(context.Background(), 2)
	if o := seen.list(); len(o) != 1 || o[0] != "confirmed" {
		t.Fatalf("outcomes %v, want [confirmed]", o)
	}
}

// TestBarrierBehindUntilTheRequiredSequenceIsApplied: a replica that another
// one asked for a sequence it has not applied is Behind — also after the
// other gave up waiting — until its read models have applied it.
func TestBarrierBehindUntilTheRequiredSequenceIsApplied(t *testing.T) {
	connect := barrierServer(t)
	ma, mb := newReadModel(), newReadModel()
	ma.Apply(5)
	mb.Apply(3)
	a := startBarrier(t, connect(), ma, events.BarrierConfig{Timeout: 50 * time.Millisecond})
	b := startBarrier(t, connect(), mb, events.BarrierConfig{Timeout: time.Hour})
	waitUntil(t, "A hears of B", func() bool { return a.Peers() == 1 })
	if b.Behind() {
		t.Fatal("B behind before anyone asked")
	}
	a.Wait(context.Background(), 5) // times out: B is at 3
	waitUntil(t, "B knows it is asked for 5", func() bool { return mb.WasAsked(5) })
	if !b.Behind() {
		t.Fatal("B, at 3 and asked for 5, is not behind")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := b.WaitRequired(ctx); err == nil {
		t.Fatal("WaitRequired returned before B applied 5")
	}
	mb.Apply(5)
	if b.Behind() {
		t.Fatal("B behind after applying 5")
	}
	if err := b.WaitRequired(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestBarrierNoticeReachesAForgottenReplica: a replica silent for three
// heartbeats (paused, cut off) is no longer waited for — but the revocation
// is still announced, so that when it reads the notice it knows it is
// behind and checks no credential until it has applied it. (Without the
// notice, a paused replica of a two-replica deployment accepted a revoked
// key for 120–145 ms after it resumed.)
func TestBarrierNoticeReachesAForgottenReplica(t *testing.T) {
	connect := barrierServer(t)
	var seen outcomes
	ma, mc := newReadModel(), newReadModel()
	ma.Apply(9)
	mc.Apply(3)
	a := startBarrier(t, connect(), ma, events.BarrierConfig{Heartbeat: 10 * time.Millisecond, Observe: seen.observe})
	c := startBarrier(t, connect(), mc, events.BarrierConfig{Heartbeat: time.Hour}) // silent after its announcement
	waitUntil(t, "A hears of C", func() bool { return a.Peers() == 1 })
	waitUntil(t, "A forgets the silent C", func() bool { return a.Peers() == 0 })
	a.Wait(context.Background(), 9)
	if o := seen.list(); len(o) != 0 {
		t.Fatalf("A waited for a forgotten replica: %v", o)
	}
	waitUntil(t, "C learns it is behind sequence 9", c.Behind)
	mc.Apply(9)
	if c.Behind() {
		t.Fatal("C still behind after applying 9")
	}
}

// TestBarrierStartingReplicaHearsOfTheOthersAtOnce: a replica that starts
// asks those that serve to announce themselves, so it knows whom to wait
// for before it serves — not only at their next heartbeat (a second later,
// during which its revocations would not wait for them).
func TestBarrierStartingReplicaHearsOfTheOthersAtOnce(t *testing.T) {
	connect := barrierServer(t)
	startBarrier(t, connect(), newReadModel(), events.BarrierConfig{Heartbeat: time.Hour})
	startBarrier(t, connect(), newReadModel(), events.BarrierConfig{Heartbeat: time.Hour})
	late := startBarrier(t, connect(), newReadModel(), events.BarrierConfig{Heartbeat: time.Hour})
	waitUntil(t, "the replica started last hears of the two serving", func() bool { return late.Peers() == 2 })
}
