package tests

import (
	"net/http"
	"testing"
)

// TestSSOLinkByEmailSkipsAnotherSubjectsUser: an IdP that gives a user's old
// address to another person (another sub, verified) does not hand that
// person the first one's account: a user who already holds another subject
// of the same issuer is never the one a first login links to by e-mail; the
// login provisions a user of its own (outside check 14a: B's first login
// landed on A's account, with A's roles). The first user keeps signing in
// by its link.
func TestSSOLinkByEmailSkipsAnotherSubjectsUser(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	a := alice()
	a.Subject, a.Email, a.Username = "00u-alice", "ops@corp.example", "ops@corp.example"
	idp := configureOIDC(t, in, admin, "oidc", "corp", a, map[string]any{
		"link_by_email": true,
		"role_mappings": []map[string]string{{"group": "infra-admins", "tenant": "prod", "role": "admin"}},
	})
	login := func(what string) map[string]any {
		t.Helper()
		r := newBrowser(t).get(in.URL + "/api/v1/auth/sso/corp/login")
		mustStatus(t, r, http.StatusOK, what)
		u, _ := r.JSON["user"].(map[string]any)
		if u == nil {
			t.Fatalf("%s: %s", what, r.Raw)
		}
		return u
	}
	userA := login("A's first login")
	if userA["email"] != "ops@corp.example" {
		t.Fatalf("A provisioned with %v", userA)
	}
	// The IdP changes A's address; later logins keep A's account (found by
	// the link), whose recorded address is the first login's.
	a.Email, a.Username = "alice@corp.example", "alice@corp.example"
	idp.SetUser(a)
	if u := login("A after the address change"); u["id"] != userA["id"] {
		t.Fatalf("A signed in as %v, want %v", u["id"], userA["id"])
	}
	// B gets the old address, verified, and no groups.
	b := testOIDCUser{Subject: "00u-bob", Email: "ops@corp.example", EmailVerified: true, Username: "bob"}
	idp.SetUser(b)
	userB := login("B's first login")
	if userB["id"] == userA["id"] {
		t.Fatalf("B's first login landed on A's account %v", userA["id"])
	}
	if tenants, _ := userB["tenants"].([]any); len(tenants) != 0 {
		t.Fatalf("B got roles: %v", tenants)
	}
	if u := login("B again"); u["id"] != userB["id"] {
		t.Fatalf("B's second login: %v, want %v", u["id"], userB["id"])
	}
	idp.SetUser(a)
	if u := login("A again"); u["id"] != userA["id"] {
		t.Fatalf("A's login after B's: %v, want %v", u["id"], userA["id"])
	}
}
