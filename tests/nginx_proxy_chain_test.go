package tests

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/http/service"
)

// TestShippedNginxBehindALoadBalancerJudgesTheClient: a load balancer that
// appends to X-Forwarded-For (127.0.0.3), in front of the shipped nginx
// (127.0.0.1), in front of the built binary, both listed in
// INFRACAST_TRUSTED_PROXIES as operations.md says: an API key allowed from
// the client's address (127.0.0.5) works through the chain, on the
// service's API and through forward auth, and a client elsewhere (127.0.0.6)
// cannot claim that address in X-Forwarded-For. Before, the shipped nginx
// replaced the chain with its peer: every client was the load balancer
// (outside check 16t: the key refused, one login throttle for all).
func TestShippedNginxBehindALoadBalancerJudgesTheClient(t *testing.T) {
	t.Parallel()
	bin := faNginxBinary(t)
	data, addr := t.TempDir(), freeAddr(t)
	p := startBinary(t, "INFRACAST_LISTEN="+addr, "INFRACAST_DATA_DIR="+data,
		"INFRACAST_BOOTSTRAP_PASSWORD="+shippedAdminPassword, "INFRACAST_TRUSTED_PROXIES=127.0.0.1,127.0.0.3")
	in := &Instance{URL: "http://" + addr, t: t}
	waitReady(t, in.URL, p)
	admin := in.Login(AdminUser, shippedAdminPassword).String("token")
	created := in.Do("POST", "/api/v1/api-keys", admin, map[string]any{"name": "from-5", "tenants": []string{"prod"},
		"permissions": []string{"nodes:read"}, "allowed_ips": []string{"127.0.0.5"}})
	expectStatus(t, "a key allowed from 127.0.0.5", created, http.StatusCreated)
	key := created.String("key")

	shipped, err := os.ReadFile("../docs/nginx/infracast.conf")
	if err != nil {
		t.Fatal(err)
	}
	up := newGWUpstream(t, nil)
	inner := freeAddr(t)
	conf, err := faTemplate(string(shipped), []faReplacement{
		{"server auth1:8080", "server " + addr},
		{"server auth2:8080", "server " + addr},
		{"upstream resources_once {\n    server 127.0.0.1:9000;", "upstream resources_once {\n    server " + strings.TrimPrefix(up.srv.URL, "http://") + ";"},
		{"server 127.0.0.1:9000;", "server " + strings.TrimPrefix(up.srv.URL, "http://") + ";"},
		{"listen 9000;", "listen " + freeAddr(t) + ";"},
		{"listen 80;", "listen " + inner + ";"},
	})
	if err != nil {
		t.Fatalf("docs/nginx/infracast.conf: %v", err)
	}
	faStartNginx(t, bin, conf, inner)
	outer := freeAddr(t)
	faStartNginx(t, bin, fmt.Sprintf(`server {
	listen %s;
	location / {
		proxy_pass http://%s;
		proxy_bind 127.0.0.3;
		proxy_set_header Host $http_host;
		proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
	}
}`, outer, inner), outer)

	from := func(ip, url, xff string) int {
		t.Helper()
		h := http.Header{}
		if xff != "" {
			h.Set("X-Forwarded-For", xff)
		}
		return getFrom(t, ip, url, key, h)
	}
	for _, path := range []string{"/api/v1/auth/me", "/api/v1/tenants/prod/nodes"} {
		for _, c := range []struct {
			name, ip, via, xff string
			want               int
		}{
			{"the client, straight to nginx", "127.0.0.5", inner, "", http.StatusOK},
			{"the client, through the load balancer", "127.0.0.5", outer, "", http.StatusOK},
			{"another client naming the allowed address, straight to nginx", "127.0.0.6", inner, "127.0.0.5", http.StatusUnauthorized},
			{"another client naming the allowed address, through the load balancer", "127.0.0.6", outer, "127.0.0.5", http.StatusUnauthorized},
		} {
			if got := from(c.ip, "http://"+c.via+path, c.xff); got != c.want {
				t.Errorf("%s, %s: %d, want %d", c.name, path, got, c.want)
			}
		}
	}
}

// TestTrustingEveryAddressIsWarned: INFRACAST_TRUSTED_PROXIES with a range
// of every address lets any client name its own address; the start says
// so (outside check 16t: it started without a word). A range of proxies
// only is not warned about.
func TestTrustingEveryAddressIsWarned(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		ranges []string
		warned bool
	}{{[]string{"10.0.0.0/8", "0.0.0.0/0"}, true}, {[]string{"::/0"}, true}, {[]string{"10.0.0.5/32"}, false}} {
		logs := &LogBuffer{}
		StartLogged(t, logs, func(cfg *service.Config) {
			for _, r := range c.ranges {
				cfg.TrustedProxies = append(cfg.TrustedProxies, netip.MustParsePrefix(r))
			}
		})
		if got := strings.Contains(logs.String(), "INFRACAST_TRUSTED_PROXIES includes every address"); got != c.warned {
			t.Errorf("trusted %v: warned %v, want %v\n%s", c.ranges, got, c.warned, logs.String())
		}
	}
}

// getFrom sends GET url from the local address ip, with bearer token
// and header, and returns the answer's status.
func getFrom(t *testing.T, ip, url, token string, header http.Header) int {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, n, a string) (net.Conn, error) { return d.DialContext(ctx, n, a) }}}
	defer c.CloseIdleConnections()
	req := mustRequest(t, "GET", url, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode
}
