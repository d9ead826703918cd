package events

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/oklog/ulid/v2"
)

// ReplicaSubjectPrefix starts the subjects on which the replicas of one
// stream find each other and confirm what they applied (Barrier):
// infracast.replicas.<stream>.presence and .applied, and the confirmations'
// infracast.replicas.<stream>.confirm.<replica>.<n>. They are core NATS
// subjects, outside the stream's infracast.auth.>: nothing of them is stored.
// The confirmations travel there rather than on an _INBOX.> reply subject, so
// that publishing and subscribing to infracast.replicas.> is all a replica's
// NATS user needs for the barrier: with the permissions docs/operations.md
// listed (no publish on _INBOX.>), every confirmation was refused and another
// replica accepted tokens that had just been revoked (outside check 20n).
const ReplicaSubjectPrefix = "infracast.replicas"

// BarrierConfig configures a Barrier.
type BarrierConfig struct {
	Stream string // default StreamName
	// Applied waits until this replica's read models have applied a stream
	// sequence (projections.Runner.WaitFor).
	Applied func(ctx context.Context, seq uint64) error
	// AppliedSeq is the last stream sequence this replica's read models
	// applied (projections.Runner.Applied): Behind compares with it on
	// every request, without a lock.
	AppliedSeq func() uint64
	// Key authenticates the replicas' messages to each other (HMAC-SHA256):
	// the same on every replica, derived from the master key. Without it,
	// anyone who may publish on the subjects could make the replicas stop
	// waiting for each other (forged goodbyes, forged confirmations) or wait
	// for replicas that do not exist. Required.
	Key []byte
	// Timeout bounds a Wait, and how long this replica keeps a request of
	// another waiting for its read models (default 1 s).
	Timeout time.Duration
	// Heartbeat: how often a replica says it is there (default 1 s). One not
	// heard of for three heartbeats is gone.
	Heartbeat time.Duration
	Log       *slog.Logger
	// Observe, when set, is told the outcome of every Wait that had other
	// replicas to wait for: "confirmed" (each of them applied the sequence),
	// "timeout" (some did not say so within Timeout) or "error" (the request
	// could not be sent).
	Observe func(d time.Duration, outcome string)
	// Rejected, when set, is told of every message dropped for a wrong MAC
	// or a time too far off (logged too).
	Rejected func()
}

