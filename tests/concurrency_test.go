package tests

import (
	"fmt"
	"sync"
	"testing"

	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/http/service"
)

// parallel runs f(i) for i in [0,n) on n goroutines released together, and
// returns the responses; a transport error fails the test.
func parallel(t *testing.T, n int, f func(i int) (Response, error)) []Response {
	t.Helper()
	out := make([]Response, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i], errs[i] = f(i)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return out
}

// TestConcurrentRefreshesOfOneSession: 20 parallel refreshes of one session
// all succeed, and all 20 are recorded; the optimistic-concurrency conflict
// path was taken on the way.
func TestConcurrentRefreshesOfOneSession(t *testing.T) {
	t.Parallel()
	in := Start(t)
	in.CreateUser(in.AdminToken(), "alice", "alice-passphrase", map[string]string{"prod": "viewer"})
	rt := in.Login("alice", "alice-passphrase").String("refresh_token")
	sid := sessionOf(t, in, rt)
	conflicts := in.Svc.Commands.Conflicts()

	const n = 20
	body := jsonBody(map[string]string{"refresh_token": rt})
	res := parallel(t, n, func(int) (Response, error) {
		return send(in.URL, request{Method: "POST", Path: "/api/v1/auth/refresh", ContentType: "application/json", Body: body})
	})
	tokens := map[string]bool{}
	for i, r := range res {
		expectStatus(t, fmt.Sprintf("refresh %d", i), r, 200)
		tokens[r.String("token")] = true
	}
	if len(tokens) != n {
		t.Fatalf("%d distinct tokens from %d refreshes", len(tokens), n)
	}
	for tok := range tokens {
		expectStatus(t, "token from a parallel refresh", me(t, in, tok), 200)
	}
	s, _, _ := in.Svc.Model.Session(sid)
	if s.Refreshes != n || s.Revoked {
		t.Fatalf("session: %d refreshes (want %d), revoked %v", s.Refreshes, n, s.Revoked)
	}
	if got := countEvents(storedEvents(t, in.Svc), "session.refreshed", sid); got != n {
		t.Fatalf("%d session.refreshed events for the session, want %d", got, n)
	}
	if c := in.Svc.Commands.Conflicts() - conflicts; c == 0 {
		t.Fatal("no write conflict happened: the retry path was not exercised")
	} else {
		t.Logf("%d conflicts retried", c)
	}
}

// TestConcurrentRoleGrantsOnOneUser: 20 parallel grants in 20 tenants on one
// user all land.
func TestConcurrentRoleGrantsOnOneUser(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	uid := in.CreateUser(admin, "eve", "eve-password", nil)
	conflicts := in.Svc.Commands.Conflicts()

	const n = 20
	res := parallel(t, n, func(i int) (Response, error) {
		return send(in.URL, request{Method: "PUT", Path: fmt.Sprintf("/api/v1/users/%s/tenants/t-%02d", uid, i), Token: admin,
			ContentType: "application/json", Body: []byte(`{"role":"viewer"}`)})
	})
	for i, r := range res {
		expectStatus(t, fmt.Sprintf("grant %d", i), r, 200)
	}
	u, _, _ := in.Svc.Model.User(uid)
	if len(u.Tenants) != n {
		t.Fatalf("user has %d tenants, want %d: %v", len(u.Tenants), n, u.Tenants)
	}
	g := in.Do("GET", "/api/v1/users/"+uid, admin, nil)
	if ts, _ := g.JSON["tenants"].([]any); len(ts) != n {
		t.Fatalf("GET user lists %d tenants: %s", len(ts), g.Raw)
	}
	if got := countEvents(storedEvents(t, in.Svc), "user.role_granted", uid); got != n {
		t.Fatalf("%d user.role_granted events, want %d", got, n)
	}
	tok := in.Login("eve", "eve-password").String("token")
	for i := range n {
		expectStatus(t, "verify in each granted tenant", verify(t, in, tok, "GET", fmt.Sprintf("/api/v1/tenants/t-%02d/nodes", i)), 200)
	}
	if c := in.Svc.Commands.Conflicts() - conflicts; c == 0 {
		t.Fatal("no write conflict happened: the retry path was not exercised")
	} else {
		t.Logf("%d conflicts retried", c)
	}
}

