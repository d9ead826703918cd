package tests

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/infracast/auth/projections"
)

// TestClusterReplicaStartsFromASnapshot: replica A saves read-model
// snapshots (every 25 events) into the R3 object store; events follow the
// latest one. Replica B, started afterwards, restores the snapshot and
// replays only what followed: its read models are identical to a full
// replay's, and it enforces what happened before and after the snapshot.
func TestClusterReplicaStartsFromASnapshot(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 3)
	a := d.StartReplica(t, WithSnapshots(25, 10*time.Millisecond))
	admin := a.AdminToken()
	var tokens []string
	for i := range 8 {
		name := fmt.Sprintf("snap%d", i)
		a.CreateUser(admin, name, name+"-passphrase", map[string]string{"prod": "viewer"})
		login := a.Login(name, name+"-passphrase")
		expectStatus(t, "refresh", refresh(t, a, login.String("refresh_token")), http.StatusOK)
		tokens = append(tokens, login.String("token"))
	}
	Eventually(t, 10*time.Second, func() error {
		if a.Svc.SnapshotSequence() == 0 {
			return Errorf("no snapshot saved yet (applied %d)", a.Svc.Runner.Applied())
		}
		return nil
	})
	// After the snapshot: a revocation of a token issued before it, a new
	// user, a role removal.
	expectStatus(t, "revoke", a.Do("POST", "/api/v1/auth/revoke", "", map[string]string{"token": tokens[0]}), http.StatusOK)
	late := a.CreateUser(admin, "late", "late-passphrase", map[string]string{"prod": "editor"})
	expectStatus(t, "remove role", a.Do("DELETE", "/api/v1/users/"+late+"/tenants/prod", admin, nil), http.StatusOK)

	var bLogs LogBuffer
	b := StartLogged(t, &bLogs, d.Replica(), WithSnapshots(25, time.Hour))
	restored := b.Svc.SnapshotSequence()
	if restored == 0 {
		t.Fatalf("replica b did not start from the snapshot; its log:\n%s", bLogs.String())
	}
	arrived(t, a, b)
	t.Logf("b restored the snapshot at sequence %d and replayed up to %d", restored, b.Svc.Runner.Applied())

	// The same state as a full replay of the stream.
	full := projections.NewModel()
	full.AddressWindow = b.Config.LoginLockout
	runner := projections.NewRunner(b.Svc.Store, full, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { runner.Run(ctx) }()
	if err := runner.WaitFor(ctx, b.Svc.Runner.Applied()); err != nil {
		t.Fatal(err)
	}
	want, err := full.Dump()
	if err != nil {
		t.Fatal(err)
	}
	have, err := b.Svc.Model.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, want) {
		t.Fatalf("restored + replayed read models differ from a full replay:\nhave %s\nwant %s", have, want)
	}

	expectBody(t, "a token revoked after the snapshot", b.Do("GET", "/api/v1/auth/me", tokens[0], nil), http.StatusUnauthorized, bodyUnauthorized)
	expectStatus(t, "a token issued before the snapshot", b.Do("GET", "/api/v1/auth/me", tokens[1], nil), http.StatusOK)
	lateToken := b.Login("late", "late-passphrase").String("token")
	expectBody(t, "a role removed after the snapshot", verify(t, b, lateToken, "GET", "/api/v1/tenants/prod/nodes"),
		http.StatusForbidden, bodyForbidden)
	b.CreateUser(b.AdminToken(), "after-restore", "after-restore-passphrase", nil)
}