// Barrier lets a replica that stored an event wait until every other replica
// of the service has applied it too, so that a revocation is enforced
// everywhere by the time its request is answered — not a few milliseconds
// later on the replicas that learn of it through their consumers.
//
// The replicas of a stream find each other on core NATS: each publishes its
// ID on <prefix>.presence once it serves requests (Announce) and then every
// Heartbeat, and says goodbye when it stops; each keeps the set of the others
// heard of within three heartbeats. A replica still replaying the stream at
// start refuses every request, so nobody needs to wait for it. Wait(seq)
// publishes a request on <prefix>.applied and returns once every replica of
// that set has answered it, each answering as soon as its own read models
// have applied seq. A replica that does not answer within Timeout is dropped
// from the set until its next heartbeat, so that a replica that died does
// not hold up the revocations after it. With nobody to wait for, the request
// still goes out, as a notice: a replica forgotten while it was paused
// learns that it is behind.
//
// A replica that receives a request (or notice) for a sequence its read
// models have not applied is Behind until they have: the HTTP layer checks
// no credential meanwhile (it may have been paused past the other's
// Timeout, which then answered its client without it).
//
// Every message carries an HMAC with a key derived from the deployment's
// master key (BarrierConfig.Key), over its fields and, for a request and its
// answers, the request's reply subject: a NATS user who may publish on the
// subjects but has not the key can neither make a replica stop waiting (a
// forged goodbye or confirmation) nor wait for nothing (a forged
// heartbeat); a heartbeat replayed later than presenceSkew is dropped.
//
// A permission on the barrier's subjects that NATS refuses while the replica
// runs (Refused) puts it Outside: not ready, Behind, until it has subscribed
// again and its SelfCheck passes, which the heartbeat tries every beat.
//
// What is not covered: a replica cut off from NATS answers nothing and
// hears of nothing (its /ready turns 503 within seconds, see
// projections.Runner.Stalled); what a paused replica answers before its NATS
// reader has read the request; a request whose Wait began less than a round
// trip before another replica's Announce does not wait for that replica,
// which then applies the event a moment later (a load balancer sends it
// nothing before its next health check anyway).
type Barrier struct {
	nc  *nats.Conn
	cfg BarrierConfig
	id  string

	presence, applied, confirm string
	requests                   atomic.Uint64 // numbers this replica's confirm subjects

	mu sync.Mutex
	// selfProbe (under mu) is closed, and cleared, when this replica hears
	// its own probe back (SelfCheck makes a new one for each check).
	selfProbe chan struct{}
	peers     map[string]time.Time // other replicas -> last heard of
	// selfHeard: when this replica last heard its own heartbeat back
	// (under mu; zero until the first). Others are forgotten only when
	// silent for three heartbeats before it: a replica cut off from NATS
	// hears nobody, itself included, and is not alone for that — it took
	// itself for the only one, and answered a token or key made through
	// another replica 401 instead of trying to catch up (outside check
	// 19u).
	selfHeard time.Time

	subs      []*nats.Subscription // under mu once the heartbeat runs (rejoin)
	announced atomic.Bool
	// outside: NATS refused one of the barrier's subscriptions or publishes
	// (Refused) — a permission taken away while running; the server drops
	// the subscriptions it no longer allows, and nothing subscribes again
	// by itself. Until the heartbeat has subscribed again and SelfCheck
	// passed (rejoin), the replica is not ready and checks no credential
	// (Behind, Outside): the others neither wait for it nor reach it, and
	// it accepted tokens just revoked through them (re-check 20r3).
	// rejoined (under mu) is closed when it takes part again.
	outside  atomic.Bool
	rejoined chan struct{}
	// older (under mu): reply subject -> replica, of the requests of older
	// replicas that ask on _INBOX (olderRequest); olderWarned: the replicas
	// warned of.
	older       map[string]string
	olderWarned map[string]bool
	// required: the highest sequence another replica asked this one for
	// (Behind).
	required atomic.Uint64
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

// NewBarrier returns the barrier of a replica; Start makes it known.
func NewBarrier(nc *nats.Conn, cfg BarrierConfig) (*Barrier, error) {
	if cfg.Applied == nil {
		return nil, errors.New("events: a barrier needs the read models' Applied")
	}
	if cfg.AppliedSeq == nil {
		return nil, errors.New("events: a barrier needs the read models' AppliedSeq")
	}
	if len(cfg.Key) < 32 {
		return nil, errors.New("events: a barrier needs a key of 32 bytes or more")
	}
	if cfg.Stream == "" {
		cfg.Stream = StreamName
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	prefix := ReplicaSubjectPrefix + "." + cfg.Stream
	return &Barrier{
		nc: nc, cfg: cfg, id: ulid.Make().String(),
		presence: prefix + ".presence", applied: prefix + ".applied", confirm: prefix + ".confirm",
		peers: map[string]time.Time{}, stop: make(chan struct{}), done: make(chan struct{}),
	}, nil
}

// ID is this replica's: a ULID drawn at start.
func (b *Barrier) ID() string { return b.id }

// Start subscribes to the other replicas' presence and requests: from now on
// this replica hears of the others and answers their Waits; and asks those
// that serve to announce themselves at once. It is waited for itself once it
// Announces.
func (b *Barrier) Start() error {
	ps, err := b.nc.Subscribe(b.presence, b.onPresence)
	if err != nil {
		return fmt.Errorf("%w: barrier: %v", ErrUnavailable, err)
	}
	as, err := b.nc.Subscribe(b.applied, b.onApplied)
	if err != nil {
		if uerr := ps.Unsubscribe(); uerr != nil { // the connection's trouble is the error reported
			b.cfg.Log.Debug("replica barrier: unsubscribe", "err", uerr)
		}
		return fmt.Errorf("%w: barrier: %v", ErrUnavailable, err)
	}
	b.mu.Lock()
	b.subs = []*nats.Subscription{ps, as}
	b.mu.Unlock()
	// Ask the replicas that serve to say so now, rather than at their next
	// heartbeat: this one may serve (and take access away) well within a
	// heartbeat of starting, and must wait for them by then.
	if err := b.announce("probe"); err != nil {
		b.cfg.Log.Warn("replica barrier: asking the other replicas failed; they are heard of at their next heartbeat", "err", err)
	}
	go b.heartbeat()
	return nil
}

// Announce makes the other replicas wait for this one from now on: call it
// once its read models have caught up, before it serves its first request.
// It returns once NATS has taken the announcement (or after Timeout; the
// heartbeat repeats it every Heartbeat until Close).
func (b *Barrier) Announce() {
	b.announced.Store(true)
	if err := b.announce("up"); err != nil {
		b.cfg.Log.Warn("replica barrier: announcing this replica failed; it is announced again every heartbeat", "err", err)
	} else if err := b.nc.FlushTimeout(b.cfg.Timeout); err != nil {
		b.cfg.Log.Warn("replica barrier: NATS did not confirm this replica's announcement; it is announced again every heartbeat", "err", err)
	}
}

// Close says goodbye (the others stop waiting for this replica at once) and
// unsubscribes.
func (b *Barrier) Close() {
	b.once.Do(func() {
		b.mu.Lock()
		started := b.subs != nil
		b.mu.Unlock()
		if !started {
			return
		}
		close(b.stop)
		<-b.done // the heartbeat changes b.subs no more
		for _, s := range b.subs {
			if err := s.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
				b.cfg.Log.Debug("replica barrier: unsubscribe", "err", err)
			}
		}
		if !b.announced.Load() {
			return
		}
		if err := b.announce("down"); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			b.cfg.Log.Debug("replica barrier: goodbye not sent", "err", err)
		} else if err == nil {
			if err := b.nc.FlushTimeout(b.cfg.Timeout); err != nil {
				b.cfg.Log.Debug("replica barrier: goodbye not confirmed", "err", err)
			}
		}
	})
}

