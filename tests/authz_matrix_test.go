package tests

// TestAuthorizationMatrix guards authorization across the whole HTTP surface:
// it reads http/openapi.json at run time and calls every operation in it as a
// few kinds of caller against targets in the caller's tenant (T1, "alpha"),
// in another tenant (T2, "bravo") and nowhere (an ID or tenant that does not
// exist), then checks the rules below on every answer (a cell). A failure
// names the cell: operation, caller, target, status and code.
//
// The rules:
//   - no 5xx anywhere (the gateway has a real upstream and the SSO provider a
//     real loopback IdP, so nothing answers 502 for want of one);
//   - an invalid caller (anonymous, a malformed token, a refresh token or an
//     mfa_token as bearer, a revoked token, a logged-out session's token, a
//     deactivated user's token; and a credential of the other kind: a SCIM
//     token on the API, an access token on SCIM) gets 401 on every secured
//     operation (but the documented idempotent logout), in
//     the contract's error shape with code UNAUTHORIZED (SCIM's own shape on
//     /scim/v2);
//   - a T1-only caller (viewer, tenant admin, an admin:* key on [T1], the SCIM
//     connection of T1) never gets 2xx — nor an identity header — on a cell
//     that targets T2 (the path's tenant, a T2 ID, T2 in the body);
//   - for such a caller, the answer to a T2 ID (or tenant) equals the answer
//     to a missing one of the same kind (status and code): nothing tells that
//     the T2 one exists;
//   - a 2xx answer to a T1-only caller holds no T2 tenant, user ID, username,
//     key name or other T2 ID;
//   - a cookie session without the CSRF header never gets 2xx on a write;
//   - every answer of 400 and above has the contract's error shape
//     ({"error":{"code","message"}}), or SCIM's on /scim/v2;
//   - every status seen is declared on its operation in openapi.json.
//
// Operations without security in the document are public: they must be
// listed in authzPublic with why (so making one public is a visible change),
// and are called once, anonymously.
//
// Extending it: a new operation is covered without editing this file when
// its path has no parameters, or is a path amTargets already fills (a new
// method on it). A new path with parameters fails the test with a message
// saying so: add a case to amTargets, with a T1 ("own"), a T2 ("other") and
// a missing ("none") variant when a parameter names something that lives in
// a tenant, and a body the operation accepts. A new kind of caller goes in
// the callers list of the test, with its kind deciding which rules apply.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// authzPublic lists the operations that take no credential, with why.
var authzPublic = map[string]string{
	"GET /health":                              "liveness, for orchestrators",
	"GET /ready":                               "readiness, for orchestrators and load balancers",
	"GET /metrics":                             "Prometheus scraping (no tenant data, counts only)",
	"GET /openapi.json":                        "the API's own description",
	"GET /.well-known/jwks.json":               "the public keys resource services verify tokens with",
	"GET /login":                               "the sign-in page",
	"GET /console":                             "the console's page; its data comes from the secured API",
	"GET /console/{path}":                      "the console's static files",
	"POST /api/v1/auth/token":                  "sign-in: the credential is in the body",
	"POST /api/v1/auth/token/mfa":              "sign-in's second step: the mfa_token is in the body",
	"POST /api/v1/auth/token/passkey":          "passkey sign-in: the passkey_token is in the body",
	"POST /api/v1/auth/passkey/options":        "passkey sign-in's challenge, before any credential",
	"POST /api/v1/auth/refresh":                "the refresh token is in the body",
	"POST /api/v1/auth/revoke":                 "RFC 7009: the token to revoke is the credential",
	"GET /api/v1/auth/sso/{provider}/login":    "SSO start: redirects to the IdP",
	"GET /api/v1/auth/sso/{provider}/callback": "SSO return: the IdP's code and the flow's state are the credential",
	"GET /api/v1/auth/sso/saml/login":          "SAML start: redirects to the IdP",
	"POST /api/v1/auth/sso/saml/acs":           "SAML return: the signed assertion is the credential",
	"GET /api/v1/auth/sso/saml/metadata":       "the SP metadata the IdP is configured with",
}

const (
	amT1   = "alpha"
	amT2   = "bravo"
	amNone = "charlie-none"
	amPW   = "matrix-passphrase-1"
)

