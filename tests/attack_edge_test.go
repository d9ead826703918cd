package tests

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/http/service"
)

// TestEdgeHeadersAndNoCORS: every response carries a request ID and the
// security headers; token responses are never cached; no CORS headers are
// sent unless configured, so browsers on other origins cannot read answers.
func TestEdgeHeadersAndNoCORS(t *testing.T) {
	in := Start(t)
	for _, r := range []Response{
		in.Login(AdminUser, AdminPassword),
		in.Do("GET", "/api/v1/auth/me", "garbage", nil),
		in.Do("GET", "/nope", "", nil),
		// Refused by the HTTP server before any route runs.
		doReq(t, in, request{Method: "POST", Path: "/api/v1/auth/token", ContentType: "application/json", Body: oversized("username")}),
	} {
		expectDefaultHeaders(t, r.Status, r.Header)
	}
	req, _ := http.NewRequest("OPTIONS", in.URL+"/api/v1/auth/token", nil)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if v := res.Header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Fatalf("CORS allowed origin %q without configuration", v)
	}
}

// expectDefaultHeaders checks the request ID and the security headers that
// every answer carries.
func expectDefaultHeaders(t *testing.T, status int, h http.Header) {
	t.Helper()
	for name, want := range map[string]string{
		"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
		"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%d response: %s = %q, want %q", status, name, got, want)
		}
	}
	if !strings.HasPrefix(h.Get("X-Request-ID"), "req-") {
		t.Errorf("%d response without a request ID: %v", status, h)
	}
	if h.Get("Content-Security-Policy") == "" {
		t.Errorf("no CSP on %d response", status)
	}
}

// TestEdgeOversizedHeaders: request headers beyond the limit are refused in
// the contract's shape, and the server keeps serving.
func TestEdgeOversizedHeaders(t *testing.T) {
	in := Start(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(in.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 64<<10))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 431 {
		t.Fatalf("oversized headers: %d", res.StatusCode)
	}
	expectDefaultHeaders(t, res.StatusCode, res.Header)
	if r := in.Do("GET", "/health", "", nil); r.Status != 200 {
		t.Fatalf("server after oversized headers: %d", r.Status)
	}
}

// TestEdgeAmbiguousFraming: a request whose length two headers give
// differently (two Content-Lengths, or Content-Length with
// Transfer-Encoding) is how requests are smuggled past a proxy that reads
// it the other way (RFC 9112, 6.1 and 6.3). Two different Content-Lengths
// are refused (400); with Transfer-Encoding the request may be answered,
// but the connection is closed after it: nothing after it on that
// connection is read as a request.
func TestEdgeAmbiguousFraming(t *testing.T) {
	in := Start(t)
	smuggled := "GET /api/v1/auth/me HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, c := range []struct {
		name, head, body string
		status           int
	}{
		{"two Content-Lengths, 0 then more", "Content-Length: 0\r\nContent-Length: " + fmt.Sprint(len(smuggled)), smuggled, 400},
		{"two Content-Lengths, more then 0", "Content-Length: " + fmt.Sprint(len(smuggled)) + "\r\nContent-Length: 0", smuggled, 400},
		{"Content-Length and chunked", "Content-Length: 4\r\nTransfer-Encoding: chunked", "0\r\n\r\n" + smuggled, 0},
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(in.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%s\r\n\r\n%s", c.head, c.body)
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		res.Body.Close()
		if c.status != 0 && res.StatusCode != c.status {
			t.Errorf("%s: %d, want %d", c.name, res.StatusCode, c.status)
		}
		// The connection ends: the smuggled request is never answered.
		if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if next, err := http.ReadResponse(br, nil); err == nil {
			next.Body.Close()
			t.Errorf("%s: a second answer (%d) on the connection: the smuggled request was read", c.name, next.StatusCode)
		}
		conn.Close()
	}
	if r := in.Do("GET", "/health", "", nil); r.Status != 200 {
		t.Fatalf("server after ambiguous requests: %d", r.Status)
	}
}

