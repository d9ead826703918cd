package commands_test

import (
	"context"
	"errors"
	"testing"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// scimConn makes a connection over tenants prod and staging, its group eng
// mapped to prod's editor role.
func scimConn(t *testing.T, svc *commands.Service, provider string, platform bool) string {
	t.Helper()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	c, _, err := svc.CreateSCIMConnection(context.Background(), admin, commands.SCIMConnectionInput{
		Provider: provider, Tenants: []string{"prod", "staging"}, Platform: platform,
		GroupMappings: []domain.RoleMapping{{Group: "eng", Tenant: "prod", Role: domain.RoleEditor}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// refusedWithNothingWritten checks that a create answers want and appends
// nothing.
func refusedWithNothingWritten(t *testing.T, s *stream, svc *commands.Service, connID string, in commands.SCIMUserInput, want error) {
	t.Helper()
	head := len(s.msgs)
	meta := events.Meta{Actor: events.Actor{Type: "scim", ID: connID}}
	if id, err := svc.SCIMCreateUser(context.Background(), meta, connID, in); !errors.Is(err, want) {
		t.Fatalf("create %s (externalId %q): %q, %v; want %v", in.Profile.UserName, in.Profile.ExternalID, id, err, want)
	}
	if len(s.msgs) != head {
		t.Fatalf("the refused create appended %d events", len(s.msgs)-head)
	}
}

// TestSCIMNoAdoptionByNameOfAnotherIdentitysUser: a platform connection's
// create finds a user by its userName who is linked to another SSO
// identity — the departed holder of the name, under another externalId of
// the connection's issuer; a user another provider linked — and adopts
// neither: ErrSCIMOtherIdentity (409 uniqueness), and nothing is written.
// Before, the new hire got the departed person's account, activated again
// with its old password and roles, and both identities signed in to it; a
// user of another provider who took a plain name got the IdP's person's
// account and groups (outside check 19e, defects 1 and 2).
func TestSCIMNoAdoptionByNameOfAnotherIdentitysUser(t *testing.T) {
	s, r, svc := newReplica(t, nil)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	configureOktaAndAzure(t, svc, admin, "prod", "staging")
	okta := scimConn(t, svc, "okta", true)
	meta := events.Meta{Actor: events.Actor{Type: "scim", ID: okta}}

	// The departed person: provisioned with 00u-OLD, a role by hand in a
	// tenant no mapping governs (kept by the delete), then deleted.
	old, err := svc.SCIMCreateUser(ctx, meta, okta, commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "jdoe@corp.example", ExternalID: "00u-OLD"}, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ExecuteUser(ctx, admin, old, domain.GrantRole{Tenant: "staging", Role: string(domain.RoleViewer)}); err != nil {
		t.Fatal(err)
	}
	if err := svc.SCIMDeleteUser(ctx, meta, okta, old); err != nil {
		t.Fatal(err)
	}
	newHire := commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "jdoe@corp.example", ExternalID: "00u-NEW"}, Active: true}
	refusedWithNothingWritten(t, s, svc, okta, newHire, commands.ErrSCIMOtherIdentity)
	// Still so once the departed person's account is active again (an
	// admin's doing): the identity, not the flag, says whose it is.
	if _, err := svc.ExecuteUser(ctx, admin, old, domain.Activate{}); err != nil {
		t.Fatal(err)
	}
	refusedWithNothingWritten(t, s, svc, okta, newHire, commands.ErrSCIMOtherIdentity)
	// The departed person's own externalId is a rehire (rule 1), as before.
	if id, err := svc.SCIMCreateUser(ctx, meta, okta, commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "jdoe@corp.example", ExternalID: "00u-OLD"}, Active: true}); err != nil || id != old {
		t.Fatalf("the rehire by identity: %q, %v; want %q", id, err, old)
	}

	// Another issuer's identity: a user the azure provider's connection
	// linked, that connection deleted since (its users keep what they
	// hold): the okta connection's create of the same name adopts none.
	azure := scimConn(t, svc, "azure", true)
	ameta := events.Meta{Actor: events.Actor{Type: "scim", ID: azure}}
	partner, err := svc.SCIMCreateUser(ctx, ameta, azure, commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "jroe", ExternalID: "partner-1"}, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ExecuteUser(ctx, admin, partner, domain.GrantRole{Tenant: "prod", Role: string(domain.RoleViewer)}); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteSCIMConnection(ctx, admin, azure, func(domain.SCIMConnection) error { return nil }); err != nil {
		t.Fatal(err)
	}
	refusedWithNothingWritten(t, s, svc, okta, commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "jroe", ExternalID: "00u-jroe"}, Active: true}, commands.ErrSCIMOtherIdentity)
	// A create that names no externalId finds no identity of its own
	// either: every identity of the user is another.
	refusedWithNothingWritten(t, s, svc, okta, commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "jroe"}, Active: true}, commands.ErrSCIMOtherIdentity)
	if err := r.WaitFor(ctx, uint64(len(s.msgs))); err != nil {
		t.Fatal(err)
	}
	if l, _, ok := r.model.SCIMLink(okta, partner); ok && l.Linked {
		t.Fatal("the okta connection provisions the other provider's user")
	}
}

