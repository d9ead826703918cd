package tests

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The shipped nginx configuration in front of several replicas, as
// docker-compose.yml and docs/operations.md ("Behind a load balancer or
// proxy") deploy it (outside check 19g: three replicas behind Debian's nginx).

const (
	lbBodyNotReady        = `{"error":{"code":"UNAVAILABLE","message":"Read models are catching up with the event store"}}`
	lbBodyBadGateway      = `{"error":{"code":"BAD_GATEWAY","message":"Service unreachable; a write may or may not have been made: read before repeating it"}}`
	lbBodyNoNATS          = `{"error":{"code":"UNAVAILABLE","message":"Event store unreachable; nothing was changed"}}`
	lbBodyAuthUnavailable = `{"error":{"code":"UNAVAILABLE","message":"Service temporarily unavailable; nothing was changed"}}`
)

// lbNginx runs docs/nginx/infracast.conf with auth1 and auth2 at the given
// addresses and the resource service at resources; it returns nginx's base URL.
func lbNginx(t *testing.T, auth1, auth2, resources string) string {
	t.Helper()
	bin := faNginxBinary(t)
	shipped, err := os.ReadFile("../docs/nginx/infracast.conf")
	if err != nil {
		t.Fatal(err)
	}
	front := freeAddr(t)
	conf, err := faTemplate(string(shipped), []faReplacement{
		{"server auth1:8080", "server " + auth1},
		{"server auth2:8080", "server " + auth2},
		{"upstream resources_once {\n    server 127.0.0.1:9000;", "upstream resources_once {\n    server " + resources + ";"},
		{"server 127.0.0.1:9000;", "server " + resources + ";"},
		{"listen 9000;", "listen " + freeAddr(t) + ";"}, // the sample resource service, unused here
		{"listen 80;", "listen " + front + ";"},
	})
	if err != nil {
		t.Fatalf("docs/nginx/infracast.conf: %v", err)
	}
	faStartNginx(t, bin, conf, front)
	return "http://" + front
}

// lbStub is a replica stand-in that records the paths it was asked for.
type lbStub struct {
	mu   sync.Mutex
	seen []string // "METHOD path"
	srv  *httptest.Server
}

func (s *lbStub) saw(methodPath string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.seen {
		if p == methodPath {
			n++
		}
	}
	return n
}

func newLBStub(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *lbStub {
	t.Helper()
	s := &lbStub{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, r.Method+" "+r.URL.Path)
		s.mu.Unlock()
		handle(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *lbStub) addr() string { return strings.TrimPrefix(s.srv.URL, "http://") }

// lbReplicas starts n replicas of one deployment on one NATS; stop(i) shuts
// replica i down (once; the rest at cleanup).
func lbReplicas(t *testing.T, n int) (reps []*replica, stop func(i int)) {
	t.Helper()
	cfg := sharedConfig(startNATS(t), randomKey(t), randomKey(t))
	once := make([]sync.Once, n)
	stop = func(i int) {
		once[i].Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := reps[i].svc.Shutdown(ctx); err != nil {
				t.Logf("replica %d shutdown: %v", i, err)
			}
		})
	}
	for i := range n {
		r, err := startReplica(cfg, true)
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		reps = append(reps, r)
		t.Cleanup(func() { stop(i) })
	}
	return reps, stop
}

func lbToken(t *testing.T, base string) string {
	t.Helper()
	res, err := send(base, request{Method: "POST", Path: "/api/v1/auth/token", ContentType: "application/json",
		Body: []byte(fmt.Sprintf(`{"username":%q,"password":%q}`, AdminUser, AdminPassword))})
	if err != nil || res.Status != http.StatusOK || res.String("token") == "" {
		t.Fatalf("login through %s: %v %d %s", base, err, res.Status, res.Raw)
	}
	return res.String("token")
}

