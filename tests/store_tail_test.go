package tests

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestBinaryReadyWithTheLastBlockCutShort: the stream's last block cut short
// while stopped (an outside check, 18r: truncate -s -1000) loses the events
// at its end; the service starts, becomes ready, logs the sequences lost
// and takes writes — before, /ready and every /api/v1 route answered 503
// forever, waiting for events nobody could deliver.
func TestBinaryReadyWithTheLastBlockCutShort(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	env := []string{"INFRACAST_DATA_DIR=" + data, "INFRACAST_BOOTSTRAP_PASSWORD=" + shippedAdminPassword}
	login := func(base string) int {
		t.Helper()
		res, err := http.Post(base+"/api/v1/auth/token", "application/json",
			strings.NewReader(`{"username":"admin","password":"`+shippedAdminPassword+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	addr := freeAddr(t)
	p := startBinary(t, append(env, "INFRACAST_LISTEN="+addr)...)
	waitReady(t, "http://"+addr, p)
	for range 5 { // events after the admin's, for the cut to take
		if code := login("http://" + addr); code != http.StatusOK {
			t.Fatalf("login: %d", code)
		}
	}
	p.stop(t)

	blocks, err := filepath.Glob(filepath.Join(data, "jetstream", "jetstream", "$G", "streams", "INFRACAST_AUTH", "msgs", "*.blk"))
	if err != nil || len(blocks) == 0 {
		t.Fatalf("no message block: %v", err)
	}
	sort.Strings(blocks) // one block here; the last one otherwise
	last := blocks[len(blocks)-1]
	info, err := os.Stat(last)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(last, info.Size()-200); err != nil {
		t.Fatal(err)
	}

	addr = freeAddr(t)
	p = startBinary(t, append(env, "INFRACAST_LISTEN="+addr)...)
	waitReady(t, "http://"+addr, p)
	if code := login("http://" + addr); code != http.StatusOK {
		t.Fatalf("login after the cut: %d\n%s", code, p.output())
	}
	Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(p.output(), "missing_from_seq") {
			return errors.New("the lost events were not logged")
		}
		return nil
	})
}
