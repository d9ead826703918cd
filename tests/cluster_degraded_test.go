package tests

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/natstest"
)

// waitDisconnected waits until the replica has noticed that NATS is gone.
func waitDisconnected(t *testing.T, in *Instance) {
	t.Helper()
	Eventually(t, 10*time.Second, func() error {
		if in.Svc.Store.Connected() {
			return Errorf("still connected to NATS")
		}
		return nil
	})
}

// readyNow returns /ready's status and error message.
func readyNow(t *testing.T, in *Instance) (int, string) {
	t.Helper()
	r := in.Do("GET", "/ready", "", nil)
	e, _ := r.JSON["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return r.Status, msg
}

// TestClusterDegradedWhileNATSIsDown: every node of the NATS cluster stops.
// The replica keeps validating tokens and keys from its read models, answers
// every write 503 UNAVAILABLE at once and stores none of them, and /ready
// says why. Once the nodes are back on their data, the replica reports ready
// again, has lost nothing, and serves writes.
func TestClusterDegradedWhileNATSIsDown(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 3)
	a := d.StartReplica(t)
	admin := a.AdminToken()
	a.CreateUser(admin, "erin", "erin-passphrase", map[string]string{"prod": "editor", "ci": "admin"})
	token := a.Login("erin", "erin-passphrase").String("token")
	revoked := a.Login("erin", "erin-passphrase").String("token")
	expectStatus(t, "revoke", a.Do("POST", "/api/v1/auth/revoke", "", map[string]string{"token": revoked}), http.StatusOK)
	kr := a.Do("POST", "/api/v1/api-keys", token, map[string]any{"name": "ci", "tenants": []string{"ci"}, "permissions": []string{"nodes:read"}})
	expectStatus(t, "create key", kr, http.StatusCreated)
	key := kr.String("key")
	before := head(t, a)

	d.NATS.StopAll()
	waitDisconnected(t, a)

	status, why := readyNow(t, a)
	if status != http.StatusServiceUnavailable || !strings.Contains(why, "unreachable") {
		t.Fatalf("/ready with NATS down: %d %q", status, why)
	}
	// Reads: tokens and keys validated from the read models, revocations kept.
	expectStatus(t, "token with NATS down", a.Do("GET", "/api/v1/auth/me", token, nil), http.StatusOK)
	expectStatus(t, "key with NATS down", a.Do("GET", "/api/v1/auth/me", key, nil), http.StatusOK)
	expectStatus(t, "forward auth with NATS down", verify(t, a, token, "GET", "/api/v1/tenants/prod/nodes"), http.StatusOK)
	expectBody(t, "revoked token with NATS down", a.Do("GET", "/api/v1/auth/me", revoked, nil), http.StatusUnauthorized, bodyUnauthorized)
	expectStatus(t, "user list with NATS down", a.Do("GET", "/api/v1/users", admin, nil), http.StatusOK)

	// Writes: 503 at once, nothing stored (checked below, once NATS is back).
	writes := []struct {
		what         string
		method, path string
		token        string
		body         any
	}{
		{"create a user", "POST", "/api/v1/users", admin, map[string]any{"username": "frank", "email": "frank@example.com", "password": "frank-passphrase"}},
		{"grant a role", "PUT", "/api/v1/users/" + a.Svc.Model.Users()[0].ID + "/tenants/staging", admin, map[string]string{"role": "viewer"}},
		{"log in", "POST", "/api/v1/auth/token", "", map[string]string{"username": "erin", "password": "erin-passphrase"}},
		{"revoke a token", "POST", "/api/v1/auth/revoke", "", map[string]string{"token": token}},
		{"create a key", "POST", "/api/v1/api-keys", token, map[string]any{"name": "ci2", "tenants": []string{"ci"}, "permissions": []string{"nodes:read"}}},
	}
	// Sent together: each waits a moment (events.StoreConfig.DisconnectedWait)
	// for NATS to come back before giving up.
	answers := make([]Response, len(writes))
	took := make([]time.Duration, len(writes))
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			answers[i], _ = send(a.URL, request{Method: w.method, Path: w.path, Token: w.token,
				ContentType: "application/json", Body: jsonBody(w.body)})
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i, w := range writes {
		expectError(t, w.what+" with NATS down", answers[i], http.StatusServiceUnavailable, "UNAVAILABLE", "nothing was changed")
		if took[i] > 3*time.Second {
			t.Errorf("%s with NATS down took %s", w.what, took[i])
		}
	}

	if err := d.NATS.RestartAll(); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 30*time.Second, func() error {
		if status, why := readyNow(t, a); status != http.StatusOK {
			return Errorf("/ready after NATS came back: %d %q", status, why)
		}
		return nil
	})
	// Nothing refused was stored. (The key's use while NATS was down is
	// recorded once it is back — apikey.used, by the usage flusher, every
	// 15 s — and may land before this look.)
	for _, env := range storedEvents(t, a.Svc)[before:] {
		if env.Type != domain.TypeAPIKeyUsed {
			t.Fatalf("the stream holds %s after %d, stored while every write was refused", env.Type, before)
		}
	}
	expectStatus(t, "token after the outage", a.Do("GET", "/api/v1/auth/me", token, nil), http.StatusOK)
	expectBody(t, "revoked token after the outage", a.Do("GET", "/api/v1/auth/me", revoked, nil), http.StatusUnauthorized, bodyUnauthorized)
	a.CreateUser(admin, "frank", "frank-passphrase", nil) // the refused creation left nothing behind
	expectStatus(t, "revoke after the outage", a.Do("POST", "/api/v1/auth/revoke", "", map[string]string{"token": token}), http.StatusOK)
	expectBody(t, "token revoked after the outage", a.Do("GET", "/api/v1/auth/me", token, nil), http.StatusUnauthorized, bodyUnauthorized)
}

