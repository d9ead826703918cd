package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A loopback server that answers 503 (with or without Retry-After) a few
// times, then 200: the retry logic without the service.
func flaky(t *testing.T, failures int, retryAfter string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			t.Error(err)
		}
		if n.Add(1) <= int64(failures) {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			writeBody(t, w, `{"error":{"code":"UNAVAILABLE","message":"Service temporarily unavailable; nothing was changed"}}`)
			return
		}
		writeBody(t, w, `{"status":"ok"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// mustNew is New, failing the test on its error.
func mustNew(t *testing.T, baseURL string, opts ...Option) *Client {
	t.Helper()
	c, err := New(baseURL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func recorder(waits *[]time.Duration) Option {
	return WithSleep(func(_ context.Context, d time.Duration) error { *waits = append(*waits, d); return nil })
}

func TestRetryHonoursRetryAfterOn503(t *testing.T) {
	srv, n := flaky(t, 2, "3")
	var waits []time.Duration
	c := mustNew(t, srv.URL, recorder(&waits))
	var out struct{ Status string }
	if err := c.Do(context.Background(), "GET", "/health", nil, nil, &out); err != nil || out.Status != "ok" {
		t.Fatalf("%v %+v", err, out)
	}
	if n.Load() != 3 || len(waits) != 2 || waits[0] != 3*time.Second || waits[1] != 3*time.Second {
		t.Fatalf("%d requests, waits %v; want 3 requests, [3s 3s]", n.Load(), waits)
	}
	// A POST is retried too: the service sent Retry-After (it did not start).
	srv, n = flaky(t, 1, "1")
	c = mustNew(t, srv.URL, recorder(&waits))
	if err := c.Do(context.Background(), "POST", "/x", nil, map[string]string{"a": "b"}, nil); err != nil || n.Load() != 2 {
		t.Fatalf("POST with Retry-After: %v after %d requests", err, n.Load())
	}
}

func TestRetryBacksOffBoundedWithoutRetryAfter(t *testing.T) {
	srv, n := flaky(t, 10, "")
	var waits []time.Duration
	c := mustNew(t, srv.URL, recorder(&waits), WithRetry(Retry{MaxAttempts: 5, BaseDelay: 100 * time.Millisecond, MaxWait: 300 * time.Millisecond}))
	err := c.Do(context.Background(), "GET", "/x", nil, nil, nil)
	var e *Error
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &e) || e.Status != 503 || e.RetryAfter != 0 {
		t.Fatalf("after the last try: %v", err)
	}
	if n.Load() != 5 || len(waits) != 4 {
		t.Fatalf("%d requests and %d waits, want 5 and 4", n.Load(), len(waits))
	}
	// Doubling from 100ms, capped at 300ms, each in [d/2, d].
	for i, w := range waits {
		d := min(100*time.Millisecond<<i, 300*time.Millisecond)
		if w < d/2 || w > d {
			t.Errorf("wait %d: %s, want within [%s, %s]", i, w, d/2, d)
		}
	}
	// A POST without Retry-After is not retried: it may have been applied.
	srv, n = flaky(t, 1, "")
	c = mustNew(t, srv.URL, recorder(&waits))
	if err := c.Do(context.Background(), "POST", "/x", nil, struct{}{}, nil); !errors.Is(err, ErrUnavailable) || n.Load() != 1 {
		t.Fatalf("POST 503 without Retry-After: %v after %d requests", err, n.Load())
	}
	// The credential check's POST only reads: tried again, as a GET is
	// (outside check 17d).
	srv, n = flaky(t, 1, "")
	c = mustNew(t, srv.URL, recorder(&waits))
	if err := c.Do(context.Background(), "POST", "/api/v1/audit/credential-check", nil, struct{}{}, nil); err != nil || n.Load() != 2 {
		t.Fatalf("the credential check after a 503 without Retry-After: %v after %d requests", err, n.Load())
	}
}

// TestChangesNothing: the requests a client may repeat as reads.
func TestChangesNothing(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/api/v1/users", true}, {"HEAD", "/x", true}, {"OPTIONS", "/x", true},
		{"POST", "/api/v1/audit/credential-check", true}, {"POST", "/base/api/v1/audit/credential-check", true},
		{"POST", "/api/v1/users", false}, {"PUT", "/api/v1/audit/credential-check", false}, {"DELETE", "/api/v1/api-keys/k", false},
	} {
		if got := ChangesNothing(c.method, c.path); got != c.want {
			t.Errorf("ChangesNothing(%s %s) = %v, want %v", c.method, c.path, got, c.want)
		}
	}
}

func TestRetryRespectsMaxWaitAndContext(t *testing.T) {
	srv, n := flaky(t, 1, "120")
	c := mustNew(t, srv.URL, WithRetry(Retry{MaxWait: time.Minute}))
	err := c.Do(context.Background(), "GET", "/x", nil, nil, nil)
	var e *Error
	if !errors.As(err, &e) || e.RetryAfter != 2*time.Minute || n.Load() != 1 {
		t.Fatalf("Retry-After above MaxWait: %v after %d requests; want the error at once", err, n.Load())
	}
	// A context that ends during the wait ends the call, with both errors.
	srv, _ = flaky(t, 5, "1")
	c = mustNew(t, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = c.Do(ctx, "GET", "/x", nil, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrUnavailable) || time.Since(start) > 900*time.Millisecond {
		t.Fatalf("cancelled wait: %v after %s", err, time.Since(start))
	}
}

func TestErrorsWithoutTheContractShape(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		writeBody(t, w, "<html>bad gateway</html>")
	}))
	defer srv.Close()
	c := mustNew(t, srv.URL)
	err := c.Do(context.Background(), "GET", "/x", nil, nil, nil)
	if !errors.Is(err, ErrBadGateway) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("%v", err)
	}
	for _, bad := range []string{"", "ftp://x", "http://", "http://u:p@host", "http://host/?q=1", "localhost:8080"} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}

func TestRetryAfterParsing(t *testing.T) {
	if d := retryAfter("7"); d != 7*time.Second {
		t.Error(d)
	}
	if d := retryAfter(time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)); d < 80*time.Second || d > 90*time.Second {
		t.Error(d)
	}
	for _, v := range []string{"", "0", "-3", "soon"} {
		if d := retryAfter(v); d != 0 {
			t.Errorf("%q: %s", v, d)
		}
	}
}

// TestLoginMFA: a login that answers 403 MFA_REQUIRED gives the MFA token
// (and the factors) in the *Error, never in its text; LoginMFA sends it
// with the code to POST /api/v1/auth/token/mfa and answers Login's shape.
func TestLoginMFA(t *testing.T) {
	const mfaToken, code = "mfa.secret-step-token", "123456"
	var got map[string]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/auth/token":
			w.WriteHeader(http.StatusForbidden)
			writeBody(t, w, `{"error":{"code":"MFA_REQUIRED","message":"A second factor is required; send it with the mfa_token to /api/v1/auth/token/mfa"},`+
				`"factors":["totp","recovery_code"],"mfa_token":"`+mfaToken+`","expires_at":"2030-01-01T00:00:00Z"}`)
		case "/api/v1/auth/token/mfa":
			if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&got) != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			writeBody(t, w, `{"token":"at","expires_at":"2030-01-01T00:00:00Z","refresh_token":"rt","user":{"id":"user-1","username":"bob"}}`)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	c := mustNew(t, srv.URL)
	_, err := c.Login(context.Background(), LoginRequest{Username: "bob", Password: "pw"})
	var e *Error
	if !errors.Is(err, ErrMFARequired) || !errors.As(err, &e) || e.Status != http.StatusForbidden || e.MFAToken != mfaToken ||
		len(e.Factors) != 2 || e.Factors[0] != "totp" || e.Factors[1] != "recovery_code" {
		t.Fatalf("login: %v (%+v)", err, e)
	}
	if strings.Contains(err.Error(), mfaToken) {
		t.Fatalf("the error's text shows the MFA token: %s", err)
	}
	res, err := c.LoginMFA(context.Background(), MFALoginRequest{MFAToken: e.MFAToken, Code: code})
	if err != nil || res.Token != "at" || res.RefreshToken != "rt" || res.User.Username != "bob" {
		t.Fatalf("LoginMFA: %v %+v", err, res)
	}
	if len(got) != 2 || got["mfa_token"] != mfaToken || got["code"] != code {
		t.Fatalf("the second step sent %v, want exactly mfa_token and code", got)
	}
	// Another 403 carries no MFA token.
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		writeBody(t, w, `{"error":{"code":"MFA_ENROLLMENT_REQUIRED","message":"enrol"},"enrollment_token":"x"}`)
	}))
	defer srv2.Close()
	_, err = mustNew(t, srv2.URL).Login(context.Background(), LoginRequest{Username: "bob", Password: "pw"})
	if !errors.Is(err, ErrMFAEnrollmentRequired) || !errors.As(err, &e) || e.MFAToken != "" {
		t.Fatalf("enrolment required: %v", err)
	}
}

// writeBody writes a test server's answer body, reporting a failed write
// (the client under test then sees a cut answer, which the test names).
func writeBody(t *testing.T, w io.Writer, body string) {
	t.Helper()
	if _, err := io.WriteString(w, body); err != nil {
		t.Errorf("test server: writing the answer: %v", err)
	}
}

// TestRefreshFailureIsNotRetriedByEveryTry: a call whose token is due for a
// refresh, against a service answering every request 503 with Retry-After,
// sends the refresh's own tries once, and then its own — not a whole
// refresh (with its retries) before each of its tries: 16 refreshes and 4
// calls, 15 s, where the documented policy allows 4 tries (an outside check
// of the CLI during an outage).
func TestRefreshFailureIsNotRetriedByEveryTry(t *testing.T) {
	var refreshes, calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			t.Error(err)
		}
		if r.URL.Path == "/api/v1/auth/refresh" {
			refreshes.Add(1)
		} else {
			calls.Add(1)
		}
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		writeBody(t, w, `{"error":{"code":"UNAVAILABLE","message":"Service temporarily unavailable; nothing was changed"}}`)
	}))
	t.Cleanup(srv.Close)
	var mu sync.Mutex
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	sleep := WithSleep(func(_ context.Context, d time.Duration) error { mu.Lock(); now = now.Add(d); mu.Unlock(); return nil })
	base := mustNew(t, srv.URL, sleep)
	ts := base.RefreshTokenSource(Token{AccessToken: "still-valid", RefreshToken: "r", ExpiresAt: clock().Add(2 * time.Minute)},
		WithClock(clock), WithRefreshJitter(0))
	c := mustNew(t, srv.URL, sleep, WithTokenSource(ts))
	if _, err := c.Me(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Me: %v, want ErrUnavailable", err)
	}
	if r, n := refreshes.Load(), calls.Load(); r != int64(DefaultRetry.MaxAttempts) || n != int64(DefaultRetry.MaxAttempts) {
		t.Fatalf("%d refreshes and %d calls, want %d of each", r, n, DefaultRetry.MaxAttempts)
	}
}

// TestTwoAuthorizationHeadersRefused: a request with two Authorization
// headers is refused by both authorizers, without asking the service: the
// one judged and the one a handler reads could differ (an outside check
// found a valid first and a garbage second let through).
func TestTwoAuthorizationHeadersRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the service was asked: %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	fa, err := NewForwardAuth(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	jv, err := NewJWKSVerifier(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]Authorizer{"forward auth": fa, "offline": jv} {
		r := httptest.NewRequest("GET", "/api/v1/tenants/prod/nodes", nil)
		r.Header.Add("Authorization", "Bearer a.b.c")
		r.Header.Add("Authorization", "Bearer d.e.f")
		if _, err := a.Authorize(r); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: %v, want ErrUnauthorized", name, err)
		}
	}
}

// TestRefreshMomentFitsShortTokens: the refresh comes the margin (plus up
// to the jitter) before expiry — for an hour's token, 55 to 54 minutes in —
// but a token that lives less than five times both is refreshed once a
// fifth of its life remains: with a one-minute token and the default
// margin, every call would otherwise refresh (outside check 11d).
func TestRefreshMomentFitsShortTokens(t *testing.T) {
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	c := mustNew(t, "http://127.0.0.1:1")
	for _, tc := range []struct {
		life       time.Duration
		from, upTo time.Duration // the refresh moment, after now
	}{
		{time.Hour, 54 * time.Minute, 55 * time.Minute},
		{time.Minute, 48 * time.Second, 50 * time.Second},
		{10 * time.Second, 8 * time.Second, 10 * time.Second},
	} {
		ts := c.newTokenSource([]TokenSourceOption{WithClock(func() time.Time { return now })})
		for range 20 { // the jitter is random
			ts.setToken(Token{AccessToken: "a", RefreshToken: "r", ExpiresAt: now.Add(tc.life)}, true)
			if at := ts.refreshAt.Sub(now); at < tc.from || at > tc.upTo {
				t.Fatalf("a token of %v is refreshed %v after it was received, want %v to %v", tc.life, at, tc.from, tc.upTo)
			}
		}
	}
	// A token restored from storage is not fresh: what is left of it is not
	// its life, and the margin applies as given (four minutes left: due).
	ts := c.RefreshTokenSource(Token{AccessToken: "a", RefreshToken: "r", ExpiresAt: now.Add(4 * time.Minute)}, WithClock(func() time.Time { return now }))
	if !ts.refreshAt.Before(now) {
		t.Fatalf("a stored token with 4 minutes left is refreshed at %v, want now", ts.refreshAt)
	}
	// A stored token whose JWT says it was issued a minute before it
	// expires (INFRACAST_ACCESS_TOKEN_TTL=1m) lives a minute: with 40 s
	// left it is not due, with 10 s left it is (outside check 20c: every
	// CLI command refreshed its stored one-minute token). The same with
	// the tokens another process stored (WithSharedTokens: setToken, not
	// fresh).
	jwt := func(iat time.Time) string {
		payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u","iat":` + strconv.FormatInt(iat.Unix(), 10) +
			`,"exp":` + strconv.FormatInt(iat.Add(time.Minute).Unix(), 10) + `}`))
		return "eyJhbGciOiJFZERTQSJ9." + payload + ".c2ln"
	}
	for _, tc := range []struct {
		left time.Duration
		due  bool
	}{{40 * time.Second, false}, {10 * time.Second, true}} {
		for range 20 {
			exp := now.Add(tc.left)
			ts := c.RefreshTokenSource(Token{AccessToken: jwt(exp.Add(-time.Minute)), RefreshToken: "r", ExpiresAt: exp}, WithClock(func() time.Time { return now }))
			if due := !now.Before(ts.refreshAt); due != tc.due {
				t.Fatalf("a stored one-minute token with %v left: due %v (refresh at %v), want %v", tc.left, due, ts.refreshAt.Sub(now), tc.due)
			}
		}
	}
}

