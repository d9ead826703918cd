package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sized is a well-formed JSON object of exactly n bytes.
func sized(field string, n int) []byte {
	prefix := `{"` + field + `":"`
	return []byte(prefix + strings.Repeat("a", n-len(prefix)-2) + `"}`)
}

// oversized is a well-formed JSON object one byte over the 64 KiB body limit.
func oversized(field string) []byte { return sized(field, 64<<10+1) }

// TestBadInputAppendsNothing: malformed, incomplete, unknown-field,
// wrong-content-type and oversized requests are refused with 400
// VALIDATION_ERROR (naming the field) or 413, and append no event at all.
func TestBadInputAppendsNothing(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	uid := in.CreateUser(admin, "target", "target-passphrase", map[string]string{"prod": "viewer"})
	const js = "application/json"
	const token = "/api/v1/auth/token"
	const users = "/api/v1/users"
	grant := "/api/v1/users/" + uid + "/tenants/prod"
	validUser := `{"username":"newbie","email":"newbie@example.com","password":"newbie-passphrase"`

	cases := []struct {
		name   string
		req    request
		status int
		code   string
		parts  []string
	}{
		// POST /api/v1/auth/token
		{"token: malformed JSON", request{Method: "POST", Path: token, ContentType: js, Body: []byte(`{"username": "admin", "password": `)}, 400, "VALIDATION_ERROR", []string{"JSON"}},
		{"token: not an object", request{Method: "POST", Path: token, ContentType: js, Body: []byte(`["admin"]`)}, 400, "VALIDATION_ERROR", nil},
		{"token: empty body", request{Method: "POST", Path: token, ContentType: js}, 400, "VALIDATION_ERROR", []string{"empty"}},
		{"token: two objects", request{Method: "POST", Path: token, ContentType: js, Body: []byte(`{"username":"admin","password":"` + AdminPassword + `"}{}`)}, 400, "VALIDATION_ERROR", nil},
		{"token: missing password", request{Method: "POST", Path: token, ContentType: js, Body: []byte(`{"username":"admin"}`)}, 400, "VALIDATION_ERROR", []string{"password"}},
		{"token: missing username", request{Method: "POST", Path: token, ContentType: js, Body: []byte(`{"password":"whatever-password"}`)}, 400, "VALIDATION_ERROR", []string{"username"}},
		{"token: blank username", request{Method: "POST", Path: token, ContentType: js, Body: []byte(`{"username":"  ","password":"whatever-password"}`)}, 400, "VALIDATION_ERROR", []string{"username"}},
		{"token: wrong type", request{Method: "POST", Path: token, ContentType: js, Body: []byte(`{"username":1,"password":"whatever-password"}`)}, 400, "VALIDATION_ERROR", []string{"username"}},
		{"token: unknown field with valid credentials", request{Method: "POST", Path: token, ContentType: js, Body: []byte(`{"username":"admin","password":"` + AdminPassword + `","remember_me":true}`)}, 400, "VALIDATION_ERROR", []string{"remember_me"}},
		{"token: invalid tenant", request{Method: "POST", Path: token, ContentType: js, Body: []byte(`{"username":"admin","password":"` + AdminPassword + `","tenant":"Not A Tenant"}`)}, 400, "VALIDATION_ERROR", []string{"tenant"}},
		{"token: text/plain", request{Method: "POST", Path: token, ContentType: "text/plain", Body: []byte(`{"username":"admin","password":"` + AdminPassword + `"}`)}, 400, "VALIDATION_ERROR", []string{"Content-Type"}},
		{"token: form encoded", request{Method: "POST", Path: token, ContentType: "application/x-www-form-urlencoded", Body: []byte(`username=admin&password=` + AdminPassword)}, 400, "VALIDATION_ERROR", []string{"Content-Type"}},
		{"token: no content type", request{Method: "POST", Path: token, Body: []byte(`{"username":"admin","password":"` + AdminPassword + `"}`)}, 400, "VALIDATION_ERROR", []string{"Content-Type"}},
		{"token: oversized", request{Method: "POST", Path: token, ContentType: js, Body: oversized("username")}, 413, "PAYLOAD_TOO_LARGE", nil},
		// POST /api/v1/auth/refresh
		{"refresh: missing refresh_token", request{Method: "POST", Path: "/api/v1/auth/refresh", ContentType: js, Body: []byte(`{}`)}, 400, "VALIDATION_ERROR", []string{"refresh_token"}},
		{"refresh: unknown field", request{Method: "POST", Path: "/api/v1/auth/refresh", ContentType: js, Body: []byte(`{"refresh_token":"x","grant_type":"refresh_token"}`)}, 400, "VALIDATION_ERROR", []string{"grant_type"}},
		// POST /api/v1/users
		{"users: malformed JSON", request{Method: "POST", Path: users, Token: admin, ContentType: js, Body: []byte(validUser)}, 400, "VALIDATION_ERROR", []string{"JSON"}},
		{"users: missing email", request{Method: "POST", Path: users, Token: admin, ContentType: js, Body: []byte(`{"username":"newbie","password":"newbie-passphrase"}`)}, 400, "VALIDATION_ERROR", []string{"email"}},
		{"users: missing password", request{Method: "POST", Path: users, Token: admin, ContentType: js, Body: []byte(`{"username":"newbie","email":"newbie@example.com"}`)}, 400, "VALIDATION_ERROR", []string{"password"}},
		{"users: missing username", request{Method: "POST", Path: users, Token: admin, ContentType: js, Body: []byte(`{"email":"newbie@example.com","password":"newbie-passphrase"}`)}, 400, "VALIDATION_ERROR", []string{"username"}},
		{"users: unknown field", request{Method: "POST", Path: users, Token: admin, ContentType: js, Body: []byte(validUser + `,"is_admin":true}`)}, 400, "VALIDATION_ERROR", []string{"is_admin"}},
		{"users: short password", request{Method: "POST", Path: users, Token: admin, ContentType: js, Body: []byte(`{"username":"newbie","email":"newbie@example.com","password":"short"}`)}, 400, "VALIDATION_ERROR", []string{"password"}},
		{"users: invalid username", request{Method: "POST", Path: users, Token: admin, ContentType: js, Body: []byte(`{"username":"new bie!","email":"newbie@example.com","password":"newbie-passphrase"}`)}, 400, "VALIDATION_ERROR", []string{"username"}},
		{"users: invalid email", request{Method: "POST", Path: users, Token: admin, ContentType: js, Body: []byte(`{"username":"newbie","email":"not an email","password":"newbie-passphrase"}`)}, 400, "VALIDATION_ERROR", []string{"email"}},
		{"users: unknown global role", request{Method: "POST", Path: users, Token: admin, ContentType: js, Body: []byte(validUser + `,"roles":["superuser"]}`)}, 400, "VALIDATION_ERROR", []string{"roles"}},
		{"users: unknown tenant role", request{Method: "POST", Path: users, Token: admin, ContentType: js, Body: []byte(validUser + `,"tenants":[{"id":"prod","role":"owner"}]}`)}, 400, "VALIDATION_ERROR", []string{"tenants"}},
		{"users: invalid tenant id", request{Method: "POST", Path: users, Token: admin, ContentType: js, Body: []byte(validUser + `,"tenants":[{"id":"Prod!","role":"viewer"}]}`)}, 400, "VALIDATION_ERROR", []string{"tenants"}},
		{"users: tenant listed twice", request{Method: "POST", Path: users, Token: admin, ContentType: js, Body: []byte(validUser + `,"tenants":[{"id":"prod","role":"viewer"},{"id":"prod","role":"editor"}]}`)}, 400, "VALIDATION_ERROR", []string{"tenants"}},
		{"users: unknown field in tenants", request{Method: "POST", Path: users, Token: admin, ContentType: js, Body: []byte(validUser + `,"tenants":[{"id":"prod","role":"viewer","since":"now"}]}`)}, 400, "VALIDATION_ERROR", []string{"since"}},
		{"users: wrong type", request{Method: "POST", Path: users, Token: admin, ContentType: js, Body: []byte(validUser + `,"roles":"admin"}`)}, 400, "VALIDATION_ERROR", []string{"roles"}},
		{"users: text/plain", request{Method: "POST", Path: users, Token: admin, ContentType: "text/plain", Body: []byte(validUser + `}`)}, 400, "VALIDATION_ERROR", []string{"Content-Type"}},
		{"users: exactly at the limit", request{Method: "POST", Path: users, Token: admin, ContentType: js, Body: sized("username", 64<<10)}, 400, "VALIDATION_ERROR", []string{"email"}},
		{"users: oversized", request{Method: "POST", Path: users, Token: admin, ContentType: js, Body: oversized("username")}, 413, "PAYLOAD_TOO_LARGE", nil},
		// PUT /api/v1/users/{id}/tenants/{tenant}
		{"grant: malformed JSON", request{Method: "PUT", Path: grant, Token: admin, ContentType: js, Body: []byte(`{"role":`)}, 400, "VALIDATION_ERROR", []string{"JSON"}},
		{"grant: missing role", request{Method: "PUT", Path: grant, Token: admin, ContentType: js, Body: []byte(`{}`)}, 400, "VALIDATION_ERROR", []string{"role"}},
		{"grant: unknown role", request{Method: "PUT", Path: grant, Token: admin, ContentType: js, Body: []byte(`{"role":"owner"}`)}, 400, "VALIDATION_ERROR", []string{"role"}},
		{"grant: unknown field", request{Method: "PUT", Path: grant, Token: admin, ContentType: js, Body: []byte(`{"role":"editor","until":"tomorrow"}`)}, 400, "VALIDATION_ERROR", []string{"until"}},
		{"grant: wrong type", request{Method: "PUT", Path: grant, Token: admin, ContentType: js, Body: []byte(`{"role":3}`)}, 400, "VALIDATION_ERROR", []string{"role"}},
		{"grant: invalid tenant in path", request{Method: "PUT", Path: "/api/v1/users/" + uid + "/tenants/Not_Valid", Token: admin, ContentType: js, Body: []byte(`{"role":"editor"}`)}, 400, "VALIDATION_ERROR", []string{"tenant"}},
		{"grant: text/plain", request{Method: "PUT", Path: grant, Token: admin, ContentType: "text/plain", Body: []byte(`{"role":"editor"}`)}, 400, "VALIDATION_ERROR", []string{"Content-Type"}},
		{"grant: oversized", request{Method: "PUT", Path: grant, Token: admin, ContentType: js, Body: oversized("role")}, 413, "PAYLOAD_TOO_LARGE", nil},
		// POST /api/v1/users/{id}/password (by the admin)
		{"password: missing password", request{Method: "POST", Path: "/api/v1/users/" + uid + "/password", Token: admin, ContentType: js, Body: []byte(`{}`)}, 400, "VALIDATION_ERROR", []string{"password"}},
		{"password: too short", request{Method: "POST", Path: "/api/v1/users/" + uid + "/password", Token: admin, ContentType: js, Body: []byte(`{"password":"short"}`)}, 400, "VALIDATION_ERROR", []string{"password"}},
	}
	before := head(t, in)
	applied := in.Svc.Model.Applied()
	for _, c := range cases {
		var r Response
		if c.status == 413 {
			// fasthttp refuses by Content-Length and closes without reading the
			// body; a client must finish writing to be sure to read the 413.
			r = rawRequest(t, in, c.req)
		} else {
			r = doReq(t, in, c.req)
		}
		expectError(t, c.name, r, c.status, c.code, c.parts...)
		if h := head(t, in); h != before {
			t.Fatalf("%s: appended %d events", c.name, h-before)
		}
	}
	if in.Svc.Model.Applied() != applied {
		t.Fatal("the read model moved")
	}
	u, _, _ := in.Svc.Model.User(uid)
	if len(u.Tenants) != 1 || u.Tenants["prod"] != "viewer" {
		t.Fatalf("target user changed: %+v", u.Tenants)
	}
	if _, _, ok := in.Svc.Model.UserByName("newbie"); ok {
		t.Fatal("user newbie exists")
	}
	// The service still works after all that.
	expectStatus(t, "valid login afterwards", me(t, in, in.AdminToken()), 200)
}

