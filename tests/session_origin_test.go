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

// TestBrowserSessionBehindTLSProxyWithoutPublicURL: without a public URL,
// behind a proxy that terminates TLS, the page is at https and the service
// sees http: the sign-in is refused (its cookies would be set for another
// origin), and the answer says to set INFRACAST_PUBLIC_URL to the page's
// origin — it said to open the page at http:// (outside check 15d). A page
// of another site, with no proxy in between, is still told the origin to
// open the page at.
func TestBrowserSessionBehindTLSProxyWithoutPublicURL(t *testing.T) {
	in := Start(t)
	host := strings.TrimPrefix(in.URL, "http://")
	in.CreateUser(in.AdminToken(), "hank", "correct horse battery", nil)
	body, err := json.Marshal(map[string]string{"username": "hank", "password": "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	call := func(origin string, header map[string]string) (Response, string) {
		h := map[string]string{"X-Infracast-Session": "cookie", "Origin": origin, "Sec-Fetch-Site": "same-origin"}
		for k, v := range header {
			h[k] = v
		}
		r := doReq(t, in, request{Method: "POST", Path: "/api/v1/auth/token", ContentType: "application/json", Body: body, Header: h})
		e, _ := r.JSON["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if r.Status != http.StatusForbidden || r.ErrorCode() != "FORBIDDEN" {
			t.Fatalf("sign-in from %s %v: %d %s, want 403 FORBIDDEN", origin, header, r.Status, r.Raw)
		}
		return r, msg
	}
	for _, c := range []struct {
		origin string
		header map[string]string
	}{
		{"https://" + host, nil}, // the service's host, the scheme the proxy took off
		{"https://auth.example.com", map[string]string{"X-Forwarded-Proto": "https"}}, // the proxy says so
	} {
		_, msg := call(c.origin, c.header)
		if !strings.HasSuffix(msg, "set INFRACAST_PUBLIC_URL to its origin, "+c.origin) || strings.Contains(msg, "open the page at") {
			t.Errorf("sign-in from %s %v: %q, want the advice to set INFRACAST_PUBLIC_URL to %s, not to open the page at http", c.origin, c.header, msg, c.origin)
		}
	}
	if _, msg := call("https://evil.example", nil); !strings.HasSuffix(msg, "open the page at "+in.URL) {
		t.Errorf("sign-in from another site: %q, want it told to open the page at %s", msg, in.URL)
	}
}

// TestPublicURLInternationalised: a public URL with an internationalised
// host (https://bücher.example) is the origin browsers send, in its ASCII
// form: a page opened there signs in, passkeys take it as their relying
// party, and the SSO redirect URI is built on it (outside check 17e: every
// browser sign-in was refused "open the page at https://b%C3%BCcher.example",
// passkey options answered 500, the redirect URI was percent-encoded). A
// public URL that writes an IP address otherwise than browsers do is
// refused at start.
func TestPublicURLInternationalised(t *testing.T) {
	in := Start(t, func(c *service.Config) { c.PublicURL = "https://Bücher.example/" })
	in.CreateUser(in.AdminToken(), "hank", "correct horse battery", nil)
	body, err := json.Marshal(map[string]string{"username": "hank", "password": "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	r := doReq(t, in, request{Method: "POST", Path: "/api/v1/auth/token", ContentType: "application/json", Body: body,
		Header: map[string]string{"X-Infracast-Session": "cookie", "Origin": "https://xn--bcher-kva.example", "Sec-Fetch-Site": "same-origin"}})
	expectStatus(t, "a sign-in from the page at the public URL", r, http.StatusOK)
	opts := in.Do("POST", "/api/v1/auth/passkey/options", "", map[string]any{})
	expectStatus(t, "passkey sign-in options", opts, http.StatusOK)
	if pk, _ := opts.JSON["publicKey"].(map[string]any); pk == nil || pk["rpId"] != "xn--bcher-kva.example" {
		t.Errorf("passkey options: %s, want the relying party xn--bcher-kva.example", opts.Raw)
	}
	md := in.Do("GET", "/api/v1/auth/sso/saml/metadata", "", nil)
	expectStatus(t, "SAML metadata", md, http.StatusOK)
	if !strings.Contains(string(md.Raw), `entityID="https://xn--bcher-kva.example/`) || strings.Contains(string(md.Raw), "%C3") {
		t.Errorf("SAML metadata names another entity: %s", md.Raw)
	}

	c := service.Defaults()
	c.PublicURL = "http://127.000.000.001:8080"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "write the IP address as browsers show it") {
		t.Errorf("a public URL of 127.000.000.001: %v, want it refused", err)
	}
}
