package http

import (
	"bytes"
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

// streamThreshold: upstream bodies larger than this (or chunked) are streamed
// to the client instead of being read into memory first; one delimited by the
// connection's close is refused above it (readCloseDelimited).
const streamThreshold = 64 << 10

// ParseUpstreamURL checks INFRACAST_UPSTREAM_URL: an absolute http or https URL
// with a host, optionally a base path, and nothing else.
func ParseUpstreamURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		// Not err: it quotes the value, credentials and all.
		return nil, errors.New("does not parse as a URL")
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
// segments resolved; one trailing slash kept; forward auth refuses a path
// that cleaning changes: parseTenantPath). Refused outright, because servers
// disagree on what they mean: an encoded slash or backslash (%2F, %5C), a
// backslash, a control character, a semicolon (path parameters: Tomcat and
// Spring drop ";x=1" from a segment, so "schedules;x=1" would be decided as
// a segment no rule names and served as "schedules"), a "#" (no request
// target has a fragment; Express and Flask cut the path there) and a byte
// outside printable ASCII as sent, not percent-encoded (no request target
// has one either, RFC 9112; Python's http.server reads "schedules\xa0" as
// "schedules": it splits the request line at Unicode spaces). The result
// must be /api/v1/tenants/{valid tenant}[/...].
func parseTenantURI(uri string) (tenantTarget, bool) {
	if rawPath, query, plain := plainTenantURI(uri); plain {
		return tenantTargetOf(rawPath, query)
	}
	return parseTenantURIAnyForm(uri)
}

// plainTenantURI splits uri into its path and query when reading it is
// trivial: an origin-form target ("/...", not "//...") whose path has only
// bytes that need no decoding and that no rule refuses (letters, digits and
// -._~!$&'()*+,=:@/), no empty segment and no "." or ".." segment, and with
// no control character, byte outside ASCII or "#" anywhere. Such a path is its own decoded, cleaned
// form, and url.ParseRequestURI would read it - and the query - the same.
func plainTenantURI(uri string) (rawPath, query string, plain bool) {
	if len(uri) < 2 || uri[0] != '/' || uri[1] == '/' {
		return "", "", false
	}
	rawPath, query, _ = strings.Cut(uri, "?")
	segStart := 0
	for i := 0; i <= len(rawPath); i++ {
		if i == len(rawPath) || rawPath[i] == '/' {
			switch seg := rawPath[segStart:i]; seg {
			case ".", "..":
				return "", "", false
			case "":
				// Only the leading slash's, and a trailing slash's.
				if i != 0 && i != len(rawPath) {
					return "", "", false
				}
			}
			segStart = i + 1
			continue
		}
		if !plainPathByte[rawPath[i]] {
			return "", "", false
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c < 0x20 || c >= 0x7f || c == '#' {
			return "", "", false
		}
	}
	return rawPath, query, true
}

// plainPathByte: the bytes plainTenantURI lets through in a path.
var plainPathByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range []byte("-._~!$&'()*+,=:@") {
		t[c] = true
	}
	return t
}()

// parseTenantURIAnyForm is parseTenantURI for any request URI.
func parseTenantURIAnyForm(uri string) (tenantTarget, bool) {
	t, _, ok := readTenantURI(uri)
	return t, ok
}

// readTenantURI is parseTenantURIAnyForm, also returning the path as
// decoded, before cleaning (forward auth refuses one that cleaning changes).
func readTenantURI(uri string) (t tenantTarget, decoded string, ok bool) {
	if uri == "" {
		return tenantTarget{}, "", false
	}
	for i := 0; i < len(uri); i++ {
		if c := uri[i]; c == '#' || c < 0x20 || c >= 0x7f {
			return tenantTarget{}, "", false
		}
	}
	rawPath, _, _ := strings.Cut(uri, "?")
	if l := strings.ToLower(rawPath); strings.Contains(l, "%2f") || strings.Contains(l, "%5c") {
		return tenantTarget{}, "", false
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil || u.Opaque != "" {
		return tenantTarget{}, "", false
	}
	p := u.Path
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' || c == ';' {
			return tenantTarget{}, "", false
		}
	}
	clean := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	t, ok = tenantTargetOf(clean, u.RawQuery)
	return t, p, ok
}

// tenantTargetOf is the target of a decoded, cleaned path: it must be
// /api/v1/tenants/{valid tenant}[/...].
func tenantTargetOf(clean, rawQuery string) (tenantTarget, bool) {
	rest, ok := strings.CutPrefix(clean, tenantsPrefix)
	if !ok {
		return tenantTarget{}, false
	}
	tenant, resource, _ := strings.Cut(rest, "/")
	if !domain.ValidTenantID(tenant) {
		return tenantTarget{}, false
	}
	return tenantTarget{Tenant: tenant, Resource: resource, Path: clean, RawQuery: rawQuery}, true
}

