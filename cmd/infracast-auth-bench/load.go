package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/infracast/auth/http/service"
)

// sample is what a load run measured: operations, wall time, latencies.
type sample struct {
	n       int64
	elapsed time.Duration
	lat     []time.Duration
	sorted  bool
}

func (s *sample) add(o sample) {
	s.n += o.n
	s.elapsed += o.elapsed
	s.lat = append(s.lat, o.lat...)
	s.sorted = false
}

// rate is operations per second.
func (s *sample) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.n) / s.elapsed.Seconds()
}

func (s *sample) quantile(q float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	if !s.sorted {
		slices.Sort(s.lat)
		s.sorted = true
	}
	i := int(q * float64(len(s.lat)))
	return s.lat[min(i, len(s.lat)-1)]
}

// runOps runs workers goroutines for d, each calling its own op (made by mk)
// in a loop, and measures every call. The first error stops every worker and
// is returned.
func runOps(workers int, d time.Duration, mk func(i int) (func() error, error)) (sample, error) {
	ops := make([]func() error, workers)
	for i := range ops {
		op, err := mk(i)
		if err != nil {
			return sample{}, err
		}
		ops[i] = op
	}
	var (
		stop     atomic.Bool
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
		lat      = make([][]time.Duration, workers)
		counts   = make([]int64, workers)
		busy     = make([]time.Duration, workers)
	)
	start := time.Now()
	deadline := start.Add(d)
	for i := range ops {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			op := ops[i]
			l := make([]time.Duration, 0, 4096)
			for !stop.Load() {
				t0 := time.Now()
				if t0.After(deadline) {
					break
				}
				if err := op(); err != nil {
					errOnce.Do(func() { firstErr = err })
					stop.Store(true)
					break
				}
				l = append(l, time.Since(t0))
			}
			lat[i], counts[i], busy[i] = l, int64(len(l)), time.Since(start)
		}(i)
	}
	wg.Wait()
	// The rate is the sum of each worker's own rate, so that workers idle
	// while the last operations of the others finish do not count.
	var s sample
	perSecond := 0.0
	for i := range lat {
		s.n += counts[i]
		s.lat = append(s.lat, lat[i]...)
		if busy[i] > 0 {
			perSecond += float64(counts[i]) / busy[i].Seconds()
		}
	}
	if perSecond > 0 {
		s.elapsed = time.Duration(float64(s.n) / perSecond * float64(time.Second))
	}
	if firstErr != nil {
		return s, firstErr
	}
	if s.n == 0 {
		return s, fmt.Errorf("no operation completed in %s", d)
	}
	return s, nil
}

// compare measures base and subject alternately, rounds times each for
// d/rounds, after a short warm-up of both, so that drift (turbo, GC, page
// cache) hits both alike. It returns the merged samples.
func compare(d time.Duration, rounds int, warm time.Duration, base, subject func(d time.Duration) (sample, error)) (sample, sample, error) {
	if warm > 0 {
		if _, err := base(warm); err != nil {
			return sample{}, sample{}, fmt.Errorf("baseline: %w", err)
		}
		if _, err := subject(warm); err != nil {
			return sample{}, sample{}, err
		}
	}
	var b, s sample
	per := d / time.Duration(2*rounds)
	for r := 0; r < rounds; r++ {
		x, err := base(per)
		if err != nil {
			return b, s, fmt.Errorf("baseline: %w", err)
		}
		b.add(x)
		y, err := subject(per)
		if err != nil {
			return b, s, err
		}
		s.add(y)
	}
	return b, s, nil
}

// httpLoad sends the request mk builds for each connection, conns at a time,
// for d, and requires status want for every answer.
func httpLoad(addr string, conns int, d time.Duration, want int, mk func(i int, req *fasthttp.Request)) (sample, error) {
	hc := &fasthttp.HostClient{Addr: addr, MaxConns: conns, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	return runOps(conns, d, func(i int) (func() error, error) {
		req, res := new(fasthttp.Request), new(fasthttp.Response)
		mk(i, req)
		return func() error {
			if err := hc.Do(req, res); err != nil {
				return fmt.Errorf("%s %s: %w", req.Header.Method(), req.URI().Path(), err)
			}
			if res.StatusCode() != want {
				return fmt.Errorf("%s %s: status %d (want %d): %.200s", req.Header.Method(), req.URI().Path(), res.StatusCode(), want, res.Body())
			}
			return nil
		}, nil
	})
}

// get prepares a GET of path with an optional Authorization header.
func get(addr, path, authorization string) func(int, *fasthttp.Request) {
	return func(_ int, req *fasthttp.Request) {
		req.SetRequestURI("http://" + addr + path)
		if authorization != "" {
			req.Header.Set(fiber.HeaderAuthorization, authorization)
		}
	}
}

// postJSON prepares a POST of a JSON body.
func postJSON(req *fasthttp.Request, addr, path string, body any) {
	b, _ := json.Marshal(body)
	req.SetRequestURI("http://" + addr + path)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType(fiber.MIMEApplicationJSON)
	req.SetBody(b)
}

// serveApp runs a Fiber app on a free loopback port.
func serveApp(app *fiber.App) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() { _ = app.Listener(ln) }()
	return ln.Addr().String(), nil
}

