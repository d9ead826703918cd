package tests

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infracast/auth/http/service"
)

// laggard is a TCP proxy between a replica and its NATS server that, once
// told to (Lag), hands the replica what the server sends a fixed time after
// it came, in order — the replica's consumer applies everything that long
// after it was stored — while what the replica sends goes through at once.
// A question the replica asks (the stream's head) is answered after the
// same delay, and after every event stored before it.
type laggard struct {
	tcpProxy
	delay atomic.Int64 // nanoseconds; 0: no lag
}

func startLaggard(t *testing.T, target string) *laggard {
	t.Helper()
	l := &laggard{tcpProxy: listenProxy(t, target)}
	go l.serve()
	t.Cleanup(l.close)
	return l
}

// Lag delays what the server sends by d from now on.
func (l *laggard) Lag(d time.Duration) { l.delay.Store(int64(d)) }

func (l *laggard) serve() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", l.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		l.keep(c, up)
		go pipeNow(up, c)
		go l.pipeLate(c, up)
	}
}

// pipeNow copies src to dst until either fails.
func pipeNow(dst, src net.Conn) {
	if _, err := io.Copy(dst, src); err != nil && !errors.Is(err, net.ErrClosed) {
		_ = dst.Close()
	}
}

// pipeLate copies src to dst, each chunk the delay after it was read.
func (l *laggard) pipeLate(dst, src net.Conn) {
	type chunk struct {
		due time.Time
		b   []byte
	}
	q := make(chan chunk, 1024)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{time.Now().Add(time.Duration(l.delay.Load())), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		if d := time.Until(c.due); d > 0 {
			<-time.After(d)
		}
		if _, err := dst.Write(c.b); err != nil {
			return
		}
	}
	_ = dst.Close()
}

// TestClusterNewSigningKeyOnLaggingReplica: a platform admin adds an EdDSA
// signing key through replica a, which signs the next token with it at
// once; replica b applies events 400 ms after they are stored. b's JWKS
// still lists the key, and b takes the token — the middleware and forward
// auth — catching up with the event store rather than refusing a kid it
// does not know yet (outside check 17d: refused 401 and left out of b's
// JWKS until b applied the key). A token of a made-up kid is still refused.
func TestClusterNewSigningKeyOnLaggingReplica(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 1)
	a := d.StartReplica(t)
	lag := startLaggard(t, strings.TrimPrefix(d.NATS.URLs()[0], "nats://"))
	b := d.StartReplica(t, func(c *service.Config) { c.NATSURLs = []string{lag.URL()} })
	login := a.Login(AdminUser, AdminPassword)
	admin, refresh := login.String("token"), login.String("refresh_token")
	// b hears of a (it catches up only while another replica serves).
	expectStatus(t, "the admin's token on b", b.Do("GET", "/api/v1/auth/me", admin, nil), http.StatusOK)

	// Each round asks b one thing first, while it lags: the one that finds
	// the key missing and catches up.
	type check struct {
		name string
		ok   func(tok, kid string) (bool, Response)
	}
	checks := []check{
		{"the middleware (GET /api/v1/auth/me)", func(tok, _ string) (bool, Response) {
			r := b.Do("GET", "/api/v1/auth/me", tok, nil)
			return r.Status == http.StatusOK, r
		}},
		{"forward auth", func(tok, _ string) (bool, Response) {
			r := verifyAs(t, b, tok, "GET", "/api/v1/tenants/prod/nodes")
			return r.Status == http.StatusOK, r
		}},
		{"the JWKS", func(_, kid string) (bool, Response) {
			r := b.Do("GET", "/.well-known/jwks.json", "", nil)
			return r.Status == http.StatusOK && strings.Contains(string(r.Raw), `"kid":"`+kid+`"`), r
		}},
	}
	for round, first := range checks {
		lag.Lag(400 * time.Millisecond)
		k := a.Do("POST", "/api/v1/admin/signing-keys", admin, map[string]string{"algorithm": "EdDSA"})
		expectStatus(t, "add a key on a", k, http.StatusCreated)
		kid := k.String("id")
		// A refresh (cheap: no password hash) signs with the new key.
		r := a.Do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh})
		expectStatus(t, "refresh on a", r, http.StatusOK)
		tok := r.String("token")
		if rt := r.String("refresh_token"); rt != "" {
			refresh = rt
		}
		if ok, r := first.ok(tok, kid); !ok {
			t.Fatalf("round %d: %s on b, right after a added %s and signed with it: %d %s", round, first.name, kid, r.Status, r.Raw)
		}
		for _, c := range checks {
			if ok, r := c.ok(tok, kid); !ok {
				t.Fatalf("round %d: then %s on b: %d %s", round, c.name, r.Status, r.Raw)
			}
		}
		lag.Lag(0)
		// Retired through b (it holds the key now), for the next round.
		expectStatus(t, "retire it", b.Do("POST", "/api/v1/admin/signing-keys/"+kid+"/retire", admin, map[string]bool{"fall_back_to_hs256": true}), http.StatusOK)
	}
}
