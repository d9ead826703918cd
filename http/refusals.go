package http

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"

	"github.com/infracast/auth/domain"
)

// Refused requests whose caller is known — an authenticated request
// answered 401, 403 or 404 (a viewer on an admin route, a resource of
// another tenant), and a credential refused whose owner the service knows
// (an API key used from an address its allowlist does not hold, revoked or
// expired; a token of a revoked session; a SCIM token whose owner lost the
// right) — are logged, one WARN line each: who (the user, key, session or
// connection ID — never a secret), from which client address as the
// service determined it (clientAddr: a forged X-Forwarded-For from an
// untrusted peer is not it), the method and route, the status and the
// reason, the request ID. Before, they left no trace but anonymous counters
// (an outside check, 20a). Not events: a write per refusal would let any
// caller make the service write as fast as it sends (docs/audit.md).
//
// Bounded, so that a flood cannot fill the disk: at most one line per
// (reason, caller) per refusalLogEvery, and at most refusalLogRate lines a
// second in all (burst refusalLogBurst); what is held back is counted —
// in the next line of the same (reason, caller), as "suppressed", and in
// infracast_refusal_log_suppressed_total. A refusal whose caller is
// unknown (no credential, a made-up token or key) is only counted in
// infracast_auth_failures_total, as before: nobody to name.

const (
	refusalLogEvery = time.Minute
	refusalLogRate  = 20
	refusalLogBurst = 100
	// refusalLogKeys bounds the (reason, caller) pairs remembered; beyond
	// it, pairs whose minute is over are forgotten, and while none is, a
	// new pair's line is held back (counted).
	refusalLogKeys = 10_000
)

type refusalKey struct{ reason, caller string }

type refusalEntry struct {
	last       time.Time // when its last line was written
	suppressed uint64    // lines held back since
}

// refusalLog writes the refusal lines (above).
type refusalLog struct {
	log     *slog.Logger
	now     func() time.Time
	metrics *Metrics
	all     *rate.Limiter
	mu      sync.Mutex
	seen    map[refusalKey]*refusalEntry
}

func newRefusalLog(log *slog.Logger, now func() time.Time, m *Metrics) *refusalLog {
	return &refusalLog{log: log, now: now, metrics: m,
		all: rate.NewLimiter(refusalLogRate, refusalLogBurst), seen: map[refusalKey]*refusalEntry{}}
}

// allow reports whether a line for k may be written now, and how many of
// k's were held back since its last one.
func (l *refusalLog) allow(k refusalKey) (bool, uint64) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.seen[k]
	if e == nil {
		if len(l.seen) >= refusalLogKeys {
			for key, old := range l.seen {
				if now.Sub(old.last) >= refusalLogEvery {
					delete(l.seen, key)
				}
			}
		}
		if len(l.seen) >= refusalLogKeys {
			return false, 0
		}
		e = &refusalEntry{}
		l.seen[k] = e
	} else if now.Sub(e.last) < refusalLogEvery {
		e.suppressed++
		return false, 0
	}
	if !l.all.Allow() {
		e.suppressed++
		return false, 0
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	return true, n
}

// refused logs a refusal of request c: caller names who (attrs: the IDs,
// "user_id", "key_id", …), reason why (a code of the contract, or the
// credential's refusal reason of infracast_auth_failures_total).
func (s *Server) refused(c *fiber.Ctx, status int, reason, caller string, attrs ...any) {
	l := s.refusals
	if l == nil {
		return
	}
	ok, suppressed := l.allow(refusalKey{reason, caller})
	if !ok {
		l.metrics.refusalSuppressed()
		return
	}
	route := c.Path()
	if r := c.Route(); r != nil && r.Path != "" && r.Path != "/" {
		route = r.Path
	}
	rid, _ := c.Locals(localRequestID).(string)
	args := append([]any{"status", status, "reason", reason}, attrs...)
	args = append(args, "client_ip", s.clientAddr(c).String(), "method", c.Method(), "route", route, "request_id", rid)
	args = s.forwardedRequest(c, route, args)
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	l.log.Warn("request refused", args...)
}

