package commands_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// Requests at once (two tabs, a double click, a client's retry) that each
// replace a secret: only the one decided against what it found holds, the
// others are refused and show nothing — never an answer whose secret is
// void already, or a confirmation of a secret the code never matched (an
// outside check, 13f). Replica A has not applied what went through
// replica B, as a request on A racing one on B finds it: A's first
// append conflicts, and its decision is made again on the caught-up state.

// behind runs change through b after b has applied the whole stream, and
// checks that a has not applied it.
func behind(t *testing.T, s *stream, a, b *replicaModel, change func() error) {
	t.Helper()
	ctx := context.Background()
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}
	if err := change(); err != nil {
		t.Fatal(err)
	}
	if now, _ := s.Head(ctx); a.applied >= now {
		t.Fatal("A applied B's change: not stale")
	}
}

// refusedWith runs what, wants err, and checks that nothing was appended.
func refusedWith(t *testing.T, s *stream, what string, want error, run func() error) {
	t.Helper()
	before := len(s.msgs)
	if err := run(); !errors.Is(err, want) {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
	for _, m := range s.msgs[before:] {
		env, _, err := events.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		t.Errorf("%s refused, yet %s (%s) was appended", what, env.Type, env.AggregateID)
	}
}

// newMFAUser creates a user through svc.
func newMFAUser(t *testing.T, svc *commands.Service, name string) domain.User {
	t.Helper()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	u, err := svc.CreateUser(context.Background(), admin, commands.CreateUserInput{
		Username: name, Password: name + "-passphrase-long",
		Tenants: []domain.TenantRole{{Tenant: "t1", Role: domain.RoleAdmin}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestConfirmTOTPOfASecretReplacedMeanwhile: tab A enrols (secret A), tab
// B enrols again (secret B) while A confirms with a code of secret A. The
// confirmation is refused: before, it confirmed secret B — the answer
// showed recovery codes, and a code of A then failed at login.
func TestConfirmTOTPOfASecretReplacedMeanwhile(t *testing.T) {
	s, a, onA := newReplica(t, nil)
	_, b, onB := newReplica(t, s)
	ctx := context.Background()
	u := newMFAUser(t, onA, "tabs")
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}

	tabA, err := onA.EnrollTOTP(ctx, self, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	var tabB commands.TOTPEnrollment
	behind(t, s, a, b, func() error {
		tabB, err = onB.EnrollTOTP(ctx, self, u.ID)
		return err
	})
	codeA, err := totp.GenerateCode(tabA.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	refusedWith(t, s, "a confirmation with a code of the replaced secret", domain.ErrTOTPEnrolmentReplaced, func() error {
		codes, err := onA.ConfirmTOTP(ctx, self, u.ID, codeA)
		if err == nil && len(codes) > 0 {
			m, _ := a.model.MFA(u.ID)
			t.Logf("answered %d recovery codes; the secret in force is tab B's: %v", len(codes), m.HasTOTP())
		}
		return err
	})
	if m, _ := a.model.MFA(u.ID); m.HasTOTP() {
		t.Fatal("a TOTP secret is confirmed")
	}

	// Tab B's code confirms tab B's secret, through either replica.
	codeB, err := totp.GenerateCode(tabB.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onA.ConfirmTOTP(ctx, self, u.ID, codeB); err != nil {
		t.Fatalf("tab B's confirmation: %v", err)
	}
}

// TestRegenerateRecoveryCodesAtOnce: two regenerations of the recovery
// codes at once: the second is refused, instead of showing a set that the
// first has already made void (both answered 200 before).
func TestRegenerateRecoveryCodesAtOnce(t *testing.T) {
	s, a, onA := newReplica(t, nil)
	_, b, onB := newReplica(t, s)
	ctx := context.Background()
	u := newMFAUser(t, onA, "twice")
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}
	e, err := onA.EnrollTOTP(ctx, self, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(e.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onA.ConfirmTOTP(ctx, self, u.ID, code); err != nil {
		t.Fatal(err)
	}

	behind(t, s, a, b, func() error {
		_, err := onB.RegenerateRecoveryCodes(ctx, self, u.ID)
		return err
	})
	refusedWith(t, s, "a regeneration of a set replaced meanwhile", domain.ErrRecoveryCodesReplaced, func() error {
		_, err := onA.RegenerateRecoveryCodes(ctx, self, u.ID)
		return err
	})
	// One after the other: each makes a set.
	if _, err := onA.RegenerateRecoveryCodes(ctx, self, u.ID); err != nil {
		t.Fatalf("a regeneration once caught up: %v", err)
	}
}