// TestRedirectsAreNotFollowed: a 308 (to https on the same host, or to
// another host) and a 301 are answered as a *RedirectError naming the
// status and where to, and never followed: the password or refresh token
// goes nowhere else (outside check 20c: a cross-host 308 re-sent the
// refresh token's body to the other host, a 301 turned login into a GET).
// The same with a caller's own http.Client.
func TestRedirectsAreNotFollowed(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	for _, tc := range []struct {
		status int
		to     string // "": to https on the same host and port
	}{
		{http.StatusPermanentRedirect, ""},
		{http.StatusPermanentRedirect, other.URL + "/api/v1/auth/refresh"},
		{http.StatusMovedPermanently, other.URL + "/api/v1/auth/refresh"},
	} {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, tc.to+"?secret=x", tc.status)
		}))
		srv.Start()
		if tc.to == "" {
			tc.to = "https://" + srv.Listener.Addr().String() + "/api/v1/auth/refresh"
		}
		for _, c := range []*Client{mustNew(t, srv.URL), mustNew(t, srv.URL, WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))} {
			_, err := c.Refresh(context.Background(), "the-refresh-token")
			var re *RedirectError
			if !errors.As(err, &re) || re.Status != tc.status || re.Method != http.MethodPost || re.Path != "/api/v1/auth/refresh" {
				t.Fatalf("a %d to %s: %v, want a *RedirectError", tc.status, tc.to, err)
			}
			want := tc.to
			if re.Location != want || re.From != srv.URL+"/api/v1/auth/refresh" ||
				!strings.Contains(err.Error(), "redirects to "+want) || strings.Contains(err.Error(), "secret") {
				t.Fatalf("a %d to %s: %q (location %q)", tc.status, tc.to, err, re.Location)
			}
			// A token source does not take it for a lost answer: one
			// refresh, not quick tries.
			var sent atomic.Int64
			counted := c.With(WithHTTPClient(&http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				sent.Add(1)
				return http.DefaultTransport.RoundTrip(r)
			})}))
			ts := counted.RefreshTokenSource(Token{RefreshToken: "r"})
			if _, err := ts.TokenContext(context.Background()); !errors.As(err, &re) || sent.Load() != 1 {
				t.Fatalf("a token source's refresh redirected: %v after %d requests, want a *RedirectError after 1", err, sent.Load())
			}
		}
		srv.Close()
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the other host got %d requests", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestSendsInTheClear: plain http to another host sends credentials in the
// clear; to this machine, or over https, it does not. A name below
// localhost is looked up in the network's DNS too: another host, maybe.
func TestSendsInTheClear(t *testing.T) {
	for u, want := range map[string]bool{
		"http://auth.example.com":    true,
		"http://192.0.2.5:8080/auth": true,
		"http://[2001:db8::1]:8080":  true,
		"https://auth.example.com":   false,
		"http://localhost:8080":      false,
		"http://LocalHost:8080":      false,
		"http://api.localhost":       true,
		"http://127.0.0.1:8080":      false,
		"http://127.1.2.3":           false,
		"http://[::1]:8080":          false,
	} {
		if got := mustNew(t, u).SendsInTheClear(); got != want {
			t.Errorf("%s: SendsInTheClear %v, want %v", u, got, want)
		}
	}
}

