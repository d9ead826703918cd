package tests

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
)

// POST /api/v1/users/{id}/activate (issue 17): an activated user signs in
// again, and nothing the deactivation stopped comes back — no session,
// access token, refresh token or API key from before it.

// TestActivateBringsNothingBack follows one user through a deactivation
// and an activation: every credential from before stays refused, new ones
// work, the key revocations are in the event log with the deactivation, and
// a second activation is a conflict.
func TestActivateBringsNothingBack(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	uid := in.CreateUser(admin, "bob", "bob-passphrase", map[string]string{"prod": "editor", "ci": "admin"})
	s1 := in.Login("bob", "bob-passphrase")
	s2 := in.Login("bob", "bob-passphrase")
	refreshed := refresh(t, in, s1.String("refresh_token"))
	expectStatus(t, "refresh before", refreshed, http.StatusOK)
	k := in.Do("POST", "/api/v1/api-keys", s1.String("token"), map[string]any{
		"name": "bob-ci", "tenants": []string{"ci"}, "permissions": []string{"nodes:read"},
	})
	expectStatus(t, "create key", k, http.StatusCreated)
	key, keyID := k.String("key"), k.String("id")
	k2 := in.Do("POST", "/api/v1/api-keys", s2.String("token"), map[string]any{
		"name": "bob-ci-2", "tenants": []string{"ci"}, "permissions": []string{"nodes:read"},
	})
	expectStatus(t, "create a second key", k2, http.StatusCreated)
	expectStatus(t, "revoke the second key", in.Do("DELETE", "/api/v1/api-keys/"+k2.String("id"), admin, nil), http.StatusNoContent)
	old := map[string]string{
		"access token": s1.String("token"), "access token of the other session": s2.String("token"),
		"access token from a refresh": refreshed.String("token"), "API key": key,
	}
	for what, cred := range old {
		expectStatus(t, what+" before", me(t, in, cred), http.StatusOK)
	}

	// Activating an active user is a conflict, and changes nothing.
	at := head(t, in)
	expectError(t, "activate an active user", in.Do("POST", "/api/v1/users/"+uid+"/activate", admin, nil), http.StatusConflict, "CONFLICT", "already active")
	if h := head(t, in); h != at {
		t.Fatalf("a refused activation appended %d events", h-at)
	}

	in.Clock.Advance(time.Minute) // distinct instants, for the access history below
	expectStatus(t, "deactivate", in.Do("POST", "/api/v1/users/"+uid+"/deactivate", admin, nil), http.StatusOK)
	in.Clock.Advance(time.Minute)
	a := in.Do("POST", "/api/v1/users/"+uid+"/activate", admin, nil)
	expectStatus(t, "activate", a, http.StatusOK)
	if a.JSON["active"] != true || a.String("id") != uid {
		t.Fatalf("activate answer: %s", a.Raw)
	}
	expectError(t, "activate again", in.Do("POST", "/api/v1/users/"+uid+"/activate", admin, nil), http.StatusConflict, "CONFLICT")

	// Nothing from before works.
	for what, cred := range old {
		expectBody(t, what+" from before the deactivation", me(t, in, cred), http.StatusUnauthorized, bodyUnauthorized)
	}
	expectBody(t, "verify with a key from before", verify(t, in, key, "GET", "/api/v1/tenants/ci/nodes"), http.StatusUnauthorized, bodyUnauthorized)
	for _, s := range []Response{s1, s2} {
		expectBody(t, "refresh token from before", refresh(t, in, s.String("refresh_token")), http.StatusUnauthorized, bodyUnauthorized)
	}
	got := in.Do("GET", "/api/v1/api-keys/"+keyID, admin, nil)
	if got.JSON["revoked"] != true {
		t.Fatalf("the key from before: %s", got.Raw)
	}

	// New ones do.
	s3 := in.Login("bob", "bob-passphrase")
	expectStatus(t, "a new session's token", me(t, in, s3.String("token")), http.StatusOK)
	expectStatus(t, "a new session's refresh", refresh(t, in, s3.String("refresh_token")), http.StatusOK)
	k3 := in.Do("POST", "/api/v1/api-keys", s3.String("token"), map[string]any{
		"name": "bob-ci-3", "tenants": []string{"ci"}, "permissions": []string{"nodes:read"},
	})
	expectStatus(t, "a new key", k3, http.StatusCreated)
	expectStatus(t, "the new key", me(t, in, k3.String("key")), http.StatusOK)
	list := in.Do("GET", "/api/v1/auth/sessions", s3.String("token"), nil)
	expectStatus(t, "sessions after the activation", list, http.StatusOK)
	if ids := sessionIDsOf(t, list); len(ids) != 1 || ids[0] != sessionOfLogin(t, in, s3) {
		t.Fatalf("sessions after the activation: %s", list.Raw)
	}

	// The event log: the deactivation revoked the live key in its batch (the
	// one revoked before it is left alone), the activation is recorded.
	envs := storedEvents(t, in.Svc)
	var deactSeq uint64
	for _, e := range envs {
		switch {
		case e.Type == domain.TypeUserDeactivated && e.AggregateID == uid:
			deactSeq = e.Sequence
		case e.Type == domain.TypeAPIKeyRevoked && e.AggregateID == keyID:
			var data domain.APIKeyRevoked
			if err := json.Unmarshal(e.Data, &data); err != nil {
				t.Fatal(err)
			}
			if data.Reason != domain.KeyRevokedOwnerDeactivated || e.Actor.ID == "" {
				t.Fatalf("the key's revocation: %+v, actor %+v", data, e.Actor)
			}
		}
	}
	if deactSeq == 0 || countEvents(envs, domain.TypeAPIKeyRevoked, keyID) != 1 ||
		countEvents(envs, domain.TypeAPIKeyRevoked, k2.String("id")) != 1 || countEvents(envs, domain.TypeUserActivated, uid) != 1 {
		t.Fatalf("events: deactivation %d, key revocations %d and %d, activations %d", deactSeq,
			countEvents(envs, domain.TypeAPIKeyRevoked, keyID), countEvents(envs, domain.TypeAPIKeyRevoked, k2.String("id")),
			countEvents(envs, domain.TypeUserActivated, uid))
	}

	// The audit log tells the key's revocation with the deactivation.
	au := in.Do("GET", "/api/v1/audit/events?subject="+keyID+"&type=apikey.revoked", admin, nil)
	expectStatus(t, "audit", au, http.StatusOK)
	if evs, _ := au.JSON["events"].([]any); len(evs) != 1 {
		t.Fatalf("audit of the key's revocation: %s", au.Raw)
	}

	// Credential checks agree, after the activation as before it: the old
	// credentials stopped at the deactivation, the new ones are usable, and
	// the user had no access between the deactivation and the activation.
	deactivated := lastEventOf(t, in, admin, domain.TypeUserDeactivated, uid)
	activated := lastEventOf(t, in, admin, domain.TypeUserActivated, uid)
	expectVerdict(t, "an access token from before", credCheck(t, in, admin, map[string]string{"token": s1.String("token")}), "access_token", false, "user_deactivated", deactivated, "")
	expectVerdict(t, "a refresh token from before", credCheck(t, in, admin, map[string]string{"token": s2.String("refresh_token")}), "refresh_token", false, "user_deactivated", deactivated, "")
	expectVerdict(t, "an access token from before, just before the deactivation",
		credCheck(t, in, admin, map[string]string{"token": s1.String("token"), "at": before(deactivated, t)}), "access_token", true, "", nil, "")
	expectVerdict(t, "a key from before", credCheck(t, in, admin, map[string]string{"key": key}), "api_key", false, "owner_deactivated", deactivated, "")
	expectVerdict(t, "a token of a session started since", credCheck(t, in, admin, map[string]string{"token": s3.String("token")}), "access_token", true, "", nil, "")
	expectVerdict(t, "a key created since", credCheck(t, in, admin, map[string]string{"key": k3.String("key")}), "api_key", true, "", nil, "")
	for at, want := range map[string]int{before(deactivated, t): 1, ts(evTime(t, deactivated)): 0, before(activated, t): 0, ts(evTime(t, activated)): 1} {
		r := in.Do("GET", "/api/v1/users/"+uid+"/access?at="+url.QueryEscape(at), admin, nil)
		expectStatus(t, "access at "+at, r, http.StatusOK)
		if tenants, _ := r.JSON["tenants"].([]any); (len(tenants) > 0) != (want == 1) {
			t.Fatalf("access at %s (deactivated %v, activated %v): %s", at, deactivated["time"], activated["time"], r.Raw)
		}
	}
}