// TestNotFoundAndMethodNotAllowedShape: unknown routes and methods answer in
// the contract's error shape.
func TestNotFoundAndMethodNotAllowedShape(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()

	expectError(t, "unknown path", in.Do("GET", "/api/v1/nope", "", nil), 404, "NOT_FOUND")
	expectError(t, "unknown path with a token", in.Do("GET", "/api/v1/nope", admin, nil), 404, "NOT_FOUND")
	expectError(t, "outside the API", in.Do("GET", "/favicon.ico", "", nil), 404, "NOT_FOUND")
	expectError(t, "unknown user", in.Do("GET", "/api/v1/users/user-01J00000000000000000000000", admin, nil), 404, "NOT_FOUND")
	expectError(t, "role of an unknown user", in.Do("PUT", "/api/v1/users/user-01J00000000000000000000000/tenants/prod", admin, map[string]string{"role": "viewer"}), 404, "NOT_FOUND")
	expectError(t, "deactivate an unknown user", in.Do("POST", "/api/v1/users/user-01J00000000000000000000000/deactivate", admin, nil), 404, "NOT_FOUND")

	for _, c := range []struct{ method, path string }{
		{"PATCH", "/api/v1/auth/token"},
		{"GET", "/api/v1/auth/token"},
		{"DELETE", "/api/v1/auth/me"},
		{"GET", "/api/v1/auth/refresh"},
		{"PUT", "/api/v1/users"},
		{"POST", "/health"},
	} {
		r := in.Do(c.method, c.path, admin, nil)
		expectError(t, c.method+" "+c.path, r, 405, "METHOD_NOT_ALLOWED")
		if r.Header.Get("Allow") == "" {
			t.Logf("%s %s: 405 without an Allow header", c.method, c.path)
		}
	}
	h := in.Do("GET", "/health", "", nil)
	expectStatus(t, "health", h, 200)
	expectStatus(t, "ready", in.Do("GET", "/ready", "", nil), 200)
}