// TestSCIMNoAdoptionByNameOfAnInactiveUser: a create finds by its userName
// a deactivated user with no SSO identity (a departed person's password
// account) and does not adopt it — that activated it again, with its
// password and factors, for whoever holds the name now: 409 (outside check
// 19e). Once an administrator activates it, it is adopted.
func TestSCIMNoAdoptionByNameOfAnInactiveUser(t *testing.T) {
	s, _, svc := newReplica(t, nil)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	configureOktaAndAzure(t, svc, admin, "prod", "staging")
	kim := kimInProd(t, svc)
	if _, err := svc.ExecuteUser(ctx, admin, kim.ID, domain.Deactivate{Reason: "left"}); err != nil {
		t.Fatal(err)
	}
	for _, platform := range []bool{true, false} {
		conn := scimConn(t, svc, "okta", platform)
		in := commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "kim", ExternalID: "00u-kim"}, Active: true}
		refusedWithNothingWritten(t, s, svc, conn, in, commands.ErrSCIMInactiveByName)
		in.Active = false // adopted inactive, a later activation would do the same
		refusedWithNothingWritten(t, s, svc, conn, in, commands.ErrSCIMInactiveByName)
		if err := svc.DeleteSCIMConnection(ctx, admin, conn, func(domain.SCIMConnection) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	// A deactivated user of another tenant: the connection learns that the
	// name is taken, and nothing of the user.
	dev, err := svc.CreateUser(ctx, admin, commands.CreateUserInput{Username: "dana", Password: "dana-old-passphrase",
		Tenants: []domain.TenantRole{{Tenant: "dev", Role: domain.RoleViewer}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ExecuteUser(ctx, admin, dev.ID, domain.Deactivate{Reason: "left"}); err != nil {
		t.Fatal(err)
	}
	{
		conn := scimConn(t, svc, "okta", false)
		in := commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "dana"}, Active: true}
		refusedWithNothingWritten(t, s, svc, conn, in, commands.ErrUsernameTaken)
		meta := events.Meta{Actor: events.Actor{Type: "scim", ID: conn}}
		if _, err := svc.SCIMCreateUser(ctx, meta, conn, in); errors.Is(err, commands.ErrSCIMInactiveByName) {
			t.Fatal("a connection learns that another tenant's user is deactivated")
		}
	}
	if _, err := svc.ExecuteUser(ctx, admin, kim.ID, domain.Activate{}); err != nil {
		t.Fatal(err)
	}
	conn := scimConn(t, svc, "okta", true)
	meta := events.Meta{Actor: events.Actor{Type: "scim", ID: conn}}
	if id, err := svc.SCIMCreateUser(ctx, meta, conn, commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "kim"}, Active: true}); err != nil || id != kim.ID {
		t.Fatalf("kim active again: %q, %v; want kim adopted", id, err)
	}
}

// TestSCIMTenantConnectionRehire: a tenant connection (which links no SSO
// identity) deletes a user and creates it again with the same externalId:
// its own record of the user finds it (a rehire), active again, in none of
// its groups; before, rule 1 could not find it (no identity) and rule 2
// refused it (in none of the connection's tenants): 409 for good (outside
// check 19e, defect 3). Another connection's record finds nothing.
func TestSCIMTenantConnectionRehire(t *testing.T) {
	s, r, svc := newReplica(t, nil)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	configureOktaAndAzure(t, svc, admin, "prod", "staging")
	conn := scimConn(t, svc, "okta", false)
	meta := events.Meta{Actor: events.Actor{Type: "scim", ID: conn}}
	rae := commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "rae@corp.example", ExternalID: "00u-rae"}, Active: true}
	id, err := svc.SCIMCreateUser(ctx, meta, conn, rae)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SCIMCreateGroup(ctx, meta, conn, commands.SCIMGroupInput{DisplayName: "eng", Members: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if err := svc.SCIMDeleteUser(ctx, meta, conn, id); err != nil {
		t.Fatal(err)
	}
	// Another tenant connection's create with the same externalId is no
	// rehire of its own: by name, the user is inactive — which it is not
	// told of a user in none of its tenants that it never provisioned
	// (re-check 19r2): the name is taken.
	other := scimConn(t, svc, "okta", false)
	refusedWithNothingWritten(t, s, svc, other, rae, commands.ErrUsernameTaken)
	if _, err := svc.SCIMCreateUser(ctx, events.Meta{Actor: events.Actor{Type: "scim", ID: other}}, other, rae); errors.Is(err, commands.ErrSCIMInactiveByName) {
		t.Fatal("another tenant connection learns that the user is deactivated")
	}
	// Another externalId under the name is no rehire either (the
	// connection that deleted the user is told why).
	stranger := rae
	stranger.Profile.ExternalID = "00u-someone-else"
	refusedWithNothingWritten(t, s, svc, conn, stranger, commands.ErrSCIMInactiveByName)

	got, err := svc.SCIMCreateUser(ctx, meta, conn, rae)
	if err != nil || got != id {
		t.Fatalf("the rehire: %q, %v; want %q", got, err, id)
	}
	if err := r.WaitFor(ctx, uint64(len(s.msgs))); err != nil {
		t.Fatal(err)
	}
	u, _, _ := r.model.User(id)
	if !u.Active || len(u.Tenants) != 0 {
		t.Fatalf("rehired: active %v, roles %v; want active, with none until a group gives one", u.Active, u.Tenants)
	}
	if l, _, ok := r.model.SCIMLink(conn, id); !ok || !l.Linked || l.Method != domain.SCIMLinkRehire {
		t.Fatalf("the connection's record: %+v", l)
	}
	for _, m := range s.msgs {
		if env, _, err := events.Decode(m.Data); err != nil || env.Type == domain.TypeSSOIdentityLinked {
			t.Fatalf("the tenant connection linked an identity (%v)", err)
		}
	}
	// Created again while shown: 409, as any create of a user it shows.
	refusedWithNothingWritten(t, s, svc, conn, rae, commands.ErrUsernameTaken)
}
