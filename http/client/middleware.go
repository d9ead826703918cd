package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Identity is the caller of a request that a middleware let through, in the
// request's context (IdentityFrom).
type Identity struct {
	// Subject is the user ID (user-…) or, for an API key, the key ID (key-…).
	Subject string
	// Tenant is, with forward auth, the tenant of the request's path; offline,
	// the tenant a tenant-scoped token is limited to ("" for an unscoped one).
	Tenant string
	// Permissions are, with forward auth, the caller's live permissions in
	// Tenant ("admin:*" grants every one). Offline they are unknown: nil.
	Permissions []string
	// Offline is true when the identity comes from the token alone (a
	// JWKSVerifier): then SessionID, TokenID and ExpiresAt are set, and a
	// revoked token is not noticed until it expires.
	Offline   bool
	SessionID string
	TokenID   string
	ExpiresAt time.Time
}

// Can reports whether the identity holds permission ("nodes:read"):
// directly, or through admin:*. Always false offline (no permissions known).
func (id *Identity) Can(permission string) bool {
	return slices.Contains(id.Permissions, permission) || slices.Contains(id.Permissions, "admin:*")
}

type identityKey struct{}

// IdentityKey is the context key under which Middleware puts the *Identity.
// IdentityFrom reads it from a context; a Fiber app that mounts Middleware
// with Fiber's adaptor (adaptor.HTTPMiddleware, which copies the request
// context's values into the Fiber context) reads it with
// c.Locals(client.IdentityKey).(*client.Identity).
var IdentityKey any = identityKey{}

// IdentityFrom gives the identity a middleware put in the request's context.
func IdentityFrom(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	return id, ok
}

// ContextWithIdentity returns ctx carrying id, as the middleware does (for
// tests of handlers that read IdentityFrom).
func ContextWithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// Authorizer decides whether a request may pass, and who makes it.
// ForwardAuth and JWKSVerifier are Authorizers. An error that is an *Error
// is answered with its status and the contract's body.
type Authorizer interface {
	Authorize(r *http.Request) (*Identity, error)
}

// Middleware protects a net/http handler: each request is authorized by a;
// one allowed reaches next with its Identity in the context, any other gets
// the contract's error (401, 403; 503 when a cannot decide, never a pass).
//
//	http.ListenAndServe(":9000", client.Middleware(fa)(mux))
func Middleware(a Authorizer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, err := a.Authorize(r)
			if err != nil {
				WriteError(w, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(ContextWithIdentity(r.Context(), id)))
		})
	}
}

// WriteError answers err in the contract's shape: an *Error with its status,
// code and message (and Retry-After); anything else (the service could not be
// asked) as 503 UNAVAILABLE, without its details.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) || e.Status == 0 {
		e = &Error{Status: http.StatusServiceUnavailable, Code: ErrUnavailable.Code, Message: "Authorization service unavailable"}
	}
	if e.RetryAfter > 0 {
		// Capped: a wait near the largest Duration rounded up overflowed
		// into a negative number.
		w.Header().Set("Retry-After", strconv.Itoa(int((min(e.RetryAfter, maxRetryAfter)+time.Second-1)/time.Second)))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = e.Code, e.Message
	_ = json.NewEncoder(w).Encode(body) // the client went away: nothing to do
}

// undecided is the error of an authorizer whose question the service
// answered with a status that decides nothing (a wrong URL's 404, a 500, a
// proxy's 502): the middleware answers it 503 UNAVAILABLE, as it promises,
// never with that status (outside check 12d: it relayed them); the answer
// stays in the text, for logs.
func undecided(what string, e *Error) error {
	u := &Error{Status: http.StatusServiceUnavailable, Code: ErrUnavailable.Code, Message: "Authorization service unavailable", RequestID: e.RequestID}
	if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
		u.RetryAfter = e.RetryAfter
	}
	return fmt.Errorf("infracast: %s: the service answered %d %s (%s): %w", what, e.Status, e.Code, e.Message, u)
}

var errNoCredentials = &Error{Status: http.StatusUnauthorized, Code: ErrUnauthorized.Code, Message: "Invalid or expired token"}

// oneAuthorization is r's Authorization header when it has exactly one (a
// singleton field, RFC 9110): with two, the one judged and the one a
// handler reads could differ, so a request with two is refused.
func oneAuthorization(r *http.Request) (string, bool) {
	v := r.Header.Values("Authorization")
	if len(v) != 1 || v[0] == "" {
		return "", false
	}
	return v[0], true
}

// ForwardAuth authorizes each request by asking the service
// (GET /api/v1/auth/verify, the forward-auth endpoint that nginx and Traefik
// use) with the request's method, URI and Authorization header, and the
// caller's address in X-Forwarded-For (for an API key's allowed_ips: the
// service believes it only from an address in its INFRACAST_TRUSTED_PROXIES,
// so list the resource service there). The service applies its route policy
// to the live read model, so a revocation, a role change or a deactivation is
// seen on the very next request. Its connections are kept alive; nothing is
// cached.
type ForwardAuth struct {
	verifyURL  string
	hc         *http.Client
	uri        func(*http.Request) string
	clientAddr func(*http.Request) string
	log        *slog.Logger
}

// ForwardAuthOption configures a ForwardAuth.
type ForwardAuthOption func(*ForwardAuth)

// ForwardAuthHTTPClient sends the checks through hc (default: a 10 s
// timeout, up to 256 idle keep-alive connections to the service).
func ForwardAuthHTTPClient(hc *http.Client) ForwardAuthOption {
	return func(f *ForwardAuth) { f.hc = hc }
}

