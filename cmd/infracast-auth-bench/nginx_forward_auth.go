package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// caseNginxForwardAuth: GET /api/v1/tenants/prod/nodes through nginx with
// auth_request to GET /api/v1/auth/verify (the service on loopback) and then
// to a loopback upstream ÷ the same request through the same nginx proxying
// to the same upstream without auth_request, in the same run. The nginx
// configuration is docs/nginx/infracast.conf's (upstream keepalive, HTTP/1.1
// without "Connection: close", the identity headers passed on); the second
// figure is how many TCP connections nginx opened to the service for the
// requests it authorized — a few per worker when keep-alive works, one per
// request when it does not (issue 15: 26,541 for 26,444). Without nginx the
// case is skipped.
func caseNginxForwardAuth(ctx context.Context, b *bench) ([]result, error) {
	if _, err := nginxBinary(); err != nil {
		fmt.Fprintf(b.log, "   skipped: %v\n", err)
		return nil, nil
	}
	upAddr, stopUp, err := serveOK()
	if err != nil {
		return nil, err
	}
	defer stopUp()
	// The service in a process of its own, as users run it (and as nginx
	// runs): in this one it would share the load generator's runtime.
	in, err := startServiceProcess(ctx, "")
	if err != nil {
		return nil, err
	}
	defer in.stop()
	user, _, err := in.benchUser()
	if err != nil {
		return nil, err
	}
	const keepalive = 32
	ngx, err := startNginx(ctx, 0, func(listen string) string {
		return nginxForwardAuthConfig(listen, in.addr, upAddr, keepalive)
	})
	if errors.Is(err, errNoNginx) {
		fmt.Fprintf(b.log, "   skipped: %v\n", err)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer ngx.stop()
	fmt.Fprintf(b.log, "   nginx %s, worker_processes auto, upstream keepalive %d\n", ngx.Version, keepalive)

	const path = "/api/v1/tenants/prod/nodes"
	auth := "Bearer " + user.Token
	// CPU time per request of nginx (master and workers), of the service's
	// process and of this one (load generator, upstream), to show where the
	// difference goes when the machine's CPUs are the limit.
	var baseCPU, subjectCPU, serviceCPU cpuPerRequest
	base := meteredGet(&baseCPU, ngx.cmd.Process.Pid, b, ngx.Addr, "/plain"+path, auth)
	var authorized atomic.Int64 // requests that went through verify
	subject := func(d time.Duration) (sample, error) {
		m, ms := subjectCPU.start(ngx.cmd.Process.Pid), serviceCPU.start(in.cmd.Process.Pid)
		s, err := httpLoad(ngx.Addr, b.conns, d, 200, get(ngx.Addr, path, auth))
		m.stop(s.n)
		ms.stop(s.n)
		authorized.Add(s.n)
		return s, err
	}
	// A request that nginx refused would fail httpLoad (it wants 200), so
	// every connection counted below served allowed requests only.
	if err := checkNginxForwardAuth(ngx.Addr, path, auth); err != nil {
		return nil, err
	}
	conns0, err := in.accepted()
	if err != nil {
		return nil, err
	}
	bs, ss, err := compare(b.duration, b.rounds(), 300*time.Millisecond, base, subject)
	if err != nil {
		return nil, err
	}
	conns1, err := in.accepted()
	if err != nil {
		return nil, err
	}
	opened, requests := conns1-conns0, authorized.Load()
	fmt.Fprintf(b.log, "   nginx opened %d connections to the service for %d authorized requests\n", opened, requests)
	if baseCPU.ok() && subjectCPU.ok() && serviceCPU.ok() {
		fmt.Fprintf(b.log, "   CPU per request: nginx %s without auth_request, %s with it; the service's process %s; this process (load, upstream) %s, %s\n",
			baseCPU.nginx(), subjectCPU.nginx(), serviceCPU.nginx(), baseCPU.self(), subjectCPU.self())
	}

	r := throughput("nginx_forward_auth", "req/s", &ss, &bs,
		fmt.Sprintf("the same request through the same nginx without auth_request, %d connections; nginx %s", b.conns, ngx.Version))
	r.atLeast(0.8)
	c := result{
		Name: "nginx_forward_auth.connections", Value: float64(opened), Unit: "connections",
		Baseline: float64(requests), Ratio: ratio(float64(opened), float64(requests)), Samples: requests,
		baselineName: "requests nginx authorized with the service (connections opened per request)",
	}
	ok := c.Ratio < 0.01
	c.Target, c.OK = "ratio < 0.01", &ok
	results := []result{r, c}
	if bound, ok := nginxAuthBound(&baseCPU, &subjectCPU); ok {
		fmt.Fprintf(b.log, "   nginx's own auth_request work alone (%s per request more nginx CPU) bounds the ratio at %.3f on this machine, were verify free\n",
			(subjectCPU.nginxPer() - baseCPU.nginxPer()).Round(100*time.Nanosecond), bound)
		results = append(results, result{
			Name: "nginx_forward_auth.nginx_bound", Value: r.Ratio, Unit: "ratio", Baseline: bound, Ratio: ratio(r.Ratio, bound),
			baselineName: "the most nginx_forward_auth's ratio could be on this machine were the service's verify free: CPU per request without auth_request (nginx and this process) ÷ that plus what nginx's auth_request subrequest adds",
		})
	}
	return results, nil
}

// nginxAuthBound: the most nginx_forward_auth's ratio can be on this machine
// with the load, nginx and the service sharing its cores, were the service's
// verify to cost nothing - the CPU per request of the baseline (nginx's and
// this process's) over that plus what nginx alone spends more per request on
// its auth_request subrequest. (When the cores are the limit, as with 32
// connections on 2 cores, throughput goes as 1/CPU per request: the bound
// times the baseline is the rate nginx could serve, verify aside.)
func nginxAuthBound(base, subject *cpuPerRequest) (float64, bool) {
	if !base.ok() || !subject.ok() {
		return 0, false
	}
	baseTotal := base.nginxPer() + base.selfPer()
	// nginx's CPU comes from /proc in 10 ms ticks: over a very short run
	// the difference may come out below 0, which means too little to see.
	extra := max(subject.nginxPer()-base.nginxPer(), 0)
	if baseTotal <= 0 {
		return 0, false
	}
	return float64(baseTotal) / float64(baseTotal+extra), true
}

// nginxForwardAuthConfig is docs/nginx/infracast.conf's forward auth for the
// bench: the same upstream blocks (keepalive) and locations, the resource
// service a loopback upstream, and /plain/ the same proxying without
// auth_request (the baseline).
func nginxForwardAuthConfig(listen, authAddr, upAddr string, keepalive int) string {
	return fmt.Sprintf(`	upstream infracast_auth {
		server %[2]s;
		keepalive %[4]d;
	}
	upstream resources {
		server %[3]s;
		keepalive %[4]d;
	}
	server {
		listen %[1]s;
		location /api/v1/tenants/ {
			auth_request /_auth;
			auth_request_set $infracast_subject     $upstream_http_x_infracast_subject;
			auth_request_set $infracast_tenant      $upstream_http_x_infracast_tenant;
			auth_request_set $infracast_permissions $upstream_http_x_infracast_permissions;
			proxy_set_header X-Infracast-Subject     $infracast_subject;
			proxy_set_header X-Infracast-Tenant      $infracast_tenant;
			proxy_set_header X-Infracast-Permissions $infracast_permissions;
			proxy_set_header Authorization "";
			proxy_set_header X-Forwarded-For   $remote_addr;
			proxy_set_header X-Forwarded-Proto $scheme;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_pass http://resources;
		}
		location = /_auth {
			internal;
			proxy_pass http://infracast_auth/api/v1/auth/verify;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_pass_request_body off;
			proxy_set_header Content-Length "";
			proxy_set_header X-Original-URI     $request_uri;
			proxy_set_header X-Original-Method  $request_method;
			proxy_set_header X-Forwarded-Uri    $request_uri;
			proxy_set_header X-Forwarded-Method $request_method;
			proxy_set_header X-Forwarded-For    $remote_addr;
		}
		location /plain/ {
			proxy_set_header Authorization "";
			proxy_set_header X-Forwarded-For   $remote_addr;
			proxy_set_header X-Forwarded-Proto $scheme;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_pass http://resources/;
		}
	}`, listen, authAddr, upAddr, keepalive)
}

// checkNginxForwardAuth: before measuring, nginx refuses a request without a
// token (so the measured path does go through verify) and allows one with it.
func checkNginxForwardAuth(addr, path, authorization string) error {
	for _, tc := range []struct {
		authorization string
		want          int
	}{{"", 401}, {authorization, 200}} {
		req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		get(addr, path, tc.authorization)(0, req)
		err := fasthttp.DoTimeout(req, res, 10*time.Second)
		status := res.StatusCode()
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(res)
		if err != nil {
			return fmt.Errorf("nginx forward auth: GET %s: %w", path, err)
		}
		if status != tc.want {
			return fmt.Errorf("nginx forward auth: GET %s (authorization %t): %d, want %d", path, tc.authorization != "", status, tc.want)
		}
	}
	return nil
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// cpuPerRequest adds up CPU time (user and system) spent during load runs,
// and the requests they made: another process's and its children's, from
// /proc - nginx (its master and workers), or the service's process; the
// fields and methods say nginx - and this process's (getrusage).
type cpuPerRequest struct {
	nginxCPU, selfCPU time.Duration
	requests          int64
	failed            bool
}

// meteredGet is a load round of GET path (with the Authorization header auth)
// on addr, adding its requests and CPU time - pid's process tree's and this
// process's - to c.
func meteredGet(c *cpuPerRequest, pid int, b *bench, addr, path, auth string) func(time.Duration) (sample, error) {
	return func(d time.Duration) (sample, error) {
		m := c.start(pid)
		s, err := httpLoad(addr, b.conns, d, 200, get(addr, path, auth))
		m.stop(s.n)
		return s, err
	}
}

type cpuMeter struct {
	c           *cpuPerRequest
	pid         int
	nginx, self time.Duration
}

func (c *cpuPerRequest) start(nginxPid int) cpuMeter {
	n, err := processTreeCPU(nginxPid)
	c.failed = c.failed || err != nil
	return cpuMeter{c: c, pid: nginxPid, nginx: n, self: selfCPU()}
}

func (m cpuMeter) stop(requests int64) {
	n, err := processTreeCPU(m.pid)
	m.c.failed = m.c.failed || err != nil
	m.c.nginxCPU += n - m.nginx
	m.c.selfCPU += selfCPU() - m.self
	m.c.requests += requests
}

func (c *cpuPerRequest) ok() bool { return !c.failed && c.requests > 0 }

func (c *cpuPerRequest) nginxPer() time.Duration { return c.nginxCPU / time.Duration(c.requests) }

func (c *cpuPerRequest) selfPer() time.Duration { return c.selfCPU / time.Duration(c.requests) }

func (c *cpuPerRequest) nginx() string { return c.nginxPer().Round(100 * time.Nanosecond).String() }

func (c *cpuPerRequest) self() string { return c.selfPer().Round(100 * time.Nanosecond).String() }

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processTreeCPU is the CPU time of pid and of its children (nginx's
// workers), from /proc/<pid>/stat (Linux; in clock ticks of 1/100 s).
func processTreeCPU(pid int) (time.Duration, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		return 0, fmt.Errorf("no /proc: %v", err)
	}
	var ticks int64
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid … utime(14) stime(15); comm may hold spaces.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			continue
		}
		me, _ := strconv.Atoi(strings.TrimSpace(s[:strings.IndexByte(s, ' ')]))
		ppid, _ := strconv.Atoi(f[1])
		if me != pid && ppid != pid {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + st
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
