package domain

import (
	"fmt"
	"sort"
	"strings"
)

// Permission is one capability inside a tenant, as listed in the product
// documentation ("Key Permissions").
type Permission string

// The permissions of the product documentation, and audit:read.
const (
	NodesRead     Permission = "nodes:read"
	NodesWrite    Permission = "nodes:write"
	FindingsRead  Permission = "findings:read"
	FindingsWrite Permission = "findings:write"
	JobsRead      Permission = "jobs:read"
	JobsWrite     Permission = "jobs:write"
	ReportsRead   Permission = "reports:read"
	AdminAll      Permission = "admin:*"
	// AuditRead reads the audit log and the access history of a tenant
	// (GET /api/v1/audit/events, the access endpoints, credential checks).
	// admin:* includes it; the viewer and editor roles do not.
	AuditRead Permission = "audit:read"
)

// AllPermissions lists every permission in a stable order. New permissions
// are appended: a PermissionSet's bits are their positions here, and
// snapshots store sets as bits.
var AllPermissions = []Permission{
	NodesRead, NodesWrite, FindingsRead, FindingsWrite, JobsRead, JobsWrite, ReportsRead, AdminAll,
	AuditRead,
}

// PermissionSet is a bit set of permissions, cheap to copy and to test on the
// request path. AdminAll implies every other permission.
type PermissionSet uint16

var permissionBits = func() map[Permission]PermissionSet {
	m := make(map[Permission]PermissionSet, len(AllPermissions))
	for i, p := range AllPermissions {
		m[p] = 1 << i
	}
	return m
}()

// ParsePermission returns the permission named s, or ErrUnknownPermission.
func ParsePermission(s string) (Permission, error) {
	p := Permission(s)
	if _, ok := permissionBits[p]; !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownPermission, s)
	}
	return p, nil
}

// SetOf builds a set from permissions; unknown ones are ignored.
func SetOf(perms ...Permission) PermissionSet {
	var s PermissionSet
	for _, p := range perms {
		s |= permissionBits[p]
	}
	return s
}

// Has reports whether the set grants p. AdminAll grants everything.
func (s PermissionSet) Has(p Permission) bool {
	if s&permissionBits[AdminAll] != 0 {
		return true
	}
	b, ok := permissionBits[p]
	return ok && s&b != 0
}

// Covers reports whether s grants every permission of other.
func (s PermissionSet) Covers(other PermissionSet) bool {
	if s.Has(AdminAll) {
		return true
	}
	return other&^s == 0
}

// List returns the permissions in the set in AllPermissions order.
func (s PermissionSet) List() []Permission {
	out := make([]Permission, 0, len(AllPermissions))
	for _, p := range AllPermissions {
		if s&permissionBits[p] != 0 {
			out = append(out, p)
		}
	}
	return out
}

// String joins the permissions with commas (used in the X-Infracast-Permissions header).
func (s PermissionSet) String() string {
	l := s.List()
	parts := make([]string, len(l))
	for i, p := range l {
		parts[i] = string(p)
	}
	return strings.Join(parts, ",")
}

// Role is a per-tenant role.
type Role string

// The tenant roles of the contract.
const (
	RoleViewer Role = "viewer"
	RoleEditor Role = "editor"
	RoleAdmin  Role = "admin"
)

var rolePermissions = map[Role]PermissionSet{
	RoleViewer: SetOf(NodesRead, FindingsRead, JobsRead, ReportsRead),
	RoleEditor: SetOf(NodesRead, FindingsRead, JobsRead, ReportsRead, NodesWrite, FindingsWrite, JobsWrite),
	RoleAdmin:  SetOf(AdminAll),
}

// ParseRole returns the tenant role named s, or ErrUnknownRole.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if _, ok := rolePermissions[r]; !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownRole, s)
	}
	return r, nil
}

// Permissions returns what the role grants inside its tenant.
func (r Role) Permissions() PermissionSet { return rolePermissions[r] }

// GlobalRole is a platform-wide role. "admin" makes a platform admin: it manages
// users, tenants and SSO and holds admin:* in every tenant.
type GlobalRole string

// GlobalAdmin is the platform admin role.
const GlobalAdmin GlobalRole = "admin"

// ParseGlobalRole returns the global role named s, or ErrUnknownRole.
func ParseGlobalRole(s string) (GlobalRole, error) {
	if GlobalRole(s) != GlobalAdmin {
		return "", fmt.Errorf("%w: %q", ErrUnknownRole, s)
	}
	return GlobalAdmin, nil
}

// TenantRole is a role held in one tenant.
type TenantRole struct {
	Tenant string `json:"id"`
	Role   Role   `json:"role"`
}

// SortTenantRoles orders tenant roles by tenant ID, for stable output.
func SortTenantRoles(trs []TenantRole) {
	sort.Slice(trs, func(i, j int) bool { return trs[i].Tenant < trs[j].Tenant })
}
