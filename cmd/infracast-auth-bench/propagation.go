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
	"github.com/infracast/auth/http/service"
)

// propagationRig is what the propagation cases (casePropagation,
// caseSCIMPropagation) measure on: two service instances on one NATS (A
// embeds it and listens on loopback TCP; B connects to it), a stream of
// their own on A for the baseline with an ordered consumer connected like
// B, and GET /api/v1/auth/me on B over a kept-alive connection.
type propagationRig struct {
	a, b    *instance
	admin   tokens              // the bootstrap admin, signed in on A
	js      jetstream.JetStream // A's
	it      jetstream.MessagesContext
	subject string // the baseline's subjects: subject.0 … subject.15
	payload []byte
	poll    *fasthttp.HostClient
	req     *fasthttp.Request
	res     *fasthttp.Response // B's last answer
	undo    []func()
}

// startPropagationRig starts A and B (tune, when set, changes both
// configurations) and the baseline's stream, named stream, on subject.>,
// and signs the admin in on A.
func startPropagationRig(ctx context.Context, stream, subject string, tune func(*service.Config)) (r *propagationRig, err error) {
	r = &propagationRig{subject: subject, payload: make([]byte, 300)}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	master, jwtKey, natsPassword := randomKey(), randomKey(), rand.Text()
	if r.a, err = startInstance(ctx, func(c *service.Config) {
		c.NATSListen, c.NATSListenPassword, c.MasterKey, c.JWTKeys = "127.0.0.1:-1", natsPassword, master, [][]byte{jwtKey}
		if tune != nil {
			tune(c)
		}
	}); err != nil {
		return r, err
	}
	r.undo = append(r.undo, r.a.close)
	natsURL := r.a.svc.NATSClientURL()
	if r.b, err = startInstance(ctx, func(c *service.Config) {
		c.NATSURLs, c.MasterKey, c.JWTKeys = []string{natsURL}, master, [][]byte{jwtKey}
		c.NATSUser, c.NATSPassword = events.EmbeddedReplicaUser, natsPassword
		if tune != nil {
			tune(c)
		}
	}); err != nil {
		return r, err
	}
	r.undo = append(r.undo, r.b.close)

	// Baseline: raw propagation over the same link.
	r.js = r.a.svc.Store.JetStream()
	st, err := r.js.Stream(ctx, r.a.svc.Store.StreamName())
	if err != nil {
		return r, err
	}
	cfg := st.CachedInfo().Config
	cfg.Name, cfg.Subjects, cfg.Description = stream, []string{subject + ".>"}, "infracast-auth-bench"
	if _, err := r.js.CreateStream(ctx, cfg); err != nil {
		return r, err
	}
	nc, err := nats.Connect(natsURL, nats.UserInfo(events.EmbeddedReplicaUser, natsPassword))
	if err != nil {
		return r, err
	}
	r.undo = append(r.undo, nc.Close)
	remote, err := jetstream.New(nc)
	if err != nil {
		return r, err
	}
	cons, err := remote.OrderedConsumer(ctx, cfg.Name, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return r, err
	}
	if r.it, err = cons.Messages(jetstream.PullMaxMessages(1024)); err != nil {
		return r, err
	}
	r.undo = append(r.undo, r.it.Stop)

	r.poll = &fasthttp.HostClient{Addr: r.b.addr, MaxConns: 1, ReadTimeout: 5 * time.Second}
	r.undo = append(r.undo, r.poll.CloseIdleConnections)
	r.req, r.res = new(fasthttp.Request), new(fasthttp.Response)
	r.req.SetRequestURI("http://" + r.b.addr + "/api/v1/auth/me")
	r.admin, err = r.a.login(adminUser, adminPassword)
	return r, err
}

func (r *propagationRig) close() {
	for i := len(r.undo) - 1; i >= 0; i-- {
		r.undo[i]()
	}
}

