package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"
)

// caseCatchUp: what the read-your-writes catch-ups cost a replica while
// another one serves (docs/architecture.md: a list or history catches up with
// the event store's head, an ID that is not found catches up with its
// aggregate, a login asks the stream's leader for the user's last event).
// The subject is replica A of two (A embeds NATS, B connects to it: B
// announces itself, so A is not alone), the baseline a lone replica with the
// same data and the same defaults otherwise; both answer the same request
// alternately, in the same rounds.
func caseCatchUp(ctx context.Context, b *bench) ([]result, error) {
	rig, err := startPropagationRig(ctx, "BENCH_CATCHUP", "bench.catchup", nil)
	if err != nil {
		return nil, err
	}
	defer rig.close()
	lone, err := startInstance(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer lone.close()
	loneAdmin, err := lone.login(adminUser, adminPassword)
	if err != nil {
		return nil, err
	}
	for _, in := range []struct {
		in    *instance
		admin string
	}{{rig.a, rig.admin.Token}, {lone, loneAdmin.Token}} {
		for i := 0; i < 20; i++ {
			if err := in.in.createUser(in.admin, fmt.Sprintf("bench-catchup-%d", i), "viewer"); err != nil {
				return nil, err
			}
		}
	}
	if err := waitFor(10*time.Second, func() bool { return !rig.a.svc.Commands.Alone() }); err != nil {
		return nil, fmt.Errorf("replica A never heard of B: %w", err)
	}
	if !lone.svc.Commands.Alone() {
		return nil, errors.New("the lone replica believes another one serves")
	}

	requests := catchUpRequests(b.conns)
	var results []result
	for _, r := range requests {
		base := func(d time.Duration) (sample, error) {
			return httpLoad(lone.addr, r.conns, d, r.status, r.mk(lone, loneAdmin.Token))
		}
		subject := func(d time.Duration) (sample, error) {
			return httpLoad(rig.a.addr, r.conns, d, r.status, r.mk(rig.a, rig.admin.Token))
		}
		bs, ss, err := compare(b.duration, b.rounds(), 300*time.Millisecond, base, subject)
		if err != nil {
			return results, fmt.Errorf("%s: %w", r.name, err)
		}
		results = append(results, throughput(r.name, r.unit, &ss, &bs,
			fmt.Sprintf("%s on a lone replica, %d connections; the subject one of two replicas", r.what, r.conns)))
	}
	return results, nil
}

// catchUpRequest is one of caseCatchUp's requests: its result's name and
// unit, the request and the status it must answer, and how many clients send
// it.
type catchUpRequest struct {
	name, what string
	unit       string // what one request is, per second
	status     int
	mk         func(in *instance, admin string) func(int, *fasthttp.Request)
	conns      int
}

// catchUpRequests are caseCatchUp's requests; conns clients send the reads.
func catchUpRequests(conns int) []catchUpRequest {
	missing := "/api/v1/users/user-01JZZZZZZZZZZZZZZZZZZZZZZZ"
	return []catchUpRequest{
		{"catch_up.list", "GET /api/v1/users (21 users; the list catches up with the stream's head)", "req/s", 200,
			func(in *instance, admin string) func(int, *fasthttp.Request) {
				return get(in.addr, "/api/v1/users", "Bearer "+admin)
			}, conns},
		{"catch_up.not_found", "GET " + missing + " (404 after catching up with the user's subject)", "req/s", 404,
			func(in *instance, admin string) func(int, *fasthttp.Request) {
				return get(in.addr, missing, "Bearer "+admin)
			}, conns},
		{"catch_up.login", "POST /api/v1/auth/token (the production argon2id cost; the login asks the stream's leader for the user's last event)", "logins/s", 200,
			func(in *instance, _ string) func(int, *fasthttp.Request) {
				return func(i int, req *fasthttp.Request) {
					postJSON(req, in.addr, "/api/v1/auth/token", map[string]string{"username": fmt.Sprintf("bench-catchup-%d", i%20), "password": userPassword})
				}
			}, 8},
	}
}

// waitFor polls cond until it holds or d has passed.
func waitFor(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}
