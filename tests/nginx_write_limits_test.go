package tests

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/http/service"
)

// TestNginxWriteLimitsFromOperations runs the optional write limits of
// docs/operations.md ("Limits and noisy neighbours"), its three nginx blocks
// as the page shows them, in the shipped nginx configuration in front of a
// service: writes beyond one credential's rate — from four addresses, each
// well within the address's — and beyond one address's rate — without a
// credential — get 429 RATE_LIMITED in the contract's shape with Retry-After,
// and never reach the service; another credential, another address and reads
// (the same credential, the same address) pass meanwhile. The service limits
// no write rate itself (outside check 19l: one tenant's writes slowed every
// other tenant's logins), so the page gives this, and this keeps it true.
func TestNginxWriteLimitsFromOperations(t *testing.T) {
	t.Parallel()
	bin := faNginxBinary(t)
	in := Start(t, func(c *service.Config) {
		c.TrustedProxies = append(c.TrustedProxies, netip.MustParsePrefix("127.0.0.1/32"))
	})
	tokenA := in.Login(AdminUser, AdminPassword).String("token")
	tokenB := in.Login(AdminUser, AdminPassword).String("token")
	if tokenA == "" || tokenB == "" || tokenA == tokenB {
		t.Fatal("two admin sessions' access tokens: want two different tokens")
	}

	blocks := operationsNginxBlocks(t)
	shipped, err := os.ReadFile("../docs/nginx/infracast.conf")
	if err != nil {
		t.Fatal(err)
	}
	svcAddr := strings.TrimPrefix(in.URL, "http://")
	up := newGWUpstream(t, nil)
	addr := freeAddr(t)
	conf, err := faTemplate(string(shipped), []faReplacement{
		{"server auth1:8080", "server " + svcAddr},
		{"server auth2:8080", "server " + svcAddr},
		{"upstream resources_once {\n    server 127.0.0.1:9000;", "upstream resources_once {\n    server " + strings.TrimPrefix(up.srv.URL, "http://") + ";"},
		{"server 127.0.0.1:9000;", "server " + strings.TrimPrefix(up.srv.URL, "http://") + ";"},
		{"listen 9000;", "listen " + freeAddr(t) + ";"},
		{"listen 80;", "listen " + addr + ";"},
		// The server block's addition beside @infracast_write, and the
		// location's at its top, as the page says.
		{"    location @infracast_write {\n", blocks[2] + "\n    location @infracast_write {\n" + blocks[1]},
	})
	if err != nil {
		t.Fatalf("docs/nginx/infracast.conf: %v", err)
	}
	faStartNginx(t, bin, blocks[0]+"\n"+conf, addr)
	base := "http://" + addr

	// The rates and bursts as the page sets them.
	rateCaller, burstCaller := limitReqFigures(t, blocks, "infracast_writes_caller")
	rateAddr, burstAddr := limitReqFigures(t, blocks, "infracast_writes_addr")
	if rateCaller >= rateAddr || burstCaller >= burstAddr {
		t.Fatalf("the page's per-credential limit (%d/s, burst %d) is not below its per-address one (%d/s, burst %d): this test's first half assumes it is",
			rateCaller, burstCaller, rateAddr, burstAddr)
	}

	// A write that changes nothing and costs the service little: the
	// deletion of a key nobody has (404), or without a credential (401).
	write := func(ip, token string) limitedAnswer {
		return sendFrom(t, ip, "DELETE", base+"/api/v1/api-keys/key-01JNOSUCHKEY0000000000000000", token)
	}
	read := func(ip, token string) limitedAnswer {
		return sendFrom(t, ip, "GET", base+"/api/v1/auth/me", token)
	}
	// untilLimited writes with next until nginx answers 429 (or a deadline),
	// checking every answer on the way, and returns how many passed, how
	// long it took and the 429.
	untilLimited := func(what string, next func(i int) limitedAnswer) (int, time.Duration, limitedAnswer) {
		t.Helper()
		start, deadline := time.Now(), time.Now().Add(30*time.Second)
		passed := 0
		for i := 0; time.Now().Before(deadline); i++ {
			a := next(i)
			if a.status == http.StatusTooManyRequests {
				return passed, time.Since(start), a
			}
			if a.status != http.StatusNotFound && a.status != http.StatusUnauthorized {
				t.Fatalf("%s: write %d answered %d %s, want the service's 404 or 401", what, i, a.status, a.body)
			}
			passed++
		}
		t.Fatalf("%s: no 429 after %d writes in 30 s", what, passed)
		return 0, 0, limitedAnswer{}
	}
	checkLimited := func(what string, passed, rate, burst int, took time.Duration, a limitedAnswer) {
		t.Helper()
		t.Logf("%s: %d writes passed in %s, then 429", what, passed, took.Round(time.Millisecond))
		// nginx lets 1 + burst through at once (nodelay), and rate more a second.
		if most := 1 + burst + int(float64(rate)*took.Seconds()) + 1; passed < 1+burst || passed > most {
			t.Errorf("%s: %d writes passed in %s before the 429, want %d to %d", what, passed, took, 1+burst, most)
		}
		var got struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal([]byte(a.body), &got); err != nil || got.Error.Code != "RATE_LIMITED" || got.Error.Message == "" {
			t.Errorf("%s: 429 body %q, want the contract's {\"error\":{\"code\":\"RATE_LIMITED\",…}} (%v)", what, a.body, err)
		}
		if a.header.Get("Retry-After") != "1" || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: 429 with Retry-After %q, Content-Type %q; want 1 and application/json", what, a.header.Get("Retry-After"), a.header.Get("Content-Type"))
		}
	}

	// One credential from four addresses: its own rate, not an address's.
	ips := []string{"127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"}
	passed, took, limited := untilLimited("credential A", func(i int) limitedAnswer { return write(ips[i%len(ips)], tokenA) })
	checkLimited("credential A from four addresses", passed, rateCaller, burstCaller, took, limited)
	if a := write(ips[0], tokenB); a.status != http.StatusNotFound {
		t.Errorf("credential B's write from the same address while A is limited: %d %s, want the service's 404", a.status, a.body)
	}
	for i := 0; i < 3*burstAddr; i++ {
		if a := read(ips[i%len(ips)], tokenA); a.status != http.StatusOK {
			t.Fatalf("read %d with credential A while its writes are limited: %d %s, want 200", i, a.status, a.body)
		}
	}

	// One address without a credential (a login, the console's cookie).
	passed, took, limited = untilLimited("address 127.0.0.21", func(int) limitedAnswer { return write("127.0.0.21", "") })
	checkLimited("address 127.0.0.21", passed, rateAddr, burstAddr, took, limited)
	if a := write("127.0.0.22", ""); a.status != http.StatusUnauthorized {
		t.Errorf("another address's write while 127.0.0.21 is limited: %d %s, want the service's 401", a.status, a.body)
	}
	for i := 0; i < 3*burstAddr; i++ {
		if a := read("127.0.0.21", tokenB); a.status != http.StatusOK {
			t.Fatalf("read %d from 127.0.0.21 while its writes are limited: %d %s, want 200", i, a.status, a.body)
		}
	}
}

