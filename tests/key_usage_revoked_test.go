package tests

import (
	"net/http"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/http/service"
)

// TestKeyUseBeforeRevocationIsRecorded: a key used shortly before it is
// revoked — through another replica, or by its owner's deactivation — still
// shows that use (last_used_at, an apikey.used event). The use is noted in
// memory and written up to a flush period later; before, the domain refused
// it once the key was revoked, and the history said a leaked key was never
// used (outside check 12, audit finding 1).
func TestKeyUseBeforeRevocationIsRecorded(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 1)
	// An hour: the uses stay pending on replica a until it shuts down.
	pending := func(c *service.Config) { c.KeyUsageInterval = time.Hour }
	a := d.StartReplica(t, pending)
	b := d.StartReplica(t, pending)
	admin := a.AdminToken()
	lenaID := a.CreateUser(admin, "lena", "lena-passphrase", map[string]string{"prod": "admin"})
	lena := a.Login("lena", "lena-passphrase")
	expectStatus(t, "lena's login", lena, http.StatusOK)
	newKey := func(token, name string) (id, secret string) {
		r := a.Do("POST", "/api/v1/api-keys", token, map[string]any{"name": name, "tenants": []string{"prod"}, "permissions": []string{"nodes:read"}})
		expectStatus(t, "create "+name, r, http.StatusCreated)
		return r.String("id"), r.String("key")
	}
	leaked, leakedSecret := newKey(admin, "leaked")
	owned, ownedSecret := newKey(lena.String("token"), "owned")
	for _, secret := range []string{leakedSecret, ownedSecret} {
		expectStatus(t, "a key used on replica a", a.Do("GET", "/api/v1/auth/me", secret, nil), http.StatusOK)
	}
	usedAt := a.Clock.Now()

	// Revoked through replica b, which never saw the uses: the one key
	// directly, the other by its owner's deactivation.
	badmin := b.AdminToken()
	Eventually(t, 10*time.Second, func() error {
		if r := b.Do("DELETE", "/api/v1/api-keys/"+leaked, badmin, nil); r.Status != http.StatusNoContent {
			return Errorf("revoking the key on replica b: %d %s", r.Status, r.Raw)
		}
		return nil
	})
	Eventually(t, 10*time.Second, func() error {
		if r := b.Do("POST", "/api/v1/users/"+lenaID+"/deactivate", badmin, nil); r.Status != http.StatusOK {
			return Errorf("deactivating the key's owner on replica b: %d %s", r.Status, r.Raw)
		}
		return nil
	})
	Eventually(t, 10*time.Second, func() error {
		for _, secret := range []string{leakedSecret, ownedSecret} {
			if r := a.Do("GET", "/api/v1/auth/me", secret, nil); r.Status != http.StatusUnauthorized {
				return Errorf("a revoked key on replica a: %d", r.Status)
			}
		}
		return nil
	})

	a.Stop() // its last flush writes the pending uses, after the revocations
	for _, id := range []string{leaked, owned} {
		Eventually(t, 10*time.Second, func() error {
			k := b.Do("GET", "/api/v1/api-keys/"+id, badmin, nil)
			if k.Status != http.StatusOK {
				return Errorf("key %s: %d %s", id, k.Status, k.Raw)
			}
			if k.JSON["revoked"] != true {
				return Errorf("key %s is not revoked: %s", id, k.Raw)
			}
			v, _ := k.JSON["last_used_at"].(string)
			at, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return Errorf("key %s: last_used_at %q, want the use before its revocation: %v", id, v, err)
			}
			if d := at.Sub(usedAt); d < -time.Second || d > time.Second {
				return Errorf("key %s: last_used_at %s, want %s", id, at, usedAt)
			}
			return nil
		})
		ev := b.Do("GET", "/api/v1/audit/events?subject="+id+"&type="+domain.TypeAPIKeyUsed, badmin, nil)
		expectStatus(t, "the key's apikey.used events", ev, http.StatusOK)
		if list, _ := ev.JSON["events"].([]any); len(list) != 1 {
			t.Fatalf("key %s: %d apikey.used events in the audit log, want 1: %s", id, len(list), ev.Raw)
		}
	}
}
