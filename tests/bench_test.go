package tests

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/events/natstest"
	"github.com/infracast/auth/http/service"
	"github.com/infracast/auth/projections"
)

// serve runs a Fiber app on a loopback port for the duration of the benchmark.
func serve(b testing.TB, app *fiber.App) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	b.Cleanup(func() { _ = app.Shutdown() })
	return ln.Addr().String()
}

// load sends GET path with the header for d over conns connections and returns
// requests per second and latency quantiles. Every answer must be 200.
func load(b *testing.B, addr, path, auth string, conns int, d time.Duration) (rps float64, p50, p99 time.Duration) {
	b.Helper()
	client := &fasthttp.HostClient{Addr: addr, MaxConns: conns}
	var n atomic.Int64
	var failed atomic.Int64
	lat := make([][]time.Duration, conns)
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(res)
			req.SetRequestURI("http://" + addr + path)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := client.Do(req, res); err != nil || res.StatusCode() != 200 {
					failed.Add(1)
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
				n.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d requests to %s failed", f, path)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) == 0 {
		b.Fatal("no requests completed")
	}
	return float64(n.Load()) / time.Since(start).Seconds(), all[len(all)/2], all[len(all)*99/100]
}

// compareThroughput serves one trivial route twice on one Fiber app — bare, and
// behind the service's authentication middleware — loads each over real
// loopback HTTP in the same run, and reports both rates and their ratio.
func compareThroughput(b *testing.B, in *Instance, credential, label string) {
	b.Helper()
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	ok := func(c *fiber.Ctx) error { return c.SendString("ok") }
	app.Get("/bare", ok)
	app.Get("/authed", in.Svc.HTTP.Authenticate(), ok)
	addr := serve(b, app)
	const conns = 32
	d := 3 * time.Second
	for i := 0; i < b.N; i++ {
		load(b, addr, "/bare", "", conns, 300*time.Millisecond) // warm up
		bare, bp50, bp99 := load(b, addr, "/bare", "", conns, d)
		authed, ap50, ap99 := load(b, addr, "/authed", "Bearer "+credential, conns, d)
		b.ReportMetric(bare, "bare-req/s")
		b.ReportMetric(authed, label+"-req/s")
		b.ReportMetric(authed/bare, "ratio")
		b.Logf("bare %.0f req/s (p50 %s, p99 %s); %s %.0f req/s (p50 %s, p99 %s); ratio %.2f",
			bare, bp50, bp99, label, authed, ap50, ap99, authed/bare)
	}
}

// BenchmarkAuthenticatedThroughput compares a user's access token (JWT
// verification plus the read-model checks) with the bare route.
// Run: go test -run '^$' -bench AuthenticatedThroughput -benchtime 1x ./tests/
func BenchmarkAuthenticatedThroughput(b *testing.B) {
	in := Start(b)
	compareThroughput(b, in, in.AdminToken(), "authed")
}

// BenchmarkValidateToken is the request path's work without HTTP: verify the
// JWT and check session, token, user and tenant role in the read model.
func BenchmarkValidateToken(b *testing.B) {
	in := Start(b)
	token := in.AdminToken()
	tokens, model, now := in.Svc.Tokens, in.Svc.Model, time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := tokens.Verify(token)
		if err != nil {
			b.Fatal(err)
		}
		p, v := model.Authorize(c.SessionID, c.ID, now)
		if v != projections.Valid || !p.User.PermissionsIn("prod").Has(domain.NodesRead) {
			b.Fatal("not authorized")
		}
	}
}

// BenchmarkLogin measures logins per second through HTTP at the production
// argon2id cost (m=19 MiB, t=2, p=1), parallel clients.
func BenchmarkLogin(b *testing.B) {
	in := Start(b, func(c *service.Config) { c.Hash = commands.DefaultHashParams })
	body := fmt.Sprintf(`{"username":%q,"password":%q}`, AdminUser, AdminPassword)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := in.Do("POST", "/api/v1/auth/token", "", body); r.Status != 200 {
				b.Fatalf("login: %d %s", r.Status, r.Raw)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "logins/s")
}

// BenchmarkRefresh measures refreshes per second through HTTP on the embedded
// store with fsync on every write, each client refreshing its own session.
func BenchmarkRefresh(b *testing.B) {
	in := Start(b)
	var mu sync.Mutex
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		rt := in.Login(AdminUser, AdminPassword).String("refresh_token")
		mu.Unlock()
		body := fmt.Sprintf(`{"refresh_token":%q}`, rt)
		for pb.Next() {
			if r := in.Do("POST", "/api/v1/auth/refresh", "", body); r.Status != 200 {
				b.Fatalf("refresh: %d %s", r.Status, r.Raw)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "refreshes/s")
}

// BenchmarkReplay100k measures how long a new replica takes to replay 100,000
// events (decode and apply) into its read models and report ready.
func BenchmarkReplay100k(b *testing.B) {
	const total = 100_000
	st := natstest.EmbeddedStore(b, events.EmbeddedOptions{})
	ctx := context.Background()
	// 1,000 users, each with 1 creation, 20 sessions and per session 4 more events.
	js := st.JetStream()
	now := time.Now()
	meta := events.Meta{Actor: events.System}
	n := 0
	pub := func(agg, id string, e domain.Event) {
		data, err := events.Encode("evt", agg, id, 1, now, meta, e)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := js.PublishAsync(events.Subject(agg, id), data); err != nil {
			b.Fatal(err)
		}
		n++
	}
	for u := 0; n < total; u++ {
		uid := fmt.Sprintf("user-%d", u)
		pub("user", uid, domain.UserCreated{UserID: uid, Username: uid, Tenants: []domain.TenantRole{{Tenant: "prod", Role: domain.RoleEditor}}})
		for s := 0; s < 20 && n < total; s++ {
			sid := fmt.Sprintf("sess-%d-%d", u, s)
			pub("session", sid, domain.SessionStarted{SessionID: sid, UserID: uid, RefreshTokenHash: sid, StartedAt: now, ExpiresAt: now.Add(time.Hour)})
			for k := 0; k < 4 && n < total; k++ {
				pub("session", sid, domain.SessionRefreshed{SessionID: sid, TokenID: fmt.Sprintf("tok-%d", k)})
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		b.Fatal("publishing did not complete")
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		r := projections.NewRunner(st, projections.NewModel(), nil)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); r.Run(rctx) }()
		if err := r.WaitFor(ctx, uint64(total)); err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		cancel()
		<-done
		b.ReportMetric(elapsed.Seconds(), "s/replay")
		b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
	}
}
