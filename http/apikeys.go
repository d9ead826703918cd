package http

import (
	"context"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/projections"
)

type keyJSON struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Key         string   `json:"key,omitempty"`
	Tenants     []string `json:"tenants"`
	Permissions []string `json:"permissions"`
	AllowedIPs  []string `json:"allowed_ips"`
	CreatedAt   string   `json:"created_at"`
	ExpiresAt   *string  `json:"expires_at"`
	LastUsedAt  *string  `json:"last_used_at"`
	RotatedAt   *string  `json:"rotated_at,omitempty"`
	Revoked     bool     `json:"revoked"`
	OwnerID     string   `json:"owner_id"`
	// OtherTenants: the key has tenants left out of Tenants for the caller
	// (Caller.keyView): a tenant admin may not rotate or revoke it.
	OtherTenants bool `json:"other_tenants,omitempty"`
}

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := rfc3339(t)
	return &s
}

func toKeyJSON(k domain.APIKey, secret string) keyJSON {
	out := keyJSON{
		ID: k.ID, Name: k.Name, Key: secret, Tenants: k.Tenants, Permissions: permStrings(k.Permissions),
		AllowedIPs: make([]string, 0, len(k.AllowedIPs)), CreatedAt: rfc3339(k.CreatedAt),
		ExpiresAt: optTime(k.ExpiresAt), LastUsedAt: optTime(k.LastUsedAt), RotatedAt: optTime(k.RotatedAt),
		Revoked: k.Revoked, OwnerID: k.OwnerID,
	}
	for _, p := range k.AllowedIPs {
		if p.IsSingleIP() {
			out.AllowedIPs = append(out.AllowedIPs, p.Addr().String())
		} else {
			out.AllowedIPs = append(out.AllowedIPs, p.String())
		}
	}
	return out
}

type keyMeTenant struct {
	ID          string   `json:"id"`
	Permissions []string `json:"permissions"`
}

type keyMe struct {
	Type      string        `json:"type"`
	ID        string        `json:"id"`
	Name      string        `json:"name"`
	OwnerID   string        `json:"owner_id"`
	Tenants   []keyMeTenant `json:"tenants"`
	ExpiresAt *string       `json:"expires_at"`
}

func toKeyMe(cl *Caller) keyMe {
	out := keyMe{Type: "apikey", ID: cl.Key.ID, Name: cl.Key.Name, OwnerID: cl.Key.OwnerID,
		Tenants: []keyMeTenant{}, ExpiresAt: optTime(cl.Key.ExpiresAt)}
	for _, t := range cl.Key.Tenants {
		perms := cl.Key.Permissions
		if t != domain.AllTenants {
			perms = cl.PermissionsIn(t)
		}
		out.Tenants = append(out.Tenants, keyMeTenant{ID: t, Permissions: permStrings(perms)})
	}
	return out
}

// The default permissions of a key created without "permissions": read-only.
var defaultKeyPermissions = []string{
	string(domain.NodesRead), string(domain.FindingsRead), string(domain.JobsRead), string(domain.ReportsRead),
}

type createKeyRequest struct {
	Name        string    `json:"name"`
	Tenants     *[]string `json:"tenants,omitempty"`
	Permissions *[]string `json:"permissions,omitempty"`
	ExpiresAt   *string   `json:"expires_at,omitempty"`
	AllowedIPs  []string  `json:"allowed_ips,omitempty"`
}

// keyPermissionsOf is what the caller may put into a key for tenant.
func (cl *Caller) keyPermissionsOf(tenant string) domain.PermissionSet {
	if tenant == domain.AllTenants {
		if cl.IsPlatformAdmin() {
			return domain.SetOf(domain.AdminAll)
		}
		return 0
	}
	if !cl.administers(tenant) {
		return 0 // managing keys needs admin:* in every tenant of the key
	}
	return cl.PermissionsIn(tenant)
}

// defaultKeyTenants: the token's tenant scope, else the tenants the caller
// administers, else (platform admins) every tenant.
func (cl *Caller) defaultKeyTenants() []string {
	if cl.Tenant != "" {
		return []string{cl.Tenant}
	}
	var out []string
	for _, tr := range cl.User.TenantRoles() {
		if tr.Role == domain.RoleAdmin {
			out = append(out, tr.Tenant)
		}
	}
	if len(out) == 0 && cl.IsPlatformAdmin() {
		out = []string{domain.AllTenants}
	}
	return out
}