// sustained runs f(i, j) on n goroutines released together, each sending
// its j in [0, each) one after the other, and fails the test for every
// answer that is not want (or a transport error).
func sustained(t *testing.T, n, each, want int, f func(i, j int) (Response, error)) {
	t.Helper()
	var mu sync.Mutex
	var bad []string
	parallel(t, n, func(i int) (Response, error) {
		for j := range each {
			r, err := f(i, j)
			if err == nil && r.Status == want {
				continue
			}
			mu.Lock()
			bad = append(bad, fmt.Sprintf("writer %d, #%d: %d %s %v", i, j, r.Status, r.Raw, err))
			mu.Unlock()
		}
		return Response{}, nil
	})
	for _, b := range bad {
		t.Error(b)
	}
}

// TestSustainedWritersOnOneAggregate: threads of one client refreshing one
// session at once (rotation off), each refresh after the one before it,
// and admins granting roles to one user and creating keys in one tenant
// at once: every request succeeds — none answers 409 "too many
// conflicting writes" — each with its event, and the user ends as a
// serial order would leave them. The writers of a replica take turns on a
// subject once they have conflicted (commands.subjectLocks). Before, each
// retry raced the same writers again across an fsync'd append, and one
// could lose 25 times in a row (outside check 18w: 36 of 4,000 refreshes
// by 8 threads answered 409).
func TestSustainedWritersOnOneAggregate(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	in.CreateUser(admin, "alice", "alice-passphrase", map[string]string{"prod": "viewer"})
	uid := in.CreateUser(admin, "bob", "bob-passphrase", nil)
	rt := in.Login("alice", "alice-passphrase").String("refresh_token")
	sid := sessionOf(t, in, rt)
	body := jsonBody(map[string]string{"refresh_token": rt})

	total := 0
	for _, n := range []int{8, 16} {
		const each = 30
		sustained(t, n, each, 200, func(int, int) (Response, error) {
			return send(in.URL, request{Method: "POST", Path: "/api/v1/auth/refresh", ContentType: "application/json", Body: body})
		})
		total += n * each
	}
	if s, _, _ := in.Svc.Model.Session(sid); s.Refreshes != total || s.Revoked {
		t.Errorf("session: %d refreshes (want %d), revoked %v", s.Refreshes, total, s.Revoked)
	}
	if got := countEvents(storedEvents(t, in.Svc), "session.refreshed", sid); got != total {
		t.Errorf("%d session.refreshed events for the session, want %d", got, total)
	}

	// Each writer grants viewer, then editor, then admin in a tenant of
	// its own: a serial order ends with admin in each.
	const writers = 16
	roles := []string{"viewer", "editor", "admin"}
	sustained(t, writers, len(roles), 200, func(i, j int) (Response, error) {
		return send(in.URL, request{Method: "PUT", Path: fmt.Sprintf("/api/v1/users/%s/tenants/t-%02d", uid, i), Token: admin,
			ContentType: "application/json", Body: jsonBody(map[string]string{"role": roles[j]})})
	})
	u, _, _ := in.Svc.Model.User(uid)
	for i := range writers {
		if got := u.Tenants[fmt.Sprintf("t-%02d", i)]; string(got) != "admin" {
			t.Errorf("t-%02d: %q, want admin", i, got)
		}
	}
	if got := countEvents(storedEvents(t, in.Svc), "user.role_granted", uid); got != writers*len(roles) {
		t.Errorf("%d user.role_granted events, want %d", got, writers*len(roles))
	}

	const keys = 4
	sustained(t, writers, keys, 201, func(i, j int) (Response, error) {
		return send(in.URL, request{Method: "POST", Path: "/api/v1/api-keys", Token: admin, ContentType: "application/json",
			Body: jsonBody(map[string]any{"name": fmt.Sprintf("deploy-%d-%d", i, j), "tenants": []string{"prod"}, "permissions": []string{"nodes:read"}})})
	})
	if got := countEvents(storedEvents(t, in.Svc), "apikey.created", ""); got != writers*keys {
		t.Errorf("%d api_key.created events, want %d", got, writers*keys)
	}
}

