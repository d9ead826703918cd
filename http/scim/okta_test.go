package scim

import (
	"strings"
	"testing"

	"github.com/infracast/auth/http/scim/scimtest"
)

// Okta's documented sequences (scimtest) against the in-memory backend:
// what reached the Backend, and how.

func TestOktaUserSequence(t *testing.T) {
	s := newServer(t, Options{AcceptPasswords: true})
	changed := func(method, want string) {
		t.Helper()
		if up := s.mem.lastUser; up.Method != method || strings.Join(up.Changed, ",") != want {
			t.Fatalf("%s changed %v, want %s", up.Method, up.Changed, want)
		}
	}
	scimtest.OktaUsers(t, s.endpoint(), scimtest.OktaUserHooks{
		Created: func(ids scimtest.IDs) {
			if s.mem.passwords[ids.User] != scimtest.OktaPassword {
				t.Fatal("the password did not reach the backend")
			}
		},
		// PUT replaces: displayName and externalId were not sent, so they
		// are gone; no password was sent, so it is not among the changes.
		Replaced: func(scimtest.IDs) { changed("PUT", "name,displayName,externalId") },
		Deactivated: func(ids scimtest.IDs) {
			if s.user(ids.User).Active {
				t.Fatal("deactivate: the user is active")
			}
			changed("PATCH", "active")
		},
		PasswordSynced: func(ids scimtest.IDs) {
			if s.mem.passwords[ids.User] != scimtest.OktaSyncPassword {
				t.Fatal("password sync: the password did not reach the backend")
			}
			changed("PATCH", "password")
		},
		PutInactive: func(ids scimtest.IDs) {
			if s.user(ids.User).Active {
				t.Fatal("PUT active:false left the user active")
			}
		},
	})
}

func TestOktaGroupSequence(t *testing.T) {
	s := newServer(t, Options{AcceptPasswords: true})
	scimtest.OktaGroups(t, s.endpoint(), scimtest.OktaGroupHooks{
		MemberMoved: func(ids scimtest.IDs) {
			if up := s.mem.lastGroup; len(up.Added) != 1 || up.Added[0].Value != ids.User || len(up.Removed) != 1 || up.Removed[0].Value != ids.Other {
				t.Fatalf("membership: %+v", up)
			}
		},
		Put: func(ids scimtest.IDs) {
			if g := s.mem.groups[ids.Group]; g.DisplayName != "Test SCIMv2" || len(g.Members) != 1 {
				t.Fatalf("put: %+v", g)
			}
		},
		Deleted: func(ids scimtest.IDs) {
			if _, ok := s.mem.groups[ids.Group]; ok {
				t.Fatal("the group is still there")
			}
		},
	})
}

func TestOktaSpecTest(t *testing.T) {
	scimtest.OktaSpecTest(t, newServer(t, Options{}).endpoint())
}