// TestMalformedRequestEchoesNothing: a request fasthttp cannot parse gets 400
// in the contract's shape with a fixed message. Before, the message was
// fasthttp's, which quotes the request — bearer token included (an outside
// check).
func TestMalformedRequestEchoesNothing(t *testing.T) {
	t.Parallel()
	in := Start(t)
	const secret = "SECRETTOKEN-0123456789"
	for name, raw := range map[string]string{
		"invalid header key":     "GET /api/v1/auth/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secret + "\r\nX-Infracast-Subject : evil\r\nConnection: close\r\n\r\n",
		"header without a colon": "GET /api/v1/auth/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secret + "\r\nno colon here\r\nConnection: close\r\n\r\n",
		"bad content length":     "POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secret + "\r\nContent-Length: 12x\r\nConnection: close\r\n\r\n",
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(in.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, raw); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, err := io.ReadAll(res.Body)
		conn.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r := Response{Status: res.StatusCode, Header: res.Header, Raw: body}
		if err := json.Unmarshal(body, &r.JSON); err != nil {
			t.Fatalf("%s: %d %s: %v", name, res.StatusCode, body, err)
		}
		expectError(t, name, r, 400, "VALIDATION_ERROR", "Malformed HTTP request")
		if strings.Contains(string(body), secret) || strings.Contains(string(body), "Authorization") {
			t.Errorf("%s: the answer quotes the request: %s", name, body)
		}
	}
}

