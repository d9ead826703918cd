package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// SCIM 2.0 provisioning (docs/scim.md). Three aggregates:
//
//   - AggregateSCIM, a connection: an identity provider's provisioning client,
//     bound to an SSO provider and to the tenants it may provision, with the
//     SHA-256 of its bearer token and the group → tenant role mappings.
//   - AggregateSCIMGroup, a group the connection pushed: its name and members
//     (user IDs). Through the mappings, membership decides the members' roles
//     in the tenants the mappings name.
//   - AggregateSCIMUser, the connection's record of one user (the link): that
//     the user is provisioned by the connection, and the SCIM attributes the
//     identity provider sent that the user aggregate does not keep (name,
//     addresses, externalId, …). The user itself is the user aggregate.
const (
	AggregateSCIM      = "scim"
	AggregateSCIMGroup = "scim_group"
	AggregateSCIMUser  = "scim_user"
)

// AggregateSCIMName holds the reservations of SCIM connection names: one
// subject per owner and name (commands.SCIMNameKey), so that an owner's live
// connections have different names (a retried create, or two at once, makes
// one connection), as AggregateAPIKeyName does for API keys.
const AggregateSCIMName = "scimname"

// SCIMNameReserved claims a connection name among its owner's connections
// for the connection created in the same atomic batch; appended with the
// name subject's last sequence expected, after checking that no live
// connection of the owner has the name. A deleted connection's name may be
// reserved again.
type SCIMNameReserved struct {
	OwnerID      string `json:"owner_id"`
	Name         string `json:"name"`
	ConnectionID string `json:"connection_id"`
}

// TypeSCIMNameReserved is SCIMNameReserved's type name.
const TypeSCIMNameReserved = "scimname.reserved"

func (SCIMNameReserved) EventType() string { return TypeSCIMNameReserved }

// AggregateSCIMGroupName holds the reservations of SCIM group names: one
// subject per connection and name (commands.SCIMGroupNameKey), so that a
// connection's live groups have different names (two creates or renames to
// one name at once, through one replica or two, make one group of that
// name), as AggregateSCIMName does for connection names.
const AggregateSCIMGroupName = "scimgroupname"

// SCIMGroupNameReserved claims a group name among its connection's live
// groups for the group created or renamed in the same atomic batch;
// appended with the name subject's last sequence expected, after checking
// that no other live group of the connection has the name. The name of a
// group deleted, or renamed away from it, may be reserved again.
type SCIMGroupNameReserved struct {
	ConnectionID string `json:"connection_id"`
	Name         string `json:"name"`
	GroupID      string `json:"group_id"`
}

// TypeSCIMGroupNameReserved is SCIMGroupNameReserved's type name.
const TypeSCIMGroupNameReserved = "scimgroupname.reserved"

func (SCIMGroupNameReserved) EventType() string { return TypeSCIMGroupNameReserved }

// AggregateSCIMAdoption orders the adoptions of an existing user by SCIM
// connections: one subject per user (its ID). Every adoption appends
// SCIMUserAdopted there, in the same atomic batch as the connection's
// record of the user, expecting the subject's last sequence as read before
// checking that no other live connection provisions the user: of two
// connections adopting one user at once, one append conflicts, and the
// connection deciding again finds the other's record (the user is then not
// adopted). A user created by a connection has none (nobody can adopt it
// before it exists).
const AggregateSCIMAdoption = "scim_adoption"

// SCIMUserAdopted: connection ConnectionID adopts user UserID (found by
// the match rule) in this batch. It changes no state: its subject's
// sequence is what concurrent adoptions of the user contend on.
type SCIMUserAdopted struct {
	UserID       string `json:"user_id"`
	ConnectionID string `json:"connection_id"`
}

// TypeSCIMUserAdopted is SCIMUserAdopted's type name.
const TypeSCIMUserAdopted = "scim.user_adopted"

func (SCIMUserAdopted) EventType() string { return TypeSCIMUserAdopted }

// SCIMTokenEnv is the "environment" of SCIM bearer tokens in the API key
// format: ic_scim_ + 256 random bits in base62 + a CRC-32 checksum. It is
// neither KeyEnvLive nor KeyEnvTest, so a SCIM token is never an API key.
const SCIMTokenEnv = "scim"

// SCIMTokenPrefix starts every SCIM bearer token.
const SCIMTokenPrefix = "ic_" + SCIMTokenEnv + "_"

// FormatSCIMToken builds a SCIM bearer token from 32 random bytes.
func FormatSCIMToken(random [32]byte) string { return FormatAPIKey(SCIMTokenEnv, random) }

// LooksLikeSCIMToken reports whether a bearer credential claims to be a SCIM
// token.
func LooksLikeSCIMToken(s string) bool { return strings.HasPrefix(s, SCIMTokenPrefix) }

// ValidSCIMToken checks a SCIM token's prefix, length, characters and
// checksum: a mistyped or made-up token is refused without a lookup.
func ValidSCIMToken(s string) bool {
	rest, ok := strings.CutPrefix(s, SCIMTokenPrefix)
	if !ok || len(rest) != keyBodyLen+keyChecksumLen {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if !isBase62[rest[i]] {
			return false
		}
	}
	want := checksum(s[:len(s)-keyChecksumLen])
	return s[len(s)-keyChecksumLen:] == string(want[:])
}

