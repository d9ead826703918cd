package http

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/projections"
)

// Who may manage users: a platform admin everything; a tenant admin the users
// and roles of the tenants where they hold admin:*.

func (cl *Caller) administers(tenant string) bool {
	return cl.PermissionsIn(tenant).Has(domain.AdminAll)
}

// userView is u as the caller may see it: a platform admin, and the user
// themselves, see every tenant role; anyone else only the roles in the
// tenants they administer — not the names of the user's other tenants
// nor the roles held there, which the audit log leaves out for them too
// (docs/audit.md; outside check 17a: a tenant admin's users list named
// every tenant of each user, with the role).
func (cl *Caller) userView(u domain.User) userJSON {
	out := toUserJSON(u)
	if cl.IsPlatformAdmin() || (cl.IsUser() && cl.User.ID == u.ID) {
		return out
	}
	kept := out.Tenants[:0]
	for _, tr := range out.Tenants {
		if cl.administers(tr.ID) {
			kept = append(kept, tr)
		}
	}
	// That there are others — not which, nor how many — tells the console
	// what the caller may not do (deactivate, reset, end the sessions).
	out.OtherTenants = len(kept) < len(out.Tenants)
	out.Tenants = kept
	return out
}

// sees reports whether the caller may see u at all (else: 404).
func (cl *Caller) sees(u domain.User) bool {
	if cl.IsPlatformAdmin() || (cl.IsUser() && u.ID == cl.User.ID) {
		return true
	}
	for t := range u.Tenants {
		if cl.administers(t) {
			return true
		}
	}
	return false
}

type createUserRequest struct {
	Username string           `json:"username"`
	Email    string           `json:"email"`
	Password string           `json:"password"`
	Roles    []string         `json:"roles,omitempty"`
	Tenants  []tenantRoleJSON `json:"tenants,omitempty"`
}

// errUserDeactivated: a change a deactivated user cannot take.
var errUserDeactivated = &Error{fiber.StatusConflict, "CONFLICT", "The user is deactivated: activate it first (POST /api/v1/users/{id}/activate)"}

