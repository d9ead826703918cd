package tests

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Concurrent SSO logins in one browser (two tabs, one cookie jar): each flow
// has its own cookie, a callback takes only its own, and the number of flow
// cookies a browser holds is bounded.

// flowCookiePrefix names the per-flow cookies (infracast_sso_<id>).
const flowCookiePrefix = "infracast_sso_"

// maxFlowCookies is how many logins a browser may have in progress at once
// (the service's cap).
const maxFlowCookies = 5

// flowCookies returns the flow cookies the jar would send to u.
func (b *browser) flowCookies(u string) []*http.Cookie {
	pu, err := url.Parse(u)
	if err != nil {
		b.t.Fatal(err)
	}
	var out []*http.Cookie
	for _, c := range b.c.Jar.Cookies(pu) {
		if strings.HasPrefix(c.Name, flowCookiePrefix) {
			out = append(out, c)
		}
	}
	return out
}

// flowCookie returns the one flow cookie the jar would send to u.
func (b *browser) flowCookie(u string) *http.Cookie {
	b.t.Helper()
	cs := b.flowCookies(u)
	if len(cs) != 1 {
		b.t.Fatalf("want one flow cookie for %s, the jar has %d", u, len(cs))
	}
	return cs[0]
}

// withQuery returns u with the query parameters kv (name, value, …) set; an
// empty value removes the parameter.
func withQuery(t *testing.T, u string, kv ...string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := pu.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	pu.RawQuery = q.Encode()
	return pu.String()
}

// TestSSOTabsOIDC: two OIDC logins started in one browser, completed in
// either order, both succeed; failed callbacks (the user cancelling at the
// IdP, a bad code, a forged state) leave the other login alone; a browser
// holds at most maxFlowCookies flows, the oldest giving way.
func TestSSOTabsOIDC(t *testing.T) {
	s := newOIDCSetup(t, "oidc", "corp")
	for _, tc := range []struct {
		name      string
		lastFirst bool
	}{{"first started completes first", false}, {"last started completes first", true}} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t)
			cb1 := startFlow(t, b, s.loginURL())
			cb2 := startFlow(t, b, s.loginURL())
			first, second := cb1, cb2
			if tc.lastFirst {
				first, second = cb2, cb1
			}
			r := b.get(first)
			mustStatus(t, r, http.StatusOK, "the first callback")
			r2 := b.get(second)
			mustStatus(t, r2, http.StatusOK, "the second callback")
			if r.String("token") == "" || r2.String("token") == "" || r.String("token") == r2.String("token") {
				t.Fatalf("two logins, tokens %q and %q", r.String("token"), r2.String("token"))
			}
			if n := len(b.flowCookies(cb1)); n != 0 {
				t.Fatalf("both logins done, %d flow cookies left", n)
			}
			// Each flow is used once.
			mustError(t, b.get(first), http.StatusUnauthorized, "UNAUTHORIZED", "a callback again")
		})
	}

	t.Run("failed callbacks leave the other flow alone", func(t *testing.T) {
		b := newBrowser(t)
		cancelled := startFlow(t, b, s.loginURL())
		badCode := startFlow(t, b, s.loginURL())
		good := startFlow(t, b, s.loginURL())
		// Tab 1: the user cancels at the IdP.
		mustError(t, b.get(withQuery(t, cancelled, "code", "", "error", "access_denied")),
			http.StatusUnauthorized, "UNAUTHORIZED", "cancelled at the IdP")
		// Tab 2: a code the IdP does not know.
		mustError(t, b.get(withQuery(t, badCode, "code", "not-a-code")),
			http.StatusUnauthorized, "UNAUTHORIZED", "a bad code")
		// A forged state, and none: no flow of this browser matches.
		mustError(t, b.get(withQuery(t, good, "state", "forged-state")), http.StatusUnauthorized, "UNAUTHORIZED", "forged state")
		mustError(t, b.get(withQuery(t, good, "state", "")), http.StatusUnauthorized, "UNAUTHORIZED", "no state")
		// Tab 3 completes.
		mustStatus(t, b.get(good), http.StatusOK, "the remaining login")
		// The failed flows were used up: their real answers are refused now.
		mustError(t, b.get(cancelled), http.StatusUnauthorized, "UNAUTHORIZED", "the cancelled flow's callback")
		mustError(t, b.get(badCode), http.StatusUnauthorized, "UNAUTHORIZED", "the bad-code flow's callback")
	})

	t.Run("bounded", func(t *testing.T) {
		b := newBrowser(t)
		var cbs []string
		for i := 0; i < maxFlowCookies+2; i++ {
			cbs = append(cbs, startFlow(t, b, s.loginURL()))
			if n := len(b.flowCookies(cbs[0])); n != min(i+1, maxFlowCookies) {
				t.Fatalf("%d logins started, %d flow cookies (cap %d)", i+1, n, maxFlowCookies)
			}
			s.in.Clock.Advance(time.Second) // the next login starts later
		}
		// The two oldest gave way; the others all complete.
		for i, cb := range cbs {
			r := b.get(cb)
			if i < 2 {
				mustError(t, r, http.StatusUnauthorized, "UNAUTHORIZED", "an evicted flow")
			} else {
				mustStatus(t, r, http.StatusOK, "a kept flow")
			}
		}
		// Logins begun within one second (an app opening several at
		// once): still the oldest give way, not the lowest names.
		b2 := newBrowser(t)
		cbs = cbs[:0]
		for i := 0; i < maxFlowCookies+2; i++ {
			cbs = append(cbs, startFlow(t, b2, s.loginURL()))
		}
		for i, cb := range cbs {
			r := b2.get(cb)
			if i < 2 {
				mustError(t, r, http.StatusUnauthorized, "UNAUTHORIZED", fmt.Sprintf("flow %d of one second, evicted", i))
			} else {
				mustStatus(t, r, http.StatusOK, fmt.Sprintf("flow %d of one second, kept", i))
			}
		}
		// Large flows (a long return_to) are bounded by size too: the
		// browser's Cookie header stays small.
		long := "/app/" + strings.Repeat("x", 1800)
		var last string
		for i := 0; i < maxFlowCookies; i++ {
			b.stopAt = "/api/v1/auth/sso/corp/callback"
			last = location(t, b.get(s.loginURL()+"?return_to="+url.QueryEscape(long)))
			total := 0
			for _, c := range b.flowCookies(last) {
				total += len(c.Name) + len(c.Value)
			}
			if total > 6<<10 {
				t.Fatalf("%d large logins started, %d bytes of flow cookies", i+1, total)
			}
			s.in.Clock.Advance(time.Second)
		}
		if n := len(b.flowCookies(last)); n >= maxFlowCookies {
			t.Fatalf("%d large flow cookies kept: bounded by their count only", n)
		}
		b.stopAt = long
		r := b.get(last)
		if r.Status != http.StatusFound || r.Header.Get("Location") != long {
			t.Fatalf("the newest large login: %d %q", r.Status, r.Header.Get("Location"))
		}
	})
}

