package tests

import (
	"net/http"
	"strings"
	"testing"

	"github.com/infracast/auth/http/scim/scimtest"
)

// Okta's documented request sequences (http/scim/scimtest, which
// http/scim's own tests replay against an in-memory backend), here against
// the running service: users become the service's users, the pushed
// password signs in, deactivation stops their tokens, groups grant the
// tenant roles they are mapped to.

func TestSCIMOktaUserSequence(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	_, tok := newConnection(t, in, admin, admin, []string{"prod"}, mapping{"Test SCIMv2", "prod", "editor"})
	var login Response
	scimtest.OktaUsers(t, scimEndpoint(t, in, tok), scimtest.OktaUserHooks{
		// The pushed password is the user's password (hashed: no event holds it).
		Created: func(scimtest.IDs) {
			login = in.Login(scimtest.OktaUserName, scimtest.OktaPassword)
			for _, e := range storedEvents(t, in.Svc) {
				if strings.Contains(string(e.Data), scimtest.OktaPassword) {
					t.Fatalf("%s holds the password", e.Type)
				}
			}
		},
		// The user's token and refresh token stop at once.
		Deactivated: func(scimtest.IDs) {
			expectBody(t, "a deprovisioned user's token", me(t, in, login.String("token")), http.StatusUnauthorized, bodyUnauthorized)
			expectStatus(t, "a deprovisioned user's refresh token", refresh(t, in, login.String("refresh_token")), http.StatusUnauthorized)
		},
		// The synced password signs in; the old session stays revoked.
		PasswordSynced: func(scimtest.IDs) {
			in.Login(scimtest.OktaUserName, scimtest.OktaSyncPassword)
			expectStatus(t, "the old session after activation", refresh(t, in, login.String("refresh_token")), http.StatusUnauthorized)
		},
		PutInactive: func(ids scimtest.IDs) {
			if r := in.Do("GET", "/api/v1/users/"+ids.User, admin, nil); r.JSON["active"] != false {
				t.Fatalf("PUT active:false: %s", r.Raw)
			}
		},
	})
}

func TestSCIMOktaGroupSequence(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	_, tok := newConnection(t, in, admin, admin, []string{"prod", "staging"},
		mapping{"Test SCIMv2", "prod", "viewer"}, mapping{"Test SCIMv20", "staging", "editor"})
	roles := func(what string, id string, prod, staging string) {
		t.Helper()
		if p, s := tenantRole(t, in, admin, id, "prod"), tenantRole(t, in, admin, id, "staging"); p != prod || s != staging {
			t.Fatalf("%s: prod %q staging %q, want %q %q", what, p, s, prod, staging)
		}
	}
	scimtest.OktaGroups(t, scimEndpoint(t, in, tok), scimtest.OktaGroupHooks{
		OtherAdded: func(ids scimtest.IDs) { roles("a member of Test SCIMv20", ids.Other, "", "editor") },
		MemberMoved: func(ids scimtest.IDs) {
			roles("removed from Test SCIMv20", ids.Other, "", "")
			roles("added to Test SCIMv20", ids.User, "", "editor")
		},
		// Back to the name mapped to prod viewer, with one member.
		Put: func(ids scimtest.IDs) {
			roles("the one member of Test SCIMv2", ids.User, "viewer", "")
			roles("no longer a member", ids.Other, "", "")
		},
		Deleted: func(ids scimtest.IDs) { roles("a deleted group takes its role with it", ids.User, "", "") },
	})
}

func TestSCIMOktaSpecTest(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	_, tok := newConnection(t, in, admin, admin, []string{"prod"})
	scimtest.OktaSpecTest(t, scimEndpoint(t, in, tok))
}