// TestLoginLockoutIsRemembered: a login answered 429 with a Retry-After
// longer than the client waits is not sent again until that has passed:
// each call answers the same error with what remains of the wait (outside
// check 12d: each call during a 15-minute lockout sent another login).
func TestLoginLockoutIsRemembered(t *testing.T) {
	var logins atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			t.Error(err)
		}
		if r.URL.Path != "/api/v1/auth/token" {
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		}
		if logins.Add(1) == 1 {
			w.Header().Set("Retry-After", "900")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			writeBody(t, w, `{"error":{"code":"RATE_LIMITED","message":"Too many failed login attempts; try again later"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		writeBody(t, w, `{"token":"after-the-wait","expires_at":"2026-12-06T13:30:00Z","refresh_token":"r"}`)
	}))
	t.Cleanup(srv.Close)
	var mu sync.Mutex
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ts := mustNew(t, srv.URL).PasswordTokenSource(LoginRequest{Username: "u", Password: "p"}, WithClock(clock))
	for i, want := range []time.Duration{900 * time.Second, 900 * time.Second, 600 * time.Second, time.Second} {
		_, err := ts.TokenContext(context.Background())
		var e *Error
		if !errors.Is(err, ErrRateLimited) || !errors.As(err, &e) || e.RetryAfter != want {
			t.Fatalf("call %d: %v (Retry-After %v), want RATE_LIMITED after %v", i, err, e, want)
		}
		switch i {
		case 1:
			advance(5 * time.Minute)
		case 2:
			advance(10*time.Minute - time.Second)
		}
	}
	if n := logins.Load(); n != 1 {
		t.Fatalf("%d logins sent during the lockout, want 1", n)
	}
	advance(time.Second)
	tok, err := ts.TokenContext(context.Background())
	if err != nil || tok.AccessToken != "after-the-wait" || logins.Load() != 2 {
		t.Fatalf("after the wait: %v %v, %d logins", tok, err, logins.Load())
	}
}

// TestRefusedTokenIsRefreshedOnce: a 401 for an access token that has not
// expired (its signing key dropped, its session revoked by an admin) causes
// one refresh and one more try — one refresh for many callers at once —
// not for a call carrying a password of its own; a refused refresh ends
// the session (outside check 12d: every call failed until the token
// expired).
func TestRefusedTokenIsRefreshedOnce(t *testing.T) {
	var refreshes, passwords atomic.Int64
	var refreshOK atomic.Bool
	refreshOK.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		unauthorized := func() {
			w.WriteHeader(http.StatusUnauthorized)
			writeBody(t, w, `{"error":{"code":"UNAUTHORIZED","message":"Invalid or expired token"}}`)
		}
		switch {
		case r.URL.Path == "/api/v1/auth/refresh":
			refreshes.Add(1)
			if !refreshOK.Load() {
				unauthorized()
				return
			}
			writeBody(t, w, `{"token":"new","expires_at":"2099-01-01T00:00:00Z"}`)
		case strings.HasSuffix(r.URL.Path, "/password"):
			passwords.Add(1)
			unauthorized()
		case r.Header.Get("Authorization") == "Bearer new":
			writeBody(t, w, `{"id":"user-1","type":"user"}`)
		default:
			unauthorized()
		}
	}))
	t.Cleanup(srv.Close)
	source := func() *Client {
		base := mustNew(t, srv.URL)
		ts := base.RefreshTokenSource(Token{AccessToken: "dropped-key", RefreshToken: "r", ExpiresAt: time.Now().Add(50 * time.Minute)})
		return base.With(WithTokenSource(ts))
	}

	c := source()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if me, err := c.Me(context.Background()); err != nil || me.ID != "user-1" {
				t.Errorf("Me after a refused token: %+v, %v", me, err)
			}
		}()
	}
	wg.Wait()
	if n := refreshes.Load(); n != 1 {
		t.Fatalf("%d refreshes for 20 calls refused together, want 1", n)
	}

	// A wrong current password is not sent twice, nor refreshed for.
	refreshes.Store(0)
	c = source()
	if err := c.ChangePassword(context.Background(), "user-1", "new-password-1", "wrong"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("ChangePassword: %v", err)
	}
	if p, r := passwords.Load(), refreshes.Load(); p != 1 || r != 0 {
		t.Fatalf("a refused password change: %d requests, %d refreshes; want 1, 0", p, r)
	}

	// The session revoked: the refresh is refused too, and the session ends.
	refreshOK.Store(false)
	c = source()
	if _, err := c.Me(context.Background()); !errors.Is(err, ErrLoginRequired) {
		t.Fatalf("Me with the session revoked: %v, want ErrLoginRequired", err)
	}
}

// fakeTime is a test clock whose sleeps move it on at once.
func fakeTime() (now func() time.Time, sleep Option, advance func(time.Duration)) {
	var mu sync.Mutex
	t := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	advance = func(d time.Duration) { mu.Lock(); t = t.Add(d); mu.Unlock() }
	now = func() time.Time { mu.Lock(); defer mu.Unlock(); return t }
	sleep = WithSleep(func(_ context.Context, d time.Duration) error { advance(d); return nil })
	return now, sleep, advance
}

// refreshUnavailable is a service whose refresh answers 503 (with
// Retry-After when retryAfter is not ""), and whose other routes answer
// 401 UNAUTHORIZED; it counts both.
func refreshUnavailable(t *testing.T, retryAfter string) (*httptest.Server, *atomic.Int64, *atomic.Int64) {
	t.Helper()
	var refreshes, calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/api/v1/auth/refresh" {
			calls.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			writeBody(t, w, `{"error":{"code":"UNAUTHORIZED","message":"Invalid or expired token"}}`)
			return
		}
		refreshes.Add(1)
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		writeBody(t, w, `{"error":{"code":"UNAVAILABLE","message":"Service temporarily unavailable"}}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &refreshes, &calls
}

// TestRefusedTokenAndRefreshUnavailable: a 401 for a token that has not
// expired, and a refresh that fails for a passing reason (503): the call
// answers the refresh's error (ErrUnavailable, not the 401 that says to log
// in again), and later calls do not send another refresh for refreshPause
// (outside check 12r4: each call started a whole refresh again).
func TestRefusedTokenAndRefreshUnavailable(t *testing.T) {
	srv, refreshes, calls := refreshUnavailable(t, "1")
	now, sleep, advance := fakeTime()
	base := mustNew(t, srv.URL, sleep)
	ts := base.RefreshTokenSource(Token{AccessToken: "dropped-key", RefreshToken: "r", ExpiresAt: now().Add(50 * time.Minute)}, WithClock(now))
	c := base.With(WithTokenSource(ts))
	for i := range 3 {
		_, err := c.Me(context.Background())
		if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrLoginRequired) {
			t.Fatalf("call %d: %v, want ErrUnavailable", i, err)
		}
	}
	tries := int64(DefaultRetry.MaxAttempts) // the refresh's own (Retry-After: retried)
	if r, n := refreshes.Load(), calls.Load(); r != tries || n != 1 {
		t.Fatalf("%d refreshes and %d calls for 3 calls within the pause, want %d and 1", r, n, tries)
	}
	advance(refreshPause)
	if _, err := c.Me(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after the pause: %v", err)
	}
	if r := refreshes.Load(); r != 2*tries {
		t.Fatalf("after the pause: %d refreshes, want %d", r, 2*tries)
	}
}

