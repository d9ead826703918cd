package http

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/infracast/auth/domain"
)

// The identity headers: set on the forward-auth answer and on every request
// the gateway proxies. The upstream trusts them instead of the bearer token,
// which the gateway does not forward.
const (
	HeaderSubject     = "X-Infracast-Subject"
	HeaderTenant      = "X-Infracast-Tenant"
	HeaderPermissions = "X-Infracast-Permissions"
)

// DefaultUpstreamTimeout bounds how long the upstream may stay silent.
const DefaultUpstreamTimeout = 30 * time.Second

// streamThreshold: upstream bodies larger than this (or of unknown length)
// are streamed to the client instead of being read into memory first.
const streamThreshold = 64 << 10

// ParseUpstreamURL checks INFRACAST_UPSTREAM_URL: an absolute http or https URL
// with a host, optionally a base path, and nothing else.
func ParseUpstreamURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("want an http:// or https:// URL")
	case u.Host == "" || u.Hostname() == "":
		return nil, errors.New("no host")
	case u.User != nil:
		return nil, errors.New("credentials in the URL are not supported")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, errors.New("no query or fragment allowed")
	}
	if p := u.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil {
			return nil, fmt.Errorf("port %q: %v", p, err)
		}
	}
	return u, nil
}

// tenantTarget is a request to a tenant resource in its one canonical form.
type tenantTarget struct {
	Tenant   string
	Resource string // below /api/v1/tenants/{tenant}/, e.g. "nodes/n-1"; "" for the tenant itself
	Path     string // decoded and cleaned: /api/v1/tenants/{tenant}[/{resource}]
	RawQuery string // as received
}

const tenantsPrefix = "/api/v1/tenants/"

// parseTenantURI reads a request URI (path and query, or an absolute URI) the
// way every part of the service does - the gateway, forward auth in all its
// variants - so they all authorize the same thing: the path is
// percent-decoded, then cleaned like path.Clean (repeated slashes and dot
// segments resolved; one trailing slash kept). Refused outright, because
// servers disagree on what they mean: an encoded slash or backslash (%2F,
// %5C), a backslash, a control character, and a dot segment with path
// parameters ("..;"). The result must be /api/v1/tenants/{valid tenant}[/...].
func parseTenantURI(uri string) (tenantTarget, bool) {
	if uri == "" {
		return tenantTarget{}, false
	}
	rawPath, _, _ := strings.Cut(uri, "?")
	if l := strings.ToLower(rawPath); strings.Contains(l, "%2f") || strings.Contains(l, "%5c") {
		return tenantTarget{}, false
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil || u.Opaque != "" {
		return tenantTarget{}, false
	}
	p := u.Path
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return tenantTarget{}, false
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if strings.Contains(seg, ";") && dotLike(seg) {
			return tenantTarget{}, false
		}
	}
	clean := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	rest, ok := strings.CutPrefix(clean, tenantsPrefix)
	if !ok {
		return tenantTarget{}, false
	}
	tenant, resource, _ := strings.Cut(rest, "/")
	if !domain.ValidTenantID(tenant) {
		return tenantTarget{}, false
	}
	return tenantTarget{Tenant: tenant, Resource: resource, Path: clean, RawQuery: u.RawQuery}, true
}

// requestTarget is the request's path and query exactly as the client sent
// them: not the Fiber path, nor fasthttp's RequestURI, both of which may be
// decoded and normalized already, and are not what the checks above expect.
func requestTarget(c *fiber.Ctx) string {
	u := c.Request().URI()
	s := string(u.PathOriginal())
	if q := u.QueryString(); len(q) > 0 {
		s += "?" + string(q)
	}
	return s
}

// dotLike reports whether a segment is "." or ".." once its path parameters
// (";...") are dropped.
func dotLike(seg string) bool {
	s, _, _ := strings.Cut(seg, ";")
	return s == "." || s == ".."
}

// gateway proxies authorized tenant requests to the upstream.
type gateway struct {
	base *url.URL // scheme and host
	path string   // base path of the upstream URL, without a trailing slash
	hc   *fasthttp.HostClient
}

