package http

import (
	"io"
	"net"
	nethttp "net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

func prefixes(ss ...string) TrustedProxies {
	out := make(TrustedProxies, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func headers(hs ...string) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		out[i] = []byte(h)
	}
	return out
}

func TestRightmostUntrusted(t *testing.T) {
	private := prefixes("10.0.0.0/8")
	tests := []struct {
		name    string
		peer    string
		xff     []string
		trusted TrustedProxies
		want    string
	}{
		{"no header: the peer", "10.0.0.1", nil, private, "10.0.0.1"},
		{"no trusted proxies: the peer", "10.0.0.1", nil, nil, "10.0.0.1"},
		{"empty trusted list: the right-most entry (clientAddr never walks then)", "10.0.0.1", []string{"1.2.3.4, 5.6.7.8"}, nil, "5.6.7.8"},
		{"spoofed XFF naming a trusted address is walked past", "10.0.0.1", []string{"1.2.3.4, 10.1.1.1"}, private, "1.2.3.4"},
		{"one proxy", "10.0.0.1", []string{"1.2.3.4"}, private, "1.2.3.4"},
		{"two proxies", "10.0.0.1", []string{"1.2.3.4, 10.0.0.5"}, private, "1.2.3.4"},
		{"no spaces", "10.0.0.1", []string{"1.2.3.4,10.0.0.5"}, private, "1.2.3.4"},
		{"client-prepended entries left of the client are ignored", "10.0.0.1",
			[]string{"10.9.9.9, 6.6.6.6, 1.2.3.4, 10.0.0.5"}, private, "1.2.3.4"},
		{"client-prepended garbage left of the client is ignored", "10.0.0.1",
			[]string{"<script>, not-an-ip, 1.2.3.4, 10.0.0.5"}, private, "1.2.3.4"},
		{"malformed entry stops the walk at the last trusted hop", "10.0.0.1",
			[]string{"1.2.3.4, garbage, 10.0.0.5"}, private, "10.0.0.5"},
		{"malformed right-most entry: the peer", "10.0.0.1", []string{"1.2.3.4, 10.0.0.5:http"}, private, "10.0.0.1"},
		// Some proxies write the port (an Azure application gateway):
		// each made the proxy the client (outside check 16t).
		{"an entry with a port", "10.0.0.1", []string{"1.2.3.4:51234, 10.0.0.5:8080"}, private, "1.2.3.4"},
		{"a bracketed IPv6 entry with a port", "10.0.0.1", []string{"[2001:db8::1]:443"}, private, "2001:db8::1"},
		{"a mapped address in brackets with a port", "10.0.0.1", []string{"[::ffff:1.2.3.4]:80"}, private, "1.2.3.4"},
		{"a zone is dropped", "10.0.0.1", []string{"fe80::1%eth0"}, private, "fe80::1"},
		{"IPv4 in brackets is malformed", "10.0.0.1", []string{"[1.2.3.4]"}, private, "10.0.0.1"},
		{"a leading zero is malformed", "10.0.0.1", []string{"010.0.0.1"}, private, "10.0.0.1"},
		{"empty entry stops the walk", "10.0.0.1", []string{"1.2.3.4,,10.0.0.5"}, private, "10.0.0.5"},
		{"empty header: the peer", "10.0.0.1", []string{""}, private, "10.0.0.1"},
		{"only trusted hops: the left-most of them", "10.0.0.1", []string{"10.0.0.7, 10.0.0.5"}, private, "10.0.0.7"},
		{"multiple headers are one list, last header nearest", "10.0.0.1",
			[]string{"6.6.6.6, 1.2.3.4", "10.0.0.9", "10.0.0.5"}, private, "1.2.3.4"},
		{"multiple headers: untrusted in the last header wins", "10.0.0.1",
			[]string{"1.2.3.4", "8.8.8.8"}, private, "8.8.8.8"},
		{"multiple headers: malformed header stops the walk", "10.0.0.1",
			[]string{"1.2.3.4", "bogus", "10.0.0.5"}, private, "10.0.0.5"},
		{"IPv6 client", "10.0.0.1", []string{"2001:db8::1, 10.0.0.5"}, private, "2001:db8::1"},
		{"IPv6 proxies", "fd00::1", []string{"2001:db8::1, fd00::5"}, prefixes("fd00::/8"), "2001:db8::1"},
		{"IPv4-mapped entries are unmapped", "10.0.0.1", []string{"::ffff:1.2.3.4, ::ffff:10.0.0.5"}, private, "1.2.3.4"},
		{"bracketed IPv6 without a port", "10.0.0.1", []string{"[2001:db8::1], 10.0.0.5"}, private, "2001:db8::1"},
		{"mixed families", "127.0.0.1", []string{"1.2.3.4, ::1"}, prefixes("127.0.0.0/8", "::1/128"), "1.2.3.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rightmostUntrusted(netip.MustParseAddr(tt.peer), headers(tt.xff...), tt.trusted)
			if got != netip.MustParseAddr(tt.want) {
				t.Fatalf("= %s, want %s", got, tt.want)
			}
		})
	}
}