// TestExpiredTokenRefreshUnavailableIsNotRetriedAgain: an expired token and
// a refresh answered 503: one call sends the refresh's own tries, once —
// not the token source's tries inside each of the call's own (outside
// check 12r4: 16 refreshes, ~15 s).
func TestExpiredTokenRefreshUnavailableIsNotRetriedAgain(t *testing.T) {
	for _, retryAfter := range []string{"1", ""} {
		srv, refreshes, calls := refreshUnavailable(t, retryAfter)
		now, sleep, _ := fakeTime()
		base := mustNew(t, srv.URL, sleep)
		ts := base.RefreshTokenSource(Token{AccessToken: "expired", RefreshToken: "r", ExpiresAt: now().Add(-time.Minute)}, WithClock(now))
		c := base.With(WithTokenSource(ts))
		if _, err := c.Me(context.Background()); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Retry-After %q: %v, want ErrUnavailable", retryAfter, err)
		}
		// With Retry-After the client retries the refresh (4 tries); without
		// it the source tries again within refreshRetryWindow (4 tries).
		if r, n := refreshes.Load(), calls.Load(); r != 4 || n != 0 {
			t.Fatalf("Retry-After %q: %d refreshes and %d calls, want 4 and 0", retryAfter, r, n)
		}
	}
}