// onB sends GET /api/v1/auth/me with token to B.
func (r *propagationRig) onB(token string) (int, error) {
	r.req.Header.Set(fiber.HeaderAuthorization, "Bearer "+token)
	if err := r.poll.Do(r.req, r.res); err != nil {
		return 0, err
	}
	return r.res.StatusCode(), nil
}

// acceptedByB waits until B accepts token (401 until it has applied what
// issued it), for up to 5 s.
func (r *propagationRig) acceptedByB(token string) error {
	t0 := time.Now()
	for {
		st, err := r.onB(token)
		switch {
		case err != nil:
			return err
		case st == 200:
			return nil
		case st != 401:
			return fmt.Errorf("B: GET /api/v1/auth/me: status %d: %.200s", st, r.res.Body())
		case time.Since(t0) > 5*time.Second:
			return fmt.Errorf("B: still %d after 5s", st)
		}
	}
}

// propagationRound is what a propagation case does in each round.
type propagationRound struct {
	// issue returns a token from A.
	issue func() (string, error)
	// revoke makes A refuse it (the revocation whose way to B is timed,
	// from its answer).
	revoke func(token string) error
	// reset, when set, undoes it for the next round (not timed).
	reset func() error
}

// measure runs the rounds (at least 20, for b.duration, at most 5000): in
// each, one raw message from A to the baseline's consumer (the baseline);
// then a token from A that B accepts, the revocation (what: its name in
// errors) on A, and the time from A's answer to B's first 401. B is not
// polled in a busy loop (which would take the CPU its consumer needs): the
// first request after B has applied the revocation (its runner signals
// that) is the first that can be refused, and must be. The result, name,
// is the p99 of that time, to be under 5 ms.
func (r *propagationRig) measure(ctx context.Context, b *bench, name, what string, round propagationRound) ([]result, error) {
	var lat, raw sample
	start := time.Now()
	for i := 0; i < 5000 && (i < 20 || time.Since(start) < b.duration); i++ {
		// Raw propagation of one message.
		if _, err := r.js.Publish(ctx, fmt.Sprintf("%s.%d", r.subject, i%16), r.payload); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if _, err := r.it.Next(); err != nil {
			return nil, err
		}
		raw.add(sample{n: 1, lat: []time.Duration{time.Since(t0)}})

		// A token from A, accepted by B.
		token, err := round.issue()
		if err != nil {
			return nil, err
		}
		if err := r.acceptedByB(token); err != nil {
			return nil, err
		}
		// Revoke on A; B refuses it.
		if err := round.revoke(token); err != nil {
			return nil, err
		}
		revoked := time.Now()
		seq := r.a.svc.Runner.Applied() // A has applied its own revocation before answering
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = r.b.svc.Runner.WaitFor(wctx, seq)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("B did not apply sequence %d: %w", seq, err)
		}
		st, err := r.onB(token)
		if err != nil {
			return nil, err
		}
		d := time.Since(revoked)
		if st != 401 {
			return nil, fmt.Errorf("B answers %d after applying the %s: %.200s", st, what, r.res.Body())
		}
		lat.add(sample{n: 1, lat: []time.Duration{d}})
		if round.reset != nil {
			if err := round.reset(); err != nil {
				return nil, err
			}
		}
	}
	p99, rawP99 := lat.quantile(.99), raw.quantile(.99)
	res := result{
		Name: name, Value: float64(p99) / float64(time.Millisecond), Unit: "ms p99",
		Baseline: float64(rawP99) / float64(time.Millisecond), Ratio: ratio(float64(p99), float64(rawP99)),
		P50: us(lat.quantile(.5)), P99: us(p99), BaselineP50: us(raw.quantile(.5)), BaselineP99: us(rawP99),
		Samples:      lat.n,
		baselineName: "raw JetStream publish on A → delivery to an ordered consumer connected like B (p99)",
	}
	res.valueBelow(5)
	return []result{res}, nil
}
