package tests

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
)

// TestClusterFreshTokenWorksOnOtherReplicaAtOnce: a client logs in through
// replica A and its very next request lands on replica B. B may not have
// applied session.started yet; for a token it can verify that was issued
// moments ago, B waits for that session's events instead of refusing — no
// polling by the client.
func TestClusterFreshTokenWorksOnOtherReplicaAtOnce(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 3)
	a := d.StartReplica(t)
	b := d.StartReplica(t)
	admin := a.AdminToken()
	a.CreateUser(admin, "hopper", "hopper-password-1", map[string]string{"prod": "viewer"})
	for i := 0; i < 20; i++ {
		tok := a.Login("hopper", "hopper-password-1").String("token")
		if r := b.Do("GET", "/api/v1/auth/me", tok, nil); r.Status != http.StatusOK {
			t.Fatalf("login %d on A, first request on B: %d %s", i, r.Status, r.Raw)
		}
	}
	// A forged session in a fresh, validly signed token is still refused.
	if r := b.Do("GET", "/api/v1/auth/me", "not-a-token", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("garbage on B: %d", r.Status)
	}
}

// TestClusterFreshResourceFoundOnOtherReplica: behind a load balancer
// without sticky sessions, what a client created through replica B a moment
// ago is found by its next request on replica A — a key read, used and
// deleted, a user who logs in and is read, a session revoked, the new key and
// user in A's lists — not answered 401 or 404 (or left out) because A has
// not applied it yet. An ID that exists nowhere is still 404, and one that
// could not be an ID is not even asked for.
func TestClusterFreshResourceFoundOnOtherReplica(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 1)
	a := d.StartReplica(t)
	b := d.StartReplica(t)
	admin := a.AdminToken()
	a.CreateUser(admin, "lovelace", "lovelace-password-1", map[string]string{"ci": "admin"})
	owner := a.Login("lovelace", "lovelace-password-1").String("token")
	for i := range 20 {
		r := b.Do("POST", "/api/v1/api-keys", owner, map[string]any{
			"name": fmt.Sprint("fresh-", i), "tenants": []string{"ci"}, "permissions": []string{"nodes:read"},
		})
		expectStatus(t, "create key on b", r, http.StatusCreated)
		id := r.String("id")
		expectStatus(t, "the new key on a", a.Do("GET", "/api/v1/api-keys/"+id, owner, nil), http.StatusOK)
		expectStatus(t, "the new key used on a", a.Do("GET", "/api/v1/auth/me", r.String("key"), nil), http.StatusOK)

		r = b.Do("POST", "/api/v1/api-keys", owner, map[string]any{
			"name": fmt.Sprint("gone-", i), "tenants": []string{"ci"}, "permissions": []string{"nodes:read"},
		})
		expectStatus(t, "create key on b", r, http.StatusCreated)
		expectStatus(t, "delete the new key on a", a.Do("DELETE", "/api/v1/api-keys/"+r.String("id"), owner, nil), http.StatusNoContent)

		uid := b.CreateUser(admin, fmt.Sprint("fresh-user-", i), "fresh-user-password-1", map[string]string{"ci": "viewer"})
		expectStatus(t, "the new user logs in on a", a.Do("POST", "/api/v1/auth/token", "",
			map[string]string{"username": fmt.Sprint("fresh-user-", i), "password": "fresh-user-password-1"}), http.StatusOK)
		expectStatus(t, "the new user on a", a.Do("GET", "/api/v1/users/"+uid, admin, nil), http.StatusOK)

		// Lists too: what b made a moment ago is in a's next list.
		kid := b.Do("POST", "/api/v1/api-keys", owner, map[string]any{
			"name": fmt.Sprint("listed-", i), "tenants": []string{"ci"}, "permissions": []string{"nodes:read"},
		}).String("id")
		if !listed(a.Do("GET", "/api/v1/api-keys?limit=100", owner, nil), "api_keys", kid) {
			t.Fatalf("round %d: the key b just made is not in a's list", i)
		}
		lid := b.CreateUser(admin, fmt.Sprint("listed-user-", i), "fresh-user-password-1", map[string]string{"ci": "viewer"})
		if !listed(a.Do("GET", "/api/v1/users?limit=100", admin, nil), "users", lid) {
			t.Fatalf("round %d: the user b just made is not in a's list", i)
		}

		token := b.Login(fmt.Sprint("fresh-user-", i), "fresh-user-password-1").String("token")
		sid := b.Do("GET", "/api/v1/auth/me", token, nil).String("session_id")
		if sid == "" {
			t.Fatal("no session_id in /auth/me")
		}
		expectStatus(t, "revoke the new session on a", a.Do("DELETE", "/api/v1/users/"+uid+"/sessions/"+sid, admin, nil), http.StatusNoContent)
	}
	for _, id := range []string{"key-01M0000000000000000000000", "key.with.dots", "key-*", "key->"} {
		expectStatus(t, "no such key "+id, a.Do("GET", "/api/v1/api-keys/"+url.PathEscape(id), admin, nil), http.StatusNotFound)
	}
}

// listed reports whether a list answer holds an item with the ID.
func listed(r Response, field, id string) bool {
	items, _ := r.JSON[field].([]any)
	for _, it := range items {
		if m, ok := it.(map[string]any); ok && m["id"] == id {
			return true
		}
	}
	return false
}
