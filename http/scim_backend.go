package http

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/http/scim"
)

// The SCIM Backend (http/scim's interface) over the write side and the
// read models. A SCIM user is the service's user (its id the user ID, its
// userName the username: a changed userName renames the user, and a
// changed primary/work e-mail becomes the user's, user.profile_changed);
// what the user aggregate does not keep (name, addresses, externalId, the enterprise
// attributes) is the connection's record of the user. A connection sees
// only the users it provisions and the groups it pushed: any other is 404.
// The match rule, the role mappings and deprovisioning are
// events/commands/scim.go's (docs/scim.md).

// SCIMCommands are the SCIM write commands (commands.Service).
type SCIMCommands interface {
	CreateSCIMConnection(ctx context.Context, meta events.Meta, in commands.SCIMConnectionInput) (domain.SCIMConnection, string, error)
	UpdateSCIMConnection(ctx context.Context, meta events.Meta, id string, tenants []string, mappings []domain.RoleMapping, platform *bool,
		ownerID, ownerKeyID string, may func(domain.SCIMConnection) error) (domain.SCIMConnection, string, error)
	// RotateSCIMTokenReplacing rotates the token whose hash is replaces,
	// as the caller found it before claiming the connection (Replacing).
	RotateSCIMTokenReplacing(ctx context.Context, meta events.Meta, id, replaces, ownerID, ownerKeyID string, may func(domain.SCIMConnection) error) (domain.SCIMConnection, string, error)
	DeleteSCIMConnection(ctx context.Context, meta events.Meta, id string, may func(domain.SCIMConnection) error) error
	CatchUpHead(ctx context.Context) error
	// Replacing claims a connection's token for a rotation (KeyCommands).
	Replacing(aggregate, id string) (release func(), ok bool)

	SCIMCreateUser(ctx context.Context, meta events.Meta, connID string, in commands.SCIMUserInput) (string, error)
	SCIMUpdateUser(ctx context.Context, meta events.Meta, connID, userID string, up commands.SCIMUserUpdate) error
	SCIMDeleteUser(ctx context.Context, meta events.Meta, connID, userID string) error
	SCIMCreateGroup(ctx context.Context, meta events.Meta, connID string, in commands.SCIMGroupInput) (string, error)
	SCIMUpdateGroup(ctx context.Context, meta events.Meta, connID, groupID string, up commands.SCIMGroupUpdate) error
	SCIMDeleteGroup(ctx context.Context, meta events.Meta, connID, groupID string) error
}

// SCIMReadModel reads SCIM connections, groups and users
// (projections.Model).
type SCIMReadModel interface {
	SCIMConnection(id string) (domain.SCIMConnection, uint64, bool)
	SCIMConnections() []domain.SCIMConnection
	SCIMConnectionByToken(sum [32]byte) (domain.SCIMConnection, bool)
	SCIMCounts(connID string) (users, groups int)
	SCIMGroup(id string) (domain.SCIMGroup, uint64, bool)
	SCIMGroups(connID string) []domain.SCIMGroup
	SCIMLink(connID, userID string) (domain.SCIMLink, uint64, bool)
	SCIMLinks(connID string) []domain.SCIMLink
	SCIMLinkByUserName(connID, name string) (domain.SCIMLink, bool)
	User(id string) (domain.User, uint64, bool)
}

type scimBackend struct{ s *Server }

var _ scim.Backend = scimBackend{}

func (b scimBackend) cmds() SCIMCommands   { return b.s.deps.SCIM }
func (b scimBackend) model() SCIMReadModel { return b.s.deps.SCIMModel }