// requestTarget is the request's path and query exactly as the client sent
// them: not the Fiber path, nor fasthttp's RequestURI, both of which may be
// decoded and normalized already, and are not what the checks above expect.
// fasthttp's URI drops a fragment, which the checks refuse: a target sent
// with one is returned as "#", which every reader of it refuses (an outside
// check, 18p: "nodes#/../secret" was authorized as "nodes").
func requestTarget(c *fiber.Ctx) string {
	if bytes.IndexByte(c.Request().Header.RequestURI(), '#') >= 0 {
		return "#"
	}
	u := c.Request().URI()
	p, q := u.PathOriginal(), u.QueryString()
	if len(q) == 0 {
		return string(p)
	}
	var b strings.Builder // one allocation
	b.Grow(len(p) + 1 + len(q))
	b.Write(p)
	b.WriteByte('?')
	b.Write(q)
	return b.String()
}

// gateway proxies authorized tenant requests to the upstream.
type gateway struct {
	base   *url.URL // scheme and host
	path   string   // base path of the upstream URL, without a trailing slash
	prefix string   // scheme://host and the escaped base path: how every upstream URL starts
	// locations: the forms of prefix an upstream's Location may take — with
	// and without the scheme's default port (http://h:80 and http://h).
	locations []string
	hc        *fasthttp.HostClient
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
	g.prefix = (&url.URL{Scheme: upstream.Scheme, Host: upstream.Host, Path: g.path}).String()
	g.locations = []string{g.prefix}
	defaultPort := map[bool]string{false: "80", true: "443"}[tls]
	if upstream.Port() == defaultPort {
		g.locations = append(g.locations, (&url.URL{Scheme: upstream.Scheme, Host: upstream.Hostname(), Path: g.path}).String())
	} else if upstream.Port() == "" {
		g.locations = append(g.locations, (&url.URL{Scheme: upstream.Scheme, Host: net.JoinHostPort(upstream.Hostname(), defaultPort), Path: g.path}).String())
	}
	// And each without its scheme ("//host:port/base"), which a browser
	// resolves against the scheme it used.
	for _, l := range g.locations {
		g.locations = append(g.locations, l[strings.Index(l, "//"):])
	}
	g.hc = &fasthttp.HostClient{
		Addr:  addr,
		IsTLS: tls,
		Dial: func(addr string) (net.Conn, error) {
			conn, err := dialer.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			return &idleTimeoutConn{Conn: conn, idle: timeout, tls: tls}, nil
		},
		NoDefaultUserAgentHeader: true,
		MaxConns:                 maxUpstreamConns,
		MaxConnWaitTimeout:       timeout,
		// Under the 5 s an idle connection is kept by Node.js's default
		// (keepAliveTimeout): a connection such an upstream is about to
		// close is seldom picked. One closed sooner (gunicorn's default is
		// 2 s) is seen before writing (idleTimeoutConn).
		MaxIdleConnDuration:    upstreamIdle,
		WriteTimeout:           timeout,
		ReadBufferSize:         16 << 10, // response headers up to 16 KiB
		MaxResponseBodySize:    streamThreshold,
		StreamResponseBody:     true,
		DisablePathNormalizing: true, // the path is already canonical
		SecureErrorLogMessage:  true,
		// Never resend a request the upstream may have read: fasthttp cannot
		// tell a connection closed while idle from one the upstream closed
		// after reading (and maybe acting on) the request, or after part of
		// its answer — a re-check saw a PUT applied twice when it resent on
		// io.EOF. Only a request that was never written goes out again: one
		// that met a connection the upstream had closed already
		// (errUpstreamClosedIdle), which idleTimeoutConn sees before writing.
		// An idle connection is also dropped before common upstreams drop
		// theirs (upstreamIdle).
		RetryIfErr: func(_ *fasthttp.Request, _ int, err error) (bool, bool) {
			return false, errors.Is(err, errUpstreamClosedIdle) || errors.Is(err, errUpstreamBodilessAnswer)
		},
		MaxIdemponentCallAttempts: maxUnsentAttempts,
	}
	return g
}

// upstreamIdle: how long an idle upstream connection is kept.
const upstreamIdle = 4 * time.Second

// maxUpstreamConns bounds the connections to the upstream.
const maxUpstreamConns = 1024

// maxUnsentAttempts bounds how many pooled connections one request may find
// closed by the upstream: all of them, and then a new one, which is not
// looked at. After a burst, an upstream that closes idle connections sooner
// than upstreamIdle (gunicorn: 2 s) or restarts leaves every pooled
// connection closed — a re-check saw a cap of 32 answer 502 there — and each
// costs one system call to find out.
const maxUnsentAttempts = maxUpstreamConns + 1

// errUpstreamClosedIdle: the connection picked for a request had been closed
// by the upstream while idle — an upstream that closes after every answer
// without saying "Connection: close", or sooner than upstreamIdle — or the
// upstream sent something on it unasked (TLS's close_notify before closing;
// a "408 Request Timeout"). Nothing was written, so the request goes out on
// another connection.
var errUpstreamClosedIdle = errors.New("http: upstream closed the idle connection")

// errUpstreamBodilessAnswer: the connection picked for a request last
// carried an answer that has no body by its status (1xx, 204, 304), after
// which an upstream may send one all the same (idleTimeoutConn). Nothing was
// written, so the request goes out on another connection.
var errUpstreamBodilessAnswer = errors.New("http: upstream connection last carried a bodiless answer")