// createAPIKey: POST /api/v1/api-keys.
func (s *Server) createAPIKey(c *fiber.Ctx) error {
	cl := caller(c)
	if !cl.IsUser() {
		return errForbidden
	}
	var req createKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := required("name", req.Name); err != nil {
		return err
	}
	if err := s.signedInRecently(cl, errReauthenticateKey); err != nil {
		return err
	}
	in := commands.CreateAPIKeyInput{
		Name: req.Name, Owner: cl.User.ID, AllowedIPs: req.AllowedIPs, Env: s.cfg.KeyEnv,
		Tenants: cl.defaultKeyTenants(), Permissions: defaultKeyPermissions,
		CallerPermissions: cl.keyPermissionsOf,
	}
	if req.Tenants != nil {
		in.Tenants = *req.Tenants
	} else if len(in.Tenants) == 0 {
		return errForbidden // administers no tenant: there is nowhere a key of theirs could act
	}
	if req.Permissions != nil {
		in.Permissions = *req.Permissions
	}
	if req.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339, *req.ExpiresAt)
		if err != nil {
			return validation("expires_at: must be an RFC 3339 time like 2025-03-16T00:00:00Z")
		}
		in.ExpiresAt = &t
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	k, secret, err := s.deps.Keys.CreateAPIKey(ctx, s.meta(c), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(toKeyJSON(k, secret))
}

// keyView is k, without its secret, as the caller may see it: its owner
// and a platform admin see every tenant of the key; an admin of some of
// them only those (and "*", which concerns theirs), as the audit log
// shows them (docs/audit.md; outside check 17a).
func (cl *Caller) keyView(k domain.APIKey) keyJSON {
	out := toKeyJSON(k, "")
	if cl.IsPlatformAdmin() || cl.ownsKey(k) {
		return out
	}
	out.Tenants = make([]string, 0, len(k.Tenants))
	for _, t := range k.Tenants {
		if t == domain.AllTenants || cl.administers(t) {
			out.Tenants = append(out.Tenants, t)
		}
	}
	out.OtherTenants = len(out.Tenants) < len(k.Tenants)
	return out
}

// seesKey: the owner, a platform admin, or an admin of one of the key's tenants.
func (cl *Caller) seesKey(k domain.APIKey) bool {
	if cl.IsPlatformAdmin() || (cl.ownsKey(k) && (cl.Tenant == "" || k.InTenant(cl.Tenant))) {
		return true
	}
	for _, t := range k.Tenants {
		if t != domain.AllTenants && cl.administers(t) {
			return true
		}
	}
	return false
}

// keyOnlyIn reports whether every tenant of k is tenant.
func keyOnlyIn(k domain.APIKey, tenant string) bool {
	for _, t := range k.Tenants {
		if t != tenant {
			return false
		}
	}
	return len(k.Tenants) > 0
}

// ownsKey: the caller is the user who owns k.
func (cl *Caller) ownsKey(k domain.APIKey) bool { return cl.IsUser() && k.OwnerID == cl.User.ID }

// managesKey: the owner, a platform admin, or an admin of every tenant of
// the key. A token scoped to a tenant manages only keys of that tenant
// alone, its owner's included: it acts only there.
func (cl *Caller) managesKey(k domain.APIKey) bool {
	if cl.IsPlatformAdmin() || (cl.ownsKey(k) && (cl.Tenant == "" || keyOnlyIn(k, cl.Tenant))) {
		return true
	}
	for _, t := range k.Tenants {
		if t == domain.AllTenants || !cl.administers(t) {
			return false
		}
	}
	return true
}

// listAPIKeys: GET /api/v1/api-keys (never the secrets), by ID. With limit
// or cursor, a page (pagination.go); without, all. The read model chooses
// them a chunk of keys at a time (projections.Model.ListAPIKeys), as the
// users list: never every key under its lock.
func (s *Server) listAPIKeys(c *fiber.Ctx) error {
	p, err := parsePage(c, "api-keys", true)
	if err != nil {
		return err
	}
	cl := caller(c)
	page, last := s.deps.Model.ListAPIKeys(projections.KeyListQuery{Sees: cl.seesKey, After: p.after, Limit: p.limit})
	out := make([]keyJSON, 0, len(page))
	for _, k := range page {
		out = append(out, cl.keyView(k))
	}
	if last != "" {
		return c.JSON(fiber.Map{"api_keys": out, "next_cursor": cursorOf(p.kind, last)})
	}
	return c.JSON(fiber.Map{"api_keys": out})
}

func (s *Server) targetKey(c *fiber.Ctx) (domain.APIKey, error) {
	var k domain.APIKey
	id := c.Params("id")
	ok, err := s.lookUp(c, id, func() (ok bool) { k, _, ok = s.deps.Model.APIKey(id); return ok })
	if err != nil {
		return domain.APIKey{}, err
	}
	if !ok || !caller(c).seesKey(k) {
		return domain.APIKey{}, errNotFound
	}
	return k, nil
}

