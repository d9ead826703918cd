package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/http/service"
)

// refusalLines returns the "request refused" lines logs holds, decoded.
func refusalLines(logs *LogBuffer) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "request refused" {
			out = append(out, line)
		}
	}
	return out
}

// findRefusal waits for the refusal line whose fields include want.
func findRefusal(t *testing.T, logs *LogBuffer, what string, want map[string]any) map[string]any {
	t.Helper()
	var found map[string]any
	Eventually(t, 5*time.Second, func() error {
		for _, line := range refusalLines(logs) {
			ok := true
			for k, v := range want {
				if fmt.Sprint(line[k]) != fmt.Sprint(v) {
					ok = false
					break
				}
			}
			if ok {
				found = line
				return nil
			}
		}
		return fmt.Errorf("%s: no refusal line with %v in the log:\n%s", what, want, logs.String())
	})
	return found
}

// TestRefusalsAreLogged: a refused request whose caller is known leaves a
// log line at WARN — shown at the shipped binary's default level, info —
// naming the caller by its ID (never a secret), the client address as the
// service determined it (a forged X-Forwarded-For from a peer that is no
// trusted proxy is not it), the method and route, the status and reason,
// and the request ID. Before, an API key used from an address its
// allowlist does not hold and a viewer's 403 on an admin route left
// nothing but anonymous counters (an outside check, 20a).
func TestRefusalsAreLogged(t *testing.T) {
	logs := &LogBuffer{}
	in := StartLogged(t, logs)
	admin := in.AdminToken()

	res := in.Do("POST", "/api/v1/api-keys", admin, map[string]any{"name": "office-only", "allowed_ips": []string{"10.9.9.9"}})
	if res.Status != 201 {
		t.Fatalf("create key: %d %s", res.Status, res.Raw)
	}
	keyID, secret := res.String("id"), res.String("key")
	r := doReq(t, in, request{Method: "GET", Path: "/api/v1/auth/me", Token: secret, Header: map[string]string{"X-Forwarded-For": "10.9.9.9"}})
	expectStatus(t, "the key from another address, a forged X-Forwarded-For", r, 401)
	line := findRefusal(t, logs, "the key from another address", map[string]any{
		"key_id": keyID, "reason": "key_ip_denied", "status": 401, "client_ip": "127.0.0.1",
		"method": "GET", "route": "/api/v1/auth/me", "request_id": r.Header.Get("X-Request-ID"),
	})
	if line["level"] != "WARN" {
		t.Fatalf("the key's refusal logged at %v, want WARN (shown at the default level): %v", line["level"], line)
	}

	viewer := in.CreateUser(admin, "vera", "vera-passphrase-1", map[string]string{"prod": "viewer"})
	tok := in.Login("vera", "vera-passphrase-1").String("token")
	r = in.Do("GET", "/api/v1/audit/events", tok, nil)
	expectStatus(t, "a viewer on the audit log", r, 403)
	line = findRefusal(t, logs, "a viewer on the audit log", map[string]any{
		"user_id": viewer, "reason": "FORBIDDEN", "status": 403, "client_ip": "127.0.0.1",
		"method": "GET", "route": "/api/v1/audit/events", "request_id": r.Header.Get("X-Request-ID"),
	})
	if line["level"] != "WARN" || line["session_id"] == nil {
		t.Fatalf("the viewer's refusal: %v", line)
	}

	// Bounded: the same refusal again within the minute writes no line;
	// it is counted, and the next line after the minute says how many.
	for range 3 {
		expectStatus(t, "a viewer again", in.Do("GET", "/api/v1/audit/events", tok, nil), 403)
	}
	count := 0
	for _, l := range refusalLines(logs) {
		if l["user_id"] == viewer {
			count++
		}
	}
	if count != 1 {
		t.Fatalf("%d lines for the viewer's refusals within a minute, want 1", count)
	}
	in.Clock.Advance(61 * time.Second)
	r = in.Do("GET", "/api/v1/audit/events", tok, nil)
	expectStatus(t, "a viewer a minute later", r, 403)
	findRefusal(t, logs, "a viewer a minute later", map[string]any{"user_id": viewer, "suppressed": 3, "request_id": r.Header.Get("X-Request-ID")})
	metrics := in.Do("GET", "/metrics", "", nil)
	if !strings.Contains(string(metrics.Raw), "infracast_refusal_log_suppressed_total 3") {
		t.Fatalf("metrics: the held-back lines are not counted")
	}
	// A revoked session's refresh token: named by its session.
	login := in.Login("vera", "vera-passphrase-1")
	refresh := login.String("refresh_token")
	expectStatus(t, "log out", in.Do("POST", "/api/v1/auth/logout", login.String("token"), nil), 204)
	r = in.Do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh})
	expectStatus(t, "the refresh token of a revoked session", r, 401)
	line = findRefusal(t, logs, "the refresh token of a revoked session", map[string]any{
		"user_id": viewer, "reason": "session_revoked", "status": 401, "route": "/api/v1/auth/refresh", "request_id": r.Header.Get("X-Request-ID"),
	})
	if line["session_id"] == nil || strings.Contains(logs.String(), refresh) {
		t.Fatalf("the refresh's refusal: %v (or the token is in the log)", line)
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatal("the key's secret is in the log")
	}
}

