package tests

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSecondInstanceOnOneDataFolder: a second service started on the data
// folder of a running one (another HTTP port) ends at once with an error
// naming the folder, instead of running a second nats-server on the same
// JetStream store, which corrupts it. The first keeps serving; once it has
// stopped, the folder can be used again.
func TestSecondInstanceOnOneDataFolder(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	addrA := freeAddr(t)
	a := startBinary(t, "INFRACAST_LISTEN="+addrA, "INFRACAST_DATA_DIR="+data, "INFRACAST_BOOTSTRAP_PASSWORD="+shippedAdminPassword)
	waitReady(t, "http://"+addrA, a)

	secondInstanceRefused(t, data, addrA)

	a.stop(t)
	addrC := freeAddr(t)
	c := startBinary(t, "INFRACAST_LISTEN="+addrC, "INFRACAST_DATA_DIR="+data, "INFRACAST_BOOTSTRAP_PASSWORD="+shippedAdminPassword)
	waitReady(t, "http://"+addrC, c)
}

// TestSecondInstanceAfterLockFileDeleted: deleting jetstream/infracast.lock
// while an instance runs does not let a second one in — the lock is on the
// store directory itself (an outside check, 18r, ran two instances on one
// store that way, which corrupts it).
func TestSecondInstanceAfterLockFileDeleted(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	addrA := freeAddr(t)
	a := startBinary(t, "INFRACAST_LISTEN="+addrA, "INFRACAST_DATA_DIR="+data, "INFRACAST_BOOTSTRAP_PASSWORD="+shippedAdminPassword)
	waitReady(t, "http://"+addrA, a)
	if err := os.Remove(filepath.Join(data, "jetstream", "infracast.lock")); err != nil {
		t.Fatal(err)
	}

	secondInstanceRefused(t, data, addrA)
}

// secondInstanceRefused starts a second service on data, where the one at
// addrA runs: it must end at once (not 0) saying the folder is in use, and
// the first must still be ready.
func secondInstanceRefused(t *testing.T, data, addrA string) {
	t.Helper()
	b := startBinary(t, "INFRACAST_LISTEN="+freeAddr(t), "INFRACAST_DATA_DIR="+data, "INFRACAST_BOOTSTRAP_PASSWORD="+shippedAdminPassword)
	if err := b.exited(t, 30*time.Second); err == nil {
		t.Fatalf("the second instance exited 0:\n%s", b.output())
	}
	if out := b.output(); !strings.Contains(out, "in use") || !strings.Contains(out, data) {
		t.Fatalf("the second instance's error does not say the data folder %s is in use:\n%s", data, out)
	}
	res, err := http.Get("http://" + addrA + "/ready")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("the first instance after the second was refused: %v %v", res, err)
	}
	res.Body.Close()
}
