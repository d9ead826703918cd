package tests

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const azureTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"

// oidcSetup is a service with one OIDC provider backed by a test IdP.
type oidcSetup struct {
	in    *Instance
	idp   *testOIDC
	admin string
	name  string
}

func alice() testOIDCUser {
	return testOIDCUser{
		Subject: "00u-alice-1", Email: "alice@corp.example", EmailVerified: true, Username: "alice@corp.example",
		Groups: []string{"infra-admins", "everyone"},
	}
}

// configureOIDC starts an IdP and configures it in the service as kind
// ("okta", "azure" or "oidc" named name).
func configureOIDC(t *testing.T, in *Instance, admin, kind, name string, user testOIDCUser, extra map[string]any) *testOIDC {
	t.Helper()
	prefix := ""
	if kind == "azure" {
		prefix = "/" + azureTenant + "/v2.0"
	}
	idp := startTestOIDC(t, prefix, user)
	idp.AddClient("client-"+name, "secret-"+name, in.URL+"/api/v1/auth/sso/"+name+"/callback")
	body := map[string]any{"client_id": "client-" + name, "client_secret": "secret-" + name, "issuer": idp.Issuer}
	switch kind {
	case "okta":
		body["domain"] = "acme.okta.com"
	case "azure":
		body["tenant_id"] = azureTenant
	case "oidc":
		body["name"] = name
	}
	for k, v := range extra {
		body[k] = v
	}
	r := in.Do("POST", "/api/v1/admin/sso/"+kind, admin, body)
	if r.Status != http.StatusCreated && r.Status != http.StatusOK {
		t.Fatalf("configure %s: %d %s", kind, r.Status, r.Raw)
	}
	return idp
}

func newOIDCSetup(t *testing.T, kind, name string, opts ...Option) oidcSetup {
	in := Start(t, opts...)
	admin := in.AdminToken()
	idp := configureOIDC(t, in, admin, kind, name, alice(), nil)
	return oidcSetup{in: in, idp: idp, admin: admin, name: name}
}

func (s oidcSetup) loginURL() string { return s.in.URL + "/api/v1/auth/sso/" + s.name + "/login" }

// TestSSOOIDCLogin runs the whole authorization-code flow with PKCE against a
// real OpenID Provider acting as Okta, as Azure AD and as a generic provider.
func TestSSOOIDCLogin(t *testing.T) {
	for _, tc := range []struct{ kind, name string }{{"okta", "okta"}, {"azure", "azure"}, {"oidc", "corp"}} {
		t.Run(tc.kind, func(t *testing.T) {
			s := newOIDCSetup(t, tc.kind, tc.name)
			b := newBrowser(t)
			start := time.Now()
			r := b.get(s.loginURL())
			elapsed := time.Since(start)
			mustStatus(t, r, http.StatusOK, "sso login")
			t.Logf("%s SSO login (redirects, code exchange, ID token verification, events): %s", tc.kind, elapsed)
			if r.String("token") == "" || r.String("refresh_token") == "" || r.String("expires_at") == "" {
				t.Fatalf("want the /auth/token body, got %s", r.Raw)
			}
			user, _ := r.JSON["user"].(map[string]any)
			if user["email"] != "alice@corp.example" || user["username"] != "alice@corp.example" {
				t.Fatalf("provisioned user: %v", user)
			}
			me := s.in.Do("GET", "/api/v1/auth/me", r.String("token"), nil)
			mustStatus(t, me, http.StatusOK, "me")
			if me.String("id") != user["id"] {
				t.Fatalf("me %s, want %v", me.Raw, user["id"])
			}
			// A second login finds the linked identity: the same user.
			r2 := newBrowser(t).get(s.loginURL())
			mustStatus(t, r2, http.StatusOK, "second login")
			if u2, _ := r2.JSON["user"].(map[string]any); u2["id"] != user["id"] {
				t.Fatalf("second login gave user %v, want %v", u2["id"], user["id"])
			}
			// The login redirect carried state, nonce and PKCE S256.
			b2 := newBrowser(t)
			b2.stopAt = "/authorize"
			loc, err := url.Parse(location(t, b2.get(s.loginURL())))
			if err != nil {
				t.Fatal(err)
			}
			q := loc.Query()
			if q.Get("state") == "" || q.Get("nonce") == "" || q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256" {
				t.Fatalf("authorization request lacks state/nonce/PKCE: %s", loc)
			}
		})
	}
}