// scimError gives an error of the write side its SCIM answer.
func (b scimBackend) scimError(err error) error {
	var ve *domain.ValidationError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, commands.ErrIncomplete):
		// Stored, but not all that follows: never "nothing was changed".
		b.s.log.Error("SCIM write incomplete", "err", err)
		return scim.ErrIncomplete
	case errors.As(err, &ve):
		return scim.Errorf(http.StatusBadRequest, scim.InvalidValue, "%s: %s", ve.Field, ve.Message)
	case errors.Is(err, domain.ErrNotFound):
		return scim.ErrNotFound
	case errors.Is(err, commands.ErrSCIMStale):
		return scim.ErrConflict
	case errors.Is(err, commands.ErrSCIMOtherIdentity):
		// What to do, without whose account it is: the IdP's admin reads
		// this in its provisioning log. Only what exists: the API renames
		// and removes no user, and a name renamed away stays reserved.
		return scim.Errorf(http.StatusConflict, scim.Uniqueness, "A user with this userName exists and signs in with another SSO identity "+
			"(another externalId, or another identity provider): it may be another person's account and is not taken over. "+
			"If it is this person's, a platform admin unlinks the old identity (DELETE /api/v1/admin/sso/{provider}/identities); "+
			"if not, give this person another userName in the identity provider (names are never reused). Then send the user again")
	case errors.Is(err, commands.ErrSCIMInactiveByName):
		return scim.Errorf(http.StatusConflict, scim.Uniqueness, "A deactivated user has this userName: it may be a former holder's account and is not "+
			"taken over (that would activate it again). If it is this person's, an administrator activates it (POST /api/v1/users/{id}/activate); "+
			"if not, give this person another userName in the identity provider (names are never reused). Then send the user again")
	case errors.Is(err, commands.ErrSCIMOtherPerson):
		return scim.Errorf(http.StatusConflict, scim.Uniqueness, "This user is deactivated and the update gives it another externalId: "+
			"the account may be a former holder's and is not handed over (nothing was changed). If it is the same person, an administrator "+
			"activates it (POST /api/v1/users/{id}/activate) and the update is sent again; if not, give the new person another userName "+
			"in the identity provider (names are never reused) and provision them as a new user")
	case errors.Is(err, commands.ErrUsernameTaken), errors.Is(err, commands.ErrSCIMNameTaken), errors.Is(err, domain.ErrAlreadyExists):
		return scim.ErrUniqueness
	case errors.Is(err, commands.ErrSCIMOutside):
		return scim.Errorf(http.StatusForbidden, "", "The user holds roles outside this connection's tenants (or is a platform admin): "+
			"only an administrator of those may deactivate, activate, rename it or set its password")
	case errors.Is(err, domain.ErrForbidden):
		return scim.ErrForbidden
	case errors.Is(err, domain.ErrThrottled):
		// A password checked for a user who stays inactive counts as a
		// guess of it (commands.SCIMUpdateUser): locked, as a login is —
		// the user, or the address the requests come from — with the
		// lockout's end in Retry-After, as the API's 429 says it.
		e := scim.Errorf(http.StatusTooManyRequests, "", "Too many failed password checks (for this user, or from this address): try again later")
		var te *domain.ThrottledError
		if errors.As(err, &te) {
			e.RetryAfter = te.Until.Sub(b.s.cfg.Now())
		}
		return e
	case errors.Is(err, domain.ErrUserInactive):
		return scim.Errorf(http.StatusBadRequest, scim.InvalidValue, "the user is deactivated: activate it (active: true) to set a password")
	case errors.Is(err, commands.ErrTooManyConflicts):
		return scim.Errorf(http.StatusConflict, "", "Concurrent modification; try again")
	case errors.Is(err, events.ErrOutcomeUnknown):
		b.s.log.Error("SCIM write outcome unknown", "err", err)
		return scim.Errorf(http.StatusServiceUnavailable, "", "The event store did not confirm the change in time; it may have been applied")
	case errors.Is(err, commands.ErrHashBusy):
		// Counted as the API's are (errors.go): a flood of SCIM password
		// writes must show where operators watch for it (outside check 18z).
		b.s.deps.Metrics.BackgroundError("password_hash_busy")
		return scim.ErrUnavailable
	case errors.Is(err, events.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return scim.ErrUnavailable
	}
	return err // 500, logged by the handler with the connection's ID
}

// ---------------------------------------------------------------- users

// profileOf is what the connection keeps of a SCIM user.
func profileOf(u scim.User) domain.SCIMProfile {
	p := domain.SCIMProfile{
		UserName: u.UserName, ExternalID: u.ExternalID, DisplayName: u.DisplayName,
		Formatted: u.Name.Formatted, GivenName: u.Name.GivenName, FamilyName: u.Name.FamilyName,
		EmployeeNumber: u.Enterprise.EmployeeNumber, Department: u.Enterprise.Department,
	}
	for _, e := range u.Emails {
		p.Emails = append(p.Emails, domain.SCIMEmail{Value: e.Value, Type: e.Type, Primary: e.Primary})
	}
	return p
}

