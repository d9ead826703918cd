package http

import (
	"context"
	"errors"
	"net"
	"net/url"
	"path"
	"strings"
	"syscall"
	"testing"

	"github.com/valyala/fasthttp"
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
		tenant, resource, ok2 := parseTenantPath(tc.uri)
		if ok2 != ok || tenant != got.Tenant || resource != got.Resource {
			t.Errorf("parseTenantPath(%q) disagrees with parseTenantURI", tc.uri)
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
		if !dropRequestHeader(headerKey([]byte(name))) {
			t.Errorf("request header %s is forwarded", name)
		}
	}
	for _, name := range []string{"Accept", "Cookie", "Content-Type", "User-Agent", "X-Custom", "X-Infracastle", "Accept-Encoding"} {
		if dropRequestHeader(headerKey([]byte(name))) {
			t.Errorf("request header %s is dropped", name)
		}
	}
	for _, name := range []string{"Connection", "Keep-Alive", "Transfer-Encoding", "Content-Length", "Date", "X-Request-ID", "Upgrade"} {
		if !dropResponseHeader(headerKey([]byte(name))) {
			t.Errorf("response header %s is passed on", name)
		}
	}
	for _, name := range []string{"Content-Type", "Set-Cookie", "Location", "Cache-Control", "ETag", "X-Infracast-Subject"} {
		if dropResponseHeader(headerKey([]byte(name))) {
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
	copyHeaders(src.Peek("Connection"), src.VisitAll, dst.AddBytesKV, dropRequestHeader)
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
