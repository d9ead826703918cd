package http

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/infracast/auth/domain"
)

func TestGatewayParseTenantURI(t *testing.T) {
	tests := []struct {
		uri                           string
		ok                            bool
		tenant, resource, path, query string
	}{
		{"/api/v1/tenants/prod/nodes/n1?x=1", true, "prod", "nodes/n1", "/api/v1/tenants/prod/nodes/n1", "x=1"},
		{"/api/v1/tenants/prod/nodes/", true, "prod", "nodes/", "/api/v1/tenants/prod/nodes/", ""},
		{"/api/v1/tenants/prod", true, "prod", "", "/api/v1/tenants/prod", ""},
		{"/api/v1/tenants/prod/", true, "prod", "", "/api/v1/tenants/prod/", ""},
		{"/api/v1/tenants/prod//nodes//n1", true, "prod", "nodes/n1", "/api/v1/tenants/prod/nodes/n1", ""},
		{"/api/v1/tenants/prod/nodes/../settings", true, "prod", "settings", "/api/v1/tenants/prod/settings", ""},
		{"/api/v1/tenants/prod/../staging/nodes", true, "staging", "nodes", "/api/v1/tenants/staging/nodes", ""},
		{"/api/v1/tenants/prod/nodes/%2e%2e/settings", true, "prod", "settings", "/api/v1/tenants/prod/settings", ""},
		{"/api/v1/tenants/prod/nodes/n%201?q=a%2Fb", true, "prod", "nodes/n 1", "/api/v1/tenants/prod/nodes/n 1", "q=a%2Fb"},
		{"http://host/api/v1/tenants/prod/nodes?x", true, "prod", "nodes", "/api/v1/tenants/prod/nodes", "x"},
		{"/api/v1/tenants/prod/nodes%2F..%2Fsettings", false, "", "", "", ""},
		{"/api/v1/tenants/prod/nodes%5csettings", false, "", "", "", ""},
		{"/api/v1/tenants/prod/nodes\\..\\settings", false, "", "", "", ""},
		{"/api/v1/tenants/prod/nodes/..;/settings", false, "", "", "", ""},
		{"/api/v1/tenants/prod/reports/schedules;x=1", false, "", "", "", ""},
		{"/api/v1/tenants/prod/reports/schedules%3Bx=1", false, "", "", "", ""},
		{"/api/v1/tenants/prod/settings#/../nodes", false, "", "", "", ""},
		{"/api/v1/tenants/prod/nodes#x", false, "", "", "", ""},
		{"/api/v1/tenants/prod/nodes?x#y", false, "", "", "", ""},
		// Bytes outside printable ASCII as sent (Python's http.server reads
		// "schedules\xa0" as "schedules"); percent-encoded, they are data.
		{"/api/v1/tenants/prod/reports/schedules\xa0", false, "", "", "", ""},
		{"/api/v1/tenants/prod/nodes/caf\xc3\xa9", false, "", "", "", ""},
		{"/api/v1/tenants/prod/nodes?q=\x85", false, "", "", "", ""},
		{"/api/v1/tenants/prod/nodes/../x\x7f", false, "", "", "", ""},
		{"/api/v1/tenants/prod/nodes?q=a\tb", false, "", "", "", ""},
		{"/api/v1/tenants/prod/nodes/caf%C3%A9?q=%85", true, "prod", "nodes/caf\xc3\xa9", "/api/v1/tenants/prod/nodes/caf\xc3\xa9", "q=%85"},
		{"/api/v1/tenants/prod/nodes/.;x/settings", false, "", "", "", ""},
		{"/api/v1/tenants/prod/nodes/%00", false, "", "", "", ""},
		{"/api/v1/tenants/prod/nodes/%zz", false, "", "", "", ""},
		{"/api/v1/tenants/prod/../../users", false, "", "", "", ""},
		{"/api/v1/tenants/Not_Valid/nodes", false, "", "", "", ""},
		{"/api/v1/tenants/", false, "", "", "", ""},
		{"/api/v1/users", false, "", "", "", ""},
		{"//evil/api/v1/tenants/prod/nodes", false, "", "", "", ""},
		{"api/v1/tenants/prod/nodes", false, "", "", "", ""},
		{"", false, "", "", "", ""},
		{"*", false, "", "", "", ""},
		{"mailto:x@api/v1/tenants/prod/nodes", false, "", "", "", ""},
	}
	for _, tc := range tests {
		got, ok := parseTenantURI(tc.uri)
		if ok != tc.ok {
			t.Errorf("parseTenantURI(%q) ok = %v, want %v (%+v)", tc.uri, ok, tc.ok, got)
			continue
		}
		if ok && (got.Tenant != tc.tenant || got.Resource != tc.resource || got.Path != tc.path || got.RawQuery != tc.query) {
			t.Errorf("parseTenantURI(%q) = %+v", tc.uri, got)
		}
		// Forward auth takes only what is canonical already.
		canonical := ok && !strings.Contains(tc.uri, "..") && !strings.Contains(tc.uri, "//nodes") && !strings.Contains(tc.uri, "%2e")
		tenant, resource, ok2 := parseTenantPath(tc.uri)
		if ok2 != canonical || ok2 && (tenant != got.Tenant || resource != got.Resource) {
			t.Errorf("parseTenantPath(%q) = %q, %q, %v; canonical: %v", tc.uri, tenant, resource, ok2, canonical)
		}
	}
}

