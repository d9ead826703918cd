package tests

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/infracast/auth/http/service"
)

// TestBrowserSessionFromAnotherOrigin: the browser session's sign-in and
// refresh calls from a page at another origin than the public URL's — the
// service opened at http://127.0.0.1:<port> for http://localhost:<port> —
// are refused 403 naming the origin to open the page at, not "Missing or
// invalid CSRF token", which they are not about (outside check 14e); from
// the public URL's origin the sign-in goes on.
func TestBrowserSessionFromAnotherOrigin(t *testing.T) {
	addr := freeAddr(t)
	public := "http://localhost:" + addr[strings.LastIndex(addr, ":")+1:]
	in := Start(t, WithListen(addr), func(c *service.Config) { c.PublicURL = public })
	in.CreateUser(in.AdminToken(), "hank", "correct horse battery", nil)
	body, err := json.Marshal(map[string]string{"username": "hank", "password": "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	call := func(path, origin string) Response {
		return doReq(t, in, request{Method: "POST", Path: path, ContentType: "application/json", Body: body,
			Header: map[string]string{"X-Infracast-Session": "cookie", "Origin": origin, "Sec-Fetch-Site": "same-origin"}})
	}
	for _, path := range []string{"/api/v1/auth/token", "/api/v1/auth/refresh"} {
		r := call(path, "http://"+addr)
		e, _ := r.JSON["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if r.Status != http.StatusForbidden || r.ErrorCode() != "FORBIDDEN" || !strings.HasSuffix(msg, "open the page at "+public) {
			t.Errorf("%s from http://%s: %d %s, want 403 naming %s", path, addr, r.Status, r.Raw, public)
		}
	}
	expectStatus(t, "the sign-in from the public URL's origin", call("/api/v1/auth/token", public), http.StatusOK)
}

// TestPublicURLWrittenOtherwise: a public URL with an upper-case host, or
// with its scheme's default port, is the origin browsers send in lower case
// and without the port: a page opened at it signs in, and passkeys work
// (re-check 14r3: every browser sign-in was refused "open the page at
// http://LocalHost:…", the page's own address, and passkey options answered
// 500 for an upper-case relying party ID).
func TestPublicURLWrittenOtherwise(t *testing.T) {
	addr := freeAddr(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	in := Start(t, WithListen(addr), func(c *service.Config) { c.PublicURL = "http://LocalHost:" + port + "/" })
	in.CreateUser(in.AdminToken(), "hank", "correct horse battery", nil)
	body, err := json.Marshal(map[string]string{"username": "hank", "password": "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	r := doReq(t, in, request{Method: "POST", Path: "/api/v1/auth/token", ContentType: "application/json", Body: body,
		Header: map[string]string{"X-Infracast-Session": "cookie", "Origin": "http://localhost:" + port, "Sec-Fetch-Site": "same-origin"}})
	expectStatus(t, "a sign-in from the page at the public URL", r, http.StatusOK)
	opts := in.Do("POST", "/api/v1/auth/passkey/options", "", map[string]any{})
	expectStatus(t, "passkey sign-in options", opts, http.StatusOK)
	if pk, _ := opts.JSON["publicKey"].(map[string]any); pk == nil || pk["rpId"] != "localhost" {
		t.Errorf("passkey options: %s, want the relying party localhost", opts.Raw)
	}

	// The default port is left out as browsers leave it out.
	for scheme, public := range map[string]string{"http": "http://localhost:80", "https": "HTTPS://Auth.Example.com:443/"} {
		c := service.Defaults()
		c.PublicURL = public
		if got, want := c.ExternalBaseURL(), map[string]string{"http": "http://localhost", "https": "https://auth.example.com"}[scheme]; got != want {
			t.Errorf("%s: the external base URL %q, want %q", public, got, want)
		}
	}
}
