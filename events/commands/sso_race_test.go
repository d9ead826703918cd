package commands_test

import (
	"context"
	"strings"
	"testing"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// TestSSORoleMappingNeverStepsDownAConcurrentGrant: an SSO login through
// replica B maps the user's group to editor in t1, where they are a viewer;
// between B's decision and its append, an admin makes them admin there
// through A. B's grant conflicts, and decided again on the user as the
// event store now has it, grants nothing: the admin's role stays. Before,
// the retried decision was GrantRole(editor) without the check, and the
// login's lesser role replaced the admin's (outside check 16a: both
// answered 200).
func TestSSORoleMappingNeverStepsDownAConcurrentGrant(t *testing.T) {
	r := ssoReplicas(t, commands.SSOProviderInput{
		Name: "okta", Type: domain.SSOOkta, Domain: "example.okta.com", ClientID: "client", ClientSecret: "client-secret", AllowedTenants: []string{"t1"},
		RoleMappings: []domain.RoleMapping{{Group: "ops", Tenant: "t1", Role: domain.RoleEditor}},
	})
	s, a, onA, onB, p, admin := r.s, r.a, r.onA, r.onB, r.p, r.admin
	ctx := context.Background()
	in := domain.SSOLogin{Provider: "okta", Issuer: p.IdentityIssuer(), Subject: "00u-alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"ops"}}
	res, err := onA.SSOLogin(ctx, events.Meta{}, in)
	if err != nil {
		t.Fatal(err)
	}
	id := res.User.ID
	if _, err := onA.ExecuteUser(ctx, admin, id, domain.GrantRole{Tenant: "t1", Role: string(domain.RoleViewer)}); err != nil {
		t.Fatal(err)
	}
	r.bCatchesUp()
	granted := 0
	s.before = func(msgs []events.Message) {
		if !strings.HasSuffix(msgs[0].Subject, "."+id) || !strings.Contains(string(msgs[0].Data), domain.TypeUserRoleGranted) {
			return
		}
		s.before = nil // the admin's own append goes through as it is
		granted++
		if _, err := onA.ExecuteUser(ctx, admin, id, domain.GrantRole{Tenant: "t1", Role: string(domain.RoleAdmin)}); err != nil {
			t.Errorf("the admin's grant through A: %v", err)
		}
	}
	if _, err := onB.SSOLogin(ctx, events.Meta{}, in); err != nil {
		t.Fatalf("the login through B: %v", err)
	}
	if granted != 1 {
		t.Fatalf("the login through B tried %d grants, want 1 (the mapping's)", granted)
	}
	head, _ := s.Head(ctx)
	if err := a.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}
	u, _, _ := a.model.User(id)
	if got := u.Tenants["t1"]; got != domain.RoleAdmin {
		t.Fatalf("after the admin's grant and the login at the same moment: %s in t1, want admin (SSO never steps a role down)", got)
	}
}

// TestSSOLinksByEmailToOneUserOneAtATime: two identities of one issuer with
// the same verified e-mail sign in for the first time at the same moment,
// one through A, the other through B, to a provider that links by e-mail.
// The first link is kim's; the second, decided on B before the first was
// stored, conflicts on kim's sso_adoption subject, and decided again finds
// that kim holds another subject of the issuer: it provisions a user of its
// own. Before, both links were stored (outside check 16a: 10 of 60 rounds
// through two replicas), and two IdP subjects signed in to one account.
func TestSSOLinksByEmailToOneUserOneAtATime(t *testing.T) {
	r := ssoReplicas(t, commands.SSOProviderInput{
		Name: "corp", Type: domain.SSOOkta, Domain: "corp.okta.com", ClientID: "client", ClientSecret: "client-secret",
		AllowedTenants: []string{"t1"}, LinkByEmail: true,
	})
	s, onA, onB, p, admin := r.s, r.onA, r.onB, r.p, r.admin
	ctx := context.Background()
	kim, err := onA.CreateUser(ctx, admin, commands.CreateUserInput{Username: "kim", Email: "kim@corp.example", Password: "kim-passphrase-long"})
	if err != nil {
		t.Fatal(err)
	}
	r.bCatchesUp()
	login := func(sub string) domain.SSOLogin {
		return domain.SSOLogin{Provider: "corp", Issuer: p.IdentityIssuer(), Subject: sub, Email: "kim@corp.example", EmailVerified: true}
	}
	var first commands.LoginResult
	s.before = func(msgs []events.Message) {
		if !strings.Contains(string(msgs[0].Data), domain.TypeSSOIdentityLinked) {
			return
		}
		s.before = nil // A's login goes through as it is
		if first, err = onA.SSOLogin(ctx, events.Meta{}, login("00u-first")); err != nil {
			t.Errorf("the first identity's login through A: %v", err)
		}
	}
	second, err := onB.SSOLogin(ctx, events.Meta{}, login("00u-second"))
	if err != nil {
		t.Fatalf("the second identity's login through B: %v", err)
	}
	if first.User.ID != kim.ID {
		t.Fatalf("the first identity signed in as %s, want kim (%s), linked by e-mail", first.User.ID, kim.ID)
	}
	if second.User.ID == kim.ID {
		t.Fatal("the second identity, at the same moment through B, was linked to kim too: two subjects of one issuer sign in to one account")
	}
}

// ssoRig is two replicas, A and B, on one stream, and an identity provider
// configured through A.
type ssoRig struct {
	t        *testing.T
	s        *stream
	a, b     *replicaModel
	onA, onB *commands.Service
	p        domain.SSOProvider
	admin    events.Meta
}

func ssoReplicas(t *testing.T, provider commands.SSOProviderInput) *ssoRig {
	t.Helper()
	r := &ssoRig{t: t, admin: events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}}
	r.s, r.a, r.onA = newReplica(t, nil)
	_, r.b, r.onB = newReplica(t, r.s)
	p, _, err := r.onA.ConfigureSSOProvider(context.Background(), r.admin, provider)
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	return r
}

// bCatchesUp applies on B what A wrote so far.
func (r *ssoRig) bCatchesUp() {
	r.t.Helper()
	ctx := context.Background()
	if head, _ := r.s.Head(ctx); r.b.WaitFor(ctx, head) != nil {
		r.t.Fatal("B cannot catch up")
	}
}