func newGateway(upstream *url.URL, timeout time.Duration) *gateway {
	if timeout <= 0 {
		timeout = DefaultUpstreamTimeout
	}
	tls := upstream.Scheme == "https"
	addr := upstream.Host
	if upstream.Port() == "" {
		port := "80"
		if tls {
			port = "443"
		}
		addr = net.JoinHostPort(upstream.Hostname(), port)
	}
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	g := &gateway{
		base: &url.URL{Scheme: upstream.Scheme, Host: upstream.Host},
		path: strings.TrimSuffix(upstream.Path, "/"),
	}
	g.hc = &fasthttp.HostClient{
		Addr:  addr,
		IsTLS: tls,
		Dial: func(addr string) (net.Conn, error) {
			conn, err := dialer.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			return &idleTimeoutConn{Conn: conn, idle: timeout}, nil
		},
		NoDefaultUserAgentHeader: true,
		MaxConns:                 1024,
		MaxConnWaitTimeout:       timeout,
		MaxIdleConnDuration:      30 * time.Second,
		WriteTimeout:             timeout,
		ReadBufferSize:           16 << 10, // response headers up to 16 KiB
		MaxResponseBodySize:      streamThreshold,
		StreamResponseBody:       true,
		DisablePathNormalizing:   true, // the path is already canonical
		SecureErrorLogMessage:    true,
		// Never resend a request, whatever its method, except once when a
		// kept-alive connection turns out to have been closed by the upstream
		// before it answered (fasthttp's io.EOF case).
		RetryIf:                   func(*fasthttp.Request) bool { return false },
		MaxIdemponentCallAttempts: 2,
	}
	return g
}

// idleTimeoutConn bounds every read from the upstream by idle: the upstream
// may take that long to start answering, and that long between two reads of a
// streamed body, however long the body takes in all. fasthttp's own read
// deadlines (which would bound the whole exchange) are ignored.
type idleTimeoutConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleTimeoutConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *idleTimeoutConn) SetReadDeadline(time.Time) error { return nil }

func (c *idleTimeoutConn) SetDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(t) }

// close releases idle upstream connections.
func (g *gateway) close() { g.hc.CloseIdleConnections() }

// url is where t goes: the upstream's base path followed by t's canonical
// path, re-encoded, and t's query as received.
func (g *gateway) url(t tenantTarget) string {
	u := *g.base
	u.Path = g.path + t.Path
	u.RawQuery = t.RawQuery
	return u.String()
}

// forward proxies the authorized request c (to t, with perms) upstream and
// streams the answer back.
func (g *gateway) forward(s *Server, c *fiber.Ctx, t tenantTarget, perms domain.PermissionSet) error {
	cl := caller(c)
	in := c.Request()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethodBytes(in.Header.Method())
	req.SetRequestURI(g.url(t))
	copyHeaders(in.Header.Peek(fiber.HeaderConnection), in.Header.VisitAll, req.Header.AddBytesKV, dropRequestHeader)
	h := &req.Header
	dropOwnCookies(h)
	h.Set(HeaderSubject, cl.Subject())
	h.Set(HeaderTenant, t.Tenant)
	h.Set(HeaderPermissions, perms.String())
	h.Set(fiber.HeaderXForwardedFor, s.clientAddr(c).String())
	h.Set(fiber.HeaderXForwardedProto, s.forwardedProto(c))
	if host := in.Header.Host(); len(host) > 0 {
		h.SetBytesV(fiber.HeaderXForwardedHost, host)
	}
	rid, _ := c.Locals(localRequestID).(string)
	h.Set(fiber.HeaderXRequestID, rid)
	if body := in.Body(); len(body) > 0 {
		req.SetBodyRaw(body) // the server has read it whole, within the body limit
	}

	resp := fasthttp.AcquireResponse()
	if err := g.hc.Do(req, resp); err != nil {
		fasthttp.ReleaseResponse(resp)
		apiErr := upstreamError(err)
		s.log.Warn("upstream request failed", "request_id", rid, "method", c.Method(), "path", t.Path,
			"status", apiErr.Status, "err", err)
		return apiErr
	}

	out := c.Response()
	for _, k := range []string{HeaderSubject, HeaderTenant, HeaderPermissions} {
		out.Header.Del(k)
	}
	out.SetStatusCode(resp.StatusCode())
	copyHeaders(resp.Header.Peek(fiber.HeaderConnection), resp.Header.VisitAll, out.Header.AddBytesKV, dropResponseHeader)
	if bs := resp.BodyStream(); bs != nil {
		n := resp.Header.ContentLength()
		out.SetBodyStream(&upstreamBody{resp: resp, r: bs, want: int64(n)}, n)
		return nil
	}
	// No body (HEAD, 204, 304): keep the upstream's Content-Length for HEAD.
	out.ResetBody()
	if c.Method() == fiber.MethodHead && resp.Header.ContentLength() >= 0 {
		out.Header.SetContentLength(resp.Header.ContentLength())
	}
	fasthttp.ReleaseResponse(resp)
	return nil
}

