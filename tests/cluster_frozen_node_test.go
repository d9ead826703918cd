package tests

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infracast/auth/http/service"
)

// freezer is a TCP proxy that can freeze: it then neither forwards nor
// closes anything, as a NATS server stopped with SIGSTOP (or a network that
// drops packets) looks to its clients — no answer, no goodbye.
type freezer struct {
	tcpProxy               // mu also guards frozen and taken
	frozen   chan struct{} // closed: frozen
	taken    int           // client connections accepted
}

// tcpProxy is what the test proxies to a NATS node share: the loopback
// listener a replica connects to (URL), the node's address, and every
// connection made, closed with the proxy (at the test's end).
type tcpProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

// listenProxy opens a proxy's listener on a free loopback port.
func listenProxy(t *testing.T, target string) tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return tcpProxy{ln: ln, target: target}
}

func (p *tcpProxy) URL() string { return "nats://" + p.ln.Addr().String() }

// keep records connections to close with the proxy.
func (p *tcpProxy) keep(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, cs...)
}

func (p *tcpProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

func startFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	f := &freezer{tcpProxy: listenProxy(t, target), frozen: make(chan struct{})}
	go f.serve()
	t.Cleanup(f.close)
	return f
}

// Freeze stops every byte, both ways, on every connection, now and later.
func (f *freezer) Freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.frozen:
	default:
		close(f.frozen)
	}
}

func (f *freezer) isFrozen() bool {
	select {
	case <-f.frozen:
		return true
	default:
		return false
	}
}

func (f *freezer) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.taken++
		f.mu.Unlock()
		if f.isFrozen() {
			f.keep(c) // accepted, never answered
			continue
		}
		up, err := net.Dial("tcp", f.target)
		if err != nil {
			_ = c.Close() // the node is gone: as a refused connection
			continue
		}
		f.keep(c, up)
		go f.pipe(c, up)
		go f.pipe(up, c)
	}
}

// accepted reports how many client connections the proxy has taken.
func (f *freezer) accepted() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.taken
}

// pipe copies src to dst until either fails, or the proxy freezes: then it
// holds what it read and waits (the connections stay open) until closed.
func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if f.isFrozen() {
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				_ = dst.Close()
			}
			return
		}
	}
}

// TestClusterFrozenNodeRevocationStillArrives: replica b reaches the NATS
// cluster through one node of the three it knows, which freezes (SIGSTOP, or the network to it
// drops everything): no answer, no goodbye, and the cluster keeps its
// quorum. A user deactivated through replica a must be refused by b within
// seconds: b finds its connection stale, moves to another node, catches up.
// (Outside check 11f: with the NATS client's default pings — every 2
// minutes — b stayed on the frozen node for 4–5 minutes, not ready, and
// went on accepting the deactivated user's token; nginx's auth_request,
// which knows nothing of /ready, let them through.)
func TestClusterFrozenNodeRevocationStillArrives(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 3)
	a := d.StartReplica(t)
	// b knows every node, as configured in production (README, "Running a
	// cluster"), each through a proxy; the one it connects through freezes.
	var proxies []*freezer
	var urls []string
	for _, u := range d.NATS.URLs() {
		p := startFreezer(t, strings.TrimPrefix(u, "nats://"))
		proxies, urls = append(proxies, p), append(urls, p.URL())
	}
	b := d.StartReplica(t, func(c *service.Config) { c.NATSURLs = urls })
	var proxy *freezer
	for _, p := range proxies {
		if p.accepted() > 0 {
			proxy = p
		}
	}
	if proxy == nil {
		t.Fatal("b connected through none of the proxies")
	}
	admin := a.AdminToken()
	id := a.CreateUser(admin, "vera", "vera-passphrase", map[string]string{"prod": "admin"})
	tok := a.Login("vera", "vera-passphrase").String("token")
	Eventually(t, 10*time.Second, func() error {
		if r := b.Do("GET", "/api/v1/auth/me", tok, nil); r.Status != http.StatusOK {
			return Errorf("b before the freeze: %d %s", r.Status, r.Raw)
		}
		return nil
	})

	proxy.Freeze()
	frozen := time.Now()
	expectStatus(t, "deactivate through a", a.Do("POST", "/api/v1/users/"+id+"/deactivate", admin, nil), http.StatusOK)
	Eventually(t, 60*time.Second, func() error {
		if r := b.Do("GET", "/api/v1/auth/me", tok, nil); r.Status != http.StatusUnauthorized {
			return Errorf("b, %v after its node froze, answers the deactivated user's token %d", time.Since(frozen).Round(time.Second), r.Status)
		}
		return nil
	})
	t.Logf("b refused the deactivated user's token %v after its node froze", time.Since(frozen).Round(100*time.Millisecond))
	Eventually(t, 30*time.Second, func() error {
		if status, why := readyNow(t, b); status != http.StatusOK {
			return Errorf("b /ready: %d %q", status, why)
		}
		return nil
	})
	b.CreateUser(b.AdminToken(), "walt", "walt-passphrase", nil) // writes through b work again
}