// amOp is one operation of the OpenAPI document.
type amOp struct {
	method, path string
	public, scim bool
	declared     map[string]bool // response statuses ("default" included)
}

func (o amOp) String() string { return o.method + " " + o.path }

// amTarget is one way of filling an operation's path and body.
type amTarget struct {
	variant string // own (T1), other (T2), none (missing), cross (T1 thing into T2), or "-"
	path    string
	body    []byte
	ctype   string
	header  map[string]string
}

// amCaller is one kind of caller.
type amCaller struct {
	name string
	// kind: "invalid" (401 everywhere secured), "t1" (a T1-only caller of
	// the API), "scim1" (the SCIM connection of T1), "nocsrf" (a T1 admin's
	// cookie session without the CSRF header, on writes only).
	kind  string
	cred  func() (token string, header map[string]string)
	token string
	hdr   map[string]string
}

func TestAuthorizationMatrix(t *testing.T) {
	up := newGWUpstream(t, nil)
	in := Start(t, withUpstream(up.srv.URL))
	root := in.AdminToken()
	must := func(r Response, status int, what string) Response {
		t.Helper()
		if r.Status != status {
			t.Fatalf("fixture %s: %d %s", what, r.Status, r.Raw)
		}
		return r
	}

	// T2's marks: anything that would show T2 to a T1 caller.
	t2 := map[string]bool{amT2: true}
	seq := 0
	name := func(prefix string) string { seq++; return fmt.Sprintf("%s%d", prefix, seq) }
	users := map[string]string{} // id → username
	mkUser := func(tenant, role string) string {
		t.Helper()
		n := name("u" + tenant) // "ubravo…" carries T2's mark in its name
		id := must(in.Do("POST", "/api/v1/users", root, map[string]any{"username": n, "email": n + "@example.com", "password": amPW,
			"tenants": []map[string]string{{"id": tenant, "role": role}}}), 201, "user").String("id")
		users[id] = n
		if tenant == amT2 {
			t2[id] = true
		}
		return id
	}
	login := func(id string) Response {
		t.Helper()
		return must(in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": users[id], "password": amPW}), 200, "login "+users[id])
	}
	tok := func(id string) string { return login(id).String("token") }
	session := func(id string) string {
		t.Helper()
		sid := sessionOf(t, in, login(id).String("refresh_token"))
		if users[id] != "" && t2[id] {
			t2[sid] = true
		}
		return sid
	}

	// The SSO provider SCIM connections hang on, at a real IdP on loopback.
	idp := opFor(t, in, "okta", testOPOptions{}, testOIDCUser{Subject: "matrix-sub", Email: "matrix@example.com", EmailVerified: true})
	if r := postProvider(in, root, "okta", "okta", idp, nil); r.Status != 201 && r.Status != 200 {
		t.Fatalf("configure okta: %d %s", r.Status, r.Raw)
	}

	v1, a1, a2 := mkUser(amT1, "viewer"), mkUser(amT1, "admin"), mkUser(amT2, "admin")
	a1Tok := tok(a1)
	a2Tok := tok(a2)
	mkKey := func(ownerTok, tenant string, perms []string) (string, string) {
		t.Helper()
		r := must(in.Do("POST", "/api/v1/api-keys", ownerTok, map[string]any{"name": name(tenant + "-key"), "tenants": []string{tenant}, "permissions": perms}), 201, "key")
		if tenant == amT2 {
			t2[r.String("id")] = true
		}
		return r.String("id"), r.String("key")
	}
	mkConn := func(tenant string) (string, string) {
		t.Helper()
		r := must(in.Do("POST", "/api/v1/admin/scim", root, map[string]any{"provider": "okta", "platform": false, "tenants": []string{tenant}, "group_mappings": []any{}}), 201, "SCIM connection")
		if tenant == amT2 {
			t2[r.String("id")] = true
		}
		return r.String("id"), r.String("token")
	}
	conn1, scim1 := mkConn(amT1)
	conn2, scim2 := mkConn(amT2)
	scimUser := func(scimTok, tenant string) string {
		t.Helper()
		n := name("s" + tenant)
		r := scimCall(t, in, "POST", "/scim/v2/Users", scimTok, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+n+`","externalId":"`+n+`","emails":[{"value":"`+n+`@example.com","type":"work","primary":true}],"active":true}`)
		must(r, 201, "SCIM user")
		if tenant == amT2 {
			t2[r.String("id")] = true
		}
		return r.String("id")
	}
	scimGroup := func(scimTok, tenant string) string {
		t.Helper()
		n := name("g" + tenant)
		r := scimCall(t, in, "POST", "/scim/v2/Groups", scimTok, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"`+n+`","externalId":"`+n+`"}`)
		must(r, 201, "SCIM group")
		if tenant == amT2 {
			t2[r.String("id")] = true
		}
		return r.String("id")
	}
	su1, su2 := scimUser(scim1, amT1), scimUser(scim2, amT2)
	sg1, sg2 := scimGroup(scim1, amT1), scimGroup(scim2, amT2)

	// Static targets: read by GETs, and the T2 and missing ones of writes
	// (which must fail, so they stay as they are). Writes to T1 targets
	// get a fresh one each (they may succeed).
	u1, u2 := mkUser(amT1, "viewer"), mkUser(amT2, "viewer")
	s1, s2 := session(u1), session(u2)
	k1, _ := mkKey(a1Tok, amT1, []string{"nodes:read"})
	k2, _ := mkKey(a2Tok, amT2, []string{"nodes:read"})
	d2 := mkUser(amT2, "viewer")
	must(in.Do("POST", "/api/v1/users/"+d2+"/deactivate", root, nil), 200, "deactivate T2 target")
	missing := map[string]string{"user": "user-01JAAAAAAAAAAAAAAAAAAAAAAA", "key": "key-01JAAAAAAAAAAAAAAAAAAAAAAA",
		"sess": "sess-01JAAAAAAAAAAAAAAAAAAAAAAA", "scim": "scim-01JAAAAAAAAAAAAAAAAAAAAAAA", "scimres": "00000000-0000-4000-8000-000000000000"}
	signingKey := ""
	if l, ok := must(in.Do("GET", "/api/v1/admin/signing-keys", root, nil), 200, "signing keys").JSON["signing_keys"].([]any); ok && len(l) > 0 {
		signingKey, _ = l[0].(map[string]any)["id"].(string)
	}
	if signingKey == "" {
		t.Fatal("fixture: no signing key listed")
	}
	tenantOf := map[string]string{"own": amT1, "other": amT2, "none": amNone}

	// amTargets fills an operation's parameters and body: every variant
	// for a T1 caller, the first one alone for the others (fresh=false:
	// static targets only).
	amTargets := func(o amOp, fresh bool) []amTarget {
		t.Helper()
		var out []amTarget
		add := func(variant, path string, body any) {
			tg := amTarget{variant: variant, path: path}
			if body != nil {
				tg.body, tg.ctype = jsonBody(body), "application/json"
			}
			out = append(out, tg)
		}
		write := o.method != "GET"
		three := []string{"own", "other", "none"}
		switch tmpl := o.path; tmpl {
		case "/api/v1/users/{id}", "/api/v1/users/{id}/deactivate", "/api/v1/users/{id}/activate", "/api/v1/users/{id}/sessions",
			"/api/v1/users/{id}/mfa/reset", "/api/v1/users/{id}/access", "/api/v1/users/{id}/password":
			for _, v := range three {
				id := map[string]string{"own": u1, "other": u2, "none": missing["user"]}[v]
				if strings.HasSuffix(tmpl, "/activate") && v == "other" {
					id = d2
				}
				if write && fresh && v == "own" {
					id = mkUser(amT1, "viewer")
					if strings.HasSuffix(tmpl, "/activate") {
						// By T1's admin: a tenant admin activates only a
						// user a tenant admin deactivated (TestActivateWho).
						must(in.Do("POST", "/api/v1/users/"+id+"/deactivate", a1Tok, nil), 200, "deactivate T1 target")
					}
				}
				var body any
				if strings.HasSuffix(tmpl, "/password") {
					body = map[string]string{"password": "another-passphrase-9"}
				}
				add(v, strings.Replace(tmpl, "{id}", id, 1), body)
			}
		case "/api/v1/users/{id}/tenants/{tenant}":
			for _, v := range []string{"own", "other", "none", "cross"} {
				id := map[string]string{"own": u1, "other": u2, "none": missing["user"], "cross": u1}[v]
				if fresh && (v == "own" || v == "cross") {
					id = mkUser(amT1, "viewer")
				}
				tn := tenantOf[v]
				if v == "cross" {
					tn = amT2
				}
				var body any
				if o.method == "PUT" {
					body = map[string]string{"role": "viewer"}
				}
				add(v, "/api/v1/users/"+id+"/tenants/"+tn, body)
			}
		case "/api/v1/users/{id}/sessions/{sid}":
			for _, v := range three {
				id, sid := u1, s1
				switch {
				case v == "other":
					id, sid = u2, s2
				case v == "none":
					id, sid = missing["user"], missing["sess"]
				case fresh:
					id = mkUser(amT1, "viewer")
					sid = session(id)
				}
				add(v, "/api/v1/users/"+id+"/sessions/"+sid, nil)
			}
		case "/api/v1/auth/sessions/{id}":
			// Another user's session, in either tenant, is as missing as
			// one that does not exist (the caller's own is not a target
			// here: it would end the caller).
			for _, v := range three {
				add(v, "/api/v1/auth/sessions/"+map[string]string{"own": s1, "other": s2, "none": missing["sess"]}[v], nil)
			}
		case "/api/v1/api-keys/{id}", "/api/v1/api-keys/{id}/rotate", "/api/v1/api-keys/{id}/access":
			for _, v := range three {
				id := map[string]string{"own": k1, "other": k2, "none": missing["key"]}[v]
				if write && fresh && v == "own" {
					id, _ = mkKey(a1Tok, amT1, []string{"nodes:read"})
				}
				add(v, strings.Replace(tmpl, "{id}", id, 1), nil)
			}
		case "/api/v1/admin/scim/{id}", "/api/v1/admin/scim/{id}/rotate":
			for _, v := range three {
				id := map[string]string{"own": conn1, "other": conn2, "none": missing["scim"]}[v]
				if write && fresh && v == "own" {
					id, _ = mkConn(amT1)
				}
				var body any
				if o.method == "PUT" {
					body = map[string]any{"tenants": []string{tenantOf[v]}}
				}
				add(v, strings.Replace(tmpl, "{id}", id, 1), body)
			}
		case "/api/v1/tenants/{tenant}", "/api/v1/tenants/{tenant}/access", "/api/v1/admin/mfa/policy/{tenant}":
			for _, v := range three {
				var body any
				if o.method == "PUT" && strings.Contains(tmpl, "policy") {
					body = map[string]any{"required": false}
				}
				add(v, strings.Replace(tmpl, "{tenant}", tenantOf[v], 1), body)
			}
		case "/api/v1/tenants/{tenant}/{path}":
			for _, v := range three {
				add(v, "/api/v1/tenants/"+tenantOf[v]+"/nodes", nil)
			}
		case "/api/v1/auth/verify/{path}":
			for _, v := range three {
				add(v, "/api/v1/auth/verify/api/v1/tenants/"+tenantOf[v]+"/nodes", nil)
			}
		case "/api/v1/auth/verify":
			for _, v := range three {
				out = append(out, amTarget{variant: v, path: tmpl, header: map[string]string{
					"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/api/v1/tenants/" + tenantOf[v] + "/nodes"}})
			}
		case "/api/v1/users", "/api/v1/api-keys", "/api/v1/admin/scim":
			if o.method != "POST" {
				add("-", tmpl, nil)
				break
			}
			for _, v := range three {
				n := name("new")
				body := map[string]any{
					"/api/v1/users":      map[string]any{"username": n, "email": n + "@example.com", "password": amPW, "tenants": []map[string]string{{"id": tenantOf[v], "role": "viewer"}}},
					"/api/v1/api-keys":   map[string]any{"name": n, "tenants": []string{tenantOf[v]}, "permissions": []string{"nodes:read"}},
					"/api/v1/admin/scim": map[string]any{"provider": "okta", "tenants": []string{tenantOf[v]}, "group_mappings": []any{}},
				}[tmpl]
				add(v, tmpl, body)
			}
		case "/api/v1/audit/events":
			add("-", tmpl, nil)
			for _, v := range three {
				add(v, tmpl+"?tenant="+tenantOf[v], nil)
			}
		case "/api/v1/audit/credential-check":
			for _, v := range three {
				tk := "eyJhbGciOiJFZERTQSJ9.e30.AAAA"
				switch v {
				case "own":
					tk = tok(u1)
				case "other":
					tk = tok(u2)
				}
				add(v, tmpl, map[string]string{"token": tk})
			}
		case "/api/v1/admin/signing-keys/{id}/retire", "/api/v1/admin/signing-keys/{id}/activate":
			// Platform only: no T1 caller may; the key is the one in use.
			add("-", strings.Replace(tmpl, "{id}", signingKey, 1), nil)
		case "/api/v1/admin/sso/{provider}":
			if o.method == "POST" {
				add("-", "/api/v1/admin/sso/azure", map[string]any{"tenant_id": azureTenant, "client_id": "c", "client_secret": "s", "issuer": idp.Issuer})
			} else {
				add("-", "/api/v1/admin/sso/okta", nil)
			}
		case "/api/v1/admin/sso/{provider}/identities":
			add("-", "/api/v1/admin/sso/okta/identities?subject=nobody", nil)
		case "/api/v1/admin/mfa/policy":
			var body any
			if o.method == "PUT" {
				body = map[string]any{"required": false}
			}
			add("-", tmpl, body)
		case "/api/v1/auth/mfa/passkeys/{id}":
			add("none", "/api/v1/auth/mfa/passkeys/pk-nothing", nil)
		case "/api/v1/auth/mfa/totp/confirm":
			add("-", tmpl, map[string]string{"code": "000000"})
		case "/api/v1/auth/mfa/passkeys":
			add("-", tmpl, map[string]string{"registration_token": "x", "name": "n"})
		case "/api/v1/auth/revoke":
			add("-", tmpl, map[string]string{"token": "nothing"})
		case "/api/v1/auth/refresh":
			add("-", tmpl, map[string]string{"refresh_token": "nothing"})
		case "/api/v1/auth/token":
			add("-", tmpl, map[string]string{"username": "nobody", "password": "wrong-password-1"})
		case "/api/v1/auth/token/mfa":
			add("-", tmpl, map[string]string{"mfa_token": "x", "code": "000000"})
		case "/api/v1/auth/token/passkey":
			add("-", tmpl, map[string]string{"passkey_token": "x"})
		case "/console/{path}":
			add("-", "/console/app.js", nil)
		case "/api/v1/auth/sso/{provider}/login", "/api/v1/auth/sso/{provider}/callback":
			add("-", strings.Replace(tmpl, "{provider}", "okta", 1), nil)
		case "/scim/v2/Users/{id}", "/scim/v2/Groups/{id}":
			isUser := strings.Contains(tmpl, "Users")
			for _, v := range three {
				id := missing["scimres"]
				if v != "none" {
					id = map[string]string{"own": su1, "other": su2}[v]
					if !isUser {
						id = map[string]string{"own": sg1, "other": sg2}[v]
					}
					if write && fresh && v == "own" && o.method != "POST" {
						if isUser {
							id = scimUser(scim1, amT1)
						} else {
							id = scimGroup(scim1, amT1)
						}
					}
				}
				tg := amTarget{variant: v, path: strings.Replace(tmpl, "{id}", id, 1)}
				switch o.method {
				case "PATCH":
					tg.body = []byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"externalId","value":"x` + id + `"}]}`)
				case "PUT":
					if isUser {
						n := name("put")
						tg.body = []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + n + `","emails":[{"value":"` + n + `@example.com","type":"work","primary":true}],"active":true}`)
					} else {
						tg.body = []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"` + name("putg") + `"}`)
					}
				}
				if tg.body != nil {
					tg.ctype = "application/scim+json"
				}
				out = append(out, tg)
			}
		case "/scim/v2/Users", "/scim/v2/Groups":
			tg := amTarget{variant: "-", path: tmpl}
			if o.method == "POST" {
				if strings.Contains(tmpl, "Users") {
					n := name("post")
					tg.body = []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + n + `","emails":[{"value":"` + n + `@example.com","type":"work"}]}`)
				} else {
					tg.body = []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"` + name("postg") + `"}`)
				}
				tg.ctype = "application/scim+json"
			}
			out = append(out, tg)
		case "/scim/v2/ResourceTypes/{name}":
			add("-", "/scim/v2/ResourceTypes/User", nil)
		case "/scim/v2/Schemas/{id}":
			add("-", "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", nil)
		case "/scim/v2/{path}":
			add("-", "/scim/v2/Nope", nil)
		default:
			if strings.Contains(tmpl, "{") {
				t.Fatalf("%s: the authorization matrix cannot fill this path's parameters; add a case to amTargets in tests/authz_matrix_test.go (with T1, T2 and missing variants when the parameter names something in a tenant)", o)
			}
			add("-", tmpl, nil)
		}
		if !fresh && len(out) > 1 {
			out = out[:1]
		}
		return out
	}

	// The callers. Each T1-only caller's credential is made again when an
	// operation ended it (logout).
	cookie := func(csrf bool) (string, map[string]string) {
		res := doReq(t, in, request{Method: "POST", Path: "/api/v1/auth/token", ContentType: "application/json",
			Header: map[string]string{"X-Infracast-Session": "cookie"}, Body: jsonBody(map[string]string{"username": users[a1], "password": amPW})})
		must(res, 200, "cookie login")
		var parts []string
		csrfVal := ""
		for _, sc := range res.Header.Values("Set-Cookie") {
			kv, _, _ := strings.Cut(sc, ";")
			n, val, _ := strings.Cut(kv, "=")
			if val == "" {
				continue
			}
			parts = append(parts, kv)
			if n == "infracast_csrf" {
				csrfVal = val
			}
		}
		if len(parts) == 0 || csrfVal == "" {
			t.Fatalf("fixture cookie login: no session or CSRF cookie: %v", res.Header.Values("Set-Cookie"))
		}
		h := map[string]string{"Cookie": strings.Join(parts, "; ")}
		if csrf {
			h["X-CSRF-Token"] = csrfVal
		}
		return "", h
	}
	revoked := tok(v1)
	must(in.Do("POST", "/api/v1/auth/revoke", "", map[string]string{"token": revoked}), 200, "revoke")
	loggedOut := tok(v1)
	must(in.Do("POST", "/api/v1/auth/logout", loggedOut, nil), 204, "logout")
	refreshTok := login(a1).String("refresh_token")
	mfaUser := mkUser(amT1, "admin")
	enrollTOTP(t, in, tok(mfaUser))
	mfaTok := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": users[mfaUser], "password": amPW}).String("mfa_token")
	if mfaTok == "" {
		t.Fatal("fixture: no mfa_token for a user with TOTP")
	}
	gone := mkUser(amT1, "admin")
	goneTok := tok(gone)
	must(in.Do("POST", "/api/v1/users/"+gone+"/deactivate", root, nil), 200, "deactivate")
	_, keyAll := mkKey(a1Tok, amT1, []string{"admin:*"})
	static := func(tk string) func() (string, map[string]string) {
		return func() (string, map[string]string) { return tk, nil }
	}
	t1Admin := &amCaller{name: "t1-admin", kind: "t1", cred: func() (string, map[string]string) { return tok(a1), nil }}
	callers := []*amCaller{
		{name: "anonymous", kind: "invalid", cred: static("")},
		{name: "malformed-token", kind: "invalid", cred: static("abc.def.ghi")},
		{name: "refresh-token-as-bearer", kind: "invalid", cred: static(refreshTok)},
		{name: "revoked-token", kind: "invalid", cred: static(revoked)},
		{name: "logged-out-token", kind: "invalid", cred: static(loggedOut)},
		{name: "mfa-token-as-bearer", kind: "invalid", cred: static(mfaTok)},
		{name: "deactivated-user-token", kind: "invalid", cred: static(goneTok)},
		{name: "t1-viewer", kind: "t1", cred: func() (string, map[string]string) { return tok(v1), nil }},
		t1Admin,
		{name: "t1-admin:*-key", kind: "t1", cred: static(keyAll)},
		{name: "t1-admin-cookie-no-csrf", kind: "nocsrf", cred: func() (string, map[string]string) { return cookie(false) }},
		{name: "t1-scim-token", kind: "scim1", cred: static(scim1)},
	}

	ops := amOperations(t)
	type cell struct {
		op      amOp
		caller  *amCaller
		variant string
		path    string
		res     Response
	}
	code := func(r Response) string {
		if c := r.ErrorCode(); c != "" {
			return c
		}
		if s, ok := r.JSON["scimType"].(string); ok {
			return "scim:" + s
		}
		return ""
	}
	var cells []cell
	fail := func(c cell, rule string, args ...any) {
		t.Helper()
		t.Errorf("%s as %s on %s (%s): %d %s — %s\n\tbody: %.300s", c.op, c.caller.name, c.variant, c.path, c.res.Status, code(c.res), fmt.Sprintf(rule, args...), c.res.Raw)
	}
	// live makes the caller's credential when it has none, and (check)
	// again when it no longer signs in: a write may have ended it (logout).
	live := func(c *amCaller, check bool) {
		if c.token != "" || c.hdr != nil {
			if !check || c.kind == "invalid" || c.kind == "scim1" ||
				doReq(t, in, request{Method: "GET", Path: "/api/v1/auth/me", Token: c.token, Header: c.hdr}).Status == http.StatusOK {
				return
			}
		}
		c.token, c.hdr = c.cred()
	}
	for _, o := range ops {
		for _, c := range callers {
			fresh := false
			switch {
			case o.public:
				if c.name != "anonymous" {
					continue
				}
			case c.kind == "invalid":
			case c.kind == "nocsrf":
				if o.scim || o.method == "GET" {
					continue
				}
				fresh = true
			case c.kind == "scim1":
				fresh = o.scim
			case o.scim:
				// An API caller on SCIM is an invalid caller there: the
				// T1 admin stands for them all.
				if c != t1Admin {
					continue
				}
			default:
				fresh = true
			}
			live(c, false)
			tgs := amTargets(o, fresh)
			if c.kind == "nocsrf" {
				tgs = tgs[:1]
			}
			for _, tg := range tgs {
				r := request{Method: o.method, Path: tg.path, Token: c.token, ContentType: tg.ctype, Body: tg.body, Header: map[string]string{}}
				for k, v := range c.hdr {
					r.Header[k] = v
				}
				for k, v := range tg.header {
					r.Header[k] = v
				}
				cells = append(cells, cell{op: o, caller: c, variant: tg.variant, path: tg.path, res: amDo(t, in, r)})
				live(c, o.method != "GET")
			}
		}
	}

	// The rules.
	type key struct{ op, caller string }
	byVariant := map[key]map[string]cell{}
	for _, c := range cells {
		st := c.res.Status
		invalid := c.caller.kind == "invalid" || (c.caller.kind == "scim1") != c.op.scim
		if st >= 500 {
			fail(c, "a 5xx answer")
		}
		if !c.op.declared[strconv.Itoa(st)] && !c.op.declared["default"] {
			fail(c, "status not declared on the operation in openapi.json")
		}
		if st >= 400 {
			if c.op.scim {
				if !amSCIMError(c.res) {
					fail(c, "not in SCIM's error shape: %.200s", c.res.Raw)
				}
			} else if !amContractError(c.res) {
				fail(c, "not in the contract's error shape: %.200s", c.res.Raw)
			}
		}
		if c.op.public {
			continue
		}
		if invalid {
			if c.caller.name == "logged-out-token" && c.op.String() == "POST /api/v1/auth/logout" && st == http.StatusNoContent {
				// Documented: a logout retried with the token of a session
				// that ended answers 204 again and changes nothing.
				continue
			}
			if st != http.StatusUnauthorized {
				fail(c, "an invalid caller must get 401")
			} else if !c.op.scim && c.res.ErrorCode() != "UNAUTHORIZED" {
				fail(c, "401 without code UNAUTHORIZED")
			}
			continue
		}
		allowed := st < 300 || c.res.Header.Get("X-Infracast-Subject") != ""
		if c.caller.kind == "nocsrf" && allowed {
			fail(c, "a cookie session without the CSRF header was allowed a write")
		}
		if (c.variant == "other" || c.variant == "cross") && allowed {
			fail(c, "a T1-only caller was allowed on a T2 target")
		}
		if st < 300 {
			if m := amMarks(string(c.res.Raw), t2); m != "" {
				fail(c, "the answer shows T2 to a T1-only caller: %s", m)
			}
		}
		k := key{c.op.String(), c.caller.name}
		if byVariant[k] == nil {
			byVariant[k] = map[string]cell{}
		}
		byVariant[k][c.variant] = c
	}
	ks := make([]key, 0, len(byVariant))
	for k := range byVariant {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].op != ks[j].op {
			return ks[i].op < ks[j].op
		}
		return ks[i].caller < ks[j].caller
	})
	for _, k := range ks {
		vs := byVariant[k]
		other, ok1 := vs["other"]
		none, ok2 := vs["none"]
		if ok1 && ok2 && (other.res.Status != none.res.Status || code(other.res) != code(none.res)) {
			fail(other, "differs from the missing target's answer (%s: %d %s): T2's thing is seen to exist", none.path, none.res.Status, code(none.res))
		}
	}
	t.Logf("authorization matrix: %d operations, %d callers, %d cells", len(ops), len(callers), len(cells))
}

// amOperations reads the operations of http/openapi.json, and checks that
// the public ones (no security) are exactly those listed in authzPublic.
func amOperations(t *testing.T) []amOp {
	t.Helper()
	raw, err := os.ReadFile("../http/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var ops []amOp
	public := map[string]bool{}
	for p, methods := range doc.Paths {
		for m, body := range methods {
			m = strings.ToUpper(m)
			switch m {
			case "GET", "POST", "PUT", "PATCH", "DELETE":
			default:
				continue
			}
			var o struct {
				Security  *[]map[string][]string     `json:"security"`
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(body, &o); err != nil {
				t.Fatalf("%s %s: %v", m, p, err)
			}
			if o.Security == nil {
				t.Fatalf("%s %s: no security in openapi.json (the document has no global one): say [] for a public operation", m, p)
			}
			op := amOp{method: m, path: p, public: len(*o.Security) == 0, scim: strings.HasPrefix(p, "/scim/v2"), declared: map[string]bool{}}
			for st := range o.Responses {
				op.declared[st] = true
			}
			if op.public {
				public[op.String()] = true
				if authzPublic[op.String()] == "" {
					t.Errorf("%s is public in openapi.json but not listed in authzPublic (say why it takes no credential)", op)
				}
			}
			ops = append(ops, op)
		}
	}
	for op := range authzPublic {
		if !public[op] {
			t.Errorf("%s is listed in authzPublic but is not a public operation of openapi.json", op)
		}
	}
	sort.Slice(ops, func(i, j int) bool {
		if ops[i].path != ops[j].path {
			return ops[i].path < ops[j].path
		}
		return ops[i].method < ops[j].method
	})
	if len(ops) == 0 {
		t.Fatal("no operations in openapi.json")
	}
	return ops
}

// amContractError reports whether r is {"error":{"code","message",…}}.
func amContractError(r Response) bool {
	e, ok := r.JSON["error"].(map[string]any)
	if !ok {
		return false
	}
	c, _ := e["code"].(string)
	m, _ := e["message"].(string)
	return c != "" && m != ""
}

// amSCIMError reports whether r is a SCIM error (RFC 7644 §3.12) of r's status.
func amSCIMError(r Response) bool {
	schemas, _ := r.JSON["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
		return false
	}
	return r.JSON["status"] == strconv.Itoa(r.Status)
}

// amMarks returns the marks of T2 found in body ("" when none).
func amMarks(body string, marks map[string]bool) string {
	var hits []string
	for m := range marks {
		if strings.Contains(body, m) {
			hits = append(hits, m)
		}
	}
	sort.Strings(hits)
	return strings.Join(hits, ", ")
}

// amClient does not follow redirects: a cell is the service's own answer
// (an SSO start's 302), not the IdP's or the callback's behind it.
var amClient = &http.Client{Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// amDo sends r with amClient; a transport error fails the test.
func amDo(t *testing.T, in *Instance, r request) Response {
	t.Helper()
	out, err := sendWith(amClient, in.URL, r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	return out
}