// A presence message is "<up|down|probe> <replica ID> <unix ms> <MAC>"; one whose
// time is further than presenceSkew from the receiver's clock is dropped (a
// replayed heartbeat cannot keep a dead replica waited for).
const presenceSkew = 30 * time.Second

func (b *Barrier) announce(state string) error {
	ms := strconv.FormatInt(time.Now().UnixMilli(), 10)
	return b.nc.Publish(b.presence, []byte(state+" "+b.id+" "+ms+" "+b.mac("presence", state, b.id, ms)))
}

// mac authenticates the fields of a message (HMAC-SHA256 with the barrier's
// key, each field ended by a NUL, base64url, 128 bits).
func (b *Barrier) mac(fields ...string) string {
	m := hmac.New(sha256.New, b.cfg.Key)
	for _, f := range fields {
		m.Write([]byte(f))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// authentic reports whether tag is the MAC of fields.
func (b *Barrier) authentic(tag string, fields ...string) bool {
	return hmac.Equal([]byte(tag), []byte(b.mac(fields...)))
}

func (b *Barrier) heartbeat() {
	defer close(b.done)
	tick := time.NewTicker(b.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-tick.C:
			if b.outside.Load() {
				b.rejoin()
				continue
			}
			if !b.announced.Load() {
				continue
			}
			if err := b.announce("up"); err != nil {
				b.cfg.Log.Debug("replica barrier: heartbeat not sent", "err", err)
			}
		}
	}
}

// onPresence records another replica's heartbeat or goodbye.
func (b *Barrier) onPresence(m *nats.Msg) {
	f := strings.Split(string(m.Data), " ")
	if len(f) != 4 || f[1] == "" {
		return
	}
	state, id, ms, tag := f[0], f[1], f[2], f[3]
	if id == b.id {
		if !b.authentic(tag, "presence", state, id, ms) {
			return
		}
		switch state {
		case "up":
			b.mu.Lock()
			b.selfHeard = time.Now()
			b.mu.Unlock()
		case "probe":
			b.mu.Lock()
			if b.selfProbe != nil {
				close(b.selfProbe)
				b.selfProbe = nil
			}
			b.mu.Unlock()
		}
		return
	}
	if !b.authentic(tag, "presence", state, id, ms) {
		b.cfg.Log.Warn("replica barrier: a presence message that no replica of this deployment sent (another deployment's master key on the same stream name, or a forgery)")
		b.rejected()
		return
	}
	if at, err := strconv.ParseInt(ms, 10, 64); err != nil || time.Since(time.UnixMilli(at)).Abs() > presenceSkew {
		b.cfg.Log.Warn("replica barrier: a presence message from too far in the past or future: a replay, or replica clocks apart", "replica", id)
		b.rejected()
		return
	}
	if state == "probe" {
		// A replica starting: if this one serves, it says so at once.
		if b.announced.Load() {
			if err := b.announce("up"); err != nil {
				b.cfg.Log.Debug("replica barrier: answer to a starting replica not sent", "err", err)
			}
		}
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch state {
	case "up":
		b.peers[id] = time.Now()
	case "down":
		delete(b.peers, id)
	}
}

// onApplied answers another replica's Wait once this replica's read models
// have applied the sequence it asks for: at once when they have, else from a
// goroutine of its own (the subscription's goroutine also delivers the
// others' requests and must not wait).
func (b *Barrier) onApplied(m *nats.Msg) {
	f := strings.Split(string(m.Data), " ")
	if len(f) != 3 || f[1] == "" {
		return
	}
	seqText, from, tag := f[0], f[1], f[2]
	if from == b.id {
		// Its own requests come back too: only SelfCheck's (sequence 0)
		// is answered.
		if seqText == "0" && m.Reply != "" && b.authentic(tag, "applied", seqText, from, m.Reply) {
			b.respond(m, seqText)
		}
		return
	}
	if !b.authentic(tag, "applied", seqText, from, m.Reply) {
		b.cfg.Log.Warn("replica barrier: a request that no replica of this deployment sent")
		b.rejected()
		return
	}
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil {
		b.cfg.Log.Warn("replica barrier: a request that is not a sequence", "from", from)
		return
	}
	if seq == 0 {
		return // another replica's SelfCheck: it waits for its own answer only
	}
	for r := b.required.Load(); r < seq && !b.required.CompareAndSwap(r, seq); r = b.required.Load() {
	}
	if m.Reply == "" {
		return // a notice: nobody waits for the answer (see Wait)
	}
	if !strings.HasPrefix(m.Reply, b.confirm+".") {
		b.olderRequest(m.Reply, from)
	}
	answer := func() { b.respond(m, seqText) }
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Timeout)
	if b.cfg.Applied(doneContext, seq) == nil {
		cancel()
		answer()
		return
	}
	go func() {
		defer cancel()
		if err := b.cfg.Applied(ctx, seq); err != nil {
			b.cfg.Log.Warn("replica barrier: this replica had not applied an event another one waits for", "sequence", seq, "within", b.cfg.Timeout.String())
			return
		}
		answer()
	}()
}

// olderRequests bounds the reply subjects of older replicas' requests
// remembered (olderRequest) until NATS refuses their answers or not.
const olderRequests = 1024

// olderRequest remembers that the replica from asked for this replica's
// confirmation on reply, outside infracast.replicas.<stream>.confirm: a
// replica of a build before the confirm subjects, which asks on _INBOX.
// With the documented permissions (no publish on _INBOX.>) NATS refuses the
// answer, and Refused then warns once per such replica, rather than the
// connection's ERROR for a permission missing (re-check 20r3: ~170 lines
// during a rolling upgrade, with advice wrong for an operator who had the
// block).
func (b *Barrier) olderRequest(reply, from string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.older == nil || len(b.older) >= olderRequests {
		b.older = map[string]string{}
	}
	b.older[reply] = from
}

// respond confirms request m for seqText on its reply subject.
func (b *Barrier) respond(m *nats.Msg, seqText string) {
	if err := m.Respond([]byte(b.id + " " + b.mac("confirmed", seqText, b.id, m.Reply))); err != nil {
		b.cfg.Log.Debug("replica barrier: answer not sent", "err", err)
	}
}

// replySubject is a new subject for the confirmations of one request of
// this replica's: under infracast.replicas.<stream>.confirm, within the
// permissions the barrier needs anyway (see ReplicaSubjectPrefix).
func (b *Barrier) replySubject() string {
	return b.confirm + "." + b.id + "." + strconv.FormatUint(b.requests.Add(1), 10)
}

// ErrBarrierUnreachable: a replica's own messages did not come back to it
// over NATS (SelfCheck), so it could take no part in the barrier.
var ErrBarrierUnreachable = errors.New("events: the replica barrier's messages do not reach this replica")

// SelfCheck makes sure that this replica takes part in the barrier before
// it serves: that it hears its own probe on the presence
// subject, and answers its own request, over NATS, on a confirm subject. A
// replica whose NATS user may not subscribe or publish to
// infracast.replicas.> would otherwise serve while the others neither wait
// for it nor hear its confirmations: it would accept tokens just revoked
// through them (outside check 20n), with nothing but a log line to show.
// Call it after Start; it returns ErrBarrierUnreachable (saying which part
// did not come back) when ctx ends first.
func (b *Barrier) SelfCheck(ctx context.Context) error {
	reply := b.replySubject()
	probe := make(chan struct{})
	b.mu.Lock()
	b.selfProbe = probe
	b.mu.Unlock()
	answers := make(chan *nats.Msg, 4)
	sub, err := b.nc.ChanSubscribe(reply, answers)
	if err != nil {
		return fmt.Errorf("%w: barrier: %v", ErrUnavailable, err)
	}
	defer func() {
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			b.cfg.Log.Debug("replica barrier: unsubscribe", "err", err)
		}
	}()
	// The probe again (Start's may have been lost): the replicas that serve
	// answer it with their heartbeat, as they do Start's.
	if err := b.announce("probe"); err != nil {
		return fmt.Errorf("%w: barrier: %v", ErrUnavailable, err)
	}
	if err := b.nc.PublishRequest(b.applied, reply, []byte("0 "+b.id+" "+b.mac("applied", "0", b.id, reply))); err != nil {
		return fmt.Errorf("%w: barrier: %v", ErrUnavailable, err)
	}
	answered := false
	for probe != nil || !answered {
		select {
		case <-probe:
			probe = nil
		case m := <-answers:
			id, tag, _ := strings.Cut(string(m.Data), " ")
			answered = answered || (id == b.id && b.authentic(tag, "confirmed", "0", b.id, reply))
		case <-ctx.Done():
			var missing []string
			if probe != nil {
				missing = append(missing, "its presence probe on "+b.presence)
			}
			if !answered {
				missing = append(missing, "the answer to its own request on "+b.applied+" (sent to "+reply+")")
			}
			return fmt.Errorf("%w: %s did not come back (%v)", ErrBarrierUnreachable, strings.Join(missing, " and "), context.Cause(ctx))
		}
	}
	return nil
}

