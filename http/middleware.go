package http

import (
	"github.com/gofiber/fiber/v2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/projections"
)

// Caller is the authenticated principal of a request.
type Caller struct {
	User      domain.User
	SessionID string
	TokenID   string
	Claims    *Claims
	// Tenant is the token's scope: when set, the token acts only there.
	Tenant string
}

// PermissionsIn returns what the caller may do in tenant, read from the live
// read model (never frozen into the token).
func (c *Caller) PermissionsIn(tenant string) domain.PermissionSet {
	if c.Tenant != "" && c.Tenant != tenant {
		return 0
	}
	return c.User.PermissionsIn(tenant)
}

// IsPlatformAdmin reports whether the caller manages the whole platform. A token
// scoped to one tenant never does.
func (c *Caller) IsPlatformAdmin() bool { return c.Tenant == "" && c.User.IsPlatformAdmin() }

// authenticate verifies the bearer token and loads the caller from the read
// models: signature, type, expiry, issuer, audience, session and token not
// revoked, user active.
func (s *Server) authenticate(c *fiber.Ctx) error {
	raw, ok := bearer(c)
	if !ok {
		return errUnauthorized
	}
	claims, err := s.tokens.Verify(raw)
	if err != nil {
		return errUnauthorized
	}
	p, verdict := s.deps.Model.Authorize(claims.SessionID, claims.ID, s.cfg.Now())
	if verdict != projections.Valid || p.User.ID != claims.Subject {
		return errUnauthorized
	}
	c.Locals(localCaller, &Caller{
		User: p.User, SessionID: claims.SessionID, TokenID: claims.ID, Claims: claims, Tenant: claims.Tenant,
	})
	return c.Next()
}

func caller(c *fiber.Ctx) *Caller {
	cl, _ := c.Locals(localCaller).(*Caller)
	return cl
}

// Authenticate returns the authentication middleware, for Go resource services
// that mount it in front of their own Fiber routes. After it, CallerOf tells
// who the caller is.
func (s *Server) Authenticate() fiber.Handler { return s.authenticate }

// CallerOf returns the caller authenticated by the middleware, or nil.
func CallerOf(c *fiber.Ctx) *Caller { return caller(c) }
