package tests

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestNATSPermissionTakenAwayWhileRunning: two replicas on a nats-server
// whose user has docs/operations.md's permissions block; the server's
// configuration is reloaded without subscribe on infracast.replicas.> (the
// server drops the barrier's subscriptions), then with it again. Meanwhile
// each replica reports not ready and answers a token revoked through the
// other 503, never 200; once the permission is back they take part again
// on their own — ready, hearing each other, a revocation through one
// refused by the other at once. Re-check 20r3: the replicas stayed outside
// the barrier, ready, until restarted, and 2–8 in 100 tokens revoked through
// one were accepted by the other.
func TestNATSPermissionTakenAwayWhileRunning(t *testing.T) {
	t.Parallel()
	block := operationsPermissionsBlock(t)
	const subscribeBarrier = "\"infracast.replicas.>\", # the replica barrier\n"
	if strings.Count(block, subscribeBarrier) != 1 {
		t.Fatalf("docs/operations.md's permissions block has no subscribe line %q:\n%s", subscribeBarrier, block)
	}
	withoutBarrier := strings.Replace(block, subscribeBarrier, "\n", 1)
	ns, path := permissionsServerFile(t, block)
	reload := func(block string) {
		t.Helper()
		opts := writePermissionsConfig(t, path, block)
		opts.NoLog, opts.NoSigs = true, true
		if err := ns.ReloadOptions(opts); err != nil {
			t.Fatal(err)
		}
	}
	mk, jk := newKey(t), newKey(t)
	var aLogs, bLogs LogBuffer
	a := StartLogged(t, &aLogs, asPermissionsUser(ns, mk, jk))
	b := StartLogged(t, &bLogs, asPermissionsUser(ns, mk, jk))
	hears(t, a, 1)
	hears(t, b, 1)
	admin := a.AdminToken()
	a.CreateUser(admin, "grace", "grace-passphrase", map[string]string{"prod": "editor"})

	reload(withoutBarrier)
	for _, in := range []*Instance{a, b} {
		Eventually(t, 10*time.Second, func() error {
			if r := in.Do("GET", "/ready", "", nil); r.Status != http.StatusServiceUnavailable {
				return Errorf("%s /ready answered %d with a permission of the barrier taken away, want 503", in.URL, r.Status)
			}
			return nil
		})
	}
	token := b.Login("grace", "grace-passphrase").String("token")
	expectStatus(t, "revoke on a", a.Do("POST", "/api/v1/auth/revoke", "", map[string]string{"token": token}), http.StatusOK)
	if r := b.Do("GET", "/api/v1/auth/me", token, nil); r.Status == http.StatusOK {
		t.Fatal("replica b, outside the barrier, accepted the token a had just revoked")
	} else if r.Status != http.StatusServiceUnavailable && r.Status != http.StatusUnauthorized {
		t.Fatalf("replica b, outside the barrier: %d for a revoked token, want 503 (or 401)", r.Status)
	}
	for _, c := range []struct {
		in   *Instance
		logs *LogBuffer
	}{{a, &aLogs}, {b, &bLogs}} {
		if n := strings.Count(c.logs.String(), "NATS refused this replica's user a permission of the barrier"); n != 1 {
			t.Fatalf("%s logged the barrier's refusal %d times, want once:\n%s", c.in.URL, n, c.logs.String())
		}
	}

	reload(block)
	for _, in := range []*Instance{a, b} {
		Eventually(t, 10*time.Second, func() error {
			if r := in.Do("GET", "/ready", "", nil); r.Status != http.StatusOK {
				return Errorf("%s /ready answered %d with the permission back, want 200", in.URL, r.Status)
			}
			return nil
		})
	}
	hears(t, a, 1)
	hears(t, b, 1)
	for i := range 10 {
		token := b.Login("grace", "grace-passphrase").String("token")
		expectStatus(t, "revoke on a", a.Do("POST", "/api/v1/auth/revoke", "", map[string]string{"token": token}), http.StatusOK)
		if r := b.Do("GET", "/api/v1/auth/me", token, nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("revocation %d with the permission back: replica b answered %d for the token a had just revoked (want 401)", i, r.Status)
		}
	}
}

// permissionsServerFile runs a nats-server configured by a file, as
// permissionsServer does, and returns the file's path for a reload.
func permissionsServerFile(t *testing.T, block string) (*server.Server, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nats.conf")
	return runPermissionsServer(t, writePermissionsConfig(t, path, block)), path
}

// writePermissionsConfig writes permissionsOptions' configuration to path
// (the JetStream store beside it) and returns it as nats-server reads it.
func writePermissionsConfig(t *testing.T, path, block string) *server.Options {
	t.Helper()
	conf := permissionsConfig(filepath.Join(filepath.Dir(path), "js"), block)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server refuses the configuration:\n%s\n%v", conf, err)
	}
	return opts
}
