package tests

import (
	"crypto/rand"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/http/service"
)

// TestReplicaCutOffAnswersUnknownFreshCredentials503: a replica that cannot
// reach NATS does not know a token or an API key made a moment ago through
// another replica, and cannot learn it: it answers 503 UNAVAILABLE with
// Retry-After — which a client, or nginx's proxy_next_upstream http_503,
// sends again (to another replica) — not 401, after which a client drops a
// credential that is good (outside check 19u: a token issued on r3 was 401
// on /auth/me and verify of the cut-off r7, a key 401 on its gateway). A
// credential the replica knows still works from its read models, and a
// made-up one is still 401.
func TestReplicaCutOffAnswersUnknownFreshCredentials503(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 1)
	a := d.StartReplica(t)
	p := startFreezer(t, strings.TrimPrefix(d.NATS.URLs()[0], "nats://"))
	b := d.StartReplica(t, func(c *service.Config) { c.NATSURLs = []string{p.URL()} })
	admin := a.AdminToken()
	a.CreateUser(admin, "cora", "cora-passphrase", map[string]string{"prod": "admin"})
	known := a.Login("cora", "cora-passphrase").String("token")
	Eventually(t, 10*time.Second, func() error {
		if r := b.Do("GET", "/api/v1/auth/me", known, nil); r.Status != http.StatusOK {
			return Errorf("b before the cut: %d %s", r.Status, r.Raw)
		}
		return nil
	})

	p.Freeze()
	fresh := a.Login("cora", "cora-passphrase").String("token")
	key := a.Do("POST", "/api/v1/api-keys", known, map[string]any{"name": "fresh", "tenants": []string{"prod"}, "permissions": []string{"nodes:read"}})
	expectStatus(t, "a key made through a", key, http.StatusCreated)

	for name, cred := range map[string]string{"a fresh token": fresh, "a fresh key": key.String("key")} {
		for _, path := range []string{"/api/v1/auth/me", "/api/v1/auth/verify/api/v1/tenants/prod/nodes"} {
			r := b.Do("GET", path, cred, nil)
			if r.Status != http.StatusServiceUnavailable || r.ErrorCode() != "UNAVAILABLE" || r.Header.Get("Retry-After") == "" {
				t.Errorf("%s on the cut-off replica, %s: %d %s %q; want 503 UNAVAILABLE with Retry-After", name, path, r.Status, r.ErrorCode(), r.Header.Get("Retry-After"))
			}
		}
	}
	expectStatus(t, "a token b knows, from its read models", b.Do("GET", "/api/v1/auth/me", known, nil), http.StatusOK)
	expectStatus(t, "a made-up token", b.Do("GET", "/api/v1/auth/me", "not-a-token", nil), http.StatusUnauthorized)

	// Once b knows it is cut off (not ready), a flood of made-up keys that
	// spends its budget of catch-ups does not turn the good key into a 401
	// (re-check 19r4: 6 of 6 tries were 401 under such a flood).
	Eventually(t, 30*time.Second, func() error {
		if status, why := readyNow(t, b); status != http.StatusServiceUnavailable {
			return Errorf("b /ready while cut off: %d %q", status, why)
		}
		return nil
	})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var random [32]byte
				_, _ = rand.Read(random[:])
				_, _ = send(b.URL, request{Method: "GET", Path: "/api/v1/auth/me", Token: domain.FormatAPIKey("live", random)})
			}
		}()
	}
	var got []int
	for range 6 {
		got = append(got, b.Do("GET", "/api/v1/auth/me", key.String("key"), nil).Status)
	}
	close(stop)
	wg.Wait()
	for _, status := range got {
		if status != http.StatusServiceUnavailable {
			t.Errorf("the fresh key on the cut-off replica during a flood of made-up keys: %v; want 503 each time", got)
			break
		}
	}
}