// FuzzGatewayParseTenantURI: whatever is accepted is canonical - cleaning it
// again changes nothing - so what is authorized is what is forwarded.
func FuzzGatewayParseTenantURI(f *testing.F) {
	for _, s := range []string{
		"/api/v1/tenants/prod/nodes/n1?x=1", "/api/v1/tenants/prod/nodes/../settings", "/api/v1/tenants/prod//x/",
		"/api/v1/tenants/prod/nodes%2F..", "/api/v1/tenants/prod/%2e%2e/staging", "http://h/api/v1/tenants/a/b",
		"/api/v1/tenants/prod/a;b/..;/c", "/api/v1/tenants/prod/%252e%252e/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		got, ok := parseTenantURI(uri)
		if !ok {
			return
		}
		trimmed := strings.TrimSuffix(got.Path, "/")
		if path.Clean(got.Path) != trimmed {
			t.Fatalf("%q: path %q is not clean", uri, got.Path)
		}
		if got.Path != tenantsPrefix+got.Tenant+"/"+got.Resource && got.Path != tenantsPrefix+got.Tenant {
			t.Fatalf("%q: path %q, tenant %q, resource %q", uri, got.Path, got.Tenant, got.Resource)
		}
		if strings.ContainsAny(got.Path, "\\\x00") {
			t.Fatalf("%q: path %q", uri, got.Path)
		}
		// The forwarded URL parses back to the same target.
		g := &gateway{base: mustURL("http://up:1"), path: ""}
		again, ok := parseTenantURI(strings.TrimPrefix(g.url(got), "http://up:1"))
		if !ok || again != got {
			t.Fatalf("%q: forwarded as %q, which reads as %+v (%v), not %+v", uri, g.url(got), again, ok, got)
		}
	})
}

func TestGatewayHeaderFilters(t *testing.T) {
	for _, name := range []string{
		"Authorization", "authorization", "Proxy-Authorization", "Connection", "Keep-Alive", "TE", "Trailer",
		"Transfer-Encoding", "Upgrade", "Host", "Content-Length", "Expect", "X-Infracast-Subject",
		"x-infracast-tenant", "X_Infracast_Permissions", "X-Infracast-Anything", "X-Forwarded-For",
		"X_Forwarded_Proto", "X-Forwarded-Host", "Forwarded", "X-Real-IP", "X-Request-ID", "Proxy-Connection",
	} {
		if !dropRequestHeader([]byte(name)) {
			t.Errorf("request header %s is forwarded", name)
		}
	}
	for _, name := range []string{"Accept", "Cookie", "Content-Type", "User-Agent", "X-Custom", "X-Infracastle", "Accept-Encoding"} {
		if dropRequestHeader([]byte(name)) {
			t.Errorf("request header %s is dropped", name)
		}
	}
	for _, name := range []string{"Connection", "Keep-Alive", "Transfer-Encoding", "Content-Length", "Date", "X-Request-ID", "Upgrade"} {
		if !dropResponseHeader([]byte(name)) {
			t.Errorf("response header %s is passed on", name)
		}
	}
	for _, name := range []string{"Content-Type", "Set-Cookie", "Location", "Cache-Control", "ETag", "X-Infracast-Subject"} {
		if dropResponseHeader([]byte(name)) {
			t.Errorf("response header %s is dropped", name)
		}
	}

	// Headers the Connection header lists are hop-by-hop too.
	var src fasthttp.RequestHeader
	src.Set("Connection", "keep-alive, X-Hop, x_other")
	src.Set("X-Hop", "1")
	src.Set("X-Other", "1")
	src.Set("X-Kept", "1")
	var dst fasthttp.RequestHeader
	copyRequestHeaders(&dst, &src)
	if len(dst.Peek("X-Hop")) > 0 || len(dst.Peek("X-Other")) > 0 || string(dst.Peek("X-Kept")) != "1" || len(dst.Peek("Connection")) > 0 {
		t.Fatalf("copied %q", dst.String())
	}
}

