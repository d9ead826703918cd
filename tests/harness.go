package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/http/service"
)

// AdminUser and AdminPassword are the bootstrap admin of every test instance.
const (
	AdminUser     = "admin"
	AdminPassword = "admin-password-for-tests"
)

// CheapHash keeps argon2id fast in tests (the cost is configuration).
var CheapHash = commands.HashParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}

// Clock is a settable clock shared by an instance and its test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at the current time.
func NewClock() *Clock { return &Clock{t: time.Now().UTC()} }

// NewClockAt returns a test clock that starts at t.
func NewClockAt(t time.Time) *Clock { return &Clock{t: t.UTC()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Instance is one running service.
type Instance struct {
	Svc     *service.Service
	URL     string // http://127.0.0.1:port
	Clock   *Clock
	Config  service.Config
	stopped bool
	t       testing.TB
}

// Option changes an instance's configuration before it starts.
type Option func(*service.Config)

// WithDataDir runs on an existing data folder (to restart on the same data).
func WithDataDir(dir string) Option { return func(c *service.Config) { c.DataDir = dir } }

// WithRotation switches refresh-token rotation on.
func WithRotation() Option { return func(c *service.Config) { c.RefreshRotation = true } }

// WithReuseInterval sets the refresh reuse interval (INFRACAST_REFRESH_REUSE_INTERVAL,
// with rotation on): 0 switches it off.
func WithReuseInterval(d time.Duration) Option {
	return func(c *service.Config) { c.RefreshReuseInterval = d }
}

// LogBuffer collects an instance's log lines (safe for concurrent writers).
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WithBootstrapPassword sets the bootstrap admin's password (the service
// requires at least 8 characters).
func WithBootstrapPassword(pw string) Option {
	return func(c *service.Config) { c.BootstrapPassword = pw }
}

// WithListen makes the instance listen on addr instead of 127.0.0.1:0
// (for example "[::1]:0" to be reached over IPv6 loopback).
func WithListen(addr string) Option { return func(c *service.Config) { c.Listen = addr } }

// WithClock shares a clock between instances.
func WithClock(cl *Clock) Option { return func(c *service.Config) { c.Now = cl.Now } }

// Start runs a service on a free loopback port with an embedded NATS in a
// temporary folder, and waits until it is ready. It is stopped at cleanup.
func Start(t testing.TB, opts ...Option) *Instance {
	t.Helper()
	return start(t, nil, opts...)
}

// StartLogged is Start with the instance logging at debug level, as JSON
// lines, into logs.
func StartLogged(t testing.TB, logs *LogBuffer, opts ...Option) *Instance {
	t.Helper()
	return start(t, logs, opts...)
}

func start(t testing.TB, logs *LogBuffer, opts ...Option) *Instance {
	t.Helper()
	clock := NewClock()
	cfg := service.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.BootstrapAdmin, cfg.BootstrapPassword = AdminUser, AdminPassword
	cfg.Hash = CheapHash
	cfg.Now = clock.Now
	for _, o := range opts {
		o(&cfg)
	}
	var log *slog.Logger
	if logs != nil {
		log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	svc, err := service.Start(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("start service: %v", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = svc.Serve(ln) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := svc.WaitReady(ctx, io.Discard); err != nil {
		t.Fatalf("service not ready: %v", err)
	}
	in := &Instance{Svc: svc, URL: "http://" + ln.Addr().String(), Clock: clock, Config: cfg, t: t}
	t.Cleanup(in.Stop)
	return in
}

// Stop shuts the instance down (idempotent).
func (in *Instance) Stop() {
	if in.stopped {
		return
	}
	in.stopped = true
	// The client may hold a connection it dialed but never sent a request on;
	// the server's graceful shutdown would wait for it until its deadline.
	client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.Svc.Shutdown(ctx); err != nil {
		in.t.Logf("shutdown: %v", err)
	}
}

// Response is an HTTP answer with its body decoded as JSON when it is JSON.
type Response struct {
	Status int
	Header http.Header
	Raw    []byte
	JSON   map[string]any
}

// ErrorCode returns error.code of a contract-shaped error body ("" otherwise).
func (r Response) ErrorCode() string {
	e, _ := r.JSON["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// String returns a field of the JSON body as a string.
func (r Response) String(key string) string {
	s, _ := r.JSON[key].(string)
	return s
}

var client = &http.Client{Timeout: 30 * time.Second}

// Do sends a request. body may be nil, a []byte / string (sent as is with a
// JSON content type) or any value (encoded as JSON). token, when set, goes in
// "Authorization: Bearer".
func (in *Instance) Do(method, path, token string, body any) Response {
	in.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			in.t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, in.URL+path, rd)
	if err != nil {
		in.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		in.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := Response{Status: res.StatusCode, Header: res.Header, Raw: raw}
	_ = json.Unmarshal(raw, &out.JSON)
	return out
}

// Login posts /api/v1/auth/token and fails the test unless it answers 200.
func (in *Instance) Login(username, password string) Response {
	in.t.Helper()
	r := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": username, "password": password})
	if r.Status != http.StatusOK {
		in.t.Fatalf("login %s: %d %s", username, r.Status, r.Raw)
	}
	return r
}

// AdminToken logs the bootstrap admin in and returns the access token.
func (in *Instance) AdminToken() string {
	in.t.Helper()
	return in.Login(AdminUser, AdminPassword).String("token")
}

// CreateUser creates a user as the given admin token and returns its ID.
func (in *Instance) CreateUser(adminToken, username, password string, tenants map[string]string) string {
	in.t.Helper()
	body := map[string]any{"username": username, "email": username + "@example.com", "password": password}
	var trs []map[string]string
	for id, role := range tenants {
		trs = append(trs, map[string]string{"id": id, "role": role})
	}
	if trs != nil {
		body["tenants"] = trs
	}
	r := in.Do("POST", "/api/v1/users", adminToken, body)
	if r.Status != http.StatusCreated {
		in.t.Fatalf("create user %s: %d %s", username, r.Status, r.Raw)
	}
	return r.String("id")
}

// Eventually polls f until it returns nil or the deadline passes (no fixed sleeps).
func Eventually(t testing.TB, within time.Duration, f func() error) {
	t.Helper()
	if err := Poll(within, f); err != nil {
		t.Fatalf("condition not met within %s: %v", within, err)
	}
}

// Poll calls f until it returns nil or within has passed (then it returns
// f's last error), waiting a little longer between calls each time, up to
// 50 ms.
func Poll(within time.Duration, f func() error) error {
	deadline := time.Now().Add(within)
	wait := time.Millisecond
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// Errorf is fmt.Errorf, for Eventually conditions.
var Errorf = fmt.Errorf
