package tests

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestNATSPermissionsSnapshotsNotCheckedAtStart: the snapshot bucket's
// permissions are not checked at start (a check would store in the
// bucket): a replica whose user lacks publish on
// $O.INFRACAST_AUTH_SNAPSHOTS.> starts and serves, and says at ERROR, naming
// the refused subject, that its snapshots are not saved — as
// docs/operations.md's Permissions item says (re-check 20r3: the docs said
// a replica refuses to start without any of them).
func TestNATSPermissionsSnapshotsNotCheckedAtStart(t *testing.T) {
	t.Parallel()
	opts := permissionsOptions(t, operationsPermissionsBlock(t))
	allow := &opts.Users[0].Permissions.Publish.Allow
	const snapshots = "$O.INFRACAST_AUTH_SNAPSHOTS.>"
	if !slices.Contains(*allow, snapshots) {
		t.Fatalf("the block does not allow publish on %s: %v", snapshots, *allow)
	}
	*allow = slices.DeleteFunc(*allow, func(s string) bool { return s == snapshots })
	ns := runPermissionsServer(t, opts)
	var logs LogBuffer
	a := StartLogged(t, &logs, asPermissionsUser(ns, newKey(t), newKey(t)), WithSnapshots(20, 10*time.Millisecond))
	admin := a.AdminToken()
	for i := range 20 {
		a.CreateUser(admin, "user"+string(rune('a'+i)), "a-long-passphrase", map[string]string{"prod": "viewer"})
	}
	Eventually(t, 30*time.Second, func() error {
		l := logs.String()
		if !strings.Contains(l, "Publish to \\\"$O.INFRACAST_AUTH_SNAPSHOTS.C.") || !strings.Contains(l, `"level":"ERROR"`) {
			return Errorf("no ERROR naming the refused publish to the snapshot bucket yet:\n%s", l)
		}
		return nil
	})
	if a.Svc.SnapshotSequence() != 0 {
		t.Fatal("a snapshot was saved without publish on the bucket's subjects")
	}
}