// upstreamBody hands the upstream's body to the server, which closes it once
// written. A body not read to its end leaves the upstream connection in an
// unknown state: it is closed rather than reused.
type upstreamBody struct {
	resp   *fasthttp.Response
	r      io.Reader
	want   int64 // Content-Length, or < 0 (chunked)
	read   int64
	eof    bool
	closed bool
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += int64(n)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *upstreamBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if !b.eof && (b.want < 0 || b.read < b.want) {
		b.resp.SetConnectionClose()
	}
	err := b.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(b.resp)
	return err
}

// upstreamError maps a failed upstream exchange to the contract: a timeout
// (connecting, or waiting for the answer) is 504, anything else 502.
func upstreamError(err error) *Error {
	var ne net.Error
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return errGatewayTimeout
	}
	return errBadGateway
}

// forwardedProto is the scheme the client used: https on TLS; what a trusted
// proxy says in X-Forwarded-Proto; http otherwise.
func (s *Server) forwardedProto(c *fiber.Ctx) string {
	if c.Context().IsTLS() {
		return "https"
	}
	peer, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	if s.cfg.TrustedProxies.contains(peer.Unmap()) &&
		strings.EqualFold(strings.TrimSpace(c.Get(fiber.HeaderXForwardedProto)), "https") {
		return "https"
	}
	return "http"
}

// headerKey normalizes a header name for comparison: lower case, and "_" read
// as "-", because CGI-style upstreams (PHP, WSGI, Rack) see X_Infracast_Subject
// and X-Infracast-Subject as the same variable.
func headerKey(name []byte) string {
	b := []byte(strings.ToLower(string(name)))
	for i, c := range b {
		if c == '_' {
			b[i] = '-'
		}
	}
	return string(b)
}

// hopByHop are the headers of one connection (RFC 9110 section 7.6.1, and the
// ones deployed in practice).
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "proxy-authenticate": true,
	"proxy-authorization": true, "te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
}

// dropRequestHeader: what a client sends that the upstream must not receive.
// Hop-by-hop headers; Host, Content-Length and Expect (set anew); the bearer
// token (the upstream trusts the identity headers instead; the session
// cookies go too, see dropOwnCookies); and every header
// the gateway vouches for - X-Infracast-*, X-Forwarded-*, Forwarded, X-Real-IP,
// X-Request-ID - however it is spelled.
func dropRequestHeader(k string) bool {
	switch k {
	case "host", "content-length", "expect", "authorization", "forwarded", "x-real-ip", "x-request-id":
		return true
	}
	return hopByHop[k] || strings.HasPrefix(k, "x-infracast-") || strings.HasPrefix(k, "x-forwarded-")
}

// dropOwnCookies removes the service's own cookies (infracast_*: the browser
// session's access token, its CSRF token, the SSO flow) from a request to the
// upstream, which trusts the identity headers and must not hold credentials.
func dropOwnCookies(h *fasthttp.RequestHeader) {
	var own []string
	h.VisitAllCookie(func(k, _ []byte) {
		if strings.HasPrefix(strings.ToLower(string(k)), "infracast_") {
			own = append(own, string(k))
		}
	})
	for _, k := range own {
		h.DelCookie(k)
	}
}

// dropResponseHeader: what the upstream answers that the client must not
// receive as is. Content-Length follows the body; Date and X-Request-ID are
// the service's own.
func dropResponseHeader(k string) bool {
	switch k {
	case "content-length", "date", "x-request-id":
		return true
	}
	return hopByHop[k]
}

// copyHeaders adds every header visit yields to add, except those drop names
// and those the Connection header lists (hop-by-hop by declaration).
func copyHeaders(connection []byte, visit func(func(k, v []byte)), add func(k, v []byte), drop func(string) bool) {
	var listed map[string]bool
	for _, tok := range strings.Split(string(connection), ",") {
		if tok = strings.TrimSpace(tok); tok != "" {
			if listed == nil {
				listed = map[string]bool{}
			}
			listed[headerKey([]byte(tok))] = true
		}
	}
	visit(func(k, v []byte) {
		key := headerKey(k)
		if drop(key) || listed[key] {
			return
		}
		add(k, v)
	})
}

// CloseUpstream closes the gateway's idle upstream connections (at shutdown).
func (s *Server) CloseUpstream() {
	if s.gw != nil {
		s.gw.close()
	}
}
