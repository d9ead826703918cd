package tests

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/http/service"
)

// The refresh reuse interval (INFRACAST_REFRESH_REUSE_INTERVAL, with
// INFRACAST_REFRESH_ROTATION=true): a client racing its own refresh — two
// tabs, a retry after a timeout — presents the token it has just spent. Within
// the interval it gets the same successor (and a fresh access token); after
// it, reuse detection revokes the family as before.

// refreshAll posts n refreshes of one refresh token to the instances (round
// robin), released together.
func refreshAll(t *testing.T, n int, rt string, ins ...*Instance) []Response {
	t.Helper()
	body := jsonBody(map[string]string{"refresh_token": rt})
	return parallel(t, n, func(i int) (Response, error) {
		return send(ins[i%len(ins)].URL, request{Method: "POST", Path: "/api/v1/auth/refresh", ContentType: "application/json", Body: body})
	})
}

// expectSameSuccessor checks that every response is a 200 with a new access
// token and the same new refresh token, and returns that refresh token.
func expectSameSuccessor(t *testing.T, presented string, res []Response) string {
	t.Helper()
	successor := ""
	tokens := map[string]bool{}
	for i, r := range res {
		expectStatus(t, fmt.Sprintf("refresh %d", i), r, 200)
		rt, tok := r.String("refresh_token"), r.String("token")
		if rt == "" || rt == presented || tok == "" {
			t.Fatalf("refresh %d: %s", i, r.Raw)
		}
		if successor == "" {
			successor = rt
		}
		if rt != successor {
			t.Fatalf("refresh %d got refresh token %.8s…, refresh 0 got %.8s…: two successors", i, rt, successor)
		}
		if tokens[tok] {
			t.Fatalf("refresh %d: an access token handed out twice", i)
		}
		tokens[tok] = true
	}
	return successor
}

// expectOneLiveSuccessor checks the session in an instance's read model: not
// revoked, successor is its one live refresh token, presented the one spent
// last, refreshes refreshes in all.
func expectOneLiveSuccessor(t *testing.T, in *Instance, sid, presented, successor string, refreshes int) {
	t.Helper()
	s, _, ok := in.Svc.Model.Session(sid)
	if !ok {
		t.Fatalf("session %s unknown", sid)
	}
	spent := s.SpentHashes
	if s.Revoked || s.RefreshTokenHash != commands.HashToken(successor) ||
		len(spent) == 0 || spent[len(spent)-1] != commands.HashToken(presented) || s.Refreshes != refreshes {
		t.Fatalf("session: revoked %v (%q), current is the successor %v, %d spent, %d refreshes (want %d)",
			s.Revoked, s.RevokeReason, s.RefreshTokenHash == commands.HashToken(successor), len(spent), s.Refreshes, refreshes)
	}
}

// expectFamilyRevoked checks that reuse detection revoked the session: its
// refresh tokens and access tokens get 401.
func expectFamilyRevoked(t *testing.T, in *Instance, sid string, refreshTokens, accessTokens []string) {
	t.Helper()
	Eventually(t, 10*time.Second, func() error {
		if s, _, _ := in.Svc.Model.Session(sid); !s.Revoked || s.RevokeReason != domain.RevokeReasonReuse {
			return Errorf("session: revoked %v, reason %q", s.Revoked, s.RevokeReason)
		}
		return nil
	})
	for i, rt := range refreshTokens {
		expectBody(t, fmt.Sprintf("refresh token %d after reuse", i), refresh(t, in, rt), 401, bodyUnauthorized)
	}
	for i, tok := range accessTokens {
		expectBody(t, fmt.Sprintf("access token %d after reuse", i), me(t, in, tok), 401, bodyUnauthorized)
	}
}

// TestRefreshReuseTwoParallelRefreshesBothSucceed reproduces the defect: with
// rotation on (and the default reuse interval), two parallel refreshes of one
// token used to answer one 200 and one reuse, and revoke the winner's new
// token with the family. Now both answer 200 with the same new refresh
// token, which then works.
func TestRefreshReuseTwoParallelRefreshesBothSucceed(t *testing.T) {
	t.Parallel()
	in := Start(t, WithRotation())
	in.CreateUser(in.AdminToken(), "alice", "alice-passphrase", map[string]string{"prod": "viewer"})
	rt := in.Login("alice", "alice-passphrase").String("refresh_token")
	sid := sessionOf(t, in, rt)

	res := refreshAll(t, 2, rt, in)
	successor := expectSameSuccessor(t, rt, res)
	for i, r := range res {
		expectStatus(t, fmt.Sprintf("access token of refresh %d", i), me(t, in, r.String("token")), 200)
	}
	expectOneLiveSuccessor(t, in, sid, rt, successor, 2)

	next := refresh(t, in, successor)
	expectStatus(t, "refresh with the successor", next, 200)
	if r := next.String("refresh_token"); r == "" || r == successor {
		t.Fatalf("the successor did not rotate: %s", next.Raw)
	}
	expectStatus(t, "its access token", me(t, in, next.String("token")), 200)
}