// idleTimeoutConn bounds every read from the upstream by idle: the upstream
// may take that long to start answering, and that long between two reads of a
// streamed body, however long the body takes in all. fasthttp's own read
// deadlines (which would bound the whole exchange) are ignored. Before the
// first write of a request on a connection that has carried an answer, it
// looks (peerUnusable) whether the upstream has closed it meanwhile or sent
// something unasked, and then writes nothing (errUpstreamClosedIdle).
//
// Nor does it carry a request after an answer whose status says it has no
// body (1xx, 204, 304), seen in the answer's status line: fasthttp reads
// such an answer's headers and no more, but an upstream may send a body
// after them (a handler that writes one on a 204), and bytes arriving after
// the look above would be read as the next request's answer — another
// client's (outside check 19a). Its next write is refused
// (errUpstreamBodilessAnswer), so fasthttp closes it. The status line is
// read as fasthttp reads it (statusLine), leading empty lines and extra
// spaces included — a status at a fixed offset missed "HTTP/1.1  204" and
// "\nHTTP/1.1 204", which fasthttp reads as 204s (outside check 19r1) — and
// one it cannot read counts as bodiless. Not over TLS, whose bytes here are
// encrypted; nor can it see bytes that fasthttp's reader read along with an
// answer: fasthttp gives no hook to its reader, which drops them when it is
// reused.
type idleTimeoutConn struct {
	net.Conn
	idle time.Duration
	tls  bool // the connection carries TLS, whose handshake reads, then writes
	// answered: a read has returned data since the last write, so the next
	// write starts a request on a used connection — or, the first time on a
	// TLS connection, finishes the handshake (turns).
	answered bool
	turns    int
	// status: how far the status line of the answer being read has been
	// read; bodiless: an answer on the connection had a status without a
	// body, or a status line fasthttp would not read.
	status   statusLine
	bodiless bool
}

func (c *idleTimeoutConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.answered = true
		if !c.tls && !c.status.done() && c.status.read(p[:n]) {
			c.bodiless = true
		}
	}
	return n, err
}

func (c *idleTimeoutConn) Write(p []byte) (int, error) {
	if c.answered {
		c.answered = false
		c.turns++
		c.status = statusLine{}
		if c.bodiless {
			return 0, errUpstreamBodilessAnswer
		}
		if !(c.tls && c.turns == 1) && peerUnusable(c.Conn) {
			return 0, errUpstreamClosedIdle
		}
	}
	return c.Conn.Write(p)
}

// statusLine reads an answer's status line up to its status code, byte by
// byte however the reads split it, as fasthttp's ResponseHeader reads it
// (parseFirstLine): empty lines ("\n" or "\r\n") before it skipped, then
// "HTTP/d.d", one space and any more, and three digits. Whatever else it
// finds there — which fasthttp refuses, closing the connection — counts as
// bodiless, so the connection is not reused either way. The zero value is
// at the answer's first byte; it allocates nothing.
type statusLine struct {
	state statusState
	n     int     // bytes of the version, or digits of the code, read so far
	code  [3]byte // the status code's digits
}

type statusState uint8

const (
	statusLineStart statusState = iota // at a line's start, before the status line
	statusCR                           // after a "\r" at a line's start
	statusVersion                      // in "HTTP/d.d"
	statusSpaces                       // in the spaces after the version
	statusCode                         // in the status code
	statusDone                         // read, or given up on
)

// done reports whether the status line has been read as far as it needs.
func (s *statusLine) done() bool { return s.state == statusDone }

// read reads p, the answer's next bytes, and reports whether they finish a
// status line that has no body by its code, or that fasthttp would not read.
func (s *statusLine) read(p []byte) (bodiless bool) {
	for _, b := range p {
		switch s.state {
		case statusLineStart:
			switch b {
			case '\n':
				continue
			case '\r':
				s.state = statusCR
				continue
			}
			s.state, s.n = statusVersion, 0
			if !s.version(b) {
				return s.giveUp()
			}
		case statusCR:
			if b != '\n' {
				return s.giveUp()
			}
			s.state = statusLineStart
		case statusVersion:
			if s.n == len("HTTP/1.1") {
				if b != ' ' {
					return s.giveUp()
				}
				s.state = statusSpaces
				continue
			}
			if !s.version(b) {
				return s.giveUp()
			}
		case statusSpaces:
			if b == ' ' {
				continue
			}
			s.state, s.n = statusCode, 0
			fallthrough
		case statusCode:
			if b < '0' || b > '9' {
				return s.giveUp()
			}
			s.code[s.n] = b
			s.n++
			if s.n == len(s.code) {
				s.state = statusDone
				return bodilessStatus(s.code[:])
			}
		case statusDone:
			return false
		}
	}
	return false
}

// version reads b, the next byte of "HTTP/d.d", and reports whether it fits.
func (s *statusLine) version(b byte) bool {
	const proto = "HTTP/1.1"
	i := s.n
	s.n++
	if i == 5 || i == 7 {
		return b >= '0' && b <= '9'
	}
	return b == proto[i]
}

