package tests

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBinaryAnswersHealthWhileStarting: the built binary answers on its
// address from the moment it has it — /health 200, /ready 503 naming what
// the start waits for, the API 503 with Retry-After — while its NATS is not
// there yet. An outside check (20s) saw the embedded NATS recover the
// stream for 19–25 s after a crash at a million users while /health went
// unanswered (`curl -m 1` → 000 until t=20.2 s), so that a liveness probe
// restarted the replica in the middle of its recovery; an external NATS
// that cannot be reached takes the same path through the start (up to
// 15 s), and is quick to make.
func TestBinaryAnswersHealthWhileStarting(t *testing.T) {
	t.Parallel()
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	addr := freeAddr(t)
	began := time.Now()
	p := startBinary(t, "INFRACAST_LISTEN="+addr, "INFRACAST_DATA_DIR="+t.TempDir(),
		"INFRACAST_NATS_URL=nats://"+freeAddr(t), "INFRACAST_MASTER_KEY="+key, "INFRACAST_JWT_KEYS="+key)
	base := "http://" + addr
	client := &http.Client{Timeout: time.Second} // as `curl -m 1`
	get := func(path string) (int, http.Header, string, error) {
		res, err := client.Get(base + path)
		if err != nil {
			return 0, nil, "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(b), err
	}
	// At once: well before the 15 s the start keeps trying NATS.
	Eventually(t, 5*time.Second, func() error {
		code, _, body, err := get("/health")
		if err != nil {
			return err
		}
		if code != http.StatusOK || body != `{"status":"ok"}` {
			return fmt.Errorf("/health: %d %s", code, body)
		}
		return nil
	})
	if d := time.Since(began); d > 10*time.Second {
		t.Fatalf("/health answered only after %s", d)
	}
	code, _, body, err := get("/ready")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(body), &ready); err != nil {
		t.Fatalf("/ready: %v: %s", err, body)
	}
	if code != http.StatusServiceUnavailable || ready.Error.Code != "UNAVAILABLE" || !strings.HasPrefix(ready.Error.Message, "Starting, not ready yet: connecting to NATS") {
		t.Fatalf("/ready while NATS is unreachable: %d %s", code, body)
	}
	code, hdr, body, err := get("/api/v1/users")
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(body, "UNAVAILABLE") {
		t.Fatalf("an API route while starting: %d %v %s", code, hdr, body)
	}
	// The start still gives up on a NATS it cannot reach, exiting 1.
	if err := p.exited(t, 40*time.Second); err == nil {
		t.Fatalf("exit 0 without NATS\n%s", p.output())
	}
	if _, _, _, err := get("/health"); err == nil {
		t.Fatal("/health still answered after the process exited")
	}
}