// refusalURIMax bounds a forwarded URI in a refusal line (bytes, before
// escaping): the client chose it, up to the header's limit.
const refusalURIMax = 512

// forwardedRequest appends to args, for forward auth asked by a trusted
// proxy, the request the proxy asks about: "forwarded_method" and
// "forwarded_uri", as the verify handlers read them (forward_auth.go). A
// refusal line of GET /api/v1/auth/verify alone named nginx's request, not
// the client's (re-check 20r2); client_ip is already the client's, by the
// proxy's X-Forwarded-For (clientAddr). From a peer that is no trusted
// proxy nothing is added: its headers are its own to make up.
func (s *Server) forwardedRequest(c *fiber.Ctx, route string, args []any) []any {
	const verify = "/api/v1/auth/verify"
	if route != verify && route != verify+"/*" {
		return args
	}
	peer, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	if !s.cfg.TrustedProxies.contains(peer.Unmap()) {
		return args
	}
	if route == verify+"/*" { // Envoy's form: the method is the request's own
		if raw := requestTarget(c); len(raw) >= len(verify) {
			args = append(args, "forwarded_uri", logShown(raw[len(verify):], refusalURIMax))
		}
		return args
	}
	if method, ok := forwardedHeader(c, "X-Forwarded-Method", "X-Original-Method"); ok {
		args = append(args, "forwarded_method", logShown(method, 32))
	}
	if uri, ok := forwardedHeader(c, "X-Forwarded-Uri", "X-Original-URI"); ok {
		args = append(args, "forwarded_uri", logShown(uri, refusalURIMax))
	}
	return args
}

// logShown is a string a client chose, for a log line: at most max bytes
// of it (cut at a character, "…" and the length it had after it), every
// character that is not printable — controls, format characters such as
// the bidirectional overrides, line separators — and any byte that is not
// UTF-8 as a Go escape (strconv.Quote's, which writes a '"' as \").
func logShown(s string, max int) string {
	cut := ""
	if len(s) > max {
		n := max
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s, cut = s[:n], fmt.Sprintf("…(%d bytes)", len(s))
	}
	q := strconv.Quote(s)
	return q[1:len(q)-1] + cut
}

// callerRefused logs a refusal (401, 403, 404) of an authenticated
// caller's request, once its handlers are done: err, the error they
// returned (the error handler answers it with a code of the contract).
// Only the service's own refusals are: a status a handler wrote itself is
// none — behind the gateway, it is the upstream's answer, which the
// upstream logs if it wants to — and neither is the gateway's 404 with no
// upstream set (errNoUpstream), which refuses nobody. Both were logged as
// the service's refusals, with the status text for a reason, and filled
// the lines' budget a second (re-check 20r2).
func (s *Server) callerRefused(c *fiber.Ctx, cl *Caller, err error) {
	if err == nil || errors.Is(err, errNoUpstream) {
		return
	}
	apiErr, _ := toAPIError(err)
	status, reason := apiErr.Status, apiErr.Code
	if status != http.StatusUnauthorized && status != http.StatusForbidden && status != http.StatusNotFound {
		return
	}
	if cl.Key != nil {
		s.refused(c, status, reason, cl.Key.ID, "key_id", cl.Key.ID, "user_id", cl.User.ID)
		return
	}
	attrs := []any{"user_id", cl.User.ID}
	if cl.SessionID != "" {
		attrs = append(attrs, "session_id", cl.SessionID)
	}
	if cl.Tenant != "" {
		attrs = append(attrs, "token_tenant", cl.Tenant)
	}
	s.refused(c, status, reason, cl.User.ID, attrs...)
}

// refusedReason names a refresh token's refusal as the credential
// refusals are named (infracast_auth_failures_total's reasons).
func refusedReason(err error) string {
	switch {
	case errors.Is(err, domain.ErrSessionRevoked):
		return "session_revoked"
	case errors.Is(err, domain.ErrSessionExpired):
		return "session_expired"
	case errors.Is(err, domain.ErrUserInactive):
		return "user_inactive"
	case errors.Is(err, domain.ErrRefreshReused):
		return "refresh_reused"
	}
	return "invalid_credentials"
}
