package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// errNoNginx: no nginx binary on this machine. A case that needs nginx skips
// (it prints why and reports nothing) rather than fail.
var errNoNginx = errors.New("nginx not found in PATH, /usr/sbin or /usr/local/sbin (Debian: apt-get install nginx-light)")

// nginxBinary finds nginx: in PATH, else where distributions put it (sbin is
// often not in an unprivileged user's PATH).
func nginxBinary() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errNoNginx
}

// nginxServer is an nginx started by startNginx, listening on Addr.
type nginxServer struct {
	Addr    string // 127.0.0.1:port
	Version string // as nginx -v prints it
	cmd     *exec.Cmd
	dir     string
	done    chan struct{} // closed when the process has exited
	stderr  *bytes.Buffer
}

// startNginx runs nginx in the foreground on a free loopback port with a
// temporary prefix folder (configuration, pid file, logs, temp paths), and
// waits until it accepts connections. httpBlock returns the contents of the
// http {} block for the listen address ("127.0.0.1:port": use it in a
// server's listen directive); the rest of the configuration - workers, events,
// logs off, temp paths - is nginxConfig's. Stop it with stop. It returns
// errNoNginx when there is no nginx.
func startNginx(ctx context.Context, workers int, httpBlock func(listen string) string) (*nginxServer, error) {
	bin, err := nginxBinary()
	if err != nil {
		return nil, err
	}
	version, _ := exec.CommandContext(ctx, bin, "-v").CombinedOutput()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken in between
		n, err := startNginxOnce(ctx, bin, workers, httpBlock)
		if err == nil {
			n.Version = strings.TrimSpace(strings.TrimPrefix(string(version), "nginx version: "))
			return n, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startNginxOnce(ctx context.Context, bin string, workers int, httpBlock func(listen string) string) (*nginxServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()

	dir, err := os.MkdirTemp("", "infracast-auth-bench-nginx-")
	if err != nil {
		return nil, err
	}
	// Readable by the workers, which run as nobody when nginx starts as root.
	_ = os.Chmod(dir, 0o755)
	for _, sub := range []string{"logs", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o777); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		_ = os.Chmod(filepath.Join(dir, sub), 0o777) // whatever the umask
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConfig(dir, workers, httpBlock(addr))), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	n := &nginxServer{Addr: addr, dir: dir, done: make(chan struct{}), stderr: &bytes.Buffer{}}
	// -e: the compiled-in error log (/var/log/nginx/error.log) is opened
	// before the configuration is read; -p: relative paths are the folder's.
	n.cmd = exec.Command(bin, "-p", dir+"/", "-c", conf, "-e", filepath.Join(dir, "logs", "error.log"))
	n.cmd.Stdout, n.cmd.Stderr = n.stderr, n.stderr
	// Its own process group, so that stop can end the workers too; the
	// master dies with the bench.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-n.done:
			log, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("nginx exited at start: %s %s", strings.TrimSpace(n.stderr.String()), strings.TrimSpace(string(log)))
		case <-ctx.Done():
			n.stop()
			return nil, ctx.Err()
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return n, nil
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, fmt.Errorf("nginx does not accept connections on %s after 10s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nginxConfig is a whole nginx.conf around httpBlock: in the foreground, with
// workers worker processes (0: one per CPU), no access log, its files in dir.
func nginxConfig(dir string, workers int, httpBlock string) string {
	w := "auto"
	if workers > 0 {
		w = fmt.Sprint(workers)
	}
	return fmt.Sprintf(`daemon off;
master_process on;
worker_processes %[2]s;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path %[1]s/tmp/client_body;
	proxy_temp_path %[1]s/tmp/proxy;
	fastcgi_temp_path %[1]s/tmp/fastcgi;
	uwsgi_temp_path %[1]s/tmp/uwsgi;
	scgi_temp_path %[1]s/tmp/scgi;
	keepalive_requests 1000000;
	keepalive_timeout 75s;
%[3]s
}
`, dir, w, httpBlock)
}

// stop ends nginx - a graceful quit, then after 5 s a kill of its process
// group (the master and its workers) - and removes its folder.
func (n *nginxServer) stop() {
	if n.cmd.Process != nil {
		_ = n.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-n.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
			<-n.done
		}
	}
	os.RemoveAll(n.dir)
}
