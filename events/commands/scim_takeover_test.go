package commands_test

import (
	"context"
	"errors"
	"testing"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// updateRefusedWithNothingWritten checks that an update answers want and
// appends nothing.
func updateRefusedWithNothingWritten(t *testing.T, s *stream, svc *commands.Service, connID, userID string, up commands.SCIMUserUpdate, want error) {
	t.Helper()
	head := len(s.msgs)
	meta := events.Meta{Actor: events.Actor{Type: "scim", ID: connID}}
	if err := svc.SCIMUpdateUser(context.Background(), meta, connID, userID, up); !errors.Is(err, want) {
		t.Fatalf("update %+v: %v; want %v", up.Profile, err, want)
	}
	if len(s.msgs) != head {
		t.Fatalf("the refused update appended %d events", len(s.msgs)-head)
	}
}

// TestSCIMUpdateGivesNoDeactivatedAccountToAnotherExternalID: Okta
// deactivates a departed person (PATCH active false) and never deletes
// them; when a new hire gets the name, Okta finds that resource by its
// userName and sends the new externalId with active: true. That update is
// ErrSCIMOtherPerson (409 uniqueness) and nothing changes — nor with the
// activation left for later, nor with the externalId removed — for a
// tenant connection (which links no identity: the record's externalId
// says who it was) and for a platform connection (whose identity under
// the old externalId stays the account's). Before, the new person got the
// departed one's account, active again, with its password and identity
// (re-check 19r2, defect D2). The same person's reactivation (same
// externalId) goes on, and so does an active user's new externalId (Entra
// ID switching its mapping to objectId: the same person's new key).
func TestSCIMUpdateGivesNoDeactivatedAccountToAnotherExternalID(t *testing.T) {
	s, r, svc := newReplica(t, nil)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	configureOktaAndAzure(t, svc, admin, "prod", "staging")
	for _, platform := range []bool{false, true} {
		conn := scimConn(t, svc, "okta", platform)
		meta := events.Meta{Actor: events.Actor{Type: "scim", ID: conn}}
		name := "jdoe@corp.example"
		if platform {
			name = "jdoe2@corp.example"
		}
		old := domain.SCIMProfile{UserName: name, ExternalID: "00u-OLD"}
		if platform {
			old.ExternalID = "00u-OLD2"
		}
		id, err := svc.SCIMCreateUser(ctx, meta, conn, commands.SCIMUserInput{Profile: old, Active: true})
		if err != nil {
			t.Fatal(err)
		}
		off, on := false, true
		if err := svc.SCIMUpdateUser(ctx, meta, conn, id, commands.SCIMUserUpdate{Active: &off}); err != nil {
			t.Fatal(err)
		}
		newHire := old
		newHire.ExternalID = "00u-NEW"
		updateRefusedWithNothingWritten(t, s, svc, conn, id, commands.SCIMUserUpdate{Profile: &newHire, Active: &on}, commands.ErrSCIMOtherPerson)
		updateRefusedWithNothingWritten(t, s, svc, conn, id, commands.SCIMUserUpdate{Profile: &newHire}, commands.ErrSCIMOtherPerson)
		updateRefusedWithNothingWritten(t, s, svc, conn, id, commands.SCIMUserUpdate{Profile: &newHire, Active: &off}, commands.ErrSCIMOtherPerson)
		removed := old
		removed.ExternalID = ""
		updateRefusedWithNothingWritten(t, s, svc, conn, id, commands.SCIMUserUpdate{Profile: &removed, Active: &on}, commands.ErrSCIMOtherPerson)

		// The same person back: their own externalId.
		if err := svc.SCIMUpdateUser(ctx, meta, conn, id, commands.SCIMUserUpdate{Profile: &old, Active: &on}); err != nil {
			t.Fatalf("the same person's reactivation: %v", err)
		}
		// Active, a new key: the same person's (the IdP's mapping changed).
		rekeyed := old
		rekeyed.ExternalID = "8f2c-objectid"
		if err := svc.SCIMUpdateUser(ctx, meta, conn, id, commands.SCIMUserUpdate{Profile: &rekeyed}); err != nil {
			t.Fatalf("an active user's new externalId: %v", err)
		}
		if err := r.WaitFor(ctx, uint64(len(s.msgs))); err != nil {
			t.Fatal(err)
		}
		if l, _, ok := r.model.SCIMLink(conn, id); !ok || l.Profile.ExternalID != rekeyed.ExternalID {
			t.Fatalf("the record after the re-key: %+v", l.Profile)
		}
	}
}

// TestSCIMTenantConnectionLearnsNothingOfAUserInNoTenant: a tenant
// connection's create of the name of a deactivated user in no tenant, or
// of an SSO user in none, is the plain ErrUsernameTaken: which of the two
// it is, is said only of a user of the connection's tenants (Within alone
// was true of a user in none: re-check 19r2, defect D3). A platform
// connection is told.
func TestSCIMTenantConnectionLearnsNothingOfAUserInNoTenant(t *testing.T) {
	s, _, svc := newReplica(t, nil)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	configureOktaAndAzure(t, svc, admin, "prod", "staging")
	ghost, err := svc.CreateUser(ctx, admin, commands.CreateUserInput{Username: "ghost", Password: "ghost-old-passphrase"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ExecuteUser(ctx, admin, ghost.ID, domain.Deactivate{Reason: "left"}); err != nil {
		t.Fatal(err)
	}
	// An SSO user in no tenant: linked by another provider's connection,
	// given no role, that connection deleted since.
	azure := scimConn(t, svc, "azure", true)
	ameta := events.Meta{Actor: events.Actor{Type: "scim", ID: azure}}
	if _, err := svc.SCIMCreateUser(ctx, ameta, azure, commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "sso-nobody", ExternalID: "az-1"}, Active: true}); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteSCIMConnection(ctx, admin, azure, func(domain.SCIMConnection) error { return nil }); err != nil {
		t.Fatal(err)
	}
	tenant := scimConn(t, svc, "okta", false)
	platform := scimConn(t, svc, "okta", true)
	for _, c := range []struct {
		conn, name string
		want       error
	}{
		{tenant, "ghost", commands.ErrUsernameTaken},
		{tenant, "sso-nobody", commands.ErrUsernameTaken},
		{platform, "ghost", commands.ErrSCIMInactiveByName},
		{platform, "sso-nobody", commands.ErrSCIMOtherIdentity},
	} {
		in := commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: c.name, ExternalID: "00u-" + c.name}, Active: true}
		refusedWithNothingWritten(t, s, svc, c.conn, in, c.want)
		if c.want == commands.ErrUsernameTaken {
			meta := events.Meta{Actor: events.Actor{Type: "scim", ID: c.conn}}
			if _, err := svc.SCIMCreateUser(ctx, meta, c.conn, in); errors.Is(err, commands.ErrSCIMInactiveByName) || errors.Is(err, commands.ErrSCIMOtherIdentity) {
				t.Fatalf("the tenant connection learns of %s: %v", c.name, err)
			}
		}
	}
}

// TestSCIMTenantConnectionCreatesNoSecondUserForItsExternalID: a tenant
// connection's create of an externalId it provisions already, under
// another userName, is ErrUsernameTaken (409) and writes nothing, as a
// platform connection's is (which finds that user by its identity). Before,
// the tenant connection made a second user with the same externalId
// (re-check 19r2).
func TestSCIMTenantConnectionCreatesNoSecondUserForItsExternalID(t *testing.T) {
	s, _, svc := newReplica(t, nil)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	configureOktaAndAzure(t, svc, admin, "prod", "staging")
	for i, platform := range []bool{false, true} {
		conn := scimConn(t, svc, "okta", platform)
		meta := events.Meta{Actor: events.Actor{Type: "scim", ID: conn}}
		ext := []string{"00u-rae", "00u-rae2"}[i]
		if _, err := svc.SCIMCreateUser(ctx, meta, conn, commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "rae" + ext, ExternalID: ext}, Active: true}); err != nil {
			t.Fatal(err)
		}
		in := commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "other" + ext, ExternalID: ext}, Active: true}
		refusedWithNothingWritten(t, s, svc, conn, in, commands.ErrUsernameTaken)
	}
}