// TestRetryAfterIsCapped: a Retry-After of a huge number of seconds, or a
// date far ahead, is read as a day at most, and written so: it overflowed
// into a negative wait, which the middleware relayed (outside check 12r4).
func TestRetryAfterIsCapped(t *testing.T) {
	for _, v := range []string{"9223372036", "99999999999999999999999", time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)} {
		if d := retryAfter(v); d != 24*time.Hour {
			t.Errorf("Retry-After %q: %v, want 24h", v, d)
		}
	}
	for _, d := range []time.Duration{24 * time.Hour, time.Duration(1<<63 - 1)} {
		w := httptest.NewRecorder()
		WriteError(w, &Error{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE", Message: "x", RetryAfter: d})
		if got := w.Header().Get("Retry-After"); got != "86400" {
			t.Errorf("RetryAfter %v written as %q, want 86400", d, got)
		}
	}
	// Through the middleware: the service's verify answers 503 with a date
	// centuries ahead.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat))
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	fa, err := NewForwardAuth(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/api/v1/tenants/prod/nodes", nil)
	r.Header.Set("Authorization", "Bearer a.b.c")
	Middleware(fa)(http.NotFoundHandler()).ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "86400" {
		t.Fatalf("middleware: %d, Retry-After %q; want 503, 86400", w.Code, w.Header().Get("Retry-After"))
	}
}

// TestForwardAuthClientAddrIsChecked: the value ForwardAuthClientAddr gives
// is sent as one IP address — host:port and brackets taken off, the IPv6
// zone dropped (it never matches allowed_ips), an IPv4-mapped address as
// IPv4 — and one that is no address (a name, a list) is not sent: the
// request is answered 503 and the value logged (outside check 12r4: every
// such value was sent as it was).
func TestForwardAuthClientAddrIsChecked(t *testing.T) {
	var mu sync.Mutex
	var sent []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent = append(sent, strings.Join(r.Header.Values("X-Forwarded-For"), "|"))
		mu.Unlock()
		w.Header().Set("X-Infracast-Subject", "user-1")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	var logged strings.Builder
	var addr string
	fa, err := NewForwardAuth(srv.URL, ForwardAuthClientAddr(func(*http.Request) string { return addr }),
		ForwardAuthLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ask := func() int {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/api/v1/tenants/prod/nodes", nil)
		r.Header.Set("Authorization", "Bearer a.b.c")
		Middleware(fa)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })).ServeHTTP(w, r)
		return w.Code
	}
	for v, want := range map[string]string{
		"203.0.113.7":          "203.0.113.7",
		" 203.0.113.7 ":        "203.0.113.7",
		"203.0.113.7:4711":     "203.0.113.7",
		"2001:db8::1":          "2001:db8::1",
		"[2001:db8::1]":        "2001:db8::1",
		"[2001:db8::1]:443":    "2001:db8::1",
		"fe80::1%eth0":         "fe80::1",
		"[fe80::1%eth0]:443":   "fe80::1",
		"::ffff:203.0.113.7":   "203.0.113.7",
		"[::ffff:10.0.0.1]:80": "10.0.0.1",
		"":                     "",
	} {
		mu.Lock()
		sent = nil
		mu.Unlock()
		addr = v
		if code := ask(); code != http.StatusNoContent {
			t.Fatalf("%q: %d, want it let through", v, code)
		}
		mu.Lock()
		got := sent
		mu.Unlock()
		if len(got) != 1 || got[0] != want {
			t.Errorf("%q sent as %q, want %q", v, got, want)
		}
	}
	for _, v := range []string{"not-an-ip", "203.0.113.7, 198.51.100.1", "203.0.113.7 198.51.100.1", "localhost:80", "[203.0.113.7"} {
		mu.Lock()
		sent = nil
		mu.Unlock()
		addr = v
		logged.Reset()
		if code := ask(); code != http.StatusServiceUnavailable {
			t.Errorf("%q: %d, want 503", v, code)
		}
		mu.Lock()
		n := len(sent)
		mu.Unlock()
		if n != 0 {
			t.Errorf("%q: the service was asked", v)
		}
		if !strings.Contains(logged.String(), "not an IP address") {
			t.Errorf("%q: not logged: %q", v, logged.String())
		}
	}
}

