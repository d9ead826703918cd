package tests

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ic "github.com/infracast/auth/http/client"
	"github.com/infracast/auth/http/service"
)

// The Go client (http/client) against the real service: the token source,
// retries on a real 429, the resource-service middleware in both modes.

func newClient(t *testing.T, in *Instance, opts ...ic.Option) *ic.Client {
	t.Helper()
	c, err := ic.New(in.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// refreshCount counts the session.refreshed events of session sid, through
// the audit API, once the count has settled at want or more.
func refreshCount(t *testing.T, in *Instance, sid string, want int) int {
	t.Helper()
	admin := newClient(t, in, ic.WithAccessToken(in.AdminToken()))
	n := 0
	Eventually(t, 10*time.Second, func() error {
		page, err := admin.AuditEvents(context.Background(), ic.AuditQuery{Type: "session.refreshed", Limit: 1000})
		if err != nil {
			return err
		}
		n = 0
		for _, e := range page.Events {
			var d struct {
				SessionID string `json:"session_id"`
			}
			if err := json.Unmarshal(e.Data, &d); err != nil {
				return err
			}
			if d.SessionID == sid {
				n++
			}
		}
		if n < want {
			return Errorf("%d session.refreshed events, want %d", n, want)
		}
		return nil
	})
	return n
}

// crossMargin has goroutines ask ts for a token at once, and returns the
// distinct tokens they got.
func crossMargin(t *testing.T, ts *ic.TokenSource, goroutines int) map[string]int {
	t.Helper()
	var (
		start sync.WaitGroup
		done  sync.WaitGroup
		mu    sync.Mutex
		got   = map[string]int{}
	)
	start.Add(1)
	for range goroutines {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			tok, err := ts.TokenContext(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got[tok.AccessToken]++
			mu.Unlock()
		}()
	}
	start.Done()
	done.Wait()
	return got
}

// TestClientTokenSourceRefreshesOnce: 100 goroutines crossing the refresh
// margin together cause exactly one refresh, and all of them get its token.
func TestClientTokenSourceRefreshesOnce(t *testing.T) {
	t.Parallel()
	in := Start(t)
	c := newClient(t, in)
	ts := c.PasswordTokenSource(ic.LoginRequest{Username: AdminUser, Password: AdminPassword},
		ic.WithClock(in.Clock.Now), ic.WithRefreshJitter(0))
	authed := c.With(ic.WithTokenSource(ts))
	me, err := authed.Me(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	first := ts.Current()
	// Not yet within the margin: the same token, no refresh.
	in.Clock.Advance(54 * time.Minute)
	if got := crossMargin(t, ts, 100); len(got) != 1 || got[first.AccessToken] != 100 {
		t.Fatalf("before the margin: %d distinct tokens, want the first one 100 times", len(got))
	}
	// 4 minutes left (< 5): one refresh for all.
	in.Clock.Advance(2 * time.Minute)
	got := crossMargin(t, ts, 100)
	if len(got) != 1 || got[first.AccessToken] != 0 {
		t.Fatalf("after the margin: %d distinct tokens (the old one %d times), want one new token", len(got), got[first.AccessToken])
	}
	if n := refreshCount(t, in, me.SessionID, 1); n != 1 {
		t.Fatalf("%d refreshes for 100 goroutines, want 1", n)
	}
	if now := ts.Current(); !now.ExpiresAt.After(first.ExpiresAt) || now.RefreshToken != first.RefreshToken {
		t.Fatalf("the new token expires %s (the first %s); the refresh token changed without rotation: %v",
			now.ExpiresAt, first.ExpiresAt, now.RefreshToken != first.RefreshToken)
	}
	if _, err := authed.Me(context.Background()); err != nil {
		t.Fatalf("the refreshed token: %v", err)
	}
	// oauth2 compatibility: Expiry is the refresh moment, the real expiry
	// in Extra.
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if exp, _ := tok.Extra("expires_at").(time.Time); !exp.Equal(ts.Current().ExpiresAt) || !tok.Expiry.Equal(exp.Add(-ic.DefaultRefreshMargin)) {
		t.Fatalf("oauth2 token: Expiry %s, expires_at %v", tok.Expiry, tok.Extra("expires_at"))
	}
}

// TestClientTokenSourceRotation: with refresh-token rotation on, each
// crossing of the margin (by 50 goroutines) rotates once, the source keeps
// the new refresh token (and tells OnToken), and keeps working; once the
// session is revoked it says ErrLoginRequired, unless told how to log in.
func TestClientTokenSourceRotation(t *testing.T) {
	t.Parallel()
	in := Start(t, WithRotation())
	c := newClient(t, in)
	in.CreateUser(in.AdminToken(), "rotor", "rotor-password-1", map[string]string{"prod": "viewer"})
	var mu sync.Mutex
	var stored []string
	ts := c.PasswordTokenSource(ic.LoginRequest{Username: "rotor", Password: "rotor-password-1"},
		ic.WithClock(in.Clock.Now), ic.WithRefreshJitter(0),
		ic.OnToken(func(tok ic.Token) { mu.Lock(); stored = append(stored, tok.RefreshToken); mu.Unlock() }))
	authed := c.With(ic.WithTokenSource(ts))
	me, err := authed.Me(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{ts.Current().RefreshToken: true}
	for i := 1; i <= 3; i++ {
		in.Clock.Advance(56 * time.Minute)
		if got := crossMargin(t, ts, 50); len(got) != 1 {
			t.Fatalf("rotation %d: %d distinct tokens", i, len(got))
		}
		rt := ts.Current().RefreshToken
		if seen[rt] {
			t.Fatalf("rotation %d: the refresh token did not change", i)
		}
		seen[rt] = true
		if _, err := authed.Me(context.Background()); err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
	}
	if n := refreshCount(t, in, me.SessionID, 3); n != 3 {
		t.Fatalf("%d refreshes for 3 crossings, want 3", n)
	}
	mu.Lock()
	if len(stored) != 4 || stored[3] != ts.Current().RefreshToken {
		t.Errorf("OnToken saw %d refresh tokens (login + 3 rotations), the last one current: %v", len(stored), stored[len(stored)-1] == ts.Current().RefreshToken)
	}
	mu.Unlock()

	// The session ends (its refresh token revoked): the next refresh is
	// refused, and without WithRelogin the source says so.
	if err := c.Revoke(context.Background(), ts.Current().RefreshToken); err != nil {
		t.Fatal(err)
	}
	in.Clock.Advance(56 * time.Minute)
	_, err = ts.TokenContext(context.Background())
	if !errors.Is(err, ic.ErrLoginRequired) || !errors.Is(err, ic.ErrUnauthorized) {
		t.Fatalf("after revocation: %v, want ErrLoginRequired (and ErrUnauthorized)", err)
	}
	if _, err := authed.Me(context.Background()); !errors.Is(err, ic.ErrLoginRequired) {
		t.Fatalf("a call after revocation: %v", err)
	}
	// Told how, a source logs in again.
	ts2 := c.RefreshTokenSource(ic.Token{RefreshToken: "not-a-refresh-token"}, ic.WithClock(in.Clock.Now),
		ic.ReloginWith(ic.LoginRequest{Username: "rotor", Password: "rotor-password-1"}))
	me2, err := c.With(ic.WithTokenSource(ts2)).Me(context.Background())
	if err != nil || me2.Username != "rotor" || me2.SessionID == me.SessionID {
		t.Fatalf("relogin: %v %+v", err, me2)
	}
}

// TestClientRetryAfterOn429: a real 429 from the login throttle. With a
// MaxWait above its Retry-After the client waits exactly that long (here: moves
// the service's clock) and the login succeeds; with the default MaxWait the
// error comes back at once, with RetryAfter, matching ErrRateLimited.
func TestClientRetryAfterOn429(t *testing.T) {
	t.Parallel()
	in := Start(t)
	in.CreateUser(in.AdminToken(), "locked", "locked-password-1", nil)
	for range 5 {
		r := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "locked", "password": "wrong-password"})
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d %s", r.Status, r.Raw)
		}
	}
	req := ic.LoginRequest{Username: "locked", Password: "locked-password-1"}

	var slept []time.Duration
	quick := newClient(t, in, ic.WithSleep(func(context.Context, time.Duration) error {
		t.Error("waited for a Retry-After above MaxWait")
		return nil
	}))
	_, err := quick.Login(context.Background(), req)
	var apiErr *ic.Error
	if !errors.Is(err, ic.ErrRateLimited) || !errors.As(err, &apiErr) || apiErr.RetryAfter != 15*time.Minute || apiErr.Status != 429 {
		t.Fatalf("locked login with MaxWait 30s: %v, want 429 RATE_LIMITED with Retry-After 15m", err)
	}

	patient := newClient(t, in, ic.WithRetry(ic.Retry{MaxWait: time.Hour}), ic.WithSleep(func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		in.Clock.Advance(d)
		return nil
	}))
	res, err := patient.Login(context.Background(), req)
	if err != nil || res.Token == "" {
		t.Fatalf("login after waiting: %v", err)
	}
	if len(slept) != 1 || slept[0] != 15*time.Minute {
		t.Fatalf("waits %v, want [15m0s] (the Retry-After)", slept)
	}
}

