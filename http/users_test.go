package http

import (
	"errors"
	"testing"

	"github.com/infracast/auth/domain"
)

// TestActivatesUser: a tenant admin activates a user of its tenants only if
// a tenant admin deactivated it; a platform admin anyone it manages. The
// command's check (mayActivateUser) judges the state it decides against the
// same way: a user deactivated again by a platform admin between the
// request's read and the append is refused (outside check 20t).
func TestActivatesUser(t *testing.T) {
	tenantAdmin := &Caller{User: domain.User{ID: "user-ta", Active: true, Tenants: map[string]domain.Role{"prod": domain.RoleAdmin}}}
	platform := &Caller{User: domain.User{ID: "user-pa", Active: true, Roles: []domain.GlobalRole{domain.GlobalAdmin}}}
	byPlatform := domain.User{ID: "user-1", Tenants: map[string]domain.Role{"prod": domain.RoleViewer}}
	byTenant := byPlatform
	byTenant.DeactivatedByTenantAdmin = true
	elsewhere := byTenant
	elsewhere.Tenants = map[string]domain.Role{"prod": domain.RoleViewer, "staging": domain.RoleViewer}
	for _, tc := range []struct {
		name string
		cl   *Caller
		u    domain.User
		want error
	}{
		{"tenant admin, deactivated by a platform admin", tenantAdmin, byPlatform, errActivateByPlatformAdmin},
		{"tenant admin, deactivated by a tenant admin", tenantAdmin, byTenant, nil},
		{"tenant admin, a user also in another tenant", tenantAdmin, elsewhere, errForbidden},
		{"platform admin, deactivated by a platform admin", platform, byPlatform, nil},
		{"platform admin, deactivated by a tenant admin", platform, byTenant, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cl.mayActivateUser(tc.u); !errors.Is(err, tc.want) && err != tc.want {
				t.Fatalf("mayActivateUser: %v, want %v", err, tc.want)
			}
			if got := tc.cl.activatesUser(tc.u); got != (tc.want == nil) {
				t.Fatalf("activatesUser: %v", got)
			}
		})
	}
}