func (b *Barrier) rejected() {
	if b.cfg.Rejected != nil {
		b.cfg.Rejected()
	}
}

// Behind reports whether another replica has asked this one for a stream
// sequence — the event of a revocation it stored — that this one's read
// models have not applied yet. Then a credential must not be checked here
// before WaitRequired: the other replica may have given up waiting (this
// one was paused, starved or cut off for longer than its Timeout) and
// answered its client already. It is also true while this replica is
// Outside the barrier: the others do not reach it, and it cannot know what
// they revoked a moment ago. A few atomic loads: it is on every request.
func (b *Barrier) Behind() bool {
	if b.outside.Load() {
		return true
	}
	r := b.required.Load()
	return r != 0 && b.cfg.AppliedSeq() < r
}

// WaitRequired waits until this replica takes part in the barrier (see
// Outside) and its read models have applied every sequence another replica
// has asked for (see Behind), or ctx ends: outside, it returns an
// ErrBarrierUnreachable then.
func (b *Barrier) WaitRequired(ctx context.Context) error {
	b.mu.Lock()
	rejoined := b.rejoined
	b.mu.Unlock()
	if rejoined != nil {
		select {
		case <-rejoined:
		case <-ctx.Done():
			return fmt.Errorf("%w: NATS refused it a permission; it is outside the barrier (%v)", ErrBarrierUnreachable, context.Cause(ctx))
		}
	}
	return b.cfg.Applied(ctx, b.required.Load())
}