// TestShippedNginxSkipsAReplicaThatIsNotReady: a replica answering 503 (not
// ready: catching up after its start, or NATS unreachable) is skipped for the
// next one, for the service's own GETs (location /) and for the auth
// subrequest (/_auth): clients see the ready replica's answers, no 503. A POST
// nginx never sends twice: it gets the replica's 503 as it is, Retry-After
// included, to repeat itself — the service changed nothing. Before, the
// shipped configuration retried only on errors and timeouts, and clients got
// about one 503 per replica restart (outside check 19g).
func TestShippedNginxSkipsAReplicaThatIsNotReady(t *testing.T) {
	t.Parallel()
	reps, _ := lbReplicas(t, 1)
	notReady := newLBStub(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, lbBodyNotReady)
	})
	up := newGWUpstream(t, nil)
	base := lbNginx(t, notReady.addr(), strings.TrimPrefix(reps[0].url, "http://"), strings.TrimPrefix(up.srv.URL, "http://"))
	token := lbToken(t, reps[0].url)

	// nginx leaves the failed replica out for fail_timeout (2 s) per worker,
	// then tries it again: ask until it has been tried for each route.
	for _, c := range []struct{ path, seen string }{
		{"/api/v1/auth/me", "GET /api/v1/auth/me"},
		{"/api/v1/tenants/prod/nodes", "GET /api/v1/auth/verify"}, // the auth subrequest
	} {
		asked := 0
		err := Poll(20*time.Second, func() error {
			res, err := send(base, request{Method: "GET", Path: c.path, Token: token})
			if err != nil {
				t.Fatalf("GET %s through nginx: %v", c.path, err)
			}
			asked++
			if res.Status != http.StatusOK {
				t.Fatalf("GET %s through nginx (request %d): %d %s, want 200 from the ready replica", c.path, asked, res.Status, res.Raw)
			}
			if notReady.saw(c.seen) == 0 {
				return fmt.Errorf("the replica that is not ready was not asked %s", c.seen)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// A POST that reaches the replica that is not ready gets its 503.
	err := Poll(20*time.Second, func() error {
		before := notReady.saw("POST /api/v1/auth/token")
		res, err := send(base, request{Method: "POST", Path: "/api/v1/auth/token", ContentType: "application/json",
			Body: []byte(fmt.Sprintf(`{"username":%q,"password":%q}`, AdminUser, AdminPassword))})
		if err != nil {
			t.Fatalf("POST through nginx: %v", err)
		}
		if notReady.saw("POST /api/v1/auth/token") == before {
			if res.Status != http.StatusOK {
				t.Fatalf("login through nginx on the ready replica: %d %s", res.Status, res.Raw)
			}
			return fmt.Errorf("no login reached the replica that is not ready")
		}
		if res.Status != http.StatusServiceUnavailable || string(res.Raw) != lbBodyNotReady || res.Header.Get("Retry-After") != "1" {
			t.Fatalf("login on the replica that is not ready, through nginx: %d %v %s, want its 503 with Retry-After: 1",
				res.Status, res.Header, res.Raw)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestShippedNginxAnswersJSONWhenAReplicaDies: behind the shipped nginx
// configuration, a stopped replica is skipped (nothing was sent to it: also
// for POST); a replica that dies after reading a request leaves a POST's
// outcome unknown, answered 502 in the contract's shape and saying so; and
// with every replica stopped each of the service's routes answers JSON —
// never nginx's HTML page (outside check 19g: a kill -9 mid-POST gave
// clients nginx's HTML 502 on location /).
func TestShippedNginxAnswersJSONWhenAReplicaDies(t *testing.T) {
	t.Parallel()
	reps, stop := lbReplicas(t, 2)
	up := newGWUpstream(t, nil)
	upAddr := strings.TrimPrefix(up.srv.URL, "http://")
	addr := func(i int) string { return strings.TrimPrefix(reps[i].url, "http://") }
	wantJSON := func(what string, res Response, status int, body string) {
		t.Helper()
		if res.Status != status || string(res.Raw) != body || res.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %v %s, want %d %s", what, res.Status, res.Header, res.Raw, status, body)
		}
	}
	login := request{Method: "POST", Path: "/api/v1/auth/token", ContentType: "application/json",
		Body: []byte(fmt.Sprintf(`{"username":%q,"password":%q}`, AdminUser, AdminPassword))}

	// A replica that reads the request, then dies without answering.
	dies := newLBStub(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.(*net.TCPConn).SetLinger(0) // a reset, as the kernel sends for a killed process
		conn.Close()
	})
	base := lbNginx(t, dies.addr(), addr(0), upAddr)
	token := lbToken(t, reps[0].url)
	err := Poll(20*time.Second, func() error {
		before := dies.saw("POST /api/v1/auth/token")
		res, err := send(base, login)
		if err != nil {
			t.Fatalf("POST through nginx: %v", err)
		}
		if dies.saw("POST /api/v1/auth/token") == before {
			if res.Status != http.StatusOK {
				t.Fatalf("login through nginx on the live replica: %d %s", res.Status, res.Raw)
			}
			return fmt.Errorf("no login reached the replica that dies")
		}
		wantJSON("a login on a replica that died reading it", res, http.StatusBadGateway, lbBodyBadGateway)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 6 { // a GET nginx sends again, to the next replica
		res, err := send(base, request{Method: "GET", Path: "/api/v1/auth/me", Token: token})
		if err != nil || res.Status != http.StatusOK {
			t.Fatalf("GET /me through nginx, one replica dying: %v %d %s", err, res.Status, res.Raw)
		}
	}

	// Two real replicas; one stopped, then the other.
	base = lbNginx(t, addr(0), addr(1), upAddr)
	token = lbToken(t, base)
	stop(1)
	for i := range 6 {
		for _, r := range []request{login, {Method: "GET", Path: "/api/v1/auth/me", Token: token},
			{Method: "GET", Path: "/api/v1/tenants/prod/nodes", Token: token}} {
			res, err := send(base, r)
			if err != nil || res.Status != http.StatusOK {
				t.Fatalf("%s %s through nginx (%d), one replica stopped: %v %d %s", r.Method, r.Path, i, err, res.Status, res.Raw)
			}
		}
	}
	stop(0)
	for range 3 { // the first attempt, then with both servers marked failed
		res, err := send(base, login)
		if err != nil {
			t.Fatal(err)
		}
		wantJSON("login, every replica stopped", res, http.StatusBadGateway, lbBodyBadGateway)
		res, err = send(base, request{Method: "GET", Path: "/api/v1/auth/me", Token: token})
		if err != nil {
			t.Fatal(err)
		}
		wantJSON("GET /me, every replica stopped", res, http.StatusBadGateway, lbBodyBadGateway)
		res, err = send(base, request{Method: "GET", Path: "/api/v1/tenants/prod/access", Token: token})
		if err != nil {
			t.Fatal(err)
		}
		wantJSON("a tenant's access history, every replica stopped", res, http.StatusBadGateway, lbBodyBadGateway)
		res, err = send(base, request{Method: "GET", Path: "/api/v1/tenants/prod/nodes", Token: token})
		if err != nil {
			t.Fatal(err)
		}
		wantJSON("a tenant resource, every replica stopped", res, http.StatusServiceUnavailable, lbBodyAuthUnavailable)
	}
}

// TestShippedNginxServesReadsWhenEveryReplicaRefusesWrites: with NATS
// unreachable every replica refuses writes with 503 (nothing was changed)
// and serves reads from its read models. Behind the shipped nginx
// configuration the writes get that 503 with its Retry-After, and the reads
// go on: a write's 503 does not leave the replicas out (nginx counted each
// as a failure, and after two writes answered reads with its 502 too).
func TestShippedNginxServesReadsWhenEveryReplicaRefusesWrites(t *testing.T) {
	t.Parallel()
	noNATS := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != "GET" && r.Method != "HEAD" {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, lbBodyNoNATS)
			return
		}
		fmt.Fprint(w, `{"id":"user-1"}`)
	}
	a, b := newLBStub(t, noNATS), newLBStub(t, noNATS)
	up := newGWUpstream(t, nil)
	base := lbNginx(t, a.addr(), b.addr(), strings.TrimPrefix(up.srv.URL, "http://"))
	for i := range 8 {
		for _, method := range []string{"PUT", "DELETE", "POST", "PATCH"} {
			res, err := send(base, request{Method: method, Path: "/api/v1/users/user-1", ContentType: "application/json", Body: []byte(`{}`)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != http.StatusServiceUnavailable || string(res.Raw) != lbBodyNoNATS || res.Header.Get("Retry-After") != "1" {
				t.Fatalf("%s %d through nginx, no replica writing: %d %v %s, want the replica's 503", method, i, res.Status, res.Header, res.Raw)
			}
		}
		res, err := send(base, request{Method: "GET", Path: "/api/v1/users/user-1"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != http.StatusOK {
			t.Fatalf("GET %d through nginx, no replica writing: %d %s, want the read model's 200", i, res.Status, res.Raw)
		}
	}
}

// TestShippedNginxServesReadsWhileReadyIsPolled: with NATS unreachable every
// replica answers /ready (and writes) 503 and serves reads. A monitor polling
// /ready through the shipped nginx gets that 503 as it is, and the replicas
// stay in: reads go on. Before, /ready went through location /, whose
// proxy_next_upstream http_503 counted each 503 as a failure of the replica
// (max_fails=1): one poll a second through nginx left every replica out, and
// reads answered nginx's 502 (outside check 19r3: 7 of 8).
func TestShippedNginxServesReadsWhileReadyIsPolled(t *testing.T) {
	t.Parallel()
	noNATS := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(strings.ToLower(r.URL.Path), "/ready") || (r.Method != "GET" && r.Method != "HEAD") {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, lbBodyNoNATS)
			return
		}
		fmt.Fprint(w, `{"id":"user-1"}`)
	}
	a, b := newLBStub(t, noNATS), newLBStub(t, noNATS)
	up := newGWUpstream(t, nil)
	base := lbNginx(t, a.addr(), b.addr(), strings.TrimPrefix(up.srv.URL, "http://"))
	for i := range 8 {
		// The ways the service routes /ready: any letter case, trailing slashes.
		for _, path := range []string{"/ready", "/READY/", "/Ready//"} {
			res, err := send(base, request{Method: "GET", Path: path})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != http.StatusServiceUnavailable || string(res.Raw) != lbBodyNoNATS {
				t.Fatalf("GET %s %d through nginx, NATS unreachable: %d %s, want the replica's 503", path, i, res.Status, res.Raw)
			}
		}
		res, err := send(base, request{Method: "GET", Path: "/api/v1/users/user-1"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != http.StatusOK {
			t.Fatalf("GET %d through nginx after polls of /ready, NATS unreachable: %d %s, want the read model's 200", i, res.Status, res.Raw)
		}
	}
	if a.saw("GET /ready")+b.saw("GET /ready") < 8 {
		t.Fatalf("the replicas were asked GET /ready %d and %d times, want it passed on", a.saw("GET /ready"), b.saw("GET /ready"))
	}
}