// TestRefusalLogRevokedKey: a revoked API key used again is logged by its
// ID, as docs/operations.md says. The read model found a revoked key by its
// secret's hash only to name the reason, not the key, so the refusal left
// no line but the metric (re-check 20r2).
func TestRefusalLogRevokedKey(t *testing.T) {
	logs := &LogBuffer{}
	in := StartLogged(t, logs)
	admin := in.AdminToken()
	res := in.Do("POST", "/api/v1/api-keys", admin, map[string]any{"name": "leaked"})
	if res.Status != 201 {
		t.Fatalf("create key: %d %s", res.Status, res.Raw)
	}
	keyID, secret := res.String("id"), res.String("key")
	expectStatus(t, "revoke", in.Do("DELETE", "/api/v1/api-keys/"+keyID, admin, nil), 204)
	r := in.Do("GET", "/api/v1/auth/me", secret, nil)
	expectStatus(t, "the revoked key", r, 401)
	findRefusal(t, logs, "the revoked key", map[string]any{
		"key_id": keyID, "reason": "key_revoked", "status": 401, "route": "/api/v1/auth/me", "request_id": r.Header.Get("X-Request-ID"),
	})
	if strings.Contains(logs.String(), secret) {
		t.Fatal("the key's secret is in the log")
	}
}

// TestRefusalLogNotUpstreamAnswers: behind the gateway, the upstream's own
// 401, 403 and 404 to an authorized request are its answers, not the
// service's refusals — they were logged as such, with the status text for
// a reason, and filled the lines' budget (re-check 20r2) — and neither is
// the 404 of a tenant route with no upstream set. The service's own
// refusal on the same route still is.
func TestRefusalLogNotUpstreamAnswers(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/401"):
			w.WriteHeader(401)
		case strings.HasSuffix(r.URL.Path, "/403"):
			w.WriteHeader(403)
		default:
			http.NotFound(w, r)
		}
	}))
	defer up.Close()
	for _, gateway := range []bool{true, false} {
		logs := &LogBuffer{}
		var opts []Option
		if gateway {
			opts = append(opts, withUpstream(up.URL))
		}
		in := StartLogged(t, logs, opts...)
		admin := in.AdminToken()
		for _, status := range []int{404, 401, 403} {
			want := status
			if !gateway {
				want = 404 // no upstream set
			}
			expectStatus(t, fmt.Sprintf("an authorized request answered %d", status), in.Do("GET", fmt.Sprintf("/api/v1/tenants/prod/nodes/%d", status), admin, nil), want)
		}
		// The service's own refusal after them: once it is logged, the
		// others would have been (each is logged before its answer).
		viewer := in.CreateUser(admin, "vic", "vic-passphrase-12", map[string]string{"prod": "viewer"})
		tok := in.Login("vic", "vic-passphrase-12").String("token")
		expectStatus(t, "a viewer's write", in.Do("DELETE", "/api/v1/tenants/prod/nodes/1", tok, nil), 403)
		findRefusal(t, logs, "a viewer's write", map[string]any{"user_id": viewer, "reason": "FORBIDDEN", "status": 403})
		if lines := refusalLines(logs); len(lines) != 1 {
			t.Fatalf("gateway %v: %d refusal lines, want only the viewer's: %v", gateway, len(lines), lines)
		}
	}
}