// samlAnswer runs a SAML login in b up to the IdP's answer: the IdP asks for
// the password the first time, and answers at once while its session lasts.
func samlAnswer(t *testing.T, in *Instance, b *browser) postedForm {
	t.Helper()
	page := b.get(in.URL + "/api/v1/auth/sso/saml/login")
	mustStatus(t, page, http.StatusOK, "IdP page")
	f := parseForm(t, page.Raw)
	if f.values.Get("SAMLResponse") == "" {
		f.values.Set("user", "alice")
		f.values.Set("password", "alice-idp-password")
		answer := b.postForm(f.action, f.values)
		mustStatus(t, answer, http.StatusOK, "IdP answer")
		f = parseForm(t, answer.Raw)
	}
	if f.values.Get("SAMLResponse") == "" || f.values.Get("RelayState") == "" || !strings.HasSuffix(f.action, "/api/v1/auth/sso/saml/acs") {
		t.Fatalf("IdP answer form: %+v", f)
	}
	return f
}

// TestSSOTabsSAML: two SAML logins started in one browser, answered in either
// order, both succeed; a refused answer leaves the other login alone.
func TestSSOTabsSAML(t *testing.T) {
	in, _ := samlSetup(t, false)
	acs := in.URL + "/api/v1/auth/sso/saml/acs"
	for _, tc := range []struct {
		name      string
		lastFirst bool
	}{{"first started completes first", false}, {"last started completes first", true}} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t)
			f1 := samlAnswer(t, in, b)
			f2 := samlAnswer(t, in, b)
			if f1.values.Get("RelayState") == f2.values.Get("RelayState") {
				t.Fatal("two logins with one RelayState")
			}
			first, second := f1, f2
			if tc.lastFirst {
				first, second = f2, f1
			}
			r := b.postForm(first.action, first.values)
			mustStatus(t, r, http.StatusOK, "the first answer")
			r2 := b.postForm(second.action, second.values)
			mustStatus(t, r2, http.StatusOK, "the second answer")
			if r.String("token") == "" || r2.String("token") == "" {
				t.Fatalf("ACS answers: %s / %s", r.Raw, r2.Raw)
			}
			if n := len(b.flowCookies(acs)); n != 0 {
				t.Fatalf("both logins done, %d flow cookies left", n)
			}
		})
	}

	t.Run("a refused answer leaves the other flow alone", func(t *testing.T) {
		b := newBrowser(t)
		bad := samlAnswer(t, in, b)
		forged := samlAnswer(t, in, b)
		good := samlAnswer(t, in, b)
		// An answer that fails verification, with its own RelayState.
		v := url.Values{"RelayState": {bad.values.Get("RelayState")},
			"SAMLResponse": {base64.StdEncoding.EncodeToString([]byte(`<Response xmlns="urn:oasis:names:tc:SAML:2.0:protocol"/>`))}}
		mustError(t, b.postForm(bad.action, v), http.StatusUnauthorized, "UNAUTHORIZED", "an unsigned answer")
		// A real answer under a forged RelayState, and one without.
		v = url.Values{"RelayState": {"forged"}, "SAMLResponse": {forged.values.Get("SAMLResponse")}}
		mustError(t, b.postForm(forged.action, v), http.StatusUnauthorized, "UNAUTHORIZED", "forged RelayState")
		v.Del("RelayState")
		mustError(t, b.postForm(forged.action, v), http.StatusUnauthorized, "UNAUTHORIZED", "no RelayState")
		// The third login completes, and so does the one whose answer
		// came under a forged RelayState: its own flow was not touched.
		mustStatus(t, b.postForm(good.action, good.values), http.StatusOK, "the remaining login")
		mustStatus(t, b.postForm(forged.action, forged.values), http.StatusOK, "the login whose answer was misdelivered")
		// The refused flow was used up.
		mustError(t, b.postForm(bad.action, bad.values), http.StatusUnauthorized, "UNAUTHORIZED", "the refused flow's real answer")
	})
}