// TestErrorNamesItsRequest: an answer's *Error carries the method and path
// of the request answered (the CLI tells a read's 503 from a write's).
func TestErrorNamesItsRequest(t *testing.T) {
	srv, _ := flaky(t, 10, "")
	c := mustNew(t, srv.URL+"/prefix", WithRetry(Retry{MaxAttempts: 1}))
	err := c.Do(context.Background(), "DELETE", "/api/v1/api-keys/key-1", nil, nil, nil)
	var e *Error
	if !errors.As(err, &e) || e.Method != "DELETE" || e.Path != "/prefix/api/v1/api-keys/key-1" {
		t.Fatalf("%v: %+v", err, e)
	}
}

// TestNewShowsNoCredentialsOfABadBaseURL: a base URL refused for carrying a
// password, a token in its query or fragment is not printed with them (an
// outside check, 14g, found the password in a CI log's error).
func TestNewShowsNoCredentialsOfABadBaseURL(t *testing.T) {
	for _, raw := range []string{
		"https://ci:UrlPwMarker72@auth.example.com",
		"https://auth.example.com/?token=UrlPwMarker72",
		"https://auth.example.com/#UrlPwMarker72",
		"u:UrlPwMarker72@auth.example.com",
	} {
		_, err := New(raw)
		if err == nil {
			t.Errorf("%s: accepted", raw)
			continue
		}
		if strings.Contains(err.Error(), "UrlPwMarker72") {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
}

// TestRequestErrorNamesItsRequest: a request without a whole answer is a
// *RequestError naming it, which unwraps to its cause, and NotSent tells a
// request that never reached the service (connection refused) from one
// whose connection broke after it was sent, whose write may have been made
// (outside check 15b: the CLI could not tell them apart).
func TestRequestErrorNamesItsRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		if err := conn.Close(); err != nil {
			t.Error(err)
		}
	}))
	c := mustNew(t, srv.URL+"/prefix", WithRetry(Retry{MaxAttempts: 1}))
	err := c.Do(context.Background(), "POST", "/api/v1/api-keys/key-1/rotate", nil, nil, nil)
	var e *RequestError
	if !errors.As(err, &e) || e.Method != "POST" || e.Path != "/prefix/api/v1/api-keys/key-1/rotate" || e.NotSent() ||
		!strings.HasPrefix(err.Error(), "infracast: POST /prefix/api/v1/api-keys/key-1/rotate: ") || !errors.Is(err, io.EOF) {
		t.Fatalf("hung up: %v: %+v", err, e)
	}
	srv.Close()
	err = c.Do(context.Background(), "POST", "/api/v1/api-keys/key-1/rotate", nil, nil, nil)
	if !errors.As(err, &e) || !e.NotSent() || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("refused: %v: %+v (not sent: %v)", err, e, e != nil && e.NotSent())
	}
}