// userView is a linked user as SCIM shows it, with groups its groups.
func userView(l domain.SCIMLink, seq uint64, u domain.User, groups []scim.GroupRef) scim.User {
	p := l.Profile
	out := scim.User{
		ID: u.ID, ExternalID: p.ExternalID, UserName: p.UserName, DisplayName: p.DisplayName,
		Name:       scim.Name{Formatted: p.Formatted, GivenName: p.GivenName, FamilyName: p.FamilyName},
		Active:     u.Active,
		Groups:     groups,
		Enterprise: scim.Enterprise{EmployeeNumber: p.EmployeeNumber, Department: p.Department},
		Meta:       scim.Meta{Created: l.LinkedAt, LastModified: l.UpdatedAt, Version: strconv.FormatUint(seq, 10)},
	}
	for _, e := range p.Emails {
		out.Emails = append(out.Emails, scim.Email{Value: e.Value, Type: e.Type, Primary: e.Primary})
	}
	return out
}

// groupsByUser maps each member of the connection's groups to its groups.
func (b scimBackend) groupsByUser(connID string) map[string][]scim.GroupRef {
	out := map[string][]scim.GroupRef{}
	for _, g := range b.model().SCIMGroups(connID) {
		for _, m := range g.Members {
			out[m] = append(out[m], scim.GroupRef{Value: g.ID, Display: g.DisplayName})
		}
	}
	return out
}

func (b scimBackend) CreateUser(ctx context.Context, conn scim.Conn, u scim.User) (scim.User, error) {
	id, err := b.cmds().SCIMCreateUser(ctx, scimMeta(ctx), conn.ID, commands.SCIMUserInput{
		Profile: profileOf(u), Password: u.Password, Active: u.Active,
	})
	if err != nil {
		return scim.User{}, b.scimError(err)
	}
	return b.GetUser(ctx, conn, id)
}

func (b scimBackend) GetUser(_ context.Context, conn scim.Conn, id string) (scim.User, error) {
	l, seq, ok := b.model().SCIMLink(conn.ID, id)
	if !ok || !l.Linked {
		return scim.User{}, scim.ErrNotFound
	}
	u, _, ok := b.model().User(id)
	if !ok {
		return scim.User{}, scim.ErrNotFound
	}
	var groups []scim.GroupRef
	for _, g := range b.model().SCIMGroups(conn.ID) {
		if g.HasMember(id) {
			groups = append(groups, scim.GroupRef{Value: g.ID, Display: g.DisplayName})
		}
	}
	return userView(l, seq, u, groups), nil
}

func (b scimBackend) ListUsers(_ context.Context, conn scim.Conn, q scim.Query) (scim.Page[scim.User], error) {
	m := b.model()
	var links []domain.SCIMLink
	eq, indexed := q.Filter.Equality()
	switch {
	case indexed && eq.Attr == "userName":
		if l, ok := m.SCIMLinkByUserName(conn.ID, eq.Value); ok {
			links = []domain.SCIMLink{l}
		}
	case indexed && eq.Attr == "id":
		if l, _, ok := m.SCIMLink(conn.ID, eq.Value); ok && l.Linked {
			links = []domain.SCIMLink{l}
		}
	default:
		links = m.SCIMLinks(conn.ID)
	}
	groups := b.groupsByUser(conn.ID)
	all := make([]scim.User, 0, len(links))
	for _, l := range links {
		_, seq, _ := m.SCIMLink(conn.ID, l.UserID)
		u, _, ok := m.User(l.UserID)
		if !ok {
			continue
		}
		all = append(all, userView(l, seq, u, groups[l.UserID]))
	}
	return scim.Paginate(all, q, q.Filter.MatchUser), nil
}

// profileChanged: the attributes of a SCIM user that the connection's
// record keeps.
var profileChanged = []string{scim.AttrUserName, scim.AttrName, scim.AttrDisplayName, scim.AttrEmails, scim.AttrExternalID, scim.AttrEnterprise}

