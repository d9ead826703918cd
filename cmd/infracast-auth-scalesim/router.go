package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// runRouter measures what a consistent router costs in front of partitioned
// replicas: a request to the replica that owns the caller's slot, straight
// (a smart client, or a proxy that already routes) or through a router that
// reads the access token's subject, hashes it to a slot, looks the slot's
// owner up and forwards the request over loopback HTTP (fasthttp, kept-alive
// connections). The owners answer like forward auth does (200 and identity
// headers), at no cost of their own, so the difference is the hop.
func runRouter(ctx context.Context, c *config) ([]result, error) {
	owners := make([]string, 2)
	for i := range owners {
		addr, stop, err := serve(func(rc *fasthttp.RequestCtx) {
			rc.Response.Header.Set("X-Infracast-Subject", "user")
			rc.Response.Header.Set("X-Infracast-Permissions", "nodes:read")
			rc.SetBodyString("OK")
		})
		if err != nil {
			return nil, err
		}
		defer stop()
		owners[i] = addr
	}
	// The routing table: slot → owner. A real one is watched from a KV bucket.
	table := make([]*fasthttp.HostClient, c.slots)
	clients := make([]*fasthttp.HostClient, len(owners))
	for i, a := range owners {
		clients[i] = &fasthttp.HostClient{Addr: a, MaxConns: 4 * c.conns, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	}
	for s := range table {
		table[s] = clients[s%len(clients)]
	}
	router, stop, err := serve(func(rc *fasthttp.RequestCtx) {
		slot, ok := routeSlot(rc.Request.Header.Peek("Authorization"), len(table))
		if !ok {
			rc.Error("no subject", fasthttp.StatusUnauthorized)
			return
		}
		if err := table[slot].Do(&rc.Request, &rc.Response); err != nil {
			rc.Error(err.Error(), fasthttp.StatusBadGateway)
		}
	})
	if err != nil {
		return nil, err
	}
	defer stop()

	uid := newID("user")
	token := accessToken(uid, newID("sess"))
	slot := mustSlot(token, len(table))
	if slot != slotOf(uid, len(table)) {
		return nil, fmt.Errorf("the router puts user %s in slot %d, the partitioning in %d", uid, slot, slotOf(uid, len(table)))
	}
	owner := table[slot].Addr
	load := func(addr string, conns int, d time.Duration) (sample, error) {
		hc := &fasthttp.HostClient{Addr: addr, MaxConns: conns, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
		defer hc.CloseIdleConnections()
		return runOps(conns, d, func(int) func() error {
			req, res := new(fasthttp.Request), new(fasthttp.Response)
			req.SetRequestURI("http://" + addr + "/api/v1/auth/verify")
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("X-Forwarded-Method", "GET")
			req.Header.Set("X-Forwarded-Uri", "/api/v1/tenants/prod/nodes")
			return func() error {
				if err := hc.Do(req, res); err != nil {
					return err
				}
				if res.StatusCode() != fasthttp.StatusOK || !bytes.Equal(res.Body(), []byte("OK")) {
					return fmt.Errorf("status %d: %.100s", res.StatusCode(), res.Body())
				}
				return nil
			}
		})
	}
	// Alternate, about once a second, so that other load on the machine hits
	// both alike.
	compare := func(conns int) (direct, hop sample, err error) {
		if _, err = load(owner, conns, c.routerDur/8); err != nil { // warm up
			return
		}
		if _, err = load(router, conns, c.routerDur/8); err != nil {
			return
		}
		rounds := max(2, int(c.routerDur/time.Second))
		per := c.routerDur / time.Duration(rounds)
		for r := 0; r < rounds; r++ {
			x, e := load(owner, conns, per)
			if e != nil {
				return direct, hop, fmt.Errorf("direct: %w", e)
			}
			direct.add(x)
			y, e := load(router, conns, per)
			if e != nil {
				return direct, hop, fmt.Errorf("through the router: %w", e)
			}
			hop.add(y)
		}
		return
	}
	d1, h1, err := compare(1)
	if err != nil {
		return nil, err
	}
	dn, hn, err := compare(c.conns)
	if err != nil {
		return nil, err
	}
	dec, decisions := decisionCost(token, len(table), c.routerDur/4)
	return []result{
		{Name: "router.direct.unloaded", Value: d1.rate(), Unit: "req/s", P50: d1.us(0.5), P99: d1.us(0.99), Samples: d1.n,
			Params: map[string]any{"conns": 1, "cpu_us_per_op": d1.cpuPerOp()}, what: "one request at a time straight to the owner (loopback HTTP)"},
		{Name: "router.hop.unloaded", Value: h1.rate(), Unit: "req/s", P50: h1.us(0.5), P99: h1.us(0.99), Samples: h1.n,
			Params: map[string]any{"conns": 1, "cpu_us_per_op": h1.cpuPerOp(), "added_p50_us": *h1.us(0.5) - *d1.us(0.5), "added_p99_us": *h1.us(0.99) - *d1.us(0.99)},
			what:   "the same through the router"},
		{Name: "router.direct", Value: dn.rate(), Unit: "req/s", P50: dn.us(0.5), P99: dn.us(0.99), Samples: dn.n,
			Params: map[string]any{"conns": c.conns, "cpu_us_per_op": dn.cpuPerOp()}, what: fmt.Sprintf("%d connections straight to the owner", c.conns)},
		{Name: "router.hop", Value: hn.rate(), Unit: "req/s", P50: hn.us(0.5), P99: hn.us(0.99), Samples: hn.n,
			Params: map[string]any{"conns": c.conns, "cpu_us_per_op": hn.cpuPerOp(), "ratio_to_direct": hn.rate() / dn.rate()},
			what:   fmt.Sprintf("%d connections through the router, on the same cores", c.conns)},
		{Name: "router.decision", Value: dec, Unit: "ns/op", Samples: decisions,
			what: "the routing decision alone (a smart client's cost): token subject → slot → owner"},
	}, nil
}

// serve runs a fasthttp server on a free loopback port.
func serve(h fasthttp.RequestHandler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	s := &fasthttp.Server{Handler: h, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	go func() { _ = s.Serve(ln) }()
	return ln.Addr().String(), func() { _ = s.Shutdown() }, nil
}

// accessToken is shaped like the service's: an HS256 JWT whose claims are
// identifiers only. The router reads its subject without verifying the
// signature (the owner verifies): a forged subject only picks the replica
// that then refuses it.
func accessToken(userID, sessionID string) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "HS256", "kid": "f31cb3f885a65feb", "typ": "at+jwt"})
	now := time.Now().Unix()
	p, _ := json.Marshal(map[string]any{"iss": "infracast-auth", "sub": userID, "aud": []string{"infracast-api"},
		"exp": now + 3600, "nbf": now, "iat": now, "jti": newID("tok"), "sid": sessionID})
	return enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "." + enc.EncodeToString(bytes.Repeat([]byte{7}, 32))
}

