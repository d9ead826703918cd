package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fasthttp"

	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/http/service"
)

// caseSCIMPropagation is casePropagation with a SCIM deprovisioning as the
// revocation (issue 17): two instances on one NATS (A embeds it, B connects
// to it); a user provisioned through SCIM signs in on A, B accepts the
// token; the identity provider deprovisions the user on A (PATCH
// /scim/v2/Users/{id} with active:false, as Okta and Entra ID send it); the
// figure is the time from A's answer to B's first 401 on GET
// /api/v1/auth/me, sent as soon as B's projection runner has applied the
// deactivation (the same method as propagation). The user is activated
// again for the next round. The baseline is the same raw JetStream
// propagation as propagation's.
func caseSCIMPropagation(ctx context.Context, b *bench) ([]result, error) {
	master, jwtKey, natsPassword := randomKey(), randomKey(), rand.Text()
	// Passwords at a test cost: a round signs in once, and what is measured
	// is the deactivation's way to B, not argon2id.
	cheap := commands.HashParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}
	a, err := startInstance(ctx, func(c *service.Config) {
		c.NATSListen, c.NATSListenPassword, c.MasterKey, c.JWTKeys = "127.0.0.1:-1", natsPassword, master, [][]byte{jwtKey}
		c.Hash = cheap
	})
	if err != nil {
		return nil, err
	}
	defer a.close()
	natsURL := a.svc.NATSClientURL()
	bi, err := startInstance(ctx, func(c *service.Config) {
		c.NATSURLs, c.MasterKey, c.JWTKeys = []string{natsURL}, master, [][]byte{jwtKey}
		c.NATSUser, c.NATSPassword = events.EmbeddedReplicaUser, natsPassword
		c.Hash = cheap
	})
	if err != nil {
		return nil, err
	}
	defer bi.close()

	// Baseline: raw propagation over the same link.
	js := a.svc.Store.JetStream()
	stream, err := js.Stream(ctx, a.svc.Store.StreamName())
	if err != nil {
		return nil, err
	}
	cfg := stream.CachedInfo().Config
	cfg.Name, cfg.Subjects, cfg.Description = "BENCH_SCIM_PROPAGATION", []string{"bench.scimprop.>"}, "infracast-auth-bench"
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		return nil, err
	}
	nc, err := nats.Connect(natsURL, nats.UserInfo(events.EmbeddedReplicaUser, natsPassword))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	remote, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	cons, err := remote.OrderedConsumer(ctx, cfg.Name, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return nil, err
	}
	defer it.Stop()
	payload := make([]byte, 300)

	// An SSO provider (its IdP need not answer), a SCIM connection, and a
	// user provisioned through it with a password.
	admin, err := a.login(adminUser, adminPassword)
	if err != nil {
		return nil, err
	}
	if err := a.call("POST", "/api/v1/admin/sso/okta", admin.Token, map[string]any{
		"domain": "bench.okta.com", "client_id": "bench", "client_secret": "bench-secret", "issuer": "http://127.0.0.1:1/oauth2/default",
	}, nil, 201); err != nil {
		return nil, err
	}
	var conn struct {
		Token string `json:"token"`
	}
	if err := a.call("POST", "/api/v1/admin/scim", admin.Token, map[string]any{"provider": "okta", "tenants": []string{"prod"}}, &conn, 201); err != nil {
		return nil, err
	}
	const leaver, leaverPassword = "leaver@example.com", "bench-leaver-passphrase"
	var user struct {
		ID string `json:"id"`
	}
	if err := a.call("POST", "/scim/v2/Users", conn.Token, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": leaver, "externalId": "00ubench", "password": leaverPassword,
	}, &user, 201); err != nil {
		return nil, err
	}
	setActive := func(active bool) error {
		return a.call("PATCH", "/scim/v2/Users/"+user.ID, conn.Token, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []map[string]any{{"op": "replace", "value": map[string]any{"active": active}}},
		}, nil, 200)
	}

	poll := &fasthttp.HostClient{Addr: bi.addr, MaxConns: 1, ReadTimeout: 5 * time.Second}
	defer poll.CloseIdleConnections()
	req, res := new(fasthttp.Request), new(fasthttp.Response)
	req.SetRequestURI("http://" + bi.addr + "/api/v1/auth/me")
	onB := func(token string) (int, error) {
		req.Header.Set(fiber.HeaderAuthorization, "Bearer "+token)
		if err := poll.Do(req, res); err != nil {
			return 0, err
		}
		return res.StatusCode(), nil
	}
	acceptedByB := func(token string) error {
		t0 := time.Now()
		for {
			st, err := onB(token)
			switch {
			case err != nil:
				return err
			case st == 200:
				return nil
			case st != 401:
				return fmt.Errorf("B: GET /api/v1/auth/me: status %d: %.200s", st, res.Body())
			case time.Since(t0) > 5*time.Second:
				return fmt.Errorf("B: still %d after 5s", st)
			}
		}
	}

	var deprov, raw sample
	start := time.Now()
	for i := 0; i < 5000 && (i < 20 || time.Since(start) < b.duration); i++ {
		// Raw propagation of one message.
		if _, err := js.Publish(ctx, fmt.Sprintf("bench.scimprop.%d", i%16), payload); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if _, err := it.Next(); err != nil {
			return nil, err
		}
		raw.add(sample{n: 1, lat: []time.Duration{time.Since(t0)}})

		// The user signs in on A; B accepts the token.
		t, err := a.login(leaver, leaverPassword)
		if err != nil {
			return nil, err
		}
		if err := acceptedByB(t.Token); err != nil {
			return nil, err
		}
		// The identity provider deprovisions the user on A; B refuses the
		// token on its first request after applying it (B is not polled
		// in a busy loop, which would take the CPU its consumer needs).
		if err := setActive(false); err != nil {
			return nil, err
		}
		deprovisioned := time.Now()
		seq := a.svc.Runner.Applied() // A has applied its own deactivation before answering
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = bi.svc.Runner.WaitFor(wctx, seq)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("B did not apply sequence %d: %w", seq, err)
		}
		st, err := onB(t.Token)
		if err != nil {
			return nil, err
		}
		d := time.Since(deprovisioned)
		if st != 401 {
			return nil, fmt.Errorf("B answers %d after applying the deprovisioning: %.200s", st, res.Body())
		}
		deprov.add(sample{n: 1, lat: []time.Duration{d}})
		if err := setActive(true); err != nil {
			return nil, err
		}
	}
	p99, rawP99 := deprov.quantile(.99), raw.quantile(.99)
	r := result{
		Name: "scim_propagation", Value: float64(p99) / float64(time.Millisecond), Unit: "ms p99",
		Baseline: float64(rawP99) / float64(time.Millisecond), Ratio: ratio(float64(p99), float64(rawP99)),
		P50: us(deprov.quantile(.5)), P99: us(p99), BaselineP50: us(raw.quantile(.5)), BaselineP99: us(rawP99),
		Samples:      deprov.n,
		baselineName: "raw JetStream publish on A → delivery to an ordered consumer connected like B (p99)",
	}
	r.valueBelow(5)
	return []result{r}, nil
}