// TestUnknownMethodsGetTheContractsAnswer: a method Fiber does not know
// (PROPFIND, FOO, a lower-case get) gets 501 NOT_IMPLEMENTED in the
// contract's shape with the security headers and a request ID — and under
// /console the console's headers — not Fiber's plain-text 400 "Invalid http
// method" (two re-checks; a 405 would have needed an Allow header).
func TestUnknownMethodsGetTheContractsAnswer(t *testing.T) {
	t.Parallel()
	in := Start(t)
	for _, tc := range []struct{ method, path, csp string }{
		{"PROPFIND", "/api/v1/users", "default-src 'none'"},
		{"FOO", "/api/v1/tenants/prod/nodes", "default-src 'none'"},
		{"get", "/api/v1/auth/me", "default-src 'none'"},
		{"PROPFIND", "/console/", "script-src 'self'"},
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(in.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", tc.method, tc.path); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		body, err := io.ReadAll(res.Body)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		r := Response{Status: res.StatusCode, Header: res.Header, Raw: body}
		if err := json.Unmarshal(body, &r.JSON); err != nil {
			t.Fatalf("%s %s: %d %q: %v", tc.method, tc.path, res.StatusCode, body, err)
		}
		expectError(t, tc.method+" "+tc.path, r, http.StatusNotImplemented, "NOT_IMPLEMENTED")
		if res.Header.Get("X-Request-ID") == "" || res.Header.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(res.Header.Get("Content-Security-Policy"), tc.csp) {
			t.Errorf("%s %s: headers %v", tc.method, tc.path, res.Header)
		}
	}
	// Counted, under one method label for all (no label per spelling).
	if m := in.Do("GET", "/metrics", "", nil); !strings.Contains(string(m.Raw), `infracast_http_requests_total{method="OTHER",route="/",status="501"} 4`) {
		t.Errorf("the unknown methods are not counted as 4 OTHER 501s:\n%s", m.Raw)
	}
}
