package tests

import (
	"net/http"
	"strings"
	"testing"
)

// TestTenantAdminSeesOnlyItsTenants: a tenant admin of prod sees a user
// of prod and of another tenant, and a key of both, without the other
// tenant's name or the role held there — in the users list, a user, the
// answer to a role change, the keys list and a key — as the audit log
// leaves them out (outside check 17a: every answer named the other
// tenant); other_tenants says there are others, for the console to offer
// only what the API allows. The platform admin, the user themselves and
// the key's owner see every tenant.
func TestTenantAdminSeesOnlyItsTenants(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	r := in.Do("POST", "/api/v1/users", admin, map[string]any{"username": "pat", "email": "pat@example.com", "password": "pat-passphrase-1",
		"tenants": []map[string]string{{"id": "prod", "role": "viewer"}, {"id": "secret-tenant", "role": "editor"}}})
	expectStatus(t, "create pat", r, http.StatusCreated)
	patID := r.String("id")
	in.CreateUser(admin, "mike", "mike-passphrase-1", map[string]string{"prod": "admin"})
	mike := in.Login("mike", "mike-passphrase-1").String("token")
	key := in.Do("POST", "/api/v1/api-keys", admin, map[string]any{"name": "both", "tenants": []string{"prod", "secret-tenant"}})
	expectStatus(t, "a key of both tenants", key, http.StatusCreated)
	keyID := key.String("id")

	for what, res := range map[string]Response{
		"the users list": in.Do("GET", "/api/v1/users?q=pat", mike, nil),
		"the user":       in.Do("GET", "/api/v1/users/"+patID, mike, nil),
		"a role change":  in.Do("PUT", "/api/v1/users/"+patID+"/tenants/prod", mike, map[string]string{"role": "editor"}),
		"the keys list":  in.Do("GET", "/api/v1/api-keys", mike, nil),
		"the key":        in.Do("GET", "/api/v1/api-keys/"+keyID, mike, nil),
	} {
		expectStatus(t, what, res, http.StatusOK)
		if strings.Contains(string(res.Raw), "secret-tenant") {
			t.Errorf("%s, as prod's admin sees it, names the other tenant: %s", what, res.Raw)
		}
		if !strings.Contains(string(res.Raw), `"prod"`) {
			t.Errorf("%s, as prod's admin sees it, lacks prod: %s", what, res.Raw)
		}
		// That there are others is said (the console offers no
		// deactivation, no rotation), not which.
		if !strings.Contains(string(res.Raw), `"other_tenants":true`) {
			t.Errorf("%s, as prod's admin sees it, does not say there are other tenants: %s", what, res.Raw)
		}
	}
	pat := in.Login("pat", "pat-passphrase-1").String("token")
	for what, res := range map[string]Response{
		"the user, to the platform admin": in.Do("GET", "/api/v1/users/"+patID, admin, nil),
		"the user, to themselves":         in.Do("GET", "/api/v1/users/"+patID, pat, nil),
		"the key, to its owner":           in.Do("GET", "/api/v1/api-keys/"+keyID, admin, nil),
	} {
		expectStatus(t, what, res, http.StatusOK)
		if !strings.Contains(string(res.Raw), "secret-tenant") || strings.Contains(string(res.Raw), "other_tenants") {
			t.Errorf("%s lacks the other tenant, or says there are others: %s", what, res.Raw)
		}
	}
}
