package tests

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY opens a pseudo-terminal: the master (the "keyboard and screen")
// and the slave (what a program sees as its terminal).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("unlockpt: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("ptsname: %v", e)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestCLILoginMFAPrompt: on a terminal, login asks for the second factor's
// code (on stderr, read without echo) and finishes the login with it.
func TestCLILoginMFAPrompt(t *testing.T) {
	t.Parallel()
	in := Start(t)
	c := newCLI(t, in)
	admin := in.AdminToken()
	in.CreateUser(admin, "bob", "bob-password-1", nil)
	secret, _ := enrollTOTP(t, in, in.Login("bob", "bob-password-1").String("token"))
	in.Clock.Advance(90 * time.Second)
	code := totpAt(t, secret, in.Clock.Now())

	master, slave := openPTY(t)
	cmd := exec.Command(c.bin, "--url", in.URL, "login", "--username", "bob")
	cmd.Env = binaryEnv("XDG_CONFIG_HOME="+c.home, "INFRACAST_PASSWORD=bob-password-1")
	var stdout, stderr LogBuffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			// The test failed before the CLI ended.
			if err := cmd.Process.Kill(); err != nil {
				t.Errorf("killing the CLI: %v", err)
			}
			<-exited
		}
	})
	// The prompt on stderr (or the CLI already ended, without asking).
	Eventually(t, 20*time.Second, func() error {
		select {
		case <-exited:
			return nil
		default:
		}
		if !strings.Contains(stderr.String(), "Code (") {
			return Errorf("no prompt for the code on stderr yet: %q", stderr.String())
		}
		return nil
	})
	if !strings.Contains(stderr.String(), "Code (") {
		t.Fatalf("login on a terminal did not ask for the code: %v\n%s%s", waitErr, stdout.String(), stderr.String())
	}
	if _, err := master.WriteString(code + "\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("login on a terminal: %v\n%s%s", waitErr, stdout.String(), stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("login on a terminal did not end within 30 s\n%s%s", stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "Logged in to "+in.URL+" as bob") || strings.Contains(stdout.String()+stderr.String(), code) {
		t.Fatalf("login on a terminal: %q %q", stdout.String(), stderr.String())
	}
	if c.stored()["refresh_token"] == "" {
		t.Fatal("no session stored")
	}
}
