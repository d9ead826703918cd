package tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lenientUpstream is a resource service on loopback that keeps its
// connections alive and answers like Python's http.server does with
// protocol HTTP/1.1 and a handler that ignores what it does not expect: it
// reads no body of GET, HEAD, DELETE or OPTIONS (whatever follows the
// headers is the next request to it), and honours "Connection: close". Each
// answer tells what the upstream was told about the caller. A path ending
// in /late-body answers HEAD (or, with /no-content or another name of
// bodilessLines before it, GET with that status line) with headers only, then — once the next request on the connection has arrived,
// just as a late write would land after the gateway's look before reusing
// it — sends a whole other answer, "X-Planted: 1", before answering that
// request.
type lenientUpstream struct {
	addr  string
	conns atomic.Int64 // connections accepted
	mu    sync.Mutex
	ran   []string // "METHOD path subject tenant" of every request it ran
}

func newLenientUpstream(t *testing.T) *lenientUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	u := &lenientUpstream{addr: "http://" + ln.Addr().String()}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			u.conns.Add(1)
			go u.serve(conn)
		}
	}()
	return u
}

func (u *lenientUpstream) serve(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		subject, tenant := req.Header.Get("X-Infracast-Subject"), req.Header.Get("X-Infracast-Tenant")
		u.mu.Lock()
		u.ran = append(u.ran, fmt.Sprintf("%s %s %s %s", req.Method, req.URL.Path, subject, tenant))
		u.mu.Unlock()
		switch req.Method {
		case "GET", "HEAD", "DELETE", "OPTIONS":
			// The body is not read: br goes on where the headers ended.
		default:
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
		}
		body := fmt.Sprintf("%s %s subject=%s tenant=%s", req.Method, req.URL.Path, subject, tenant)
		const planted = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nX-Planted: 1\r\n\r\nPLANTED"
		switch {
		case strings.HasSuffix(req.URL.Path, "/late-body") && req.Method == "HEAD":
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(planted))
		case strings.HasSuffix(req.URL.Path, "/late-body") && bodilessLines[path.Base(path.Dir(req.URL.Path))] != "":
			fmt.Fprintf(conn, "%s\r\n", bodilessLines[path.Base(path.Dir(req.URL.Path))])
		default:
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			if req.Close {
				return
			}
			continue
		}
		if req.Close {
			return
		}
		if _, err := br.Peek(1); err != nil { // the next request is here
			return
		}
		if _, err := io.WriteString(conn, planted); err != nil {
			return
		}
	}
}

// bodilessLines: the status line (and the line ending) the lenient upstream
// answers a GET of …/<name>/late-body with: a 204 or 304, as written, and
// as fasthttp reads it all the same — two spaces after the version, an empty
// line before it (outside check 19r1).
var bodilessLines = map[string]string{
	"no-content":                  "HTTP/1.1 204 No Content\r\n",
	"no-content-two-spaces":       "HTTP/1.1  204 No Content\r\n",
	"no-content-empty-line-first": "\nHTTP/1.1 204 No Content\r\n",
	"not-modified-two-spaces":     "HTTP/1.1  304 Not Modified\r\n",
}

// ranForged reports the requests the upstream ran with the subject forged.
func (u *lenientUpstream) ranForged() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, r := range u.ran {
		if strings.Contains(r, "user-forged") {
			out = append(out, r)
		}
	}
	return out
}

// gwExchange writes data on one connection to base (the gateway, or nginx)
// and reads the answers to it (to methods, in order).
func gwExchange(t *testing.T, base string, data string, methods ...string) []Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, data); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var out []Response
	for _, m := range methods {
		res, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("answer %d: %v", len(out)+1, err)
		}
		raw, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatalf("answer %d: body: %v", len(out)+1, err)
		}
		out = append(out, Response{Status: res.StatusCode, Header: res.Header, Raw: raw})
	}
	return out
}

