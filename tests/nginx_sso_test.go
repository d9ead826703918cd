package tests

import (
	"bufio"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
)

// TestShippedNginxServesTheSignInAndSSO: the shipped binary, with its
// defaults (no INFRACAST_PUBLIC_URL), behind docs/nginx/infracast.conf as
// shipped: the sign-in page's cookie session from the page's own origin is
// taken, the access history under /api/v1/tenants/ is the service's, SSO sends the identity provider a redirect URI at nginx's origin,
// and a login through nginx completes. Before, nginx passed its upstream's
// name as Host (http://infracast_auth): the sign-in was refused as from
// "another origin" and the IdP refused the redirect URI (outside check
// 16a, following README "With Docker Compose").
func TestShippedNginxServesTheSignInAndSSO(t *testing.T) {
	t.Parallel()
	bin := faNginxBinary(t)
	shipped, err := os.ReadFile("../docs/nginx/infracast.conf")
	if err != nil {
		t.Fatal(err)
	}
	_, in, _ := startShipped(t)
	admin := in.Login(AdminUser, shippedAdminPassword).String("token")
	front := freeAddr(t)
	base := "http://" + front
	conf, err := faTemplate(string(shipped), []faReplacement{
		{"server auth1:8080", "server " + strings.TrimPrefix(in.URL, "http://")},
		{"server auth2:8080", "server " + strings.TrimPrefix(in.URL, "http://")},
		{"upstream resources_once {\n    server 127.0.0.1:9000;", "upstream resources_once {\n    server " + freeAddr(t) + ";"},
		{"server 127.0.0.1:9000;", "server " + freeAddr(t) + ";"},
		{"listen 9000;", "listen " + freeAddr(t) + ";"},
		{"listen 80;", "listen " + front + ";"},
	})
	if err != nil {
		t.Fatalf("docs/nginx/infracast.conf: %v", err)
	}
	faStartNginx(t, bin, conf, front)

	// A client without Host (HTTP/1.0: a plain health check) is served too:
	// nginx then sends the upstream's name (outside check 16d: it sent no
	// Host, and the service refused the request).
	conn, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /health HTTP/1.0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.Contains(line, " 200 ") {
		t.Fatalf("GET /health over HTTP/1.0 without Host through nginx: %q %v, want 200", line, err)
	}

	// The sign-in page's request, from the page nginx served.
	req := mustRequest(t, "POST", base+"/api/v1/auth/token",
		strings.NewReader(`{"username":"`+AdminUser+`","password":"`+shippedAdminPassword+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	req.Header.Set("X-Infracast-Session", "cookie")
	if r := newBrowser(t).do(req); r.Status != http.StatusOK {
		t.Fatalf("the sign-in page's cookie session through nginx (page at %s): %d %s", base, r.Status, r.Raw)
	}

	// The service's own route under /api/v1/tenants/ — a tenant's access
	// history, the console's Access explorer — is the service's answer, not
	// the resource service's (outside check 16q: nginx sent it upstream, and
	// the page hung on the resource service's echo). Any letter case and a
	// trailing slash, as the service routes.
	for _, path := range []string{"/api/v1/tenants/prod/access?permission=nodes:write", "/API/v1/Tenants/prod/ACCESS/"} {
		req := mustRequest(t, "GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		r := newBrowser(t).do(req)
		if _, ok := r.JSON["principals"]; r.Status != http.StatusOK || !ok {
			t.Fatalf("GET %s through nginx: %d %s, want the service's access answer", path, r.Status, r.Raw)
		}
	}

	// A body over nginx's 16 KiB buffer (a SAML response) is buffered to a
	// file by its workers and reaches the service.
	big := mustRequest(t, "POST", base+"/api/v1/auth/token", strings.NewReader(`{"username":"`+strings.Repeat("a", 20<<10)+`"}`))
	big.Header.Set("Content-Type", "application/json")
	if r := newBrowser(t).do(big); r.Status != http.StatusBadRequest || r.ErrorCode() != "VALIDATION_ERROR" {
		t.Fatalf("a 20 KiB body through nginx: %d %s, want the service's 400", r.Status, r.Raw)
	}

	idp := startTestOIDC(t, "", alice())
	callback := base + "/api/v1/auth/sso/corp/callback"
	idp.AddClient("client-corp", "secret-corp", callback)
	mustStatus(t, in.Do("POST", "/api/v1/admin/sso/oidc", admin, map[string]any{
		"name": "corp", "client_id": "client-corp", "client_secret": "secret-corp", "issuer": idp.Issuer,
	}), http.StatusCreated, "configure the provider")
	br := newBrowser(t)
	br.stopAt = "/authorize"
	loc, err := url.Parse(location(t, br.get(base+"/api/v1/auth/sso/corp/login")))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Query().Get("redirect_uri"); got != callback {
		t.Fatalf("redirect_uri sent to the identity provider through nginx: %q, want %q", got, callback)
	}
	br = newBrowser(t)
	br.stopAt = "/app"
	r := br.get(base + "/api/v1/auth/sso/corp/login?return_to=/app")
	if got := r.Header.Get("Location"); r.Status != http.StatusFound || got != "/app" && got != base+"/app" {
		t.Fatalf("an SSO login through nginx: %d %q %s, want 302 to /app", r.Status, got, r.Raw)
	}
}