// routeSlot is the slot of the subject of the bearer token in an
// Authorization header: the user's slot, as slotOf.
func routeSlot(authorization []byte, slots int) (int, bool) {
	tok, ok := bytes.CutPrefix(authorization, []byte("Bearer "))
	if !ok {
		return 0, false
	}
	_, rest, ok := bytes.Cut(tok, []byte("."))
	if !ok {
		return 0, false
	}
	payload, _, ok := bytes.Cut(rest, []byte("."))
	if !ok {
		return 0, false
	}
	var buf [512]byte
	if base64.RawURLEncoding.DecodedLen(len(payload)) > len(buf) {
		return 0, false
	}
	n, err := base64.RawURLEncoding.Decode(buf[:], payload)
	if err != nil {
		return 0, false
	}
	_, after, ok := bytes.Cut(buf[:n], []byte(`"sub":"`))
	if !ok {
		return 0, false
	}
	sub, _, ok := bytes.Cut(after, []byte(`"`))
	if !ok || len(sub) == 0 {
		return 0, false
	}
	return int(fnv64a(sub) % uint64(slots)), true
}

func mustSlot(token string, slots int) int {
	s, ok := routeSlot([]byte("Bearer "+token), slots)
	if !ok {
		panic(errors.New("the generated token has no subject"))
	}
	return s
}

// decisionCost is the routing decision's time per request, in nanoseconds,
// measured for about d, and how many decisions that was.
func decisionCost(token string, slots int, d time.Duration) (float64, int64) {
	auth := []byte("Bearer " + token)
	sink, n := 0, int64(0)
	start := time.Now()
	deadline := start.Add(d)
	for n == 0 || time.Now().Before(deadline) {
		for i := 0; i < 1024; i++ {
			s, _ := routeSlot(auth, slots)
			sink += s
		}
		n += 1024
	}
	elapsed := time.Since(start)
	if sink < 0 {
		panic("unreachable")
	}
	return float64(elapsed.Nanoseconds()) / float64(n), n
}