// TestRefreshReuseTenParallelRefreshesOneSuccessor: ten parallel refreshes of
// one token all succeed with the same successor and leave exactly one live
// refresh token; the stream records one rotation and nine reissues, and no
// reuse. The token spent before the successor's own rotation is reuse at once.
func TestRefreshReuseTenParallelRefreshesOneSuccessor(t *testing.T) {
	t.Parallel()
	in := Start(t, WithRotation())
	in.CreateUser(in.AdminToken(), "alice", "alice-passphrase", map[string]string{"prod": "viewer"})
	rt := in.Login("alice", "alice-passphrase").String("refresh_token")
	sid := sessionOf(t, in, rt)

	const n = 10
	res := refreshAll(t, n, rt, in)
	successor := expectSameSuccessor(t, rt, res)
	var access []string
	for i, r := range res {
		expectStatus(t, fmt.Sprintf("access token of refresh %d", i), me(t, in, r.String("token")), 200)
		access = append(access, r.String("token"))
	}
	expectOneLiveSuccessor(t, in, sid, rt, successor, n)
	if s, _, _ := in.Svc.Model.Session(sid); len(s.SpentHashes) != 1 {
		t.Fatalf("%d spent refresh tokens, want 1 (one rotation)", len(s.SpentHashes))
	}
	rotations, reissues := 0, 0
	for _, e := range storedEvents(t, in.Svc) {
		if e.Type != domain.TypeSessionRefreshed || e.AggregateID != sid {
			continue
		}
		var r domain.SessionRefreshed
		if err := json.Unmarshal(e.Data, &r); err != nil {
			t.Fatal(err)
		}
		switch {
		case r.RefreshTokenHash != "" && !r.RefreshTokenReissued:
			rotations++
		case r.RefreshTokenHash == "" && r.RefreshTokenReissued:
			reissues++
		default:
			t.Fatalf("session.refreshed neither a rotation nor a reissue: %s", e.Data)
		}
	}
	if rotations != 1 || reissues != n-1 {
		t.Fatalf("%d rotations and %d reissues, want 1 and %d", rotations, reissues, n-1)
	}
	if got := countEvents(storedEvents(t, in.Svc), domain.TypeSessionRefreshReused, sid); got != 0 {
		t.Fatalf("%d session.refresh_reused events, want 0", got)
	}

	// The successor rotates; the token spent before it is now two rotations
	// old — no longer the one spent last — and is reuse, interval or not.
	next := refresh(t, in, successor)
	expectStatus(t, "refresh with the successor", next, 200)
	expectBody(t, "the first token after the second rotation", refresh(t, in, rt), 401, bodyUnauthorized)
	expectFamilyRevoked(t, in, sid, []string{successor, next.String("refresh_token")}, append(access, next.String("token")))
}

// TestRefreshReuseIntervalBoundary: with the clock held, the spent token
// presented again one instant before the interval ends gets the same
// successor; at the end of the interval plus the tolerated clock skew
// (domain.ClockSkewTolerance: the deciding replica's clock may be ahead of
// the rotating one's) it is reuse, and the whole family is revoked (reuse
// detection as before). The interval is configurable.
func TestRefreshReuseIntervalBoundary(t *testing.T) {
	t.Parallel()
	const interval = 30 * time.Second
	in := Start(t, WithRotation(), WithReuseInterval(interval))
	in.CreateUser(in.AdminToken(), "alice", "alice-passphrase", map[string]string{"prod": "viewer"})
	login := in.Login("alice", "alice-passphrase")
	rt := login.String("refresh_token")
	sid := sessionOf(t, in, rt)

	first := refresh(t, in, rt)
	expectStatus(t, "first refresh", first, 200)
	successor := first.String("refresh_token")

	in.Clock.Advance(interval + domain.ClockSkewTolerance - time.Nanosecond)
	again := refresh(t, in, rt)
	expectStatus(t, "the spent token, one instant before the interval (and the tolerated skew) ends", again, 200)
	if again.String("refresh_token") != successor {
		t.Fatalf("inside the interval: another successor (%s)", again.Raw)
	}
	expectStatus(t, "its access token", me(t, in, again.String("token")), 200)
	expectOneLiveSuccessor(t, in, sid, rt, successor, 2)

	in.Clock.Advance(time.Nanosecond)
	expectBody(t, "the spent token at the end of the interval", refresh(t, in, rt), 401, bodyUnauthorized)
	expectFamilyRevoked(t, in, sid, []string{successor, rt},
		[]string{login.String("token"), first.String("token"), again.String("token")})
	envs := storedEvents(t, in.Svc)
	for typ, want := range map[string]int{domain.TypeSessionRefreshReused: 1, domain.TypeSessionRevoked: 1} {
		if got := countEvents(envs, typ, sid); got != want {
			t.Fatalf("%d %s events, want %d", got, typ, want)
		}
	}
}

