package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
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
