package http

import (
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/infracast/auth/http/console"
)

// The admin console (http/console) at /console, and what its browser
// session needs beyond the login page's: the refresh token of a cookie
// session kept in an HttpOnly cookie that only POST /api/v1/auth/refresh
// receives, so the console refreshes the session before the access token
// expires without its script ever holding a token.

// RefreshCookie holds the refresh token of a browser session (HttpOnly,
// SameSite=Strict, sent only to the refresh path).
const RefreshCookie = "infracast_refresh"

const refreshCookiePath = "/api/v1/auth/refresh"

// consoleCSP: the console's own script and style files only (no inline
// script or style, no eval), API calls to this origin only, images of its
// own or data: URLs, no framing, no plugins, no base or form elsewhere.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// mountConsole serves the console at /console and /console/*.
func (s *Server) mountConsole() {
	h, err := console.New(console.Options{
		Providers:       s.consoleProviders,
		RefreshRotation: s.cfg.RefreshRotation, RefreshReuseInterval: s.cfg.RefreshReuseInterval,
	})
	if err != nil {
		// The assets are embedded at build time: a missing index.html is a
		// build mistake that every start would repeat.
		panic(err)
	}
	// Every answer under /console carries the console's headers
	// (docs/console.md): its pages and assets, a 404 of an unknown asset,
	// and the 405 of any method but GET and HEAD, which this middleware
	// answers itself — with GET routes alone, the router's 405 came with
	// the API's default CSP only (outside check 12e).
	s.app.Use(console.Prefix, func(c *fiber.Ctx) error {
		if !isConsolePath(c.Path()) {
			return c.Next()
		}
		setConsoleHeaders(c)
		if m := c.Method(); m != fiber.MethodGet && m != fiber.MethodHead {
			c.Set(fiber.HeaderAllow, "GET, HEAD")
			return fiber.ErrMethodNotAllowed
		}
		return c.Next()
	})
	s.app.Get(console.Prefix, h.Serve)
	s.app.Get(console.Prefix+"/*", h.Serve)
}

// isConsolePath: the console's own path or one under it, in any letter
// case (routes ignore case; Use matches "/consoles" too).
func isConsolePath(path string) bool {
	p := strings.ToLower(path)
	return p == console.Prefix || strings.HasPrefix(p, console.Prefix+"/")
}

// setConsoleHeaders sets the headers every answer under /console carries.
func setConsoleHeaders(c *fiber.Ctx) {
	c.Set(fiber.HeaderContentSecurityPolicy, consoleCSP)
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set("Cross-Origin-Opener-Policy", "same-origin")
	c.Set("Cross-Origin-Resource-Policy", "same-origin")
	c.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
}

// consoleProviders lists the configured identity providers with their
// sign-in links back to the console.
func (s *Server) consoleProviders() []console.Provider {
	if s.deps.SSOModel == nil {
		return nil
	}
	var out []console.Provider
	for _, p := range s.deps.SSOModel.SSOProviders() {
		out = append(out, console.Provider{
			Name: p.Name, Label: providerLabel(p.Name, string(p.Type)),
			URL: flowPath + url.PathEscape(p.Name) + "/login?return_to=" + url.QueryEscape(console.Prefix),
		})
	}
	return out
}

// setRefreshCookie keeps a browser session's refresh token where only the
// refresh path receives it. It lives as long as the browser session (the
// service bounds the refresh token's own lifetime).
func (s *Server) setRefreshCookie(c *fiber.Ctx, refreshToken string) {
	if refreshToken == "" {
		return
	}
	c.Cookie(&fiber.Cookie{
		Name: RefreshCookie, Value: refreshToken, Path: refreshCookiePath,
		Secure: s.secureCookies(c), HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode,
	})
}

// browserRefresh wraps POST /api/v1/auth/refresh: with "X-Infracast-Session:
// cookie", the refresh token is the one in the refresh cookie, the request
// must come from this origin with the CSRF token (as any cookie request that
// changes state), and a successful refresh answers with the new access token
// in the session cookie (the CSRF token stays) and only expires_at in the
// body. Without the header, the JSON refresh of the contract.
func (s *Server) browserRefresh(c *fiber.Ctx) error {
	cookie, err := cookieSession(c)
	if err != nil {
		return err
	}
	if !cookie {
		return c.Next()
	}
	if err := s.checkOrigin(c); err != nil {
		return err
	}
	if tossedCookie(c) {
		return s.refuseTossedCookies(c)
	}
	if err := checkCSRF(c); err != nil {
		return err
	}
	refreshToken := c.Cookies(RefreshCookie)
	if refreshToken == "" {
		return errUnauthorized
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	res, err := s.deps.Auth.Refresh(ctx, s.meta(c), refreshToken)
	if err != nil {
		return err
	}
	tok, exp, err := s.tokens.IssueUntil(res.User.ID, res.Session.ID, res.TokenID, res.Session.Tenant, res.Session.ExpiresAt)
	if err != nil {
		return err
	}
	secure := s.secureCookies(c)
	maxAge := max(int(exp.Sub(s.cfg.Now()).Seconds()), 1)
	c.Cookie(&fiber.Cookie{
		Name: TokenCookie, Value: tok, Path: "/", MaxAge: maxAge,
		Secure: secure, HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode,
	})
	// The same CSRF token, living as long as the new access token: requests
	// the page has in flight keep theirs valid.
	c.Cookie(&fiber.Cookie{
		Name: CSRFCookie, Value: c.Cookies(CSRFCookie), Path: "/", MaxAge: maxAge,
		Secure: secure, HTTPOnly: false, SameSite: fiber.CookieSameSiteStrictMode,
	})
	s.setRefreshCookie(c, res.NewRefreshToken) // with rotation on
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"expires_at": rfc3339(exp)})
}

