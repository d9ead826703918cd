package tests

import (
	"net/http"
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