// Limits of what a connection, a group and a user's SCIM record hold.
const (
	maxSCIMTenants   = 100
	maxSCIMMappings  = 500
	maxSCIMText      = 1024 // any one SCIM string attribute
	maxSCIMGroupName = 256
	maxSCIMEmails    = 20
	maxSCIMMembers   = 100_000
)

// SCIMConnection is the state of a SCIM connection.
type SCIMConnection struct {
	ID string
	// Name is what its creator called it ("" before names existed, or
	// when none was given); unique among its owner's live connections
	// (commands.CreateSCIMConnection), so that a retried create is refused
	// rather than made twice.
	Name          string
	Provider      string // the SSO provider its users sign in through
	Tenants       []string
	GroupMappings []RoleMapping
	TokenHash     string // SHA-256 (hex) of the bearer token
	// Platform: a platform admin's connection. Only such a connection sets
	// passwords, links an SSO identity to a user it did not create, or
	// vouches for the e-mail addresses it records (SSO's link_by_email);
	// only platform admins manage it. Another (a tenant admin's) could
	// otherwise make an account whose password it knows sign in as
	// someone's SSO identity — with the roles that identity brings from
	// other tenants — or take over a user of its tenants.
	Platform bool
	// OwnerID is the user who made the connection or last rotated its
	// token, OwnerKeyID the API key that did (else ""): the token acts for
	// them, and only while they may still manage the connection, as an API
	// key acts only within its owner's live permissions. "" before owners
	// were recorded: no owner.
	OwnerID, OwnerKeyID string
	CreatedAt           time.Time
	UpdatedAt           time.Time
	RotatedAt           time.Time
	Deleted             bool
	Version             uint64
}

// Exists reports whether the connection was created and not deleted.
func (c SCIMConnection) Exists() bool { return c.ID != "" && !c.Deleted }

// HasTenant reports whether the connection may provision tenant.
func (c SCIMConnection) HasTenant(tenant string) bool { return slices.Contains(c.Tenants, tenant) }

// GovernedTenants lists, sorted, the tenants a group mapping names: there,
// the connection's groups decide its users' roles.
func (c SCIMConnection) GovernedTenants() []string {
	var out []string
	for _, m := range c.GroupMappings {
		if !slices.Contains(out, m.Tenant) {
			out = append(out, m.Tenant)
		}
	}
	sort.Strings(out)
	return out
}

// Within reports whether everything u holds is inside the connection's
// tenants: u is no platform admin and has no role in another tenant. Only
// such a user may be adopted by the connection, or deactivated, activated,
// renamed or given a password through it.
func (c SCIMConnection) Within(u User) bool {
	if u.IsPlatformAdmin() {
		return false
	}
	for t := range u.Tenants {
		if !c.HasTenant(t) {
			return false
		}
	}
	return true
}

// Shares reports whether u holds a role in at least one of the
// connection's tenants. Within alone is true of a user in no tenant at all
// (nothing it holds is outside), who is no tenant's: a tenant connection
// learns about a user only what its tenants' admins see (re-check 19r2).
func (c SCIMConnection) Shares(u User) bool {
	for t := range u.Tenants {
		if c.HasTenant(t) {
			return true
		}
	}
	return false
}

// RolesFor returns the role that membership of the named groups (SCIM
// displayNames, compared exactly) gives in each governed tenant: the
// strongest any of them maps to there. A governed tenant that none of the
// groups maps to is absent: the user holds no role there.
func (c SCIMConnection) RolesFor(groups []string) map[string]Role {
	out := map[string]Role{}
	// A set, not a search of groups per mapping: a user may be in as many
	// mapped groups as there are mappings (500), for each of a group's
	// 100,000 members at a change.
	in := make(map[string]bool, len(groups))
	for _, g := range groups {
		in[g] = true
	}
	for _, m := range c.GroupMappings {
		if !in[m.Group] {
			continue
		}
		if cur, ok := out[m.Tenant]; !ok || roleRank(m.Role) > roleRank(cur) {
			out[m.Tenant] = m.Role
		}
	}
	return out
}

// SCIMRoleChanges returns the commands that bring u's roles in the governed
// tenants to want (RolesFor): a grant where the role differs, a revocation
// where want has none. Tenants not governed are left alone.
func SCIMRoleChanges(u User, governed []string, want map[string]Role) []UserCommand {
	var out []UserCommand
	for _, t := range governed {
		cur, has := u.Tenants[t]
		w, ok := want[t]
		switch {
		case ok && (!has || cur != w):
			out = append(out, GrantRole{Tenant: t, Role: string(w)})
		case !ok && has:
			out = append(out, RevokeRole{Tenant: t})
		}
	}
	return out
}

