package http

import (
	"context"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/projections"
)

// Caller is the authenticated principal of a request: a user with an access
// token, or an API key (then User is the key's owner, whose live permissions
// cap the key's). A *Caller is valid while its request is handled: the
// middleware reuses it afterwards, as fiber reuses the Ctx. Clone one that
// must outlive the handler.
type Caller struct {
	User      domain.User
	Key       *domain.APIKey
	SessionID string
	TokenID   string
	Claims    *Claims
	// Tenant is the token's scope: when set, the token acts only there.
	Tenant string
}

// PermissionsIn returns what the caller may do in tenant, read from the live
// read model (never frozen into the token).
func (c *Caller) PermissionsIn(tenant string) domain.PermissionSet {
	if c.Key != nil {
		if !c.Key.InTenant(tenant) {
			return 0
		}
		return intersect(c.Key.Permissions, c.User.PermissionsIn(tenant))
	}
	if c.Tenant != "" && c.Tenant != tenant {
		return 0
	}
	return c.User.PermissionsIn(tenant)
}

// intersect is what both sets grant, admin:* standing for every permission.
func intersect(a, b domain.PermissionSet) domain.PermissionSet {
	switch {
	case a.Has(domain.AdminAll):
		return b
	case b.Has(domain.AdminAll):
		return a
	}
	return a & b
}

// IsPlatformAdmin reports whether the caller manages the whole platform. A token
// scoped to one tenant never does, nor does an API key.
func (c *Caller) IsPlatformAdmin() bool {
	return c.Key == nil && c.Tenant == "" && c.User.IsPlatformAdmin()
}

// errScopedAccount: a token scoped to a tenant acts only there; the
// account's own settings (its password, second factors and other
// sessions) reach every tenant of the user.
var errScopedAccount = &Error{fiber.StatusForbidden, "FORBIDDEN",
	"A token scoped to a tenant does not change the account (password, second factors, other sessions); sign in without a tenant"}

// IsUser reports whether the caller is a user (not an API key).
func (c *Caller) IsUser() bool { return c.Key == nil }

// Subject is the caller's identity for resource services: a user or key ID.
func (c *Caller) Subject() string {
	if c.Key != nil {
		return c.Key.ID
	}
	return c.User.ID
}

// authenticate verifies the bearer token and loads the caller from the read
// models: signature, type, expiry, issuer, audience, session and token not
// revoked, user active.
func (s *Server) authenticate(c *fiber.Ctx) error {
	if b := s.deps.Barrier; b != nil && b.Behind() {
		if err := s.applyRequired(c, b); err != nil {
			return err
		}
	}
	if repeatedAuthorization(c) {
		return s.refuse("repeated_authorization")
	}
	raw, ok := bearer(c)
	if !ok {
		// A browser session: the access token in the HttpOnly cookie, and
		// the CSRF check for requests that change state (sso.go).
		tok, err := s.cookieToken(c)
		if err == errUnauthorized {
			return s.refuse("missing_credentials")
		} else if err != nil {
			return err
		}
		raw = tok
	} else if domain.LooksLikeAPIKey(raw) {
		return s.authenticateKey(c, raw)
	}
	claims, err := s.verifyToken(c, raw, s.tokens.Verify)
	if err == errUnavailable {
		return err
	} else if err != nil {
		return s.refuse("invalid_token")
	}
	p, verdict := s.deps.Model.Authorize(claims.SessionID, claims.ID, s.cfg.Now())
	if verdict == projections.UnknownSession && s.freshlyIssued(claims) {
		if err := s.catchUpSession(c, claims.SessionID); err != nil {
			// The token may be good — its session started on another
			// replica a moment ago — and this one cannot learn it now
			// (the event store unreachable, or the read models behind):
			// 503, which a client or a proxy sends again (to another
			// replica), not 401, after which a client drops a valid
			// token (outside check 19u).
			s.log.Debug("a fresh token's unknown session: could not catch up with the event store", "err", err)
			s.deps.Metrics.BackgroundError("session_catch_up")
			return errUnavailable
		}
		p, verdict = s.deps.Model.Authorize(claims.SessionID, claims.ID, s.cfg.Now())
	}
	if verdict != projections.Valid {
		return s.refuseToken(c, claims, verdict.String())
	}
	if p.User.ID != claims.Subject {
		return s.refuseToken(c, claims, "subject_mismatch")
	}
	if claims.Tenant != "" && p.User.PermissionsIn(claims.Tenant) == 0 {
		// Scoped to a tenant where its user no longer holds a role:
		// refused while it holds none (the credential check's
		// role_revoked), not a user token that may do nothing there.
		return s.refuseToken(c, claims, "role_revoked")
	}
	cb := callers.Get().(*callerBox)
	cb.Caller = Caller{User: p.User, SessionID: claims.SessionID, TokenID: claims.ID, Claims: claims, Tenant: claims.Tenant}
	return s.withCaller(c, cb)
}

