package tests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestNginxForwardAuthKeepAlive runs Debian's nginx with the shipped
// docs/nginx/infracast.conf — only its addresses and ports replaced — in
// front of the service and an upstream, with two workers, and sends it
// requests from several kept-alive clients:
//
//   - allowed ones reach the upstream with the caller's identity in the
//     X-Infracast-* headers (the client's own copies replaced, no token);
//   - refused ones get 401/403 in the contract's shape and never reach it;
//   - nginx opens a few connections to the service for hundreds of allowed
//     requests: its auth subrequests reuse them (upstream keepalive, and
//     verify's 200 without a body). Before both, it opened one per request.
//
// Each connection nginx opens to the service or the upstream is counted by a
// TCP relay in between.
func TestNginxForwardAuthKeepAlive(t *testing.T) {
	t.Parallel()
	in := Start(t)
	nginxForwardAuthKeepAlive(t, in, gwUsers(t, in, "viewer")["viewer"])
}

// TestShippedNginxForwardAuthKeepAlive: the same with the built binary and
// its defaults (issue 15 names the two that make nginx keep its connections:
// verify's 200 without a body, and upstream keepalive in the shipped
// configuration), as users run it behind nginx.
func TestShippedNginxForwardAuthKeepAlive(t *testing.T) {
	t.Parallel()
	_, in, _ := startShipped(t)
	admin := in.Login(AdminUser, shippedAdminPassword).String("token")
	id := in.CreateUser(admin, "nginx-viewer", "nginx-viewer-passphrase", map[string]string{"prod": "viewer"})
	nginxForwardAuthKeepAlive(t, in, gwUser{ID: id, Token: in.Login("nginx-viewer", "nginx-viewer-passphrase").String("token")})
}

