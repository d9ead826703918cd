package tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestShippedNginxAnswersItsOwnRefusalsInJSON: what nginx refuses itself,
// before any replica sees it, is answered in the contract's shape, as the
// service answers the same: a body over the service's limit (64 KiB) 413
// PAYLOAD_TOO_LARGE (SCIM's error under /scim/v2), a malformed request 400
// VALIDATION_ERROR, headers or a request line over nginx's buffers 431.
// Before, these were nginx's HTML pages, and bodies up to nginx's default of
// 1 MiB were read and passed on to be refused by the service (outside check
// 19r3).
func TestShippedNginxAnswersItsOwnRefusalsInJSON(t *testing.T) {
	t.Parallel()
	ok := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{}`)
	}
	a, b := newLBStub(t, ok), newLBStub(t, ok)
	up := newGWUpstream(t, nil)
	base := lbNginx(t, a.addr(), b.addr(), strings.TrimPrefix(up.srv.URL, "http://"))
	const (
		tooLarge     = `{"error":{"code":"PAYLOAD_TOO_LARGE","message":"Request body is larger than the limit"}}`
		scimTooLarge = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"413","detail":"Request body is larger than the limit"}`
		malformed    = `{"error":{"code":"VALIDATION_ERROR","message":"Malformed HTTP request: its request line or headers could not be parsed"}}`
		headersLarge = `{"error":{"code":"VALIDATION_ERROR","message":"Request headers are too large"}}`
	)

	// A body of the service's limit passes; one byte more is nginx's 413, in
	// every location: the service's writes and reads, a tenant resource,
	// SCIM, /ready.
	res, err := send(base, request{Method: "POST", Path: "/api/v1/users", ContentType: "application/json", Body: make([]byte, 64<<10)})
	if err != nil || res.Status != http.StatusOK {
		t.Fatalf("POST of 64 KiB through nginx: %v %d %s, want the replica's 200", err, res.Status, res.Raw)
	}
	for _, c := range []struct{ method, path, want, contentType string }{
		{"POST", "/api/v1/users", tooLarge, "application/json"},
		{"PUT", "/api/v1/users/user-1", tooLarge, "application/json"},
		{"GET", "/api/v1/auth/me", tooLarge, "application/json"},
		{"PUT", "/api/v1/tenants/prod/nodes/n1", tooLarge, "application/json"},
		{"GET", "/api/v1/tenants/prod/access", tooLarge, "application/json"},
		{"GET", "/ready", tooLarge, "application/json"},
		{"POST", "/scim/v2/Users", scimTooLarge, "application/scim+json"},
		{"POST", "/SCIM/v2/Users", scimTooLarge, "application/scim+json"},
	} {
		res, err := send(base, request{Method: c.method, Path: c.path, ContentType: "application/json", Body: make([]byte, 64<<10+1)})
		if err != nil {
			t.Fatalf("%s %s of 64 KiB + 1 through nginx: %v", c.method, c.path, err)
		}
		if res.Status != http.StatusRequestEntityTooLarge || string(res.Raw) != c.want || res.Header.Get("Content-Type") != c.contentType {
			t.Errorf("%s %s of 64 KiB + 1 through nginx: %d %s %s, want 413 %s", c.method, c.path, res.Status, res.Header.Get("Content-Type"), res.Raw, c.want)
		}
	}
	// A chunked body is counted as nginx reads it.
	chunk := strings.Repeat("x", 64<<10+1)
	if got := nginxRaw(t, base, "POST /api/v1/users HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"+
		fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(chunk), chunk)); got.Status != http.StatusRequestEntityTooLarge || string(got.Raw) != tooLarge {
		t.Errorf("a chunked body of 64 KiB + 1 through nginx: %d %s, want 413 %s", got.Status, got.Raw, tooLarge)
	}

	for _, c := range []struct {
		name, req string
		status    int
		want      string
	}{
		{"a duplicate Host", "GET /api/v1/auth/me HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, malformed},
		{"Content-Length with Transfer-Encoding", "POST /api/v1/users HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, malformed},
		{"a malformed request line", "GET\x01 / HTTP/1.1\r\nHost: a\r\n\r\n", 400, malformed},
		{"no request line at all", "hello there\r\n\r\n", 400, malformed},
		{"an HTTP/1.1 request without Host", "GET / HTTP/1.1\r\n\r\n", 400, malformed},
		{"an invalid header line", "GET / HTTP/1.1\r\nHost: a\r\nX-A\x00: b\r\n\r\n", 400, malformed},
		{"a malformed chunked body", "POST /api/v1/users HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, malformed},
		{"a malformed chunked body to a tenant resource", "PUT /api/v1/tenants/prod/nodes/n1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, malformed},
		{"a Transfer-Encoding nginx does not implement (its 501)", "POST /api/v1/users HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400, malformed},
		{"an HTTP version nginx does not speak (its 505)", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 400, malformed},
		{"a header over nginx's 8 KiB buffer", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", 9<<10) + "\r\n\r\n", 431, headersLarge},
		{"a request line over nginx's 8 KiB buffer", "GET /" + strings.Repeat("a", 9<<10) + " HTTP/1.1\r\nHost: a\r\n\r\n", 431, headersLarge},
	} {
		got := nginxRaw(t, base, c.req)
		if got.Status != c.status || string(got.Raw) != c.want || got.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s through nginx: %d %s %s, want %d %s", c.name, got.Status, got.Header.Get("Content-Type"), got.Raw, c.status, c.want)
		}
	}
	// Nothing refused reached a replica: only the POST within the limit, and
	// the auth subrequest of the tenant resource whose chunked body nginx
	// reads after it.
	if n := a.saw("POST /api/v1/users") + b.saw("POST /api/v1/users"); n != 1 {
		t.Errorf("the replicas were asked POST /api/v1/users %d times, want once (the body within the limit)", n)
	}
	for _, s := range []*lbStub{a, b} {
		s.mu.Lock()
		for _, seen := range s.seen {
			if seen != "POST /api/v1/users" && seen != "GET /api/v1/auth/verify" {
				t.Errorf("a replica was asked %s, which nginx refused", seen)
			}
		}
		s.mu.Unlock()
	}
}

// nginxRaw sends req as written on a connection of its own and reads the
// answer.
func nginxRaw(t *testing.T, base, req string) Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatalf("write %.40q: %v", req, err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("answer to %.40q: %v", req, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("answer to %.40q: %v", req, err)
	}
	return Response{Status: res.StatusCode, Header: res.Header, Raw: raw}
}