// TestConcurrentUserCreationSameUsername: parallel creations of one username
// (in different cases) yield exactly one user.
func TestConcurrentUserCreationSameUsername(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	const n = 10
	res := parallel(t, n, func(i int) (Response, error) {
		name := "zed"
		if i%2 == 1 {
			name = "ZED"
		}
		return send(in.URL, request{Method: "POST", Path: "/api/v1/users", Token: admin, ContentType: "application/json",
			Body: jsonBody(map[string]string{"username": name, "email": "zed@example.com", "password": "zed-password"})})
	})
	created := 0
	for i, r := range res {
		switch r.Status {
		case 201:
			created++
		case 409:
			expectBody(t, fmt.Sprintf("create %d", i), r, 409, `{"error":{"code":"CONFLICT","message":"Username is already taken"}}`)
		default:
			t.Fatalf("create %d: %d %s", i, r.Status, r.Raw)
		}
	}
	if created != 1 {
		t.Fatalf("%d users created, want 1", created)
	}
	if got := countEvents(storedEvents(t, in.Svc), "user.created", ""); got != 2 { // admin + zed
		t.Fatalf("%d user.created events, want 2", got)
	}
}

// TestRotationReuseDetection: with rotation on, each refresh hands out the next
// refresh token, and presenting a spent one revokes the whole session.
func TestRotationReuseDetection(t *testing.T) {
	t.Parallel()
	in := Start(t, WithRotation())
	in.CreateUser(in.AdminToken(), "alice", "alice-passphrase", map[string]string{"prod": "viewer"})
	login := in.Login("alice", "alice-passphrase")
	r1 := login.String("refresh_token")

	a := refresh(t, in, r1)
	expectStatus(t, "first refresh", a, 200)
	r2 := a.String("refresh_token")
	if r2 == "" || r2 == r1 {
		t.Fatalf("rotation: refresh answered %s", a.Raw)
	}
	b := refresh(t, in, r2)
	expectStatus(t, "second refresh with the new token", b, 200)
	r3 := b.String("refresh_token")
	expectStatus(t, "access token before reuse", me(t, in, b.String("token")), 200)

	// Replaying r1 (spent) is reuse: 401, and the session is gone.
	expectBody(t, "replay a spent refresh token", refresh(t, in, r1), 401, bodyUnauthorized)
	expectBody(t, "current refresh token after reuse", refresh(t, in, r3), 401, bodyUnauthorized)
	expectBody(t, "access token after reuse", me(t, in, b.String("token")), 401, bodyUnauthorized)
	expectBody(t, "login's access token after reuse", me(t, in, login.String("token")), 401, bodyUnauthorized)
	s, _, _ := in.Svc.Model.Session(sessionOf(t, in, r1))
	if !s.Revoked || s.RevokeReason != "refresh_token_reuse" {
		t.Fatalf("session after reuse: revoked %v, reason %q", s.Revoked, s.RevokeReason)
	}
	// Another session of the same user is untouched.
	other := in.Login("alice", "alice-passphrase")
	expectStatus(t, "other session", refresh(t, in, other.String("refresh_token")), 200)
}

