package commands_test

import (
	"context"
	"errors"
	"testing"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// TestSSOGroupGrantAsksTheTenantsFactor: tenant t1 requires a second
// factor, and the provider maps the group ops to admin there. A user the
// sign-in grants that role — one added to the group at the provider since
// their last sign-in, or one provisioned by this sign-in — is asked to
// enrol a factor at this sign-in, with no session started. Before, the
// policy was checked on the user as read before the grants, and the
// sign-in of the user added to the group started a session without a
// factor (outside check 17b: a week of refreshes as admin of t1). A
// provisioned user was asked already (its creation carries the roles);
// it stays so.
func TestSSOGroupGrantAsksTheTenantsFactor(t *testing.T) {
	s, r, svc := newReplica(t, nil)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	p, _, err := svc.ConfigureSSOProvider(ctx, admin, commands.SSOProviderInput{
		Name: "okta", Type: domain.SSOOkta, Domain: "example.okta.com", ClientID: "client", ClientSecret: "client-secret", AllowedTenants: []string{"t1"},
		RoleMappings: []domain.RoleMapping{{Group: "ops", Tenant: "t1", Role: domain.RoleAdmin}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetMFAPolicy(ctx, admin, "t1", true); err != nil {
		t.Fatal(err)
	}
	in := domain.SSOLogin{Provider: "okta", Issuer: p.IdentityIssuer(), Subject: "00u-grant", Email: "grant@example.com", EmailVerified: true, Groups: []string{"everyone"}}
	if _, err := svc.SSOLogin(ctx, events.Meta{}, in); err != nil {
		t.Fatalf("the sign-in without the group (no role in t1): %v", err)
	}
	enrolmentFirst := func(what string, in domain.SSOLogin) {
		t.Helper()
		before := len(s.msgs)
		res, err := svc.SSOLogin(ctx, events.Meta{}, in)
		var enrol *commands.MFAEnrollmentRequiredError
		if !errors.As(err, &enrol) {
			t.Fatalf("%s: %v (roles %v), want enrolment required", what, err, res.User.Tenants)
		}
		for _, m := range s.msgs[before:] {
			env, _, err := events.Decode(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if env.Type == domain.TypeSessionStarted {
				t.Errorf("%s: a session was started", what)
			}
		}
		if id, ok := r.model.SSOIdentity(in.Issuer, in.Subject); !ok {
			t.Errorf("%s: the identity is not linked", what)
		} else if u, _, _ := r.model.User(id); u.Tenants["t1"] != domain.RoleAdmin {
			t.Errorf("%s: the mapped role was not granted: %v", what, u.Tenants)
		}
	}
	in.Groups = []string{"everyone", "ops"} // added to the group at the provider
	enrolmentFirst("the sign-in once in the group mapped to admin of t1", in)
	enrolmentFirst("the first sign-in, provisioned into the group mapped to admin of t1",
		domain.SSOLogin{Provider: "okta", Issuer: p.IdentityIssuer(), Subject: "00u-new", Email: "new@example.com", EmailVerified: true, Groups: []string{"ops"}})
}