// startFlow runs a login up to the service's callback and returns the
// callback URL (code and state) without following it.
func startFlow(t *testing.T, b *browser, loginURL string) string {
	t.Helper()
	b.stopAt = strings.TrimSuffix(loginURL, "/login")[strings.Index(loginURL, "/api/"):] + "/callback"
	r := b.get(loginURL)
	cb := location(t, r)
	b.stopAt = ""
	if !strings.Contains(cb, "code=") {
		t.Fatalf("callback without code: %s", cb)
	}
	return cb
}

// TestSSOOIDCRejections: every tampered or misdirected answer is refused with
// the contract's errors.
func TestSSOOIDCRejections(t *testing.T) {
	s := newOIDCSetup(t, "okta", "okta")
	t.Run("wrong state", func(t *testing.T) {
		b := newBrowser(t)
		cb := startFlow(t, b, s.loginURL())
		u, _ := url.Parse(cb)
		q := u.Query()
		q.Set("state", "forged-state")
		u.RawQuery = q.Encode()
		mustError(t, b.get(u.String()), http.StatusUnauthorized, "UNAUTHORIZED", "wrong state")
	})
	t.Run("no flow cookie", func(t *testing.T) {
		cb := startFlow(t, newBrowser(t), s.loginURL())
		mustError(t, newBrowser(t).get(cb), http.StatusUnauthorized, "UNAUTHORIZED", "callback from another browser")
	})
	t.Run("replayed code", func(t *testing.T) {
		b := newBrowser(t)
		cb := startFlow(t, b, s.loginURL())
		flow := b.flowCookie(cb)
		mustStatus(t, b.get(cb), http.StatusOK, "first use")
		// The same code again, even with the original flow cookie.
		req := mustRequest(t, "GET", cb, nil)
		req.Header.Set("Cookie", flow.String())
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("replayed code: %d", r.StatusCode)
		}
	})
	t.Run("replayed flow, IdP accepting a code twice", func(t *testing.T) {
		s.idp.AcceptCodesTwice(true)
		defer s.idp.AcceptCodesTwice(false)
		b := newBrowser(t)
		cb := startFlow(t, b, s.loginURL())
		flow := b.flowCookie(cb)
		// The browser's retry and copies of the callback, together: one
		// signs in, on whatever replica; the others start no session.
		const copies = 4
		statuses := make(chan int, copies)
		var wg sync.WaitGroup
		for range copies {
			wg.Go(func() {
				req := mustRequest(t, "GET", cb, nil)
				req.Header.Set("Cookie", flow.String())
				r, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				r.Body.Close()
				statuses <- r.StatusCode
			})
		}
		wg.Wait()
		close(statuses)
		got := map[int]int{}
		for st := range statuses {
			got[st]++
		}
		if got[http.StatusOK] != 1 || got[http.StatusUnauthorized] != copies-1 {
			t.Fatalf("%d copies of one callback: %v, want one 200 and the rest 401", copies, got)
		}
	})
	t.Run("wrong nonce", func(t *testing.T) {
		s.idp.Misbehave("not-the-nonce", nil, 5*time.Minute)
		defer s.idp.Misbehave("", nil, 5*time.Minute)
		mustError(t, newBrowser(t).get(s.loginURL()), http.StatusUnauthorized, "UNAUTHORIZED", "wrong nonce")
	})
	t.Run("wrong audience", func(t *testing.T) {
		s.idp.Misbehave("", []string{"another-client"}, 5*time.Minute)
		defer s.idp.Misbehave("", nil, 5*time.Minute)
		mustError(t, newBrowser(t).get(s.loginURL()), http.StatusUnauthorized, "UNAUTHORIZED", "wrong audience")
	})
	t.Run("expired id token", func(t *testing.T) {
		s.idp.Misbehave("", nil, -10*time.Minute)
		defer s.idp.Misbehave("", nil, 5*time.Minute)
		mustError(t, newBrowser(t).get(s.loginURL()), http.StatusUnauthorized, "UNAUTHORIZED", "expired ID token")
	})
	t.Run("mix-up", func(t *testing.T) {
		// A second provider, with the same client registration.
		other := configureOIDC(t, s.in, s.admin, "oidc", "corp", alice(), nil)
		other.AddClient("client-okta", "secret-okta", s.in.URL+"/api/v1/auth/sso/okta/callback")
		// 1. An answer for the okta flow delivered to the other provider's callback.
		b := newBrowser(t)
		cb := startFlow(t, b, s.loginURL())
		mixed := strings.Replace(cb, "/sso/okta/callback", "/sso/corp/callback", 1)
		mustError(t, b.get(mixed), http.StatusUnauthorized, "UNAUTHORIZED", "answer at the other provider's callback")
		// 2. The okta flow's authorization request sent to the other IdP:
		// its code (and ID token) come back to okta's callback.
		b = newBrowser(t)
		b.stopAt = "/authorize"
		authz, _ := url.Parse(location(t, b.get(s.loginURL())))
		otherIssuer, _ := url.Parse(other.Issuer)
		authz.Host = otherIssuer.Host
		b.stopAt = "/api/v1/auth/sso/okta/callback"
		cb = location(t, b.get(authz.String()))
		b.stopAt = ""
		if !strings.Contains(cb, "/sso/okta/callback") {
			t.Fatalf("unexpected callback %s", cb)
		}
		mustError(t, b.get(cb), http.StatusUnauthorized, "UNAUTHORIZED", "code of another provider")
	})
	t.Run("unknown provider", func(t *testing.T) {
		mustError(t, newBrowser(t).get(s.in.URL+"/api/v1/auth/sso/nope/login"), http.StatusNotFound, "NOT_FOUND", "unknown provider")
	})
	t.Run("still works", func(t *testing.T) {
		mustStatus(t, newBrowser(t).get(s.loginURL()), http.StatusOK, "a clean login after the attempts")
	})
}