// giveUp ends the reading of a status line fasthttp would not read: as if
// bodiless.
func (s *statusLine) giveUp() bool {
	s.state = statusDone
	return true
}

// bodilessStatus reports whether an answer's status code (three digits, as
// sent) is one whose answer has no body: 1xx, 204 or 304.
func bodilessStatus(code []byte) bool {
	return code[0] == '1' || string(code) == "204" || string(code) == "304"
}

func (c *idleTimeoutConn) SetReadDeadline(time.Time) error { return nil }

func (c *idleTimeoutConn) SetDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(t) }

// close releases idle upstream connections.
func (g *gateway) close() { g.hc.CloseIdleConnections() }

// url is where t goes: the upstream's base path followed by t's canonical
// path, re-encoded, and t's query as received.
func (g *gateway) url(t tenantTarget) string { return string(g.appendURL(nil, t)) }

// appendURL appends g.url(t) to dst: what url.URL.String makes of the
// upstream's scheme and host, its base path followed by t.Path, and t's query,
// without building a url.URL when the path needs no escaping (the usual case).
func (g *gateway) appendURL(dst []byte, t tenantTarget) []byte {
	dst = append(dst, g.prefix...)
	if pathIsEscaped(t.Path) {
		dst = append(dst, t.Path...)
	} else {
		// The escaping is byte by byte, so the base path's and t.Path's
		// escaped forms put together are those of the whole.
		dst = append(dst, (&url.URL{Path: t.Path}).EscapedPath()...)
	}
	if t.RawQuery != "" {
		dst = append(dst, '?')
		dst = append(dst, t.RawQuery...)
	}
	return dst
}

// pathSafe[c]: url.URL leaves byte c of a path as it is.
var pathSafe = func() (safe [256]bool) {
	for c := range safe {
		s := string([]byte{byte(c)})
		safe[c] = (&url.URL{Path: s}).EscapedPath() == s
	}
	return safe
}()

// pathIsEscaped reports whether url.URL would escape none of p's bytes.
func pathIsEscaped(p string) bool {
	for i := 0; i < len(p); i++ {
		if !pathSafe[p[i]] {
			return false
		}
	}
	return true
}

// permStringTable holds PermissionSet.String() of every set of the known
// permissions, so that the identity header costs nothing per request.
var permStringTable = func() []string {
	n := len(domain.AllPermissions)
	if n > 12 {
		return nil
	}
	t := make([]string, 1<<n)
	for i := range t {
		t[i] = domain.PermissionSet(i).String()
	}
	return t
}()

// permString is perms.String(), from the table when it has perms.
func permString(perms domain.PermissionSet) string {
	if int(perms) < len(permStringTable) {
		return permStringTable[perms]
	}
	return perms.String()
}