// getAPIKey: GET /api/v1/api-keys/{id}.
func (s *Server) getAPIKey(c *fiber.Ctx) error {
	k, err := s.targetKey(c)
	if err != nil {
		return err
	}
	return c.JSON(caller(c).keyView(k))
}

// mayManageKey is managesKey as a command checks it, on the key as the
// command is decided against (commands.Service.ExecuteAPIKeyAs): a
// rotation by another moves the key to its new owner meanwhile.
func (cl *Caller) mayManageKey(k domain.APIKey) error {
	if !cl.seesKey(k) {
		return errNotFound
	}
	if !cl.managesKey(k) {
		return errForbidden
	}
	return nil
}

// managedKey loads the key named in the path, if the caller may manage it.
func (s *Server) managedKey(c *fiber.Ctx) (domain.APIKey, error) {
	k, err := s.targetKey(c)
	if err == nil && !caller(c).managesKey(k) {
		err = errForbidden
	}
	return k, err
}

// revokeAPIKey: DELETE /api/v1/api-keys/{id}; rejected everywhere on the next request.
func (s *Server) revokeAPIKey(c *fiber.Ctx) error {
	k, err := s.managedKey(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	cl := caller(c)
	if _, err := s.deps.Keys.ExecuteAPIKeyAs(ctx, s.meta(c), k.ID, domain.RevokeAPIKey{Reason: "revoked by " + cl.Subject()}, cl.mayManageKey); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// rotateAPIKey: POST /api/v1/api-keys/{id}/rotate: a new secret, shown once; the old one stops.
func (s *Server) rotateAPIKey(c *fiber.Ctx) error {
	k, err := s.managedKey(c)
	if err != nil {
		return err
	}
	// Claimed until this answer is made, so that a rotation sent with this
	// one (a double click, a retry, two tabs) is refused rather than
	// replacing the secret this answer is about to show
	// (commands.Service.Replacing). A rotation that landed between the
	// read above and the claim is refused by Replaces.
	release, ok := s.deps.Keys.Replacing(domain.AggregateAPIKey, k.ID)
	if !ok {
		return errKeyRotatedMeanwhile
	}
	defer release()
	ctx, cancel := s.ctx(c)
	defer cancel()
	cl := caller(c)
	if !cl.IsUser() {
		return errForbidden // the new secret needs a user to own it
	}
	if err := s.signedInRecently(cl, errReauthenticateKey); err != nil {
		return err
	}
	k, secret, err := s.deps.Keys.RotateAPIKey(ctx, s.meta(c), commands.RotateInput{
		KeyID: k.ID, Env: s.cfg.KeyEnv, OwnerID: cl.User.ID, CallerPermissions: cl.keyPermissionsOf, May: cl.mayManageKey,
		Replaces: k.SecretHash,
	})
	if errors.Is(err, domain.ErrAPIKeyRotated) {
		return errKeyRotatedMeanwhile
	}
	if err != nil {
		return err
	}
	return c.JSON(toKeyJSON(k, secret))
}

// errKeyRotatedMeanwhile answers a rotation of a key that another rotation
// (a double click, a client's retry, another tab) gave a new secret since
// this request found it: only that rotation's answer carries the secret in
// force.
var errKeyRotatedMeanwhile = &Error{fiber.StatusConflict, "CONFLICT",
	"The key was rotated by another request at the same moment; that request's answer holds the secret in force. If you do not have it, rotate again"}

// revokeKeyBySecret revokes the key whose secret was presented (RFC 7009:
// possession is the authority; an unknown or malformed key is not an error).
func (s *Server) revokeKeyBySecret(ctx context.Context, c *fiber.Ctx, secret string) error {
	if _, err := domain.ParseAPIKey(secret); err != nil {
		return nil
	}
	hash := commands.HashToken(secret)
	k, ok := s.deps.Model.KeyBySecretHash(hash)
	if !ok && s.deps.CatchUp != nil {
		// Made (or rotated) through another replica a moment ago? Its
		// revocation must not be lost: catch up with the event store first
		// (also alone: a replica of an older build does not announce
		// itself), within the replica's budget for unknown secrets — beyond
		// it, 503 "try again", not a 200 that may have revoked nothing.
		if !s.deps.CatchUp.CatchUpBudget() {
			return commands.ErrCatchUpBudget
		}
		if err := s.deps.CatchUp.CatchUpHead(ctx); err != nil {
			return err
		}
		k, ok = s.deps.Model.KeyBySecretHash(hash)
	}
	if !ok {
		return nil
	}
	meta := s.meta(c)
	meta.Actor = events.Actor{Type: "apikey", ID: k.ID}
	_, err := s.deps.Keys.ExecuteAPIKey(ctx, meta, k.ID, domain.RevokeAPIKey{Reason: "revoked by its holder"})
	if errors.Is(err, domain.ErrNotFound) {
		return nil
	}
	return err
}