// sessionOfLogin is the session ID of a login's tokens (from /auth/me).
func sessionOfLogin(t *testing.T, in *Instance, login Response) string {
	t.Helper()
	r := me(t, in, login.String("token"))
	expectStatus(t, "me", r, http.StatusOK)
	return r.String("session_id")
}

// bodyActivateByPlatformAdmin: a tenant admin's activation of a user it
// manages that no tenant admin deactivated says why, not only 403.
const bodyActivateByPlatformAdmin = `{"error":{"code":"FORBIDDEN","message":"Deactivated by a platform admin (or a SCIM connection): only a platform admin may activate this user"}}`

// TestActivateWho: who may activate is who may deactivate — and a tenant
// admin only a user a tenant admin deactivated: one a platform admin
// deactivated (a customer offboarded with its people keeping their roles)
// is brought back by a platform admin only, also by an admin of a tenant
// whose name went to another customer (outside check 20t, its
// TestAuditOffboardAcme7: the old person signed in again).
func TestActivateWho(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	in.CreateUser(admin, "pat", "pat-passphrase", map[string]string{"prod": "admin"})
	both := in.CreateUser(admin, "both", "both-passphrase", map[string]string{"prod": "viewer", "staging": "viewer"})
	onlyProd := in.CreateUser(admin, "prodonly", "prodonly-passphrase", map[string]string{"prod": "viewer"})
	other := in.CreateUser(admin, "other", "other-passphrase", map[string]string{"staging": "viewer"})
	for _, id := range []string{both, onlyProd, other} {
		expectStatus(t, "deactivate", in.Do("POST", "/api/v1/users/"+id+"/deactivate", admin, nil), http.StatusOK)
	}
	pat := in.Login("pat", "pat-passphrase").String("token")
	expectBody(t, "a tenant admin, a user also in another tenant", in.Do("POST", "/api/v1/users/"+both+"/activate", pat, nil), http.StatusForbidden, bodyForbidden)
	expectError(t, "a tenant admin, a user of another tenant", in.Do("POST", "/api/v1/users/"+other+"/activate", pat, nil), http.StatusNotFound, "NOT_FOUND")
	expectError(t, "an unknown user", in.Do("POST", "/api/v1/users/user-01J00000000000000000000000/activate", admin, nil), http.StatusNotFound, "NOT_FOUND")
	expectBody(t, "no token", in.Do("POST", "/api/v1/users/"+onlyProd+"/activate", "", nil), http.StatusUnauthorized, bodyUnauthorized)
	expectBody(t, "a tenant admin, a user of its tenant only a platform admin deactivated",
		in.Do("POST", "/api/v1/users/"+onlyProd+"/activate", pat, nil), http.StatusForbidden, bodyActivateByPlatformAdmin)
	if in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "prodonly", "password": "prodonly-passphrase"}).Status == http.StatusOK {
		t.Fatal("the user a platform admin deactivated signs in")
	}
	// One the tenant admin deactivated, it activates; deactivated again by
	// a platform admin after that, only a platform admin does.
	expectStatus(t, "a platform admin activates", in.Do("POST", "/api/v1/users/"+onlyProd+"/activate", admin, nil), http.StatusOK)
	expectStatus(t, "a tenant admin deactivates", in.Do("POST", "/api/v1/users/"+onlyProd+"/deactivate", pat, nil), http.StatusOK)
	r := in.Do("POST", "/api/v1/users/"+onlyProd+"/activate", pat, nil)
	expectStatus(t, "a tenant admin, a user of its tenant only it deactivated", r, http.StatusOK)
	if r.JSON["active"] != true {
		t.Fatalf("activate: %s", r.Raw)
	}
	in.Login("prodonly", "prodonly-passphrase")
	expectStatus(t, "a platform admin deactivates", in.Do("POST", "/api/v1/users/"+onlyProd+"/deactivate", admin, nil), http.StatusOK)
	expectBody(t, "a tenant admin, the user a platform admin deactivated again",
		in.Do("POST", "/api/v1/users/"+onlyProd+"/activate", pat, nil), http.StatusForbidden, bodyActivateByPlatformAdmin)
	// The checker's scenario: a platform admin offboards acme by
	// deactivating its people (who keep their roles); acme's name goes to
	// a new customer, whose admin sees the old account but cannot bring it
	// back.
	old := in.CreateUser(admin, "oldacme", "old-acme-pass-1", map[string]string{"acme": "editor"})
	expectStatus(t, "offboard: deactivate", in.Do("POST", "/api/v1/users/"+old+"/deactivate", admin, nil), http.StatusOK)
	in.CreateUser(admin, "newacme", "new-acme-pass-1", map[string]string{"acme": "admin"})
	newAdmin := in.Login("newacme", "new-acme-pass-1").String("token")
	expectBody(t, "the new customer's admin activates the old person", in.Do("POST", "/api/v1/users/"+old+"/activate", newAdmin, nil), http.StatusForbidden, bodyActivateByPlatformAdmin)
	if in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "oldacme", "password": "old-acme-pass-1"}).Status == http.StatusOK {
		t.Fatal("the old customer's person signs in again")
	}
	expectStatus(t, "a platform admin", in.Do("POST", "/api/v1/users/"+both+"/activate", admin, nil), http.StatusOK)
	in.Login("both", "both-passphrase")
}