// forward proxies the authorized request c (to t, with perms) upstream and
// streams the answer back.
func (g *gateway) forward(s *Server, c *fiber.Ctx, t tenantTarget, perms domain.PermissionSet) error {
	cl := caller(c)
	in := c.Request()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	h := &req.Header
	// Every name added below is canonical already, or copied from the
	// request as the server parsed (and normalized) it.
	h.DisableNormalizing()
	h.SetMethodBytes(in.Header.Method())
	var uri [256]byte
	req.SetRequestURIBytes(g.appendURL(uri[:0], t))
	copyRequestHeaders(h, &in.Header)
	dropOwnCookies(h)
	// None of these is among the copied headers (see dropRequestHeader), so
	// adding them sets them.
	h.Add(HeaderSubject, cl.Subject())
	h.Add(HeaderTenant, t.Tenant)
	h.Add(HeaderPermissions, permString(perms))
	var ip [64]byte
	h.AddBytesV(fiber.HeaderXForwardedFor, s.clientAddr(c).AppendTo(ip[:0]))
	h.Add(fiber.HeaderXForwardedProto, s.forwardedProto(c))
	if host := in.Header.Host(); len(host) > 0 {
		h.AddBytesV(fiber.HeaderXForwardedHost, host)
	}
	rid, _ := c.Locals(localRequestID).(string)
	h.Add(fiber.HeaderXRequestID, rid)
	// Only the client's Content-Type, or none: fasthttp adds
	// "application/octet-stream" to a body sent without one (outside check
	// 19a).
	h.SetNoDefaultContentType(true)
	if body := in.Body(); len(body) > 0 {
		req.SetBodyRaw(body) // the server has read it whole, within the body limit
		if !bodyExpected(in.Header.Method()) {
			// Many handlers of such a method never read a body (Python's
			// http.server, a framework's GET handler): on a kept-alive
			// connection the upstream would then parse it as the next
			// request — one nobody authorized, with identity headers the
			// client wrote (outside check 19a). With "close", the upstream
			// processes nothing after this request, and the connection is
			// not reused.
			h.SetConnectionClose()
		}
	}
	if in.Header.IsHead() {
		// An answer to HEAD has headers only, but an upstream may send
		// the GET's body after them (do_HEAD = do_GET): bytes that the
		// next request on the connection, another client's, would read as
		// its answer. A correct answer looks the same by its headers, so
		// no connection is reused after HEAD.
		h.SetConnectionClose()
	}

	resp := fasthttp.AcquireResponse()
	if err := g.hc.Do(req, resp); err != nil {
		fasthttp.ReleaseResponse(resp)
		return s.upstreamFailed(c, rid, t, err)
	}
	if resp.StatusCode() < fiber.StatusOK {
		// A final 1xx: 101 Switching Protocols (fasthttp skips the interim
		// ones). The gateway relays no Upgrade, so there is nothing to
		// switch to; relayed, it left the client waiting on a connection
		// that would never answer (an outside check).
		resp.SetConnectionClose()
		fasthttp.ReleaseResponse(resp)
		return s.upstreamFailed(c, rid, t, errUpstreamSwitched)
	}

	bs := resp.BodyStream()
	n := resp.Header.ContentLength()
	out := c.Response()
	if small := bs != nil && (n >= 0 && n <= streamThreshold || n == closeDelimited); small {
		// Small enough to read whole before answering, into the answer's
		// body (fasthttp's pooled copy): the upstream connection is free
		// again at once. A body delimited by the connection's close is read
		// whole too, or refused (readCloseDelimited). Not with resp.Body(), which puts a read error's
		// text in the body: an upstream closing or falling silent within it
		// made a 200 whose body was "unexpected EOF" (a re-check). Nothing
		// is sent yet, so that is a 502 (or 504).
		out.ResetBody()
		var err error
		if n >= 0 {
			err = resp.BodyWriteTo(out.BodyWriter())
			if err == nil && len(out.Body()) != n {
				err = io.ErrUnexpectedEOF
			}
		} else {
			err = readCloseDelimited(out.BodyWriter(), bs)
		}
		if err != nil {
			resp.SetConnectionClose()
			fasthttp.ReleaseResponse(resp)
			out.ResetBody()
			return s.upstreamFailed(c, rid, t, err)
		}
		out.SetStatusCode(resp.StatusCode())
		g.copyAnswerHeaders(&out.Header, &resp.Header)
		fasthttp.ReleaseResponse(resp)
		return nil
	}

	out.SetStatusCode(resp.StatusCode())
	g.copyAnswerHeaders(&out.Header, &resp.Header)
	if bs == nil {
		// No body (HEAD, 204, 304): keep the upstream's Content-Length for HEAD.
		out.ResetBody()
		if c.Method() == fiber.MethodHead && n >= 0 {
			out.Header.SetContentLength(n)
		}
		fasthttp.ReleaseResponse(resp)
		return nil
	}
	// Streamed: the status line and headers go out at once, and each read
	// of the upstream's body then reaches the client as it comes. fasthttp
	// would hold both in its 4 KiB write buffer until it is full (an outside
	// check saw an upstream's first bytes wait on the next ones, and an
	// upstream falling silent leave the client with no answer at all): with
	// the buffer flushed, a body of known length is copied by the TCP
	// connection's ReadFrom, which writes every read through, and a chunked
	// one is flushed chunk by chunk.
	out.ImmediateHeaderFlush = true
	out.SetBodyStream(&upstreamBody{resp: resp, r: bs, want: int64(n)}, n)
	return nil
}

// bodyExpected reports whether handlers of method are expected to read a
// request body: POST, PUT and PATCH, whose body is the request. For any
// other method (GET, HEAD, DELETE, OPTIONS, an extension method) a body has
// no defined meaning (RFC 9110 section 9.3) and is commonly left unread, so
// it is sent on a connection of its own (forward). Not refused: some APIs
// take a GET's body (Elasticsearch's searches) or a DELETE's.
func bodyExpected(method []byte) bool {
	switch string(method) {
	case fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch:
		return true
	}
	return false
}

// errUpstreamSwitched: the upstream answered 101 Switching Protocols.
var errUpstreamSwitched = errors.New("http: upstream switched protocols, and the gateway relays no Upgrade")

// copyAnswerHeaders gives the answer out the upstream's headers up: its
// Content-Type, or none when it sent none (not fasthttp's default
// "text/plain; charset=utf-8", which the gateway added to redirects, 204s and
// 304s), the service's default headers where up has none of its own, and a
// Location, Content-Location or Refresh that points into the upstream URL rewritten
// (rewriteLocations).
func (g *gateway) copyAnswerHeaders(out, up *fasthttp.ResponseHeader) {
	up.SetNoDefaultContentType(true)
	if len(up.ContentType()) == 0 {
		out.SetNoDefaultContentType(true)
	}
	upstreamOverridesDefaults(out, up)
	if copyResponseHeaders(out, up, g.locations) {
		rewriteLocations(out, up, g.locations)
	}
}

// closeDelimited is fasthttp's ContentLength for an answer with neither a
// Content-Length nor chunking, whose body ends when the upstream closes.
const closeDelimited = -2

// errCloseDelimitedTooLarge: an answer delimited by the connection's close is
// larger than streamThreshold.
var errCloseDelimitedTooLarge = errors.New("http: upstream answer of unknown length, not chunked, over 64 KiB")