// SCIM connection events.
type (
	// SCIMConnectionCreated: a connection was created. TokenHash is the
	// SHA-256 (hex) of its bearer token, which exists only in the answer to
	// the request that created it.
	SCIMConnectionCreated struct {
		ConnectionID string `json:"connection_id"`
		// Name: SCIMConnection's; absent when none was given, and before
		// names existed.
		Name          string        `json:"name,omitempty"`
		Provider      string        `json:"provider"`
		Tenants       []string      `json:"tenants"`
		GroupMappings []RoleMapping `json:"group_mappings"`
		TokenHash     string        `json:"token_hash"`
		// Platform: a platform admin's connection (SCIMConnection.Platform);
		// absent in events before it existed: not one.
		Platform bool `json:"platform,omitempty"`
		// OwnerID, OwnerKeyID: SCIMConnection's; absent before they existed.
		OwnerID    string    `json:"owner_id,omitempty"`
		OwnerKeyID string    `json:"owner_key_id,omitempty"`
		CreatedAt  time.Time `json:"created_at"`
	}
	// SCIMTokenRotated: the connection has a new bearer token; the old one
	// stops at once.
	SCIMTokenRotated struct {
		ConnectionID string `json:"connection_id"`
		TokenHash    string `json:"token_hash"`
		// OwnerID, OwnerKeyID: who rotated it, the connection's owner from
		// now on (absent before owners were recorded: no owner).
		OwnerID    string    `json:"owner_id,omitempty"`
		OwnerKeyID string    `json:"owner_key_id,omitempty"`
		RotatedAt  time.Time `json:"rotated_at"`
	}
	// SCIMConnectionUpdated: the connection's tenants, group mappings and
	// platform flag were replaced.
	SCIMConnectionUpdated struct {
		ConnectionID  string        `json:"connection_id"`
		Tenants       []string      `json:"tenants"`
		GroupMappings []RoleMapping `json:"group_mappings"`
		Platform      bool          `json:"platform,omitempty"`
		UpdatedAt     time.Time     `json:"updated_at"`
	}
	// SCIMConnectionDeleted: the connection and its token stop. The users it
	// provisioned stay as they are.
	SCIMConnectionDeleted struct {
		ConnectionID string `json:"connection_id"`
	}
)

// SCIM group events.
type (
	// SCIMGroupCreated: the connection pushed a group.
	SCIMGroupCreated struct {
		GroupID      string    `json:"group_id"`
		ConnectionID string    `json:"connection_id"`
		DisplayName  string    `json:"display_name"`
		ExternalID   string    `json:"external_id,omitempty"`
		Members      []string  `json:"members,omitempty"`
		CreatedAt    time.Time `json:"created_at"`
	}
	// SCIMGroupRenamed: the group's displayName (or externalId) changed.
	SCIMGroupRenamed struct {
		GroupID     string    `json:"group_id"`
		DisplayName string    `json:"display_name"`
		ExternalID  string    `json:"external_id,omitempty"`
		RenamedAt   time.Time `json:"renamed_at"`
	}
	// SCIMGroupMembersChanged: users joined or left the group.
	SCIMGroupMembersChanged struct {
		GroupID   string    `json:"group_id"`
		Added     []string  `json:"added,omitempty"`
		Removed   []string  `json:"removed,omitempty"`
		ChangedAt time.Time `json:"changed_at"`
	}
	// SCIMGroupDeleted: the group is gone (its members' roles through it go
	// with it, by the role events appended beside).
	SCIMGroupDeleted struct {
		GroupID string `json:"group_id"`
	}
)

// SCIMEmail is an address of a user as the identity provider sent it.
type SCIMEmail struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

// SCIMProfile is what a connection keeps of a user's SCIM attributes beyond
// the user aggregate's own: UserName is the SCIM userName (the username the
// user was created or adopted with, or a later one the identity provider
// sent: see docs/scim.md), and the rest as sent.
type SCIMProfile struct {
	UserName       string      `json:"user_name"`
	ExternalID     string      `json:"external_id,omitempty"`
	DisplayName    string      `json:"display_name,omitempty"`
	Formatted      string      `json:"formatted_name,omitempty"`
	GivenName      string      `json:"given_name,omitempty"`
	FamilyName     string      `json:"family_name,omitempty"`
	Emails         []SCIMEmail `json:"emails,omitempty"`
	EmployeeNumber string      `json:"employee_number,omitempty"`
	Department     string      `json:"department,omitempty"`
}

// Equal reports whether two profiles hold the same values.
func (p SCIMProfile) Equal(o SCIMProfile) bool {
	a, b := p, o
	a.Emails, b.Emails = nil, nil
	return reflect.DeepEqual(a, b) && slices.Equal(p.Emails, o.Emails)
}

// How a user came to be provisioned by a connection (SCIMUserLinked.Method).
const (
	SCIMLinkCreated  = "created"  // the connection created the user
	SCIMLinkIdentity = "identity" // the SSO identity (issuer, externalId) was the user's
	SCIMLinkUsername = "username" // the userName was the user's username
	// SCIMLinkRehire: the connection's own record of a user it provisioned
	// before, deleted since, had the externalId (a rehire found without an
	// SSO identity: a tenant connection links none).
	SCIMLinkRehire = "rehire"
)

// LinkSCIM is the SSOIdentityLinked.Method of an identity that a SCIM
// connection linked: its externalId as the subject at the connection's SSO
// provider.
const LinkSCIM = "scim"

