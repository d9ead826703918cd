package http

import (
	"errors"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events/commands"
)

// SCIM connections (docs/scim.md):
//
//	POST   /api/v1/admin/scim              {provider, tenants, group_mappings?, platform?} → 201 with the token (shown once)
//	GET    /api/v1/admin/scim              ?limit=&cursor= → {connections, next_cursor?}
//	GET    /api/v1/admin/scim/{id}
//	PUT    /api/v1/admin/scim/{id}         {tenants?, group_mappings?, platform?}
//	POST   /api/v1/admin/scim/{id}/rotate  → a new token (shown once); the old one stops
//	DELETE /api/v1/admin/scim/{id}
//
// A platform admin manages every connection; a tenant admin (or an API key
// with admin:*) those whose tenants it administers, every one of them,
// unless it is a platform connection (domain.SCIMConnection.Platform: made
// by a platform admin, by default; only a platform admin makes one). A
// connection the caller may not manage is 404.

type scimConnectionRequest struct {
	Name          string            `json:"name,omitempty"`
	Provider      string            `json:"provider"`
	Tenants       []string          `json:"tenants"`
	GroupMappings []roleMappingJSON `json:"group_mappings,omitempty"`
	Platform      *bool             `json:"platform,omitempty"`
}

type scimConnectionUpdateRequest struct {
	Tenants       *[]string          `json:"tenants,omitempty"`
	GroupMappings *[]roleMappingJSON `json:"group_mappings,omitempty"`
	Platform      *bool              `json:"platform,omitempty"`
}

// scimConnectionJSON is a connection as the admin API shows it. Token is
// only in the answers to its creation and rotation.
type scimConnectionJSON struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Provider      string            `json:"provider"`
	Tenants       []string          `json:"tenants"`
	GroupMappings []roleMappingJSON `json:"group_mappings"`
	Platform      bool              `json:"platform"`
	OwnerID       string            `json:"owner_id,omitempty"`
	OwnerKeyID    string            `json:"owner_key_id,omitempty"`
	Token         string            `json:"token,omitempty"`
	BaseURL       string            `json:"base_url"` // the SCIM base URL to give the identity provider
	Users         int               `json:"users"`
	Groups        int               `json:"groups"`
	CreatedAt     string            `json:"created_at"`
	UpdatedAt     string            `json:"updated_at"`
	RotatedAt     *string           `json:"rotated_at"`
}

type scimConnectionListJSON struct {
	Connections []scimConnectionJSON `json:"connections"`
	NextCursor  string               `json:"next_cursor,omitempty"`
}

// scimBase is the SCIM base URL an identity provider is given.
func (s *Server) scimBase(c *fiber.Ctx) string { return s.baseURL(c) + scimPrefix }

// scimPrefix is where the SCIM service provider is mounted.
const scimPrefix = "/scim/v2"

func (s *Server) toSCIMConnectionJSON(c *fiber.Ctx, conn domain.SCIMConnection, token string) scimConnectionJSON {
	users, groups := s.deps.SCIMModel.SCIMCounts(conn.ID)
	out := scimConnectionJSON{
		ID: conn.ID, Name: conn.Name, Provider: conn.Provider, Tenants: conn.Tenants, GroupMappings: []roleMappingJSON{}, Platform: conn.Platform,
		OwnerID: conn.OwnerID, OwnerKeyID: conn.OwnerKeyID,
		Token: token, BaseURL: s.scimBase(c), Users: users, Groups: groups,
		CreatedAt: rfc3339(conn.CreatedAt), UpdatedAt: rfc3339(conn.UpdatedAt), RotatedAt: optTime(conn.RotatedAt),
	}
	if out.Tenants == nil {
		out.Tenants = []string{}
	}
	for _, m := range conn.GroupMappings {
		out.GroupMappings = append(out.GroupMappings, roleMappingJSON{Group: m.Group, Tenant: m.Tenant, Role: string(m.Role)})
	}
	return out
}

// managesSCIM reports whether the caller may manage a connection over
// tenants: a platform admin, or an administrator of every one of them.
func (cl *Caller) managesSCIM(tenants []string) bool {
	if cl.IsPlatformAdmin() {
		return true
	}
	if len(tenants) == 0 {
		return false
	}
	for _, t := range tenants {
		if !cl.administers(t) {
			return false
		}
	}
	return true
}

// managesSCIMConn reports whether the caller may manage conn: a platform
// connection only a platform admin.
func (cl *Caller) managesSCIMConn(conn domain.SCIMConnection) bool {
	return cl.IsPlatformAdmin() || (!conn.Platform && cl.managesSCIM(conn.Tenants))
}