// readCloseDelimited copies a body delimited by the connection's close from
// r to w, up to streamThreshold: such a body cut off by an upstream dying in
// it would look complete, so it is never streamed, and a larger one is
// refused (errCloseDelimitedTooLarge, answered 502). Read whole, it is
// answered with its length.
func readCloseDelimited(w io.Writer, r io.Reader) error {
	n, err := io.Copy(w, io.LimitReader(r, streamThreshold+1))
	if err == nil && n > streamThreshold {
		err = errCloseDelimitedTooLarge
	}
	return err
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
// upstreamFailed logs a request the upstream did not answer whole and
// returns the contract's answer to it (upstreamError).
func (s *Server) upstreamFailed(c *fiber.Ctx, rid string, t tenantTarget, err error) error {
	apiErr := upstreamError(err)
	s.log.Warn("upstream request failed", "request_id", rid, "method", c.Method(), "path", t.Path,
		"status", apiErr.Status, "err", err)
	return apiErr
}

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

// headerKeyMax: an ASCII header name is compared by its first headerKeyMax
// bytes, folded without allocating; a longer one can only match a prefix.
const headerKeyMax = 64

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

// foldHeaderKey is headerKey(name) in buf, truncated to headerKeyMax bytes
// (whole reports whether it is not), without allocating when name is ASCII.
func foldHeaderKey(buf *[headerKeyMax]byte, name []byte) (k []byte, whole bool) {
	if !isASCII(name) { // Unicode case folding: headerKey's
		return []byte(headerKey(name)), true
	}
	k = buf[:0]
	for _, c := range name[:min(len(name), headerKeyMax)] {
		k = append(k, foldByte(c))
	}
	return k, len(name) <= headerKeyMax
}

func foldByte(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	case c == '_':
		return '-'
	}
	return c
}

// sameHeader reports whether headerKey(a) == headerKey(b).
func sameHeader(a, b []byte) bool {
	if !isASCII(a) || !isASCII(b) { // Unicode folding may change lengths
		return headerKey(a) == headerKey(b)
	}
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if foldByte(a[i]) != foldByte(b[i]) {
			return false
		}
	}
	return true
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// hopByHop reports whether a folded name is one of the headers of one
// connection (RFC 9110 section 7.6.1, and the ones deployed in practice).
func hopByHop(k []byte) bool {
	switch string(k) {
	case "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
		"te", "trailer", "transfer-encoding", "upgrade":
		return true
	}
	return false
}

// dropRequestHeader: what a client sends that the upstream must not receive.
// Hop-by-hop headers; Host, Content-Length and Expect (set anew); the bearer
// token (the upstream trusts the identity headers instead; the session
// cookies go too, see dropOwnCookies); and every header
// the gateway vouches for - X-Infracast-*, X-Forwarded-*, Forwarded, X-Real-IP,
// X-Request-ID - however it is spelled.
func dropRequestHeader(name []byte) bool {
	var buf [headerKeyMax]byte
	k, whole := foldHeaderKey(&buf, name)
	// x-original-* and x-rewrite-url: what some frameworks (IIS, Symfony)
	// take for the request's URL, host or method, as a proxy's word; only
	// the gateway speaks for the request here.
	if bytes.HasPrefix(k, []byte("x-infracast-")) || bytes.HasPrefix(k, []byte("x-forwarded-")) ||
		bytes.HasPrefix(k, []byte("x-original-")) {
		return true
	}
	if !whole {
		return false
	}
	switch string(k) {
	case "host", "content-length", "expect", "authorization", "forwarded", "x-real-ip", "x-request-id", "x-rewrite-url":
		return true
	}
	return hopByHop(k)
}

// dropOwnCookies removes the service's own cookies (infracast_*: the browser
// session's access token, its CSRF token, the SSO flow) from a request to the
// upstream, which trusts the identity headers and must not hold credentials.
func dropOwnCookies(h *fasthttp.RequestHeader) {
	own := false
	h.VisitAllCookie(func(k, _ []byte) { own = own || ownCookie(k) })
	if !own {
		return
	}
	var names []string
	h.VisitAllCookie(func(k, _ []byte) {
		if ownCookie(k) {
			names = append(names, string(k))
		}
	})
	for _, k := range names {
		h.DelCookie(k)
	}
}