// TestRefusalLogForwardAuth: a forward-auth refusal asked by a trusted
// proxy names the request the proxy asks about — its method and URI,
// escaped and cut to a bound (the client chose it) — and the client's
// address from the proxy's X-Forwarded-For; the line named only nginx's
// GET /api/v1/auth/verify (re-check 20r2).
func TestRefusalLogForwardAuth(t *testing.T) {
	logs := &LogBuffer{}
	in := StartLogged(t, logs, func(c *service.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
	})
	admin := in.AdminToken()
	viewer := in.CreateUser(admin, "vic", "vic-passphrase-12", map[string]string{"prod": "viewer"})
	tok := in.Login("vic", "vic-passphrase-12").String("token")
	uri := "/api/v1/tenants/prod/nodes/1?note=\u202e" + strings.Repeat("a", 2000)
	r := doReq(t, in, request{Method: "GET", Path: "/api/v1/auth/verify", Token: tok, Header: map[string]string{
		"X-Forwarded-Method": "DELETE", "X-Forwarded-Uri": uri, "X-Forwarded-For": "203.0.113.9",
	}})
	expectStatus(t, "a viewer's DELETE through nginx", r, 403)
	line := findRefusal(t, logs, "a viewer's DELETE through nginx", map[string]any{
		"user_id": viewer, "status": 403, "route": "/api/v1/auth/verify", "method": "GET",
		"forwarded_method": "DELETE", "client_ip": "203.0.113.9", "request_id": r.Header.Get("X-Request-ID"),
	})
	got, _ := line["forwarded_uri"].(string)
	if !strings.HasPrefix(got, "/api/v1/tenants/prod/nodes/1?note=\\u202eaaa") || strings.ContainsRune(got, 0x202e) ||
		len(got) > 600 || !strings.HasSuffix(got, fmt.Sprintf("…(%d bytes)", len(uri))) {
		t.Fatalf("forwarded_uri %q: want the URI escaped and cut", got)
	}
	// Envoy's form: the original path is the request's own. (A minute
	// later: one line a minute per reason and caller.)
	in.Clock.Advance(61 * time.Second)
	r = doReq(t, in, request{Method: "DELETE", Path: "/api/v1/auth/verify/api/v1/tenants/prod/nodes/2", Token: tok,
		Header: map[string]string{"X-Forwarded-For": "203.0.113.10"}})
	expectStatus(t, "a viewer's DELETE through Envoy", r, 403)
	findRefusal(t, logs, "a viewer's DELETE through Envoy", map[string]any{
		"user_id": viewer, "method": "DELETE", "forwarded_uri": "/api/v1/tenants/prod/nodes/2", "client_ip": "203.0.113.10",
		"request_id": r.Header.Get("X-Request-ID"),
	})
}

// TestRefusalLogUnknownRefreshCounted: a refresh token of the service's form
// that no session has — made up, or a revoked session's after the replica
// forgot the session (docs/audit.md) — names nobody and is not logged, but
// is counted as refresh_unknown, which an alert on replayed tokens can
// watch; a token of another form is not (re-check 20r2).
func TestRefusalLogUnknownRefreshCounted(t *testing.T) {
	logs := &LogBuffer{}
	in := StartLogged(t, logs)
	unknown := strings.Repeat("Ab3_", 10) + "xyQ" // 43 characters: 32 bytes, base64url
	expectStatus(t, "an unknown refresh token", in.Do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": unknown}), 401)
	expectStatus(t, "a refresh token of another form", in.Do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": "not-a-token"}), 401)
	metrics := string(in.Do("GET", "/metrics", "", nil).Raw)
	if !strings.Contains(metrics, `infracast_auth_failures_total{reason="refresh_unknown"} 1`+"\n") {
		t.Fatalf("metrics: the unknown refresh token is not counted once as refresh_unknown:\n%s", metrics)
	}
	if lines := refusalLines(logs); len(lines) != 0 || strings.Contains(logs.String(), unknown) {
		t.Fatalf("an unknown refresh token logged: %v", lines)
	}
}
