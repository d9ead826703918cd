package events_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/infracast/auth/events"
)

// barrierOnlyPermissions is what the barrier needs of a NATS user: publish
// and subscribe on infracast.replicas.>, and subscribe on _INBOX.> (the
// replies to its own requests elsewhere) — no publish on _INBOX.>, as in
// docs/operations.md's permissions block.
func barrierOnlyPermissions() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{events.ReplicaSubjectPrefix + ".>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{events.ReplicaSubjectPrefix + ".>", "_INBOX.>"}},
	}
}

// permissionServer starts a nats-server (core NATS only) whose users have
// the given permissions (their password is their name); connect logs in as
// one of them.
func permissionServer(t *testing.T, users map[string]*server.Permissions) (connect func(user string) *nats.Conn) {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true}
	for name, p := range users {
		opts.Users = append(opts.Users, &server.User{Username: name, Password: name + "-password", Permissions: p})
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return func(user string) *nats.Conn {
		// The permission errors are the test's to see, not stderr's.
		nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo(user, user+"-password"),
			nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
}

// TestBarrierConfirmsWithoutPublishOnInbox: with a NATS user that may not
// publish on _INBOX.> — the documented permissions — the other replica's
// confirmation still reaches the waiting one. Outside check 20n: the
// confirmations went to the requester's _INBOX, were refused by the server,
// and every Wait timed out while the other replica went on accepting the
// revoked token.
func TestBarrierConfirmsWithoutPublishOnInbox(t *testing.T) {
	connect := permissionServer(t, map[string]*server.Permissions{"svc": barrierOnlyPermissions()})
	var seen outcomes
	ma, mb := newReadModel(), newReadModel()
	ma.Apply(5)
	mb.Apply(5)
	a := startBarrier(t, connect("svc"), ma, events.BarrierConfig{Timeout: 2 * time.Second, Observe: seen.observe})
	startBarrier(t, connect("svc"), mb, events.BarrierConfig{Timeout: 2 * time.Second})
	waitUntil(t, "A hears of B", func() bool { return a.Peers() == 1 })
	for range 20 {
		a.Wait(context.Background(), 5)
	}
	for i, o := range seen.list() {
		if o != "confirmed" {
			t.Fatalf("wait %d: outcome %q, want confirmed: B's confirmation did not reach A", i, o)
		}
	}
}

// TestBarrierSelfCheck: a replica whose NATS user has the barrier's
// permissions passes its SelfCheck; one that may not subscribe, or may not
// publish, on infracast.replicas.> fails it with ErrBarrierUnreachable —
// rather than serving while the others neither wait for it nor hear it.
func TestBarrierSelfCheck(t *testing.T) {
	noSubscribe, noPublish := barrierOnlyPermissions(), barrierOnlyPermissions()
	noSubscribe.Subscribe.Allow = []string{"_INBOX.>"}
	noPublish.Publish.Allow = []string{"_INBOX.>"}
	connect := permissionServer(t, map[string]*server.Permissions{
		"svc": barrierOnlyPermissions(), "nosub": noSubscribe, "nopub": noPublish,
	})
	for _, c := range []struct {
		user string
		ok   bool
	}{{"svc", true}, {"nosub", false}, {"nopub", false}} {
		t.Run(c.user, func(t *testing.T) {
			b, err := events.NewBarrier(connect(c.user), events.BarrierConfig{Key: barrierKey,
				Applied: newReadModel().WaitFor, AppliedSeq: newReadModel().Applied})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			// A passing check returns within a round trip; a failing one
			// when its context ends.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err = b.SelfCheck(ctx)
			switch {
			case c.ok && err != nil:
				t.Fatalf("SelfCheck: %v", err)
			case !c.ok && !errors.Is(err, events.ErrBarrierUnreachable):
				t.Fatalf("SelfCheck = %v, want ErrBarrierUnreachable", err)
			}
		})
	}
}

// TestBarrierRejoinsAfterAPermissionReturns: a permission of the barrier's
// taken away while the replicas run (the nats-server's configuration
// reloaded without subscribe on infracast.replicas.>) makes the server drop
// the barrier's subscriptions. Each replica is then Outside — Behind, so
// that it checks no credential, and WaitRequired fails — and, once the
// permission is back, subscribes again on its own: it hears the other, and
// the other's Waits are confirmed by it again. Re-check 20r3: the
// subscriptions stayed dropped until a restart, the replicas ready, waiting
// for nobody, and 2–8 in 100 tokens revoked through one were accepted by
// another.
func TestBarrierRejoinsAfterAPermissionReturns(t *testing.T) {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true}
	users := func(p *server.Permissions) []*server.User {
		return []*server.User{{Username: "svc", Password: "svc-password", Permissions: p}}
	}
	opts.Users = users(barrierOnlyPermissions())
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	reload := func(p *server.Permissions) {
		t.Helper()
		o := opts.Clone()
		o.Users = users(p)
		if err := ns.ReloadOptions(o); err != nil {
			t.Fatal(err)
		}
	}
	// Each connection tells its barrier of the refusals, as the service's
	// error handler does.
	connect := func() (*nats.Conn, *atomic.Pointer[events.Barrier]) {
		var to atomic.Pointer[events.Barrier]
		nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo("svc", "svc-password"),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				if b := to.Load(); b != nil {
					b.Refused(err)
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc, &to
	}
	var seen outcomes
	ma, mb := newReadModel(), newReadModel()
	ma.Apply(5)
	mb.Apply(5)
	cfg := events.BarrierConfig{Timeout: time.Second, Heartbeat: 100 * time.Millisecond}
	nca, toA := connect()
	ncb, toB := connect()
	cfgA := cfg
	cfgA.Observe = seen.observe
	a := startBarrier(t, nca, ma, cfgA)
	toA.Store(a)
	b := startBarrier(t, ncb, mb, cfg)
	toB.Store(b)
	waitUntil(t, "A hears of B", func() bool { return a.Peers() == 1 })
	if a.Outside() || b.Behind() {
		t.Fatal("outside the barrier, or behind, before any permission was taken away")
	}

	noSubscribe := barrierOnlyPermissions()
	noSubscribe.Subscribe.Allow = []string{"_INBOX.>"}
	reload(noSubscribe)
	waitUntil(t, "both replicas outside the barrier", func() bool { return a.Outside() && b.Outside() })
	if !b.Behind() {
		t.Fatal("B is outside the barrier and not Behind: it would check credentials")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = b.WaitRequired(ctx)
	cancel()
	if !errors.Is(err, events.ErrBarrierUnreachable) {
		t.Fatalf("WaitRequired outside the barrier = %v, want ErrBarrierUnreachable", err)
	}

	reload(barrierOnlyPermissions())
	waitUntil(t, "both replicas take part again", func() bool { return !a.Outside() && !b.Outside() })
	if b.Behind() {
		t.Fatal("B is Behind after taking part again")
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := b.WaitRequired(ctx); err != nil {
		t.Fatalf("WaitRequired after taking part again: %v", err)
	}
	waitUntil(t, "A hears of B again", func() bool { return a.Peers() == 1 })
	before := len(seen.list())
	mb.Apply(6)
	ma.Apply(6)
	a.Wait(context.Background(), 6)
	if got := seen.list()[before:]; len(got) != 1 || got[0] != "confirmed" {
		t.Fatalf("A's wait after B took part again: %v, want [confirmed]", got)
	}
	if !mb.WasAsked(6) {
		t.Fatal("B was not asked for the sequence A waited for")
	}
}

// TestBarrierWarnsOnceOfAnOlderReplicaAskingOnInbox: during a rolling
// upgrade, a replica of an older build asks for confirmations on _INBOX,
// where the documented permissions allow no publish: NATS refuses this
// replica's answers. Each refusal is recognised (RefusedAnswer) and warned
// of once per older replica with what to do — not as a permission missing,
// nor does it put the replica outside the barrier. Re-check 20r3: every
// revocation through an old replica logged an ERROR telling the operator to
// give the permissions block they had given.
func TestBarrierWarnsOnceOfAnOlderReplicaAskingOnInbox(t *testing.T) {
	old := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{events.ReplicaSubjectPrefix + ".>", "_INBOX.>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{events.ReplicaSubjectPrefix + ".>", "_INBOX.>"}},
	}
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, Users: []*server.User{
		{Username: "svc", Password: "svc-password", Permissions: barrierOnlyPermissions()},
		{Username: "old", Password: "old-password", Permissions: old},
	}}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	var to atomic.Pointer[events.Barrier]
	var answersRefused, others atomic.Int64
	nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo("svc", "svc-password"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			switch b := to.Load(); {
			case b != nil && b.RefusedAnswer(err):
				answersRefused.Add(1)
			case b != nil && b.Refused(err):
				others.Add(1)
			default:
				others.Add(1)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	var logs syncBuffer
	m := newReadModel()
	m.Apply(9)
	b := startBarrier(t, nc, m, events.BarrierConfig{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	to.Store(b)

	oc, err := nats.Connect(ns.ClientURL(), nats.UserInfo("old", "old-password"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(oc.Close)
	const requests = 5
	for range requests {
		reply := oc.NewInbox() // an older replica's request: answered on _INBOX
		tag := barrierMAC("applied", "9", "OLDREPLICA", reply)
		if err := oc.PublishRequest(events.ReplicaSubjectPrefix+"."+events.StreamName+".applied", reply, []byte("9 OLDREPLICA "+tag)); err != nil {
			t.Fatal(err)
		}
	}
	if err := oc.Flush(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "every answer refused and recognised", func() bool { return answersRefused.Load() == requests })
	if n := others.Load(); n != 0 {
		t.Fatalf("%d refusals not recognised as answers to an older replica", n)
	}
	if n := strings.Count(logs.String(), "an older replica asks for confirmations on _INBOX"); n != 1 {
		t.Fatalf("warned %d times of the older replica, want once:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "level=ERROR") || b.Outside() {
		t.Fatalf("an older replica's request put this one outside the barrier, or logged an ERROR:\n%s", logs.String())
	}
}

// barrierMAC is the MAC a replica puts on its messages (Barrier.mac) with
// barrierKey: what a replica of an older build sends too.
func barrierMAC(fields ...string) string {
	m := hmac.New(sha256.New, barrierKey)
	for _, f := range fields {
		m.Write([]byte(f))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// syncBuffer is a bytes.Buffer safe for a logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
