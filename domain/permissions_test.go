package domain

import (
	"errors"
	"reflect"
	"testing"
)

var (
	viewerPerms = []Permission{NodesRead, FindingsRead, JobsRead, ReportsRead}
	editorPerms = []Permission{NodesRead, FindingsRead, JobsRead, ReportsRead, NodesWrite, FindingsWrite, JobsWrite}
)

func TestPermissionNames(t *testing.T) {
	want := map[Permission]string{
		NodesRead:     "nodes:read",
		NodesWrite:    "nodes:write",
		FindingsRead:  "findings:read",
		FindingsWrite: "findings:write",
		JobsRead:      "jobs:read",
		JobsWrite:     "jobs:write",
		ReportsRead:   "reports:read",
		AdminAll:      "admin:*",
		AuditRead:     "audit:read",
	}
	if len(AllPermissions) != len(want) {
		t.Fatalf("AllPermissions has %d entries, want %d", len(AllPermissions), len(want))
	}
	for _, p := range AllPermissions {
		if string(p) != want[p] {
			t.Errorf("permission %q not in the contract", p)
		}
	}
}

// The role table of the contract, permission by permission.
func TestRolePermissions(t *testing.T) {
	tests := []struct {
		role Role
		has  []Permission
		not  []Permission
	}{
		{
			role: RoleViewer,
			has:  viewerPerms,
			not:  []Permission{NodesWrite, FindingsWrite, JobsWrite, AdminAll, AuditRead},
		},
		{
			role: RoleEditor,
			has:  editorPerms,
			not:  []Permission{AdminAll, AuditRead},
		},
		{
			role: RoleAdmin,
			has:  AllPermissions,
		},
	}
	for _, tc := range tests {
		t.Run(string(tc.role), func(t *testing.T) {
			ps := tc.role.Permissions()
			for _, p := range tc.has {
				if !ps.Has(p) {
					t.Errorf("%s lacks %s", tc.role, p)
				}
			}
			for _, p := range tc.not {
				if ps.Has(p) {
					t.Errorf("%s has %s", tc.role, p)
				}
			}
		})
	}

	// The sets themselves, exactly.
	if got, want := RoleViewer.Permissions(), SetOf(viewerPerms...); got != want {
		t.Errorf("viewer = %q, want %q", got, want)
	}
	if got, want := RoleEditor.Permissions(), SetOf(editorPerms...); got != want {
		t.Errorf("editor = %q, want %q", got, want)
	}
	if got, want := RoleAdmin.Permissions(), SetOf(AdminAll); got != want {
		t.Errorf("admin = %q, want %q", got, want)
	}
	if got := Role("owner").Permissions(); got != 0 {
		t.Errorf("unknown role = %q, want nothing", got)
	}
	if got := Role("").Permissions(); got != 0 {
		t.Errorf("empty role = %q, want nothing", got)
	}
}

func TestAdminHasEverything(t *testing.T) {
	admin := SetOf(AdminAll)
	for _, p := range append(AllPermissions, "reports:write", "tenants:manage", "", "anything") {
		if !admin.Has(p) {
			t.Errorf("admin:* lacks %q", p)
		}
	}
}

func TestHas(t *testing.T) {
	if SetOf().Has(NodesRead) {
		t.Error("empty set has nodes:read")
	}
	if SetOf(NodesRead).Has(NodesWrite) {
		t.Error("nodes:read implies nodes:write")
	}
	if SetOf(NodesWrite).Has(NodesRead) {
		t.Error("nodes:write implies nodes:read (only roles combine them)")
	}
	if RoleEditor.Permissions().Has("reports:write") {
		t.Error("editor has an unknown permission")
	}
	if SetOf("bogus", NodesRead) != SetOf(NodesRead) {
		t.Error("SetOf does not ignore unknown permissions")
	}
}

func TestParsePermission(t *testing.T) {
	for _, name := range []string{
		"nodes:read", "nodes:write", "findings:read", "findings:write",
		"jobs:read", "jobs:write", "reports:read", "admin:*", "audit:read",
	} {
		p, err := ParsePermission(name)
		if err != nil || string(p) != name {
			t.Errorf("ParsePermission(%q) = %q, %v", name, p, err)
		}
	}
	for _, name := range []string{
		"", "nodes", "nodes:", "Nodes:read", "nodes:read ", " nodes:read",
		"reports:write", "admin", "admin:all", "*", "nodes:*", "audit", "audit:*", "Audit:read",
	} {
		p, err := ParsePermission(name)
		if !errors.Is(err, ErrUnknownPermission) {
			t.Errorf("ParsePermission(%q) error = %v, want ErrUnknownPermission", name, err)
		}
		if p != "" {
			t.Errorf("ParsePermission(%q) = %q, want empty", name, p)
		}
	}
}