// ownCookie: the name starts with infracast_ once lower-cased, after a
// cookie prefix __Host- or __Secure- (in any case: the SSO flow cookies are
// __Host-infracast_sso_<id> over https).
func ownCookie(name []byte) bool {
	const prefix = "infracast_"
	for _, p := range [...]string{"__host-", "__secure-"} {
		if len(name) >= len(p) && strings.EqualFold(string(name[:len(p)]), p) {
			name = name[len(p):]
			break
		}
	}
	if !isASCII(name) { // Unicode lower case: "İnfracast_" is one too
		return strings.HasPrefix(strings.ToLower(string(name)), prefix)
	}
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// dropResponseHeader: what the upstream answers that the client must not
// receive as is. Content-Length follows the body; Date and X-Request-ID are
// the service's own.
func dropResponseHeader(name []byte) bool {
	var buf [headerKeyMax]byte
	k, whole := foldHeaderKey(&buf, name)
	if !whole {
		return false
	}
	switch string(k) {
	case "content-length", "date", "x-request-id":
		return true
	}
	return hopByHop(k)
}

// connectionList holds the header names a Connection header lists: hop by
// hop by declaration.
type connectionList struct {
	few  [8][]byte
	n    int
	more [][]byte
}

// parseAll reads every Connection line of a header (PeekAll's values): a
// name listed on a second line is as hop by hop as one on the first.
func (l *connectionList) parseAll(lines [][]byte) {
	for _, line := range lines {
		l.parse(line)
	}
}

func (l *connectionList) parse(connection []byte) {
	for len(connection) > 0 {
		var tok []byte
		tok, connection, _ = bytes.Cut(connection, []byte(","))
		if tok = bytes.TrimSpace(tok); len(tok) == 0 {
			continue
		}
		if l.n < len(l.few) {
			l.few[l.n] = tok
			l.n++
		} else {
			l.more = append(l.more, tok)
		}
	}
}

func (l *connectionList) lists(name []byte) bool {
	for _, tok := range l.few[:l.n] {
		if sameHeader(tok, name) {
			return true
		}
	}
	for _, tok := range l.more {
		if sameHeader(tok, name) {
			return true
		}
	}
	return false
}

// copyRequestHeaders adds every header of src to dst, except those
// dropRequestHeader names and those src's Connection header lists.
func copyRequestHeaders(dst, src *fasthttp.RequestHeader) {
	var listed connectionList
	listed.parseAll(src.PeekAll(fiber.HeaderConnection))
	src.VisitAll(func(k, v []byte) {
		if !dropRequestHeader(k) && !listed.lists(k) {
			dst.AddBytesKV(k, v)
		}
	})
}

// copyResponseHeaders adds every header of src to dst, except those
// dropResponseHeader names, those src's Connection header lists, a
// Set-Cookie of one of the service's own cookies (ownSetCookie), and a
// Location, Content-Location or Refresh that points below the upstream URL
// in one of its forms, locations (upstreamLocation): it reports whether it
// left one out, for the caller to add rewritten (rewriteLocations).
func copyResponseHeaders(dst, src *fasthttp.ResponseHeader, locations []string) (relocated bool) {
	var listed connectionList
	listed.parseAll(src.PeekAll(fiber.HeaderConnection))
	src.VisitAll(func(k, v []byte) {
		if dropResponseHeader(k) || listed.lists(k) || ownSetCookie(k, v) {
			return
		}
		if _, _, ok := upstreamLocation(k, v, locations); ok {
			relocated = true
			return
		}
		dst.AddBytesKV(k, v)
	})
	return relocated
}

// upstreamLocation reports whether header k: v is a Location or a
// Content-Location that points below the upstream URL (one of locations:
// scheme://host[:port] and the base path, the scheme and host in any case) —
// the URL itself, or followed by "/", "?" or "#" — or a Refresh whose url=
// does: the URL starts at v[at], and n bytes of it are the upstream's.
func upstreamLocation(k, v []byte, locations []string) (at, n int, ok bool) {
	switch {
	case len(k) == len(locationHeader) && sameHeader(k, locationHeader),
		len(k) == len(contentLocationHeader) && sameHeader(k, contentLocationHeader):
	case len(k) == len(refreshHeader) && sameHeader(k, refreshHeader):
		var found bool
		if at, found = refreshURL(v); !found {
			return 0, 0, false
		}
	default:
		return 0, 0, false
	}
	for _, upstream := range locations {
		if underUpstream(v[at:], upstream) {
			return at, len(upstream), true
		}
	}
	return 0, 0, false
}

// refreshURL finds where the URL of a Refresh header starts, as HTML parses
// it ("5; url=…", "5;URL = '…'", "5, …", "5 url=…": the delay, then ";",
// "," or spaces, then an optional "url" and "=", each with optional spaces,
// and an optional quote).
// A re-check saw "url = …" pass unrewritten, with the upstream's address.
func refreshURL(v []byte) (int, bool) {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }
	i := 0
	for i < len(v) && isSpace(v[i]) {
		i++
	}
	for i < len(v) && (v[i] >= '0' && v[i] <= '9' || v[i] == '.') {
		i++
	}
	if i == len(v) || (v[i] != ';' && v[i] != ',' && !isSpace(v[i])) {
		return 0, false
	}
	for i < len(v) && isSpace(v[i]) {
		i++
	}
	if i < len(v) && (v[i] == ';' || v[i] == ',') {
		i++
	}
	for i < len(v) && isSpace(v[i]) {
		i++
	}
	if j := i + 3; j <= len(v) && bytes.EqualFold(v[i:j], []byte("url")) {
		for j < len(v) && isSpace(v[j]) {
			j++
		}
		if j < len(v) && v[j] == '=' {
			i = j + 1
			for i < len(v) && isSpace(v[i]) {
				i++
			}
		}
	}
	if i < len(v) && (v[i] == '"' || v[i] == '\'') {
		i++
	}
	return i, i < len(v)
}