// ForwardAuthURI maps a request to the URI the route policy judges
// (default: the request's own, r.URL.RequestURI()): for a service mounted
// elsewhere than /api/v1/tenants/{tenant}/….
func ForwardAuthURI(fn func(*http.Request) string) ForwardAuthOption {
	return func(f *ForwardAuth) { f.uri = fn }
}

// ForwardAuthClientAddr gives the address of the caller of a request, sent
// to the service in X-Forwarded-For (default: the host of r.RemoteAddr, the
// TCP peer). A resource service that itself sits behind a proxy it trusts
// gives the client address that proxy names (the right-most entry of the
// X-Forwarded-For it set, say); "" sends none, and the service then takes the
// resource service's own address for the caller's. The value is one IP
// address, or host:port ("[v6]:port"), surrounding spaces ignored; it is
// sent without its IPv6 zone (which never matches an allowed_ips range), an
// IPv4-mapped IPv6 address as IPv4. Anything else (a name, a list) is not
// sent: the request is answered 503 UNAVAILABLE, and the value logged.
func ForwardAuthClientAddr(fn func(*http.Request) string) ForwardAuthOption {
	return func(f *ForwardAuth) { f.clientAddr = fn }
}

// ForwardAuthLogger sets where a ForwardAuth logs what it cannot send (a
// caller's address that is not one, from ForwardAuthClientAddr); default
// slog.Default().
func ForwardAuthLogger(l *slog.Logger) ForwardAuthOption {
	return func(f *ForwardAuth) { f.log = l }
}

// remoteHost is the host of r.RemoteAddr ("" when it is no address).
func remoteHost(r *http.Request) string {
	a, ok := callerAddr(r.RemoteAddr)
	if !ok {
		return ""
	}
	return a.String()
}

// callerAddr parses a caller's address: an IP address or host:port, without
// its zone, an IPv4-mapped address as IPv4 (outside check 12r4: the value
// of ForwardAuthClientAddr was sent unchecked — "host:port", a name, a
// list, a zoned address that never matches allowed_ips).
func callerAddr(v string) (netip.Addr, bool) {
	v = strings.TrimSpace(v)
	if host, _, err := net.SplitHostPort(v); err == nil {
		v = host
	} else if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		v = v[1 : len(v)-1]
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

// NewForwardAuth returns a forward-auth Authorizer of the service at authURL.
func NewForwardAuth(authURL string, opts ...ForwardAuthOption) (*ForwardAuth, error) {
	c, err := New(authURL)
	if err != nil {
		return nil, err
	}
	f := &ForwardAuth{
		verifyURL:  c.base + "/api/v1/auth/verify",
		hc:         &http.Client{Timeout: 10 * time.Second, Transport: newTransport(256)},
		uri:        func(r *http.Request) string { return r.URL.RequestURI() },
		clientAddr: remoteHost,
	}
	for _, o := range opts {
		o(f)
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	return f, nil
}

// Authorize asks the service whether r may pass.
func (f *ForwardAuth) Authorize(r *http.Request) (*Identity, error) {
	authz, ok := oneAuthorization(r)
	if !ok {
		return nil, errNoCredentials
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, f.verifyURL, nil)
	if err != nil {
		return nil, fmt.Errorf("infracast: forward auth: %w", err)
	}
	req.Header.Set("Authorization", authz)
	req.Header.Set("X-Forwarded-Method", r.Method)
	req.Header.Set("X-Forwarded-Uri", f.uri(r))
	// The caller's address, for an API key's allowed_ips: without it the
	// service judged the resource service's own address (outside check
	// 12d: a key allowed for the resource service's range passed from
	// anywhere, one limited to its real caller was refused).
	if v := f.clientAddr(r); v != "" {
		a, ok := callerAddr(v)
		if !ok {
			// Sent as it is, the service would judge a name or a list it
			// cannot match (or the wrong entry of it): refuse to decide.
			f.log.Error("infracast: forward auth: the caller's address is not an IP address; answering 503", "value", v, "method", r.Method, "uri", r.URL.RequestURI())
			return nil, fmt.Errorf("infracast: forward auth: the caller's address %q is not an IP address: %w", v,
				&Error{Status: http.StatusServiceUnavailable, Code: ErrUnavailable.Code, Message: "Authorization service unavailable"})
		}
		req.Header.Set("X-Forwarded-For", a.String())
	}
	if rid := r.Header.Get("X-Request-ID"); rid != "" {
		req.Header.Set("X-Request-ID", rid)
	}
	res, err := f.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("infracast: forward auth: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		e := readError(res)
		switch e.Status {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusServiceUnavailable:
			return nil, e // the service's decision, or its "cannot decide now"
		}
		return nil, undecided("forward auth", e)
	}
	// Drain the (empty) body so that the connection is reused.
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return nil, fmt.Errorf("infracast: forward auth: %w", err)
	}
	id := &Identity{Subject: res.Header.Get("X-Infracast-Subject"), Tenant: res.Header.Get("X-Infracast-Tenant")}
	if p := res.Header.Get("X-Infracast-Permissions"); p != "" {
		id.Permissions = strings.Split(p, ",")
	}
	if id.Subject == "" {
		return nil, fmt.Errorf("infracast: forward auth: the service answered 200 without X-Infracast-Subject")
	}
	return id, nil
}