// callerBox holds a request's Caller and, for an API key, the key it points
// to, in one allocation that later requests reuse (callers).
type callerBox struct {
	Caller
	key domain.APIKey
}

// callers recycles callerBoxes. Allocating one per request (a user, a key:
// some 450 bytes with pointers) was a third of the API-key middleware's CPU
// and cost validate_apikey about 0.04 of its ratio (docs/performance.md).
var callers = sync.Pool{New: func() any { return new(callerBox) }}

// withCaller runs the rest of the chain as cb's Caller, logs its refusal
// (callerRefused), then forgets it and recycles cb: whatever runs after
// (the error handler) finds no caller rather than another request's.
func (s *Server) withCaller(c *fiber.Ctx, cb *callerBox) error {
	c.Locals(localCaller, &cb.Caller)
	err := c.Next()
	s.callerRefused(c, &cb.Caller, err)
	c.Locals(localCaller, nil)
	*cb = callerBox{}
	callers.Put(cb)
	return err
}

// Clone returns a copy of the caller that stays valid after its request.
func (c *Caller) Clone() *Caller {
	cp := *c
	if c.Key != nil {
		k := *c.Key
		cp.Key = &k
	}
	return &cp
}

// authenticateKey checks an API key: its shape, then one read-locked lookup
// by SHA-256: not revoked, not expired, client address allowed, owner active;
// and its environment. A key that is found is one this service issued, so
// its characters and checksum are checked only for a key that is not: a
// mistyped or made-up key is refused as malformed, as before, while a valid
// one does not pay for the checksum on every request.
func (s *Server) authenticateKey(c *fiber.Ctx, raw string) error {
	env, ok := domain.APIKeyEnv(raw)
	if !ok {
		return s.refuse("malformed_key")
	}
	now := s.cfg.Now()
	p, verdict := s.deps.Model.AuthorizeKeySum(commands.SumToken(raw), s.clientAddr(c), now)
	if verdict == projections.UnknownKey {
		if _, err := domain.ParseAPIKey(raw); err != nil {
			return s.refuse("malformed_key")
		}
	}
	if env != s.cfg.KeyEnv {
		return s.refuse("wrong_environment")
	}
	if verdict == projections.UnknownKey {
		caughtUp, err := s.catchUpForUnknownKey(c)
		if err != nil {
			return err
		}
		if caughtUp {
			p, verdict = s.deps.Model.AuthorizeKeySum(commands.SumToken(raw), s.clientAddr(c), now)
		}
	}
	if verdict != projections.Valid {
		if p.Key.ID != "" { // a key of ours, refused: logged by its ID
			s.refused(c, fiber.StatusUnauthorized, verdict.String(), p.Key.ID, "key_id", p.Key.ID, "user_id", p.Key.OwnerID)
		}
		return s.refuse(verdict.String())
	}
	if s.deps.KeyUsage != nil {
		s.deps.KeyUsage.Touch(p.Key.ID, now)
	}
	cb := callers.Get().(*callerBox)
	cb.Caller, cb.key = Caller{User: p.Owner}, p.Key
	cb.Caller.Key = &cb.key
	return s.withCaller(c, cb)
}