// SCIM user (link) events.
type (
	// SCIMUserLinked: the user is provisioned by the connection from now on.
	SCIMUserLinked struct {
		ConnectionID string      `json:"connection_id"`
		UserID       string      `json:"user_id"`
		Method       string      `json:"method"`
		Profile      SCIMProfile `json:"profile"`
		LinkedAt     time.Time   `json:"linked_at"`
	}
	// SCIMUserUpdated: the identity provider sent new SCIM attributes.
	SCIMUserUpdated struct {
		ConnectionID string      `json:"connection_id"`
		UserID       string      `json:"user_id"`
		Profile      SCIMProfile `json:"profile"`
		UpdatedAt    time.Time   `json:"updated_at"`
	}
	// SCIMUserUnlinked: the identity provider deleted the user; the
	// connection no longer shows it (the user itself is deactivated by the
	// user.deactivated beside it).
	SCIMUserUnlinked struct {
		ConnectionID string `json:"connection_id"`
		UserID       string `json:"user_id"`
	}
)

// SCIM event type names.
const (
	TypeSCIMConnectionCreated   = "scim.connection_created"
	TypeSCIMTokenRotated        = "scim.token_rotated"
	TypeSCIMConnectionUpdated   = "scim.connection_updated"
	TypeSCIMConnectionDeleted   = "scim.connection_deleted"
	TypeSCIMGroupCreated        = "scim.group_created"
	TypeSCIMGroupRenamed        = "scim.group_renamed"
	TypeSCIMGroupMembersChanged = "scim.group_members_changed"
	TypeSCIMGroupDeleted        = "scim.group_deleted"
	TypeSCIMUserLinked          = "scim.user_linked"
	TypeSCIMUserUpdated         = "scim.user_updated"
	TypeSCIMUserUnlinked        = "scim.user_unlinked"
)

func (SCIMConnectionCreated) EventType() string   { return TypeSCIMConnectionCreated }
func (SCIMTokenRotated) EventType() string        { return TypeSCIMTokenRotated }
func (SCIMConnectionUpdated) EventType() string   { return TypeSCIMConnectionUpdated }
func (SCIMConnectionDeleted) EventType() string   { return TypeSCIMConnectionDeleted }
func (SCIMGroupCreated) EventType() string        { return TypeSCIMGroupCreated }
func (SCIMGroupRenamed) EventType() string        { return TypeSCIMGroupRenamed }
func (SCIMGroupMembersChanged) EventType() string { return TypeSCIMGroupMembersChanged }
func (SCIMGroupDeleted) EventType() string        { return TypeSCIMGroupDeleted }
func (SCIMUserLinked) EventType() string          { return TypeSCIMUserLinked }
func (SCIMUserUpdated) EventType() string         { return TypeSCIMUserUpdated }
func (SCIMUserUnlinked) EventType() string        { return TypeSCIMUserUnlinked }

// ---------------------------------------------------------------- connections

// SCIMConnectionCommand is a command on a connection: one of the types
// below (a closed set, as UserCommand).
type SCIMConnectionCommand interface{ scimConnectionCommand() }

// Commands on a connection.
type (
	// CreateSCIMConnection creates a connection. ProviderExists says whether
	// an SSO provider named Provider is configured (the caller looked).
	CreateSCIMConnection struct {
		ConnectionID   string
		Name           string // optional; see SCIMConnection.Name
		Provider       string
		ProviderExists bool
		Tenants        []string
		GroupMappings  []RoleMapping
		TokenHash      string
		Platform       bool
		OwnerID        string
		OwnerKeyID     string
		Now            time.Time
	}
	// UpdateSCIMConnection replaces the tenants (when not nil) and the group
	// mappings (when not nil). A mapping to a tenant that is not the
	// connection's is refused.
	UpdateSCIMConnection struct {
		Tenants       []string
		GroupMappings []RoleMapping
		Platform      *bool // when not nil, whether it is a platform admin's connection
		// TokenHash, OwnerID, OwnerKeyID: a new token and its owner, for a
		// connection becoming a platform one (its old token, which a tenant
		// admin may hold, stops in the same append).
		TokenHash           string
		OwnerID, OwnerKeyID string
		Now                 time.Time
	}
	// RotateSCIMToken gives the connection a new token (its hash).
	// Replaces is the hash of the token the caller saw: a connection whose
	// token another rotation replaced meanwhile is refused
	// (ErrSCIMTokenRotated), so that of rotations at once only one answers
	// with a token, the one in force.
	RotateSCIMToken struct {
		Replaces            string
		TokenHash           string
		OwnerID, OwnerKeyID string // who rotates: the new owner
		Now                 time.Time
	}
	// DeleteSCIMConnection stops the connection.
	DeleteSCIMConnection struct{}
)

// ErrSCIMTokenRotated: a rotation of a connection's token that another
// rotation replaced since the caller saw it.
var ErrSCIMTokenRotated = errors.New("domain: the SCIM token was rotated meanwhile")

func (CreateSCIMConnection) scimConnectionCommand() {}
func (UpdateSCIMConnection) scimConnectionCommand() {}
func (RotateSCIMToken) scimConnectionCommand()      {}
func (DeleteSCIMConnection) scimConnectionCommand() {}