// TestClusterReplicaCatchesUpBeforeReady: replica A reaches NATS only through
// node n1; n1 stops, and replica B (on n2 and n3) goes on writing —
// including revoking a token A knows. When n1 is back, A reports ready only
// once it has applied everything B wrote meanwhile, and then rejects the
// revoked token and takes writes.
func TestClusterReplicaCatchesUpBeforeReady(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 3)
	a := d.StartReplica(t, d.Replica(0))
	b := d.StartReplica(t, d.Replica(1, 2))
	admin := a.AdminToken()
	a.CreateUser(admin, "gina", "gina-passphrase", nil)
	token := a.Login("gina", "gina-passphrase").String("token")
	arrived(t, a, b)

	d.NATS.Stop(0)
	waitDisconnected(t, a)
	if status, why := readyNow(t, a); status != http.StatusServiceUnavailable || !strings.Contains(why, "unreachable") {
		t.Fatalf("/ready of the cut-off replica: %d %q", status, why)
	}
	expectStatus(t, "the cut-off replica still validates", a.Do("GET", "/api/v1/auth/me", token, nil), http.StatusOK)

	// B writes meanwhile (two of three nodes are a quorum).
	badmin := b.AdminToken()
	Eventually(t, 15*time.Second, func() error {
		r := b.Do("POST", "/api/v1/auth/revoke", "", map[string]string{"token": token})
		if r.Status != http.StatusOK {
			return Errorf("revoke on b: %d %s", r.Status, r.Raw)
		}
		return nil
	})
	for _, name := range []string{"hank", "iris", "jack"} {
		b.CreateUser(badmin, name, name+"-passphrase", nil)
	}
	written := head(t, b)
	if a.Svc.Runner.Applied() >= written {
		t.Fatal("the cut-off replica applied events it cannot have received")
	}

	if err := d.NATS.Restart(0); err != nil {
		t.Fatal(err)
	}
	// The first 200 from /ready comes only after catching up.
	Eventually(t, 30*time.Second, func() error {
		status, why := readyNow(t, a)
		if status != http.StatusOK {
			return Errorf("/ready: %d %q", status, why)
		}
		if applied := a.Svc.Runner.Applied(); applied < written {
			t.Fatalf("/ready answered 200 at sequence %d, before catching up with %d", applied, written)
		}
		return nil
	})
	expectBody(t, "the token revoked on b, on a", a.Do("GET", "/api/v1/auth/me", token, nil), http.StatusUnauthorized, bodyUnauthorized)
	if _, _, ok := a.Svc.Model.UserByName("jack"); !ok {
		t.Fatal("a did not catch up with b's users")
	}
	a.CreateUser(admin, "kate", "kate-passphrase", nil)
}

