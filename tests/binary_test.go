package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// goBuild compiles the Go main package pkg (a path, or an import path at the
// version go.mod requires) once per test run, and returns the binary.
func goBuild(pkg string) (string, error) {
	buildsMu.Lock()
	b, ok := builds[pkg]
	if !ok {
		b = sync.OnceValues(func() (string, error) {
			dir, err := os.MkdirTemp("", "infracast-auth-bin")
			if err != nil {
				return "", err
			}
			buildDirsMu.Lock()
			buildDirs = append(buildDirs, dir)
			buildDirsMu.Unlock()
			name := path.Base(pkg)
			if strings.HasPrefix(name, "v") && strings.Trim(name[1:], "0123456789") == "" {
				name = path.Base(path.Dir(pkg)) // a module's major version: …/nats-server/v2
			}
			bin := filepath.Join(dir, name)
			if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
				return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
			}
			return bin, nil
		})
		builds[pkg] = b
	}
	buildsMu.Unlock()
	return b()
}

var (
	buildsMu sync.Mutex
	builds   = map[string]func() (string, error){}
	// buildDirs are the folders goBuild made, removed once the package's
	// tests are done (TestMain): each run built 50–60 MB of binaries into
	// the temporary folder and left them there — 524 runs' worth, 27 GB,
	// on the machine where that was noticed (session 20).
	buildDirsMu sync.Mutex
	buildDirs   []string
)

// TestMain runs the package's tests, then removes the binaries they built.
func TestMain(m *testing.M) {
	code := m.Run()
	buildDirsMu.Lock()
	for _, dir := range buildDirs {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintf(os.Stderr, "tests: removing the built binaries: %v\n", err)
		}
	}
	buildDirsMu.Unlock()
	os.Exit(code)
}

// freeAddr is a loopback address free now, for a server a test starts
// later (a child process, nginx, a cluster's routes). A port the kernel
// picked (":0") could be picked again for another listener or an outgoing
// connection before that server binds it; so the ports come from below the
// kernel's ephemeral range, where it picks none, each handed out once per
// test process, starting at an offset of the process ID so that two test
// processes rarely walk the same ports. Where that range leaves no room,
// the kernel picks, as before.
func freeAddr(t *testing.T) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	if portsNext == 0 {
		portsNext, portsEnd = fixedPortRange()
	}
	for portsNext != -1 && portsNext < portsEnd {
		port := portsNext
		portsNext++
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			addr := ln.Addr().String()
			if err := ln.Close(); err != nil {
				t.Fatal(err)
			}
			return addr
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var (
	portsMu             sync.Mutex
	portsNext, portsEnd int
)

// fixedPortRange is where freeAddr's ports come from: 10,000 ports or
// fewer below the low end of /proc/sys/net/ipv4/ip_local_port_range, from
// an offset of the process ID; -1 when there is no such range.
func fixedPortRange() (next, end int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	var low, high int
	if err != nil {
		return -1, 0
	}
	if _, err := fmt.Sscan(string(b), &low, &high); err != nil || low <= 11024 {
		return -1, 0
	}
	start := low - 10000
	return start + os.Getpid()%9000, low
}

// proc is the service running as a child process.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan error
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// binaryEnv is this process's environment without any INFRACAST_ variable,
// followed by env: the binary sees the settings a test gives it, and no
// others from the shell that runs the tests.
func binaryEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INFRACAST_") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

// runBinary runs the built service with args (like -h) and env until it
// exits, and returns what it printed.
func runBinary(t *testing.T, args []string, env ...string) (string, error) {
	t.Helper()
	bin, err := goBuild("../cmd/infracast-auth")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = binaryEnv(env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func startBinary(t *testing.T, env ...string) *proc {
	t.Helper()
	bin, err := goBuild("../cmd/infracast-auth")
	if err != nil {
		t.Fatal(err)
	}
	return startCommand(t, exec.Command(bin), env...)
}

// startCommand starts cmd — the built service, or a shell that runs it —
// as startBinary does.
func startCommand(t *testing.T, cmd *exec.Cmd, env ...string) *proc {
	t.Helper()
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	p.cmd.Env = binaryEnv(env...)
	r, w := io.Pipe()
	p.cmd.Stderr, p.cmd.Stdout = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, r) // a line longer than the scanner takes: keep the pipe drained
	}()
	// done only once everything the process printed has been read: a test
	// that looks at the output after the exit must find all of it.
	go func() {
		err := p.cmd.Wait()
		w.Close()
		<-read
		p.done <- err
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// exited waits for the process to end on its own, within the given time,
// and returns how it ended.
func (p *proc) exited(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		return err
	case <-time.After(within):
		t.Fatalf("still running after %s\n%s", within, p.output())
		return nil
	}
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.output())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit after SIGTERM\n%s", p.output())
	}
}

func waitReady(t *testing.T, base string, p *proc) {
	t.Helper()
	Eventually(t, 60*time.Second, func() error {
		res, err := http.Get(base + "/ready")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("ready: %d", res.StatusCode)
		}
		if !strings.Contains(p.output(), "bootstrap") && !strings.Contains(p.output(), "caught up") {
			return fmt.Errorf("not bootstrapped yet")
		}
		return nil
	})
}

var printedPassword = regexp.MustCompile(`with password:\s+(\S+)`)

