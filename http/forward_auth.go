package http

// Forward auth: a reverse proxy (nginx auth_request, Traefik ForwardAuth,
// Envoy ext_authz) asks whether the request it holds may pass, and the answer
// is 200 with the identity headers and no body, or 401/403 with the error.
// The decision is the gateway's (authorizeTenant, by the route policy on the
// decoded, cleaned path); only the way the original method and URI arrive
// differs.

import (
	"strings"

	"github.com/gofiber/fiber/v2"
)

// verify: GET /api/v1/auth/verify, forward auth for nginx auth_request
// (X-Original-Method, X-Original-URI) and Traefik ForwardAuth
// (X-Forwarded-Method, X-Forwarded-Uri). Both a method and a URI are required.
// A proxy passes the client's own headers along with the ones it sets, so
// when both spellings are present they must agree (and each appear once):
// otherwise a client behind nginx could name another URI in X-Forwarded-Uri.
func (s *Server) verify(c *fiber.Ctx) error {
	method, ok := forwardedHeader(c, "X-Forwarded-Method", "X-Original-Method")
	if !ok {
		return errForbidden
	}
	uri, ok := forwardedHeader(c, "X-Forwarded-Uri", "X-Original-URI")
	if !ok {
		return errForbidden
	}
	// Methods are case-sensitive (RFC 9110, 9.1), as the route policy and
	// the gateway take them: "get" is not a read. Upper-casing it here let
	// a client behind a proxy that passes methods through (Traefik does)
	// send "get" to an upstream that treats whatever is not "GET" as a write,
	// authorized with read permissions only.
	// The middleware checked CSRF for this GET's method, not the original
	// request's: a browser session (no bearer token) changing state must
	// carry the CSRF token, the proxy passing the client's headers along.
	if _, viaBearer := bearer(c); !viaBearer {
		switch method {
		case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		default:
			if err := checkCSRF(c); err != nil {
				return err
			}
		}
	}
	return s.verifyURI(c, method, uri)
}

// forwardedHeader returns the one value of header a or b.
func forwardedHeader(c *fiber.Ctx, a, b string) (string, bool) {
	va, vb := headerValues(c, a), headerValues(c, b)
	if len(va) > 1 || len(vb) > 1 {
		return "", false
	}
	switch {
	case len(va) == 1 && len(vb) == 1:
		return va[0], va[0] == vb[0] && va[0] != ""
	case len(va) == 1:
		return va[0], va[0] != ""
	case len(vb) == 1:
		return vb[0], vb[0] != ""
	}
	return "", false
}

// headerValues copies every value of a request header (PeekAll's result is
// only valid until the next call).
func headerValues(c *fiber.Ctx, name string) []string {
	all := c.Request().Header.PeekAll(name)
	out := make([]string, len(all))
	for i, v := range all {
		out[i] = string(v)
	}
	return out
}

// verifyEnvoyNeedsPath runs before authentication on the Envoy form's route:
// Fiber's "*" also matches an empty rest, so the bare /api/v1/auth/verify
// with any method but GET and HEAD (the verify route's, registered first)
// arrives there too. It is the router's 405 with Allow, as on any other path
// with a method it does not take, not a 403 for an empty original path
// (outside check 13a). "/api/v1/auth/verify/" is the Envoy form for "/".
func verifyEnvoyNeedsPath(c *fiber.Ctx) error {
	if c.Params("*") == "" && !strings.HasSuffix(c.Path(), "/") {
		c.Set(fiber.HeaderAllow, "GET, HEAD")
		return fiber.ErrMethodNotAllowed
	}
	return c.Next()
}

// verifyEnvoy: any method on /api/v1/auth/verify/{original path}, forward
// auth in the style of Envoy's ext_authz HTTP service (path_prefix
// /api/v1/auth/verify): the original request's method is the request's own,
// its path and query the suffix after /api/v1/auth/verify.
func (s *Server) verifyEnvoy(c *fiber.Ctx) error {
	const prefix = "/api/v1/auth/verify"
	raw := requestTarget(c)
	if len(raw) < len(prefix) || !strings.EqualFold(raw[:len(prefix)], prefix) {
		return errForbidden
	}
	return s.verifyURI(c, c.Method(), raw[len(prefix):])
}

// verifyURI answers forward auth for method on uri: 200 with the identity
// headers, or 403 when the URI is no tenant route or the caller may not.
func (s *Server) verifyURI(c *fiber.Ctx, method, uri string) error {
	tenant, resource, ok := parseTenantPath(uri)
	if !ok {
		return errForbidden
	}
	_, rawQuery, _ := strings.Cut(uri, "?")
	perms, err := s.authorizeTenant(c, method, tenant, resource, rawQuery)
	if err != nil {
		return err
	}
	setIdentityHeaders(c, tenant, perms)
	allowed(c)
	return nil
}

// allowed answers 200 with no body (Content-Length: 0) and no Content-Type.
// nginx never reads the body of an auth_request subrequest's answer, so it
// keeps its connection to the service (upstream keepalive) only when there is
// none: a body, even "OK", costs a new TCP connection per request. Traefik
// (any 2xx) and Envoy's ext_authz HTTP service (200) need none either.
func allowed(c *fiber.Ctx) {
	c.Status(fiber.StatusOK)
	c.Response().ResetBody()
	c.Response().Header.SetNoDefaultContentType(true)
}

// parseTenantPath splits a request URI into the tenant and the resource below
// it, as parseTenantURI (gateway.go) reads it for every tenant route, and
// refuses one that is not in that canonical form already: a dot segment
// (also percent-encoded) or an empty one. The gateway forwards the path it
// authorized; a proxy asking for forward auth forwards the URI as the client
// sent it, and resource services disagree on what "x/../y" is (Express and
// Flask serve x's route), so a decision on the cleaned path would authorize
// one route and let another run.
func parseTenantPath(uri string) (tenant, resource string, ok bool) {
	if rawPath, query, plain := plainTenantURI(uri); plain {
		t, ok := tenantTargetOf(rawPath, query)
		return t.Tenant, t.Resource, ok
	}
	t, decoded, ok := readTenantURI(uri)
	if !ok || decoded != t.Path {
		return "", "", false // or cleaning changed it
	}
	return t.Tenant, t.Resource, true
}
