package tests

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// TestSSOUnlinkIdentity: a platform admin cuts an identity off the user it
// is linked to (DELETE /api/v1/admin/sso/{provider}/identities?subject=),
// and the identity's next login is a first one again — here linked by its
// verified e-mail to the person's own account. The link cut is one a tenant
// admin's SCIM connection made before tenant connections could no longer
// link identities (planted here as it was written: an outside check found
// that a tenant connection could name another tenant's user's identity, so
// that her SSO login landed on an account of its making, and nothing could
// undo it).
func TestSSOUnlinkIdentity(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	const subject = "kim-sub/with?odd&chars"
	configureOIDC(t, in, admin, "oidc", "corp", testOIDCUser{
		Subject: subject, Email: "kim@corp.example", EmailVerified: true, Username: "kim", Groups: []string{"infra"},
	}, map[string]any{"link_by_email": true, "role_mappings": []map[string]string{{"group": "infra", "tenant": "prod", "role": "editor"}}})
	kim := createUser(t, in, admin, "kim", "kim@corp.example", map[string]string{"finance": "admin"})
	in.CreateUser(admin, "tadmin", "tadmin-passphrase", map[string]string{"t1": "admin"})
	tadmin := in.Login("tadmin", "tadmin-passphrase").String("token")
	shadow := createUser(t, in, tadmin, "kim-shadow", "shadow@example.com", map[string]string{"t1": "viewer"})

	// The old tenant connection's link of Kim's identity to kim-shadow.
	p, _, ok := in.Svc.Model.SSOProvider("corp")
	if !ok {
		t.Fatal("no provider corp")
	}
	key := commands.SSOIdentityKey(p.IdentityIssuer(), subject)
	now := in.Clock.Now().UTC()
	plantEvent(t, in, domain.AggregateSSOIdentity, key, events.Meta{Actor: events.Actor{Type: "scim", ID: "scim-01M0000000000000000000000"}},
		domain.SSOIdentityLinked{Provider: "corp", Issuer: p.IdentityIssuer(), Subject: subject, UserID: shadow, Method: domain.LinkSCIM, LinkedAt: now})
	signIn := func(what, want string) {
		t.Helper()
		r := newBrowser(t).get(in.URL + "/api/v1/auth/sso/corp/login")
		mustStatus(t, r, http.StatusOK, what)
		if id := ssoUserOf(t, r)["id"]; id != want {
			t.Fatalf("%s: signed in as %v, want %s (kim %s, kim-shadow %s)", what, id, want, kim, shadow)
		}
	}
	signIn("kim's login through the planted link", shadow)

	unlink := func(token, provider, query string) Response {
		return in.Do("DELETE", "/api/v1/admin/sso/"+provider+"/identities"+query, token, nil)
	}
	q := "?subject=" + url.QueryEscape(subject)
	before := head(t, in)
	expectError(t, "a tenant admin unlinks", unlink(tadmin, "corp", q), http.StatusForbidden, "FORBIDDEN")
	expectError(t, "no subject", unlink(admin, "corp", ""), http.StatusBadRequest, "VALIDATION_ERROR", "subject")
	expectError(t, "an empty subject", unlink(admin, "corp", "?subject="), http.StatusBadRequest, "VALIDATION_ERROR", "subject")
	expectError(t, "two subjects", unlink(admin, "corp", q+"&subject=x"), http.StatusBadRequest, "VALIDATION_ERROR", "subject")
	expectError(t, "another parameter", unlink(admin, "corp", q+"&user=x"), http.StatusBadRequest, "VALIDATION_ERROR", "subject")
	expectError(t, "an identity nobody has", unlink(admin, "corp", "?subject=nobody"), http.StatusNotFound, "NOT_FOUND")
	expectError(t, "an unknown provider", unlink(admin, "nope", q), http.StatusNotFound, "NOT_FOUND")
	if h := head(t, in); h != before {
		t.Fatalf("refused unlinks appended %d events", h-before)
	}

	expectStatus(t, "the platform admin unlinks", unlink(admin, "corp", q), http.StatusNoContent)
	expectError(t, "unlinked twice", unlink(admin, "corp", q), http.StatusNotFound, "NOT_FOUND")
	var found bool
	for _, e := range storedEnvelopes(t, in) {
		if e.Type == domain.TypeSSOIdentityUnlinked && e.AggregateID == key {
			found = e.Actor.Type == "user" && !found
		}
	}
	if !found {
		t.Fatal("no sso.identity_unlinked by the admin in the stream")
	}
	// A first login again: linked by the verified address to Kim's own
	// account, with the role her groups give; and again after another unlink.
	signIn("kim's login after the unlink", kim)
	signIn("kim's next login", kim)
	expectStatus(t, "unlinked again", unlink(admin, "corp", q), http.StatusNoContent)
	signIn("kim's login after a second unlink", kim)
}

// TestSSOUnlinkedIdentityProvisionsAgainAndAgain: without link_by_email,
// each login after an unlink provisions a new user; once the e-mail and the
// preferred username are taken, the fallback "<provider>-<hash>" differs
// from one relink to the next. Before, the fourth login after three unlinks
// found every name taken and answered 409 "try again", for good (an outside
// check).
func TestSSOUnlinkedIdentityProvisionsAgainAndAgain(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	const subject = "yan-sub"
	configureOIDC(t, in, admin, "oidc", "corp", testOIDCUser{
		Subject: subject, Email: "yan@corp.example", EmailVerified: true, Username: "yan",
	}, nil)
	seen := map[string]bool{}
	for i := range 5 {
		r := newBrowser(t).get(in.URL + "/api/v1/auth/sso/corp/login")
		mustStatus(t, r, http.StatusOK, fmt.Sprintf("login %d", i+1))
		u := ssoUserOf(t, r)
		id, name := u["id"].(string), u["username"].(string)
		if seen[id] || seen[name] {
			t.Fatalf("login %d: %s (%s) again", i+1, id, name)
		}
		seen[id], seen[name] = true, true
		expectStatus(t, fmt.Sprintf("unlink %d", i+1),
			in.Do("DELETE", "/api/v1/admin/sso/corp/identities?subject="+url.QueryEscape(subject), admin, nil), http.StatusNoContent)
	}
}