// TestSSOOIDCSessionLifecycle: an SSO login is a session like any other.
func TestSSOOIDCSessionLifecycle(t *testing.T) {
	s := newOIDCSetup(t, "oidc", "corp")
	r := newBrowser(t).get(s.loginURL())
	mustStatus(t, r, http.StatusOK, "login")
	tok, refresh := r.String("token"), r.String("refresh_token")
	userID, _ := r.JSON["user"].(map[string]any)["id"].(string)

	ref := s.in.Do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh})
	mustStatus(t, ref, http.StatusOK, "refresh")
	mustStatus(t, s.in.Do("GET", "/api/v1/auth/me", ref.String("token"), nil), http.StatusOK, "refreshed token")

	mustStatus(t, s.in.Do("POST", "/api/v1/auth/revoke", "", map[string]string{"token": refresh}), http.StatusOK, "revoke")
	mustError(t, s.in.Do("GET", "/api/v1/auth/me", tok, nil), http.StatusUnauthorized, "UNAUTHORIZED", "token of a revoked session")
	mustError(t, s.in.Do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh}), http.StatusUnauthorized, "UNAUTHORIZED", "revoked refresh token")

	r = newBrowser(t).get(s.loginURL())
	mustStatus(t, r, http.StatusOK, "login again")
	tok = r.String("token")
	mustStatus(t, s.in.Do("POST", "/api/v1/users/"+userID+"/deactivate", s.admin, nil), http.StatusOK, "deactivate")
	mustError(t, s.in.Do("GET", "/api/v1/auth/me", tok, nil), http.StatusUnauthorized, "UNAUTHORIZED", "token of a deactivated user")
	// A refused login, said as one: the IdP vouched for the person.
	r = newBrowser(t).get(s.loginURL())
	mustError(t, r, http.StatusUnauthorized, "UNAUTHORIZED", "SSO login of a deactivated user")
	if msg := errorMessage(r); msg != "Login refused: the account is deactivated" {
		t.Fatalf("SSO login of a deactivated user: message %q", msg)
	}
}

