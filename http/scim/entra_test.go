package scim

import (
	"strings"
	"testing"

	"github.com/infracast/auth/http/scim/scimtest"
)

// Microsoft Entra ID's documented sequences (scimtest) against the
// in-memory backend: what reached the Backend, and how.

// entraCreateUser and entraCT are how Entra ID creates a user, for this
// package's other tests.
const (
	entraCreateUser = scimtest.EntraCreateUser
	entraCT         = "application/scim+json"
)

func TestEntraUserSequence(t *testing.T) {
	s := newServer(t, Options{})
	lookup := func(what string, ok func(Equality) bool) {
		t.Helper()
		if l := s.mem.lookups[len(s.mem.lookups)-1]; !ok(l) {
			t.Fatalf("%s: the backend was not offered the lookup: %+v", what, l)
		}
	}
	changed := func(want string) {
		t.Helper()
		if up := s.mem.lastUser; up.Method != "PATCH" || strings.Join(up.Changed, ",") != want {
			t.Fatalf("%s changed %v, want %s", up.Method, up.Changed, want)
		}
	}
	var updates int
	scimtest.EntraUsers(t, s.endpoint(), scimtest.EntraUserHooks{
		Got: func(_ scimtest.IDs, r scimtest.Response) {
			if scimtest.At(r.Body, "meta", "created") != "2026-03-27T19:59:26Z" {
				t.Fatalf("get: %s", r.Raw)
			}
		},
		ByUserName: func(scimtest.IDs) {
			lookup("userName", func(l Equality) bool { return l.Attr == "userName" && l.Whole && !l.CaseExact })
		},
		ByWorkEmail: func(scimtest.IDs) {
			lookup("work email", func(l Equality) bool { return l.Attr == "emails.value" && l.Type == "work" && l.Whole })
		},
		MultiValued: func(scimtest.IDs) { changed("name,emails") },
		Disabled: func(ids scimtest.IDs) {
			if s.user(ids.User).Active {
				t.Fatal("disable: the user is active")
			}
			changed("active")
		},
		Enabled: func(scimtest.IDs) { updates = s.mem.updates },
		DisabledWithFlag: func(scimtest.IDs) {
			if s.mem.updates != updates+1 {
				t.Fatalf("disable with the flag: %d updates, want 1", s.mem.updates-updates)
			}
		},
	})
}

func TestEntraGroupSequence(t *testing.T) {
	s := newServer(t, Options{})
	scimtest.EntraGroups(t, s.endpoint(), scimtest.EntraGroupHooks{
		MemberAdded: func(ids scimtest.IDs) {
			if up := s.mem.lastGroup; len(up.Added) != 1 || up.Added[0].Value != ids.User || len(up.Removed) != 0 {
				t.Fatalf("add members: %+v", up)
			}
		},
		RemoveAbsent: func() func() {
			updates := s.mem.updates
			return func() {
				if s.mem.updates != updates {
					t.Fatal("a PATCH that changes nothing called the backend")
				}
			}
		},
	})
}

func TestEntraSchemaDiscovery(t *testing.T) {
	r := scimtest.EntraSchemas(t, newServer(t, Options{}).endpoint())
	if strings.Contains(r.Raw, `"password"`) {
		t.Fatal("password is listed though passwords are not accepted")
	}
}