// catchUpForUnknownKey catches up with the event store's head for a
// well-formed key of this environment that this replica does not know — it
// may have been made through another replica a moment ago — when another
// replica serves, within the replica's budget for unknown secrets, and
// reports whether it did (then look again). Beyond the budget the key is
// refused as unknown, as it would have been. A catch-up that fails (the
// event store unreachable, the read models behind) is errUnavailable: the
// key may be good, and a 401 would have the client drop it (outside check
// 19u); a 503 is sent again, by a proxy to another replica.
func (s *Server) catchUpForUnknownKey(c *fiber.Ctx) (bool, error) {
	if s.deps.CatchUp == nil || s.deps.CatchUp.Alone() {
		return false, nil
	}
	if !s.deps.CatchUp.CatchUpBudget() {
		if !s.storeServing() {
			// Cut off, and a flood of made-up keys spent the budget:
			// the key may be good all the same (re-check 19r4: a valid
			// new key went from 503 to 401 under such a flood).
			return false, errUnavailable
		}
		return false, nil
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), time.Second)
	defer cancel()
	if err := s.deps.CatchUp.CatchUpHead(ctx); err != nil {
		s.log.Debug("an unknown API key: could not catch up with the event store", "err", err)
		s.deps.Metrics.BackgroundError("key_catch_up")
		return false, errUnavailable
	}
	return true, nil
}

// verifyToken is verify (Tokens.Verify or VerifySignature) of raw, again
// after catching up with the event store's head for a token of a signing
// key added moments ago that this replica has not applied yet: the replica
// that added it signs with it as soon as it has applied it, and its tokens
// were refused here meanwhile (outside check 17d: 6 of 60 fresh tokens on
// the other replica). Only a kid of the shape this service makes, dated
// within a minute, asks (Tokens.newUnknownKey), through the paced catch-ups
// that concurrent requests share (keyCatchUps); the token is verified in
// full afterwards. Skipped while no other replica serves: nothing can have
// been added elsewhere. The hot path — a kid this replica knows — pays
// nothing.
func (s *Server) verifyToken(c *fiber.Ctx, raw string, verify func(string) (*Claims, error)) (*Claims, error) {
	claims, err := verify(raw)
	if err == nil || s.deps.CatchUp == nil || s.deps.CatchUp.Alone() || !s.tokens.newUnknownKey(raw) {
		return claims, err
	}
	if err := s.catchUpSigningKeys(c); err != nil {
		// The token may be good (errUnavailable, as for a fresh
		// session: catchUpSession).
		s.log.Debug("a token of an unknown signing key: could not catch up with the event store", "err", err)
		s.deps.Metrics.BackgroundError("signing_key_catch_up")
		return nil, errUnavailable
	}
	return verify(raw)
}

// storeServing: the event store is reachable and serves the stream (the
// replica is ready), or there is no readiness to ask (tests). (While it does
// not, CatchUp.Alone is false: commands.Config.Serving.)
func (s *Server) storeServing() bool {
	if s.deps.Readiness == nil {
		return true
	}
	ok, _ := s.deps.Readiness.Ready()
	return ok
}

// freshlyIssued: a token signed moments ago, whose session another replica may
// have started and this one not applied yet.
func (s *Server) freshlyIssued(c *Claims) bool {
	return s.deps.CatchUp != nil && c.IssuedAt != nil && s.cfg.Now().Sub(c.IssuedAt.Time) < 30*time.Second
}

// catchUpSession waits (briefly) until this replica has applied the session's
// events, so that a client whose login went to another replica is not refused
// here. Only tokens with a valid signature get this far. An error: the
// event store could not be asked, or the read models did not catch up
// within the second.
func (s *Server) catchUpSession(c *fiber.Ctx, sessionID string) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), time.Second)
	defer cancel()
	return s.deps.CatchUp.CatchUp(ctx, domain.AggregateSession, sessionID)
}

// refuse counts a refused credential by reason and answers 401; the client
// learns nothing of the reason.
func (s *Server) refuse(reason string) error {
	s.deps.Metrics.authFailure(reason)
	return errUnauthorized
}

