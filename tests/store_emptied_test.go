package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBinaryRefusesAStreamThatLostEveryEvent: a data folder whose stream's
// message blocks are emptied or gone, its index kept (a copy that stopped
// early), held events none of which can be read: the binary exits 1 saying
// so, instead of waiting for them forever (/ready 503, nothing logged: an
// outside check, 18r2) — and creates no admin.
func TestBinaryRefusesAStreamThatLostEveryEvent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cut  func(msgs string) error
	}{
		{"block-emptied", func(m string) error { return os.Truncate(filepath.Join(m, "1.blk"), 0) }},
		{"block-removed", func(m string) error { return os.Remove(filepath.Join(m, "1.blk")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := t.TempDir()
			env := []string{"INFRACAST_DATA_DIR=" + data, "INFRACAST_BOOTSTRAP_PASSWORD=" + shippedAdminPassword}
			addr := freeAddr(t)
			p := startBinary(t, append(env, "INFRACAST_LISTEN="+addr)...)
			waitReady(t, "http://"+addr, p)
			p.stop(t)
			if err := tc.cut(filepath.Join(data, "jetstream", "jetstream", "$G", "streams", "INFRACAST_AUTH", "msgs")); err != nil {
				t.Fatal(err)
			}
			p = startBinary(t, append(env, "INFRACAST_LISTEN="+freeAddr(t))...)
			if err := p.exited(t, 60*time.Second); err == nil {
				t.Fatalf("exited 0:\n%s", p.output())
			}
			out := p.output()
			if !strings.Contains(out, "none of them can be read") || !strings.Contains(out, "restore the store") {
				t.Fatalf("the refusal does not say what was lost and what to do:\n%s", out)
			}
			if strings.Contains(out, "bootstrap admin created") {
				t.Fatalf("started afresh:\n%s", out)
			}
		})
	}
}
