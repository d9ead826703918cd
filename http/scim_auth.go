package http

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"

	"github.com/gofiber/fiber/v2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/http/scim"
)

// SCIM authentication. Under /scim/v2 the only credential is a SCIM
// connection's bearer token (ic_scim_…): an access token, an API key or a
// cookie there is 401 in the SCIM error schema. Anywhere else a SCIM token
// is refused like any malformed API key (authenticate: it starts with "ic_"
// and names neither "live" nor "test"), 401 in the API's shape.

// scimMetaKey carries a SCIM request's events.Meta in its context, for the
// Backend (which sees the context and the connection only).
type scimMetaKey struct{}

// scimAuthenticate checks the SCIM bearer token: its shape and checksum,
// then one lookup by its SHA-256 in the read models (compared again in
// constant time), the connection live, its owner still allowed to manage
// it (scimOwnerMay). It then waits until this replica
// has applied everything stored so far (an identity provider reads back
// what it wrote a moment ago, whichever replica answers), and runs the
// SCIM handlers with the connection, the request's timeout, and the events'
// actor {"type":"scim","id":"<connection ID>"}.
func (s *Server) scimAuthenticate(c *fiber.Ctx) error {
	if s.deps.SCIM == nil || s.deps.SCIMModel == nil {
		return scim.WriteError(c, scim.Errorf(fiber.StatusServiceUnavailable, "", "SCIM provisioning is not configured on this server"))
	}
	if !s.deps.Readiness.Serving() {
		c.Set(fiber.HeaderRetryAfter, "1")
		return scim.WriteError(c, scim.ErrUnavailable)
	}
	// A 401 names the error when a credential was presented (RFC 6750
	// section 3.1): any Authorization header, whatever its scheme.
	presented := c.Get(fiber.HeaderAuthorization) != ""
	raw, ok := bearer(c)
	if repeatedAuthorization(c) || !ok || !domain.ValidSCIMToken(raw) { // two headers: see repeatedAuthorization
		s.deps.Metrics.authFailure("scim_invalid_token")
		scim.Challenge(c, presented)
		return scim.WriteError(c, scim.ErrUnauthorized)
	}
	sum := sha256.Sum256([]byte(raw))
	conn, found := s.deps.SCIMModel.SCIMConnectionByToken(sum)
	stored, err := hex.DecodeString(conn.TokenHash)
	if !found || err != nil || subtle.ConstantTimeCompare(stored, sum[:]) != 1 {
		s.deps.Metrics.authFailure("scim_unknown_token")
		scim.Challenge(c, true)
		return scim.WriteError(c, scim.ErrUnauthorized)
	}
	if !s.scimOwnerMay(conn) {
		// The token acts for who made the connection or last rotated it:
		// deactivated, no longer an admin of its tenants, or the API key
		// that made it revoked — the token stops with them.
		s.deps.Metrics.authFailure("scim_owner")
		s.refused(c, fiber.StatusUnauthorized, "scim_owner", conn.ID, "scim_connection_id", conn.ID)
		scim.Challenge(c, true)
		return scim.WriteError(c, scim.Errorf(fiber.StatusUnauthorized, "",
			"The connection's owner (who made it or last rotated its token) may no longer manage it; an admin rotates its token to take it over"))
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	if err := s.deps.SCIM.CatchUpHead(ctx); err != nil {
		s.log.Warn("SCIM request: read models not caught up", "request_id", c.Locals(localRequestID), "connection", conn.ID, "err", err)
		c.Set(fiber.HeaderRetryAfter, "1")
		return scim.WriteError(c, scim.ErrUnavailable)
	}
	meta := s.meta(c)
	meta.Actor = events.Actor{Type: ActorSCIM, ID: conn.ID}
	prev := c.UserContext()
	c.SetUserContext(context.WithValue(ctx, scimMetaKey{}, meta))
	defer c.SetUserContext(prev)
	scim.SetConn(c, scim.Conn{ID: conn.ID, Tenants: conn.Tenants})
	return c.Next()
}

// ActorSCIM is the actor type of events a SCIM connection causes; the
// actor's ID is the connection's.
const ActorSCIM = "scim"

// scimMeta is the events.Meta of a SCIM request (scimAuthenticate).
func scimMeta(ctx context.Context) events.Meta {
	if m, ok := ctx.Value(scimMetaKey{}).(events.Meta); ok {
		return m
	}
	return events.Meta{Actor: events.Actor{Type: ActorSCIM}}
}
