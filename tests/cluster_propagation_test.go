package tests

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// arrived waits (event-driven, with a deadline) until replica b has applied
// everything replica a has applied, and returns how long that took. A command
// answers only once its own replica applied its events, so after a write on
// a this is "the event has arrived at b".
func arrived(t *testing.T, a, b *Instance) time.Duration {
	t.Helper()
	start := time.Now()
	seq := a.Svc.Runner.Applied()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Svc.Runner.WaitFor(ctx, seq); err != nil {
		t.Fatalf("replica b has not applied sequence %d within 5s (applied %d)", seq, b.Svc.Runner.Applied())
	}
	return time.Since(start)
}

// accepted polls (with a deadline) until b accepts the credential, which it
// may have learnt of a moment after a issued it.
func accepted(t *testing.T, b *Instance, credential string) {
	t.Helper()
	Eventually(t, 5*time.Second, func() error {
		if r := b.Do("GET", "/api/v1/auth/me", credential, nil); r.Status != http.StatusOK {
			return Errorf("replica b refuses a live credential: %d %s", r.Status, r.Raw)
		}
		return nil
	})
}

func refused(t *testing.T, b *Instance, what, credential string) {
	t.Helper()
	r := b.Do("GET", "/api/v1/auth/me", credential, nil)
	expectBody(t, what+" on replica b, on its next request", r, http.StatusUnauthorized, bodyUnauthorized)
}

// TestClusterRevocationPropagatesToOtherReplicas: two replicas on a
// three-node NATS cluster. A revocation, a deactivation and a role removal
// accepted by replica A are enforced by replica B on its very next request
// once the event has arrived — for an access token, an API key, every
// credential of a deactivated user and a removed tenant role.
func TestClusterRevocationPropagatesToOtherReplicas(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 3)
	a := d.StartReplica(t)
	b := d.StartReplica(t)
	admin := a.AdminToken()

	newUser := func(name string) (token, key, id string) {
		t.Helper()
		// An editor in prod; an admin in ci, so that they may make keys there.
		id = a.CreateUser(admin, name, name+"-passphrase", map[string]string{"prod": "editor", "ci": "admin"})
		token = a.Login(name, name+"-passphrase").String("token")
		r := a.Do("POST", "/api/v1/api-keys", token, map[string]any{
			"name": name + "-ci", "tenants": []string{"ci"}, "permissions": []string{"nodes:read"},
		})
		expectStatus(t, "create key", r, http.StatusCreated)
		accepted(t, b, token)
		accepted(t, b, r.String("key"))
		return token, r.String("key"), id
	}
	var took []time.Duration

	t.Run("access token", func(t *testing.T) {
		token, _, _ := newUser("alice")
		expectStatus(t, "revoke on a", a.Do("POST", "/api/v1/auth/revoke", "", map[string]string{"token": token}), http.StatusOK)
		took = append(took, arrived(t, a, b))
		refused(t, b, "a revoked access token", token)
	})
	t.Run("API key", func(t *testing.T) {
		token, key, _ := newUser("bob")
		id := b.Do("GET", "/api/v1/auth/me", key, nil).String("id")
		if id == "" {
			t.Fatal("no key ID from /auth/me")
		}
		expectStatus(t, "delete key on a", a.Do("DELETE", "/api/v1/api-keys/"+id, token, nil), http.StatusNoContent)
		took = append(took, arrived(t, a, b))
		refused(t, b, "a revoked API key", key)
		accepted(t, b, token) // the owner's token stays
	})
	t.Run("deactivated user", func(t *testing.T) {
		_, key, id := newUser("carol")
		tokenFromB := b.Login("carol", "carol-passphrase").String("token") // issued by b itself
		expectStatus(t, "deactivate on a", a.Do("POST", "/api/v1/users/"+id+"/deactivate", admin, nil), http.StatusOK)
		took = append(took, arrived(t, a, b))
		refused(t, b, "a deactivated user's token", tokenFromB)
		refused(t, b, "a deactivated user's key", key)
	})
	t.Run("removed role", func(t *testing.T) {
		_, _, id := newUser("dave")
		token := b.Login("dave", "dave-passphrase").String("token")
		expectStatus(t, "verify before", verify(t, b, token, "GET", "/api/v1/tenants/prod/nodes"), http.StatusOK)
		expectStatus(t, "remove role on a", a.Do("DELETE", "/api/v1/users/"+id+"/tenants/prod", admin, nil), http.StatusOK)
		took = append(took, arrived(t, a, b))
		expectBody(t, "a removed role on replica b, on its next request",
			verify(t, b, token, "GET", "/api/v1/tenants/prod/nodes"), http.StatusForbidden, bodyForbidden)
	})
	t.Logf("event arrival on replica b after replica a answered: %v", took)
}
