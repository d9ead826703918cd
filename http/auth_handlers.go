package http

import (
	"errors"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/projections"
)

type tenantRoleJSON struct {
	ID   string `json:"id"`
	Role string `json:"role"`
}

type userJSON struct {
	ID       string           `json:"id"`
	Username string           `json:"username"`
	Email    string           `json:"email"`
	Roles    []string         `json:"roles"`
	Tenants  []tenantRoleJSON `json:"tenants"`
	// OtherTenants: the user holds roles in tenants left out of Tenants
	// for the caller (Caller.userView): a tenant admin may not manage them.
	OtherTenants bool `json:"other_tenants,omitempty"`
	Active       bool `json:"active"`
	// DeactivatedByTenantAdmin, on a deactivated user only: a tenant admin
	// deactivated it, and a tenant admin who manages it may activate it;
	// false — a platform admin or a SCIM connection did — only a platform
	// admin may (activatesUser). The console offers Activate by it.
	DeactivatedByTenantAdmin *bool  `json:"deactivated_by_tenant_admin,omitempty"`
	CreatedAt                string `json:"created_at"`
}

func toUserJSON(u domain.User) userJSON {
	out := userJSON{
		ID: u.ID, Username: u.Username, Email: u.Email, Active: u.Active,
		Roles: make([]string, 0, len(u.Roles)), Tenants: make([]tenantRoleJSON, 0, len(u.Tenants)),
		CreatedAt: rfc3339(u.CreatedAt),
	}
	if !u.Active {
		by := u.DeactivatedByTenantAdmin
		out.DeactivatedByTenantAdmin = &by
	}
	for _, r := range u.Roles {
		out.Roles = append(out.Roles, string(r))
	}
	for _, tr := range u.TenantRoles() {
		out.Tenants = append(out.Tenants, tenantRoleJSON{ID: tr.Tenant, Role: string(tr.Role)})
	}
	return out
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Tenant   string `json:"tenant,omitempty"`
}

type loginResponse struct {
	Token        string   `json:"token"`
	ExpiresAt    string   `json:"expires_at"`
	RefreshToken string   `json:"refresh_token"`
	User         userJSON `json:"user"`
}