// TestFollowAuditRidesOutPassingFailures: FollowAudit goes on through a
// connection broken, a proxy's 502, a 503 and a 504 — from the same cursor,
// waiting longer each time, saying once that it was interrupted and once
// that it resumed — and ends on a 401 (outside check 15b: it returned the
// first error, which ended 'infracast audit --follow').
func TestFollowAuditRidesOutPassingFailures(t *testing.T) {
	hangUp := func(w http.ResponseWriter) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		if err := conn.Close(); err != nil {
			t.Error(err)
		}
	}
	status := func(w http.ResponseWriter, code int) {
		w.WriteHeader(code)
		writeBody(t, w, http.StatusText(code))
	}
	events := func(w http.ResponseWriter, seqs ...int) {
		var es []string
		for _, s := range seqs {
			es = append(es, `{"sequence":`+strconv.Itoa(s)+`,"type":"user.created"}`)
		}
		writeBody(t, w, `{"events":[`+strings.Join(es, ",")+`]}`)
	}
	var mu sync.Mutex
	var cursors []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Each request on a new connection: net/http itself tries a GET
		// again when a kept-alive connection breaks.
		w.Header().Set("Connection", "close")
		mu.Lock()
		cursors = append(cursors, r.URL.Query().Get("cursor"))
		n := len(cursors)
		mu.Unlock()
		switch n {
		case 1:
			events(w, 1, 2)
		case 2:
			hangUp(w)
		case 3:
			status(w, http.StatusBadGateway)
		case 4:
			status(w, http.StatusServiceUnavailable)
		case 5:
			status(w, http.StatusGatewayTimeout)
		case 6:
			events(w, 3)
		case 7:
			hangUp(w) // a second outage is told again
		case 8:
			events(w)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			writeBody(t, w, `{"error":{"code":"UNAUTHORIZED","message":"token revoked"}}`)
		}
	}))
	t.Cleanup(srv.Close)
	var log []string // what happened, in order
	const interval = time.Second
	c := mustNew(t, srv.URL, WithRetry(Retry{MaxAttempts: 1, MaxWait: 3 * time.Second}), WithSleep(func(_ context.Context, d time.Duration) error {
		log = append(log, "wait "+d.Round(time.Second/2).String())
		return nil
	}))
	err := c.FollowAudit(context.Background(), AuditQuery{}, interval, func(e AuditEvent) error {
		log = append(log, "event "+strconv.FormatUint(e.Sequence, 10))
		return nil
	}, OnFollowInterrupted(func(err error, retryIn time.Duration) {
		var re *RequestError
		if !errors.As(err, &re) || retryIn < interval/2 || retryIn > interval {
			t.Errorf("interrupted by %v, retry in %s: want the broken connection, within %s", err, retryIn, interval)
		}
		log = append(log, "interrupted")
	}), OnFollowResumed(func() { log = append(log, "resumed") }))
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("FollowAudit ended with %v, want the 401", err)
	}
	// The waits after a failure: 1 s doubled each time, at most MaxWait
	// (3 s), jittered over the upper half (shown rounded to 0.5 s).
	got := strings.Join(log, ", ")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`^event 1, event 2, wait 1s, interrupted, wait (500ms|1s), wait (1s|1.5s|2s), wait (1.5s|2s|2.5s|3s), wait (1.5s|2s|2.5s|3s), resumed, event 3, wait 1s, interrupted, wait (500ms|1s), resumed, wait 1s$`),
	} {
		if !want.MatchString(got) {
			t.Errorf("FollowAudit: %s\nwant %s", got, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"", "a2", "a2", "a2", "a2", "a2", "a3", "a3", "a3"}; strings.Join(cursors, " ") != strings.Join(want, " ") {
		t.Errorf("cursors asked for: %q, want %q (the same until answered)", cursors, want)
	}
}

// TestDeleteRetriedAfterAnUnknownOutcome: a DELETE answered the service's
// 503 without Retry-After (the event store did not confirm it: it may have
// been applied), then 404 on the retry, was carried out: no error. Before,
// the caller got ErrNotFound for a provider it had deleted (outside check
// 16e). A 404 at the first try, after a 503 with Retry-After (nothing was
// changed), after a proxy's 503 page (nothing was done: outside check 16d
// had "keys revoke key-typo" say revoked), or for a call that expects a
// body, is still ErrNotFound.
func TestDeleteRetriedAfterAnUnknownOutcome(t *testing.T) {
	answers := func(first string) *httptest.Server {
		var n atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 && first != "404" {
				switch first {
				case "proxy":
					w.Header().Set("Content-Type", "text/html")
					w.WriteHeader(http.StatusServiceUnavailable)
					writeBody(t, w, "<html><body>no healthy upstream</body></html>")
					return
				case "":
				default:
					w.Header().Set("Retry-After", first)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				writeBody(t, w, `{"error":{"code":"UNAVAILABLE","message":"The event store did not confirm the change in time; it may have been applied"}}`)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			writeBody(t, w, `{"error":{"code":"NOT_FOUND","message":"Resource not found"}}`)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	var waits []time.Duration
	for _, c := range []struct {
		first   string
		out     bool
		wantErr bool
	}{{"", false, false}, {"1", false, true}, {"404", false, true}, {"proxy", false, true}, {"", true, true}} {
		cl := mustNew(t, answers(c.first).URL, recorder(&waits))
		var out *map[string]any
		if c.out {
			out = &map[string]any{}
		}
		var err error
		if out != nil {
			err = cl.Do(context.Background(), http.MethodDelete, "/api/v1/users/u/tenants/prod", nil, nil, out)
		} else {
			err = cl.Do(context.Background(), http.MethodDelete, "/api/v1/admin/sso/corp", nil, nil, nil)
		}
		if got := errors.Is(err, ErrNotFound); got != c.wantErr || (!c.wantErr && err != nil) {
			t.Errorf("DELETE (a body expected: %v), first answer %q then 404: %v", c.out, c.first, err)
		}
	}
	// Not for other methods: a GET that finds nothing is a 404.
	cl := mustNew(t, answers("").URL, recorder(&waits))
	if err := cl.Do(context.Background(), http.MethodGet, "/api/v1/admin/sso/corp", nil, nil, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("GET after a 503, then 404: %v, want ErrNotFound", err)
	}
}
