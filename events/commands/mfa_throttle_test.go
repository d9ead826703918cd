package commands_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// clockedReplica is throttledReplica (5 failures, 15 minutes) with the
// clock fixed at now: the TOTP codes a test computes are of the steps the
// service checks, whatever the wall clock does meanwhile.
func clockedReplica(t *testing.T, s *stream, now time.Time) (*replicaModel, *commands.Service) {
	t.Helper()
	r, svc, _ := replicaWith(t, s, s, func(c *commands.Config) {
		c.Throttle = domain.LoginThrottle{MaxFailures: 5, LockoutFor: 15 * time.Minute}
		c.Now = func() time.Time { return now }
	})
	return r, svc
}

// totpCode is the code of secret at at.
func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// wrongCodes are n six-digit codes none of which is secret's within a step
// of now.
func wrongCodes(t *testing.T, secret string, now time.Time, n int) []string {
	t.Helper()
	valid := map[string]bool{}
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		valid[totpCode(t, secret, now.Add(d))] = true
	}
	var out []string
	for i := 0; len(out) < n; i++ {
		if c := fmt.Sprintf("%06d", 100000+i*7919); !valid[c] {
			out = append(out, c)
		}
	}
	return out
}

// TestSSOSecondFactorWhileLocked: a single sign-on of a user with TOTP,
// then a burst of codes with one MFA token: five wrong ones (through
// replica B, with an MFA token of its own) land after the right one was
// accepted through A and before A starts the session. The session is
// refused with the lockout, as for a password's second step. Before, a
// login whose first factor was an identity provider's was not decided
// against the throttle at all, and the right code signed in after the
// fifth mfa.failed was stored (outside check 17b: tens of guesses per
// lockout).
func TestSSOSecondFactorWhileLocked(t *testing.T) {
	now := time.Unix(1_800_000_010, 0) // 10 s into a TOTP step
	s := &stream{}
	_, onA := clockedReplica(t, s, now)
	b, onB := clockedReplica(t, s, now)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	p, _, err := onA.ConfigureSSOProvider(ctx, admin, commands.SSOProviderInput{
		Name: "okta", Type: domain.SSOOkta, Domain: "example.okta.com", ClientID: "client", ClientSecret: "client-secret",
	})
	if err != nil {
		t.Fatal(err)
	}
	in := domain.SSOLogin{Provider: "okta", Issuer: p.IdentityIssuer(), Subject: "00u-burst", Email: "burst@example.com", EmailVerified: true}
	res, err := onA.SSOLogin(ctx, events.Meta{}, in)
	if err != nil {
		t.Fatalf("the first sign-in: %v", err)
	}
	u := res.User
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}
	e, err := onA.EnrollTOTP(ctx, self, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onA.ConfirmTOTP(ctx, self, u.ID, totpCode(t, e.Secret, now)); err != nil {
		t.Fatal(err)
	}
	step := func(on *commands.Service) string {
		t.Helper()
		_, err := on.SSOLogin(ctx, events.Meta{}, in)
		var required *commands.MFARequiredError
		if !errors.As(err, &required) {
			t.Fatalf("the sign-in of a user with TOTP: %v, want a second factor required", err)
		}
		return required.Token
	}
	tokA := step(onA)
	if head, _ := s.Head(ctx); b.WaitFor(ctx, head) != nil {
		t.Fatal("B cannot catch up")
	}
	tokB := step(onB)
	landed, before := false, len(s.msgs)
	s.before = func(msgs []events.Message) {
		env, _, err := events.Decode(msgs[0].Data)
		if err != nil || env.Type != domain.TypeSessionStarted {
			return
		}
		s.before = nil
		for _, c := range wrongCodes(t, e.Secret, now, 5) {
			if _, err := onB.CompleteMFA(ctx, events.Meta{}, commands.MFAInput{Token: tokB, Code: c}); !errors.Is(err, commands.ErrMFACodeInvalid) {
				t.Errorf("a wrong code through B: %v", err)
			}
		}
		landed = true
	}
	// The step after the one the confirmation used: not a reused code.
	_, err = onA.CompleteMFA(ctx, events.Meta{}, commands.MFAInput{Token: tokA, Code: totpCode(t, e.Secret, now.Add(30*time.Second))})
	if !landed {
		t.Fatal("the wrong codes through B did not land before A's session")
	}
	if !errors.Is(err, domain.ErrThrottled) {
		t.Fatalf("the right code, the account locked meanwhile: %v, want the lockout", err)
	}
	for _, m := range s.msgs[before:] {
		if env, _, _ := events.Decode(m.Data); env.Type == domain.TypeSessionStarted {
			t.Fatalf("a session was started (%s)", env.AggregateID)
		}
	}
}