// TestGatewayUnexpectedBodyIsNoRequest: a body on a method whose handlers
// commonly leave it unread (GET, DELETE, OPTIONS) is a whole request,
// written with the identity headers of tenant "other" and an admin — and a
// second request follows on the client's connection. The upstream reads no
// such body; on a kept-alive connection it ran the body as a request
// nobody authorized, and the client read its answer (outside check 19a).
// The gateway sends such a body with "Connection: close": the upstream runs
// the authorized request only, and the client's next request is its own.
// POST's body (read by its handler) still shares the connection.
func TestGatewayUnexpectedBodyIsNoRequest(t *testing.T) {
	t.Parallel()
	up := newLenientUpstream(t)
	in := Start(t, withUpstream(up.addr))
	unexpectedBodyIsNoRequest(t, in.URL, up, gwUsers(t, in, "editor")["editor"])
}

// unexpectedBodyIsNoRequest is TestGatewayUnexpectedBodyIsNoRequest through
// base (the gateway, or nginx) to up, editor an editor in tenant prod.
func unexpectedBodyIsNoRequest(t *testing.T, base string, up *lenientUpstream, editor gwUser) {
	t.Helper()
	smuggled := "DELETE /api/v1/tenants/other/nodes/all HTTP/1.1\r\nHost: up\r\n" +
		"X-Infracast-Subject: user-forged\r\nX-Infracast-Tenant: other\r\nX-Infracast-Permissions: admin:*\r\nContent-Length: 0\r\n\r\n"
	for _, method := range []string{"GET", "DELETE", "OPTIONS"} {
		first := method + " /api/v1/tenants/prod/nodes HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + editor.Token +
			fmt.Sprintf("\r\nContent-Length: %d\r\n\r\n", len(smuggled)) + smuggled
		second := "GET /api/v1/tenants/prod/nodes/n1 HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + editor.Token + "\r\n\r\n"
		answers := gwExchange(t, base, first+second, method, "GET")
		for i, want := range []string{method + " /api/v1/tenants/prod/nodes ", "GET /api/v1/tenants/prod/nodes/n1 "} {
			if answers[i].Status != http.StatusOK || !strings.HasPrefix(string(answers[i].Raw), want) ||
				strings.Contains(string(answers[i].Raw), "forged") {
				t.Errorf("%s with a body: answer %d is %d %q, want 200 %q…", method, i+1, answers[i].Status, answers[i].Raw, want)
			}
		}
	}
	if forged := up.ranForged(); len(forged) > 0 {
		t.Fatalf("the upstream ran requests nobody authorized, with a forged identity: %q", forged)
	}
}

// TestGatewayNoAnswerAfterABodilessOne: an upstream that sends a body after
// an answer to HEAD (do_HEAD = do_GET), or after a 204, once the gateway
// has written the next request on that connection — another client's —
// chose the answer that client read: status, headers and body (outside
// check 19a). The gateway reuses no connection after such an answer: the
// second client gets its own — however the status line is written, as long
// as fasthttp reads it as a 204 or 304 (two spaces after the version, an
// empty line first: outside check 19r1).
func TestGatewayNoAnswerAfterABodilessOne(t *testing.T) {
	t.Parallel()
	up := newLenientUpstream(t)
	in := Start(t, withUpstream(up.addr))
	u := gwUsers(t, in, "viewer", "admin")
	for _, tc := range []struct{ method, path string }{
		{"HEAD", "/api/v1/tenants/prod/reports/late-body"},
		{"GET", "/api/v1/tenants/prod/reports/no-content/late-body"},
		{"GET", "/api/v1/tenants/prod/reports/no-content-two-spaces/late-body"},
		{"GET", "/api/v1/tenants/prod/reports/no-content-empty-line-first/late-body"},
		{"GET", "/api/v1/tenants/prod/reports/not-modified-two-spaces/late-body"},
	} {
		r := gwRaw(t, in, tc.method, tc.path, [][2]string{bearerHeader(u["viewer"].Token)})
		if r.Status >= 400 {
			t.Fatalf("%s %s: %d %s", tc.method, tc.path, r.Status, r.Raw)
		}
		victim := gwRaw(t, in, "GET", "/api/v1/tenants/prod/nodes/mine", [][2]string{bearerHeader(u["admin"].Token)})
		if want := "GET /api/v1/tenants/prod/nodes/mine subject=" + u["admin"].ID; victim.Status != http.StatusOK ||
			victim.Header.Get("X-Planted") != "" || !strings.HasPrefix(string(victim.Raw), want) {
			t.Errorf("after %s %s, another client's GET was answered %d %v %q, want 200 %q…",
				tc.method, tc.path, victim.Status, victim.Header, victim.Raw, want)
		}
	}
}