// newSCIMTokenAllowed: a new SCIM token, like a new API key secret, needs
// a user's session that signed in within ReauthWindow (a stolen access
// token must not become a bearer token that outlives it); an API key, which
// has no session, is the connection's owner key instead.
func (s *Server) newSCIMTokenAllowed(cl *Caller) error {
	if !cl.IsUser() {
		return nil
	}
	return s.signedInRecently(cl, errReauthenticateSCIM)
}

// owners is who a SCIM connection's token acts for when the caller makes
// it or rotates it (domain.SCIMConnection.OwnerID): the user, and the API
// key when the caller is one.
func (cl *Caller) owners() (string, string) {
	if cl.Key != nil {
		return cl.User.ID, cl.Key.ID
	}
	return cl.User.ID, ""
}

// scimOwnerMay reports whether the owner of conn — who made it or last
// rotated its token — may still manage it: active, (through the same key,
// live) an admin of its tenants, or a platform admin for a platform
// connection. A connection without an owner (made before owners were
// recorded) may.
func (s *Server) scimOwnerMay(conn domain.SCIMConnection) bool {
	if conn.OwnerID == "" {
		return true
	}
	u, _, ok := s.deps.Model.User(conn.OwnerID)
	if !ok || !u.Active {
		return false
	}
	cl := Caller{User: u}
	if conn.OwnerKeyID != "" {
		k, _, ok := s.deps.Model.APIKey(conn.OwnerKeyID)
		if !ok || k.Revoked || k.Expired(s.cfg.Now()) || k.OwnerID != u.ID {
			return false
		}
		cl.Key = &k
	}
	return cl.managesSCIMConn(conn)
}

// errPlatformSCIM: only a platform admin makes a platform connection.
var errPlatformSCIM = &Error{fiber.StatusForbidden, "FORBIDDEN", "Only a platform admin makes a platform SCIM connection (platform: true)"}

func mappingsOf(in []roleMappingJSON) []domain.RoleMapping {
	out := make([]domain.RoleMapping, 0, len(in))
	for _, m := range in {
		out = append(out, domain.RoleMapping{Group: m.Group, Tenant: m.Tenant, Role: domain.Role(m.Role)})
	}
	return out
}

var errSCIMNotConfig = &Error{fiber.StatusNotFound, "NOT_FOUND", "SCIM provisioning is not configured on this server"}

// createSCIM: POST /api/v1/admin/scim.
func (s *Server) createSCIM(c *fiber.Ctx) error {
	if s.deps.SCIM == nil || s.deps.SCIMModel == nil {
		return errSCIMNotConfig
	}
	cl := caller(c)
	var req scimConnectionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := required("provider", req.Provider); err != nil {
		return err
	}
	if len(req.Tenants) == 0 {
		return validation("tenants: at least one tenant is required")
	}
	for _, t := range req.Tenants {
		if !domain.ValidTenantID(t) {
			return validation("tenants: tenant id " + strconv.Quote(t) + " is not valid")
		}
	}
	if !cl.managesSCIM(req.Tenants) {
		return errForbidden
	}
	platform := cl.IsPlatformAdmin()
	if req.Platform != nil {
		if *req.Platform && !platform {
			return errPlatformSCIM
		}
		platform = *req.Platform
	}
	if err := s.newSCIMTokenAllowed(cl); err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	owner, ownerKey := cl.owners()
	conn, token, err := s.deps.SCIM.CreateSCIMConnection(ctx, s.meta(c), commands.SCIMConnectionInput{
		Name: req.Name, Provider: req.Provider, Tenants: req.Tenants, GroupMappings: mappingsOf(req.GroupMappings), Platform: platform,
		OwnerID: owner, OwnerKeyID: ownerKey,
	})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(s.toSCIMConnectionJSON(c, conn, token))
}

// listSCIM: GET /api/v1/admin/scim: the connections the caller manages,
// by ID, a page at a time (limit, cursor: pagination.go).
func (s *Server) listSCIM(c *fiber.Ctx) error {
	if s.deps.SCIMModel == nil {
		return errSCIMNotConfig
	}
	p, err := parsePage(c, "scim", false)
	if err != nil {
		return err
	}
	cl := caller(c)
	var visible []domain.SCIMConnection
	for _, conn := range s.deps.SCIMModel.SCIMConnections() {
		if cl.managesSCIMConn(conn) {
			visible = append(visible, conn)
		}
	}
	page, next := paginate(visible, func(conn domain.SCIMConnection) string { return conn.ID }, p)
	out := scimConnectionListJSON{Connections: make([]scimConnectionJSON, 0, len(page)), NextCursor: next}
	for _, conn := range page {
		out.Connections = append(out.Connections, s.toSCIMConnectionJSON(c, conn, ""))
	}
	return c.JSON(out)
}