// TestMetrics: /metrics exposes requests by route and status, refused
// credentials by reason, logins by result, the projection's position and the
// event-store append latency.
func TestMetrics(t *testing.T) {
	in := Start(t)
	in.Login(AdminUser, AdminPassword)
	in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": AdminUser, "password": "wrong-password"})
	in.Do("GET", "/api/v1/auth/me", "not-a-token", nil)
	in.Do("GET", "/api/v1/auth/me", "ic_live_nope", nil)
	// A revoked key still in use (leaked?) is counted as key_revoked, not
	// as an unknown key (outside check 16o: the reason never appeared).
	admin := in.AdminToken()
	created := in.Do("POST", "/api/v1/api-keys", admin, map[string]any{"name": "leaked", "tenants": []string{"prod"}, "permissions": []string{"nodes:read"}})
	expectStatus(t, "a key", created, http.StatusCreated)
	expectStatus(t, "the key works", in.Do("GET", "/api/v1/auth/me", created.String("key"), nil), http.StatusOK)
	expectStatus(t, "revoke it", in.Do("DELETE", "/api/v1/api-keys/"+created.String("id"), admin, nil), http.StatusNoContent)
	expectBody(t, "the revoked key", in.Do("GET", "/api/v1/auth/me", created.String("key"), nil), http.StatusUnauthorized, bodyUnauthorized)
	r := in.Do("GET", "/metrics", "", nil)
	if r.Status != 200 {
		t.Fatalf("/metrics: %d", r.Status)
	}
	body := string(r.Raw)
	for _, want := range []string{
		`infracast_http_requests_total{method="POST",route="/api/v1/auth/token",status="200"} 2`,
		`infracast_http_requests_total{method="POST",route="/api/v1/auth/token",status="401"} 1`,
		`infracast_auth_failures_total{reason="invalid_token"} 1`,
		`infracast_auth_failures_total{reason="malformed_key"} 1`,
		`infracast_auth_failures_total{reason="key_revoked"} 1`,
		`infracast_logins_total{result="success"} 2`,
		`infracast_logins_total{result="failure"} 1`,
		`infracast_projection_applied_sequence`,
		`infracast_projection_lag_events 0`,
		`infracast_event_append_duration_seconds_count{outcome="ok"}`,
		`infracast_event_store_connected 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestCORSOnlyForConfiguredOrigins: with INFRACAST_CORS_ORIGINS set, exactly
// those origins get CORS headers, as browsers send them whatever the
// setting's spelling (a default port, an internationalised host, upper
// case: re-check 17r3 found them never matched); any other origin gets none.
func TestCORSOnlyForConfiguredOrigins(t *testing.T) {
	in := Start(t, func(c *service.Config) {
		c.CORSOrigins = []string{"https://app.example.com:443", "https://bücher.example", "https://Shop.Example.com/"}
	})
	for origin, allowed := range map[string]bool{"https://app.example.com": true, "https://xn--bcher-kva.example": true, "https://shop.example.com": true,
		"https://evil.example": false, "null": false, "https://app.example.com:8443": false} {
		req, _ := http.NewRequest("OPTIONS", in.URL+"/api/v1/auth/me", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "authorization")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		got := res.Header.Get("Access-Control-Allow-Origin")
		if allowed && got != origin || !allowed && got != "" {
			t.Errorf("origin %s: Access-Control-Allow-Origin %q", origin, got)
		}
		if res.Header.Get("Access-Control-Allow-Credentials") == "true" {
			t.Errorf("origin %s: credentials allowed", origin)
		}
	}
	// What a page tells beside its body can be read cross-origin: the
	// request ID, Retry-After, and the audit log's CSV pages' next cursor.
	req, _ := http.NewRequest("GET", in.URL+"/health", nil)
	req.Header.Set("Origin", "https://app.example.com")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("Access-Control-Expose-Headers"); got != "X-Request-ID,Retry-After,X-Next-Cursor" {
		t.Errorf("Access-Control-Expose-Headers %q", got)
	}
}