// sessionCookieNames are the cookies of a browser session.
var sessionCookieNames = [...]string{TokenCookie, CSRFCookie, RefreshCookie}

// tossedCookie reports whether the request carries one of the session's
// cookies more than once. The service sets each once, for its one path; a
// second comes from elsewhere — a page on another port of the same host, or
// on a sibling domain, can set a cookie for this host ("cookie tossing"),
// and one with a longer path is sent first, so it would be the one read:
// another account's access token, or a CSRF token that makes every request
// of the real session fail.
func tossedCookie(c *fiber.Ctx) bool { return tossedCookies(c) != 0 }

// tossedCookies returns the session's cookies the request carries more than
// once, a bit per sessionCookieNames index.
func tossedCookies(c *fiber.Ctx) uint8 {
	var seen [len(sessionCookieNames)]int
	var dup uint8
	c.Request().Header.VisitAllCookie(func(k, _ []byte) {
		for i, n := range sessionCookieNames {
			if string(k) == n {
				if seen[i]++; seen[i] > 1 {
					dup |= 1 << i
				}
			}
		}
	})
	return dup
}

// refuseTossedCookies answers a request with a session cookie more than once
// (tossedCookie): 401, and that cookie expired wherever the browser's copies
// could have been set (clearTossedCookies), so that signing in again works.
func (s *Server) refuseTossedCookies(c *fiber.Ctx) error {
	rid, _ := c.Locals(localRequestID).(string)
	s.log.Warn("session cookie sent more than once (set by another site?): refused and cleared", "request_id", rid, "path", c.Path())
	s.clearTossedCookies(c, tossedCookies(c))
	return s.refuse("conflicting_cookies")
}

// clearSessionCookies expires the browser session's cookies where the
// service sets them (a logout).
func (s *Server) clearSessionCookies(c *fiber.Ctx) {
	for _, name := range sessionCookieNames {
		path := "/"
		if name == RefreshCookie {
			path = refreshCookiePath
		}
		s.expireCookie(c, name, path, "", clearBudget)
	}
}

// clearTossedCookies expires the cookies named by names (bits of
// sessionCookieNames indexes) wherever one the browser sent for this request
// could have been set: every path that path-matches the request's (RFC 6265
// §5.1.4: each prefix ending before or at a "/", and the path itself) and the
// service's own, host-only and for every parent domain of the host (a sibling
// domain's page sets cookies for a common parent, and only a cookie with the
// same Domain expires one). At most clearBudget bytes of Set-Cookie, so that
// the answer passes a proxy's header buffer (nginx's default is 4 KiB): the
// likeliest places first — host-only, then the parents from the widest, each
// from the shortest path — which on the console's paths is all of them.
func (s *Server) clearTossedCookies(c *fiber.Ctx, names uint8) {
	paths := []string{"/", refreshCookiePath}
	p := c.Path()
	for i := 1; i < len(p) && len(paths) < 24; i++ {
		if p[i] == '/' {
			paths = append(paths, p[:i], p[:i+1])
		}
	}
	if p != "/" && p != refreshCookiePath {
		paths = append(paths, p)
	}
	sort.SliceStable(paths, func(a, b int) bool { return len(paths[a]) < len(paths[b]) })
	parents := parentDomains(s.cookieHost(c))
	slices.Reverse(parents) // the widest (example.com) first
	domains := append([]string{""}, parents...)
	budget := clearBudget
	for _, d := range domains {
		for _, path := range paths {
			for i, name := range sessionCookieNames {
				if names&(1<<i) == 0 {
					continue
				}
				if budget -= s.expireCookie(c, name, path, d, budget); budget <= 0 {
					return
				}
			}
		}
	}
}

// clearBudget bounds the Set-Cookie bytes of clearTossedCookies' answer.
const clearBudget = 3000

// expireCookie adds a Set-Cookie that expires cookie name at path (and
// domain, when not host-only), if it fits in budget bytes, and returns its
// size (more than budget when it does not fit). Added, not set: fasthttp's
// SetCookie keeps one cookie per name.
func (s *Server) expireCookie(c *fiber.Ctx, name, path, domain string, budget int) int {
	v := name + "=; Path=" + path
	if domain != "" {
		v += "; Domain=" + domain
	}
	v += "; Max-Age=0"
	if s.secureCookies(c) {
		v += "; Secure"
	}
	size := len("Set-Cookie: \r\n") + len(v)
	if size > budget {
		return size
	}
	c.Response().Header.Add(fiber.HeaderSetCookie, v)
	return size
}

// cookieHost is the host name the browser holds the service's cookies for:
// INFRACAST_PUBLIC_URL's, else the request's.
func (s *Server) cookieHost(c *fiber.Ctx) string {
	if u := s.cfg.SSO.PublicURL; u != nil {
		return u.Hostname()
	}
	return c.Hostname()
}

// parentDomains lists host and its parent domains down to two labels
// ("auth.corp.example.com": itself, "corp.example.com", "example.com"); none
// for an IP address or a single-label name. A browser refuses a Domain that
// is a public suffix, so listing "example.com"-like ones is harmless.
func parentDomains(host string) []string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host, "]") {
		host = host[:i]
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" || net.ParseIP(strings.Trim(host, "[]")) != nil || !strings.Contains(host, ".") {
		return nil
	}
	var out []string
	for d := host; strings.Contains(d, ".") && len(out) < 8; d = d[strings.IndexByte(d, '.')+1:] {
		out = append(out, d)
	}
	return out
}

// hasSessionCookie reports whether the request carries any of the session's
// cookies.
func hasSessionCookie(c *fiber.Ctx) bool {
	for _, n := range sessionCookieNames {
		if len(c.Request().Header.Cookie(n)) > 0 {
			return true
		}
	}
	return false
}