// clientAddr over real loopback TCP: the peer is 127.0.0.1, and
// X-Forwarded-For counts only when the peer is a trusted proxy.
func TestClientAddr(t *testing.T) {
	tests := []struct {
		name    string
		trusted TrustedProxies
		xff     []string
		want    string
	}{
		{"no trusted proxies: XFF ignored", nil, []string{"10.1.1.1"}, "127.0.0.1"},
		{"untrusted peer with spoofed XFF: the peer", prefixes("10.0.0.0/8"), []string{"10.1.1.1"}, "127.0.0.1"},
		{"untrusted peer, spoofed chain: the peer", prefixes("10.0.0.0/8"), []string{"1.2.3.4, 10.0.0.5"}, "127.0.0.1"},
		{"trusted peer, no header: the peer", prefixes("127.0.0.1/32"), nil, "127.0.0.1"},
		{"trusted peer: the entry it added", prefixes("127.0.0.1/32"), []string{"10.1.1.1"}, "10.1.1.1"},
		{"trusted peer: right-most untrusted", prefixes("127.0.0.0/8", "10.0.0.0/8"), []string{"1.2.3.4, 10.0.0.5"}, "1.2.3.4"},
		{"trusted peer: client-prepended entry ignored", prefixes("127.0.0.1/32"), []string{"10.1.1.1, 8.8.8.8"}, "8.8.8.8"},
		{"trusted peer: multiple headers", prefixes("127.0.0.1/32", "10.0.0.0/8"), []string{"6.6.6.6, 1.2.3.4", "10.0.0.5"}, "1.2.3.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{cfg: Config{TrustedProxies: tt.trusted}}
			app := fiber.New(fiber.Config{DisableStartupMessage: true})
			app.Get("/", func(c *fiber.Ctx) error { return c.SendString(s.clientAddr(c).String()) })
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = app.Listener(ln) }()
			t.Cleanup(func() { _ = app.Shutdown() })
			req, err := nethttp.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range tt.xff {
				req.Header.Add("X-Forwarded-For", h)
			}
			res, err := nethttp.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if string(body) != tt.want {
				t.Fatalf("client address %q, want %s", body, tt.want)
			}
		})
	}
}

func TestTrustedProxiesContains(t *testing.T) {
	tp := prefixes("10.0.0.0/8", "192.168.1.1/32", "fd00::/8")
	for a, want := range map[string]bool{
		"10.0.0.0": true, "10.255.255.255": true, "11.0.0.0": false, "192.168.1.1": true, "192.168.1.2": false,
		"fd12::1": true, "fe00::1": false, "::1": false,
	} {
		if got := tp.contains(netip.MustParseAddr(a)); got != want {
			t.Errorf("contains(%s) = %v, want %v", a, got, want)
		}
	}
	if TrustedProxies(nil).contains(netip.MustParseAddr("10.0.0.1")) {
		t.Error("empty list trusts")
	}
}

func FuzzRightmostUntrusted(f *testing.F) {
	f.Add("10.0.0.1", "1.2.3.4, 10.0.0.5", "")
	f.Add("10.0.0.1", "garbage, 1.2.3.4", "10.0.0.9")
	f.Add("10.0.0.1", "2001:db8::1,fd00::1", "::ffff:10.0.0.2")
	f.Add("10.0.0.1", ",,,", "")
	f.Add("10.0.0.1", "fe80::1%eth0, 10.0.0.3", "")
	f.Add("10.0.0.1", "1.2.3.4:80, [2001:db8::1]:443", "[fd00::2]")
	trusted := prefixes("10.0.0.0/8", "fd00::/8", "127.0.0.1/32")
	f.Fuzz(func(t *testing.T, peer, h1, h2 string) {
		p, err := netip.ParseAddr(peer)
		if err != nil {
			p = netip.MustParseAddr("10.0.0.1")
		}
		p = p.Unmap()
		hs := headers(h1, h2)
		got := rightmostUntrusted(p, hs, trusted)
		if got == p {
			return
		}
		for _, h := range hs {
			for _, part := range strings.Split(string(h), ",") {
				if a, ok := forwardedAddr(strings.TrimSpace(part)); ok && a.Unmap() == got {
					return
				}
			}
		}
		t.Fatalf("peer %s, headers %q: %s is neither the peer nor in the headers", p, hs, got)
	})
}
