package tests

import (
	"fmt"
	"strings"
	"testing"
)

const (
	prodNodes    = "/api/v1/tenants/prod/nodes"
	stagingNodes = "/api/v1/tenants/staging/nodes"
)

// TestRoleChangeAppliesToIssuedToken: permissions come from the live read
// model, so a grant or a revocation changes what an already-issued token may
// do on its very next request.
func TestRoleChangeAppliesToIssuedToken(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	uid := in.CreateUser(admin, "carol", "carol-passphrase", map[string]string{"prod": "viewer"})
	tok := in.Login("carol", "carol-passphrase").String("token")

	// viewer: read yes, write no.
	v := verify(t, in, tok, "GET", prodNodes)
	expectBody(t, "viewer GET nodes", v, 200, "") // allowed: no body
	if got := v.Header.Get("X-Infracast-Permissions"); got != "nodes:read,findings:read,jobs:read,reports:read" {
		t.Fatalf("viewer permissions header %q", got)
	}
	expectBody(t, "viewer POST nodes (verify)", verify(t, in, tok, "POST", prodNodes), 403, bodyForbidden)
	expectBody(t, "viewer POST nodes", in.Do("POST", prodNodes, tok, map[string]string{"name": "n1"}), 403, bodyForbidden)
	expectBody(t, "viewer GET nodes", in.Do("GET", prodNodes, tok, nil), 404, bodyNoUpstream)

	// Grant editor: the same token may now write.
	g := in.Do("PUT", "/api/v1/users/"+uid+"/tenants/prod", admin, map[string]string{"role": "editor"})
	expectStatus(t, "grant editor", g, 200)
	v = verify(t, in, tok, "POST", prodNodes)
	expectStatus(t, "editor POST nodes (verify), same token", v, 200)
	if !strings.Contains(v.Header.Get("X-Infracast-Permissions"), "nodes:write") {
		t.Fatalf("editor permissions header %q", v.Header.Get("X-Infracast-Permissions"))
	}
	expectBody(t, "editor POST nodes, same token", in.Do("POST", prodNodes, tok, map[string]string{"name": "n1"}), 404, bodyNoUpstream)
	expectBody(t, "editor on an admin-only route", verify(t, in, tok, "DELETE", "/api/v1/tenants/prod/settings"), 403, bodyForbidden)
	m := me(t, in, tok)
	if ts, _ := m.JSON["tenants"].([]any); len(ts) != 1 || ts[0].(map[string]any)["role"] != "editor" {
		t.Fatalf("me after grant: %s", m.Raw)
	}

	// Remove the role: nothing in prod any more.
	d := in.Do("DELETE", "/api/v1/users/"+uid+"/tenants/prod", admin, nil)
	expectStatus(t, "revoke role", d, 200)
	expectBody(t, "GET nodes after role removal (verify)", verify(t, in, tok, "GET", prodNodes), 403, bodyForbidden)
	expectBody(t, "GET nodes after role removal", in.Do("GET", prodNodes, tok, nil), 403, bodyForbidden)
	expectStatus(t, "the token itself is still valid", me(t, in, tok), 200)

	// A tenant where the user never had a role.
	expectBody(t, "tenant without a role (verify)", verify(t, in, tok, "GET", "/api/v1/tenants/other/nodes"), 403, bodyForbidden)
	expectBody(t, "tenant without a role", in.Do("GET", "/api/v1/tenants/other/nodes", tok, nil), 403, bodyForbidden)
	expectBody(t, "verify outside the tenant routes", verify(t, in, tok, "GET", "/api/v1/users"), 403, bodyForbidden)
}