func TestParseRole(t *testing.T) {
	for _, name := range []string{"viewer", "editor", "admin"} {
		r, err := ParseRole(name)
		if err != nil || string(r) != name {
			t.Errorf("ParseRole(%q) = %q, %v", name, r, err)
		}
	}
	for _, name := range []string{"", "Viewer", "owner", "root", " admin"} {
		r, err := ParseRole(name)
		if !errors.Is(err, ErrUnknownRole) || r != "" {
			t.Errorf("ParseRole(%q) = %q, %v; want ErrUnknownRole", name, r, err)
		}
	}
}

func TestParseGlobalRole(t *testing.T) {
	if r, err := ParseGlobalRole("admin"); err != nil || r != GlobalAdmin {
		t.Errorf("ParseGlobalRole(admin) = %q, %v", r, err)
	}
	for _, name := range []string{"", "viewer", "editor", "Admin", "root"} {
		r, err := ParseGlobalRole(name)
		if !errors.Is(err, ErrUnknownRole) || r != "" {
			t.Errorf("ParseGlobalRole(%q) = %q, %v; want ErrUnknownRole", name, r, err)
		}
	}
}

func TestCovers(t *testing.T) {
	viewer, editor, admin := RoleViewer.Permissions(), RoleEditor.Permissions(), RoleAdmin.Permissions()
	tests := []struct {
		name      string
		s, other  PermissionSet
		wantCover bool
	}{
		{"editor covers viewer", editor, viewer, true},
		{"viewer does not cover editor", viewer, editor, false},
		{"admin covers editor", admin, editor, true},
		{"admin covers admin", admin, admin, true},
		{"editor does not cover admin", editor, admin, false},
		{"viewer covers itself", viewer, viewer, true},
		{"anything covers nothing", 0, 0, true},
		{"nothing does not cover one", 0, SetOf(NodesRead), false},
		{"one covers one", SetOf(NodesRead), SetOf(NodesRead), true},
		{"disjoint", SetOf(NodesRead), SetOf(JobsRead), false},
		{"partial overlap", SetOf(NodesRead, JobsRead), SetOf(JobsRead, JobsWrite), false},
		{"admin with others covers all", SetOf(AdminAll, NodesRead), SetOf(AllPermissions...), true},
		{"all non-admin does not cover admin", SetOf(AllPermissions[:7]...), admin, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.Covers(tc.other); got != tc.wantCover {
				t.Fatalf("%q.Covers(%q) = %v, want %v", tc.s, tc.other, got, tc.wantCover)
			}
		})
	}
}

func TestListAndString(t *testing.T) {
	tests := []struct {
		name string
		set  PermissionSet
		list []Permission
		str  string
	}{
		{"empty", 0, []Permission{}, ""},
		{"viewer", RoleViewer.Permissions(), viewerPerms, "nodes:read,findings:read,jobs:read,reports:read"},
		{
			"editor in AllPermissions order", RoleEditor.Permissions(),
			[]Permission{NodesRead, NodesWrite, FindingsRead, FindingsWrite, JobsRead, JobsWrite, ReportsRead},
			"nodes:read,nodes:write,findings:read,findings:write,jobs:read,jobs:write,reports:read",
		},
		{"admin lists only admin:*", RoleAdmin.Permissions(), []Permission{AdminAll}, "admin:*"},
		{"insertion order does not matter", SetOf(ReportsRead, AdminAll, NodesRead), []Permission{NodesRead, ReportsRead, AdminAll}, "nodes:read,reports:read,admin:*"},
		{"all", SetOf(AllPermissions...), AllPermissions, "nodes:read,nodes:write,findings:read,findings:write,jobs:read,jobs:write,reports:read,admin:*,audit:read"},
		{"audit:read alone", SetOf(AuditRead), []Permission{AuditRead}, "audit:read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.set.List(); !reflect.DeepEqual(got, tc.list) {
				t.Errorf("List() = %v, want %v", got, tc.list)
			}
			if got := tc.set.String(); got != tc.str {
				t.Errorf("String() = %q, want %q", got, tc.str)
			}
		})
	}
}

// Every permission parses back from its own name, and a set survives String → ParsePermission.
func TestStringRoundTrip(t *testing.T) {
	set := RoleEditor.Permissions()
	var back []Permission
	for _, p := range set.List() {
		q, err := ParsePermission(string(p))
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, q)
	}
	if SetOf(back...) != set {
		t.Fatalf("round trip gave %q, want %q", SetOf(back...), set)
	}
}

func TestSortTenantRoles(t *testing.T) {
	trs := []TenantRole{{"c", RoleViewer}, {"a", RoleAdmin}, {"b", RoleEditor}}
	SortTenantRoles(trs)
	want := []TenantRole{{"a", RoleAdmin}, {"b", RoleEditor}, {"c", RoleViewer}}
	if !reflect.DeepEqual(trs, want) {
		t.Fatalf("got %v, want %v", trs, want)
	}
}