// login: POST /api/v1/auth/token.
func (s *Server) login(c *fiber.Ctx) error {
	var req loginRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := required("username", req.Username, "password", req.Password); err != nil {
		return err
	}
	if req.Tenant != "" && !domain.ValidTenantID(req.Tenant) {
		return validation("tenant: is not a valid tenant id")
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	res, err := s.deps.Auth.Login(ctx, s.meta(c), commands.LoginInput{Username: req.Username, Password: req.Password, Tenant: req.Tenant})
	switch {
	case err == nil:
		s.deps.Metrics.login("success")
	case errors.Is(err, domain.ErrInvalidCredentials):
		s.deps.Metrics.login("failure")
		return errBadLogin
	case errors.Is(err, domain.ErrThrottled):
		s.deps.Metrics.login("throttled")
		return err
	case isMFAStep(err):
		return err // 403 MFA_REQUIRED or MFA_ENROLLMENT_REQUIRED (mfa.go), counted there
	default:
		s.deps.Metrics.login("error")
		return err
	}
	tok, exp, err := s.tokens.IssueUntil(res.User.ID, res.Session.ID, commands.NewID("tok"), res.Session.Tenant, res.Session.ExpiresAt)
	if err != nil {
		return err
	}
	return c.JSON(loginResponse{Token: tok, ExpiresAt: rfc3339(exp), RefreshToken: res.RefreshToken, User: toUserJSON(res.User)})
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

type refreshResponse struct {
	Token        string `json:"token"`
	ExpiresAt    string `json:"expires_at"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// refresh: POST /api/v1/auth/refresh.
func (s *Server) refresh(c *fiber.Ctx) error {
	var req refreshRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := required("refresh_token", req.RefreshToken); err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	res, err := s.deps.Auth.Refresh(ctx, s.meta(c), req.RefreshToken)
	var refused *commands.RefusedSessionError
	switch {
	case errors.As(err, &refused):
		apiErr, _ := toAPIError(err)
		s.refused(c, apiErr.Status, refusedReason(refused.Err), refused.SessionID, "session_id", refused.SessionID, "user_id", refused.UserID)
	case errors.Is(err, domain.ErrInvalidCredentials) && commands.LooksLikeRefreshToken(req.RefreshToken):
		// A token of the form this service issues that no session has: one
		// made up, or a revoked session's once the replica has forgotten
		// the session (projections.Model.Prune) — nobody to name in a log
		// line, but a count an alert on replayed tokens can watch
		// (re-check 20r2).
		s.deps.Metrics.authFailure("refresh_unknown")
	}
	if err != nil {
		return err
	}
	tok, exp, err := s.tokens.IssueUntil(res.User.ID, res.Session.ID, res.TokenID, res.Session.Tenant, res.Session.ExpiresAt)
	if err != nil {
		return err
	}
	return c.JSON(refreshResponse{Token: tok, ExpiresAt: rfc3339(exp), RefreshToken: res.NewRefreshToken})
}

type revokeRequest struct {
	Token         string `json:"token"`
	TokenTypeHint string `json:"token_type_hint,omitempty"`
}

// revoke: POST /api/v1/auth/revoke, RFC 7009 semantics: possession of the
// token is the authority, and the answer is 200 whether or not it was valid.
func (s *Server) revoke(c *fiber.Ctx) error {
	var req revokeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := required("token", req.Token); err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	if domain.LooksLikeAPIKey(req.Token) {
		if err := s.revokeKeyBySecret(ctx, c, req.Token); err != nil {
			return err
		}
		return c.JSON(fiber.Map{})
	}
	claims, err := s.verifyToken(c, req.Token, s.tokens.VerifySignature)
	if err == errUnavailable {
		// A token of a signing key this replica cannot learn now: not
		// taken for a refresh token, whose unknown revocation answers 200
		// with nothing written.
		return err
	}
	if err == nil {
		exp := s.cfg.Now().Add(s.tokens.TTL())
		if claims.ExpiresAt != nil {
			exp = claims.ExpiresAt.Time
		}
		// A token revoked already, or expired, is answered alike with
		// nothing appended (domain.RevokeAccessToken).
		err := s.deps.Sessions.ExecuteSession(ctx, s.meta(c), claims.SessionID, domain.RevokeAccessToken{
			TokenID: claims.ID, ExpiresAt: exp, Now: s.cfg.Now(), Leeway: s.tokens.Leeway(),
		})
		if err != nil && err != domain.ErrNotFound {
			return err
		}
		return c.JSON(fiber.Map{})
	}
	if err := s.deps.Sessions.RevokeRefreshToken(ctx, s.meta(c), req.Token); err != nil {
		return err
	}
	return c.JSON(fiber.Map{})
}

// authenticateLogout is authenticate for POST /api/v1/auth/logout, which
// answers a retry as it answered the first request: a client whose logout's
// answer was lost sends it again with the same token, whose session has ended
// since, and gets 204 again rather than a 401 that reads as "not logged out".
// Only a token this service signed, still within its lifetime, whose session
// has ended (logged out, revoked, cut off by a password change) passes this
// way, and the answer is all it gets: nothing is appended.
func (s *Server) authenticateLogout(c *fiber.Ctx) error {
	err := s.authenticate(c)
	if err != errUnauthorized || !s.sessionEnded(c) {
		return err
	}
	if hasSessionCookie(c) {
		s.clearSessionCookies(c)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// sessionEnded reports whether the request's access token (bearer, or the
// browser's cookie with its CSRF check) is a valid one of a session that has
// ended.
func (s *Server) sessionEnded(c *fiber.Ctx) bool {
	if repeatedAuthorization(c) {
		return false // refused by authenticate already
	}
	raw, ok := bearer(c)
	if !ok {
		if tossedCookie(c) {
			return false // refused, and cleared, by authenticate already
		}
		tok, err := s.cookieToken(c)
		if err != nil {
			return false
		}
		raw = tok
	}
	if domain.LooksLikeAPIKey(raw) {
		return false
	}
	claims, err := s.tokens.Verify(raw)
	if err != nil {
		return false
	}
	_, verdict := s.deps.Model.Authorize(claims.SessionID, claims.ID, s.cfg.Now())
	return verdict == projections.SessionRevoked
}

// logout: POST /api/v1/auth/logout revokes the caller's own session.
func (s *Server) logout(c *fiber.Ctx) error {
	cl := caller(c)
	if !cl.IsUser() {
		return validation("an API key has no session; revoke it with DELETE /api/v1/api-keys/{id}")
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	if err := s.deps.Sessions.ExecuteSession(ctx, s.meta(c), cl.SessionID, domain.RevokeSession{Reason: domain.RevokeReasonLogout}); err != nil {
		return err
	}
	if hasSessionCookie(c) {
		// A browser's session: its cookies go with it (console_session.go).
		s.clearSessionCookies(c)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

type meTenantJSON struct {
	ID          string   `json:"id"`
	Role        string   `json:"role"`
	Permissions []string `json:"permissions"`
}

type meResponse struct {
	Type      string         `json:"type"`
	ID        string         `json:"id"`
	Username  string         `json:"username"`
	Email     string         `json:"email"`
	Roles     []string       `json:"roles"`
	Tenants   []meTenantJSON `json:"tenants"`
	Tenant    string         `json:"tenant,omitempty"`
	SessionID string         `json:"session_id"`
	ExpiresAt string         `json:"expires_at"`
}

// me: GET /api/v1/auth/me.
func (s *Server) me(c *fiber.Ctx) error {
	cl := caller(c)
	if !cl.IsUser() {
		return c.JSON(toKeyMe(cl))
	}
	u := toUserJSON(cl.User)
	out := meResponse{
		Type: "user", ID: u.ID, Username: u.Username, Email: u.Email, Roles: u.Roles,
		Tenants: []meTenantJSON{}, Tenant: cl.Tenant, SessionID: cl.SessionID,
		ExpiresAt: rfc3339(cl.Claims.ExpiresAt.Time),
	}
	for _, tr := range cl.User.TenantRoles() {
		if cl.Tenant != "" && tr.Tenant != cl.Tenant {
			continue
		}
		out.Tenants = append(out.Tenants, meTenantJSON{ID: tr.Tenant, Role: string(tr.Role), Permissions: permStrings(cl.PermissionsIn(tr.Tenant))})
	}
	return c.JSON(out)
}

func permStrings(ps domain.PermissionSet) []string {
	l := ps.List()
	out := make([]string, len(l))
	for i, p := range l {
		out[i] = string(p)
	}
	return out
}

// authorizeTenant decides method on resource in tenant for the caller by the
// route policy: the caller's permissions in tenant, or errForbidden. Who
// answers with the identity headers sets them (setIdentityHeaders): forward
// auth on its answer, a tenant route without an upstream on its 404; the
// gateway only on the request it proxies, never on the answer. rawQuery is
// the request's query as received (a method override may be there).
func (s *Server) authorizeTenant(c *fiber.Ctx, method, tenant, resource, rawQuery string) (domain.PermissionSet, error) {
	perms := caller(c).PermissionsIn(tenant)
	if !perms.Has(s.policy.Permission(method, resource)) {
		return 0, errForbidden
	}
	// A request that says it is another method: decided as what the
	// resource service may take it for, too — a write for a GET naming
	// DELETE, a read for a POST naming GET (a rule's read may be the
	// stricter: a drop box that agents write and admins read).
	o := methodOverrides(&c.Request().Header, rawQuery)
	if o&overrideWrite != 0 && !perms.Has(s.policy.Permission(fiber.MethodPost, resource)) ||
		o&overrideRead != 0 && !perms.Has(s.policy.Permission(fiber.MethodGet, resource)) {
		return 0, errForbidden
	}
	return perms, nil
}

// methodOverrideHeaders: the headers frameworks take for the request's
// method over the request line's (Express's method-override, Slim's
// MethodOverrideMiddleware, Symfony's, Laravel's, ASP.NET Core's), folded.
// Some honour them on any method, so a GET carrying "DELETE" could be
// served as a delete (an outside check, 18p); most on POST, so a POST
// carrying "GET" is served as a read (re-check 18r1).
var methodOverrideHeaders = [][]byte{[]byte("x-http-method-override"), []byte("x-http-method"), []byte("x-method-override")}

// methodOverrideParam: the query parameter Laravel and Symfony read as the
// method (Rails and Rack read it from a form body only, which forward auth
// never sees: docs/forward-auth.md).
const methodOverrideParam = "_method"

const (
	overrideRead  = 1 << iota // an override names GET or HEAD
	overrideWrite             // an override names any other method
)

// methodOverrides tells which kinds of method the request's method
// overrides name — headers (methodOverrideHeaders, any spelling of their
// names) and the query's _method — whatever the request's own method: a
// value is a list, each item GET or HEAD in any letter case a read, any
// other a write. Forward auth sees the client's headers too: nginx's
// auth_request and Traefik's forwardAuth pass them on.
func methodOverrides(h *fasthttp.RequestHeader, rawQuery string) int {
	o := 0
	h.VisitAll(func(k, v []byte) {
		if len(k) < len("x-http-method") || len(k) > len("x-http-method-override") {
			return
		}
		for _, name := range methodOverrideHeaders {
			if sameHeader(k, name) {
				o |= overrideKinds(string(v))
				return
			}
		}
	})
	// Any spelling of _method holds a "_", or a "%" escaping it: a query
	// without either costs one scan, no allocation.
	if strings.ContainsAny(rawQuery, "_%") {
		for pair := range strings.SplitSeq(rawQuery, "&") {
			k, v, _ := strings.Cut(pair, "=")
			k, kerr := url.QueryUnescape(k)
			if kerr != nil || !strings.EqualFold(strings.TrimSpace(k), methodOverrideParam) {
				continue
			}
			v, verr := url.QueryUnescape(v)
			if verr != nil {
				o |= overrideRead | overrideWrite // unreadable: the stricter of both
				continue
			}
			o |= overrideKinds(v)
		}
	}
	return o
}

// overrideKinds: the kinds of method a method override's value names.
func overrideKinds(v string) int {
	o := 0
	for _, m := range strings.Split(v, ",") {
		switch m = strings.TrimSpace(m); {
		case m == "":
		case strings.EqualFold(m, fiber.MethodGet), strings.EqualFold(m, fiber.MethodHead):
			o |= overrideRead
		default:
			o |= overrideWrite
		}
	}
	return o
}

// setIdentityHeaders sets the identity headers of the caller in tenant, with
// perms, on the answer.
func setIdentityHeaders(c *fiber.Ctx, tenant string, perms domain.PermissionSet) {
	c.Set(HeaderSubject, caller(c).Subject())
	c.Set(HeaderTenant, tenant)
	c.Set(HeaderPermissions, permString(perms))
}

// errNoUpstream answers a tenant route when no upstream is set: nothing is
// there, for any caller (not a refusal: callerRefused logs none).
var errNoUpstream = &Error{fiber.StatusNotFound, "NOT_FOUND", "No upstream is configured for tenant resources"}

// tenantResource: /api/v1/tenants/{tenant} and /api/v1/tenants/{tenant}/**. The request is authorized by the
// route policy on its decoded, cleaned path (the route matched the raw one),
// then proxied to the upstream - exactly that path - when one is configured.
func (s *Server) tenantResource(c *fiber.Ctx) error {
	t, ok := parseTenantURI(requestTarget(c))
	if !ok {
		return errNotFound
	}
	perms, err := s.authorizeTenant(c, c.Method(), t.Tenant, t.Resource, t.RawQuery)
	if err != nil {
		return err
	}
	if s.gw == nil {
		// The identity the gateway would have sent, on the answer (the
		// README's walkthrough shows it): what an upstream would be told.
		setIdentityHeaders(c, t.Tenant, perms)
		return errNoUpstream
	}
	return s.gw.forward(s, c, t, perms)
}
