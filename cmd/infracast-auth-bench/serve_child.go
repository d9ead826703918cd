package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/infracast/auth/http/service"
)

// serveChildEnv, set to an upstream URL in this program's environment, makes
// it serve the service instead of benchmarking (serveChild): the service in a
// process of its own, as the shipped binary runs it, for the cases that
// compare it with another process (nginx).
const serveChildEnv = "INFRACAST_BENCH_SERVE_UPSTREAM"

// serveProfile: the service's process writes a CPU profile of its whole run
// to this file, and of each later one to the file with a number appended
// (-service-cpuprofile).
var serveProfile = flag.String("service-cpuprofile", "",
	"gateway.vs_nginx, gateway.bare_vs_nginx, nginx_forward_auth: write a CPU profile of the process serving (the service, or the bare proxy, in a process of its own) to this file, a number appended for each after the first")

// serveProfileEnv hands -service-cpuprofile's file to the service's process.
const serveProfileEnv = "INFRACAST_BENCH_SERVE_CPUPROFILE"

// serveChild runs the service with its defaults (embedded NATS syncing every
// write, in a temporary folder; the bench's admin) and INFRACAST_UPSTREAM_URL
// set to the environment's upstream ("-" for none), on a free loopback port.
// Once ready it prints the address on a line of its own, then answers each
// line "conns" on its standard input with the number of connections it has
// accepted, and serves until its standard input closes (its parent gone or
// done).
func serveChild() int {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "infracast-auth-bench-serve-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	stopProfile, err := childProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stopProfile()
	cfg := service.Defaults()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	cfg.BootstrapAdmin, cfg.BootstrapPassword = adminUser, adminPassword
	if up := os.Getenv(serveChildEnv); up != "-" {
		cfg.UpstreamURL = up
	}
	svc, err := service.Start(ctx, cfg, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cl := &countingListener{Listener: ln}
	served := make(chan error, 1)
	go func() { served <- svc.Serve(cl) }()
	readyCtx, cancel := context.WithTimeout(ctx, time.Minute)
	err = svc.WaitReady(readyCtx, io.Discard)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(ln.Addr().String())
	if err := answerUntilStdinCloses(cl, served); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := svc.Shutdown(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "shutdown:", err)
		return 1
	}
	return 0
}

// answerUntilStdinCloses answers each line "conns" on standard input with
// the number of connections cl has accepted, until standard input closes
// (nil) or the server fails first (served's error).
func answerUntilStdinCloses(cl *countingListener, served <-chan error) error {
	stdinClosed := make(chan struct{})
	go func() {
		defer close(stdinClosed)
		for in := bufio.NewScanner(os.Stdin); in.Scan(); {
			if in.Text() == "conns" {
				fmt.Println(cl.accepted.Load())
			}
		}
	}()
	select {
	case <-stdinClosed:
		return nil
	case err := <-served:
		return err
	}
}

// childProfile starts a CPU profile of this process's whole run when its
// parent asked for one (serveProfileEnv); the function it returns stops it.
func childProfile() (stop func(), err error) {
	path := os.Getenv(serveProfileEnv)
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "the CPU profile:", err)
		}
	}, nil
}

// serveProfiles counts the service processes started with a profile.
var serveProfiles atomic.Int64

// serviceProcess is the service in a child process (serveChild).
type serviceProcess struct {
	*instance // addr and an HTTP client; no in-process service
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	stdout    *bufio.Reader
	stderr    *bytes.Buffer
}

// startServiceProcess starts this program as serveChild with upstream (""
// for none), and waits until the service is ready.
func startServiceProcess(ctx context.Context, upstream string) (*serviceProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if upstream == "" {
		upstream = "-"
	}
	return startChildServer(ctx, exe, serveChildEnv+"="+upstream, *serveProfile != "")
}

// startBareProxyProcess starts this program as bareProxyChild, a bare
// fasthttp reverse proxy to upAddr.
func startBareProxyProcess(ctx context.Context, upAddr string) (*serviceProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startChildServer(ctx, exe, bareProxyEnv+"="+upAddr, *serveProfile != "")
}

// startChildServer starts exe with env added to this process's environment
// (and -service-cpuprofile's file when profile), and reads the address it
// prints once it serves.
func startChildServer(ctx context.Context, exe, env string, profile bool) (*serviceProcess, error) {
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), env)
	if profile {
		path := *serveProfile
		if n := serveProfiles.Add(1); n > 1 {
			path += "." + strconv.Itoa(int(n))
		}
		cmd.Env = append(cmd.Env, serveProfileEnv+"="+path)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serviceProcess{cmd: cmd, stdin: stdin, stdout: bufio.NewReader(stdout), stderr: &stderr}
	line, err := p.stdout.ReadString('\n')
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("the service's process ended before it was ready: %v\n%s", err, stderr.String())
	}
	p.instance = &instance{addr: strings.TrimSpace(line), hc: &fasthttp.Client{ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}}
	return p, nil
}

// accepted asks the child how many connections its service has accepted.
func (p *serviceProcess) accepted() (int64, error) {
	if _, err := io.WriteString(p.stdin, "conns\n"); err != nil {
		return 0, err
	}
	line, err := p.stdout.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("the service's process: %v\n%s", err, p.stderr.String())
	}
	return strconv.ParseInt(strings.TrimSpace(line), 10, 64)
}

// stop closes the child's standard input (it shuts down) and waits for it.
func (p *serviceProcess) stop() {
	if err := p.stdin.Close(); err != nil { // it will not shut down by itself: killed below
		fmt.Fprintf(os.Stderr, "infracast-auth-bench: closing the service process's input: %v\n", err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			fmt.Fprintf(os.Stderr, "infracast-auth-bench: the service's process: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(20 * time.Second):
		if err := p.cmd.Process.Kill(); err != nil {
			fmt.Fprintf(os.Stderr, "infracast-auth-bench: the service's process did not stop, and killing it failed: %v\n", err)
			return
		}
		<-done
	}
}
