package tests

import (
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