// TestRotationParallelRefreshesOfOneToken: with rotation on and the reuse
// interval off (INFRACAST_REFRESH_REUSE_INTERVAL=0), 20 parallel refreshes of
// the same refresh token: exactly one wins, the others are reuse, and the
// session ends up revoked. (With the interval on, all of them succeed with one
// successor: tests/refresh_reuse_test.go.)
func TestRotationParallelRefreshesOfOneToken(t *testing.T) {
	t.Parallel()
	in := Start(t, WithRotation(), WithReuseInterval(0))
	in.CreateUser(in.AdminToken(), "alice", "alice-passphrase", map[string]string{"prod": "viewer"})
	login := in.Login("alice", "alice-passphrase")
	rt := login.String("refresh_token")
	sid := sessionOf(t, in, rt)

	const n = 20
	body := jsonBody(map[string]string{"refresh_token": rt})
	res := parallel(t, n, func(int) (Response, error) {
		return send(in.URL, request{Method: "POST", Path: "/api/v1/auth/refresh", ContentType: "application/json", Body: body})
	})
	var winner Response
	ok := 0
	for i, r := range res {
		switch r.Status {
		case 200:
			ok++
			winner = r
		default:
			expectBody(t, fmt.Sprintf("refresh %d", i), r, 401, bodyUnauthorized)
		}
	}
	if ok != 1 {
		t.Fatalf("%d refreshes succeeded, want exactly 1", ok)
	}
	if winner.String("refresh_token") == "" {
		t.Fatalf("winner without a new refresh token: %s", winner.Raw)
	}

	s, _, _ := in.Svc.Model.Session(sid)
	if !s.Revoked || s.RevokeReason != "refresh_token_reuse" || s.Refreshes != 1 {
		t.Fatalf("session: revoked %v (%q), %d refreshes", s.Revoked, s.RevokeReason, s.Refreshes)
	}
	expectBody(t, "the winner's refresh token", refresh(t, in, winner.String("refresh_token")), 401, bodyUnauthorized)
	expectBody(t, "the winner's access token", me(t, in, winner.String("token")), 401, bodyUnauthorized)
	expectBody(t, "the login's access token", me(t, in, login.String("token")), 401, bodyUnauthorized)

	envs := storedEvents(t, in.Svc)
	for typ, want := range map[string]int{"session.refreshed": 1, "session.refresh_reused": 1, "session.revoked": 1} {
		if got := countEvents(envs, typ, sid); got != want {
			t.Fatalf("%d %s events for the session, want %d", got, typ, want)
		}
	}
}

// TestLoginRacingAPasswordChange: logins with a password race an admin's
// change of that password. Whatever the interleaving, no session decided on
// the old password outlives the change: a login either finished before it
// (and its session is revoked by it) or is refused. The hash cost is raised
// so that a change often lands while a login is verifying.
func TestLoginRacingAPasswordChange(t *testing.T) {
	t.Parallel()
	in := Start(t, func(c *service.Config) {
		c.Hash = commands.HashParams{MemoryKiB: 4 * 1024, Iterations: 1, Parallelism: 1}
		c.LoginMaxFailures, c.LoginMaxFailuresPerAddress = 0, 0 // refused logins are expected here
	})
	admin := in.AdminToken()
	uid := in.CreateUser(admin, "alice", "alice-password-0", map[string]string{"prod": "viewer"})
	const rounds, logins = 15, 4
	succeeded, refused := 0, 0
	for round := range rounds {
		old, next := fmt.Sprintf("alice-password-%d", round), fmt.Sprintf("alice-password-%d", round+1)
		res := parallel(t, logins+1, func(i int) (Response, error) {
			if i == logins {
				return send(in.URL, request{Method: "POST", Path: "/api/v1/users/" + uid + "/password", Token: admin,
					ContentType: "application/json", Body: jsonBody(map[string]string{"password": next})})
			}
			return send(in.URL, request{Method: "POST", Path: "/api/v1/auth/token",
				ContentType: "application/json", Body: jsonBody(map[string]string{"username": "alice", "password": old})})
		})
		expectStatus(t, "password change", res[logins], 204)
		for i, r := range res[:logins] {
			switch r.Status {
			case 200:
				succeeded++
				what := fmt.Sprintf("round %d: token of login %d with the replaced password", round, i)
				expectStatus(t, what, me(t, in, r.String("token")), 401)
				expectStatus(t, what+" (refresh)", refresh(t, in, r.String("refresh_token")), 401)
			case 401:
				refused++
			default:
				t.Fatalf("round %d: login %d: %d %s", round, i, r.Status, r.Raw)
			}
		}
	}
	t.Logf("%d logins finished before the change, %d were refused", succeeded, refused)
}