// DecideSCIMConnection decides a command against a connection's state. No
// events and no error: nothing changes. A connection that does not exist (or
// was deleted) is ErrNotFound for every command but the creation.
func DecideSCIMConnection(c SCIMConnection, cmd SCIMConnectionCommand) ([]Event, error) {
	if cr, ok := cmd.(CreateSCIMConnection); ok {
		return decideCreateSCIMConnection(c, cr)
	}
	if !c.Exists() {
		return nil, ErrNotFound
	}
	switch cm := cmd.(type) {
	case UpdateSCIMConnection:
		tenants := c.Tenants
		if cm.Tenants != nil {
			t, err := checkSCIMTenants(cm.Tenants)
			if err != nil {
				return nil, err
			}
			tenants = t
		}
		mappings := c.GroupMappings
		if cm.GroupMappings != nil {
			mappings = cm.GroupMappings
		}
		checked, err := checkGroupMappings(mappings, tenants)
		if err != nil {
			return nil, err
		}
		platform := c.Platform
		if cm.Platform != nil {
			platform = *cm.Platform
		}
		if slices.Equal(tenants, c.Tenants) && slices.Equal(checked, c.GroupMappings) && platform == c.Platform {
			return nil, nil
		}
		out := []Event{SCIMConnectionUpdated{ConnectionID: c.ID, Tenants: tenants, GroupMappings: checked, Platform: platform, UpdatedAt: cm.Now.UTC()}}
		if platform && !c.Platform {
			if cm.TokenHash == "" || cm.TokenHash == c.TokenHash {
				return nil, Invalid("token", "a connection becoming a platform one needs a new token")
			}
			out = append(out, SCIMTokenRotated{ConnectionID: c.ID, TokenHash: cm.TokenHash, OwnerID: cm.OwnerID, OwnerKeyID: cm.OwnerKeyID, RotatedAt: cm.Now.UTC()})
		}
		return out, nil
	case RotateSCIMToken:
		if cm.TokenHash == "" || cm.TokenHash == c.TokenHash {
			return nil, Invalid("token", "rotation needs a new token")
		}
		if cm.Replaces != c.TokenHash {
			return nil, ErrSCIMTokenRotated
		}
		return []Event{SCIMTokenRotated{ConnectionID: c.ID, TokenHash: cm.TokenHash, OwnerID: cm.OwnerID, OwnerKeyID: cm.OwnerKeyID, RotatedAt: cm.Now.UTC()}}, nil
	case DeleteSCIMConnection:
		return []Event{SCIMConnectionDeleted{ConnectionID: c.ID}}, nil
	}
	return nil, Invalid("command", "unknown SCIM connection command %T", cmd)
}

func decideCreateSCIMConnection(c SCIMConnection, cm CreateSCIMConnection) ([]Event, error) {
	if c.ID != "" {
		return nil, ErrAlreadyExists
	}
	if cm.ConnectionID == "" || cm.TokenHash == "" {
		return nil, Invalid("connection", "id and token hash are required")
	}
	if !ValidSSOProviderName(cm.Provider) {
		return nil, Invalid("provider", "must name an SSO provider (okta, azure, saml or a generic OIDC provider's name)")
	}
	if !cm.ProviderExists {
		return nil, Invalid("provider", "no SSO provider %q is configured (POST /api/v1/admin/sso/… first)", cm.Provider)
	}
	name, err := CheckSCIMConnectionName(cm.Name)
	if err != nil {
		return nil, err
	}
	tenants, err := checkSCIMTenants(cm.Tenants)
	if err != nil {
		return nil, err
	}
	mappings, err := checkGroupMappings(cm.GroupMappings, tenants)
	if err != nil {
		return nil, err
	}
	return []Event{SCIMConnectionCreated{
		ConnectionID: cm.ConnectionID, Name: name, Provider: cm.Provider, Tenants: tenants, GroupMappings: mappings, Platform: cm.Platform,
		OwnerID: cm.OwnerID, OwnerKeyID: cm.OwnerKeyID,
		TokenHash: cm.TokenHash, CreatedAt: cm.Now.UTC(),
	}}, nil
}

// CheckSCIMConnectionName validates a connection's name and returns it
// trimmed: "" (none), or up to 128 characters without control or invisible
// formatting characters (hiddenRune).
func CheckSCIMConnectionName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > 128 || hasHiddenRuneInName(name) {
		return "", Invalid("name", "must be at most 128 characters, without control or invisible characters (direction overrides, zero-width characters, line separators, blank fillers)")
	}
	return name, nil
}

// checkSCIMTenants validates a connection's tenants and returns them sorted.
func checkSCIMTenants(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, Invalid("tenants", "at least one tenant is required")
	}
	if len(in) > maxSCIMTenants {
		return nil, Invalid("tenants", "at most %d tenants", maxSCIMTenants)
	}
	out := make([]string, 0, len(in))
	for _, t := range in {
		if !ValidTenantID(t) {
			return nil, Invalid("tenants", "tenant id %q must match %s", t, tenantPattern)
		}
		if slices.Contains(out, t) {
			return nil, Invalid("tenants", "tenant %q listed twice", t)
		}
		out = append(out, t)
	}
	sort.Strings(out)
	return out, nil
}