func (b scimBackend) UpdateUser(ctx context.Context, conn scim.Conn, up scim.UserUpdate) (scim.User, error) {
	version, err := strconv.ParseUint(up.Base.Meta.Version, 10, 64)
	if err != nil {
		return scim.User{}, scim.ErrConflict // not a version this backend made: read again
	}
	su := commands.SCIMUserUpdate{Version: version}
	if slices.ContainsFunc(profileChanged, up.Has) {
		p := profileOf(up.Result)
		su.Profile = &p
	}
	if up.Has(scim.AttrActive) {
		active := up.Result.Active
		su.Active = &active
	}
	if up.Has(scim.AttrPassword) {
		su.Password = up.Result.Password
	}
	if err := b.cmds().SCIMUpdateUser(ctx, scimMeta(ctx), conn.ID, up.ID, su); err != nil {
		return scim.User{}, b.scimError(err)
	}
	return b.GetUser(ctx, conn, up.ID)
}

func (b scimBackend) DeleteUser(ctx context.Context, conn scim.Conn, id string) error {
	return b.scimError(b.cmds().SCIMDeleteUser(ctx, scimMeta(ctx), conn.ID, id))
}

// ---------------------------------------------------------------- groups

func (b scimBackend) groupView(g domain.SCIMGroup, seq uint64, connID string) scim.Group {
	out := scim.Group{
		ID: g.ID, ExternalID: g.ExternalID, DisplayName: g.DisplayName,
		Meta: scim.Meta{Created: g.CreatedAt, LastModified: g.UpdatedAt, Version: strconv.FormatUint(seq, 10)},
	}
	for _, id := range g.Members {
		display := ""
		if l, _, ok := b.model().SCIMLink(connID, id); ok {
			display = l.Profile.UserName
		}
		out.Members = append(out.Members, scim.Member{Value: id, Display: display, Type: "User"})
	}
	return out
}

// memberIDs are the user IDs of members; a group as a member is refused.
func memberIDs(ms []scim.Member) ([]string, error) {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		if m.Type != "" && m.Type != "User" {
			return nil, scim.Errorf(http.StatusBadRequest, scim.InvalidValue, "members: only users can be members (nested groups are not supported)")
		}
		out = append(out, m.Value)
	}
	return out, nil
}

func (b scimBackend) CreateGroup(ctx context.Context, conn scim.Conn, g scim.Group) (scim.Group, error) {
	members, err := memberIDs(g.Members)
	if err != nil {
		return scim.Group{}, err
	}
	id, err := b.cmds().SCIMCreateGroup(ctx, scimMeta(ctx), conn.ID, commands.SCIMGroupInput{
		DisplayName: g.DisplayName, ExternalID: g.ExternalID, Members: members,
	})
	if err != nil {
		return scim.Group{}, b.scimError(err)
	}
	return b.GetGroup(ctx, conn, id)
}

func (b scimBackend) GetGroup(_ context.Context, conn scim.Conn, id string) (scim.Group, error) {
	g, seq, ok := b.model().SCIMGroup(id)
	if !ok || !g.Exists() || g.ConnectionID != conn.ID {
		return scim.Group{}, scim.ErrNotFound
	}
	return b.groupView(g, seq, conn.ID), nil
}

func (b scimBackend) ListGroups(_ context.Context, conn scim.Conn, q scim.Query) (scim.Page[scim.Group], error) {
	groups := b.model().SCIMGroups(conn.ID)
	all := make([]scim.Group, 0, len(groups))
	for _, g := range groups {
		_, seq, _ := b.model().SCIMGroup(g.ID)
		all = append(all, b.groupView(g, seq, conn.ID))
	}
	return scim.Paginate(all, q, q.Filter.MatchGroup), nil
}

func (b scimBackend) UpdateGroup(ctx context.Context, conn scim.Conn, up scim.GroupUpdate) (scim.Group, error) {
	add, err := memberIDs(up.Added)
	if err != nil {
		return scim.Group{}, err
	}
	remove, err := memberIDs(up.Removed)
	if err != nil {
		return scim.Group{}, err
	}
	err = b.cmds().SCIMUpdateGroup(ctx, scimMeta(ctx), conn.ID, up.ID, commands.SCIMGroupUpdate{
		Rename:      up.Has(scim.AttrDisplayName) || up.Has(scim.AttrExternalID),
		DisplayName: up.Result.DisplayName, ExternalID: up.Result.ExternalID, Add: add, Remove: remove,
	})
	if err != nil {
		return scim.Group{}, b.scimError(err)
	}
	return b.GetGroup(ctx, conn, up.ID)
}

func (b scimBackend) DeleteGroup(ctx context.Context, conn scim.Conn, id string) error {
	return b.scimError(b.cmds().SCIMDeleteGroup(ctx, scimMeta(ctx), conn.ID, id))
}