// TestGatewayAddsNoRequestContentType: a body sent without a Content-Type
// reaches the upstream without one (fasthttp added
// "application/octet-stream"; outside check 19a), and one sent with one
// keeps it.
func TestGatewayAddsNoRequestContentType(t *testing.T) {
	t.Parallel()
	up := newGWUpstream(t, nil)
	in := Start(t, withUpstream(up.srv.URL))
	editor := gwUsers(t, in, "editor")["editor"]
	for _, ct := range []string{"", "application/json"} {
		header := "PUT /api/v1/tenants/prod/nodes/n1 HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + editor.Token +
			"\r\nContent-Length: 7\r\n"
		if ct != "" {
			header += "Content-Type: " + ct + "\r\n"
		}
		r := gwExchange(t, in.URL, header+"\r\n"+`{"a":1}`, "PUT")[0]
		expectStatus(t, "PUT", r, http.StatusOK)
		seen := up.last()
		if got := seen.Header.Values("Content-Type"); len(got) != len(strings.Fields(ct)) || ct != "" && got[0] != ct {
			t.Errorf("PUT with Content-Type %q: the upstream got %q", ct, got)
		}
		if string(seen.Body) != `{"a":1}` {
			t.Errorf("PUT: the upstream got body %q", seen.Body)
		}
	}
}

// TestShippedNginxKeepsNoConnectionAfterABodyOrHead: the shipped nginx
// configuration (docs/nginx/infracast.conf, with real nginx) sends a body on
// a method other than POST, PUT or PATCH, and HEAD, on a connection it does
// not reuse, with "Connection: close": the resource service runs no request
// nobody authorized, and no client reads the answer an upstream sent after
// HEAD's (outside check 19a saw both through nginx's kept-alive connections).
func TestShippedNginxKeepsNoConnectionAfterABodyOrHead(t *testing.T) {
	t.Parallel()
	bin := faNginxBinary(t)
	shipped, err := os.ReadFile("../docs/nginx/infracast.conf")
	if err != nil {
		t.Fatal(err)
	}
	in := Start(t)
	up := newLenientUpstream(t)
	upAddr := strings.TrimPrefix(up.addr, "http://")
	front := freeAddr(t)
	conf, err := faTemplate(string(shipped), []faReplacement{
		{"server auth1:8080", "server " + strings.TrimPrefix(in.URL, "http://")},
		{"server auth2:8080", "server " + strings.TrimPrefix(in.URL, "http://")},
		{"upstream resources_once {\n    server 127.0.0.1:9000;", "upstream resources_once {\n    server " + upAddr + ";"},
		{"server 127.0.0.1:9000;", "server " + upAddr + ";"},
		{"listen 9000;", "listen " + freeAddr(t) + ";"}, // the sample resource service, unused here
		{"listen 80;", "listen " + front + ";"},
	})
	if err != nil {
		t.Fatalf("docs/nginx/infracast.conf: %v", err)
	}
	faStartNginx(t, bin, conf, front)
	base := "http://" + front
	u := gwUsers(t, in, "editor", "viewer", "admin")
	unexpectedBodyIsNoRequest(t, base, up, u["editor"])
	for i := range 6 { // either nginx worker
		r := gwExchange(t, base, "HEAD /api/v1/tenants/prod/reports/late-body HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+
			u["viewer"].Token+"\r\nConnection: close\r\n\r\n", "HEAD")[0]
		if r.Status != http.StatusOK {
			t.Fatalf("HEAD %d through nginx: %d %s", i, r.Status, r.Raw)
		}
		victim := gwExchange(t, base, "GET /api/v1/tenants/prod/nodes/mine HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+
			u["admin"].Token+"\r\nConnection: close\r\n\r\n", "GET")[0]
		if want := "GET /api/v1/tenants/prod/nodes/mine subject=" + u["admin"].ID; victim.Status != http.StatusOK ||
			victim.Header.Get("X-Planted") != "" || !strings.HasPrefix(string(victim.Raw), want) {
			t.Fatalf("after HEAD %d through nginx, another client's GET was answered %d %v %q, want 200 %q…",
				i, victim.Status, victim.Header, victim.Raw, want)
		}
	}
}