// nginxForwardAuthKeepAlive is TestNginxForwardAuthKeepAlive against the
// service in, viewer a viewer in tenant prod.
func nginxForwardAuthKeepAlive(t *testing.T, in *Instance, viewer gwUser) {
	t.Helper()
	bin := faNginxBinary(t)
	shipped, err := os.ReadFile("../docs/nginx/infracast.conf")
	if err != nil {
		t.Fatal(err)
	}

	up := newGWUpstream(t, nil)
	toService := faRelay(t, strings.TrimPrefix(in.URL, "http://"))
	toUpstream := faRelay(t, strings.TrimPrefix(up.srv.URL, "http://"))

	front := freeAddr(t)
	conf, err := faTemplate(string(shipped), []faReplacement{
		{"server auth1:8080", "server " + toService.addr},
		{"server auth2:8080", "server " + toService.addr},
		{"server 127.0.0.1:9000;", "server " + toUpstream.addr + ";"},
		{"listen 9000;", "listen " + freeAddr(t) + ";"}, // the sample resource service, unused here
		{"listen 80;", "listen " + front + ";"},
	})
	if err != nil {
		t.Fatalf("docs/nginx/infracast.conf: %v", err)
	}
	faStartNginx(t, bin, conf, front)
	base := "http://" + front

	const clients, perClient = 4, 100
	allowed := clients * perClient
	send := func(c *http.Client, method, path, token string, header map[string]string) (int, string, error) {
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			return 0, "", err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		return res.StatusCode, string(body), err
	}
	client := func() *http.Client {
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	}

	// Allowed: GET nodes as a viewer, each client on its own kept-alive
	// connection to nginx, a forged identity header on every request.
	svc0, up0 := toService.count(), toUpstream.count()
	var wg sync.WaitGroup
	errs := make(chan error, allowed)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := client()
			defer c.CloseIdleConnections()
			for j := 0; j < perClient; j++ {
				path := fmt.Sprintf("/api/v1/tenants/prod/nodes/n-%d-%d", i, j)
				status, body, err := send(c, "GET", path, viewer.Token, map[string]string{"X-Infracast-Subject": "user-forged"})
				switch {
				case err != nil:
					errs <- fmt.Errorf("GET %s: %w", path, err)
					return
				case status != 200:
					errs <- fmt.Errorf("GET %s: %d %s", path, status, body)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	svcConns, upConns := toService.count()-svc0, toUpstream.count()-up0
	t.Logf("%d allowed requests through nginx (2 workers, %d kept-alive clients): %d connections opened to the service, %d to the upstream",
		allowed, clients, svcConns, upConns)

	if n := up.count(); n != allowed {
		t.Fatalf("the upstream saw %d requests, want %d", n, allowed)
	}
	up.mu.Lock()
	seen := append([]gwSeen(nil), up.seen...)
	up.mu.Unlock()
	for _, s := range seen {
		h := s.Header
		if s.Method != "GET" || !strings.HasPrefix(s.URI, "/api/v1/tenants/prod/nodes/n-") ||
			h.Get("X-Infracast-Subject") != viewer.ID || len(h.Values("X-Infracast-Subject")) != 1 ||
			h.Get("X-Infracast-Tenant") != "prod" || h.Get("X-Infracast-Permissions") != viewerPerms ||
			h.Get("Authorization") != "" {
			t.Fatalf("the upstream saw %s %s with %v", s.Method, s.URI, h)
		}
	}

	// Keep-alive: a connection per concurrent subrequest and worker at most,
	// never one per request (before: 26,541 for 26,444 requests).
	if limit := int64(allowed / 20); svcConns > limit {
		t.Errorf("nginx opened %d connections to the service for %d allowed requests, want at most %d: the auth subrequest does not keep its connection alive",
			svcConns, allowed, limit)
	}
	if limit := int64(allowed / 20); upConns > limit {
		t.Errorf("nginx opened %d connections to the upstream for %d requests, want at most %d", upConns, allowed, limit)
	}

	// Refused: the contract's 401/403 (nginx's named locations), nothing
	// reaches the upstream. These answers keep their JSON body, so nginx
	// closes the connection of each: counted, not limited.
	svc0 = toService.count()
	c := client()
	defer c.CloseIdleConnections()
	const refused = 10
	for i := 0; i < refused; i++ {
		if status, body, err := send(c, "POST", "/api/v1/tenants/prod/nodes", viewer.Token, nil); err != nil || status != 403 || body != bodyForbidden {
			t.Fatalf("viewer POST nodes through nginx: %d %s %v, want 403 %s", status, body, err, bodyForbidden)
		}
		if status, body, err := send(c, "GET", "/api/v1/tenants/prod/settings", viewer.Token, nil); err != nil || status != 403 || body != bodyForbidden {
			t.Fatalf("viewer GET settings through nginx: %d %s %v, want 403", status, body, err)
		}
		if status, body, err := send(c, "GET", "/api/v1/tenants/prod/nodes", "", nil); err != nil || status != 401 || body != bodyUnauthorized {
			t.Fatalf("GET nodes without a token through nginx: %d %s %v, want 401 %s", status, body, err, bodyUnauthorized)
		}
	}
	if n := up.count(); n != allowed {
		t.Fatalf("refused requests reached the upstream: %d requests, want %d", n, allowed)
	}
	t.Logf("%d refused requests: %d connections opened to the service", 3*refused, toService.count()-svc0)

	// The auth API itself, through the same kept-alive upstream.
	if status, body, err := send(c, "GET", "/api/v1/auth/me", viewer.Token, nil); err != nil || status != 200 || !strings.Contains(body, viewer.ID) {
		t.Fatalf("GET /api/v1/auth/me through nginx: %d %s %v", status, body, err)
	}
}

// faNginxBinary finds nginx: in PATH, else in /usr/sbin (not in an
// unprivileged user's PATH on Debian). Missing, the test skips — or fails
// with CI set (.ci/run installs it).
func faNginxBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	missingTool(t, "nginx")
	return ""
}

type faReplacement struct{ old, new string }

// faTemplate replaces each old string, which must occur exactly once, so that
// the test notices when the shipped configuration changes under it.
func faTemplate(conf string, reps []faReplacement) (string, error) {
	for _, r := range reps {
		if n := strings.Count(conf, r.old); n != 1 {
			return "", fmt.Errorf("%q occurs %d times, want once", r.old, n)
		}
		conf = strings.Replace(conf, r.old, r.new, 1)
	}
	return conf, nil
}

// faStartNginx runs nginx in the foreground with serverConf inside its http
// block (as /etc/nginx/conf.d/default.conf is), two workers, every file in a
// temporary folder, until it accepts connections on addr. It is stopped at
// cleanup.
func faStartNginx(t *testing.T, bin, serverConf, addr string) {
	t.Helper()
	dir := t.TempDir()
	_ = os.Chmod(dir, 0o755) // the workers run as nobody when nginx starts as root
	if err := os.WriteFile(filepath.Join(dir, "infracast.conf"), []byte(serverConf), 0o644); err != nil {
		t.Fatal(err)
	}
	mainConf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 2;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path %[1]s/client_body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	include %[1]s/infracast.conf;
}
`, dir)
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(mainConf), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-p", dir+"/", "-c", conf, "-e", filepath.Join(dir, "error.log"))
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	errorLog := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return strings.TrimSpace(out.String() + "\n" + string(b))
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("nginx error log:\n%s", errorLog())
		}
	})
	exited := errors.New("nginx exited at start")
	err := Poll(10*time.Second, func() error {
		select {
		case <-done:
			return exited
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if errors.Is(err, exited) {
		t.Fatalf("nginx exited at start:\n%s", errorLog())
	} else if err != nil {
		t.Fatalf("nginx does not accept connections on %s: %v\n%s", addr, err, errorLog())
	}
}

// faCountingRelay passes TCP connections through to a target and counts
// them: the connections a client (nginx) opened to it.
type faCountingRelay struct {
	addr  string
	conns atomic.Int64
}

func (r *faCountingRelay) count() int64 { return r.conns.Load() }

func faRelay(t *testing.T, target string) *faCountingRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &faCountingRelay{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			r.conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				s, err := net.DialTimeout("tcp", target, 5*time.Second)
				if err != nil {
					return
				}
				defer s.Close()
				go func() {
					_, _ = io.Copy(s, c)
					_ = s.(*net.TCPConn).CloseWrite()
				}()
				_, _ = io.Copy(c, s)
			}()
		}
	}()
	return r
}
