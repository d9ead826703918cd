package scim

import (
	"context"
	"slices"
	"time"
)

// Schema and message URNs.
const (
	UserSchema       = "urn:ietf:params:scim:schemas:core:2.0:User"
	GroupSchema      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	EnterpriseSchema = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	ListSchema       = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	PatchOpSchema    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	ErrorSchema      = "urn:ietf:params:scim:api:messages:2.0:Error"
	spcSchema        = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	resourceTypeURN  = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	schemaURN        = "urn:ietf:params:scim:schemas:core:2.0:Schema"
)

// Conn is the authenticated SCIM connection a request came in on. The
// authentication middleware in front of the handlers sets it with SetConn;
// the package only passes it to the Backend (and names its ID in logs).
type Conn struct {
	ID      string
	Tenants []string
}

// User is a SCIM User (RFC 7643 4.1) as far as this service keeps it.
type User struct {
	ID         string
	ExternalID string
	UserName   string
	Name       Name
	// DisplayName is the name shown for the user.
	DisplayName string
	Emails      []Email
	Active      bool
	// Password is write-only: set on input when the client sent one (and
	// Options.AcceptPasswords), never returned by the package. A Backend
	// leaves it empty in what it returns; it is ignored there anyway.
	Password string
	// Groups is read-only: the groups the user is a member of, as the
	// Backend reports them.
	Groups     []GroupRef
	Enterprise Enterprise
	Meta       Meta
}

// Name is the user's name.
type Name struct {
	Formatted, GivenName, FamilyName string
}

// Email is one of a user's addresses; Type is "work", "home", "other" or
// anything the client sent.
type Email struct {
	Value   string
	Type    string
	Primary bool
}

// GroupRef names a group a user is a member of.
type GroupRef struct {
	Value   string // the group's id
	Display string
}

// Enterprise holds the attributes of the enterprise extension
// (urn:ietf:params:scim:schemas:extension:enterprise:2.0:User) that are kept.
// The extension's other attributes (costCenter, organization, division,
// manager) are accepted and ignored.
type Enterprise struct {
	EmployeeNumber string
	Department     string
}

// Meta is a resource's metadata. The package fills in resourceType and
// location itself.
type Meta struct {
	Created, LastModified time.Time
	// Version is opaque to the package and never sent (ETags are not
	// supported); a Backend may put whatever lets it tell, in an update,
	// whether Base is still current (a stream sequence, say).
	Version string
}

// Group is a SCIM Group (RFC 7643 4.2).
type Group struct {
	ID          string
	ExternalID  string
	DisplayName string
	Members     []Member
	Meta        Meta
}

// Member is a member of a group.
type Member struct {
	Value   string // the member's id
	Display string // read-only: set by the Backend, ignored on input
	Type    string // "User" or "Group"; may be empty on input
}

// Query is a list request: the parsed filter (nil: every resource), the
// 1-based startIndex and the count (0: only totalResults is wanted). The
// package has already clamped Count to Options.MaxResults.
type Query struct {
	Filter     *Filter
	StartIndex int
	Count      int
}

// Page is one page of a list and the number of resources matching in all.
type Page[T any] struct {
	Resources    []T
	TotalResults int
}

// The attribute names in UserUpdate.Changed.
const (
	AttrUserName    = "userName"
	AttrName        = "name"
	AttrDisplayName = "displayName"
	AttrEmails      = "emails"
	AttrActive      = "active"
	AttrExternalID  = "externalId"
	AttrPassword    = "password"
	AttrEnterprise  = EnterpriseSchema
	AttrMembers     = "members"
)

// UserUpdate is a PUT or PATCH of a user, already resolved: Base is the
// user as GetUser returned it, Result the user the request asks for, and
// Changed the top-level attributes that differ (AttrUserName, AttrName,
// AttrDisplayName, AttrEmails, AttrActive, AttrExternalID, AttrPassword —
// set whenever a password was sent — and AttrEnterprise). Every operation
// of a PATCH was applied to a copy of Base and checked before the Backend
// is called, once: a request either changes everything it asks for or
// nothing.
type UserUpdate struct {
	ID      string
	Method  string // "PUT" or "PATCH"
	Base    User
	Result  User
	Changed []string
}

// Has reports whether attr is among the changed attributes.
func (u UserUpdate) Has(attr string) bool { return slices.Contains(u.Changed, attr) }

// GroupUpdate is a PUT or PATCH of a group, resolved like UserUpdate.
// Changed may hold AttrDisplayName, AttrExternalID and AttrMembers; Added
// and Removed are the member changes (by Member.Value) from Base to Result,
// so a Backend can apply them to the group as it is now.
type GroupUpdate struct {
	ID      string
	Method  string
	Base    Group
	Result  Group
	Changed []string
	Added   []Member
	Removed []Member
}

// Has reports whether attr is among the changed attributes.
func (g GroupUpdate) Has(attr string) bool { return slices.Contains(g.Changed, attr) }

// Backend is the rest of the service, as the SCIM handlers see it. Every
// method gets the request's context and the authenticated connection, and
// must confine itself to what that connection may see and change (a
// resource outside it is ErrNotFound).
//
// Errors: return ErrNotFound, ErrUniqueness, ErrConflict, ErrForbidden,
// ErrUnavailable (or wrap them with %w), or an *Error made with Errorf for
// anything else the client should read (say Errorf(400, InvalidValue,
// "member %q is not a user of this connection", id)). Any other error is
// answered 500 and logged with the connection's ID.
type Backend interface {
	// CreateUser stores a new user (u.ID is empty) and returns it as
	// stored, with its ID and Meta. A userName already taken (userName
	// compares without regard to case) is ErrUniqueness. u.Active is true
	// unless the client sent false.
	CreateUser(ctx context.Context, conn Conn, u User) (User, error)
	// GetUser returns a user by ID.
	GetUser(ctx context.Context, conn Conn, id string) (User, error)
	// ListUsers returns the page of users matching q.Filter, in a stable
	// order (the same for every page), starting at the 1-based
	// q.StartIndex, at most q.Count of them; and how many match in all.
	// Filter.Equality finds the term an index can answer (userName eq …,
	// externalId eq …, emails[type eq "work"].value eq …); Filter.MatchUser
	// decides the rest. Paginate does both over a slice.
	ListUsers(ctx context.Context, conn Conn, q Query) (Page[User], error)
	// UpdateUser applies a PUT or a PATCH (see UserUpdate) and returns the
	// user as stored. A Backend that finds Base stale may return
	// ErrConflict; the request is then resolved again on a fresh GetUser.
	UpdateUser(ctx context.Context, conn Conn, up UserUpdate) (User, error)
	// DeleteUser removes (or deactivates) a user.
	DeleteUser(ctx context.Context, conn Conn, id string) error

	// CreateGroup, GetGroup, ListGroups, UpdateGroup and DeleteGroup are
	// the same for groups. Member values name users by their IDs; an
	// unknown member is the Backend's to refuse (400 InvalidValue).
	CreateGroup(ctx context.Context, conn Conn, g Group) (Group, error)
	GetGroup(ctx context.Context, conn Conn, id string) (Group, error)
	ListGroups(ctx context.Context, conn Conn, q Query) (Page[Group], error)
	UpdateGroup(ctx context.Context, conn Conn, up GroupUpdate) (Group, error)
	DeleteGroup(ctx context.Context, conn Conn, id string) error
}