// TestShippedNginxOverHTTP2KeepsNoConnectionAfterABody: the shipped nginx
// configuration with HTTP/2 on its listener (h2c here, as "listen 443 ssl
// http2" alike). An HTTP/2 request may carry a body without a
// Content-Length header (Go's client does when the length is unknown), so
// neither $http_content_length nor $http_transfer_encoding tells it has one:
// a GET, DELETE or OPTIONS with such a body went to the kept-alive
// "resources" upstream, nginx sent it with a Content-Length, and the resource
// service, leaving it unread, ran it as a request nobody authorized
// (outside check 19r1). The location reads the body before the map chooses
// (mirror_request_body), and the map looks at $content_length, which then
// has its length: such a body goes on a connection of its own. Requests
// without a body still share kept-alive connections: 200 HTTP/2 GETs open a
// few upstream connections, not 200.
func TestShippedNginxOverHTTP2KeepsNoConnectionAfterABody(t *testing.T) {
	t.Parallel()
	bin := faNginxBinary(t)
	shipped, err := os.ReadFile("../docs/nginx/infracast.conf")
	if err != nil {
		t.Fatal(err)
	}
	in := Start(t)
	up := newLenientUpstream(t)
	upAddr := strings.TrimPrefix(up.addr, "http://")
	front := freeAddr(t)
	conf, err := faTemplate(string(shipped), []faReplacement{
		{"server auth1:8080", "server " + strings.TrimPrefix(in.URL, "http://")},
		{"server auth2:8080", "server " + strings.TrimPrefix(in.URL, "http://")},
		{"upstream resources_once {\n    server 127.0.0.1:9000;", "upstream resources_once {\n    server " + upAddr + ";"},
		{"server 127.0.0.1:9000;", "server " + upAddr + ";"},
		{"listen 9000;", "listen " + freeAddr(t) + ";"}, // the sample resource service, unused here
		{"listen 80;", "listen " + front + " http2;"},   // HTTP/2 with prior knowledge (h2c)
	})
	if err != nil {
		t.Fatalf("docs/nginx/infracast.conf: %v", err)
	}
	faStartNginx(t, bin, conf, front)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &protocols}, Timeout: 30 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	editor := gwUsers(t, in, "editor")["editor"]
	do := func(method, path string, body io.Reader) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+front+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = -1 // no content-length header on the HTTP/2 request
		req.Header.Set("Authorization", "Bearer "+editor.Token)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.ProtoMajor != 2 {
			t.Fatalf("%s %s: answered over %s, want HTTP/2", method, path, res.Proto)
		}
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, string(b)
	}
	smuggled := "DELETE /api/v1/tenants/other/nodes/all HTTP/1.1\r\nHost: up\r\n" +
		"X-Infracast-Subject: user-forged\r\nX-Infracast-Tenant: other\r\nX-Infracast-Permissions: admin:*\r\nContent-Length: 0\r\n\r\n"
	for _, method := range []string{"GET", "DELETE", "OPTIONS"} {
		for range 2 { // either nginx worker, and a request after it on the same connection
			// io.MultiReader hides the length from the client.
			status, body := do(method, "/api/v1/tenants/prod/nodes", io.MultiReader(strings.NewReader(smuggled)))
			if want := method + " /api/v1/tenants/prod/nodes subject=" + editor.ID; status != http.StatusOK || !strings.HasPrefix(body, want) {
				t.Errorf("HTTP/2 %s with a body: %d %q, want 200 %q…", method, status, body, want)
			}
			if status, body := do("GET", "/api/v1/tenants/prod/nodes/n1", nil); status != http.StatusOK || strings.Contains(body, "forged") {
				t.Errorf("HTTP/2 GET after a %s with a body: %d %q", method, status, body)
			}
		}
	}
	if forged := up.ranForged(); len(forged) > 0 {
		t.Fatalf("the upstream ran requests nobody authorized, with a forged identity: %q", forged)
	}
	// Requests without a body keep their connections.
	before := up.conns.Load()
	const gets = 200
	for range gets {
		if status, body := do("GET", "/api/v1/tenants/prod/nodes", nil); status != http.StatusOK {
			t.Fatalf("HTTP/2 GET: %d %q", status, body)
		}
	}
	if opened := up.conns.Load() - before; opened > 4 {
		t.Errorf("%d HTTP/2 GETs without a body opened %d upstream connections, want a few kept alive", gets, opened)
	}
}