// TestTenantScopedToken: a token scoped at login to "prod" cannot act in
// "staging", although the user holds a role there.
func TestTenantScopedToken(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	in.CreateUser(admin, "dave", "dave-passphrase", map[string]string{"prod": "editor", "staging": "editor"})

	r := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "dave", "password": "dave-passphrase", "tenant": "prod"})
	expectStatus(t, "scoped login", r, 200)
	scoped := r.String("token")
	expectStatus(t, "scoped token in prod", verify(t, in, scoped, "POST", prodNodes), 200)
	expectBody(t, "scoped token in staging (verify)", verify(t, in, scoped, "GET", stagingNodes), 403, bodyForbidden)
	expectBody(t, "scoped token in staging", in.Do("GET", stagingNodes, scoped, nil), 403, bodyForbidden)
	m := me(t, in, scoped)
	if m.String("tenant") != "prod" {
		t.Fatalf("me of a scoped token: %s", m.Raw)
	}
	if ts, _ := m.JSON["tenants"].([]any); len(ts) != 1 || ts[0].(map[string]any)["id"] != "prod" {
		t.Fatalf("me of a scoped token lists %s", m.Raw)
	}

	// Its refreshes keep the scope.
	rr := refresh(t, in, r.String("refresh_token"))
	expectStatus(t, "refresh scoped", rr, 200)
	expectBody(t, "refreshed scoped token in staging", verify(t, in, rr.String("token"), "GET", stagingNodes), 403, bodyForbidden)
	expectStatus(t, "refreshed scoped token in prod", verify(t, in, rr.String("token"), "GET", prodNodes), 200)

	// An unscoped token of the same user acts in both.
	all := in.Login("dave", "dave-passphrase").String("token")
	expectStatus(t, "unscoped in staging", verify(t, in, all, "GET", stagingNodes), 200)
	expectStatus(t, "unscoped in prod", verify(t, in, all, "GET", prodNodes), 200)

	// A platform admin's scoped token is no platform admin outside the scope.
	ar := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": AdminUser, "password": AdminPassword, "tenant": "prod"})
	expectStatus(t, "admin scoped login", ar, 200)
	expectBody(t, "scoped admin in staging", verify(t, in, ar.String("token"), "GET", stagingNodes), 403, bodyForbidden)
	expectBody(t, "scoped admin creating users", in.Do("POST", "/api/v1/users", ar.String("token"),
		map[string]any{"username": "x1", "email": "x1@example.com", "password": "x1-password"}), 403, bodyForbidden)

	// Scoping a login to a tenant without a role is refused.
	no := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "dave", "password": "dave-passphrase", "tenant": "elsewhere"})
	expectBody(t, "login scoped to a tenant without a role", no, 403, bodyForbidden)
}

// scopedLogin logs user in scoped to tenant and returns the answer.
func scopedLogin(t testing.TB, in *Instance, user, password, tenant string) Response {
	t.Helper()
	r := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": user, "password": password, "tenant": tenant})
	expectStatus(t, "login scoped to "+tenant, r, 200)
	return r
}