// Outside reports whether NATS refused this replica one of the barrier's
// subscriptions or publishes (Refused) and it has not taken part again
// since: it is not ready, and checks no credential (Behind).
func (b *Barrier) Outside() bool { return b.outside.Load() }

// Refused tells the barrier of a permissions violation NATS reported on the
// connection (nats.ErrorHandler), and reports whether it concerns the
// barrier's subjects (infracast.replicas.<stream>.>): then the barrier has
// logged it, and is Outside until the heartbeat has subscribed again and a
// SelfCheck passed. A permission taken away while the replica runs makes
// the server drop the subscriptions it no longer allows; given back, it
// restores none of them: without this the replica stayed outside the
// barrier, ready, until restarted (re-check 20r3).
func (b *Barrier) Refused(err error) bool {
	if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), `"`+ReplicaSubjectPrefix+"."+b.cfg.Stream+".") {
		return false
	}
	b.mu.Lock()
	first := b.rejoined == nil
	if first {
		b.rejoined = make(chan struct{})
		b.outside.Store(true)
	}
	b.mu.Unlock()
	if !first || !b.announced.Load() {
		// The refusals of its attempts to take part again, every heartbeat;
		// or of a replica not serving yet, whose start ends naming them.
		b.cfg.Log.Debug("replica barrier: NATS refuses this replica's user a permission", "err", err)
		return true
	}
	b.cfg.Log.Error("replica barrier: NATS refused this replica's user a permission of the barrier; it reports not ready and refuses credential checks (503) until it takes part again, which it tries every heartbeat: "+
		"give the service's NATS user publish and subscribe on "+ReplicaSubjectPrefix+".>", "err", err)
	// The others stop waiting for it at once (it may not hear them), rather
	// than each timing out; if its publishes are refused too, they forget
	// it after three heartbeats.
	if err := b.announce("down"); err != nil {
		b.cfg.Log.Debug("replica barrier: goodbye not sent", "err", err)
	}
	return true
}

