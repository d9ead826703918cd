package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/valyala/fasthttp"
)

// bareProxyEnv, set to an upstream address in this program's environment,
// makes it serve a bare fasthttp reverse proxy to it (bareProxyChild) instead
// of benchmarking.
const bareProxyEnv = "INFRACAST_BENCH_BARE_PROXY"

// bareProxyChild serves the least a reverse proxy built on the gateway's HTTP
// stack can do: a fasthttp server whose handler hands the request it read to
// a fasthttp HostClient with kept-alive connections (HostClient.Do) and
// answers with what came back - no token check, no route policy, no header
// rewriting, no middleware. In a process of its own, beside nginx, it is the
// bound a goroutine-per-connection Go proxy sets on this machine
// (gateway.bare_vs_nginx). Protocol as serveChild's: the address on a line
// once listening; "conns" on standard input answers with the connections
// accepted; standard input closed ends it.
func bareProxyChild(upAddr string) int {
	stopProfile, err := childProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stopProfile()
	hc := &fasthttp.HostClient{Addr: upAddr, MaxConns: 1024, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	srv := &fasthttp.Server{
		Handler: func(c *fasthttp.RequestCtx) {
			if err := hc.Do(&c.Request, &c.Response); err != nil {
				c.Error(err.Error(), fasthttp.StatusBadGateway)
			}
		},
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cl := &countingListener{Listener: ln}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(cl) }()
	fmt.Println(ln.Addr().String())
	if err := answerUntilStdinCloses(cl, served); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.ShutdownWithContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "shutdown:", err)
		return 1
	}
	return 0
}