// checkGroupMappings validates group mappings against the connection's
// tenants and returns them in a canonical order (by group, then tenant);
// never nil.
func checkGroupMappings(in []RoleMapping, tenants []string) ([]RoleMapping, error) {
	if len(in) > maxSCIMMappings {
		return nil, Invalid("group_mappings", "at most %d mappings", maxSCIMMappings)
	}
	out := make([]RoleMapping, 0, len(in))
	for _, m := range in {
		g := strings.TrimSpace(m.Group)
		if g == "" || len(g) > maxSCIMGroupName {
			return nil, Invalid("group_mappings", "group is required (at most %d characters)", maxSCIMGroupName)
		}
		if hasHiddenRuneInName(g) {
			return nil, Invalid("group_mappings", "a group "+hiddenMessage)
		}
		if !ValidTenantID(m.Tenant) {
			return nil, Invalid("group_mappings", "tenant %q is not a valid tenant id", m.Tenant)
		}
		if !slices.Contains(tenants, m.Tenant) {
			return nil, Invalid("group_mappings", "tenant %q is not one of the connection's tenants %v", m.Tenant, tenants)
		}
		r, err := ParseRole(string(m.Role))
		if err != nil {
			return nil, Invalid("group_mappings", "unknown role %q (viewer, editor or admin)", m.Role)
		}
		if slices.ContainsFunc(out, func(o RoleMapping) bool { return o.Group == g && o.Tenant == m.Tenant }) {
			return nil, Invalid("group_mappings", "group %q is mapped twice in tenant %q", g, m.Tenant)
		}
		out = append(out, RoleMapping{Group: g, Tenant: m.Tenant, Role: r})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Tenant < out[j].Tenant
	})
	return out, nil
}

// EvolveSCIMConnection applies one event to a connection's state.
func EvolveSCIMConnection(c SCIMConnection, e Event) SCIMConnection {
	switch ev := Deref(e).(type) {
	case SCIMConnectionCreated:
		c = SCIMConnection{
			ID: ev.ConnectionID, Name: ev.Name, Provider: ev.Provider, Tenants: ev.Tenants, GroupMappings: ev.GroupMappings,
			TokenHash: ev.TokenHash, Platform: ev.Platform, OwnerID: ev.OwnerID, OwnerKeyID: ev.OwnerKeyID,
			CreatedAt: ev.CreatedAt, UpdatedAt: ev.CreatedAt, Version: c.Version,
		}
	case SCIMTokenRotated:
		c.TokenHash, c.RotatedAt, c.OwnerID, c.OwnerKeyID = ev.TokenHash, ev.RotatedAt, ev.OwnerID, ev.OwnerKeyID
	case SCIMConnectionUpdated:
		c.Tenants, c.GroupMappings, c.Platform, c.UpdatedAt = ev.Tenants, ev.GroupMappings, ev.Platform, ev.UpdatedAt
	case SCIMConnectionDeleted:
		c.Deleted = true
	default:
		return c
	}
	c.Version++
	return c
}

// ---------------------------------------------------------------- groups

// SCIMGroup is the state of a group a connection pushed.
type SCIMGroup struct {
	ID           string
	ConnectionID string
	DisplayName  string
	ExternalID   string
	Members      []string // user IDs, sorted, unique
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Deleted      bool
	Version      uint64
}

// Exists reports whether the group was created and not deleted.
func (g SCIMGroup) Exists() bool { return g.ID != "" && !g.Deleted }

// HasMember reports whether user id is a member.
func (g SCIMGroup) HasMember(id string) bool {
	_, ok := slices.BinarySearch(g.Members, id)
	return ok
}

// SCIMGroupCommand is a command on a group: one of the types below.
type SCIMGroupCommand interface{ scimGroupCommand() }

// Commands on a group. Whether members are users of the connection is the
// caller's to check (it reads the links).
type (
	// CreateSCIMGroup creates a group.
	CreateSCIMGroup struct {
		GroupID      string
		ConnectionID string
		DisplayName  string
		ExternalID   string
		Members      []string
		Now          time.Time
	}
	// RenameSCIMGroup sets the displayName and externalId.
	RenameSCIMGroup struct {
		DisplayName string
		ExternalID  string
		Now         time.Time
	}
	// ChangeSCIMGroupMembers adds and removes members; adding a member or
	// removing a non-member changes nothing.
	ChangeSCIMGroupMembers struct {
		Add, Remove []string
		Now         time.Time
	}
	// DeleteSCIMGroup deletes the group.
	DeleteSCIMGroup struct{}
)

func (CreateSCIMGroup) scimGroupCommand()        {}
func (RenameSCIMGroup) scimGroupCommand()        {}
func (ChangeSCIMGroupMembers) scimGroupCommand() {}
func (DeleteSCIMGroup) scimGroupCommand()        {}

func checkGroupName(name, externalID string) (string, error) {
	n := strings.TrimSpace(name)
	if n == "" || utf8.RuneCountInString(n) > maxSCIMGroupName {
		return "", Invalid("displayName", "is required (at most %d characters)", maxSCIMGroupName)
	}
	if len(externalID) > maxSCIMText {
		return "", Invalid("externalId", "at most %d bytes", maxSCIMText)
	}
	return n, nil
}