// scimTarget loads the connection in the path, as the caller may manage it.
func (s *Server) scimTarget(c *fiber.Ctx) (domain.SCIMConnection, error) {
	if s.deps.SCIM == nil || s.deps.SCIMModel == nil {
		return domain.SCIMConnection{}, errSCIMNotConfig
	}
	var conn domain.SCIMConnection
	id := c.Params("id")
	ok, err := s.lookUp(c, id, func() bool {
		var found bool
		conn, _, found = s.deps.SCIMModel.SCIMConnection(id)
		return found && conn.Exists()
	})
	if err != nil {
		return domain.SCIMConnection{}, err
	}
	if !ok || !caller(c).managesSCIMConn(conn) {
		return domain.SCIMConnection{}, errNotFound
	}
	return conn, nil
}

// mayManage is the permission check of a command, made on the connection
// as it is decided against.
func mayManage(cl *Caller) func(domain.SCIMConnection) error {
	return func(conn domain.SCIMConnection) error {
		if !cl.managesSCIMConn(conn) {
			return domain.ErrNotFound
		}
		return nil
	}
}

// getSCIM: GET /api/v1/admin/scim/{id}.
func (s *Server) getSCIM(c *fiber.Ctx) error {
	conn, err := s.scimTarget(c)
	if err != nil {
		return err
	}
	return c.JSON(s.toSCIMConnectionJSON(c, conn, ""))
}

// updateSCIM: PUT /api/v1/admin/scim/{id}. Absent fields stay as they are;
// new tenants need the caller to administer them too. The roles of the
// connection's users follow the new mappings before the answer.
func (s *Server) updateSCIM(c *fiber.Ctx) error {
	conn, err := s.scimTarget(c)
	if err != nil {
		return err
	}
	cl := caller(c)
	var req scimConnectionUpdateRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Tenants == nil && req.GroupMappings == nil && req.Platform == nil {
		return validation("tenants, group_mappings, platform: give at least one")
	}
	if req.Platform != nil && *req.Platform && !cl.IsPlatformAdmin() {
		return errPlatformSCIM
	}
	if req.Platform != nil && *req.Platform && !conn.Platform {
		if err := s.newSCIMTokenAllowed(cl); err != nil { // the switch rotates the token
			return err
		}
	}
	var tenants []string
	var mappings []domain.RoleMapping
	if req.Tenants != nil {
		tenants = *req.Tenants
		if len(tenants) == 0 {
			return validation("tenants: at least one tenant is required")
		}
		if !cl.managesSCIM(tenants) {
			return errForbidden
		}
	}
	if req.GroupMappings != nil {
		mappings = mappingsOf(*req.GroupMappings)
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	owner, ownerKey := cl.owners()
	conn, token, err := s.deps.SCIM.UpdateSCIMConnection(ctx, s.meta(c), conn.ID, tenants, mappings, req.Platform, owner, ownerKey, mayManage(cl))
	if err != nil {
		return err
	}
	return c.JSON(s.toSCIMConnectionJSON(c, conn, token))
}

// rotateSCIM: POST /api/v1/admin/scim/{id}/rotate.
func (s *Server) rotateSCIM(c *fiber.Ctx) error {
	conn, err := s.scimTarget(c)
	if err != nil {
		return err
	}
	// Held until the answer is made (as a key's rotation, rotateAPIKey);
	// the token replaced is the one read above.
	release, ok := s.deps.SCIM.Replacing(domain.AggregateSCIM, conn.ID)
	if !ok {
		return errSCIMRotatedMeanwhile
	}
	defer release()
	ctx, cancel := s.ctx(c)
	defer cancel()
	cl := caller(c)
	if err := s.newSCIMTokenAllowed(cl); err != nil {
		return err
	}
	owner, ownerKey := cl.owners()
	conn, token, err := s.deps.SCIM.RotateSCIMTokenReplacing(ctx, s.meta(c), conn.ID, conn.TokenHash, owner, ownerKey, mayManage(cl))
	if errors.Is(err, domain.ErrSCIMTokenRotated) {
		return errSCIMRotatedMeanwhile
	}
	if err != nil {
		return err
	}
	return c.JSON(s.toSCIMConnectionJSON(c, conn, token))
}

// errSCIMRotatedMeanwhile answers a rotation of a connection's token that
// another rotation replaced since this request found it: only that
// rotation's answer carries the token in force.
var errSCIMRotatedMeanwhile = &Error{fiber.StatusConflict, "CONFLICT",
	"The token was rotated by another request at the same moment; that request's answer holds the token in force. If you do not have it, rotate again"}

// deleteSCIM: DELETE /api/v1/admin/scim/{id}.
func (s *Server) deleteSCIM(c *fiber.Ctx) error {
	conn, err := s.scimTarget(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	if err := s.deps.SCIM.DeleteSCIMConnection(ctx, s.meta(c), conn.ID, mayManage(caller(c))); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return errNotFound
		}
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
