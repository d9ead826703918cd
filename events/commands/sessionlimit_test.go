package commands_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// limitClock is a clock the session-limit tests step: each login and
// refresh a second later than the one before, so that the sessions' last
// use orders them.
type limitClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *limitClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *limitClock) step() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
}

// limitReplica is a replica over s (a new stream when nil) whose users
// keep at most limit live sessions (0: no limit), on clock.
func limitReplica(t *testing.T, s *stream, log commands.Log, clock *limitClock, limit int) (*stream, *replicaModel, *commands.Service) {
	t.Helper()
	if s == nil {
		s = &stream{}
	}
	if log == nil {
		log = s
	}
	r, svc, _ := replicaWith(t, s, log, func(c *commands.Config) {
		c.Now, c.MaxSessionsPerUser = clock.Now, limit
	})
	return s, r, svc
}

// limitUser creates user name through svc.
func limitUser(t *testing.T, svc *commands.Service, name string) domain.User {
	t.Helper()
	u, err := svc.CreateUser(context.Background(), events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}, commands.CreateUserInput{
		Username: name, Password: name + "-passphrase-long",
		Tenants: []domain.TenantRole{{Tenant: "prod", Role: domain.RoleViewer}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// limitLogin logs name in through svc, a second after the clock's last step.
func limitLogin(t *testing.T, svc *commands.Service, clock *limitClock, name string) commands.LoginResult {
	t.Helper()
	clock.step()
	res, err := svc.Login(context.Background(), events.Meta{}, commands.LoginInput{Username: name, Password: name + "-passphrase-long"})
	if err != nil {
		t.Fatalf("login of %s: %v", name, err)
	}
	return res
}

// revocationsIn returns the session.revoked events of msgs: session ID →
// reason.
func revocationsIn(t *testing.T, msgs []events.Message) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range msgs {
		_, ev, err := events.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := ev.(domain.SessionRevoked); ok {
			if _, twice := out[r.SessionID]; twice {
				t.Errorf("session %s revoked twice", r.SessionID)
			}
			out[r.SessionID] = r.Reason
		}
	}
	return out
}

// live is the sorted IDs of the user's live sessions on replica svc's
// read model.
func live(r *replicaModel, userID string, now time.Time) []string {
	ids := r.model.UserSessionIDs(userID, now)
	slices.Sort(ids)
	return ids
}

// TestSessionLimitEndsLeastRecentlyUsed: a login that leaves its user one
// session over the limit appends exactly one more batch, holding the
// revocation of the least recently used session (a refresh counts as a
// use), reason session_limit; a login under the limit appends none.
func TestSessionLimitEndsLeastRecentlyUsed(t *testing.T) {
	clock := &limitClock{now: time.Now().UTC()}
	s, r, svc := limitReplica(t, nil, nil, clock, 3)
	u := limitUser(t, svc, "carol")
	var first []commands.LoginResult
	for range 3 {
		before := len(s.appends)
		first = append(first, limitLogin(t, svc, clock, "carol"))
		if n := len(s.appends) - before; n != 2 {
			t.Fatalf("a login under the limit made %d appends, want 2 (session.started, user.login_succeeded)", n)
		}
	}
	// The first session is refreshed: the second is the least recently used.
	clock.step()
	if _, err := svc.Refresh(context.Background(), events.Meta{}, first[0].RefreshToken); err != nil {
		t.Fatal(err)
	}
	before := len(s.appends)
	fourth := limitLogin(t, svc, clock, "carol")
	if n := len(s.appends) - before; n != 3 {
		t.Fatalf("a login one over the limit made %d appends, want 3 (the login's two, then the revocation)", n)
	}
	last := s.appends[len(s.appends)-1]
	if got := revocationsIn(t, last); len(last) != 1 || got[first[1].Session.ID] != domain.RevokeReasonSessionLimit {
		t.Fatalf("the limit's append holds %d messages, revocations %v; want the second session's alone, reason %q", len(last), got, domain.RevokeReasonSessionLimit)
	}
	want := []string{first[0].Session.ID, first[2].Session.ID, fourth.Session.ID}
	slices.Sort(want)
	if got := live(r, u.ID, clock.Now()); !slices.Equal(got, want) {
		t.Fatalf("live sessions %v, want %v", got, want)
	}
	if _, err := svc.Refresh(context.Background(), events.Meta{}, first[1].RefreshToken); !errors.Is(err, domain.ErrSessionRevoked) {
		t.Errorf("refresh of the ended session: %v, want %v", err, domain.ErrSessionRevoked)
	}
	if sess, _, _ := r.model.Session(first[1].Session.ID); sess.RevokeReason != domain.RevokeReasonSessionLimit {
		t.Errorf("the ended session's reason is %q", sess.RevokeReason)
	}
	if n := svc.SessionLimitFailures(); n != 0 {
		t.Errorf("SessionLimitFailures = %d", n)
	}
}

// TestSessionLimitEndsAllBeyondInOneAppend: a user with more live sessions
// than the limit (sessions started without one, the limit lowered since)
// is brought to the limit by its next login: one append of exactly the
// revocations needed, the least recently used, the new session spared.
func TestSessionLimitEndsAllBeyondInOneAppend(t *testing.T) {
	clock := &limitClock{now: time.Now().UTC()}
	s, _, unlimited := limitReplica(t, nil, nil, clock, 0)
	u := limitUser(t, unlimited, "dave")
	var ids []string
	for range 6 {
		ids = append(ids, limitLogin(t, unlimited, clock, "dave").Session.ID)
	}
	_, r, limited := limitReplica(t, s, nil, clock, 2)
	if err := r.WaitFor(context.Background(), uint64(len(s.msgs))); err != nil {
		t.Fatal(err)
	}
	before := len(s.appends)
	next := limitLogin(t, limited, clock, "dave")
	if n := len(s.appends) - before; n != 3 {
		t.Fatalf("the login made %d appends, want 3 (the login's two, then one of the revocations)", n)
	}
	got := revocationsIn(t, s.appends[len(s.appends)-1])
	if len(got) != 5 || len(s.appends[len(s.appends)-1]) != 5 {
		t.Fatalf("the limit's append revoked %v, want the 5 oldest of 7 sessions", got)
	}
	for _, id := range ids[:5] {
		if got[id] != domain.RevokeReasonSessionLimit {
			t.Errorf("session %s: reason %q, want %q", id, got[id], domain.RevokeReasonSessionLimit)
		}
	}
	want := []string{ids[5], next.Session.ID}
	slices.Sort(want)
	if live := live(r, u.ID, clock.Now()); !slices.Equal(live, want) {
		t.Fatalf("live sessions %v, want %v", live, want)
	}
}

// TestSessionLimitLoginsAtOnce: two logins of a user at the limit, through
// two replicas, the second landing entirely between the first's decision
// on what to end and its append: they converge to the limit, no session
// is revoked twice, and both logins' sessions stay live.
func TestSessionLimitLoginsAtOnce(t *testing.T) {
	clock := &limitClock{now: time.Now().UTC()}
	s, a, onA := limitReplica(t, nil, nil, clock, 2)
	_, b, onB := limitReplica(t, s, nil, clock, 2)
	u := limitUser(t, onA, "erin")
	old := []string{limitLogin(t, onA, clock, "erin").Session.ID, limitLogin(t, onA, clock, "erin").Session.ID}
	start := len(s.msgs)
	var second commands.LoginResult
	landed := atOnce(t, s, b, domain.TypeSessionRevoked, func() error {
		clock.step()
		var err error
		second, err = onB.Login(context.Background(), events.Meta{}, commands.LoginInput{Username: "erin", Password: "erin-passphrase-long"})
		return err
	})
	first := limitLogin(t, onA, clock, "erin")
	landed()
	revoked := revocationsIn(t, s.msgs[start:])
	if len(revoked) != 2 || revoked[old[0]] != domain.RevokeReasonSessionLimit || revoked[old[1]] != domain.RevokeReasonSessionLimit {
		t.Fatalf("revoked %v, want the two older sessions once each, reason %q", revoked, domain.RevokeReasonSessionLimit)
	}
	want := []string{first.Session.ID, second.Session.ID}
	slices.Sort(want)
	for name, r := range map[string]*replicaModel{"A": a, "B": b} {
		if err := r.WaitFor(context.Background(), uint64(len(s.msgs))); err != nil {
			t.Fatal(err)
		}
		if got := live(r, u.ID, clock.Now()); !slices.Equal(got, want) {
			t.Errorf("replica %s: live sessions %v, want %v", name, got, want)
		}
	}
	if onA.Conflicts() == 0 {
		t.Error("the first login's revocation did not conflict: the second did not land in between")
	}
}

// failingRevocations is the stream, but appends holding a session.revoked
// fail as an unreachable event store's.
type failingRevocations struct{ *stream }

func (f failingRevocations) Append(ctx context.Context, msgs ...events.Message) (uint64, error) {
	for _, m := range msgs {
		if env, _, err := events.Decode(m.Data); err == nil && env.Type == domain.TypeSessionRevoked {
			return 0, fmt.Errorf("%w: test", events.ErrUnavailable)
		}
	}
	return f.stream.Append(ctx, msgs...)
}

// TestSessionLimitFailureDoesNotFailLogin: when the revocations beyond the
// limit cannot be stored, the login that already started its session
// succeeds all the same; the failure is counted, and the user is over the
// limit until a login stores them.
func TestSessionLimitFailureDoesNotFailLogin(t *testing.T) {
	clock := &limitClock{now: time.Now().UTC()}
	s := &stream{}
	_, r, svc := limitReplica(t, s, failingRevocations{s}, clock, 1)
	u := limitUser(t, svc, "frank")
	limitLogin(t, svc, clock, "frank")
	res := limitLogin(t, svc, clock, "frank")
	if res.RefreshToken == "" || !res.Session.Exists() {
		t.Fatal("the login over the limit did not answer its session")
	}
	if n := svc.SessionLimitFailures(); n != 1 {
		t.Errorf("SessionLimitFailures = %d, want 1", n)
	}
	if n := len(live(r, u.ID, clock.Now())); n != 2 {
		t.Errorf("%d live sessions, want 2 (the revocation failed)", n)
	}
}

// hooked is a replica's log: f is called once, on the first append holding
// an event of type typ, before it is made (or after it is stored, when
// after is set). A test's way to hold one replica's request at a point
// while the other's goes on.
type hooked struct {
	*stream
	typ   string
	after bool
	f     func()
	once  sync.Once
}

func (h *hooked) Append(ctx context.Context, msgs ...events.Message) (uint64, error) {
	holds := false
	for _, m := range msgs {
		if env, _, err := events.Decode(m.Data); err == nil && env.Type == h.typ {
			holds = true
		}
	}
	if holds && !h.after {
		h.once.Do(h.f)
	}
	seq, err := h.stream.Append(ctx, msgs...)
	if holds && h.after && err == nil {
		h.once.Do(h.f)
	}
	return seq, err
}

// TestSessionLimitLoginsAtOnceKeepTheLast: two logins of a user at once,
// first through replica A, second through replica B, both sessions
// started before either login's limit check has decided, and one check's
// revocations held until the other's are done — both ways round, at limits
// 1 and 2. Each login, keeping only its own session and ending the least
// recently used of the rest, ended the other's new session, and at limit 1
// the user had none: both tokens refused at their first use (re-check
// 20r1, 1 in 40 double logins). A login ends only sessions started before
// its own, so the second login's session stays live, and the user has at
// most the limit.
func TestSessionLimitLoginsAtOnceKeepTheLast(t *testing.T) {
	for _, limit := range []int{1, 2} {
		for _, firstDecidesFirst := range []bool{false, true} {
			t.Run(fmt.Sprintf("limit %d, first decides first %v", limit, firstDecidesFirst), func(t *testing.T) {
				sessionLimitLoginsAtOnce(t, limit, firstDecidesFirst)
			})
		}
	}
}

func sessionLimitLoginsAtOnce(t *testing.T, limit int, firstDecidesFirst bool) {
	ctx := context.Background()
	clock := &limitClock{now: time.Now().UTC()}
	s := &stream{}
	onALog := &hooked{stream: s, typ: domain.TypeSessionRevoked}
	onBLog := &hooked{stream: s, typ: domain.TypeSessionRevoked}
	_, a, onA := limitReplica(t, s, onALog, clock, limit)
	_, b, onB := limitReplica(t, s, onBLog, clock, limit)
	u := limitUser(t, onA, "grace")
	var kept []string
	if limit == 2 {
		// A session used after both logins' (its clock ahead): the least
		// recently used of the others is the other login's.
		clock.now = clock.now.Add(time.Hour)
		kept = append(kept, limitLogin(t, onA, clock, "grace").Session.ID)
		clock.now = clock.now.Add(-time.Hour)
	}
	// The second login, through B, runs from the moment the first's
	// session.started is stored; it is held at its limit check — before
	// its revocations are appended (the second decides first), or before
	// it decides, right after its login record is stored (the first
	// decides first, and the first's revocations, if any, wait for the
	// second to be done).
	reached, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var second commands.LoginResult
	var secondErr error
	onBLog.after = firstDecidesFirst
	if firstDecidesFirst {
		onBLog.typ = domain.TypeUserLoginSucceeded
	}
	onBLog.f = func() { close(reached); <-release }
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	onALog.f = func() { letGo(); <-done }
	s.before = func(msgs []events.Message) {
		env, _, err := events.Decode(msgs[0].Data)
		if err != nil || env.Type != domain.TypeUserLoginSucceeded {
			return
		}
		s.before = nil
		head, _ := s.Head(ctx)
		if err := b.WaitFor(ctx, head); err != nil {
			t.Error(err)
		}
		go func() {
			defer close(done)
			clock.step()
			second, secondErr = onB.Login(ctx, events.Meta{}, commands.LoginInput{Username: "grace", Password: "grace-passphrase-long"})
		}()
		select {
		case <-reached:
		case <-done:
		}
	}
	first := limitLogin(t, onA, clock, "grace")
	letGo()
	<-done
	if secondErr != nil {
		t.Fatalf("the second login: %v", secondErr)
	}
	select {
	case <-reached:
	default:
		t.Fatal("the second login was not held at its limit check")
	}
	head, _ := s.Head(ctx)
	for name, r := range map[string]*replicaModel{"A": a, "B": b} {
		if err := r.WaitFor(ctx, head); err != nil {
			t.Fatal(err)
		}
		got := live(r, u.ID, clock.Now())
		if !slices.Contains(got, second.Session.ID) || len(got) > limit {
			t.Errorf("replica %s: live sessions %v (first %s, second %s, before them %v); want the second's live, at most %d",
				name, got, first.Session.ID, second.Session.ID, kept, limit)
		}
	}
	for id, reason := range revocationsIn(t, s.msgs) {
		if id == second.Session.ID {
			t.Errorf("the second login's session was ended (%s)", reason)
		}
	}
}