// TestSSOOIDCLinkAndRoles: link by verified e-mail (when configured) and
// group claims mapped to tenant roles.
func TestSSOOIDCLinkAndRoles(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	existing := in.CreateUser(admin, "alice", "alice-password-1", nil)
	// The user's e-mail is alice@example.com (CreateUser); the IdP asserts it.
	u := alice()
	u.Email = "alice@example.com"
	configureOIDC(t, in, admin, "oidc", "corp", u, map[string]any{
		"link_by_email": true,
		"role_mappings": []map[string]string{
			{"group": "infra-admins", "tenant": "prod", "role": "admin"},
			{"group": "everyone", "tenant": "staging", "role": "viewer"},
			{"group": "nobody", "tenant": "dev", "role": "editor"},
		},
	})
	r := newBrowser(t).get(in.URL + "/api/v1/auth/sso/corp/login")
	mustStatus(t, r, http.StatusOK, "login")
	user, _ := r.JSON["user"].(map[string]any)
	if user["id"] != existing {
		t.Fatalf("linked to %v, want the existing user %s", user["id"], existing)
	}
	me := in.Do("GET", "/api/v1/auth/me", r.String("token"), nil)
	got := map[string]string{}
	for _, tr := range me.JSON["tenants"].([]any) {
		m := tr.(map[string]any)
		got[m["id"].(string)] = m["role"].(string)
	}
	if got["prod"] != "admin" || got["staging"] != "viewer" || got["dev"] != "" {
		t.Fatalf("tenant roles from groups: %v", got)
	}

	// Without verified e-mail, or without link_by_email, a new user is
	// provisioned: the e-mail alone never picks an account.
	u2 := alice()
	u2.Subject, u2.Email, u2.EmailVerified = "00u-mallory", "alice@example.com", false
	u2.Username = "alice@example.com" // preferred_username: an address too, vouched for by no one
	configureOIDC(t, in, admin, "oidc", "other", u2, map[string]any{"link_by_email": true})
	r = newBrowser(t).get(in.URL + "/api/v1/auth/sso/other/login")
	mustStatus(t, r, http.StatusOK, "login with an unverified e-mail")
	squatter := r.JSON["user"].(map[string]any)
	if squatter["id"] == existing {
		t.Fatal("an unverified e-mail was linked to an existing account")
	}
	// Nor is the unverified address recorded, or taken as the username —
	// not from email, not from preferred_username: the new user would hold
	// another person's address, and with two active users holding it the
	// real owner's verified login could not link; as a username it would
	// keep that name from its owner.
	if squatter["email"] != "" || !strings.HasPrefix(squatter["username"].(string), "other-") {
		t.Fatalf("the unverified address was recorded or taken as the username: %v", squatter)
	}
	u3 := alice()
	u3.Subject, u3.Email = "00u-alice-at-another-idp", "alice@example.com"
	configureOIDC(t, in, admin, "oidc", "third", u3, map[string]any{"link_by_email": true})
	r = newBrowser(t).get(in.URL + "/api/v1/auth/sso/third/login")
	mustStatus(t, r, http.StatusOK, "verified login after the unverified one")
	if id := r.JSON["user"].(map[string]any)["id"]; id != existing {
		t.Fatalf("verified login linked to %v, want the existing user %s", id, existing)
	}

	// Azure AD vouches for no address: link_by_email is refused for it.
	bad := in.Do("POST", "/api/v1/admin/sso/azure", admin, map[string]any{
		"tenant_id": azureTenant, "client_id": "c", "client_secret": "s", "link_by_email": true})
	mustError(t, bad, http.StatusBadRequest, "VALIDATION_ERROR", "azure with link_by_email")
	if !strings.Contains(string(bad.Raw), "link_by_email") {
		t.Fatalf("azure with link_by_email: %s", bad.Raw)
	}
}