func TestRoutePermission(t *testing.T) {
	tests := []struct {
		method, resource string
		want             Permission
	}{
		// nodes
		{"GET", "nodes", NodesRead},
		{"GET", "nodes/n-1", NodesRead},
		{"HEAD", "nodes/n-1", NodesRead},
		{"POST", "nodes", NodesWrite},
		{"PUT", "nodes/n-1", NodesWrite},
		{"PATCH", "nodes/n-1", NodesWrite},
		{"DELETE", "nodes/n-1", NodesWrite},
		{"GET", "/nodes/n-1", NodesRead},
		{"DELETE", "/nodes/n-1", NodesWrite},
		{"GET", "nodes/n-1/agents/a-2/logs", NodesRead},
		{"POST", "nodes/n-1/agents/a-2/restart", NodesWrite},
		{"GET", "nodes/", NodesRead},

		// findings
		{"GET", "findings", FindingsRead},
		{"HEAD", "findings/f-9", FindingsRead},
		{"GET", "/findings/f-9", FindingsRead},
		{"POST", "findings/f-9/accept-risk", FindingsWrite},
		{"PUT", "findings/f-9", FindingsWrite},
		{"PATCH", "/findings/f-9", FindingsWrite},
		{"DELETE", "findings/f-9", FindingsWrite},

		// jobs
		{"GET", "jobs", JobsRead},
		{"HEAD", "/jobs/j-1", JobsRead},
		{"GET", "jobs/j-1/runs/r-1", JobsRead},
		{"POST", "jobs", JobsWrite},
		{"PUT", "jobs/j-1", JobsWrite},
		{"PATCH", "jobs/j-1", JobsWrite},
		{"DELETE", "/jobs/j-1", JobsWrite},

		// reports: read for every method
		{"GET", "reports", ReportsRead},
		{"HEAD", "reports/r-1", ReportsRead},
		{"POST", "reports/generate", ReportsRead},
		{"PUT", "/reports/r-1", ReportsRead},
		{"PATCH", "reports/r-1", ReportsRead},
		{"DELETE", "reports/r-1/pdf", ReportsRead},

		// anything else: admin:*
		{"GET", "", AdminAll},
		{"GET", "/", AdminAll},
		{"GET", "settings", AdminAll},
		{"GET", "users/u-1", AdminAll},
		{"POST", "/sso/config", AdminAll},
		{"GET", "nodesx", AdminAll},
		{"GET", "node/n-1", AdminAll},
		{"GET", "Nodes/n-1", AdminAll},
		{"GET", "reporting", AdminAll},
		{"GET", "//nodes", AdminAll},
		{"GET", "api/nodes", AdminAll},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.resource, func(t *testing.T) {
			if got := RoutePermission(tc.method, tc.resource); got != tc.want {
				t.Fatalf("RoutePermission(%q, %q) = %q, want %q", tc.method, tc.resource, got, tc.want)
			}
		})
	}
}

// The route table and the role table fit together: a viewer may read every
// tenant resource and write none, an editor may write nodes, findings and jobs.
func TestRoutePolicyWithRoles(t *testing.T) {
	tests := []struct {
		role             Role
		method, resource string
		allowed          bool
	}{
		{RoleViewer, "GET", "nodes/n-1", true},
		{RoleViewer, "POST", "nodes", false},
		{RoleViewer, "POST", "reports/generate", true},
		{RoleViewer, "GET", "settings", false},
		{RoleEditor, "DELETE", "findings/f-1", true},
		{RoleEditor, "POST", "jobs", true},
		{RoleEditor, "GET", "settings", false},
		{RoleAdmin, "GET", "settings", true},
		{RoleAdmin, "DELETE", "nodes/n-1", true},
		{"", "GET", "nodes", false},
	}
	for _, tc := range tests {
		got := tc.role.Permissions().Has(RoutePermission(tc.method, tc.resource))
		if got != tc.allowed {
			t.Errorf("%q %s %s: allowed = %v, want %v", tc.role, tc.method, tc.resource, got, tc.allowed)
		}
	}
}

// audit:read (issue 16) comes after every permission that existed before it:
// a PermissionSet is bits by position in AllPermissions, and read models and
// snapshots hold sets as bits, so the earlier permissions keep their bits.
func TestAuditReadAppended(t *testing.T) {
	before := []Permission{NodesRead, NodesWrite, FindingsRead, FindingsWrite, JobsRead, JobsWrite, ReportsRead, AdminAll}
	if !reflect.DeepEqual(AllPermissions[:len(before)], before) || AllPermissions[len(before)] != AuditRead {
		t.Fatalf("AllPermissions = %v: audit:read must be appended after %v", AllPermissions, before)
	}
	for i, p := range before {
		if SetOf(p) != PermissionSet(1)<<i {
			t.Errorf("%s moved to another bit", p)
		}
	}
	if !SetOf(AdminAll).Has(AuditRead) || !RoleAdmin.Permissions().Has(AuditRead) {
		t.Error("admin:* does not include audit:read")
	}
	if SetOf(AuditRead).Has(AdminAll) || SetOf(AuditRead).Has(NodesRead) {
		t.Error("audit:read grants more than itself")
	}
	if !SetOf(AuditRead).Covers(SetOf(AuditRead)) || RoleEditor.Permissions().Covers(SetOf(AuditRead)) {
		t.Error("Covers and audit:read disagree")
	}
}