// TestClusterNotReadyWithoutQuorum: two of the three NATS nodes stop. The
// replica stays connected (to the third) but JetStream serves no stream
// without its quorum: the replica cannot see new events — revocations
// accepted on the other side of a partition included — so /ready turns 503
// and says why, while tokens are still validated from the read models. Once
// the nodes are back, /ready is 200 again.
func TestClusterNotReadyWithoutQuorum(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 3)
	a := d.StartReplica(t)
	token := a.Login(AdminUser, AdminPassword).String("token")

	d.NATS.Stop(0)
	d.NATS.Stop(1)
	Eventually(t, 30*time.Second, func() error {
		if status, why := readyNow(t, a); status != http.StatusServiceUnavailable || !strings.Contains(why, "not serving the stream") {
			return Errorf("/ready without quorum: %d %q", status, why)
		}
		return nil
	})
	expectStatus(t, "token without quorum", a.Do("GET", "/api/v1/auth/me", token, nil), http.StatusOK)

	quorumBack(t, d, a)
	expectStatus(t, "a write with the quorum back", a.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": AdminUser, "password": AdminPassword}), http.StatusOK)
}

// TestClusterLoginWithoutQuorumIsNotAConflict: as in
// TestClusterNotReadyWithoutQuorum two of the three NATS nodes stop, here
// with the third leading the stream, which it goes on doing for some seconds
// without a quorum. The first login's append hangs there (503: outcome
// unknown); each later one is refused by that leader with 10164 "wrong last
// sequence", since the first is still in flight on the user's subject. That
// is no concurrent modification — nothing was stored — so every login is 503
// UNAVAILABLE, never 409 CONFLICT; with the quorum back, logins work.
func TestClusterLoginWithoutQuorumIsNotAConflict(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 3)
	a := d.StartReplica(t)
	a.Login(AdminUser, AdminPassword)

	c := d.NATS.(*natstest.Cluster)
	nc, err := nats.Connect(strings.Join(d.NATS.URLs(), ","))
	if err != nil {
		t.Fatal(err)
	}
	req := fmt.Sprintf(`{"placement":{"preferred":%q}}`, c.Nodes[2].Name)
	Eventually(t, 20*time.Second, func() error {
		if c.StreamLeader(events.StreamName) == 2 {
			return nil
		}
		_, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+events.StreamName, []byte(req), 2*time.Second)
		return Errorf("stream leader is n%d, not n3 (asked to step down: %v)", c.StreamLeader(events.StreamName)+1, err)
	})
	nc.Close()
	d.NATS.Stop(0)
	d.NATS.Stop(1)

	for i := range 3 {
		r := a.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": AdminUser, "password": AdminPassword})
		t.Logf("login %d without quorum (stream leader n%d): %d %s", i, c.StreamLeader(events.StreamName)+1, r.Status, r.Raw)
		expectError(t, fmt.Sprintf("login %d without quorum", i), r, http.StatusServiceUnavailable, "UNAVAILABLE")
	}

	quorumBack(t, d, a)
	expectStatus(t, "a login with the quorum back", a.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": AdminUser, "password": AdminPassword}), http.StatusOK)
}

// quorumBack restarts NATS nodes 0 and 1 and waits until replica a is ready
// again.
func quorumBack(t *testing.T, d *Deployment, a *Instance) {
	t.Helper()
	for _, i := range []int{0, 1} {
		if err := d.NATS.Restart(i); err != nil {
			t.Fatal(err)
		}
	}
	Eventually(t, 60*time.Second, func() error {
		if status, why := readyNow(t, a); status != http.StatusOK {
			return Errorf("/ready with the quorum back: %d %q", status, why)
		}
		return nil
	})
}
