package commands_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// adminOfT1 is a tenant admin's authority (http's mayManageUser) for an
// admin of t1 alone: a user who holds roles in t1 and nowhere else.
func adminOfT1(u domain.User) error {
	if u.IsPlatformAdmin() || len(u.Tenants) == 0 {
		return domain.ErrForbidden
	}
	for t := range u.Tenants {
		if t != "t1" {
			return domain.ErrForbidden
		}
	}
	return nil
}

// TestAuthorityCheckedOnTheDecidedState: a tenant admin's authority over a
// user (or an owner's over a key) is checked on the state the command is
// decided against, not only on the read model the request found. Replica
// A has not applied a change made through replica B — the user granted
// admin in t2, the key rotated to another owner — when the admin of t1
// acts through A: the command is refused and nothing is appended. Before,
// the check was made on A's read model only, the append conflicted, and
// the command was decided again on the caught-up state without it (an
// outside check, 13d: user.role_granted (t2 admin), then user.deactivated
// by the admin of t1 — an order no serial run gives).
func TestAuthorityCheckedOnTheDecidedState(t *testing.T) {
	s, a, onA := newReplica(t, nil)
	_, b, onB := newReplica(t, s)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	ta1 := events.Meta{Actor: events.Actor{Type: "user", ID: "user-ta1"}}

	// newUser creates a viewer of t1 through A, with a session.
	n := 0
	newUser := func() (domain.User, string) {
		t.Helper()
		n++
		return newViewerWithSession(t, onA, admin, "victim"+string(rune('a'+n)))
	}
	// behindA runs change through B, which A has not applied.
	behindA := func(change func() error) {
		t.Helper()
		behind(t, s, a, b, change)
	}
	grantT2 := func(u domain.User) func() error {
		return func() error {
			_, err := onB.ExecuteUser(ctx, admin, u.ID, domain.GrantRole{Tenant: "t2", Role: string(domain.RoleAdmin)})
			return err
		}
	}
	refused := func(what string, want error, run func() error) {
		t.Helper()
		before := len(s.msgs)
		if err := run(); !errors.Is(err, want) {
			t.Errorf("%s on a user or key changed meanwhile: %v, want %v", what, err, want)
		}
		for _, m := range s.msgs[before:] {
			env, _, err := events.Decode(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			t.Errorf("%s refused, yet %s (%s) was appended", what, env.Type, env.AggregateID)
		}
	}

	u, _ := newUser()
	behindA(grantT2(u))
	refused("deactivate", domain.ErrForbidden, func() error {
		_, err := onA.ExecuteUserAs(ctx, ta1, u.ID, domain.Deactivate{Reason: "deactivated by user-ta1"}, adminOfT1)
		return err
	})

	u, _ = newUser()
	if _, err := onA.ExecuteUser(ctx, admin, u.ID, domain.Deactivate{Reason: "deactivated by user-admin"}); err != nil {
		t.Fatal(err)
	}
	behindA(grantT2(u))
	refused("activate", domain.ErrForbidden, func() error {
		_, err := onA.ExecuteUserAs(ctx, ta1, u.ID, domain.Activate{Reason: "activated by user-ta1"}, adminOfT1)
		return err
	})

	u, _ = newUser()
	behindA(grantT2(u))
	refused("revoke the user's sessions", domain.ErrForbidden, func() error {
		_, err := onA.RevokeUserSessions(ctx, ta1, u.ID, domain.RevokeReasonAdmin, adminOfT1)
		return err
	})

	u, sid := newUser()
	behindA(grantT2(u))
	refused("revoke a session", domain.ErrForbidden, func() error {
		_, err := onA.RevokeSessions(ctx, ta1, []string{sid}, domain.RevokeReasonAdmin, adminOfT1)
		return err
	})

	u, _ = newUser()
	behindA(grantT2(u))
	refused("reset MFA", domain.ErrForbidden, func() error {
		_, err := onA.ResetMFA(ctx, ta1, u.ID, "reset by user-ta1", adminOfT1)
		return err
	})

	// A role change by the admin of t1 is for a user it sees: one with a
	// role in t1, which B has just revoked.
	u, _ = newUser()
	behindA(func() error {
		_, err := onB.ExecuteUser(ctx, admin, u.ID, domain.RevokeRole{Tenant: "t1"})
		return err
	})
	refused("grant a role", domain.ErrNotFound, func() error {
		_, err := onA.ExecuteUserAs(ctx, ta1, u.ID, domain.GrantRole{Tenant: "t1", Role: string(domain.RoleEditor)},
			func(u domain.User) error {
				if _, ok := u.Tenants["t1"]; !ok {
					return domain.ErrNotFound
				}
				return nil
			})
		return err
	})

	// A key its owner may manage, rotated through B to another owner
	// (who holds it from then on).
	owner, _ := newUser()
	every := func(string) domain.PermissionSet { return domain.SetOf(domain.AdminAll) }
	ownedByHim := func(k domain.APIKey) error {
		if k.OwnerID != owner.ID {
			return domain.ErrForbidden
		}
		return nil
	}
	newKey := func(name string) domain.APIKey {
		t.Helper()
		k, _, err := onA.CreateAPIKey(ctx, events.Meta{Actor: events.Actor{Type: "user", ID: owner.ID}}, commands.CreateAPIKeyInput{
			Name: name, Owner: owner.ID, Tenants: []string{"t1"}, Permissions: []string{string(domain.NodesRead)},
			Env: domain.KeyEnvLive, CallerPermissions: every,
		})
		if err != nil {
			t.Fatal(err)
		}
		behindA(func() error {
			_, _, err := onB.RotateAPIKey(ctx, admin, commands.RotateInput{KeyID: k.ID, Env: domain.KeyEnvLive, OwnerID: "user-admin", CallerPermissions: every})
			return err
		})
		return k
	}
	k := newKey("deploy")
	refused("revoke a key", domain.ErrForbidden, func() error {
		_, err := onA.ExecuteAPIKeyAs(ctx, events.Meta{Actor: events.Actor{Type: "user", ID: owner.ID}}, k.ID, domain.RevokeAPIKey{Reason: "revoked by " + owner.ID}, ownedByHim)
		return err
	})
	k = newKey("backup")
	refused("rotate a key", domain.ErrForbidden, func() error {
		_, _, err := onA.RotateAPIKey(ctx, events.Meta{Actor: events.Actor{Type: "user", ID: owner.ID}}, commands.RotateInput{
			KeyID: k.ID, Env: domain.KeyEnvLive, OwnerID: owner.ID, CallerPermissions: every, May: ownedByHim,
		})
		return err
	})

	// Allowed on the state decided against: done.
	u, _ = newUser()
	if _, err := onA.ExecuteUserAs(ctx, ta1, u.ID, domain.Deactivate{Reason: "deactivated by user-ta1"}, adminOfT1); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := a.model.User(u.ID); got.Active {
		t.Fatal("the admin of t1 could not deactivate a viewer of t1")
	}
}

// TestAuthorityHeldWhenStored: what a tenant admin's command stores rests
// on the authority it held when each event was stored, and the answer says
// what was stored. Through one replica, up to date; the platform admin
// grants the user admin of t2 through another at the worst moment (an
// outside check, 13r2, two replicas on one NATS):
//   - between the MFA reset and the revocation of the user's sessions that
//     follows it: before, the revocation checked the authority again and
//     answered 403, the reset stored and the sessions left live (24/210);
//     now the sessions are revoked as the reset's consequence, answered;
//   - between the check and the append of a session revocation (one, or
//     all of the user's): before, the revocations expected the sessions'
//     subjects only and were stored after the grant, answered 200 (3/210);
//     now each expects the user's subject, conflicts, and the check made
//     again refuses it, nothing stored (and between two of a revoke-all's
//     appends: the one stored is the answer, the other left live);
//   - between the check and the append of an activation's SCIM token
//     retirements: before, retired in appends of their own ahead of the
//     activation, stored though it was refused (8/60); now in its atomic
//     append, refused with it.
func TestAuthorityHeldWhenStored(t *testing.T) {
	s, a, onA := newReplica(t, nil)
	_, _, onB := newReplica(t, s)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	ta1 := events.Meta{Actor: events.Actor{Type: "user", ID: "user-ta1"}}

	n := 0
	newUser := func() (domain.User, string) {
		t.Helper()
		n++
		return newViewerWithSession(t, onA, admin, "target"+string(rune('a'+n)))
	}
	typeOf := func(m events.Message) string {
		t.Helper()
		env, _, err := events.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		return env.Type
	}
	// grantWhen grants u admin of t2 through B once, when an append holding
	// an event of type typ is about to be made (hook: &s.before) or was
	// stored (&s.after).
	grantWhen := func(hook *func([]events.Message), typ string, u domain.User) {
		*hook = func(msgs []events.Message) {
			for _, m := range msgs {
				if typeOf(m) != typ {
					continue
				}
				*hook = nil
				if _, err := onB.ExecuteUser(ctx, admin, u.ID, domain.GrantRole{Tenant: "t2", Role: string(domain.RoleAdmin)}); err != nil {
					t.Error(err)
				}
				return
			}
		}
	}
	storedSince := func(before int, typ string) int {
		t.Helper()
		s.mu.Lock()
		msgs := slices.Clone(s.msgs[before:])
		s.mu.Unlock()
		k := 0
		for _, m := range msgs {
			if typeOf(m) == typ {
				k++
			}
		}
		return k
	}
	sessionRevoked := func(sid string) bool {
		t.Helper()
		head, err := s.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.WaitFor(ctx, head); err != nil {
			t.Fatal(err)
		}
		sess, _, ok := a.model.Session(sid)
		return ok && sess.Revoked
	}

	u, sid := newUser()
	before := len(s.msgs)
	grantWhen(&s.after, domain.TypeMFAReset, u)
	revoked, err := onA.ResetMFA(ctx, ta1, u.ID, "reset by user-ta1", adminOfT1)
	if err != nil || revoked != 1 {
		t.Errorf("reset, the grant landing after it: %d sessions revoked, %v; want 1, nil", revoked, err)
	}
	if storedSince(before, domain.TypeMFAReset) != 1 || storedSince(before, domain.TypeUserRoleGranted) != 1 || !sessionRevoked(sid) {
		t.Error("the reset, the grant and the session's revocation are not all stored")
	}

	for _, all := range []bool{false, true} {
		u, sid := newUser()
		before := len(s.msgs)
		grantWhen(&s.before, domain.TypeSessionRevoked, u)
		var err error
		if all {
			_, err = onA.RevokeUserSessions(ctx, ta1, u.ID, domain.RevokeReasonAdmin, adminOfT1)
		} else {
			_, err = onA.RevokeSessions(ctx, ta1, []string{sid}, domain.RevokeReasonAdmin, adminOfT1)
		}
		if !errors.Is(err, domain.ErrForbidden) {
			t.Errorf("revoke (all: %v), the grant landing before the append: %v, want ErrForbidden", all, err)
		}
		if storedSince(before, domain.TypeUserRoleGranted) != 1 {
			t.Error("the grant was not stored")
		}
		if k := storedSince(before, domain.TypeSessionRevoked); k != 0 || sessionRevoked(sid) {
			t.Errorf("revoke (all: %v) refused, yet %d session.revoked stored", all, k)
		}
	}

	// The authority lost between two of a revoke-all's appends: the one
	// stored stays revoked and is the answer, the other is left live.
	u, _ = newUser()
	if _, err := onA.Login(ctx, events.Meta{}, commands.LoginInput{Username: u.Username, Password: u.Username + "-passphrase-long"}); err != nil {
		t.Fatal(err)
	}
	before = len(s.msgs)
	grantWhen(&s.after, domain.TypeSessionRevoked, u)
	revoked, err = onA.RevokeUserSessions(ctx, ta1, u.ID, domain.RevokeReasonAdmin, adminOfT1)
	if err != nil || revoked != 1 {
		t.Errorf("revoke all, the grant landing after the first: %d revoked, %v; want 1, nil", revoked, err)
	}
	if k := storedSince(before, domain.TypeSessionRevoked); k != 1 {
		t.Errorf("%d session.revoked stored, want 1", k)
	}
	if live := a.model.UserSessionIDs(u.ID, time.Now()); len(live) != 1 {
		t.Errorf("%d sessions left live, want 1", len(live))
	}

	u, _ = newUser()
	if _, _, err := onA.ConfigureSSOProvider(ctx, admin, commands.SSOProviderInput{
		Name: "okta", Type: domain.SSOOkta, Domain: "example.okta.com", ClientID: "client", ClientSecret: "client-secret", AllowedTenants: []string{"t1"},
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := onA.CreateSCIMConnection(ctx, admin, commands.SCIMConnectionInput{
		Provider: "okta", Tenants: []string{"t1"}, OwnerID: u.ID,
		GroupMappings: []domain.RoleMapping{{Group: "ops", Tenant: "t1", Role: domain.RoleViewer}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := onA.ExecuteUser(ctx, admin, u.ID, domain.Deactivate{Reason: "deactivated by user-admin"}); err != nil {
		t.Fatal(err)
	}
	before = len(s.msgs)
	grantWhen(&s.before, domain.TypeSCIMTokenRotated, u)
	if _, err := onA.ExecuteUserAs(ctx, ta1, u.ID, domain.Activate{Reason: "activated by user-ta1"}, adminOfT1); !errors.Is(err, domain.ErrForbidden) {
		t.Errorf("activate, the grant landing before the token's retirement: %v, want ErrForbidden", err)
	}
	if storedSince(before, domain.TypeUserRoleGranted) != 1 {
		t.Error("the grant was not stored")
	}
	for _, typ := range []string{domain.TypeSCIMTokenRotated, domain.TypeUserActivated} {
		if k := storedSince(before, typ); k != 0 {
			t.Errorf("the activation was refused, yet %d %s stored", k, typ)
		}
	}
	// Allowed: the token is retired with the activation.
	u, _ = newUser()
	if _, _, err := onA.CreateSCIMConnection(ctx, admin, commands.SCIMConnectionInput{
		Provider: "okta", Tenants: []string{"t1"}, OwnerID: u.ID,
		GroupMappings: []domain.RoleMapping{{Group: "ops", Tenant: "t1", Role: domain.RoleViewer}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := onA.ExecuteUser(ctx, admin, u.ID, domain.Deactivate{Reason: "deactivated by user-admin"}); err != nil {
		t.Fatal(err)
	}
	before = len(s.appends)
	if _, err := onA.ExecuteUserAs(ctx, ta1, u.ID, domain.Activate{Reason: "activated by user-ta1"}, adminOfT1); err != nil {
		t.Fatal(err)
	}
	if got := len(s.appends) - before; got != 1 {
		t.Fatalf("the activation took %d appends, want 1", got)
	}
	var types []string
	for _, m := range s.appends[before] {
		types = append(types, typeOf(m))
	}
	if !slices.Equal(types, []string{domain.TypeSCIMTokenRotated, domain.TypeUserActivated}) {
		t.Errorf("the activation's append holds %v", types)
	}
}

// newViewerWithSession creates a viewer of t1 named name through svc, as
// admin, and signs it in: the user and its session's ID.
func newViewerWithSession(t *testing.T, svc *commands.Service, admin events.Meta, name string) (domain.User, string) {
	t.Helper()
	ctx := context.Background()
	u, err := svc.CreateUser(ctx, admin, commands.CreateUserInput{
		Username: name, Password: name + "-passphrase-long",
		Tenants: []domain.TenantRole{{Tenant: "t1", Role: domain.RoleViewer}},
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Login(ctx, events.Meta{}, commands.LoginInput{Username: name, Password: name + "-passphrase-long"})
	if err != nil {
		t.Fatal(err)
	}
	return u, res.Session.ID
}

// TestDeactivationByTheActingAccount: a deactivation with its acting
// account (Deactivate.By) is recorded by_tenant_admin from that account's
// role as the command reads it, not from what the request said: a platform
// admin acting through an API key or a token scoped to a tenant is a
// platform admin (re-check 20r6: recorded a tenant admin's, any tenant
// admin of the user activated it), a tenant admin is one. Without By, the
// command's own ByTenantAdmin holds (a SCIM connection, the service).
func TestDeactivationByTheActingAccount(t *testing.T) {
	_, _, svc := newReplica(t, nil)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	platform, err := svc.CreateUser(ctx, admin, commands.CreateUserInput{
		Username: "platform", Password: "platform-passphrase-long", Roles: []string{string(domain.GlobalAdmin)},
	})
	if err != nil {
		t.Fatal(err)
	}
	tenantAdmin, err := svc.CreateUser(ctx, admin, commands.CreateUserInput{
		Username: "tadmin", Password: "tadmin-passphrase-long",
		Tenants: []domain.TenantRole{{Tenant: "t1", Role: domain.RoleAdmin}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		name string
		cmd  domain.Deactivate
		want bool
	}{
		{"a platform admin said to be a tenant admin (its key, its scoped token)", domain.Deactivate{ByTenantAdmin: true, By: platform.ID}, false},
		{"a tenant admin said to be a platform admin", domain.Deactivate{ByTenantAdmin: false, By: tenantAdmin.ID}, true},
		{"an account the state does not hold", domain.Deactivate{By: "user-01J00000000000000000000000"}, true},
		{"no acting account, a tenant admin's", domain.Deactivate{ByTenantAdmin: true}, true},
		{"no acting account, not a tenant admin's", domain.Deactivate{}, false},
	} {
		u, _ := newViewerWithSession(t, svc, admin, "target"+string(rune('a'+i)))
		tc.cmd.Reason = "deactivated by " + tc.cmd.By
		got, err := svc.ExecuteUserAs(ctx, admin, u.ID, tc.cmd, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got.Active || got.DeactivatedByTenantAdmin != tc.want {
			t.Errorf("%s: active %v, deactivated by a tenant admin %v, want %v", tc.name, got.Active, got.DeactivatedByTenantAdmin, tc.want)
		}
	}
}