// operationsNginxBlocks returns the nginx blocks of docs/operations.md's
// "Limits and noisy neighbours", in order: the http level's, the top of
// location @infracast_write's, the server block's.
func operationsNginxBlocks(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Limits and noisy neighbours\n")
	if !ok {
		t.Fatal(`docs/operations.md has no section "Limits and noisy neighbours"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```nginx\n(.*?)```").FindAllStringSubmatch(section, -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) != 3 {
		t.Fatalf("docs/operations.md, Limits and noisy neighbours: %d nginx blocks, want 3 (http, location, server)", len(blocks))
	}
	return blocks
}

// limitReqFigures reads zone's rate (per second) and its limit_req's burst
// from the page's blocks.
func limitReqFigures(t *testing.T, blocks []string, zone string) (rate, burst int) {
	t.Helper()
	all := strings.Join(blocks, "\n")
	r := regexp.MustCompile(`zone=` + zone + `:\S+ rate=(\d+)r/s;`).FindStringSubmatch(all)
	b := regexp.MustCompile(`limit_req zone=` + zone + ` burst=(\d+) nodelay;`).FindStringSubmatch(all)
	if r == nil || b == nil {
		t.Fatalf("docs/operations.md: no rate or burst for zone %s", zone)
	}
	rate, errR := strconv.Atoi(r[1])
	burst, errB := strconv.Atoi(b[1])
	if errR != nil || errB != nil {
		t.Fatalf("docs/operations.md, zone %s: rate %q, burst %q", zone, r[1], b[1])
	}
	return rate, burst
}

type limitedAnswer struct {
	status int
	header http.Header
	body   string
}

// sendFrom sends method url from the local address ip, with bearer token
// (none when ""), on a connection of its own.
func sendFrom(t *testing.T, ip, method, url, token string) limitedAnswer {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, n, a string) (net.Conn, error) { return d.DialContext(ctx, n, a) }}}
	defer c.CloseIdleConnections()
	req := mustRequest(t, method, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return limitedAnswer{res.StatusCode, res.Header, string(body)}
}
