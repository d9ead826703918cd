package tests

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// mfaFragment reads the login page's MFA step out of a redirect's
// Location, /login[?return_to=…]#mfa=<token>: the path and query before
// the fragment, and the MFA token.
func mfaFragment(t *testing.T, r Response) (string, string) {
	t.Helper()
	if r.Status != http.StatusFound {
		t.Fatalf("want a redirect to the login page's MFA step, got %d %s", r.Status, r.Raw)
	}
	loc, frag, _ := strings.Cut(r.Header.Get("Location"), "#")
	f, err := url.ParseQuery(frag)
	if err != nil || f.Get("mfa") == "" {
		t.Fatalf("Location %q: no #mfa= (%v)", r.Header.Get("Location"), err)
	}
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "infracast_token" && c.Value != "" {
			t.Fatal("a session cookie before the second factor")
		}
	}
	return loc, f.Get("mfa")
}

// TestMFASSOTrustedProvider: through a real OpenID Provider, a user with a
// second factor here is asked for it after the provider's answer, unless
// the provider is configured with trust_idp_mfa and its ID token's amr
// says the user passed a second factor there (["mfa","pwd"], ["otp"]). A
// password alone (["pwd"]) or no amr is asked for it from a trusted
// provider too, and ["mfa"] from one that is not trusted. A browser login
// (return_to) lands on the login page's MFA step. The setting is in the
// provider's configuration (and its event) only when true, and SAML
// providers refuse it.
func TestMFASSOTrustedProvider(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	user := alice()
	idp := configureOIDC(t, in, admin, "oidc", "corp", user, nil)
	loginURL := in.URL + "/api/v1/auth/sso/corp/login"
	// sso logs in through the IdP, which says it authenticated alice with
	// amr.
	sso := func(amr ...string) Response {
		t.Helper()
		u := user
		u.AMR = amr
		idp.SetUser(u)
		return newBrowser(t).get(loginURL)
	}
	asked := func(what string, r Response) string {
		t.Helper()
		if r.Status != http.StatusForbidden || r.ErrorCode() != "MFA_REQUIRED" || r.String("mfa_token") == "" || r.JSON["token"] != nil {
			t.Fatalf("%s: %d %s, want 403 MFA_REQUIRED with an mfa_token and no token", what, r.Status, r.Raw)
		}
		return r.String("mfa_token")
	}
	configure := func(trust bool) Response {
		t.Helper()
		body := map[string]any{"name": "corp", "issuer": idp.Issuer, "client_id": "client-corp", "client_secret": "secret-corp"}
		if trust {
			body["trust_idp_mfa"] = true
		}
		r := in.Do("POST", "/api/v1/admin/sso/oidc", admin, body)
		expectStatus(t, "configure corp", r, http.StatusOK)
		return r
	}

	// The first login provisions alice, who has no factor yet: the token
	// response, whatever the IdP did. She enrols TOTP.
	first := sso("pwd")
	expectTokens(t, "first SSO login", first, "alice@corp.example")
	secret, _ := enrollTOTP(t, in, first.String("token"))

	// Not trusted (the default): asked, whatever amr says.
	if got := in.Do("GET", "/api/v1/admin/sso/corp", admin, nil); got.JSON["trust_idp_mfa"] != nil {
		t.Fatalf("trust_idp_mfa shown by default: %s", got.Raw)
	}
	asked("amr pwd, not trusted", sso("pwd"))
	tok := asked("amr mfa, not trusted", sso("mfa", "pwd"))
	in.Clock.Advance(time.Minute)
	expectTokens(t, "the code after SSO", secondStep(in, tok, totpAt(t, secret, in.Clock.Now())), "alice@corp.example")

	// Trusted: the IdP's second factor counts, a password alone does not.
	if r := configure(true); r.JSON["trust_idp_mfa"] != true {
		t.Fatalf("configured with trust_idp_mfa: %s", r.Raw)
	}
	if got := in.Do("GET", "/api/v1/admin/sso/corp", admin, nil); got.JSON["trust_idp_mfa"] != true {
		t.Fatalf("GET after trust_idp_mfa: %s", got.Raw)
	}
	expectTokens(t, "amr mfa, trusted", sso("mfa", "pwd"), "alice@corp.example")
	expectTokens(t, "amr otp, trusted", sso("otp"), "alice@corp.example")
	asked("amr pwd, trusted", sso("pwd"))
	asked("amr empty, trusted", sso([]string{}...))
	asked("amr swk without a PIN, trusted", sso("swk"))

	// A browser (return_to): to the login page's MFA step, no session yet;
	// the code there finishes the login.
	u := user
	u.AMR = []string{"pwd"}
	idp.SetUser(u)
	b := newBrowser(t)
	b.stopAt = "/login"
	page, tok := mfaFragment(t, b.get(loginURL+"?return_to="+url.QueryEscape("/app/home")))
	if page != "/login?return_to=%2Fapp%2Fhome" {
		t.Fatalf("the MFA step at %q, want /login?return_to=%%2Fapp%%2Fhome", page)
	}
	mustError(t, b.get(in.URL+"/api/v1/auth/me"), http.StatusUnauthorized, "UNAUTHORIZED", "a session before the second factor")
	in.Clock.Advance(time.Minute)
	expectTokens(t, "the code from the login page", secondStep(in, tok, totpAt(t, secret, in.Clock.Now())), "alice@corp.example")

	// Trust removed: asked again; the setting is in the event only when true.
	if r := configure(false); r.JSON["trust_idp_mfa"] != nil {
		t.Fatalf("configured without trust_idp_mfa: %s", r.Raw)
	}
	asked("amr mfa, trust removed", sso("mfa"))
	withTrust := 0
	for _, e := range storedEvents(t, in.Svc) {
		if e.Type == "sso.provider_configured" && strings.Contains(string(e.Data), `"trust_idp_mfa"`) {
			withTrust++
			if !strings.Contains(string(e.Data), `"trust_idp_mfa":true`) {
				t.Fatalf("sso.provider_configured with trust_idp_mfa false: %s", e.Data)
			}
		}
	}
	if withTrust != 1 {
		t.Fatalf("%d sso.provider_configured events name trust_idp_mfa, want 1 (the one that set it)", withTrust)
	}

	// SAML: no amr/acr is read, so the setting is refused.
	_, cert := selfSigned(t, "saml idp", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	expectError(t, "trust_idp_mfa on SAML", in.Do("POST", "/api/v1/admin/sso/saml", admin, map[string]any{
		"entity_id": "https://idp.example/metadata", "sso_url": "https://idp.example/sso", "certificate": certPEM(cert),
		"trust_idp_mfa": true,
	}), http.StatusBadRequest, "VALIDATION_ERROR", "trust_idp_mfa")
}

// samlAnswerTo runs a SAML login (with return_to when not empty) up to the
// IdP's answer, the form the browser posts to the ACS.
func samlAnswerTo(t *testing.T, in *Instance, b *browser, returnTo string) postedForm {
	t.Helper()
	start := in.URL + "/api/v1/auth/sso/saml/login"
	if returnTo != "" {
		start += "?return_to=" + url.QueryEscape(returnTo)
	}
	login := b.get(start)
	mustStatus(t, login, http.StatusOK, "IdP login page")
	f := parseForm(t, login.Raw)
	f.values.Set("user", "alice")
	f.values.Set("password", "alice-idp-password")
	answer := b.postForm(f.action, f.values)
	mustStatus(t, answer, http.StatusOK, "IdP answer")
	return parseForm(t, answer.Raw)
}

// TestMFASSOSAML: a SAML login of a user with a second factor goes to the
// login page's MFA step, with or without return_to — the browser posted
// the IdP's form to the ACS, so a JSON 403 would strand it — and without a
// session; the code there finishes the login. A user whom a policy
// requires to have a factor is sent to the enrolment step.
func TestMFASSOSAML(t *testing.T) {
	in, _ := samlSetup(t, true)
	admin := in.AdminToken()

	// The first login: no factor, the token response (no return_to).
	b := newBrowser(t)
	f := samlAnswerTo(t, in, b, "")
	first := b.postForm(f.action, f.values)
	expectStatus(t, "first SAML login", first, http.StatusOK)
	aliceName, _ := first.JSON["user"].(map[string]any)["username"].(string)
	expectTokens(t, "first SAML login", first, aliceName)

	// A policy that alice's tenant (prod, by the role mapping) requires MFA:
	// the enrolment step.
	expectStatus(t, "prod requires MFA", in.Do("PUT", "/api/v1/admin/mfa/policy/prod", admin, map[string]bool{"required": true}), http.StatusOK)
	b = newBrowser(t)
	f = samlAnswerTo(t, in, b, "")
	b.stopAt = "/login"
	r := b.postForm(f.action, f.values)
	loc, frag, _ := strings.Cut(r.Header.Get("Location"), "#")
	enroll, _ := url.ParseQuery(frag)
	if r.Status != http.StatusFound || loc != "/login" || enroll.Get("enroll") == "" {
		t.Fatalf("SAML login under a policy: %d Location %q, want 302 to /login#enroll=…", r.Status, r.Header.Get("Location"))
	}
	secret, _ := enrollTOTP(t, in, enroll.Get("enroll"))

	// With the factor: the MFA step, without and with return_to.
	for _, c := range []struct{ returnTo, page string }{{"", "/login"}, {"/app/home", "/login?return_to=%2Fapp%2Fhome"}} {
		b := newBrowser(t)
		f := samlAnswerTo(t, in, b, c.returnTo)
		b.stopAt = "/login"
		page, tok := mfaFragment(t, b.postForm(f.action, f.values))
		if page != c.page {
			t.Fatalf("return_to %q: the MFA step at %q, want %q", c.returnTo, page, c.page)
		}
		mustError(t, b.get(in.URL+"/api/v1/auth/me"), http.StatusUnauthorized, "UNAUTHORIZED", "a session before the second factor")
		in.Clock.Advance(time.Minute)
		expectTokens(t, "the code from the login page", secondStep(in, tok, totpAt(t, secret, in.Clock.Now())), aliceName)
	}
}
