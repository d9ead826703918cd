package tests

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/infracast/auth/domain"
)

// TestClusterRevokeWhatAnotherReplicaJustIssued: a client logs in (or
// refreshes, or makes a key) through replica B and at once revokes what it
// got through replica A — a logout button pressed right after signing in,
// behind a load balancer without sticky sessions. A had not applied B's
// events yet, found nothing to revoke and answered 200 as RFC 7009 says for
// an unknown token: the revocation was lost and the credential stayed valid.
// Now A catches up first, and the credential is refused everywhere. Using
// B's fresh refresh token on A works too.
func TestClusterRevokeWhatAnotherReplicaJustIssued(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 1)
	a := d.StartReplica(t, WithRotation())
	b := d.StartReplica(t, WithRotation())
	admin := a.AdminToken()
	a.CreateUser(admin, "babbage", "babbage-password-1", map[string]string{"ci": "admin"})
	revoke := func(in *Instance, token string) {
		t.Helper()
		expectStatus(t, "revoke", in.Do("POST", "/api/v1/auth/revoke", "", map[string]string{"token": token}), http.StatusOK)
	}
	refresh := func(in *Instance, token string) Response {
		return in.Do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": token})
	}
	for i := range 15 {
		// A refresh token from a login on B, revoked on A.
		l := b.Login("babbage", "babbage-password-1")
		revoke(a, l.String("refresh_token"))
		if r := refresh(b, l.String("refresh_token")); r.Status != http.StatusUnauthorized {
			t.Fatalf("round %d: the refresh token revoked on A still refreshes on B: %d %s", i, r.Status, r.Raw)
		}
		if r := b.Do("GET", "/api/v1/auth/me", l.String("token"), nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("round %d: the access token of the session revoked on A still works on B: %d", i, r.Status)
		}

		// An access token from a login on B, revoked on A.
		l = b.Login("babbage", "babbage-password-1")
		revoke(a, l.String("token"))
		if r := b.Do("GET", "/api/v1/auth/me", l.String("token"), nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("round %d: the access token revoked on A still works on B: %d", i, r.Status)
		}

		// A rotated refresh token from B: refreshed on A at once, then
		// its successor (from A) revoked on B at once.
		r := refresh(b, l.String("refresh_token"))
		expectStatus(t, "refresh on b", r, http.StatusOK)
		r = refresh(a, r.String("refresh_token"))
		expectStatus(t, fmt.Sprintf("round %d: refresh on a with the refresh token b just handed out", i), r, http.StatusOK)
		revoke(b, r.String("refresh_token"))
		if r := refresh(a, r.String("refresh_token")); r.Status != http.StatusUnauthorized {
			t.Fatalf("round %d: the refresh token revoked on B still refreshes on A: %d %s", i, r.Status, r.Raw)
		}

		// A key made on B, revoked on A by its secret.
		owner := b.Login("babbage", "babbage-password-1").String("token")
		k := b.Do("POST", "/api/v1/api-keys", owner, map[string]any{
			"name": fmt.Sprint("k-", i), "tenants": []string{"ci"}, "permissions": []string{"nodes:read"},
		})
		expectStatus(t, "create key on b", k, http.StatusCreated)
		revoke(a, k.String("key"))
		if r := b.Do("GET", "/api/v1/auth/me", k.String("key"), nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("round %d: the key revoked on A by its secret still works on B: %d", i, r.Status)
		}
	}
}

// TestUnknownSecretsAreCheapAlone: a replica with no other serving knows
// that nothing it does not hold was written elsewhere: made-up refresh
// tokens are 401 however many come (an outside check saw 503s past the
// catch-up budget of a lone replica). Revoking made-up keys still catches up
// (a replica of an older build would not announce itself), within the
// budget: 200, or 503 with Retry-After past it, nothing else.
func TestUnknownSecretsAreCheapAlone(t *testing.T) {
	t.Parallel()
	in := Start(t)
	for i := range 250 {
		r := in.Do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": fmt.Sprintf("made-up-refresh-token-%03d-xxxxxxxxxxxxxxxxxxxxxx", i)})
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("made-up refresh token %d on a lone replica: %d %s", i, r.Status, r.Raw)
		}
	}
	for i := range 250 {
		var random [32]byte
		random[0], random[1] = byte(i), byte(i>>8)
		r := in.Do("POST", "/api/v1/auth/revoke", "", map[string]string{"token": domain.FormatAPIKey(domain.KeyEnvLive, random)})
		switch {
		case r.Status == http.StatusOK:
		case r.Status == http.StatusServiceUnavailable && r.Header.Get("Retry-After") == "1":
		default:
			t.Fatalf("revoking made-up key %d: %d (Retry-After %q) %s", i, r.Status, r.Header.Get("Retry-After"), r.Raw)
		}
	}
}
