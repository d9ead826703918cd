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

// lastSeqHook is a log whose LastSequence of subject, once, lets something
// land right before it answers: wrong codes recorded through another
// replica while this one checks the right one.
type lastSeqHook struct {
	*stream
	subject string
	hook    func()
}

func (h *lastSeqHook) LastSequence(ctx context.Context, subject string) (uint64, error) {
	if hook := h.hook; hook != nil && subject == h.subject {
		h.hook = nil
		hook()
	}
	return h.stream.LastSequence(ctx, subject)
}

// TestConfirmTOTPGuessesCountInTheLockout: the codes sent to confirm a
// pending TOTP enrolment are guesses like a second step's. A wrong one is
// refused (a validation error, as before) and recorded as mfa.failed
// (reason invalid_enrolment_code) on the user's subject; after five, the
// confirmation is refused with the lockout, the right code too, and
// nothing is confirmed. Before, nothing was recorded and nothing limited
// the guesses (outside check 17b: 300 wrong codes answered 400, then the
// right one confirmed and answered new recovery codes).
func TestConfirmTOTPGuessesCountInTheLockout(t *testing.T) {
	now := time.Unix(1_800_000_010, 0)
	s := &stream{}
	_, svc := clockedReplica(t, s, now)
	ctx := context.Background()
	u := newMFAUser(t, svc, "gus")
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}, Request: events.RequestInfo{IP: "192.0.2.7"}}
	e, err := svc.EnrollTOTP(ctx, self, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	before := len(s.msgs)
	for _, c := range wrongCodes(t, e.Secret, now, 5) {
		if _, err := svc.ConfirmTOTP(ctx, self, u.ID, c); !invalidCode(err) {
			t.Fatalf("a wrong confirmation code: %v, want a validation error", err)
		}
	}
	failed := 0
	for _, m := range s.msgs[before:] {
		env, ev, err := events.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if f, ok := domain.Deref(ev).(domain.MFAFailed); ok && env.AggregateID == u.ID && f.Reason == commands.ReasonEnrolmentCode && f.Factor == domain.FactorTOTP {
			failed++
		}
	}
	if failed != 5 {
		t.Fatalf("%d mfa.failed (invalid_enrolment_code) recorded for 5 wrong confirmation codes, want 5", failed)
	}
	before = len(s.msgs)
	if _, err := svc.ConfirmTOTP(ctx, self, u.ID, totpCode(t, e.Secret, now)); !errors.Is(err, domain.ErrThrottled) {
		t.Fatalf("the right code once five wrong ones locked the account: %v, want the lockout", err)
	}
	if n := len(s.msgs) - before; n != 0 {
		t.Fatalf("the refused confirmation appended %d events", n)
	}
	// So does a password login, as after five wrong passwords.
	if _, err := svc.Login(ctx, events.Meta{}, commands.LoginInput{Username: "gus", Password: "gus-passphrase-long"}); !errors.Is(err, domain.ErrThrottled) {
		t.Fatalf("a login once five confirmation codes were wrong: %v, want the lockout", err)
	}
}

// TestConfirmTOTPRightCodeWhileLocked: five wrong confirmation codes land
// through replica B while replica A checks the right one: A confirms
// nothing and answers the lockout, as a second step's session would.
func TestConfirmTOTPRightCodeWhileLocked(t *testing.T) {
	now := time.Unix(1_800_000_010, 0)
	s := &stream{}
	_, onB := clockedReplica(t, s, now)
	u := newMFAUser(t, onB, "rita")
	logA := &lastSeqHook{stream: s, subject: events.Subject(domain.AggregateUser, u.ID)}
	_, onA, _ := replicaWith(t, s, logA, func(c *commands.Config) {
		c.Throttle = domain.LoginThrottle{MaxFailures: 5, LockoutFor: 15 * time.Minute}
		c.Now = func() time.Time { return now }
	})
	ctx := context.Background()
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}
	e, err := onB.EnrollTOTP(ctx, self, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	logA.hook = func() {
		for _, c := range wrongCodes(t, e.Secret, now, 5) {
			if _, err := onB.ConfirmTOTP(ctx, self, u.ID, c); !invalidCode(err) {
				t.Errorf("a wrong confirmation code through B: %v", err)
			}
		}
	}
	before := len(s.msgs)
	_, err = onA.ConfirmTOTP(ctx, self, u.ID, totpCode(t, e.Secret, now))
	if logA.hook != nil {
		t.Fatal("the wrong codes through B did not land during A's confirmation")
	}
	if !errors.Is(err, domain.ErrThrottled) {
		t.Fatalf("the right code, the account locked meanwhile: %v, want the lockout", err)
	}
	for _, m := range s.msgs[before:] {
		if env, _, _ := events.Decode(m.Data); env.Type == domain.TypeMFATOTPConfirmed || env.Type == domain.TypeMFARecoveryCodesGenerated {
			t.Fatalf("%s was appended", env.Type)
		}
	}
}

// invalidCode reports whether err is the refusal of a wrong confirmation
// code: a validation error of the field code.
func invalidCode(err error) bool {
	var v *domain.ValidationError
	return errors.As(err, &v) && v.Field == "code"
}