// TestRefreshReuseIntervalZeroIsOff: INFRACAST_REFRESH_REUSE_INTERVAL=0
// keeps the behaviour without a grace: the spent token presented again at the
// same instant revokes the family.
func TestRefreshReuseIntervalZeroIsOff(t *testing.T) {
	t.Parallel()
	in := Start(t, WithRotation(), WithReuseInterval(0))
	in.CreateUser(in.AdminToken(), "alice", "alice-passphrase", map[string]string{"prod": "viewer"})
	rt := in.Login("alice", "alice-passphrase").String("refresh_token")
	sid := sessionOf(t, in, rt)
	first := refresh(t, in, rt)
	expectStatus(t, "first refresh", first, 200)
	expectBody(t, "the spent token at once", refresh(t, in, rt), 401, bodyUnauthorized)
	expectFamilyRevoked(t, in, sid, []string{first.String("refresh_token")}, []string{first.String("token")})
}

// TestRefreshReuseOnAnotherReplica: two replicas on one event store. A client
// refreshes on replica A, and its retry lands on replica B: B hands out the
// same successor, although no event holds it (B derives it, with the key
// both derive from the master key). Refreshes of one token racing on both
// replicas all succeed with one successor — whether B had applied A's
// rotation or, deciding on stale state, conflicted and decided again. After
// the interval, the retry on B is reuse, and the family is revoked on both.
func TestRefreshReuseOnAnotherReplica(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 1)
	cl := NewClock()
	a := d.StartReplica(t, WithRotation(), WithClock(cl))
	b := d.StartReplica(t, WithRotation(), WithClock(cl))
	a.CreateUser(a.AdminToken(), "alice", "alice-passphrase", map[string]string{"prod": "viewer"})
	login := func() (rt, sid string) {
		t.Helper()
		rt = a.Login("alice", "alice-passphrase").String("refresh_token")
		sid = sessionOf(t, a, rt)
		// A refresh token carries no session ID: B must know the session
		// before it can look the token up.
		Eventually(t, 10*time.Second, func() error {
			if _, ok := b.Svc.Model.SessionByRefreshHash(commands.HashToken(rt)); !ok {
				return Errorf("replica B has not applied the login yet")
			}
			return nil
		})
		return rt, sid
	}

	// A retry on B after the refresh on A.
	rt, sid := login()
	first := refresh(t, a, rt)
	expectStatus(t, "refresh on A", first, 200)
	successor := first.String("refresh_token")
	retry := refresh(t, b, rt)
	expectStatus(t, "the retry on B", retry, 200)
	if retry.String("refresh_token") != successor {
		t.Fatalf("replica B handed out another successor: %s", retry.Raw)
	}
	expectStatus(t, "B's access token on A", me(t, a, retry.String("token")), 200)
	expectOneLiveSuccessor(t, b, sid, rt, successor, 2)
	expectStatus(t, "the successor on B", refresh(t, b, successor), 200)

	// Refreshes of one token racing on both replicas.
	for round := range 3 {
		rt, sid := login()
		successor := expectSameSuccessor(t, rt, refreshAll(t, 6, rt, a, b))
		Eventually(t, 10*time.Second, func() error { // both replicas, each may be behind the other
			for name, in := range map[string]*Instance{"A": a, "B": b} {
				if s, _, _ := in.Svc.Model.Session(sid); s.Refreshes != 6 {
					return Errorf("round %d: replica %s has applied %d refreshes", round, name, s.Refreshes)
				}
			}
			return nil
		})
		expectOneLiveSuccessor(t, a, sid, rt, successor, 6)
		expectOneLiveSuccessor(t, b, sid, rt, successor, 6)
	}

	// After the interval (and the tolerated clock skew), the retry on B is
	// reuse.
	rt, sid = login()
	first = refresh(t, a, rt)
	expectStatus(t, "refresh on A", first, 200)
	cl.Advance(service.DefaultRefreshReuseInterval + domain.ClockSkewTolerance)
	expectBody(t, "the retry on B after the interval", refresh(t, b, rt), 401, bodyUnauthorized)
	expectFamilyRevoked(t, b, sid, []string{first.String("refresh_token")}, []string{first.String("token")})
	expectFamilyRevoked(t, a, sid, []string{first.String("refresh_token")}, []string{first.String("token")})
}
