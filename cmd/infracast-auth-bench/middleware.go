package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/infracast/auth/http/client"
)

// caseMiddleware: a small net/http resource service behind the Go client's
// middleware (http/client) ÷ the same service without it, same request:
//
//   - middleware: forward auth, one GET /api/v1/auth/verify to the service
//     per request over kept-alive connections (revocations seen at once);
//   - middleware.offline: the JWKS verifier, an EdDSA signature and the
//     claims checked in process (revocations not seen until expiry).
//
// The service, the resource service and the load generator share this
// process and its cores, as on one small host.
func caseMiddleware(ctx context.Context, b *bench) ([]result, error) {
	in, err := startInstance(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer in.close()
	user, admin, err := in.benchUser()
	if err != nil {
		return nil, err
	}
	const path = "/api/v1/tenants/prod/nodes"
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok")) // the load generator sees a failed write
	})
	baseAddr, stopBase, err := serveHTTP(ok)
	if err != nil {
		return nil, err
	}
	defer stopBase()

	measure := func(name string, a client.Authorizer, token, what string) (result, error) {
		addr, stop, err := serveHTTP(client.Middleware(a)(ok))
		if err != nil {
			return result{}, err
		}
		defer stop()
		auth := "Bearer " + token
		base := func(d time.Duration) (sample, error) {
			return httpLoad(baseAddr, b.conns, d, 200, get(baseAddr, path, auth))
		}
		subject := func(d time.Duration) (sample, error) {
			return httpLoad(addr, b.conns, d, 200, get(addr, path, auth))
		}
		bs, ss, err := compare(b.duration, b.rounds(), 300*time.Millisecond, base, subject)
		if err != nil {
			return result{}, fmt.Errorf("%s: %w", name, err)
		}
		r := throughput(name, "req/s", &ss, &bs, fmt.Sprintf("the same net/http resource service without the middleware (%s), %d connections", what, b.conns))
		fmt.Fprintf(b.log, "   %s: p50 %+.0f µs per request over the bare service\n", name, *r.P50-*r.BaselineP50)
		return r, nil
	}

	fa, err := client.NewForwardAuth("http://" + in.addr)
	if err != nil {
		return nil, err
	}
	rf, err := measure("middleware", fa, user.Token, "forward auth")
	if err != nil {
		return nil, err
	}

	// Offline: an EdDSA key signs the tokens from now on; a token signed by it.
	if err := in.call("POST", "/api/v1/admin/signing-keys", admin, map[string]string{"algorithm": "EdDSA"}, nil, 201); err != nil {
		return nil, err
	}
	eddsa, err := in.login("bench-user", userPassword)
	if err != nil {
		return nil, err
	}
	v, err := client.NewJWKSVerifier("http://" + in.addr)
	if err != nil {
		return nil, err
	}
	ro, err := measure("middleware.offline", v, eddsa.Token, "offline JWKS verification")
	if err != nil {
		return nil, err
	}
	return []result{rf, ro}, nil
}

// serveHTTP runs a net/http handler on a free loopback port.
func serveHTTP(h http.Handler) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }() // ends with Shutdown below
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx) // the bench ends with it: its error would change nothing
	}, nil
}
