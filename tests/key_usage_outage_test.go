package tests

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/http/service"
)

// TestKeyUsageSurvivesANATSOutage: a key used while NATS is down still gets
// its last_used_at once NATS is back. The failed append is logged and
// counted (infracast_background_errors_total{task="key_usage"}) and retried
// by the next flush, never dropped silently.
func TestKeyUsageSurvivesANATSOutage(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 1)
	logs := &LogBuffer{}
	in := StartLogged(t, logs, d.Replica(), func(c *service.Config) { c.KeyUsageInterval = 20 * time.Millisecond })
	admin := in.AdminToken()
	kr := in.Do("POST", "/api/v1/api-keys", admin, map[string]any{"name": "ci", "tenants": []string{"prod"}, "permissions": []string{"nodes:read"}})
	expectStatus(t, "create key", kr, http.StatusCreated)
	id, key := kr.String("id"), kr.String("key")

	d.NATS.StopAll()
	waitDisconnected(t, in)
	expectStatus(t, "key with NATS down", in.Do("GET", "/api/v1/auth/me", key, nil), http.StatusOK)
	Eventually(t, 30*time.Second, func() error {
		if !strings.Contains(logs.String(), "recording API key usage failed") {
			return Errorf("no log line about the failed usage record yet")
		}
		return nil
	})
	m := in.Do("GET", "/metrics", "", nil)
	if !strings.Contains(string(m.Raw), `infracast_background_errors_total{task="key_usage"}`) {
		t.Fatalf("the failure is not counted in /metrics:\n%s", m.Raw)
	}
	if v := in.Do("GET", "/api/v1/api-keys/"+id, admin, nil).JSON["last_used_at"]; v != nil {
		t.Fatalf("last_used_at %v recorded while NATS was down", v)
	}

	if err := d.NATS.RestartAll(); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 30*time.Second, func() error {
		if v := in.Do("GET", "/api/v1/api-keys/"+id, admin, nil).JSON["last_used_at"]; v == nil {
			return Errorf("last_used_at still null after NATS came back")
		}
		return nil
	})
}