// TestTenantScopedTokenAndKeys: a scoped token acts on API keys only in its
// tenant, its own user's keys included — an outside check revoked the
// user's prod key with a token scoped to staging (where the user is a
// viewer), and a platform admin's prod-scoped token revoked a "*" key.
func TestTenantScopedTokenAndKeys(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	in.CreateUser(admin, "both", "both-passphrase", map[string]string{"prod": "admin", "staging": "viewer"})
	both := in.Login("both", "both-passphrase").String("token")
	n := 0
	newKey := func(token string, tenants ...string) (string, string) {
		t.Helper()
		n++
		r := in.Do("POST", "/api/v1/api-keys", token, map[string]any{"name": fmt.Sprintf("k%d", n), "tenants": tenants, "permissions": []string{"nodes:read"}})
		expectStatus(t, "create key", r, 201)
		return r.String("id"), r.String("key")
	}
	prodKey, prodSecret := newKey(both, "prod")
	staging := scopedLogin(t, in, "both", "both-passphrase", "staging").String("token")
	for _, r := range []struct{ method, path string }{
		{"GET", "/api/v1/api-keys/" + prodKey}, {"DELETE", "/api/v1/api-keys/" + prodKey}, {"POST", "/api/v1/api-keys/" + prodKey + "/rotate"},
	} {
		if got := in.Do(r.method, r.path, staging, nil); got.Status != 404 && got.Status != 403 {
			t.Fatalf("%s %s with a token scoped to staging: %d %s", r.method, r.path, got.Status, got.Raw)
		}
	}
	expectStatus(t, "the prod key still works", verify(t, in, prodSecret, "GET", prodNodes), 200)
	// Nor does it read the prod key's access, or its user's prod grants.
	expectError(t, "the prod key's access, scoped to staging", in.Do("GET", "/api/v1/api-keys/"+prodKey+"/access", staging, nil), 404, "NOT_FOUND")
	bothID := me(t, in, both).String("id")
	if pt := principalTenants(t, in.Do("GET", "/api/v1/users/"+bothID+"/access", staging, nil)); len(pt) != 1 || pt["staging"] == nil {
		t.Fatalf("the user's own access, scoped to staging: %v", pt)
	}
	prod := scopedLogin(t, in, "both", "both-passphrase", "prod").String("token")
	expectStatus(t, "its own prod key with a prod-scoped token", in.Do("DELETE", "/api/v1/api-keys/"+prodKey, prod, nil), 204)

	// A platform admin's prod-scoped token: not a "*" key, nor one that
	// also reaches staging; a prod key yes.
	allKey, _ := newKey(admin, "*")
	twoKey, _ := newKey(admin, "prod", "staging")
	onlyKey, _ := newKey(admin, "prod")
	scopedAdmin := scopedLogin(t, in, AdminUser, AdminPassword, "prod").String("token")
	for _, id := range []string{allKey, twoKey} {
		if got := in.Do("DELETE", "/api/v1/api-keys/"+id, scopedAdmin, nil); got.Status != 403 && got.Status != 404 {
			t.Fatalf("revoke %s with a prod-scoped admin token: %d %s", id, got.Status, got.Raw)
		}
	}
	expectStatus(t, "a prod key with a prod-scoped admin token", in.Do("DELETE", "/api/v1/api-keys/"+onlyKey, scopedAdmin, nil), 204)
	for _, id := range []string{allKey, twoKey} {
		if k := in.Do("GET", "/api/v1/api-keys/"+id, admin, nil); k.JSON["revoked_at"] != nil || k.Status != 200 {
			t.Fatalf("key %s after the refused revocations: %d %s", id, k.Status, k.Raw)
		}
	}
}

// TestTenantScopedTokenEndsWithItsRole: a token scoped to a tenant stops
// (401) once its user holds no role there, and its refresh token issues no
// new one — before, both went on (an outside check), though the credential
// check called them role_revoked.
func TestTenantScopedTokenEndsWithItsRole(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	id := in.CreateUser(admin, "erin", "erin-passphrase", map[string]string{"prod": "admin", "staging": "viewer"})
	scoped := scopedLogin(t, in, "erin", "erin-passphrase", "staging")
	expectStatus(t, "scoped token", me(t, in, scoped.String("token")), 200)
	expectStatus(t, "remove the staging role", in.Do("DELETE", "/api/v1/users/"+id+"/tenants/staging", admin, nil), 200)
	expectBody(t, "scoped token after its role went", me(t, in, scoped.String("token")), 401, bodyUnauthorized)
	before := head(t, in)
	expectError(t, "refresh after the role went", refresh(t, in, scoped.String("refresh_token")), 401, "UNAUTHORIZED")
	if h := head(t, in); h != before {
		t.Fatalf("the refused refresh appended %d events", h-before)
	}
	expectStatus(t, "an unscoped token of the user", me(t, in, in.Login("erin", "erin-passphrase").String("token")), 200)
}