func TestGatewayUpstreamErrors(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		err  error
		want *Error
	}{
		{refused, errBadGateway},
		{fasthttp.ErrConnectionClosed, errBadGateway},
		{fasthttp.ErrNoFreeConns, errBadGateway},
		{errors.New("malformed response"), errBadGateway},
		{fasthttp.ErrTimeout, errGatewayTimeout},
		{fasthttp.ErrDialTimeout, errGatewayTimeout},
		{context.DeadlineExceeded, errGatewayTimeout},
		{&net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}, errGatewayTimeout},
	} {
		if got := upstreamError(tc.err); got != tc.want {
			t.Errorf("upstreamError(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if errBadGateway.Status != 502 || errBadGateway.Code != "BAD_GATEWAY" || errBadGateway.Message != "Upstream unavailable" ||
		errGatewayTimeout.Status != 504 || errGatewayTimeout.Code != "GATEWAY_TIMEOUT" || errGatewayTimeout.Message != "Upstream timed out" {
		t.Fatal("gateway errors differ from the contract")
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestGatewayParseUpstreamURL(t *testing.T) {
	for _, s := range []string{"http://up:8080", "https://up.internal", "http://10.0.0.1:9000/base/", "http://[::1]:80"} {
		if _, err := ParseUpstreamURL(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "up:8080", "ftp://up", "http://", "http://:80", "http://u:p@up", "http://up?x=1", "http://up/#f", "http://up:0x50", "://up"} {
		if _, err := ParseUpstreamURL(s); err == nil {
			t.Errorf("%q: accepted", s)
		}
	}
	g := newGateway(mustURL("https://up.internal/base/"), 0)
	if g.hc.Addr != "up.internal:443" || !g.hc.IsTLS {
		t.Fatalf("addr %q tls %v", g.hc.Addr, g.hc.IsTLS)
	}
	if got := g.url(tenantTarget{Path: "/api/v1/tenants/prod/nodes/n 1", RawQuery: "a=%2F"}); got != "https://up.internal/base/api/v1/tenants/prod/nodes/n%201?a=%2F" {
		t.Fatalf("url %q", got)
	}
}

func mustURL(s string) *url.URL {
	u, err := ParseUpstreamURL(s)
	if err != nil {
		panic(err)
	}
	return u
}

// The header filters as they were written first, on strings: the
// specification the allocation-free ones must match.
var specHopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "proxy-authenticate": true,
	"proxy-authorization": true, "te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
}

func specDropRequest(k string) bool {
	switch k {
	case "host", "content-length", "expect", "authorization", "forwarded", "x-real-ip", "x-request-id":
		return true
	}
	return specHopByHop[k] || strings.HasPrefix(k, "x-infracast-") || strings.HasPrefix(k, "x-forwarded-")
}

func specDropResponse(k string) bool {
	switch k {
	case "content-length", "date", "x-request-id":
		return true
	}
	return specHopByHop[k]
}

func specOwnCookie(k string) bool {
	l := strings.ToLower(k)
	for _, p := range []string{"__host-", "__secure-"} {
		if strings.HasPrefix(strings.ToLower(k[:min(len(k), len(p))]), p) {
			l = strings.ToLower(k[len(p):])
			break
		}
	}
	return strings.HasPrefix(l, "infracast_")
}

var headerNameCorpus = []string{
	"", "a", "Host", "HOST", "host", "Authorization", "AUTHORIZATION", "authorizatio", "authorizationx",
	"X-Infracast-Subject", "X_INFRACAST_SUBJECT", "x-infracast-", "x-infracast", "X-Infracastle",
	"X-Forwarded-For", "x_forwarded_", "X-Forwarded", "Forwarded", "X-Real-IP", "X_Real_Ip", "X-Request-ID",
	"Connection", "Keep_Alive", "TE", "te", "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Connection",
	"Proxy-Authenticate", "Proxy_Authorization", "Content-Length", "Content_Length", "Expect", "Date",
	"X-İnfracast-Subject", "\u212Aeep-Alive", "X-\u212Aept", "Ünïcode", "\xff\xfe", "X-Infracast-\xff",
	"X-Infracast-" + strings.Repeat("a", 100), "X-Forwarded-" + strings.Repeat("B", 60),
	strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 65),
	"Host" + strings.Repeat(" ", 61), "Cookie", "Set-Cookie", "Accept", "X-Custom",
}

func TestGatewayHeaderFiltersMatchSpec(t *testing.T) {
	for _, name := range headerNameCorpus {
		checkHeaderFilters(t, name)
	}
}

func FuzzGatewayHeaderFilters(f *testing.F) {
	for _, name := range headerNameCorpus {
		f.Add(name, "keep-alive, "+name)
	}
	f.Fuzz(func(t *testing.T, name, connection string) {
		checkHeaderFilters(t, name)
		var l connectionList
		l.parse([]byte(connection))
		want := false
		for _, tok := range strings.Split(connection, ",") {
			if tok = strings.TrimSpace(tok); tok != "" && headerKey([]byte(tok)) == headerKey([]byte(name)) {
				want = true
			}
		}
		if got := l.lists([]byte(name)); got != want {
			t.Fatalf("Connection %q lists %q: %v, want %v", connection, name, got, want)
		}
	})
}

func checkHeaderFilters(t *testing.T, name string) {
	t.Helper()
	k := headerKey([]byte(name))
	if got, want := dropRequestHeader([]byte(name)), specDropRequest(k); got != want {
		t.Errorf("dropRequestHeader(%q) = %v, want %v", name, got, want)
	}
	if got, want := dropResponseHeader([]byte(name)), specDropResponse(k); got != want {
		t.Errorf("dropResponseHeader(%q) = %v, want %v", name, got, want)
	}
	if got, want := ownCookie([]byte(name)), specOwnCookie(name); got != want {
		t.Errorf("ownCookie(%q) = %v, want %v", name, got, want)
	}
}

// Headers a Connection header lists are dropped however many it lists.
func TestGatewayConnectionListsMany(t *testing.T) {
	var src fasthttp.RequestHeader
	var names []string
	for i := 0; i < 12; i++ {
		names = append(names, fmt.Sprintf("X-Hop-%d", i))
		src.Set(fmt.Sprintf("X-Hop-%d", i), "1")
	}
	src.Set("Connection", strings.Join(names, " , ")+",,")
	src.Set("X-Kept", "1")
	var dst fasthttp.RequestHeader
	copyRequestHeaders(&dst, &src)
	for _, n := range names {
		if len(dst.Peek(n)) > 0 {
			t.Errorf("%s copied: %q", n, dst.String())
		}
	}
	if string(dst.Peek("X-Kept")) != "1" {
		t.Errorf("X-Kept not copied: %q", dst.String())
	}
	var rs, rd fasthttp.ResponseHeader
	rs.Set("Connection", "x_hop")
	rs.Set("X-Hop", "1")
	rs.Set("Date", "Mon, 01 Jan 2024 00:00:00 GMT")
	rs.Set("ETag", `"e"`)
	copyResponseHeaders(&rd, &rs, nil)
	if len(rd.Peek("X-Hop")) > 0 || len(rd.Peek("Date")) > 0 || string(rd.Peek("ETag")) != `"e"` {
		t.Errorf("response headers copied: %q", rd.String())
	}
}

// The upstream URL is what net/url makes of it, escaping and all.
func TestGatewayURLMatchesNetURL(t *testing.T) {
	for _, base := range []string{"http://up:1", "http://up:1/", "https://up.internal/base/", "http://10.0.0.1:9000/a%20b/c", "http://[::1]:80/x;y"} {
		for _, tc := range []tenantTarget{
			{Path: "/api/v1/tenants/prod/nodes"},
			{Path: "/api/v1/tenants/prod/nodes/n 1", RawQuery: "a=%2F&b"},
			{Path: "/api/v1/tenants/prod/ü/%/?#!*'()[]", RawQuery: "x"},
			{Path: "/api/v1/tenants/prod/a:b@c$d&e+f,g;h=i~j_k.l-m"},
			{Path: "/api/v1/tenants/prod/"},
		} {
			checkGatewayURL(t, base, tc)
		}
	}
}

func FuzzGatewayURL(f *testing.F) {
	f.Add("/base", "/api/v1/tenants/prod/n 1", "q=1")
	f.Add("", "/api/v1/tenants/prod/%zz?", "")
	f.Fuzz(func(t *testing.T, base, p, q string) {
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		u, err := ParseUpstreamURL("http://up:1" + (&url.URL{Path: base}).EscapedPath())
		if err != nil {
			return
		}
		checkGatewayURL(t, u.String(), tenantTarget{Path: p, RawQuery: q})
	})
}

func checkGatewayURL(t *testing.T, base string, tt tenantTarget) {
	t.Helper()
	g := newGateway(mustURL(base), 0)
	u := *g.base // how the URL was made before
	u.Path = g.path + tt.Path
	u.RawQuery = tt.RawQuery
	if got, want := g.url(tt), u.String(); got != want {
		t.Errorf("%s + %+v: %q, want %q", base, tt, got, want)
	}
}

// The permissions header is PermissionSet.String(), whatever the set.
func TestGatewayPermString(t *testing.T) {
	if len(permStringTable) == 0 {
		t.Fatal("no table")
	}
	for s := 0; s < 1<<16; s++ {
		if got, want := permString(domain.PermissionSet(s)), domain.PermissionSet(s).String(); got != want {
			t.Fatalf("%d: %q, want %q", s, got, want)
		}
	}
}

// The header work of a proxied request allocates nothing.
func TestGatewayHeaderCopyAllocs(t *testing.T) {
	var src, dst fasthttp.RequestHeader
	src.SetHost("api.example")
	src.Set("Authorization", "Bearer x")
	src.Set("Accept", "application/json")
	src.Set("User-Agent", "test")
	src.Set("X-Infracast-Subject", "evil")
	src.Set("Connection", "keep-alive, X-Hop")
	src.Set("X-Hop", "1")
	src.Set("X-Custom", "kept")
	var rs, rd fasthttp.ResponseHeader
	rs.Set("Content-Type", "application/json")
	rs.Set("ETag", `"e"`)
	rs.Set("Date", "Mon, 01 Jan 2024 00:00:00 GMT")
	rs.Add("Set-Cookie", "session=abc; Path=/")
	rs.Set("Location", "http://up:1/basement")
	g := newGateway(mustURL("http://up:1/base"), 0)
	tt := tenantTarget{Tenant: "prod", Path: "/api/v1/tenants/prod/nodes/n1", RawQuery: "x=1"}
	var buf [256]byte
	allocs := testing.AllocsPerRun(100, func() {
		dst.Reset()
		dst.DisableNormalizing()
		copyRequestHeaders(&dst, &src)
		dropOwnCookies(&dst)
		rd.Reset()
		if copyResponseHeaders(&rd, &rs, g.locations) {
			t.Fatal("a Location outside the upstream URL was left out")
		}
		_ = g.appendURL(buf[:0], tt)
		_ = permString(domain.SetOf(domain.NodesRead, domain.JobsRead))
	})
	if allocs != 0 {
		t.Errorf("%v allocations per request", allocs)
	}
	if got := string(dst.Peek("X-Custom")); got != "kept" || len(dst.Peek("X-Hop")) > 0 || len(dst.Peek("Authorization")) > 0 {
		t.Errorf("copied %q", dst.String())
	}
}

// TestGatewayDropsUpstreamOwnSetCookie: an upstream cannot set, replace or
// clear the service's own cookies in the browser; its other cookies pass.
func TestGatewayDropsUpstreamOwnSetCookie(t *testing.T) {
	var src, dst fasthttp.ResponseHeader
	src.Add("Set-Cookie", "session=abc; Path=/; HttpOnly")
	src.Add("Set-Cookie", "infracast_token=forged; Path=/")
	src.Add("set-cookie", " INFRACAST_csrf=; Max-Age=0")
	src.Add("Set-Cookie", "infracast_sso_okta=x")
	src.Add("Set-Cookie", "__Host-infracast_sso_okta=x; Path=/; Secure")
	src.Add("Set-Cookie", "__SECURE-Infracast_token=x; Secure")
	src.Add("Set-Cookie", "infracastle=kept")
	copyResponseHeaders(&dst, &src, nil)
	var got []string
	dst.VisitAll(func(k, v []byte) {
		if strings.EqualFold(string(k), "Set-Cookie") {
			got = append(got, string(v))
		}
	})
	joined := strings.Join(got, " | ")
	if strings.Contains(strings.ToLower(joined), "infracast_") || !strings.Contains(joined, "session=abc") || !strings.Contains(joined, "infracastle=kept") {
		t.Fatalf("Set-Cookie passed on: %q", got)
	}
}

var tenantURICorpus = []string{
	"/", "/?", "//", "/api/v1/tenants/prod", "/api/v1/tenants/prod/", "/api/v1/tenants/prod/nodes?x=1",
	"/api/v1/tenants/prod/nodes?", "/api/v1/tenants/prod/nodes??", "/api/v1/tenants/prod/nodes?a?b",
	"/api/v1/tenants/prod/nodes?x=\x01", "/api/v1/tenants/prod/nodes?x=\x7f", "/api/v1/tenants/prod/nodes?x=%zz",
	"/api/v1/tenants/prod/.", "/api/v1/tenants/prod/..", "/api/v1/tenants/prod/./x", "/api/v1/tenants/prod/../x",
	"/api/v1/tenants/prod/...", "/api/v1/tenants/prod/.x/..y/x..", "/api/v1/tenants/prod//x", "/api/v1/tenants/prod/x//",
	"/api/v1/tenants/prod/x/", "/api/v1/tenants/prod/a:b@c!$&'()*+,=~_-", "/api/v1/tenants/prod/a;b", "/api/v1/tenants/prod/a b",
	"/api/v1/tenants/prod/ü", "/api/v1/tenants/prod/%41", "/api/v1/tenants/Prod/x", "/api/v1/tenants/prod_1/x",
	"/api/v1/tenants//prod/x", "/api/v1/tenants", "/api/v1/tenantsx/prod", "/API/v1/tenants/prod", "/x:y/api/v1/tenants/prod",
	"/api/v1/tenants/prod/x\\y", "/api/v1/tenants/prod/x\x00", "*", "http://h/api/v1/tenants/prod/x", "//h/api/v1/tenants/prod/x",
	"/api/v1/tenants/" + strings.Repeat("a", 70) + "/x",
}

func TestGatewayParseTenantURIMatchesSpec(t *testing.T) {
	for _, uri := range tenantURICorpus {
		checkParseTenantURI(t, uri)
	}
}

func FuzzGatewayParseTenantURIMatchesSpec(f *testing.F) {
	for _, uri := range tenantURICorpus {
		f.Add(uri)
	}
	f.Fuzz(func(t *testing.T, uri string) { checkParseTenantURI(t, uri) })
}

func checkParseTenantURI(t *testing.T, uri string) {
	t.Helper()
	got, ok := parseTenantURI(uri)
	want, wantOK := parseTenantURIAnyForm(uri) // the general path, for every URI alike: the plain-URI shortcut must match it
	if ok != wantOK || got != want {
		t.Fatalf("parseTenantURI(%q) = %+v, %v; want %+v, %v", uri, got, ok, want, wantOK)
	}
	// What forward auth authorizes is the path the proxy forwards, as it
	// is: decoded once, nothing to clean, no path parameter, no fragment.
	tenant, resource, fwd := parseTenantPath(uri)
	if !fwd {
		return
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		t.Fatalf("parseTenantPath(%q) accepted what net/url refuses: %v", uri, err)
	}
	decided := tenantsPrefix + tenant
	if resource != "" || strings.HasSuffix(u.Path, "/") {
		decided += "/" + resource
	}
	if u.Path != decided || strings.ContainsAny(u.Path, ";#") {
		t.Fatalf("parseTenantPath(%q) decided on %q; the proxy forwards %q", uri, decided, u.Path)
	}
	if strings.Contains(u.Path, "//") || strings.Contains(u.Path, "/./") || strings.Contains(u.Path, "/../") || strings.HasSuffix(u.Path, "/..") || strings.HasSuffix(u.Path, "/.") {
		t.Fatalf("parseTenantPath(%q) accepted a path to clean: %q", uri, u.Path)
	}
}

// Random URIs made of the pieces that matter to the rules, against the
// specification.
func TestGatewayParseTenantURIRandom(t *testing.T) {
	pieces := []string{"/", "/api/v1/tenants/", "prod", "staging", "nodes", ".", "..", "%2e", "%2F", "%5c", "%41", "%",
		";", "?", "\\", " ", "\x00", "\x7f", "ü", ":", "@", "//", "x=1", "&", "#", "*", "Prod", "_", "~"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200_000; i++ {
		var b strings.Builder
		if rng.IntN(4) > 0 {
			b.WriteString("/api/v1/tenants/")
		}
		for n := rng.IntN(8); n >= 0; n-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		checkParseTenantURI(t, b.String())
	}
}

// TestGatewayUpstreamLocation: which Location, Content-Location and Refresh
// headers point below the upstream URL (and are rewritten to the gateway's),
// the upstream URL with or without its scheme's default port.
func TestGatewayUpstreamLocation(t *testing.T) {
	up := []string{"http://up:8080/base"}
	for _, tc := range []struct {
		k, v string
		want bool
	}{
		{"Location", "http://up:8080/base", true},
		{"location", "http://up:8080/base/api/v1/tenants/prod?x=1", true},
		{"Content-Location", "HTTP://UP:8080/base/x", true},
		{"CONTENT-LOCATION", "http://up:8080/base?x", true},
		{"Location", "http://up:8080/base#f", true},
		{"Refresh", "0; url=http://up:8080/base/x", true},
		{"refresh", "5;URL='http://up:8080/base/x'", true},
		{"Refresh", "5", false},
		{"Refresh", "5; url = http://up:8080/base/x", true}, // HTML's refresh syntax (a re-check)
		{"Refresh", "5; url= http://up:8080/base/x", true},
		{"Refresh", "5; http://up:8080/base/x", true},
		{"Refresh", "5, URL=\"http://up:8080/base/x\"", true},
		{"Refresh", "5 url=http://up:8080/base/x", true}, // whitespace alone separates too (re-check 13r8)
		{"Refresh", "0\thttp://up:8080/base/x", true},
		{"Refresh", "5x url=http://up:8080/base/x", false},
		{"Refresh", "0; url=http://elsewhere/base/x", false},
		{"Location", "http://up:8080/Base/x", false}, // the path is case-sensitive
		{"Location", "http://up:8080/basement", false},
		{"Location", "http://up:80801/base/x", false},
		{"Location", "http://up:8080/bas", false},
		{"Location", "https://up:8080/base/x", false},
		{"Location", "/base/x", false},
		{"Link", "http://up:8080/base/x", false},
		{"X-Location", "http://up:8080/base/x", false},
	} {
		if _, _, got := upstreamLocation([]byte(tc.k), []byte(tc.v), up); got != tc.want {
			t.Errorf("%s: %s: %v, want %v", tc.k, tc.v, got, tc.want)
		}
	}
	for _, v := range []string{"http://up:8080", "http://up:8080/", "http://up:8080?q", "http://UP:8080/x"} {
		if _, _, ok := upstreamLocation([]byte("Location"), []byte(v), []string{"http://up:8080"}); !ok {
			t.Errorf("no base path: %s not below the upstream", v)
		}
	}
	if _, _, ok := upstreamLocation([]byte("Location"), []byte("http://up:8080/x"), nil); ok {
		t.Error("no upstream URL: rewritten")
	}
	// The scheme's default port given or not, on either side (a re-check:
	// nginx leaves :80 out of its redirects).
	for _, u := range []string{"http://up:80/b", "http://up/b", "https://up:443/b", "https://up/b"} {
		g := newGateway(mustURL(u), 0)
		for _, v := range []string{"http://up/b/x", "http://up:80/b/x", "https://up/b/x", "https://up:443/b/x"} {
			want := strings.HasPrefix(v, "https") == strings.HasPrefix(u, "https")
			if _, _, got := upstreamLocation([]byte("Location"), []byte(v), g.locations); got != want {
				t.Errorf("upstream %s, Location %s: %v, want %v", u, v, got, want)
			}
		}
		if _, _, ok := upstreamLocation([]byte("Location"), []byte("http://up:8080/b/x"), g.locations); ok {
			t.Errorf("upstream %s: another port taken for it", u)
		}
	}
}

// TestGatewayRewriteStaysOnTheGateway: what the rewrite of an upstream's own
// URL makes of it is a path on the gateway — never a scheme-relative
// reference to another host (a re-check: "http://up//evil.example/x" became
// "//evil.example/x", an open redirect).
func TestGatewayRewriteStaysOnTheGateway(t *testing.T) {
	locations := []string{"http://up:8080/base"}
	for in, want := range map[string]string{
		"http://up:8080/base/x":                "/x",
		"http://up:8080/base":                  "/",
		"http://up:8080/base?q=1":              "/?q=1",
		"http://up:8080/base//evil.example/x":  "/.//evil.example/x",
		"http://up:8080/base/\\evil.example/x": "/./\\evil.example/x",
		"http://up:8080/base/\t/evil.example/": "/./\t/evil.example/",
		"http://up:8080/base/a//b":             "/a//b",
	} {
		for _, k := range []string{"Location", "Content-Location", "Refresh"} {
			v, w := in, want
			if k == "Refresh" {
				v, w = "0; url="+in, "0; url="+want
			}
			var src, dst fasthttp.ResponseHeader
			src.Set(k, v)
			rewriteLocations(&dst, &src, locations)
			if got := string(dst.Peek(k)); got != w {
				t.Errorf("%s: %q became %q, want %q", k, v, got, w)
			}
		}
	}
}

// TestUpstreamConnNotReusedAfterBodilessAnswer: a connection whose answer had
// a status without a body (1xx, 204, 304) — seen however the status line is
// split between reads — refuses the next request unwritten
// (errUpstreamBodilessAnswer), so fasthttp closes it and sends the request
// on another: an upstream may send a body after such an answer, which the
// next request would read as its own (outside check 19a). After other
// answers, and over TLS (encrypted bytes), it writes as before.
func TestUpstreamConnNotReusedAfterBodilessAnswer(t *testing.T) {
	for _, tc := range []struct {
		reads []string
		tls   bool
		want  error
	}{
		{[]string{"HTTP/1.1 204 No Content\r\n\r\n"}, false, errUpstreamBodilessAnswer},
		{[]string{"HTTP/1.1 3", "04 Not Modified\r\n\r\n"}, false, errUpstreamBodilessAnswer},
		{[]string{"H", "TTP/1.0 103 Early Hints\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}, false, errUpstreamBodilessAnswer},
		{[]string{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}, false, nil},
		{[]string{"HTTP/1.1 2", "00 OK\r\nContent-Length: 3\r\n\r\n204"}, false, nil},
		{[]string{"HTTP/1.1 204 No Content\r\n\r\n"}, true, nil},
		// As fasthttp reads a status line (outside check 19r1): extra
		// spaces after the version, empty lines before it.
		{[]string{"HTTP/1.1  204 No Content\r\n\r\n"}, false, errUpstreamBodilessAnswer},
		{[]string{"HTTP/1.1  304 Not Modified\r\n\r\n"}, false, errUpstreamBodilessAnswer},
		{[]string{"\nHTTP/1.1 204 No Content\r\n\r\n"}, false, errUpstreamBodilessAnswer},
		{[]string{"\r\n\n\r", "\nHTTP/1.0 ", "  ", "1", "01 Switching\r\n\r\n"}, false, errUpstreamBodilessAnswer},
		{[]string{"\r\nHTTP/1.1    200 OK\r\nContent-Length: 0\r\n\r\n"}, false, nil},
		{[]string{"HTTP/1.1 ", " 20", "0 OK\r\nContent-Length: 0\r\n\r\n"}, false, nil},
		// One fasthttp would not read counts as bodiless (it closes the
		// connection on it anyway).
		{[]string{"HTTP/2 200 OK\r\n\r\n"}, false, errUpstreamBodilessAnswer},
		{[]string{"HTTP/1.1\t204 No Content\r\n\r\n"}, false, errUpstreamBodilessAnswer},
		{[]string{"\rHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}, false, errUpstreamBodilessAnswer},
		{[]string{"HTTP/1.1 2x0 OK\r\n\r\n"}, false, errUpstreamBodilessAnswer},
	} {
		client, server := net.Pipe()
		c := &idleTimeoutConn{Conn: client, idle: time.Minute, tls: tc.tls, turns: 1}
		go func() {
			buf := make([]byte, 256)
			for {
				if _, err := server.Read(buf); err != nil {
					return
				}
			}
		}()
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		for _, r := range tc.reads {
			go func() { _, _ = server.Write([]byte(r)) }()
			buf := make([]byte, len(r))
			if _, err := io.ReadFull(c, buf); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); !errors.Is(err, tc.want) {
			t.Errorf("%q (tls %v): the next write returned %v, want %v", tc.reads, tc.tls, err, tc.want)
		}
		client.Close()
		server.Close()
	}
}

// TestStatusLineAllocatesNothing: the status line is read on every answer
// (a GET's included) without an allocation.
func TestStatusLineAllocatesNothing(t *testing.T) {
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	var s statusLine
	if n := testing.AllocsPerRun(1000, func() {
		s = statusLine{}
		if s.read(answer[:5]) || s.read(answer[5:]) || !s.done() {
			t.Fatal("200 read as bodiless, or not read")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per answer", n)
	}
}

// FuzzStatusLineAsFasthttp: whatever an upstream answers, and however the
// reads split it, a status fasthttp reads as bodiless (1xx, 204, 304) is
// read as bodiless (outside check 19r1: fasthttp skips empty lines and
// extra spaces that a status at a fixed offset missed), and a status read
// as having a body is the one fasthttp reads, if it reads one.
func FuzzStatusLineAsFasthttp(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1  204 No Content\r\n\r\n", "\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1  304 Not Modified\r\n\r\n", "\r\nHTTP/1.0 100 Continue\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 204\r\n\r\n", "HTTP/1.1 2040 x\r\n\r\n", "\n\n\nHTTP/9.9   199\r\n\r\n",
	} {
		f.Add(seed, uint8(3))
	}
	f.Fuzz(func(t *testing.T, answer string, split uint8) {
		var h fasthttp.ResponseHeader
		err := h.Read(bufio.NewReader(strings.NewReader(answer)))
		code := h.StatusCode()
		var s statusLine
		at := min(int(split), len(answer))
		bodiless := s.read([]byte(answer[:at])) || s.read([]byte(answer[at:]))
		// fasthttp reads no body after these (mustSkipContentLength)
		if err == nil && (code >= 100 && code < 200 || code == 204 || code == 304) && !bodiless {
			t.Fatalf("%q: fasthttp reads %d, the status line was not read as bodiless", answer, code)
		}
		if got, _ := strconv.Atoi(string(s.code[:])); err == nil && !bodiless && s.done() && got != code && !(got == 0 && code == 200) { // fasthttp's StatusCode of a 000 is 200
			t.Fatalf("%q: status %s read; fasthttp reads %d", answer, s.code[:], code)
		}
	})
}