// createUser: POST /api/v1/users.
func (s *Server) createUser(c *fiber.Ctx) error {
	cl := caller(c)
	var req createUserRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := required("username", req.Username, "email", req.Email); err != nil {
		return err
	}
	if err := requiredNewPassword("password", req.Password); err != nil {
		return err
	}
	// Only a platform admin vouches for the address: an SSO login may link
	// by it (link_by_email) only then.
	in := commands.CreateUserInput{Username: req.Username, Email: req.Email, Password: req.Password, Roles: req.Roles,
		Unvouched: !cl.IsPlatformAdmin()}
	for _, t := range req.Tenants {
		in.Tenants = append(in.Tenants, domain.TenantRole{Tenant: t.ID, Role: domain.Role(t.Role)})
	}
	if !cl.IsPlatformAdmin() {
		if len(req.Roles) > 0 || len(req.Tenants) == 0 {
			return errForbidden
		}
		for _, t := range req.Tenants {
			if !cl.administers(t.ID) {
				return errForbidden
			}
		}
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	u, err := s.deps.Users.CreateUser(ctx, s.meta(c), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(cl.userView(u))
}

// mayManageUser is managesUser as a command checks it, on the user as the
// command is decided against (commands.Service.ExecuteUserAs): a user the
// caller no longer sees is 404, one it sees but does not manage 403 — as
// the request would have been answered after the change it raced.
func (cl *Caller) mayManageUser(u domain.User) error {
	if !cl.sees(u) {
		return errNotFound
	}
	if !cl.managesUser(u) {
		return errForbidden
	}
	return nil
}

// maySeeUser is sees as a command checks it (a tenant admin's role
// change: on a user in one of its tenants).
func (cl *Caller) maySeeUser(u domain.User) error {
	if !cl.sees(u) {
		return errNotFound
	}
	return nil
}

// managesUser reports whether the caller may deactivate, activate or revoke
// the sessions of u: a platform admin anyone; a tenant admin a user that is
// not a platform admin and holds roles only in tenants it administers.
// Checked on the read model to answer at once, and again in the command
// (mayManageUser), on the state it decides against.
func (cl *Caller) managesUser(u domain.User) bool {
	if cl.IsPlatformAdmin() {
		return true
	}
	if u.IsPlatformAdmin() || len(u.Tenants) == 0 {
		return false
	}
	for t := range u.Tenants {
		if !cl.administers(t) {
			return false
		}
	}
	return true
}

type usersPageJSON struct {
	Users      []userJSON `json:"users"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// listUsers: GET /api/v1/users, the users the caller may see, by username
// (then ID). With limit or cursor, a page (pagination.go); without, all.
// The read model chooses them (projections.Model.ListUsers): it looks at
// the users a chunk at a time, never holding its lock across them all,
// builds only the page's, and looks at no other user for a caller who
// sees only themselves (outside check 20s: each list copied every user
// under the lock, and stalled every token check behind it).
func (s *Server) listUsers(c *fiber.Ctx) error {
	p, err := parsePage(c, "users", true, "q")
	if err != nil {
		return err
	}
	// q: only users whose username or email contains it (any case).
	q := domain.LowerASCII(strings.TrimSpace(c.Query("q")))
	if len(q) > 256 {
		return validation("q: must be at most 256 characters")
	}
	cl := caller(c)
	page, last := s.deps.Model.ListUsers(cl.usersQuery(q, p))
	out := usersPageJSON{Users: make([]userJSON, 0, len(page))}
	if last != "" {
		out.NextCursor = cursorOf(p.kind, last)
	}
	for _, u := range page {
		out.Users = append(out.Users, cl.userView(u))
	}
	return c.JSON(out)
}

// usersQuery is the users list's question for the caller: the users it
// sees (sees) that contain q, in page p.
func (cl *Caller) usersQuery(q string, p pageReq) projections.UserListQuery {
	lq := projections.UserListQuery{Everyone: cl.IsPlatformAdmin(), Match: q, After: p.after, Limit: p.limit}
	if cl.IsUser() {
		lq.Self = cl.User.ID
	}
	if lq.Everyone {
		return lq
	}
	// The tenants the caller administers are among its user's — unless
	// that user is a platform admin acting through an API key or a token
	// scoped to a tenant: then ask of every tenant (administers).
	admin := cl.User.IsPlatformAdmin()
	for t := range cl.User.Tenants {
		admin = admin || cl.administers(t)
	}
	if admin {
		lq.Administers = cl.administers
	}
	return lq
}

// target loads the user named in the path, as the caller may see it.
func (s *Server) target(c *fiber.Ctx) (domain.User, error) {
	var u domain.User
	id := c.Params("id")
	ok, err := s.lookUp(c, id, func() (ok bool) { u, _, ok = s.deps.Model.User(id); return ok })
	if err != nil {
		return domain.User{}, err
	}
	if !ok || !caller(c).sees(u) {
		return domain.User{}, errNotFound
	}
	return u, nil
}

// getUser: GET /api/v1/users/{id}.
func (s *Server) getUser(c *fiber.Ctx) error {
	u, err := s.target(c)
	if err != nil {
		return err
	}
	return c.JSON(caller(c).userView(u))
}

type grantRoleRequest struct {
	Role string `json:"role"`
}

// grantRole: PUT /api/v1/users/{id}/tenants/{tenant}.
func (s *Server) grantRole(c *fiber.Ctx) error {
	return s.changeRole(c, func() (domain.UserCommand, error) {
		var req grantRoleRequest
		if err := decodeJSON(c, &req); err != nil {
			return nil, err
		}
		if err := required("role", req.Role); err != nil {
			return nil, err
		}
		return domain.GrantRole{Tenant: c.Params("tenant"), Role: req.Role}, nil
	})
}

// revokeRole: DELETE /api/v1/users/{id}/tenants/{tenant}.
func (s *Server) revokeRole(c *fiber.Ctx) error {
	return s.changeRole(c, func() (domain.UserCommand, error) { return domain.RevokeRole{Tenant: c.Params("tenant")}, nil })
}

func (s *Server) changeRole(c *fiber.Ctx, command func() (domain.UserCommand, error)) error {
	tenant := c.Params("tenant")
	if !domain.ValidTenantID(tenant) {
		return validation("tenant: is not a valid tenant id")
	}
	if !caller(c).administers(tenant) {
		return errForbidden
	}
	// A user the caller cannot see (in none of the tenants they administer)
	// is 404, as everywhere else: no role change, no user record in the answer.
	u, err := s.target(c)
	if err != nil {
		return err
	}
	cmd, err := command()
	if err != nil {
		return err
	}
	return s.executeUser(c, u.ID, cmd, caller(c).maySeeUser)
}

// executeUser runs cmd on user id, if may allows it on the user as cmd is
// decided against, and answers the user as it is after it.
func (s *Server) executeUser(c *fiber.Ctx, id string, cmd domain.UserCommand, may func(domain.User) error) error {
	ctx, cancel := s.ctx(c)
	defer cancel()
	u, err := s.deps.Users.ExecuteUserAs(ctx, s.meta(c), id, cmd, may)
	if err != nil {
		return err
	}
	return c.JSON(caller(c).userView(u))
}

// deactivate: POST /api/v1/users/{id}/deactivate. Every token, refresh token and
// session of the user stops at once.
func (s *Server) deactivate(c *fiber.Ctx) error {
	cl := caller(c)
	u, err := s.target(c)
	if err != nil {
		return err
	}
	if cl.IsUser() && u.ID == cl.User.ID {
		return validation("id: you cannot deactivate yourself")
	}
	if !cl.managesUser(u) {
		return errForbidden
	}
	// A tenant admin's deactivation or a platform admin's is the acting
	// account's role, however it acts: a platform admin's API key or token
	// scoped to a tenant is not IsPlatformAdmin, and its deactivation was
	// recorded a tenant admin's (re-check 20r6). The command decides it
	// again from the account as it then is (Deactivate.By).
	return s.executeUser(c, u.ID, domain.Deactivate{
		Reason: "deactivated by " + cl.User.ID, ByTenantAdmin: !cl.User.IsPlatformAdmin(), By: cl.User.ID,
	}, cl.mayManageUser)
}

// activate: POST /api/v1/users/{id}/activate (who may deactivate the user;
// a tenant admin only a user a tenant admin deactivated: activatesUser).
// The user may sign in again; nothing the deactivation stopped comes back:
// its sessions, access and refresh tokens stay revoked, and so do its API
// keys. An active user: 409.
func (s *Server) activate(c *fiber.Ctx) error {
	cl := caller(c)
	u, err := s.target(c)
	if err != nil {
		return err
	}
	if !cl.activatesUser(u) {
		return cl.activateRefused(u)
	}
	return s.executeUser(c, u.ID, domain.Activate{Reason: "activated by " + cl.User.ID}, cl.mayActivateUser)
}

// activatesUser reports whether the caller may activate u: one who manages
// it (managesUser), and for a tenant admin only a user that a tenant admin
// deactivated. A user a platform admin (or a SCIM connection) deactivated
// is brought back by a platform admin: offboarding a customer by
// deactivating its people leaves them their roles, and an admin of a
// tenant whose name later went to another customer would otherwise
// activate them, and they would sign in with their old passwords (outside
// check 20t). An active user is judged as managesUser does (the command
// answers 409).
func (cl *Caller) activatesUser(u domain.User) bool {
	if !cl.managesUser(u) {
		return false
	}
	return cl.IsPlatformAdmin() || u.Active || u.DeactivatedByTenantAdmin
}

// mayActivateUser is activatesUser as the command checks it, on the user as
// it is decided against (see mayManageUser).
func (cl *Caller) mayActivateUser(u domain.User) error {
	if !cl.sees(u) {
		return errNotFound
	}
	if !cl.activatesUser(u) {
		return cl.activateRefused(u)
	}
	return nil
}

// errActivateByPlatformAdmin: a tenant admin who manages the user, refused
// only because no tenant admin deactivated it — said, so that the console's
// and the CLI's reader know whom to ask (a bare "Insufficient permissions"
// told nothing: re-check 20r6).
var errActivateByPlatformAdmin = &Error{fiber.StatusForbidden, "FORBIDDEN",
	"Deactivated by a platform admin (or a SCIM connection): only a platform admin may activate this user"}

// activateRefused is the answer to a caller activatesUser refuses u.
func (cl *Caller) activateRefused(u domain.User) error {
	if cl.managesUser(u) && !u.Active && !u.DeactivatedByTenantAdmin {
		return errActivateByPlatformAdmin
	}
	return errForbidden
}

type passwordRequest struct {
	Password        string `json:"password"`
	CurrentPassword string `json:"current_password,omitempty"`
}

// changePassword: POST /api/v1/users/{id}/password. Users change their own
// (with current_password), a platform admin anyone's. Every other session of
// the user is revoked.
func (s *Server) changePassword(c *fiber.Ctx) error {
	cl := caller(c)
	u, err := s.target(c)
	if err != nil {
		return err
	}
	var req passwordRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := requiredNewPassword("password", req.Password); err != nil {
		return err
	}
	keep, current := "", ""
	switch {
	case cl.IsUser() && u.ID == cl.User.ID:
		if cl.Tenant != "" {
			return errScopedAccount
		}
		if err := required("current_password", req.CurrentPassword); err != nil {
			return err
		}
		keep, current = cl.SessionID, req.CurrentPassword
	case !cl.IsPlatformAdmin():
		return errForbidden
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	if err := s.deps.Users.ChangePassword(ctx, s.meta(c), u.ID, req.Password, current, keep); err != nil {
		if errors.Is(err, domain.ErrUserInactive) && keep == "" {
			// A platform admin's change of a deactivated user — found
			// so by the command, which decides on the user as stored:
			// a deactivation landing after this handler read the user
			// answered 401 here, which a console takes for its own token
			// having died (re-check 19r2). Not the caller's token that
			// failed: the user's state.
			return errUserDeactivated
		}
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