// RefusedAnswer tells the barrier of a permissions violation NATS reported
// on the connection, and reports whether it refused this replica's answer to
// an older replica's request (olderRequest): then the barrier has warned of
// that replica (once), and the refusal is no permission missing — the
// documented permissions allow no publish on _INBOX.>, where such a replica
// asks for confirmations.
func (b *Barrier) RefusedAnswer(err error) bool {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return false
	}
	_, rest, ok := strings.Cut(err.Error(), `Publish to "_INBOX.`)
	if !ok {
		return false
	}
	reply, _, _ := strings.Cut(rest, `"`)
	reply = "_INBOX." + reply
	b.mu.Lock()
	from, ok := b.older[reply]
	delete(b.older, reply)
	warn := ok && !b.olderWarned[from]
	if warn {
		if b.olderWarned == nil {
			b.olderWarned = map[string]bool{}
		}
		b.olderWarned[from] = true
	}
	b.mu.Unlock()
	if warn {
		b.cfg.Log.Warn("replica barrier: an older replica asks for confirmations on _INBOX, and NATS refuses this replica's answers: "+
			"finish the upgrade, or allow publish on _INBOX.> until then (its revocations do not wait for this replica meanwhile)", "replica", from)
	}
	return ok
}

// rejoin subscribes again to the barrier's subjects (the server dropped
// what it refused) and, once SelfCheck passes, takes part again: ready, and
// announced to the others. Called by the heartbeat while Outside.
func (b *Barrier) rejoin() {
	b.mu.Lock()
	old := b.subs
	b.mu.Unlock()
	for _, s := range old {
		if err := s.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			b.cfg.Log.Debug("replica barrier: unsubscribe", "err", err)
		}
	}
	ps, perr := b.nc.Subscribe(b.presence, b.onPresence)
	as, aerr := b.nc.Subscribe(b.applied, b.onApplied)
	var subs []*nats.Subscription
	for _, s := range []*nats.Subscription{ps, as} {
		if s != nil {
			subs = append(subs, s)
		}
	}
	b.mu.Lock()
	b.subs = subs
	b.mu.Unlock()
	if err := errors.Join(perr, aerr); err != nil {
		b.cfg.Log.Debug("replica barrier: subscribing again failed; tried again at the next heartbeat", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Timeout)
	defer cancel()
	if err := b.SelfCheck(ctx); err != nil {
		b.cfg.Log.Debug("replica barrier: still outside; tried again at the next heartbeat", "err", err)
		return
	}
	b.mu.Lock()
	b.outside.Store(false)
	close(b.rejoined)
	b.rejoined = nil
	b.mu.Unlock()
	b.cfg.Log.Info("replica barrier: this replica takes part again; it reports ready and checks credentials")
	if b.announced.Load() {
		if err := b.announce("up"); err != nil {
			b.cfg.Log.Debug("replica barrier: heartbeat not sent", "err", err)
		}
	}
}