// serveOK starts the bench's upstream: a loopback app that answers every
// request "ok". stop shuts it down (the bench ends with it: its error
// would change nothing).
func serveOK() (addr string, stop func() error, err error) {
	up := fiber.New(fiber.Config{DisableStartupMessage: true})
	up.All("/*", func(c *fiber.Ctx) error { return c.SendString("ok") })
	addr, err = serveApp(up)
	if err != nil {
		return "", nil, err
	}
	return addr, up.Shutdown, nil
}

const (
	adminUser     = "admin"
	adminPassword = "bench-admin-password"
	userPassword  = "bench-user-passphrase"
)

// instance is one service running in this process on loopback.
type instance struct {
	svc  *service.Service
	cfg  service.Config
	addr string
	dir  string
	hc   *fasthttp.Client
}

// startInstance starts the service with the defaults (embedded NATS with
// fsync on every write, production argon2id cost) in a temporary folder,
// changed by mutate, and waits until it is ready.
func startInstance(ctx context.Context, mutate func(*service.Config)) (*instance, error) {
	dir, err := os.MkdirTemp("", "infracast-auth-bench-")
	if err != nil {
		return nil, err
	}
	cfg := service.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.BootstrapAdmin, cfg.BootstrapPassword = adminUser, adminPassword
	if mutate != nil {
		mutate(&cfg)
	}
	svc, err := service.Start(ctx, cfg, nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	in := &instance{svc: svc, cfg: cfg, dir: dir, hc: &fasthttp.Client{ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		in.close()
		return nil, err
	}
	in.addr = ln.Addr().String()
	go func() { _ = svc.Serve(ln) }()
	readyCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := svc.WaitReady(readyCtx, io.Discard); err != nil {
		in.close()
		return nil, err
	}
	return in, nil
}

func (in *instance) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = in.svc.Shutdown(ctx)
	os.RemoveAll(in.dir)
}

// call sends one request and decodes a JSON answer into out (when not nil).
func (in *instance) call(method, path, token string, body, out any, want int) error {
	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	req.SetRequestURI("http://" + in.addr + path)
	req.Header.SetMethod(method)
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		req.Header.SetContentType(fiber.MIMEApplicationJSON)
		req.SetBody(b)
	}
	if token != "" {
		req.Header.Set(fiber.HeaderAuthorization, "Bearer "+token)
	}
	if err := in.hc.Do(req, res); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if res.StatusCode() != want {
		return fmt.Errorf("%s %s: status %d (want %d): %.300s", method, path, res.StatusCode(), want, res.Body())
	}
	if out != nil {
		return json.Unmarshal(res.Body(), out)
	}
	return nil
}

type tokens struct {
	Token        string `json:"token"`
	RefreshToken string `json:"refresh_token"`
}

func (in *instance) login(user, password string) (tokens, error) {
	var t tokens
	err := in.call("POST", "/api/v1/auth/token", "", map[string]string{"username": user, "password": password}, &t, 200)
	return t, err
}

// createUser creates a user with role in tenant prod, as the admin.
func (in *instance) createUser(adminToken, name, role string) error {
	return in.call("POST", "/api/v1/users", adminToken, map[string]any{
		"username": name, "email": name + "@example.com", "password": userPassword,
		"tenants": []map[string]string{{"id": "prod", "role": role}},
	}, nil, 201)
}

// benchUser logs the admin in, creates "bench-user" (editor in prod) and
// returns its tokens, and the admin's access token.
func (in *instance) benchUser() (user tokens, admin string, err error) {
	a, err := in.login(adminUser, adminPassword)
	if err != nil {
		return tokens{}, "", err
	}
	if err := in.createUser(a.Token, "bench-user", "editor"); err != nil {
		return tokens{}, "", err
	}
	user, err = in.login("bench-user", userPassword)
	return user, a.Token, err
}

func randomKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}