// TestUserSessionsToWhoManagesTheUser: a user's sessions (addresses,
// browsers) are listed to the user and to who may manage it, not to every
// tenant admin who sees it — a platform admin's or a shared user's.
func TestUserSessionsToWhoManagesTheUser(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	in.CreateUser(admin, "prodadmin", "prodadmin-passphrase", map[string]string{"prod": "admin"})
	shared := in.CreateUser(admin, "shared", "shared-passphrase", map[string]string{"prod": "viewer", "staging": "admin"})
	only := in.CreateUser(admin, "onlyprod", "onlyprod-passphrase", map[string]string{"prod": "viewer"})
	r := in.Do("POST", "/api/v1/users", admin, map[string]any{"username": "root2", "email": "root2@example.com",
		"password": "root2-passphrase", "roles": []string{"admin"}, "tenants": []map[string]string{{"id": "prod", "role": "viewer"}}})
	expectStatus(t, "second platform admin", r, 201)
	root2 := r.String("id")
	for _, u := range []string{"shared", "onlyprod", "root2"} {
		in.Login(u, u+"-passphrase")
	}
	pa := in.Login("prodadmin", "prodadmin-passphrase").String("token")
	for _, id := range []string{shared, root2} {
		expectStatus(t, "the user itself is visible", in.Do("GET", "/api/v1/users/"+id, pa, nil), 200)
		expectBody(t, "sessions of a user prodadmin may not manage", in.Do("GET", "/api/v1/users/"+id+"/sessions", pa, nil), 403, bodyForbidden)
	}
	if s := in.Do("GET", "/api/v1/users/"+only+"/sessions", pa, nil); s.Status != 200 || len(s.JSON["sessions"].([]any)) != 1 {
		t.Fatalf("sessions of a prod-only user: %d %s", s.Status, s.Raw)
	}
	self := in.Login("shared", "shared-passphrase").String("token")
	expectStatus(t, "the user's own", in.Do("GET", "/api/v1/users/"+shared+"/sessions", self, nil), 200)
}

// TestTenantScopedTokenLeavesTheAccountAlone: a token scoped to a tenant
// acts only there — not on the account, whose password, second factors
// and other sessions reach every tenant of the user. Before, a token
// scoped to staging listed and ended its user's prod and unscoped sessions,
// changed the password (ending every other session) and enrolled TOTP.
func TestTenantScopedTokenLeavesTheAccountAlone(t *testing.T) {
	t.Parallel()
	in := Start(t)
	id := in.CreateUser(in.AdminToken(), "sam", "sam-passphrase", map[string]string{"prod": "admin", "staging": "viewer"})
	all := in.Login("sam", "sam-passphrase")
	prod := scopedLogin(t, in, "sam", "sam-passphrase", "prod")
	staging := scopedLogin(t, in, "sam", "sam-passphrase", "staging")
	allSID, prodSID, stagingSID := sessionOf(t, in, all.String("refresh_token")), sessionOf(t, in, prod.String("refresh_token")), sessionOf(t, in, staging.String("refresh_token"))
	st := staging.String("token")
	if ids := sessionIDsOf(t, in.Do("GET", "/api/v1/auth/sessions", st, nil)); len(ids) != 1 || ids[0] != stagingSID {
		t.Fatalf("the sessions a staging-scoped token lists: %v", ids)
	}
	if ids := sessionIDsOf(t, in.Do("GET", "/api/v1/users/"+id+"/sessions", st, nil)); len(ids) != 1 || ids[0] != stagingSID {
		t.Fatalf("the sessions a staging-scoped token lists (users route): %v", ids)
	}
	for _, sid := range []string{allSID, prodSID} {
		expectError(t, "end another tenant's session", in.Do("DELETE", "/api/v1/auth/sessions/"+sid, st, nil), 404, "NOT_FOUND")
		expectError(t, "end another tenant's session (users route)", in.Do("DELETE", "/api/v1/users/"+id+"/sessions/"+sid, st, nil), 404, "NOT_FOUND")
	}
	expectError(t, "end every session", in.Do("DELETE", "/api/v1/users/"+id+"/sessions", st, nil), 403, "FORBIDDEN", "scoped to a tenant")
	expectError(t, "change the password", in.Do("POST", "/api/v1/users/"+id+"/password", st,
		map[string]string{"current_password": "sam-passphrase", "password": "sam-passphrase-2"}), 403, "FORBIDDEN", "scoped to a tenant")
	expectError(t, "enrol TOTP", in.Do("POST", "/api/v1/auth/mfa/totp", st, nil), 403, "FORBIDDEN", "scoped to a tenant")
	for _, tok := range []string{all.String("token"), prod.String("token")} {
		expectStatus(t, "the other sessions", me(t, in, tok), 200)
	}
	// The unscoped token may.
	expectStatus(t, "the unscoped token ends the staging session", in.Do("DELETE", "/api/v1/auth/sessions/"+stagingSID, all.String("token"), nil), 204)
}