// refuseToken is refuse for an access token of ours (its signature
// checked): the refusal is also logged by its user and session (refused).
func (s *Server) refuseToken(c *fiber.Ctx, claims *Claims, reason string) error {
	s.refused(c, fiber.StatusUnauthorized, reason, claims.Subject, "user_id", claims.Subject, "session_id", claims.SessionID)
	return s.refuse(reason)
}

func caller(c *fiber.Ctx) *Caller {
	cl, _ := c.Locals(localCaller).(*Caller)
	return cl
}

// Authenticate returns the authentication middleware, for Go resource services
// that mount it in front of their own Fiber routes. After it, CallerOf tells
// who the caller is.
func (s *Server) Authenticate() fiber.Handler { return s.authenticate }

// CallerOf returns the caller authenticated by the middleware, or nil. It is
// valid until the handler returns; keep a Clone beyond that.
func CallerOf(c *fiber.Ctx) *Caller { return caller(c) }

// applyRequired waits (up to a second) until this replica has applied the
// revocations other replicas asked it for: it may have been paused, starved
// or cut off while they waited, and they answered their clients after their
// timeout. Until then a revoked credential would pass here; if it takes
// longer, 503: refused, not let through.
func (s *Server) applyRequired(c *fiber.Ctx, b interface{ WaitRequired(context.Context) error }) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), time.Second)
	defer cancel()
	if err := b.WaitRequired(ctx); err != nil {
		// Counted, and logged at debug: a replica stalled behind one does
		// this for every request (its /ready says so too).
		s.log.Debug("refusing a request: a revocation another replica stored is not applied here yet", "err", err)
		s.deps.Metrics.BackgroundError("behind_revocation")
		return errUnavailable
	}
	return nil
}

// current makes a list (or a history) include what another replica wrote a
// moment ago — a user created through one replica and the admin console's
// next request, listing users, through another: before it answers, the read
// models catch up with the event store's head (one round trip; none when no
// other replica serves). Where the event store cannot answer, the list is
// served from the read models as they are (reads go on while NATS is away),
// and that is logged and counted.
func (s *Server) current(c *fiber.Ctx) error {
	if s.deps.CatchUp != nil && !s.deps.CatchUp.Alone() {
		ctx, cancel := context.WithTimeout(c.UserContext(), time.Second)
		err := s.deps.CatchUp.CatchUpHead(ctx)
		cancel()
		if err != nil {
			s.log.Debug("serving a list from read models that could not catch up", "path", c.Path(), "err", err)
			s.deps.Metrics.BackgroundError("list_catch_up")
		}
	}
	return c.Next()
}

// lookUp finds what the request's path names by its ID (find reports
// whether it is there) and, when it is not, waits (briefly) until this
// replica has applied everything the event store held and looks again: a
// client that created it through another replica a moment ago — behind a
// load balancer without sticky sessions, or retrying elsewhere — finds it
// here too, instead of a 404. It costs a question for the event store's head
// (shared by concurrent requests: events.Store.Head), and only for an ID that
// is not found (for a read, only while another replica serves); an ID that
// cannot be an aggregate's is not asked for.
func (s *Server) lookUp(c *fiber.Ctx, id string, find func() bool) (bool, error) {
	if find() {
		return true, nil
	}
	if s.deps.CatchUp == nil || !aggregateID(id) {
		return false, nil
	}
	if m := c.Method(); (m == fiber.MethodGet || m == fiber.MethodHead) && s.deps.CatchUp.Alone() {
		// A read, and no other replica serves. A change (a key revoked or
		// rotated, a user deactivated) catches up regardless: during a
		// rolling upgrade a replica of the older build writes without
		// announcing itself, and a 404 would leave what it made working.
		return false, nil
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), time.Second)
	defer cancel()
	if err := s.deps.CatchUp.CatchUpHead(ctx); err != nil {
		return false, err // the event store cannot say: 503, not a 404 that may be wrong
	}
	return find(), nil
}

// aggregateID: what the service's IDs are made of (a prefix, a dash, a
// ULID; bootstrap and SCIM IDs alike) — nothing that would change the
// subject it is looked up on (dots, wildcards, spaces).
func aggregateID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch ch := id[i]; {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '-', ch == '_':
		default:
			return false
		}
	}
	return true
}