// TestActivateAfterAPlatformAdminActingOtherwise: a platform admin's
// deactivation is a platform admin's however it acts — its plain session,
// its API key for every tenant or for acme only, its token scoped to acme —
// and a tenant admin of acme does not activate the user (re-check 20r6:
// all but the plain session were recorded by_tenant_admin, and a new acme
// admin activated them). A tenant admin's own key deactivates as a tenant
// admin, and that admin activates the user again.
func TestActivateAfterAPlatformAdminActingOtherwise(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	in.CreateUser(admin, "newco", "amber-lantern-55", map[string]string{"acme": "admin"})
	newco := in.Login("newco", "amber-lantern-55").String("token")
	key := func(token string, tenants ...string) string {
		t.Helper()
		r := in.Do("POST", "/api/v1/api-keys", token, map[string]any{"name": "ops-" + tenants[0], "tenants": tenants, "permissions": []string{"admin:*"}})
		expectStatus(t, "create a key", r, http.StatusCreated)
		return r.String("key")
	}
	scoped := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": AdminUser, "password": AdminPassword, "tenant": "acme"})
	expectStatus(t, "a platform admin's login scoped to acme", scoped, http.StatusOK)
	for i, tc := range []struct {
		by, cred string
		tenant   bool
	}{
		{"the platform admin's session", admin, false},
		{"the platform admin's * key", key(admin, "*"), false},
		{"the platform admin's acme key", key(admin, "acme"), false},
		{"the platform admin's token scoped to acme", scoped.String("token"), false},
		{"the acme admin's own key", key(newco, "acme"), true},
	} {
		v := in.CreateUser(admin, "v"+string(rune('a'+i)), "copper-river-82", map[string]string{"acme": "viewer"})
		expectStatus(t, "deactivate by "+tc.by, in.Do("POST", "/api/v1/users/"+v+"/deactivate", tc.cred, nil), http.StatusOK)
		var data domain.UserDeactivated
		for _, e := range storedEvents(t, in.Svc) {
			if e.Type == domain.TypeUserDeactivated && e.AggregateID == v {
				if err := json.Unmarshal(e.Data, &data); err != nil {
					t.Fatal(err)
				}
			}
		}
		if data.ByTenantAdmin != tc.tenant {
			t.Errorf("deactivated by %s: by_tenant_admin %v, want %v", tc.by, data.ByTenantAdmin, tc.tenant)
		}
		// The user as acme's admin sees it tells whether it may activate
		// it (the console offers Activate by it), and the refusal says why.
		seen := in.Do("GET", "/api/v1/users/"+v, newco, nil)
		if by, ok := seen.JSON["deactivated_by_tenant_admin"].(bool); !ok || by != tc.tenant {
			t.Errorf("deactivated by %s, the user as acme's admin sees it: %s", tc.by, seen.Raw)
		}
		r := in.Do("POST", "/api/v1/users/"+v+"/activate", newco, nil)
		if tc.tenant {
			expectStatus(t, "deactivated by "+tc.by+", acme's admin activates", r, http.StatusOK)
			if _, ok := r.JSON["deactivated_by_tenant_admin"]; ok {
				t.Errorf("an active user with deactivated_by_tenant_admin: %s", r.Raw)
			}
		} else {
			expectBody(t, "deactivated by "+tc.by+", acme's admin activates", r, http.StatusForbidden, bodyActivateByPlatformAdmin)
		}
	}
}
