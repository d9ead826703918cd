package tests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// Identity providers in their real shapes: issuers with and without a
// trailing slash, with a path or none, Azure AD's tenant forms, claims that
// only the userinfo endpoint gives. Every IdP is a real OpenID Provider
// (github.com/zitadel/oidc/v3 op) on loopback; every login is the whole
// browser-less flow: start, the OP's authorize and login step, callback,
// tokens.

// opFor starts a test OP shaped by opts for the provider name, with the
// service's callback registered.
func opFor(t *testing.T, in *Instance, name string, opts testOPOptions, user testOIDCUser) *testOIDC {
	t.Helper()
	idp := startTestOP(t, opts, user)
	idp.AddClient("client-"+name, "secret-"+name, in.URL+"/api/v1/auth/sso/"+name+"/callback")
	return idp
}

// origin is the OP's scheme and host (http://127.0.0.1:port).
func (p *testOIDC) origin() string {
	u, _ := url.Parse(p.Issuer)
	return u.Scheme + "://" + u.Host
}

// postProvider configures idp in the service as kind (okta, azure, or a
// generic provider named name), with its issuer exactly as the OP has it
// unless extra says otherwise (a nil value removes a field).
func postProvider(in *Instance, admin, kind, name string, idp *testOIDC, extra map[string]any) Response {
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
		if v == nil {
			delete(body, k)
		} else {
			body[k] = v
		}
	}
	return in.Do("POST", "/api/v1/admin/sso/"+kind, admin, body)
}