// underUpstream reports whether u is the upstream URL upstream, or below it.
func underUpstream(u []byte, upstream string) bool {
	if upstream == "" || len(u) < len(upstream) {
		return false
	}
	if rest := u[len(upstream):]; len(rest) > 0 && rest[0] != '/' && rest[0] != '\\' && rest[0] != '?' && rest[0] != '#' && rest[0] != '"' && rest[0] != '\'' {
		return false
	}
	// The scheme and host in any case, the base path as it is; "\\" where
	// upstream has "/", as a browser reads "http:\\host\\base" (an outside
	// check, 19a, saw "http://up:9100\\evil.example/" pass with the
	// upstream's address).
	origin := len(upstream)
	if i := strings.Index(upstream, "//"); i >= 0 {
		if j := strings.IndexByte(upstream[i+2:], '/'); j >= 0 {
			origin = i + 2 + j
		}
	}
	for i := 0; i < len(upstream); i++ {
		same := u[i] == upstream[i] || i < origin && foldByte(u[i]) == foldByte(upstream[i])
		if !same && !(u[i] == '\\' && upstream[i] == '/') {
			return false
		}
	}
	return true
}

var (
	locationHeader        = []byte(fiber.HeaderLocation)
	contentLocationHeader = []byte(fiber.HeaderContentLocation)
	refreshHeader         = []byte("Refresh")
)

// rewriteLocations adds to dst each Location, Content-Location and Refresh
// of src that copyResponseHeaders left out (upstreamLocation), with the
// upstream URL replaced by the path alone — a relative reference, which the
// client resolves against the URL it asked for, so the same path below the
// gateway's address, as the gateway's paths are the upstream's without its
// base path (nginx's "proxy_redirect default" does the same). An upstream
// answering redirects with its own address (nginx's absolute_redirect,
// which names the Host the gateway sends: the upstream's) sent clients to an
// address only the gateway may reach. Not the client's Host: a re-check saw
// a cache in front serve a redirect to a Host an attacker had sent to
// everyone else.
func rewriteLocations(dst, src *fasthttp.ResponseHeader, locations []string) {
	var listed connectionList
	listed.parseAll(src.PeekAll(fiber.HeaderConnection))
	src.VisitAll(func(k, v []byte) {
		if dropResponseHeader(k) || listed.lists(k) {
			return
		}
		at, n, ok := upstreamLocation(k, v, locations)
		if !ok {
			return
		}
		to := append([]byte(nil), v[:at]...)
		rest := v[at+n:]
		switch {
		case len(rest) == 0 || rest[0] != '/' && rest[0] != '\\': // "\\": a browser's "/"
			to = append(to, '/')
		case schemeRelative(rest):
			// "//evil.example/x" (or "/\evil…") alone would be another host:
			// "/./" keeps it a path on the gateway's (a re-check saw an
			// upstream's own "http://up//evil.example/" become an open
			// redirect).
			to = append(to, "/."...)
		}
		dst.AddBytesKV(k, append(to, rest...))
	})
}

// schemeRelative reports whether a path p (starting with "/") would be read
// by a browser as a reference to another host: a second "/" or "\\" after
// the first, tabs and line breaks (which browsers drop from URLs) aside.
func schemeRelative(p []byte) bool {
	for _, c := range p[1:] {
		switch c {
		case '\t', '\n', '\r':
			continue
		case '/', '\\':
			return true
		}
		return false
	}
	return false
}

// ownSetCookie: a Set-Cookie header that sets one of the service's own
// cookies (infracast_token, infracast_csrf, …). An upstream must not replace
// or clear the browser's session with the service, as it is not sent them
// either (dropOwnCookies).
func ownSetCookie(k, v []byte) bool {
	if !sameHeader(k, setCookieHeader) {
		return false
	}
	name, _, _ := bytes.Cut(v, []byte("="))
	return ownCookie(bytes.TrimSpace(name))
}

var setCookieHeader = []byte(fiber.HeaderSetCookie)

// defaultResponseHeaders are the headers observe sets on every answer that an
// upstream may set for its own: Content-Security-Policy is only set when the
// answer has none already.
var defaultResponseHeaders = []string{
	fiber.HeaderCacheControl, fiber.HeaderXFrameOptions, fiber.HeaderXContentTypeOptions, fiber.HeaderReferrerPolicy,
}

// upstreamOverridesDefaults removes from dst the default headers that the
// upstream's answer src sets itself, so that its own are the only ones: added
// beside the defaults, "Cache-Control: no-store" and the upstream's
// "public, max-age=60" would make the answer uncacheable, and two
// X-Frame-Options lines mean nothing to a browser.
func upstreamOverridesDefaults(dst *fasthttp.ResponseHeader, src *fasthttp.ResponseHeader) {
	for _, name := range defaultResponseHeaders {
		if len(src.Peek(name)) > 0 {
			dst.Del(name)
		}
	}
}

// CloseUpstream closes the gateway's idle upstream connections (at shutdown).
func (s *Server) CloseUpstream() {
	if s.gw != nil {
		s.gw.close()
	}
}
