package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// caseNginxProxy: the gateway case's request through nginx as a plain
// reverse proxy (no authorization: what a proxy hop costs by itself, kept-alive
// connections on both sides) to the same kind of loopback upstream ÷ the same
// request straight to the upstream. It puts the gateway's ratio next to a
// mainstream proxy's, on the same machine, in the same run
// (-cases gateway,nginx_proxy). Without nginx it is skipped.
func caseNginxProxy(ctx context.Context, b *bench) ([]result, error) {
	if _, err := nginxBinary(); err != nil {
		fmt.Fprintf(b.log, "   skipped: %v\n", err)
		return nil, nil
	}
	upAddr, stopUp, err := serveOK()
	if err != nil {
		return nil, err
	}
	defer stopUp()
	ngx, err := startNginx(ctx, 0, plainProxy(upAddr))
	if errors.Is(err, errNoNginx) {
		fmt.Fprintf(b.log, "   skipped: %v\n", err)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer ngx.stop()
	fmt.Fprintf(b.log, "   nginx %s, worker_processes auto, upstream keepalive 64\n", ngx.Version)
	// The gateway case's request, with a bearer token of an access token's
	// size (nginx passes it on).
	const path = "/api/v1/tenants/prod/nodes"
	auth := "Bearer eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9." + strings.Repeat("x", 300)
	// CPU time per request: nginx's own, and this process's (the load and
	// the upstream), without and with nginx in between.
	var baseCPU, subjectCPU cpuPerRequest
	base := meteredGet(&baseCPU, ngx.cmd.Process.Pid, b, upAddr, path, auth)
	subject := meteredGet(&subjectCPU, ngx.cmd.Process.Pid, b, ngx.Addr, path, auth)
	bs, ss, err := compare(b.duration, b.rounds(), 300*time.Millisecond, base, subject)
	if err != nil {
		return nil, err
	}
	if baseCPU.ok() && subjectCPU.ok() {
		fmt.Fprintf(b.log, "   CPU per request: nginx %s; this process (load, upstream) %s direct, %s through nginx\n",
			subjectCPU.nginx(), baseCPU.self(), subjectCPU.self())
	}
	return []result{throughput("nginx_proxy", "req/s", &ss, &bs,
		fmt.Sprintf("the same request straight to the upstream, %d connections; nginx %s as a plain proxy", b.conns, ngx.Version))}, nil
}

// plainProxy is the http {} block of nginx as a plain reverse proxy to
// upAddr: kept-alive connections on both sides, no authorization.
func plainProxy(upAddr string) func(listen string) string {
	return func(listen string) string {
		return fmt.Sprintf(`	upstream resources {
		server %s;
		keepalive 64;
	}
	server {
		listen %s;
		location / {
			proxy_pass http://resources;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}`, upAddr, listen)
	}
}
