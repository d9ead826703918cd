package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCLIFollowOutlivesAServiceRestart: 'infracast audit --follow' goes on
// through a restart of the service — stopped, then started again on the
// same address and data — saying once on stderr that it tries again and
// once that the service answers again, and shows the events after it
// without missing or repeating one (outside check 15b: the first network
// error ended it, exit 1, though the docs say it follows until interrupted).
func TestCLIFollowOutlivesAServiceRestart(t *testing.T) {
	t.Parallel()
	dir, addr := t.TempDir(), freeAddr(t)
	in := Start(t, WithDataDir(dir), WithListen(addr))
	c := newCLI(t, in)
	c.login()
	bob := in.CreateUser(in.AdminToken(), "bob", "bob-password-1", nil)

	cmd := exec.Command(c.bin, "audit", "--follow", "--type", "user.created", "--limit", "1", "--interval", "50ms", "-o", "json")
	cmd.Env = binaryEnv("XDG_CONFIG_HOME="+c.home, "INFRACAST_URL="+in.URL)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &LogBuffer{} // read while the command writes it
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var waitErr error // once exited is closed
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			if err := cmd.Process.Kill(); err != nil {
				t.Log(err)
			}
			<-exited
		}
	})
	next := func(what string) string {
		t.Helper()
		select {
		case l, ok := <-lines:
			var e struct {
				Type        string `json:"type"`
				AggregateID string `json:"aggregate_id"`
			}
			if !ok || json.Unmarshal([]byte(l), &e) != nil || e.Type != "user.created" {
				t.Fatalf("follow, %s: %q (stderr %s)", what, l, stderr.String())
			}
			return e.AggregateID
		case <-time.After(30 * time.Second):
			t.Fatalf("follow, %s: nothing within 30 s (stderr %s)", what, stderr.String())
		}
		return ""
	}
	if id := next("the last event"); id != bob {
		t.Fatalf("follow, the last event: %s, want bob's %s", id, bob)
	}

	in.Stop()
	Eventually(t, 30*time.Second, func() error {
		select {
		case <-exited:
			t.Fatalf("the follow ended when the service stopped: %v (stderr %s)", waitErr, stderr.String())
		default:
		}
		if !strings.Contains(stderr.String(), "trying again until the service answers") {
			return fmt.Errorf("stderr says nothing of trying again: %q", stderr.String())
		}
		return nil
	})
	in2 := Start(t, WithDataDir(dir), WithListen(addr))
	carol := in2.CreateUser(in2.AdminToken(), "carol", "carol-password-1", nil)
	if id := next("the event after the restart"); id != carol {
		t.Fatalf("follow, after the restart: %s, want carol's %s (nothing missed, nothing repeated)", id, carol)
	}
	dave := in2.CreateUser(in2.AdminToken(), "dave", "dave-password-1", nil)
	if id := next("the next event"); id != dave {
		t.Fatalf("follow, the next event: %s, want dave's %s", id, dave)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("follow, interrupted: %v, want exit 0 (stderr %s)", waitErr, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("follow: still running 30 s after SIGINT (stderr %s)", stderr.String())
	}
	// Said once, each: the outage on one line, the return on another, and
	// nothing else.
	errLines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	if len(errLines) != 2 || !strings.HasPrefix(errLines[0], "infracast: audit --follow: ") || !strings.Contains(errLines[0], "trying again") ||
		errLines[1] != "infracast: audit --follow: the service answers again; following on" {
		t.Fatalf("stderr: %q, want one line saying it tries again, one that the service answers again", errLines)
	}
}
