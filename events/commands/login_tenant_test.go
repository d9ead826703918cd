package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// challengesIn returns the user.login_challenged events s holds from
// message from on.
func challengesIn(t *testing.T, s *stream, from int) []domain.UserLoginChallenged {
	t.Helper()
	s.mu.Lock()
	msgs := append([]events.Message(nil), s.msgs[from:]...)
	s.mu.Unlock()
	var out []domain.UserLoginChallenged
	for _, m := range msgs {
		env, _, err := events.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if env.Type != domain.TypeUserLoginChallenged {
			continue
		}
		var c domain.UserLoginChallenged
		if err := json.Unmarshal(env.Data, &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// TestRightPasswordWithAForeignTenantIsRecorded: the right password with a
// tenant the user holds no role in never confirms the password without a
// record (an outside check, 20a: a guesser who added any tenant to each
// guess had the right guess answered 403 FORBIDDEN with no event, even for
// an account with a second factor, which without the tenant answers 403
// MFA_REQUIRED and records a challenge). Without a second factor: 403 and
// a user.login_challenged with reason no_role_in_tenant, not a failed
// login (the count stays). With one: the factor is asked first, recorded
// as any challenge, and the second step answers 403 for the tenant.
func TestRightPasswordWithAForeignTenantIsRecorded(t *testing.T) {
	now := time.Unix(1_800_000_010, 0)
	s := &stream{}
	r, svc := clockedReplica(t, s, now)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	plain, err := svc.CreateUser(ctx, admin, commands.CreateUserInput{
		Username: "tess", Password: "tess-passphrase-long",
		Tenants: []domain.TenantRole{{Tenant: "prod", Role: domain.RoleViewer}},
	})
	if err != nil {
		t.Fatal(err)
	}
	from := len(s.msgs)
	_, err = svc.Login(ctx, events.Meta{}, commands.LoginInput{Username: "tess", Password: "tess-passphrase-long", Tenant: "staging"})
	if !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("the right password with a foreign tenant: %v, want forbidden", err)
	}
	got := challengesIn(t, s, from)
	if len(got) != 1 || got[0].UserID != plain.ID || got[0].Reason != domain.LoginRefusedTenant || got[0].Tenant != "staging" || got[0].Method != "password" {
		t.Fatalf("recorded %+v, want one user.login_challenged of %s with reason %s, tenant staging", got, plain.ID, domain.LoginRefusedTenant)
	}
	if u, _, _ := r.model.User(plain.ID); u.FailedLogins != 0 {
		t.Fatalf("the refusal counted as a failed login: %d", u.FailedLogins)
	}

	// A second factor: asked before the tenant is looked at.
	mfa, err := svc.CreateUser(ctx, admin, commands.CreateUserInput{
		Username: "mfauser", Password: "mfa-passphrase-long",
		Tenants: []domain.TenantRole{{Tenant: "prod", Role: domain.RoleViewer}},
	})
	if err != nil {
		t.Fatal(err)
	}
	self := events.Meta{Actor: events.Actor{Type: "user", ID: mfa.ID}}
	e, err := svc.EnrollTOTP(ctx, self, mfa.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ConfirmTOTP(ctx, self, mfa.ID, totpCode(t, e.Secret, now)); err != nil {
		t.Fatal(err)
	}
	from = len(s.msgs)
	_, err = svc.Login(ctx, events.Meta{}, commands.LoginInput{Username: "mfauser", Password: "mfa-passphrase-long", Tenant: "staging"})
	var required *commands.MFARequiredError
	if !errors.As(err, &required) {
		t.Fatalf("the right password of an MFA account with a foreign tenant: %v, want a second factor required", err)
	}
	got = challengesIn(t, s, from)
	if len(got) != 1 || got[0].UserID != mfa.ID || got[0].Reason != "" {
		t.Fatalf("recorded %+v, want one challenge of %s without a reason", got, mfa.ID)
	}
	// The second step checks the tenant: 403, the code not spent.
	code := totpCode(t, e.Secret, now.Add(30*time.Second))
	if _, err := svc.CompleteMFA(ctx, events.Meta{}, commands.MFAInput{Token: required.Token, Code: code}); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("the second step with a foreign tenant: %v, want forbidden", err)
	}
	// Its own tenant signs in, with the same code.
	_, err = svc.Login(ctx, events.Meta{}, commands.LoginInput{Username: "mfauser", Password: "mfa-passphrase-long", Tenant: "prod"})
	if !errors.As(err, &required) {
		t.Fatalf("the right password with its tenant: %v, want a second factor required", err)
	}
	res, err := svc.CompleteMFA(ctx, events.Meta{}, commands.MFAInput{Token: required.Token, Code: code})
	if err != nil || res.Session.Tenant != "prod" {
		t.Fatalf("the second step with its tenant: %+v, %v", res.Session, err)
	}
}