func checkMemberIDs(ids []string) ([]string, error) {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id == "" || len(id) > 128 {
			return nil, Invalid("members", "every member needs a user id")
		}
		out = append(out, id)
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// DecideSCIMGroup decides a command against a group's state. A group that
// does not exist is ErrNotFound for every command but the creation.
func DecideSCIMGroup(g SCIMGroup, cmd SCIMGroupCommand) ([]Event, error) {
	if cr, ok := cmd.(CreateSCIMGroup); ok {
		if g.ID != "" {
			return nil, ErrAlreadyExists
		}
		if cr.GroupID == "" || cr.ConnectionID == "" {
			return nil, Invalid("group", "id and connection are required")
		}
		name, err := checkGroupName(cr.DisplayName, cr.ExternalID)
		if err != nil {
			return nil, err
		}
		members, err := checkMemberIDs(cr.Members)
		if err != nil {
			return nil, err
		}
		if len(members) > maxSCIMMembers {
			return nil, Invalid("members", "at most %d members", maxSCIMMembers)
		}
		if len(members) == 0 {
			members = nil
		}
		return []Event{SCIMGroupCreated{
			GroupID: cr.GroupID, ConnectionID: cr.ConnectionID, DisplayName: name, ExternalID: cr.ExternalID,
			Members: members, CreatedAt: cr.Now.UTC(),
		}}, nil
	}
	if !g.Exists() {
		return nil, ErrNotFound
	}
	switch cm := cmd.(type) {
	case RenameSCIMGroup:
		name, err := checkGroupName(cm.DisplayName, cm.ExternalID)
		if err != nil {
			return nil, err
		}
		if name == g.DisplayName && cm.ExternalID == g.ExternalID {
			return nil, nil
		}
		return []Event{SCIMGroupRenamed{GroupID: g.ID, DisplayName: name, ExternalID: cm.ExternalID, RenamedAt: cm.Now.UTC()}}, nil
	case ChangeSCIMGroupMembers:
		add, err := checkMemberIDs(cm.Add)
		if err != nil {
			return nil, err
		}
		remove, err := checkMemberIDs(cm.Remove)
		if err != nil {
			return nil, err
		}
		// add and remove are sorted (checkMemberIDs): each is searched in
		// the other by halves, not from the start — a PUT of a group of
		// 100,000 members may add and remove as many.
		var ev SCIMGroupMembersChanged
		for _, id := range add {
			if _, both := slices.BinarySearch(remove, id); !g.HasMember(id) && !both {
				ev.Added = append(ev.Added, id)
			}
		}
		for _, id := range remove {
			if _, both := slices.BinarySearch(add, id); g.HasMember(id) && !both {
				ev.Removed = append(ev.Removed, id)
			}
		}
		if len(ev.Added) == 0 && len(ev.Removed) == 0 {
			return nil, nil
		}
		// The group as it will be: the removed are members, the added
		// are not (a PUT replacing every member of a full group is no
		// more than it).
		if len(g.Members)-len(ev.Removed)+len(ev.Added) > maxSCIMMembers {
			return nil, Invalid("members", "at most %d members", maxSCIMMembers)
		}
		ev.GroupID, ev.ChangedAt = g.ID, cm.Now.UTC()
		return []Event{ev}, nil
	case DeleteSCIMGroup:
		return []Event{SCIMGroupDeleted{GroupID: g.ID}}, nil
	}
	return nil, Invalid("command", "unknown SCIM group command %T", cmd)
}

// EvolveSCIMGroup applies one event to a group's state. It never mutates
// the Members slice of its input.
func EvolveSCIMGroup(g SCIMGroup, e Event) SCIMGroup {
	switch ev := Deref(e).(type) {
	case SCIMGroupCreated:
		members := slices.Clone(ev.Members)
		sort.Strings(members)
		g = SCIMGroup{
			ID: ev.GroupID, ConnectionID: ev.ConnectionID, DisplayName: ev.DisplayName, ExternalID: ev.ExternalID,
			Members: slices.Compact(members), CreatedAt: ev.CreatedAt, UpdatedAt: ev.CreatedAt, Version: g.Version,
		}
	case SCIMGroupRenamed:
		g.DisplayName, g.ExternalID, g.UpdatedAt = ev.DisplayName, ev.ExternalID, ev.RenamedAt
	case SCIMGroupMembersChanged:
		// A set of the removed, not a search of the list per member (a
		// group may have 100,000 members, an event remove as many): every
		// replica applies this on every change.
		removed := make(map[string]bool, len(ev.Removed))
		for _, id := range ev.Removed {
			removed[id] = true
		}
		members := make([]string, 0, len(g.Members)+len(ev.Added))
		for _, id := range g.Members {
			if !removed[id] {
				members = append(members, id)
			}
		}
		members = append(members, ev.Added...)
		sort.Strings(members)
		g.Members, g.UpdatedAt = slices.Compact(members), ev.ChangedAt
	case SCIMGroupDeleted:
		g.Deleted = true
	default:
		return g
	}
	g.Version++
	return g
}

// ---------------------------------------------------------------- users

// SCIMLinkKey is the aggregate ID of connection connID's record of user
// userID: hex SHA-256 (first 16 bytes) of both, so that neither needs
// escaping in a subject.
func SCIMLinkKey(connID, userID string) string {
	sum := sha256.Sum256([]byte("scim-user\x00" + connID + "\x00" + userID))
	return hex.EncodeToString(sum[:16])
}

// SCIMLink is the state of a connection's record of a user (the scim_user
// aggregate).
type SCIMLink struct {
	ConnectionID string
	UserID       string
	Method       string
	Profile      SCIMProfile
	LinkedAt     time.Time
	UpdatedAt    time.Time
	Linked       bool // false before the first link and after an unlink
	Version      uint64
}

// SCIMLinkCommand is a command on a link: one of the types below.
type SCIMLinkCommand interface{ scimLinkCommand() }

// Commands on a link.
type (
	// LinkSCIMUser makes the user one of the connection's (again, after an
	// unlink).
	LinkSCIMUser struct {
		ConnectionID, UserID, Method string
		Profile                      SCIMProfile
		Now                          time.Time
	}
	// UpdateSCIMUser records new SCIM attributes.
	UpdateSCIMUser struct {
		Profile SCIMProfile
		Now     time.Time
	}
	// UnlinkSCIMUser ends the link.
	UnlinkSCIMUser struct{}
)

func (LinkSCIMUser) scimLinkCommand()   {}
func (UpdateSCIMUser) scimLinkCommand() {}
func (UnlinkSCIMUser) scimLinkCommand() {}

// CheckSCIMProfile validates the SCIM attributes a connection keeps.
func CheckSCIMProfile(p SCIMProfile) error {
	if strings.TrimSpace(p.UserName) == "" {
		return Invalid("userName", "is required")
	}
	for _, f := range []struct{ name, v string }{
		{"userName", p.UserName}, {"externalId", p.ExternalID}, {"displayName", p.DisplayName},
		{"name.formatted", p.Formatted}, {"name.givenName", p.GivenName}, {"name.familyName", p.FamilyName},
		{"employeeNumber", p.EmployeeNumber}, {"department", p.Department},
	} {
		if len(f.v) > maxSCIMText {
			return Invalid(f.name, "at most %d bytes", maxSCIMText)
		}
	}
	if len(p.Emails) > maxSCIMEmails {
		return Invalid("emails", "at most %d addresses", maxSCIMEmails)
	}
	for _, e := range p.Emails {
		if e.Value == "" || len(e.Value) > 320 || len(e.Type) > 64 {
			return Invalid("emails", "every address needs a value (at most 320 bytes) and a type of at most 64")
		}
		if hasHiddenRune(e.Value) {
			return Invalid("emails", "an address "+hiddenMessage)
		}
	}
	return nil
}

// DecideSCIMLink decides a command against a link's state.
func DecideSCIMLink(l SCIMLink, cmd SCIMLinkCommand) ([]Event, error) {
	switch cm := cmd.(type) {
	case LinkSCIMUser:
		if l.Linked {
			return nil, ErrAlreadyExists
		}
		if cm.ConnectionID == "" || cm.UserID == "" {
			return nil, Invalid("user", "connection and user are required")
		}
		switch cm.Method {
		case SCIMLinkCreated, SCIMLinkIdentity, SCIMLinkUsername, SCIMLinkRehire:
		default:
			return nil, Invalid("method", "unknown link method %q", cm.Method)
		}
		if err := CheckSCIMProfile(cm.Profile); err != nil {
			return nil, err
		}
		return []Event{SCIMUserLinked{ConnectionID: cm.ConnectionID, UserID: cm.UserID, Method: cm.Method, Profile: cm.Profile, LinkedAt: cm.Now.UTC()}}, nil
	case UpdateSCIMUser:
		if !l.Linked {
			return nil, ErrNotFound
		}
		if err := CheckSCIMProfile(cm.Profile); err != nil {
			return nil, err
		}
		if cm.Profile.Equal(l.Profile) {
			return nil, nil
		}
		return []Event{SCIMUserUpdated{ConnectionID: l.ConnectionID, UserID: l.UserID, Profile: cm.Profile, UpdatedAt: cm.Now.UTC()}}, nil
	case UnlinkSCIMUser:
		if !l.Linked {
			return nil, ErrNotFound
		}
		return []Event{SCIMUserUnlinked{ConnectionID: l.ConnectionID, UserID: l.UserID}}, nil
	}
	return nil, Invalid("command", "unknown SCIM user command %T", cmd)
}

// EvolveSCIMLink applies one event to a link's state.
func EvolveSCIMLink(l SCIMLink, e Event) SCIMLink {
	switch ev := Deref(e).(type) {
	case SCIMUserLinked:
		l = SCIMLink{
			ConnectionID: ev.ConnectionID, UserID: ev.UserID, Method: ev.Method, Profile: ev.Profile,
			LinkedAt: ev.LinkedAt, UpdatedAt: ev.LinkedAt, Linked: true, Version: l.Version,
		}
	case SCIMUserUpdated:
		l.Profile, l.UpdatedAt = ev.Profile, ev.UpdatedAt
	case SCIMUserUnlinked:
		l.Linked = false
	default:
		return l
	}
	l.Version++
	return l
}