// TestBinaryFirstStartRestartAndSignals runs the real command the README
// documents: first start generates and prints the admin password once, the
// embedded NATS can be opened to a TCP audit consumer, SIGTERM shuts down
// cleanly, and a restart on the same data folder keeps everything and creates
// no second admin.
func TestBinaryFirstStartRestartAndSignals(t *testing.T) {
	data := t.TempDir()
	httpAddr, natsAddr := freeAddr(t), freeAddr(t)
	const auditPassword = "audit-password-for-the-binary-test"
	env := []string{
		"INFRACAST_LISTEN=" + httpAddr, "INFRACAST_DATA_DIR=" + data, "INFRACAST_NATS_LISTEN=" + natsAddr,
		"INFRACAST_NATS_AUDIT_PASSWORD=" + auditPassword,
		"INFRACAST_ARGON2_MEMORY_KIB=64", "INFRACAST_ARGON2_ITERATIONS=1", "INFRACAST_BOOTSTRAP_PASSWORD=",
		"INFRACAST_LOG_FORMAT=json",
	}
	base := "http://" + httpAddr
	p := startBinary(t, env...)
	var password string
	Eventually(t, 60*time.Second, func() error {
		m := printedPassword.FindStringSubmatch(p.output())
		if m == nil {
			return fmt.Errorf("no password printed yet")
		}
		password = m[1]
		return nil
	})
	waitReady(t, base, p)
	in := &Instance{URL: base, t: t}
	login := in.Login("admin", password)
	tok := login.String("token")
	// The block names the admin's ID and where to sign in, so the next
	// step (change the password) needs nothing looked up.
	adminID := login.JSON["user"].(map[string]any)["id"].(string)
	for _, want := range []string{`"admin" (` + adminID + `) with password:`, "Sign in at " + base + "/console", "POST /api/v1/users/" + adminID + "/password"} {
		if !strings.Contains(p.output(), want) {
			t.Errorf("the first start's message lacks %q:\n%s", want, p.output())
		}
	}

	// An audit consumer on the embedded server's TCP port sees the events;
	// a client that does not log in is refused.
	if nc, err := nats.Connect("nats://"+natsAddr, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("INFRACAST_NATS_LISTEN accepted a client without a login")
	}
	nc, err := nats.Connect("nats://"+natsAddr, nats.UserInfo("audit", auditPassword))
	if err != nil {
		t.Fatalf("audit consumer cannot connect to INFRACAST_NATS_LISTEN: %v", err)
	}
	js, _ := nc.JetStream()
	info, err := js.StreamInfo("INFRACAST_AUTH")
	if err != nil || info.State.Msgs < 3 {
		t.Fatalf("stream info: %+v %v", info, err)
	}
	nc.Close()
	for _, f := range []string{"master.key", "jwt-signing.key"} {
		st, err := os.Stat(filepath.Join(data, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, st, err)
		}
	}
	if strings.Count(p.output(), password) != 1 {
		t.Fatal("the generated password was printed more than once (or logged)")
	}
	p.stop(t)

	p2 := startBinary(t, env...)
	waitReady(t, base, p2)
	if strings.Contains(p2.output(), "with password") {
		t.Fatal("restart bootstrapped a second admin")
	}
	if r := in.Do("GET", "/api/v1/auth/me", tok, nil); r.Status != 200 {
		t.Fatalf("token from before the restart: %d %s", r.Status, r.Raw)
	}
	r := in.Do("GET", "/api/v1/users", tok, nil)
	if users, _ := r.JSON["users"].([]any); len(users) != 1 {
		t.Fatalf("users after restart: %s", r.Raw)
	}
	p2.stop(t)
}

// TestBinaryReportsEveryConfigProblem: invalid configuration is reported all at
// once — values that do not parse (a log level that is not one, too) with
// those that parse but are not allowed — and the process exits non-zero
// without starting.
func TestBinaryReportsEveryConfigProblem(t *testing.T) {
	p := startBinary(t, "INFRACAST_LISTEN=nonsense", "INFRACAST_ACCESS_TOKEN_TTL=1s",
		"INFRACAST_STREAM_REPLICAS=2", "INFRACAST_DATA_DIR="+t.TempDir(),
		// Values that cannot be parsed at all are reported with the rest.
		"INFRACAST_SNAPSHOT_EVERY=often", "INFRACAST_LOG_LEVEL=verbose", "INFRACAST_LOG_FORMAT=xml",
		// A cost that would exhaust the memory, and one that never ends.
		"INFRACAST_ARGON2_MEMORY_KIB=4294967295", "INFRACAST_ARGON2_ITERATIONS=1000000",
		// An external NATS's setting with the embedded NATS (no INFRACAST_NATS_URL):
		// it would be ignored, so it is refused.
		"INFRACAST_NATS_CREDS="+filepath.Join(t.TempDir(), "user.creds"))
	if err := p.exited(t, 30*time.Second); err == nil {
		t.Fatal("exited 0 with an invalid configuration")
	}
	out := p.output()
	for _, want := range []string{"INFRACAST_LISTEN", "INFRACAST_ACCESS_TOKEN_TTL", "INFRACAST_STREAM_REPLICAS",
		`INFRACAST_SNAPSHOT_EVERY "often"`, `INFRACAST_LOG_LEVEL "verbose"`, `INFRACAST_LOG_FORMAT "xml"`,
		"INFRACAST_ARGON2_MEMORY_KIB 4294967295", "INFRACAST_ARGON2_ITERATIONS 1000000", "INFRACAST_NATS_CREDS"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not name %s:\n%s", want, out)
		}
	}
}
