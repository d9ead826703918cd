package tests

import (
	"bytes"
	"strings"
	"testing"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/http/service"
)

// TestUnknownNameAfterACostChange: restarted on the same data with another
// argon2id cost (INFRACAST_ARGON2_MEMORY_KIB raised), the service checks a
// name that matches no user at the cost of a stored user's hash — as a
// user's wrong password is —, not at the new one: checked against a dummy
// hash made at the new cost, one failed login told a name nobody has from
// a user created before the change (outside check 18t: ~86 ms against
// ~22 ms). Nothing is timed: the hasher tells the cost its last run paid.
// The answer, the events and the metrics are those of any failed login.
func TestUnknownNameAfterACostChange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := Start(t, WithDataDir(dir))
	in.CreateUser(in.AdminToken(), "alice", "alice-passphrase", nil)
	in.Stop()
	raised := commands.HashParams{MemoryKiB: 4 * CheapHash.MemoryKiB, Iterations: 2, Parallelism: 1}
	in = Start(t, WithDataDir(dir), func(c *service.Config) { c.Hash = raised })

	wrong := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "alice", "password": "not-her-password"})
	expectError(t, "wrong password", wrong, 401, "UNAUTHORIZED")
	if got := in.Svc.Passwords.LastRun(); got != CheapHash {
		t.Fatalf("alice's wrong password was checked at %+v, want her hash's %+v", got, CheapHash)
	}
	for _, name := range []string{"nobody", "somebody-else", "Alice2"} {
		unknown := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": name, "password": "not-her-password"})
		if unknown.Status != wrong.Status || !bytes.Equal(unknown.Raw, wrong.Raw) {
			t.Fatalf("%s: %d %s\nwrong password: %d %s", name, unknown.Status, unknown.Raw, wrong.Status, wrong.Raw)
		}
		if got := in.Svc.Passwords.LastRun(); got != CheapHash {
			t.Fatalf("%s was checked at %+v (the new cost is %+v), want a stored hash's %+v", name, got, raised, CheapHash)
		}
	}

	var onUser, onLogin int
	for _, e := range storedEvents(t, in.Svc) {
		if e.Type != "user.login_failed" {
			continue
		}
		switch e.Aggregate {
		case domain.AggregateUser:
			onUser++
		case domain.AggregateLogin:
			onLogin++
		}
	}
	if onUser != 1 || onLogin != 3 {
		t.Fatalf("user.login_failed: %d on users, %d on login aggregates; want 1 and 3", onUser, onLogin)
	}
	metrics := string(in.Do("GET", "/metrics", "", nil).Raw)
	for _, want := range []string{
		`infracast_logins_total{result="failure"} 4`,
		`infracast_login_decoy_failures_total 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