// TestSSOReturnToOpenRedirect: return_to is a same-site path or an allowed
// origin; anything else is refused, and never ends up in a Location.
func TestSSOReturnToOpenRedirect(t *testing.T) {
	s := newOIDCSetup(t, "okta", "okta", WithSSOReturnTo("https://app.example.com"))
	for _, evil := range []string{
		"https://evil", "//evil", `/\evil`, "http://127.0.0.1@evil", "https://evil.example.com/app",
		"https://app.example.com@evil", "javascript:alert(1)", "/\t/evil", "http://app.example.com", "evil",
	} {
		b := newBrowser(t)
		b.stopAt = "/authorize"
		r := b.get(s.loginURL() + "?return_to=" + url.QueryEscape(evil))
		mustError(t, r, http.StatusBadRequest, "VALIDATION_ERROR", "return_to "+evil)
		if loc := r.Header.Get("Location"); loc != "" {
			t.Fatalf("return_to %q: Location %q", evil, loc)
		}
	}
	// An allowed absolute origin and a relative path.
	for _, good := range []string{"https://app.example.com/after?x=1", "/app/home"} {
		b := newBrowser(t)
		b.stopAt = "/app/home"
		if strings.HasPrefix(good, "https://") {
			b.stopAt = "/after"
		}
		b.get(s.loginURL() + "?return_to=" + url.QueryEscape(good))
	}
	// The browser flow: cookie session, then CSRF.
	b := newBrowser(t)
	b.stopAt = "/app/home"
	r := b.get(s.loginURL() + "?return_to=" + url.QueryEscape("/app/home"))
	if r.Status != http.StatusFound || r.Header.Get("Location") != "/app/home" {
		t.Fatalf("want 302 to /app/home, got %d %q %s", r.Status, r.Header.Get("Location"), r.Raw)
	}
	var tokenCookie *http.Cookie
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "infracast_token" {
			tokenCookie = c
		}
	}
	if tokenCookie == nil || !tokenCookie.HttpOnly || tokenCookie.SameSite != http.SameSiteLaxMode {
		t.Fatalf("token cookie: %+v", tokenCookie)
	}
	if strings.Contains(string(r.Raw), tokenCookie.Value) {
		t.Fatal("token in the redirect body")
	}
	mustStatus(t, b.get(s.in.URL+"/api/v1/auth/me"), http.StatusOK, "cookie-authenticated GET")
	// A state-changing request by cookie without the CSRF token: 403.
	post := mustRequest(t, "POST", s.in.URL+"/api/v1/auth/logout", nil)
	mustError(t, b.do(post), http.StatusForbidden, "FORBIDDEN", "POST without CSRF token")
	post = mustRequest(t, "POST", s.in.URL+"/api/v1/auth/logout", nil)
	post.Header.Set("X-CSRF-Token", "wrong-token-wrong-token-wrong")
	mustError(t, b.do(post), http.StatusForbidden, "FORBIDDEN", "POST with a wrong CSRF token")
	post = mustRequest(t, "POST", s.in.URL+"/api/v1/auth/logout", nil)
	post.Header.Set("X-CSRF-Token", b.cookie(s.in.URL, "infracast_csrf"))
	post.Header.Set("Sec-Fetch-Site", "cross-site")
	mustError(t, b.do(post), http.StatusForbidden, "FORBIDDEN", "cross-site POST with the token")
	// Two cookies of one name (one set by a page on another port of this
	// host, with a longer path, which the browser sends first: "cookie
	// tossing"): refused, and that cookie cleared at every path that
	// path-matches the request's — in few enough headers for a proxy's
	// buffer (the shipped nginx configuration's is 16 KiB, nginx's default 4).
	tok, csrf := b.cookie(s.in.URL, "infracast_token"), b.cookie(s.in.URL, "infracast_csrf")
	for name, cookie := range map[string]string{
		"infracast_token": "infracast_token=someone-elses; infracast_token=" + tok + "; infracast_csrf=" + csrf,
		"infracast_csrf":  "infracast_token=" + tok + "; infracast_csrf=stale-csrf-token-stale; infracast_csrf=" + csrf,
	} {
		req := mustRequest(t, "GET", s.in.URL+"/api/v1/users/user-01M96HPJS51B4WNJ1YS3R6MEQ4/sessions", nil)
		req.Header.Set("Cookie", cookie)
		req.Header.Set("X-CSRF-Token", csrf)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		cleared, size := map[string]bool{}, 0
		for _, sc := range res.Header.Values("Set-Cookie") {
			size += len("Set-Cookie: \r\n") + len(sc)
			if strings.Contains(sc, "Max-Age=0") {
				cleared[strings.SplitN(sc, "=", 2)[0]+" "+strings.TrimPrefix(strings.Split(sc, "; ")[1], "Path=")] = true
			}
		}
		for _, path := range []string{"/", "/api", "/api/", "/api/v1", "/api/v1/", "/api/v1/users/", "/api/v1/users/user-01M96HPJS51B4WNJ1YS3R6MEQ4/sessions"} {
			if !cleared[name+" "+path] {
				t.Fatalf("tossed %s (%q): %d, not cleared at %s: %v", name, cookie, res.StatusCode, path, cleared)
			}
		}
		if res.StatusCode != http.StatusUnauthorized || size > 2048 {
			t.Fatalf("tossed %s: %d, %d bytes of Set-Cookie", name, res.StatusCode, size)
		}
	}
	post = mustRequest(t, "POST", s.in.URL+"/api/v1/auth/logout", nil)
	post.Header.Set("X-CSRF-Token", b.cookie(s.in.URL, "infracast_csrf"))
	mustStatus(t, b.do(post), http.StatusNoContent, "POST with the CSRF token")
	// The logout clears the session's cookies.
	if v := b.cookie(s.in.URL, "infracast_token") + b.cookie(s.in.URL, "infracast_csrf"); v != "" {
		t.Fatalf("cookies left after logout: %q", v)
	}
	// The logout retried by a browser that lost the first answer (and so
	// still has the cookies): the same 204, and still not without the CSRF
	// token.
	retry := func(withCSRF bool) Response {
		req := mustRequest(t, "POST", s.in.URL+"/api/v1/auth/logout", nil)
		req.Header.Set("Cookie", "infracast_token="+tok+"; infracast_csrf="+csrf)
		if withCSRF {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		return newBrowser(t).do(req)
	}
	mustStatus(t, retry(true), http.StatusNoContent, "logout retried with the CSRF token")
	mustError(t, retry(false), http.StatusForbidden, "FORBIDDEN", "logout retried without CSRF token")
	mustError(t, b.get(s.in.URL+"/api/v1/auth/me"), http.StatusUnauthorized, "UNAUTHORIZED", "after logout")
}

