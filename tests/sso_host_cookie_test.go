package tests

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Over https the SSO flow cookies are __Host- cookies, so that no other site
// of the domain (a sibling subdomain setting Domain=parent) and no plain-http
// page of the host can plant one: outside check 14a signed a victim in as
// the attacker with the attacker's own flow cookie and callback URL.

// publicHost is the https origin the tests' service believes it is served at.
const publicHost = "auth.example.com"

// frontTransport plays a TLS-terminating proxy: a request to
// https://auth.example.com goes to the service's plain-http listener. The
// browser's jar sees the https URL, so it keeps and sends Secure cookies as
// a real browser behind such a proxy does.
type frontTransport struct{ backend *url.URL }

func (f frontTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == publicHost {
		req = req.Clone(req.Context())
		req.URL.Scheme, req.URL.Host = f.backend.Scheme, f.backend.Host
		req.Host = publicHost
	}
	return http.DefaultTransport.RoundTrip(req)
}

// frontedBrowser is a browser that reaches the service at
// https://auth.example.com.
func frontedBrowser(t *testing.T, in *Instance) *browser {
	t.Helper()
	backend, err := url.Parse(in.URL)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	b.c.Transport = frontTransport{backend}
	return b
}

// hostFlowCookie checks the flow cookie a login start set: __Host-, Secure,
// HttpOnly, Path=/, no Domain, of sameSite; and returns it.
func hostFlowCookie(t *testing.T, r Response, sameSite http.SameSite) *http.Cookie {
	t.Helper()
	var flow *http.Cookie
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if strings.Contains(c.Name, "infracast_sso_") && c.MaxAge > 0 {
			if flow != nil {
				t.Fatalf("two flow cookies: %v", r.Header.Values("Set-Cookie"))
			}
			flow = c
		}
	}
	if flow == nil {
		t.Fatalf("no flow cookie: %v", r.Header.Values("Set-Cookie"))
	}
	if !strings.HasPrefix(flow.Name, "__Host-infracast_sso_") || flow.Path != "/" || flow.Domain != "" ||
		!flow.Secure || !flow.HttpOnly || flow.SameSite != sameSite {
		t.Fatalf("flow cookie %q: %+v", flow.Raw, flow)
	}
	return flow
}

// TestSSOFlowCookieHostPrefix: behind an https public URL the flow cookie is
// __Host-infracast_sso_<id> (Path=/, no Domain); an OIDC and a SAML login
// complete with it (SAML's cross-site POST: SameSite=None) and clear it; a
// callback carrying the attacker's flow cookie under the name without the
// prefix — the one a sibling subdomain or a plain-http page could plant in
// the victim's browser — is refused, and signs no one in.
func TestSSOFlowCookieHostPrefix(t *testing.T) {
	public := "https://" + publicHost
	in := Start(t, func(c *serviceConfig) { c.PublicURL = public })
	admin := in.AdminToken()
	idp := configureOIDC(t, in, admin, "oidc", "corp", alice(), nil)
	idp.AddClient("client-corp", "secret-corp", public+"/api/v1/auth/sso/corp/callback")
	loginURL := public + "/api/v1/auth/sso/corp/login"

	t.Run("oidc login", func(t *testing.T) {
		b := frontedBrowser(t, in)
		b.stopAt = "/authorize"
		start := b.get(loginURL)
		hostFlowCookie(t, start, http.SameSiteLaxMode)
		b.stopAt = ""
		r := b.get(location(t, start))
		mustStatus(t, r, http.StatusOK, "OIDC login with a __Host- flow cookie")
		if u, _ := r.JSON["user"].(map[string]any); u["email"] != "alice@corp.example" {
			t.Fatalf("login answer: %s", r.Raw)
		}
		if left := b.flowCookies(public + "/"); len(left) != 0 {
			t.Fatalf("flow cookie left after the callback: %v", left)
		}
		pu, err := url.Parse(public + "/")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range b.c.Jar.Cookies(pu) {
			if strings.Contains(c.Name, "infracast_sso_") {
				t.Fatalf("flow cookie left after the callback: %s", c.Name)
			}
		}
	})

	t.Run("planted flow cookie", func(t *testing.T) {
		attacker := frontedBrowser(t, in)
		attacker.stopAt = "/authorize"
		start := attacker.get(loginURL)
		flow := hostFlowCookie(t, start, http.SameSiteLaxMode)
		attacker.stopAt = "/sso/corp/callback"
		cb := location(t, attacker.get(location(t, start)))
		if !strings.HasPrefix(cb, public+"/api/v1/auth/sso/corp/callback?") || !strings.Contains(cb, "code=") {
			t.Fatalf("callback URL %s", cb)
		}
		// The victim's browser holds the attacker's flow cookie under the
		// name a sibling site can set (Domain=example.com; no __Host-).
		victim := frontedBrowser(t, in)
		planted := &http.Cookie{
			Name: strings.TrimPrefix(flow.Name, "__Host-"), Value: flow.Value,
			Path: "/api/v1/auth/sso/", Domain: "example.com", Secure: true, HttpOnly: true,
		}
		pu, err := url.Parse(public + "/")
		if err != nil {
			t.Fatal(err)
		}
		victim.c.Jar.SetCookies(pu, []*http.Cookie{planted})
		r := victim.get(cb)
		mustError(t, r, http.StatusUnauthorized, "UNAUTHORIZED", "callback with a planted flow cookie")
		if victim.cookie(public+"/", "infracast_token") != "" {
			t.Fatal("the victim's browser got a session")
		}
		// The attacker's own browser still completes its login: the
		// refusal was the cookie's name, not the flow.
		attacker.stopAt = ""
		mustStatus(t, attacker.get(cb), http.StatusOK, "the attacker's own callback")
	})

	t.Run("saml login", func(t *testing.T) {
		sin, _ := samlSetupWith(t, true, nil, func(c *serviceConfig) { c.PublicURL = public })
		b := frontedBrowser(t, sin)
		b.stopAt = "/sso"
		start := b.get(public + "/api/v1/auth/sso/saml/login")
		hostFlowCookie(t, start, http.SameSiteNoneMode)
		b.stopAt = ""
		page := b.get(location(t, start))
		mustStatus(t, page, http.StatusOK, "IdP login page")
		f := parseForm(t, page.Raw)
		f.values.Set("user", "alice")
		f.values.Set("password", "alice-idp-password")
		answer := b.postForm(f.action, f.values)
		mustStatus(t, answer, http.StatusOK, "IdP answer")
		resp := parseForm(t, answer.Raw)
		if resp.action != public+"/api/v1/auth/sso/saml/acs" {
			t.Fatalf("IdP posts to %s", resp.action)
		}
		r := b.postForm(resp.action, resp.values)
		mustStatus(t, r, http.StatusOK, "SAML login with a __Host- flow cookie")
		if u, _ := r.JSON["user"].(map[string]any); u["email"] != "alice@corp.example" {
			t.Fatalf("ACS answer: %s", r.Raw)
		}
	})
}