// doneContext is an ended context: Applied with it says whether the sequence
// is applied already, without waiting.
var doneContext = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// Peers returns how many other replicas this one currently waits for.
func (b *Barrier) Peers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.forgetSilentLocked(time.Now())
	return len(b.peers)
}

func (b *Barrier) forgetSilentLocked(now time.Time) {
	if !b.selfHeard.IsZero() && b.selfHeard.Before(now) {
		now = b.selfHeard // silent while this replica could hear, only
	}
	for id, seen := range b.peers {
		if now.Sub(seen) > 3*b.cfg.Heartbeat {
			delete(b.peers, id)
		}
	}
}

// Wait returns once every other live replica has applied stream sequence
// seq, or after Timeout (or when ctx ends), whichever is first. Alone, it
// returns at once, having published the request as a notice. It reports nothing: the event is stored and applied here
// whatever happens; a replica that did not answer is logged, counted
// (Observe) and not waited for again until its next heartbeat.
func (b *Barrier) Wait(ctx context.Context, seq uint64) {
	start := time.Now()
	b.mu.Lock()
	b.forgetSilentLocked(start)
	want := make(map[string]bool, len(b.peers))
	for id := range b.peers {
		want[id] = true
	}
	b.mu.Unlock()
	if len(want) == 0 {
		// Nobody to wait for — but a replica forgotten while it was paused
		// or cut off (silent for three heartbeats) may be about to resume:
		// the notice raises its required sequence when it reads it, so that
		// it refuses credentials until it has applied this (Behind).
		b.notify(seq)
		return
	}
	outcome := b.wait(ctx, seq, want)
	if b.cfg.Observe != nil {
		b.cfg.Observe(time.Since(start), outcome)
	}
}

// notify publishes a request that wants no answer (no reply subject).
func (b *Barrier) notify(seq uint64) {
	seqText := strconv.FormatUint(seq, 10)
	if err := b.nc.Publish(b.applied, []byte(seqText+" "+b.id+" "+b.mac("applied", seqText, b.id, ""))); err != nil {
		b.cfg.Log.Debug("replica barrier: notice not sent", "sequence", seq, "err", err)
	}
}

func (b *Barrier) wait(ctx context.Context, seq uint64, want map[string]bool) string {
	inbox := b.replySubject()
	// Room for every answer: one per replica that heard the request, which
	// may be more than those known here (a replica that just started).
	replies := make(chan *nats.Msg, 2*len(want)+8)
	sub, err := b.nc.ChanSubscribe(inbox, replies)
	if err != nil {
		b.cfg.Log.Warn("replica barrier: not sent; the other replicas apply the event when it reaches them", "sequence", seq, "err", err)
		return "error"
	}
	defer func() {
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			b.cfg.Log.Debug("replica barrier: unsubscribe", "err", err)
		}
	}()
	seqText := strconv.FormatUint(seq, 10)
	if err := b.nc.PublishRequest(b.applied, inbox, []byte(seqText+" "+b.id+" "+b.mac("applied", seqText, b.id, inbox))); err != nil {
		b.cfg.Log.Warn("replica barrier: not sent; the other replicas apply the event when it reaches them", "sequence", seq, "err", err)
		return "error"
	}
	timer := time.NewTimer(b.cfg.Timeout)
	defer timer.Stop()
	for len(want) > 0 {
		select {
		case m := <-replies:
			id, tag, _ := strings.Cut(string(m.Data), " ")
			if !b.authentic(tag, "confirmed", seqText, id, inbox) {
				b.cfg.Log.Warn("replica barrier: a confirmation that no replica of this deployment sent", "sequence", seq)
				b.rejected()
				continue
			}
			delete(want, id)
		case <-ctx.Done():
			return "canceled"
		case <-timer.C:
			silent := make([]string, 0, len(want))
			b.mu.Lock()
			for id := range want {
				silent = append(silent, id)
				delete(b.peers, id) // back with its next heartbeat
			}
			b.mu.Unlock()
			b.cfg.Log.Warn("replica barrier: replicas did not confirm an event within the timeout; it reaches them when they read it",
				"sequence", seq, "replicas", silent, "timeout", b.cfg.Timeout.String())
			return "timeout"
		}
	}
	return "confirmed"
}