func errorMessage(r Response) string {
	e, _ := r.JSON["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

func ssoUserOf(t *testing.T, r Response) map[string]any {
	t.Helper()
	u, _ := r.JSON["user"].(map[string]any)
	if u == nil {
		t.Fatalf("no user in %s", r.Raw)
	}
	return u
}

// TestSSOIssuerForms: a full login through each issuer form that real IdPs
// use, configured exactly as the IdP announces it.
func TestSSOIssuerForms(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	for i, tc := range []struct {
		name, kind, provider string
		opts                 testOPOptions
		extra                func(idp *testOIDC) map[string]any
	}{
		// Auth0 (https://<tenant>.auth0.com/) and the zitadel/oidc example OP.
		{name: "trailing slash", kind: "oidc", provider: "auth0", opts: testOPOptions{TrailingSlash: true}},
		// Dex, Keycloak (/realms/x): an issuer with a path.
		{name: "path", kind: "oidc", provider: "dex", opts: testOPOptions{Path: "/dex"}},
		{name: "path with trailing slash", kind: "oidc", provider: "dex-slash", opts: testOPOptions{Path: "/dex", TrailingSlash: true}},
		// Okta's org authorization server, Google: the bare origin.
		{name: "root", kind: "oidc", provider: "root", opts: testOPOptions{}},
		// An Okta custom authorization server.
		{name: "okta authorization server", kind: "okta", provider: "okta", opts: testOPOptions{Path: "/oauth2/default"}},
		// Azure AD, one directory: …/<directory ID>/v2.0.
		{name: "azure tenant", kind: "azure", provider: "azure", opts: testOPOptions{Path: "/" + azureTenant + "/v2.0"}},
		// Azure AD, multi-tenant: …/organizations/v2.0 announces
		// …/{tenantid}/v2.0; tokens come from …/<directory ID>/v2.0.
		{name: "azure multi-tenant {tenantid}", kind: "azure", provider: "azure",
			opts: testOPOptions{Path: "/" + azureTenant + "/v2.0", Aliases: map[string]string{"/organizations/v2.0": "{base}/{tenantid}/v2.0"}},
			extra: func(idp *testOIDC) map[string]any {
				return map[string]any{"tenant_id": "organizations", "allowed_tenants": []string{azureTenant}, "issuer": idp.origin() + "/organizations/v2.0"}
			}},
		// E-mail, username and groups only at the userinfo endpoint.
		{name: "userinfo only", kind: "oidc", provider: "lean", opts: testOPOptions{UserinfoOnly: true},
			extra: func(*testOIDC) map[string]any {
				return map[string]any{"role_mappings": []map[string]string{{"group": "infra-admins", "tenant": "prod", "role": "editor"}}}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := testOIDCUser{
				Subject: "sub-" + tc.provider + "-" + string(rune('a'+i)), Email: tc.provider + string(rune('a'+i)) + "@corp.example",
				EmailVerified: true, Groups: []string{"infra-admins"}, TenantID: azureTenant,
			}
			user.Username = user.Email
			idp := opFor(t, in, tc.provider, tc.opts, user)
			var extra map[string]any
			if tc.extra != nil {
				extra = tc.extra(idp)
			}
			r := postProvider(in, admin, tc.kind, tc.provider, idp, extra)
			if r.Status != http.StatusCreated && r.Status != http.StatusOK {
				t.Fatalf("configure: %d %s", r.Status, r.Raw)
			}
			if r.JSON["warnings"] != nil {
				t.Fatalf("warnings for a reachable IdP: %s", r.Raw)
			}
			loginURL := in.URL + "/api/v1/auth/sso/" + tc.provider + "/login"
			first := newBrowser(t).get(loginURL)
			mustStatus(t, first, http.StatusOK, "login")
			if tc.extra == nil && r.String("issuer") != idp.Issuer {
				t.Fatalf("issuer stored as %q, the IdP's is %q", r.String("issuer"), idp.Issuer)
			}
			u := ssoUserOf(t, first)
			// A multi-tenant Azure application vouches for no address (any
			// allowed directory sets its users' own): no e-mail is recorded,
			// and its address-shaped preferred_username is not the username
			// either (it would take that name from its owner).
			wantEmail, nameOK := user.Email, u["username"] == user.Email
			if strings.Contains(tc.name, "multi-tenant") {
				wantEmail, nameOK = "", strings.HasPrefix(u["username"].(string), tc.provider+"-")
			}
			if u["email"] != wantEmail || !nameOK {
				t.Fatalf("provisioned user %v, want e-mail %q and username %s (multi-tenant: %s-…)", u, wantEmail, user.Email, tc.provider)
			}
			me := in.Do("GET", "/api/v1/auth/me", first.String("token"), nil)
			mustStatus(t, me, http.StatusOK, "me")
			second := newBrowser(t).get(loginURL)
			mustStatus(t, second, http.StatusOK, "second login")
			if ssoUserOf(t, second)["id"] != u["id"] {
				t.Fatalf("second login: user %v, want %v", ssoUserOf(t, second)["id"], u["id"])
			}
			if tc.opts.UserinfoOnly {
				if idp.UserinfoCalls() == 0 {
					t.Fatal("the userinfo endpoint was not asked")
				}
				if !strings.Contains(string(me.Raw), `"prod"`) {
					t.Fatalf("groups from userinfo were not mapped: %s", me.Raw)
				}
			} else if n := idp.UserinfoCalls(); n != 0 {
				t.Fatalf("userinfo asked %d times although the ID token had every claim", n)
			}
		})
	}
}

// TestSSOUserinfoOtherSubject: a userinfo answer about someone else than the
// ID token's subject is refused (OpenID Connect Core 5.3.2).
func TestSSOUserinfoOtherSubject(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	idp := opFor(t, in, "lean", testOPOptions{UserinfoOnly: true}, alice())
	mustStatus(t, postProvider(in, admin, "oidc", "lean", idp, nil), http.StatusCreated, "configure")
	idp.SetUserinfoSubject("00u-mallory")
	mustError(t, newBrowser(t).get(in.URL+"/api/v1/auth/sso/lean/login"), http.StatusUnauthorized, "UNAUTHORIZED", "userinfo of another subject")
	idp.SetUserinfoSubject("")
	mustStatus(t, newBrowser(t).get(in.URL+"/api/v1/auth/sso/lean/login"), http.StatusOK, "userinfo of the same subject")
}

// TestSSOConfigRefusesWhatCannotWork: a configuration whose IdP announces
// another issuer, an Azure AD tenant given by a domain name, an Okta domain
// with a port: 400 VALIDATION_ERROR saying why, and nothing appended.
func TestSSOConfigRefusesWhatCannotWork(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	slash := opFor(t, in, "corp", testOPOptions{TrailingSlash: true}, alice())
	dex := opFor(t, in, "corp", testOPOptions{Path: "/dex"}, alice())
	azure := opFor(t, in, "azure", testOPOptions{
		Path: "/" + azureTenant + "/v2.0",
		// Like Azure AD, at the domain; unlike it, at organizations (which
		// should announce …/{tenantid}/v2.0).
		Aliases: map[string]string{"/contoso.onmicrosoft.com/v2.0": "", "/organizations/v2.0": ""},
	}, alice())
	head := func() uint64 {
		h, err := in.Svc.Store.Head(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	before := head()
	for _, tc := range []struct {
		what, kind, name string
		idp              *testOIDC
		extra            map[string]any
		want             []string
	}{
		{"issuer without the IdP's trailing slash", "oidc", "corp", slash,
			map[string]any{"issuer": strings.TrimSuffix(slash.Issuer, "/")},
			[]string{"issuer: ", `announces the issuer "` + slash.Issuer + `"`, "trailing slash"}},
		{"issuer with a trailing slash the IdP does not have", "oidc", "corp", dex,
			map[string]any{"issuer": dex.Issuer + "/"},
			[]string{"issuer: ", `announces the issuer "` + dex.Issuer + `"`}},
		{"okta issuer of another server", "okta", "okta", azure,
			map[string]any{"issuer": azure.origin() + "/contoso.onmicrosoft.com/v2.0"},
			[]string{"issuer: ", `announces the issuer "` + azure.Issuer + `"`}},
		{"azure tenant given by its domain", "azure", "azure", azure,
			map[string]any{"tenant_id": "contoso.onmicrosoft.com", "issuer": azure.origin() + "/contoso.onmicrosoft.com/v2.0"},
			[]string{"tenant_id: ", "domain name", `use tenant_id "` + azureTenant + `"`}},
		{"azure multi-tenant whose IdP announces one tenant", "azure", "azure", azure,
			map[string]any{"tenant_id": "organizations", "allowed_tenants": []string{azureTenant}, "issuer": azure.origin() + "/organizations/v2.0"},
			[]string{"issuer: ", `announces the issuer "` + azure.Issuer + `"`, "/{tenantid}/v2.0"}},
		{"okta domain with a port", "okta", "okta", slash,
			map[string]any{"domain": "acme.okta.com:443", "issuer": nil},
			[]string{"domain: ", "port"}},
		{"okta domain with a scheme", "okta", "okta", slash,
			map[string]any{"domain": "https://acme.okta.com", "issuer": nil},
			[]string{"domain: ", "scheme"}},
	} {
		r := postProvider(in, admin, tc.kind, tc.name, tc.idp, tc.extra)
		mustError(t, r, http.StatusBadRequest, "VALIDATION_ERROR", tc.what)
		t.Logf("%s: %s", tc.what, errorMessage(r))
		for _, w := range tc.want {
			if !strings.Contains(errorMessage(r), w) {
				t.Errorf("%s: message %q does not say %q", tc.what, errorMessage(r), w)
			}
		}
		if strings.Contains(string(r.Raw), "secret-") {
			t.Fatalf("%s: the client secret is in the answer: %s", tc.what, r.Raw)
		}
	}
	if got := head(); got != before {
		t.Fatalf("refused configurations appended %d events", got-before)
	}
	mustError(t, in.Do("GET", "/api/v1/admin/sso/corp", admin, nil), http.StatusNotFound, "NOT_FOUND", "refused provider")

	// A working configuration stays as it was when a replacement is refused.
	mustStatus(t, postProvider(in, admin, "oidc", "corp", slash, nil), http.StatusCreated, "the IdP's own issuer")
	mustError(t, postProvider(in, admin, "oidc", "corp", slash, map[string]any{"issuer": strings.TrimSuffix(slash.Issuer, "/")}),
		http.StatusBadRequest, "VALIDATION_ERROR", "replacement without the slash")
	if got := in.Do("GET", "/api/v1/admin/sso/corp", admin, nil).String("issuer"); got != slash.Issuer {
		t.Fatalf("issuer %q after a refused replacement, want %q", got, slash.Issuer)
	}
	mustStatus(t, newBrowser(t).get(in.URL+"/api/v1/auth/sso/corp/login"), http.StatusOK, "login after a refused replacement")
}

// TestSSOConfigUnreachableIdP: an IdP that cannot be reached is configured
// (201) with a warning; its logins answer 502 until it is reachable.
func TestSSOConfigUnreachableIdP(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String() + "/later"
	ln.Close() // nothing listens there now
	r := in.Do("POST", "/api/v1/admin/sso/oidc", admin, map[string]any{
		"name": "later", "issuer": issuer, "client_id": "c", "client_secret": "secret-later",
	})
	mustStatus(t, r, http.StatusCreated, "configure an unreachable IdP")
	warnings, _ := r.JSON["warnings"].([]any)
	if len(warnings) != 1 || !strings.Contains(warnings[0].(string), issuer+"/.well-known/openid-configuration") {
		t.Fatalf("want one warning naming the discovery URL: %s", r.Raw)
	}
	t.Logf("warning: %s", warnings[0])
	if r.String("issuer") != issuer {
		t.Fatalf("issuer %q", r.String("issuer"))
	}
	got := in.Do("GET", "/api/v1/admin/sso/later", admin, nil)
	mustStatus(t, got, http.StatusOK, "get")
	if got.JSON["warnings"] != nil {
		t.Fatalf("warnings are the configuration's answer only: %s", got.Raw)
	}
	mustError(t, newBrowser(t).get(in.URL+"/api/v1/auth/sso/later/login"), http.StatusBadGateway, "BAD_GATEWAY", "login at an unreachable IdP")
}

// TestSSORepointedProvider: an identity is (issuer, subject). When provider
// "corp" is re-pointed to another IdP, whose subjects happen to be the old
// IdP's, the new IdP's users are new users: they never sign in as the old
// IdP's users.
func TestSSORepointedProvider(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	old := alice()
	a := opFor(t, in, "corp", testOPOptions{}, old)
	mustStatus(t, postProvider(in, admin, "oidc", "corp", a, nil), http.StatusCreated, "configure A")
	r := newBrowser(t).get(in.URL + "/api/v1/auth/sso/corp/login")
	mustStatus(t, r, http.StatusOK, "login at A")
	oldID := ssoUserOf(t, r)["id"]

	other := alice() // the same subject, at another issuer
	other.Email, other.Username = "mallory@other.example", "mallory@other.example"
	b := opFor(t, in, "corp", testOPOptions{Path: "/b"}, other)
	mustStatus(t, postProvider(in, admin, "oidc", "corp", b, nil), http.StatusOK, "re-point corp to B")
	r = newBrowser(t).get(in.URL + "/api/v1/auth/sso/corp/login")
	mustStatus(t, r, http.StatusOK, "login at B")
	u := ssoUserOf(t, r)
	if u["id"] == oldID {
		t.Fatalf("B's subject %q signed in as A's user %v", other.Subject, oldID)
	}
	if u["email"] != other.Email {
		t.Fatalf("B's user: %v", u)
	}
	// Pointing corp back to A finds A's users again.
	mustStatus(t, postProvider(in, admin, "oidc", "corp", a, nil), http.StatusOK, "re-point corp to A")
	r = newBrowser(t).get(in.URL + "/api/v1/auth/sso/corp/login")
	mustStatus(t, r, http.StatusOK, "login at A again")
	if ssoUserOf(t, r)["id"] != oldID {
		t.Fatalf("A's user is now %v, want %v", ssoUserOf(t, r)["id"], oldID)
	}
}

// TestSSOOldFormatIdentity: an identity linked by an event of the earlier
// format (provider name and subject, no issuer) still signs its user in,
// also after a restart replays the stream. The event is appended as the
// earlier release wrote it, on the subject it used.
func TestSSOOldFormatIdentity(t *testing.T) {
	dir := t.TempDir()
	in := Start(t, WithDataDir(dir))
	admin := in.AdminToken()
	userID := in.CreateUser(admin, "legacy-alice", "legacy-password-1", nil)
	idp := opFor(t, in, "corp", testOPOptions{}, alice())
	mustStatus(t, postProvider(in, admin, "oidc", "corp", idp, nil), http.StatusCreated, "configure")

	sum := sha256.Sum256([]byte("identity\x00corp\x00" + alice().Subject))
	key := hex.EncodeToString(sum[:16])
	now := time.Now().UTC()
	data, err := events.Encode(commands.NewID("evt"), domain.AggregateSSOIdentity, key, 1, now, events.Meta{Actor: events.System},
		domain.SSOIdentityLinked{Provider: "corp", Subject: alice().Subject, UserID: userID, Method: domain.LinkProvisioned, LinkedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), `"issuer"`) {
		t.Fatalf("not the old format: %s", data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seq, err := in.Svc.Store.Append(ctx, events.Message{
		Subject: events.Subject(domain.AggregateSSOIdentity, key), ID: commands.NewID("cmd") + "-0", Data: data,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Svc.Runner.WaitFor(ctx, seq); err != nil {
		t.Fatal(err)
	}
	r := newBrowser(t).get(in.URL + "/api/v1/auth/sso/corp/login")
	mustStatus(t, r, http.StatusOK, "login of an old-format identity")
	if id := ssoUserOf(t, r)["id"]; id != userID {
		t.Fatalf("signed in as %v, want the linked user %s", id, userID)
	}

	in.Stop()
	in2 := Start(t, WithDataDir(dir))
	idp.AddClient("client-corp", "secret-corp", in2.URL+"/api/v1/auth/sso/corp/callback")
	r = newBrowser(t).get(in2.URL + "/api/v1/auth/sso/corp/login")
	mustStatus(t, r, http.StatusOK, "login after a restart")
	if id := ssoUserOf(t, r)["id"]; id != userID {
		t.Fatalf("after a restart: signed in as %v, want %s", id, userID)
	}
}
