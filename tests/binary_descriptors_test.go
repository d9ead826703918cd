package tests

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBinaryOutOfFileDescriptorsKeepsServing runs the built service under a
// low descriptor limit (ulimit -n 256) and opens more idle connections than
// that: accepting fails with "too many open files", which ended fasthttp's
// Serve and the whole process — with status 0, so that systemd's
// Restart=on-failure left it down (an outside check, 18q: ~21,000 idle
// connections under ulimit -n 20000, in 2 s). Now the service waits it out:
// it is still running, says so once in its log, counts it, and once the
// connections are gone answers /health and a login again.
func TestBinaryOutOfFileDescriptorsKeepsServing(t *testing.T) {
	bin, err := goBuild("../cmd/infracast-auth")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := freeAddr(t)
	const password = "descriptor-test-admin-passphrase"
	p := startCommand(t, exec.Command("sh", "-c", `ulimit -n 256 && exec "$0"`, bin),
		"INFRACAST_LISTEN="+httpAddr, "INFRACAST_DATA_DIR="+t.TempDir(),
		"INFRACAST_ARGON2_MEMORY_KIB=64", "INFRACAST_ARGON2_ITERATIONS=1",
		"INFRACAST_BOOTSTRAP_PASSWORD="+password, "INFRACAST_LOG_FORMAT=json")
	base := "http://" + httpAddr
	waitReady(t, base, p)

	// More connections than the service has descriptors: they stay open,
	// idle, the excess waiting in the kernel's backlog.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 400 {
		c, err := net.DialTimeout("tcp", httpAddr, 5*time.Second)
		if err != nil {
			select {
			case exit := <-p.done:
				t.Fatalf("connection %d: %v: the service ended out of descriptors (exit: %v):\n%s", len(conns)+1, err, exit, p.output())
			case <-time.After(5 * time.Second):
				t.Fatalf("connection %d: %v", len(conns)+1, err)
			}
		}
		conns = append(conns, c)
	}
	Eventually(t, 30*time.Second, func() error {
		if !strings.Contains(p.output(), "accepting HTTP connections failed") {
			return fmt.Errorf("no accept error logged yet")
		}
		return nil
	})
	// Still running a while after (before, it had ended within 2 s).
	select {
	case err := <-p.done:
		t.Fatalf("the service ended out of descriptors (%v):\n%s", err, p.output())
	case <-time.After(2 * time.Second):
	}
	if !strings.Contains(p.output(), "too many open files") {
		t.Errorf("the log does not say why accepting failed:\n%s", p.output())
	}

	for _, c := range conns {
		c.Close()
	}
	conns = nil
	in := &Instance{URL: base, t: t}
	Eventually(t, 30*time.Second, func() error {
		res, err := http.Get(base + "/health")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("health: %d", res.StatusCode)
		}
		return nil
	})
	if r := in.Login("admin", password); r.String("token") == "" {
		t.Fatalf("login after the connections closed: %d %s", r.Status, r.Raw)
	}
	out := p.output()
	if n := strings.Count(out, "accepting HTTP connections failed"); n < 1 || n > 3 {
		// Once per episode: the idle connections the service did accept
		// may time out and let a few more in, starting another.
		t.Errorf("the accept errors were logged %d times, want once per episode:\n%s", n, out)
	}
	if !strings.Contains(out, "accepting HTTP connections again") {
		t.Errorf("the end of the episode was not logged:\n%s", out)
	}
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`infracast_background_errors_total\{task="http_accept"\} (\d+)`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no http_accept errors counted:\n%s", body)
	}
	if n, _ := strconv.Atoi(string(m[1])); n < 1 {
		t.Fatalf("http_accept errors counted: %s", m[1])
	}
	p.stop(t)
}
