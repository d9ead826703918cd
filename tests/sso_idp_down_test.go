package tests

import (
	"net/http"
	"strings"
	"testing"
)

// TestSSOOIDCIdPDownAtCallback: an IdP that cannot be asked at the callback
// — its token endpoint or its keys (JWKS) unreachable or answering 5xx — is
// 502 BAD_GATEWAY, as documented, not a failed login (outside check 14a got
// 401 "Single sign-on failed"); the token endpoint refusing the code (an
// OAuth error, 400) stays 401. Neither the answer nor the log holds the
// client secret or the code.
func TestSSOOIDCIdPDownAtCallback(t *testing.T) {
	var logs LogBuffer
	in := StartLogged(t, &logs)
	admin := in.AdminToken()
	idp := configureOIDC(t, in, admin, "oidc", "corp", alice(), nil)
	loginURL := in.URL + "/api/v1/auth/sso/corp/login"
	var codes []string
	callback := func() Response {
		t.Helper()
		b := newBrowser(t)
		cb := startFlow(t, b, loginURL)
		codes = append(codes, cb[strings.Index(cb, "code=")+5:][:8])
		return b.get(cb)
	}
	down := func(what string) {
		t.Helper()
		r := callback()
		mustError(t, r, http.StatusBadGateway, "BAD_GATEWAY", what)
		if strings.Contains(string(r.Raw), "secret-corp") {
			t.Fatalf("%s: the answer names the client secret: %s", what, r.Raw)
		}
	}
	// The keys first: go-oidc fetches them at the first verification.
	idp.Fail("/keys", http.StatusServiceUnavailable)
	down("JWKS answering 503")
	idp.Fail("/keys", 0)
	down("JWKS dropping the connection")
	idp.Fail("/keys", -1)

	idp.Fail("/oauth/token", http.StatusServiceUnavailable)
	down("token endpoint answering 503")
	idp.Fail("/oauth/token", 0)
	down("token endpoint dropping the connection")
	// A 4xx that is no OAuth error — a proxy's 404 page, a 429 — is the
	// IdP failing, not a refused login (re-check 14r2).
	idp.Fail("/oauth/token", http.StatusNotFound)
	down("token endpoint answering a 404 page")
	idp.Fail("/oauth/token", http.StatusTooManyRequests)
	down("token endpoint answering 429")
	idp.Fail("/oauth/token", -1)

	// A code the IdP refuses (invalid_grant) is a failed login.
	b := newBrowser(t)
	cb := startFlow(t, b, loginURL)
	mustError(t, b.get(strings.Replace(cb, "code=", "code=x", 1)), http.StatusUnauthorized, "UNAUTHORIZED", "a refused code")

	mustStatus(t, callback(), http.StatusOK, "login once the IdP answers")
	for _, secret := range append(codes, "secret-corp") {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("the log holds %q:\n%s", secret, logs.String())
		}
	}
}