// resourceService is a small resource service behind the middleware: it
// answers the identity it was given.
func resourceService(t *testing.T, a ic.Authorizer) *httptest.Server {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := ic.IdentityFrom(r.Context())
		if !ok {
			http.Error(w, "no identity", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(id); err != nil {
			t.Error(err)
		}
	})
	srv := httptest.NewServer(ic.Middleware(a)(h))
	t.Cleanup(srv.Close)
	return srv
}

type resAnswer struct {
	status int
	code   string
	id     ic.Identity
}

func callResource(t *testing.T, srv *httptest.Server, method, path, token string) resAnswer {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := resAnswer{status: res.StatusCode}
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &out.id); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		return out
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(raw, &e); err != nil || e.Error.Message == "" {
		t.Fatalf("%s %s: %d, not the contract's error: %s", method, path, res.StatusCode, raw)
	}
	out.code = e.Error.Code
	return out
}

// TestMiddlewareForwardAuth: the middleware lets an allowed request through
// with the identity in the context, refuses 401 and 403 in the contract's
// shape, sees a revocation (token and API key) on the very next request, and
// keeps its connections to the service alive.
func TestMiddlewareForwardAuth(t *testing.T) {
	t.Parallel()
	in := Start(t)
	adminToken := in.AdminToken()
	alice := in.CreateUser(adminToken, "alice", "alice-password-1", map[string]string{"prod": "viewer"})
	aliceToken := in.Login("alice", "alice-password-1").String("token")

	var dials atomic.Int64
	tr := &http.Transport{MaxIdleConnsPerHost: 8, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	fa, err := ic.NewForwardAuth(in.URL, ic.ForwardAuthHTTPClient(&http.Client{Transport: tr, Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	srv := resourceService(t, fa)

	for range 20 {
		r := callResource(t, srv, "GET", "/api/v1/tenants/prod/nodes", aliceToken)
		if r.status != 200 || r.id.Subject != alice || r.id.Tenant != "prod" || !r.id.Can("nodes:read") || r.id.Can("nodes:write") || r.id.Offline {
			t.Fatalf("alice reads nodes: %+v", r)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("20 sequential requests dialed the service %d times, want 1 (keep-alive)", n)
	}
	for _, c := range []struct {
		method, path, token string
		status              int
		code                string
	}{
		{"POST", "/api/v1/tenants/prod/nodes", aliceToken, 403, "FORBIDDEN"},
		{"GET", "/api/v1/tenants/staging/nodes", aliceToken, 403, "FORBIDDEN"},
		{"GET", "/api/v1/tenants/prod/nodes", "", 401, "UNAUTHORIZED"},
		{"GET", "/api/v1/tenants/prod/nodes", "not-a-token", 401, "UNAUTHORIZED"},
		{"GET", "/somewhere/else", aliceToken, 403, "FORBIDDEN"},
	} {
		if r := callResource(t, srv, c.method, c.path, c.token); r.status != c.status || r.code != c.code {
			t.Errorf("%s %s: %d %s, want %d %s", c.method, c.path, r.status, r.code, c.status, c.code)
		}
	}

	// An API key, then revoked: refused on the next request.
	admin := newClient(t, in, ic.WithAccessToken(adminToken))
	key, err := admin.CreateAPIKey(context.Background(), ic.CreateAPIKeyRequest{Name: "mw", Tenants: []string{"prod"}, Permissions: []string{"nodes:read"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := callResource(t, srv, "GET", "/api/v1/tenants/prod/nodes/n-1", key.Key); r.status != 200 || r.id.Subject != key.ID {
		t.Fatalf("API key: %+v", r)
	}
	if err := admin.RevokeAPIKey(context.Background(), key.ID); err != nil {
		t.Fatal(err)
	}
	if r := callResource(t, srv, "GET", "/api/v1/tenants/prod/nodes/n-1", key.Key); r.status != 401 {
		t.Fatalf("revoked API key, next request: %+v", r)
	}
	// Alice's token revoked: refused on the next request.
	if err := admin.Revoke(context.Background(), aliceToken); err != nil {
		t.Fatal(err)
	}
	if r := callResource(t, srv, "GET", "/api/v1/tenants/prod/nodes", aliceToken); r.status != 401 || r.code != "UNAUTHORIZED" {
		t.Fatalf("revoked token, next request: %+v", r)
	}
	// The service unreachable: 503 in the contract's shape, never a pass.
	dead, err := ic.NewForwardAuth("http://" + freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	if r := callResource(t, resourceService(t, dead), "GET", "/api/v1/tenants/prod/nodes", aliceToken); r.status != 503 || r.code != "UNAVAILABLE" {
		t.Fatalf("service down: %+v", r)
	}
}

// TestMiddlewareOffline: with an EdDSA signing key, tokens verify offline
// with the JWKS (identity without permissions); HS256 tokens and API keys do
// not; a revoked token still verifies until it expires (the documented
// trade-off); a retired key's tokens stop once the JWKS is fetched again.
func TestMiddlewareOffline(t *testing.T) {
	t.Parallel()
	in := Start(t)
	adminToken := in.AdminToken() // HS256: signed before the EdDSA key
	admin := newClient(t, in, ic.WithAccessToken(adminToken))
	alice := in.CreateUser(adminToken, "alice", "alice-password-1", map[string]string{"prod": "viewer"})
	sk, err := admin.AddSigningKey(context.Background(), "EdDSA")
	if err != nil {
		t.Fatal(err)
	}
	login := in.Login("alice", "alice-password-1")
	aliceToken := login.String("token")

	v, err := ic.NewJWKSVerifier(in.URL, ic.JWKSClock(in.Clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	srv := resourceService(t, v)
	r := callResource(t, srv, "GET", "/api/v1/tenants/prod/nodes", aliceToken)
	if r.status != 200 || r.id.Subject != alice || !r.id.Offline || r.id.SessionID == "" || r.id.TokenID == "" || r.id.Permissions != nil {
		t.Fatalf("offline, alice: %+v", r)
	}
	if r := callResource(t, srv, "GET", "/api/v1/tenants/prod/nodes", adminToken); r.status != 401 {
		t.Fatalf("offline, an HS256 token: %+v", r)
	}
	key, err := admin.CreateAPIKey(context.Background(), ic.CreateAPIKeyRequest{Name: "off", Tenants: []string{"prod"}, Permissions: []string{"nodes:read"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := callResource(t, srv, "GET", "/api/v1/tenants/prod/nodes", key.Key); r.status != 401 {
		t.Fatalf("offline, an API key: %+v", r)
	}
	// A tampered token.
	parts := strings.Split(aliceToken, ".")
	if r := callResource(t, srv, "GET", "/", parts[0]+"."+parts[1]+"."+strings.Repeat("A", len(parts[2]))); r.status != 401 {
		t.Fatalf("offline, a bad signature: %+v", r)
	}

	// Revoked: offline cannot see it (the trade-off), forward auth does.
	if err := admin.Revoke(context.Background(), aliceToken); err != nil {
		t.Fatal(err)
	}
	if r := callResource(t, srv, "GET", "/api/v1/tenants/prod/nodes", aliceToken); r.status != 200 {
		t.Fatalf("offline, a revoked token: %+v (the trade-off: it verifies until it expires)", r)
	}
	fa, err := ic.NewForwardAuth(in.URL)
	if err != nil {
		t.Fatal(err)
	}
	if r := callResource(t, resourceService(t, fa), "GET", "/api/v1/tenants/prod/nodes", aliceToken); r.status != 401 {
		t.Fatalf("forward auth, a revoked token: %+v", r)
	}
	// Expired: refused.
	fresh := in.Login("alice", "alice-password-1").String("token")
	in.Clock.Advance(61 * time.Minute)
	if r := callResource(t, srv, "GET", "/api/v1/tenants/prod/nodes", fresh); r.status != 401 {
		t.Fatalf("offline, an expired token: %+v", r)
	}
	// A retired key leaves the JWKS: its tokens stop once it is fetched again.
	fresh = in.Login("alice", "alice-password-1").String("token")
	if r := callResource(t, srv, "GET", "/api/v1/tenants/prod/nodes", fresh); r.status != 200 {
		t.Fatalf("offline, a fresh token: %+v", r)
	}
	admin = newClient(t, in, ic.WithAccessToken(in.AdminToken()))
	if _, err := admin.RetireSigningKeyFallingBackToHS256(context.Background(), sk.ID); err != nil {
		t.Fatal(err)
	}
	in.Clock.Advance(6 * time.Minute) // past the JWKS's 5-minute age
	if r := callResource(t, srv, "GET", "/api/v1/tenants/prod/nodes", fresh); r.status != 401 {
		t.Fatalf("offline, a retired key's token: %+v", r)
	}
}

// TestClientRefreshAnswerLostWithRotation: with rotation on, a refresh whose
// answer is lost on the way back (the connection drops after the service
// made it) has spent the refresh token. The token source tries again at once,
// inside the service's reuse interval, and gets the same successor — where
// trying again only at its next call, 30 s later, presented the spent token
// too late and had the whole session revoked as stolen (the console had the
// same defect, found by an outside check).
func TestClientRefreshAnswerLostWithRotation(t *testing.T) {
	t.Parallel()
	in := Start(t, WithRotation())
	in.CreateUser(in.AdminToken(), "lossy", "lossy-password-1", nil)
	target, err := url.Parse(in.URL)
	if err != nil {
		t.Fatal(err)
	}
	var lost atomic.Int32
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/auth/refresh" || !lost.CompareAndSwap(0, 1) {
			rp.ServeHTTP(w, r)
			return
		}
		// The service gets the refresh and answers; the client never sees it.
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			t.Errorf("the refresh whose answer is lost: %d %s", rec.Code, rec.Body)
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}))
	t.Cleanup(proxy.Close)
	c, err := ic.New(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	ts := c.PasswordTokenSource(ic.LoginRequest{Username: "lossy", Password: "lossy-password-1"},
		ic.WithClock(in.Clock.Now), ic.WithRefreshJitter(0))
	authed := c.With(ic.WithTokenSource(ts))
	me, err := authed.Me(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	first := ts.Current().RefreshToken
	in.Clock.Advance(56 * time.Minute)
	if _, err := ts.TokenContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if lost.Load() != 1 || ts.Current().RefreshToken == first {
		t.Fatalf("lost answers %d; the refresh token changed: %v", lost.Load(), ts.Current().RefreshToken != first)
	}
	// The session lives on, and the successor refreshes it again.
	in.Clock.Advance(56 * time.Minute)
	if _, err := authed.Me(context.Background()); err != nil {
		t.Fatalf("after the lost answer: %v", err)
	}
	// The lost refresh, its retry (answered with the same successor, within
	// the reuse interval) and the next one.
	if n := refreshCount(t, in, me.SessionID, 3); n != 3 {
		t.Fatalf("%d refreshes of the session, want 3", n)
	}
	admin := newClient(t, in, ic.WithAccessToken(in.AdminToken()))
	page, err := admin.AuditEvents(context.Background(), ic.AuditQuery{Type: "session.refresh_reused", Limit: 10})
	if err != nil || len(page.Events) != 0 {
		t.Fatalf("reuse detected: %v %d", err, len(page.Events))
	}
}

// TestMiddlewareForwardAuthSendsCallerAddress: the middleware sends the
// caller's address in X-Forwarded-For, so that an API key's allowed_ips is
// checked against the caller, not the resource service (outside check 12d:
// it sent none, and the service judged the resource service's own address).
// The service trusts the resource service (127.0.0.1) as a proxy; a caller
// connects from 127.0.0.2.
func TestMiddlewareForwardAuthSendsCallerAddress(t *testing.T) {
	t.Parallel()
	in := Start(t, func(c *service.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	admin := newClient(t, in, ic.WithAccessToken(in.AdminToken()))
	keyFor := func(name string, ips ...string) string {
		k, err := admin.CreateAPIKey(context.Background(), ic.CreateAPIKeyRequest{Name: name, Tenants: []string{"prod"}, Permissions: []string{"nodes:read"}, AllowedIPs: ips})
		if err != nil {
			t.Fatal(err)
		}
		return k.Key
	}
	callerKey := keyFor("caller-only", "127.0.0.2/32")
	serviceKey := keyFor("resource-service-only", "127.0.0.1/32")

	fa, err := ic.NewForwardAuth(in.URL)
	if err != nil {
		t.Fatal(err)
	}
	srv := resourceService(t, fa)
	from := func(local, key string) int {
		t.Helper()
		return getFrom(t, local, srv.URL+"/api/v1/tenants/prod/nodes", key, nil)
	}
	for _, c := range []struct {
		name, local, key string
		want             int
	}{
		{"key for 127.0.0.2, from 127.0.0.2", "127.0.0.2", callerKey, 200},
		{"key for 127.0.0.2, from 127.0.0.1", "127.0.0.1", callerKey, 401},
		{"key for the resource service's address, from 127.0.0.2", "127.0.0.2", serviceKey, 401},
		{"key for 127.0.0.1, from 127.0.0.1", "127.0.0.1", serviceKey, 200},
	} {
		if got := from(c.local, c.key); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}

	// Behind a proxy of its own, the resource service names the caller.
	behind, err := ic.NewForwardAuth(in.URL, ic.ForwardAuthClientAddr(func(r *http.Request) string { return r.Header.Get("X-Test-Client") }))
	if err != nil {
		t.Fatal(err)
	}
	proxied := resourceService(t, behind)
	for _, c := range []struct {
		client string
		want   int
	}{{"127.0.0.2", 200}, {"192.0.2.1", 401}} {
		req, err := http.NewRequest("GET", proxied.URL+"/api/v1/tenants/prod/nodes", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+callerKey)
		req.Header.Set("X-Test-Client", c.client)
		res, err := proxied.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if err := res.Body.Close(); err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != c.want {
			t.Errorf("ForwardAuthClientAddr %s: %d, want %d", c.client, res.StatusCode, c.want)
		}
	}
}