// TestSSOSecureCookies: behind an https public URL the cookies are Secure.
func TestSSOSecureCookies(t *testing.T) {
	in := Start(t, func(c *serviceConfig) { c.PublicURL = "https://auth.example.com" })
	admin := in.AdminToken()
	configureOIDC(t, in, admin, "oidc", "corp", alice(), nil)
	b := newBrowser(t)
	b.stopAt = "/authorize"
	r := b.get(in.URL + "/api/v1/auth/sso/corp/login")
	loc, _ := url.Parse(location(t, r))
	if got := loc.Query().Get("redirect_uri"); got != "https://auth.example.com/api/v1/auth/sso/corp/callback" {
		t.Fatalf("redirect_uri %q", got)
	}
	found := false
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if strings.HasPrefix(c.Name, "__Host-infracast_sso_") {
			found = true
			if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
				t.Fatalf("flow cookie %+v", c)
			}
		}
	}
	if !found {
		t.Fatal("no flow cookie")
	}
	// A tossed token cookie is expired for the public host's parent
	// domains too (a sibling site sets Domain=example.com), as Secure, in
	// few enough headers for a proxy's 4 KiB buffer: on the console's paths
	// everywhere; on a long path the likeliest places first, host-only
	// at every path.
	for _, c := range []struct {
		path      string
		everyHost bool
	}{
		{"/api/v1/auth/me", true},
		{"/api/v1/users/user-01M96HPJS51B4WNJ1YS3R6MEQ4/sessions", true},
		{"/api/v1/auth/verify/api/v1/tenants/prod/findings/finding-01M96HPJSH6EQTPGJRR2DP3JTH/comments", false},
	} {
		req := mustRequest(t, "GET", in.URL+c.path, nil)
		req.Header.Set("Cookie", "infracast_token=a; infracast_token=b")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		size, cleared := 0, map[string]bool{}
		for _, sc := range res.Header.Values("Set-Cookie") {
			size += len("Set-Cookie: \r\n") + len(sc)
			if !strings.HasSuffix(sc, "; Max-Age=0; Secure") {
				t.Fatalf("clearing cookie %q", sc)
			}
			path, domain := "", ""
			for _, attr := range strings.Split(sc, "; ") {
				if v, ok := strings.CutPrefix(attr, "Path="); ok {
					path = v
				} else if v, ok := strings.CutPrefix(attr, "Domain="); ok {
					domain = v
				}
			}
			cleared[domain+" "+path] = true
		}
		want := []string{" /", " " + c.path, "example.com /", "example.com /api/"}
		if c.everyHost {
			want = append(want, "auth.example.com /", "auth.example.com "+c.path, "example.com "+c.path)
		}
		for _, w := range want {
			if !cleared[w] {
				t.Fatalf("tossed cookie on %s: not cleared at %q: %v", c.path, w, cleared)
			}
		}
		if res.StatusCode != http.StatusUnauthorized || size > 3000 {
			t.Fatalf("tossed cookie on %s: %d, %d bytes of Set-Cookie", c.path, res.StatusCode, size)
		}
	}
}

// TestSSOAzureGroupsOverage: a user in more groups than Azure AD puts in a
// token gets a source for them (_claim_names) instead of the groups: the
// login works with no role mapped from groups, and the log says why.
func TestSSOAzureGroupsOverage(t *testing.T) {
	var logs LogBuffer
	in := StartLogged(t, &logs)
	admin := in.AdminToken()
	u := alice()
	u.Groups, u.GroupsOverage, u.TenantID = nil, true, azureTenant
	configureOIDC(t, in, admin, "azure", "azure", u, map[string]any{
		"role_mappings": []map[string]string{{"group": "infra-admins", "tenant": "prod", "role": "admin"}},
	})
	r := newBrowser(t).get(in.URL + "/api/v1/auth/sso/azure/login")
	mustStatus(t, r, http.StatusOK, "login with a groups overage")
	if tenants, _ := r.JSON["user"].(map[string]any)["tenants"].([]any); len(tenants) != 0 {
		t.Fatalf("roles mapped without groups: %v", tenants)
	}
	if !strings.Contains(logs.String(), "groups overage") {
		t.Fatalf("no log line names the overage:\n%s", logs.String())
	}
}
