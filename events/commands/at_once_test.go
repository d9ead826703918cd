package commands_test

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/pquerna/otp/totp"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// Requests at once (two tabs, a double click, a client's retry) that each
// replace a secret: only the one decided against what it found holds, the
// others are refused and show nothing — never an answer whose secret is
// void already, or a confirmation of a secret the code never matched (an
// outside check, 13f). "At once" is replica B's change landing after
// replica A's request has read and decided, before its append (the
// stream's before hook): A's append conflicts, and its decision is made
// again on the caught-up state. One request after the other is not "at
// once", even through a replica whose read model lags (behind): A catches
// up with the user's mfa subject before it reads (outside check 13r5).

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

// atOnce makes change (through replica b, once it has applied the stream)
// land once, when an append holding an event of type typ is about to be
// made: after the request making it has read and decided, before its
// append. It returns how many messages the stream holds once change is
// stored.
func atOnce(t *testing.T, s *stream, b *replicaModel, typ string, change func() error) func() int {
	t.Helper()
	landed := -1
	s.before = func(msgs []events.Message) {
		for _, m := range msgs {
			env, _, err := events.Decode(m.Data)
			if err != nil {
				t.Error(err)
				return
			}
			if env.Type != typ {
				continue
			}
			s.before = nil
			head, err := s.Head(context.Background())
			if err == nil {
				err = b.WaitFor(context.Background(), head)
			}
			if err == nil {
				err = change()
			}
			if err != nil {
				t.Error(err)
			}
			if head, err = s.Head(context.Background()); err != nil {
				t.Error(err)
			}
			landed = int(head)
			return
		}
	}
	return func() int {
		t.Helper()
		if landed < 0 {
			t.Fatalf("no %s append was made: the change did not land in between", typ)
		}
		return landed
	}
}

// refusedWith runs what, wants err, and checks that nothing was appended.
func refusedWith(t *testing.T, s *stream, what string, want error, run func() error) {
	t.Helper()
	before := len(s.msgs)
	refusedSince(t, s, what, want, func() int { return before }, run)
}

// refusedSince runs what, wants err, and checks that nothing was appended
// after the stream held since() messages (atOnce: once the change landed).
func refusedSince(t *testing.T, s *stream, what string, want error, since func() int, run func() error) {
	t.Helper()
	if err := run(); !errors.Is(err, want) {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
	for _, m := range s.msgs[since():] {
		env, _, err := events.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		t.Errorf("%s refused, yet %s (%s) was appended", what, env.Type, env.AggregateID)
	}
}

// firstStep is the first step of u's password login through svc: the
// second factor is required.
func firstStep(t *testing.T, svc *commands.Service, u domain.User) *commands.MFARequiredError {
	t.Helper()
	_, err := svc.Login(context.Background(), events.Meta{}, commands.LoginInput{Username: u.Username, Password: u.Username + "-passphrase-long"})
	var required *commands.MFARequiredError
	if !errors.As(err, &required) {
		t.Fatalf("login: %v, want a second factor required", err)
	}
	return required
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

// confirmedTOTP enrols u in TOTP through svc and confirms it.
func confirmedTOTP(t *testing.T, svc *commands.Service, self events.Meta, u domain.User) {
	t.Helper()
	ctx := context.Background()
	e, err := svc.EnrollTOTP(ctx, self, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(e.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ConfirmTOTP(ctx, self, u.ID, code); err != nil {
		t.Fatal(err)
	}
}

// TestConfirmTOTPOfASecretReplacedMeanwhile: tab A enrols (secret A), and
// tab B enrols again (secret B) while A confirms with a code of secret A.
// The confirmation is refused: before, it confirmed secret B — the answer
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
	since := atOnce(t, s, b, domain.TypeMFATOTPConfirmed, func() error {
		tabB, err = onB.EnrollTOTP(ctx, self, u.ID)
		return err
	})
	codeA, err := totp.GenerateCode(tabA.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	refusedSince(t, s, "a confirmation with a code of the replaced secret", domain.ErrTOTPEnrolmentReplaced, since, func() error {
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

// TestConfirmTOTPThroughALaggingReplica: enrolled twice through A then B,
// confirmed through A with a code of the newest secret, before A has
// applied B's enrolment: it is confirmed. Before, A checked the code
// against the secret its read model held, and answered 400 "does not match
// the secret being enrolled" (outside check 13r5: 1 of 20).
func TestConfirmTOTPThroughALaggingReplica(t *testing.T) {
	s, a, onA := newReplica(t, nil)
	_, b, onB := newReplica(t, s)
	ctx := context.Background()
	u := newMFAUser(t, onA, "lagging")
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}

	if _, err := onA.EnrollTOTP(ctx, self, u.ID); err != nil {
		t.Fatal(err)
	}
	var newest commands.TOTPEnrollment
	behind(t, s, a, b, func() error {
		var err error
		newest, err = onB.EnrollTOTP(ctx, self, u.ID)
		return err
	})
	code, err := totp.GenerateCode(newest.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	codes, err := onA.ConfirmTOTP(ctx, self, u.ID, code)
	if err != nil || len(codes) != domain.RecoveryCodeCount {
		t.Fatalf("a confirmation with a code of the newest secret through a lagging replica: %d codes, %v", len(codes), err)
	}
	if m, _ := a.model.MFA(u.ID); !m.HasTOTP() {
		t.Fatal("no TOTP secret is confirmed")
	}
}

// TestRegenerateRecoveryCodesAtOnce: two regenerations of the recovery
// codes at once: the second is refused, instead of showing a set that the
// first has already made void (both answered 200 before).
func TestRegenerateRecoveryCodesAtOnce(t *testing.T) {
	s, _, onA := newReplica(t, nil)
	_, b, onB := newReplica(t, s)
	ctx := context.Background()
	u := newMFAUser(t, onA, "twice")
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}
	confirmedTOTP(t, onA, self, u)

	since := atOnce(t, s, b, domain.TypeMFARecoveryCodesGenerated, func() error {
		_, err := onB.RegenerateRecoveryCodes(ctx, self, u.ID)
		return err
	})
	refusedSince(t, s, "a regeneration of a set replaced meanwhile", domain.ErrRecoveryCodesReplaced, since, func() error {
		_, err := onA.RegenerateRecoveryCodes(ctx, self, u.ID)
		return err
	})
	// One after the other: each makes a set.
	if _, err := onA.RegenerateRecoveryCodes(ctx, self, u.ID); err != nil {
		t.Fatalf("a regeneration once the other is stored: %v", err)
	}
}

// TestRegenerateRecoveryCodesReplacedBeforeTheAnswer: two regenerations
// sent together, B's decided once A's was stored (its catch-up read A's
// set) and stored before A answers: A's set is void, so A answers 409, not
// a set; B's set is in force. Before, both answered a set (a re-check, 14r5,
// saw it in 13 of 14 runs through two replicas).
func TestRegenerateRecoveryCodesReplacedBeforeTheAnswer(t *testing.T) {
	s, _, onA := newReplica(t, nil)
	_, b, onB := newReplica(t, s)
	ctx := context.Background()
	u := newMFAUser(t, onA, "together")
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}
	confirmedTOTP(t, onA, self, u)

	var fromB []string
	afterNextAppend(t, s, b, func() (err error) {
		fromB, err = onB.RegenerateRecoveryCodes(ctx, self, u.ID)
		return err
	})
	if codes, err := onA.RegenerateRecoveryCodes(ctx, self, u.ID); !errors.Is(err, domain.ErrRecoveryCodesReplaced) {
		t.Fatalf("A's regeneration, replaced before its answer: %d codes, %v; want %v", len(codes), err, domain.ErrRecoveryCodesReplaced)
	}
	if len(fromB) == 0 {
		t.Fatal("B made no set")
	}
	res, err := onA.CompleteMFA(ctx, events.Meta{}, commands.MFAInput{Token: firstStep(t, onA, u).Token, Code: fromB[0]})
	if err != nil || res.User.ID != u.ID {
		t.Fatalf("a code of B's set: %v", err)
	}
}

// TestRecoveryCodesThroughALaggingReplica: one client regenerating its
// recovery codes through A and B alternately, one request at a time, A not
// having applied B's regeneration yet: each makes a set (before, 10 of 400
// answered 409 "replaced by another request at the same moment": outside
// check 13r5).
func TestRecoveryCodesThroughALaggingReplica(t *testing.T) {
	s, a, onA := newReplica(t, nil)
	_, b, onB := newReplica(t, s)
	ctx := context.Background()
	u := newMFAUser(t, onA, "alternating")
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}
	confirmedTOTP(t, onA, self, u)

	for i := 0; i < 3; i++ {
		behind(t, s, a, b, func() error {
			_, err := onB.RegenerateRecoveryCodes(ctx, self, u.ID)
			return err
		})
		if codes, err := onA.RegenerateRecoveryCodes(ctx, self, u.ID); err != nil || len(codes) != domain.RecoveryCodeCount {
			t.Fatalf("round %d: a regeneration through A after one through B: %d codes, %v", i, len(codes), err)
		}
	}

}

// TestRecoveryCodeOfAnotherReplicasSetAtLogin: a login's second step
// through A with a code of the set just made through B, before A has
// applied it: accepted, not counted as a wrong code.
func TestRecoveryCodeOfAnotherReplicasSetAtLogin(t *testing.T) {
	s, a, onA := newReplica(t, nil)
	_, b, onB := newReplica(t, s)
	ctx := context.Background()
	u := newMFAUser(t, onA, "newset")
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}
	confirmedTOTP(t, onA, self, u)

	// The first step through A (which catches A up), the codes regenerated
	// through B, the second step through A.
	required := firstStep(t, onA, u)
	var codes []string
	behind(t, s, a, b, func() error {
		var err error
		codes, err = onB.RegenerateRecoveryCodes(ctx, self, u.ID)
		return err
	})
	res, err := onA.CompleteMFA(ctx, events.Meta{}, commands.MFAInput{Token: required.Token, Code: codes[0]})
	if err != nil {
		t.Fatalf("a code of the set made through B, through a lagging A: %v", err)
	}
	if res.User.ID != u.ID {
		t.Fatalf("signed in as %q, want %q", res.User.ID, u.ID)
	}
}

// TestDeletePasskeyThroughALaggingReplica: a passkey registered through B
// is deleted through A before A has applied the registration: it is
// deleted. Before, A's decision found no such passkey and answered 404,
// appending nothing, so no conflict made it look again.
func TestDeletePasskeyThroughALaggingReplica(t *testing.T) {
	s, a, onA := newReplica(t, nil)
	_, b, _ := newReplica(t, s)
	ctx := context.Background()
	u := newMFAUser(t, onA, "laptop")
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}

	pk := domain.Passkey{ID: "Y3JlZGVudGlhbC0x", Name: "Laptop", PublicKey: []byte{1, 2, 3}, CreatedAt: time.Now().UTC()}
	passkeyThroughB(t, s, a, b, u, pk)
	if err := onA.DeletePasskey(ctx, self, u.ID, pk.ID); err != nil {
		t.Fatalf("the deletion through a lagging replica: %v", err)
	}
	if m, _ := a.model.MFA(u.ID); len(m.Passkeys) != 0 {
		t.Fatalf("%d passkeys left", len(m.Passkeys))
	}
}

// passkeyThroughB stores a passkey registration as replica b makes it (its
// WebAuthn ceremony is the browser tests'), on the mfa subject as b has it,
// while replica a has not applied it.
func passkeyThroughB(t *testing.T, s *stream, a, b *replicaModel, u domain.User, pk domain.Passkey) {
	t.Helper()
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}
	behind(t, s, a, b, func() error {
		m, seq := b.model.MFA(u.ID)
		data, err := events.Encode(commands.NewID("evt"), domain.AggregateMFA, u.ID, m.Version+1, time.Now(), self,
			domain.MFAPasskeyRegistered{UserID: u.ID, Passkey: pk})
		if err != nil {
			return err
		}
		_, err = s.Append(context.Background(), events.Message{Subject: events.Subject(domain.AggregateMFA, u.ID), ExpectSeq: seq, ID: commands.NewID("cmd") + "-0", Data: data})
		return err
	})
}

var testRP = commands.RelyingParty{ID: "localhost", Origins: []string{"http://localhost:8080"}}

// TestPasskeyCeremoniesThroughALaggingReplica: a passkey registered through
// B a moment ago, before A has applied it. The second step's challenge
// through A allows it (before, A's options named only the passkeys its read
// model held, and the browser's only passkey could not answer), and a new
// registration through A asks the authenticator not to register it again.
func TestPasskeyCeremoniesThroughALaggingReplica(t *testing.T) {
	s, a, onA := newReplica(t, nil)
	_, b, _ := newReplica(t, s)
	ctx := context.Background()
	u := newMFAUser(t, onA, "laggingkey")
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}
	confirmedTOTP(t, onA, self, u)
	required := firstStep(t, onA, u)

	first := domain.Passkey{ID: "Y3JlZGVudGlhbC0x", Name: "Laptop", PublicKey: []byte{1, 2, 3}, CreatedAt: time.Now().UTC()}
	passkeyThroughB(t, s, a, b, u, first)
	_, assertion, err := onA.WebAuthnChallenge(ctx, required.Token, testRP)
	if err != nil {
		t.Fatal(err)
	}
	allowed := func(ds []protocol.CredentialDescriptor) []string {
		var ids []string
		for _, d := range ds {
			ids = append(ids, base64.RawURLEncoding.EncodeToString(d.CredentialID))
		}
		return ids
	}
	if ids := allowed(assertion.Response.AllowedCredentials); !slices.Contains(ids, first.ID) {
		t.Errorf("the challenge through A allows %v, not the passkey registered through B", ids)
	}

	second := domain.Passkey{ID: "Y3JlZGVudGlhbC0y", Name: "Phone", PublicKey: []byte{4, 5, 6}, CreatedAt: time.Now().UTC()}
	passkeyThroughB(t, s, a, b, u, second)
	_, creation, err := onA.BeginPasskeyRegistration(ctx, u.ID, testRP)
	if err != nil {
		t.Fatal(err)
	}
	if ids := allowed(creation.Response.CredentialExcludeList); !slices.Contains(ids, second.ID) {
		t.Errorf("a registration through A excludes %v, not the passkey registered through B", ids)
	}
}

// TestEnrolmentTokenThroughALaggingReplica: an enrolment token (a policy
// requires a second factor) of a user who set up TOTP through B a moment
// ago is refused through A as "set up already", as through B — before, A
// took it as the user's and went on with a second enrolment.
func TestEnrolmentTokenThroughALaggingReplica(t *testing.T) {
	s, a, onA := newReplica(t, nil)
	_, b, onB := newReplica(t, s)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	u := newMFAUser(t, onA, "enrolling")
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}
	if _, err := onA.SetMFAPolicy(ctx, admin, "t1", true); err != nil {
		t.Fatal(err)
	}
	_, err := onA.Login(ctx, events.Meta{}, commands.LoginInput{Username: u.Username, Password: u.Username + "-passphrase-long"})
	var enrol *commands.MFAEnrollmentRequiredError
	if !errors.As(err, &enrol) {
		t.Fatalf("login: %v, want enrolment required", err)
	}
	behind(t, s, a, b, func() error {
		confirmedTOTP(t, onB, self, u)
		return nil
	})
	if _, err := onA.EnrollmentUser(ctx, enrol.Token); !errors.Is(err, commands.ErrMFAEnrolledMeanwhile) {
		t.Fatalf("the enrolment token through A: %v, want %v", err, commands.ErrMFAEnrolledMeanwhile)
	}
}

// TestSSOLoginThroughALaggingReplicaAsksTheNewFactor: a user set up TOTP
// through B a moment ago; their next sign-in through an identity provider
// lands on A before A has applied it: the second factor is asked. Before,
// A read "no factor" and started a session on the provider's word alone
// (the session's start is decided on the user's subject, which the
// enrolment does not move). Likewise an MFA policy set through B a moment
// ago: enrolment comes first, as for a password login.
func TestSSOLoginThroughALaggingReplicaAsksTheNewFactor(t *testing.T) {
	s, a, onA := newReplica(t, nil)
	_, b, onB := newReplica(t, s)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	p, _, err := onA.ConfigureSSOProvider(ctx, admin, commands.SSOProviderInput{
		Name: "okta", Type: domain.SSOOkta, Domain: "example.okta.com", ClientID: "client", ClientSecret: "client-secret", AllowedTenants: []string{"t1"},
		RoleMappings: []domain.RoleMapping{{Group: "ops", Tenant: "t1", Role: domain.RoleViewer}},
	})
	if err != nil {
		t.Fatal(err)
	}
	in := domain.SSOLogin{Provider: "okta", Issuer: p.IdentityIssuer(), Subject: "00u-lagging", Email: "lagging@example.com", EmailVerified: true}
	res, err := onA.SSOLogin(ctx, events.Meta{}, in)
	if err != nil {
		t.Fatalf("the first sign-in: %v", err)
	}
	u := res.User
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}
	behind(t, s, a, b, func() error {
		confirmedTOTP(t, onB, self, u)
		return nil
	})
	_, err = onA.SSOLogin(ctx, events.Meta{}, in)
	var required *commands.MFARequiredError
	if !errors.As(err, &required) {
		t.Fatalf("the sign-in through A after TOTP was set up through B: %v, want a second factor required", err)
	}

	// A policy set through B a moment ago holds for the next sign-in
	// through A of a user it covers: enrolment first.
	viewer := domain.SSOLogin{Provider: "okta", Issuer: p.IdentityIssuer(), Subject: "00u-viewer", Email: "viewer@example.com", EmailVerified: true, Groups: []string{"ops"}}
	if _, err := onA.SSOLogin(ctx, events.Meta{}, viewer); err != nil {
		t.Fatalf("the viewer's first sign-in: %v", err)
	}
	behind(t, s, a, b, func() error {
		_, err := onB.SetMFAPolicy(ctx, admin, "t1", true)
		return err
	})
	_, err = onA.SSOLogin(ctx, events.Meta{}, viewer)
	var enrol *commands.MFAEnrollmentRequiredError
	if !errors.As(err, &enrol) {
		t.Fatalf("a sign-in through A under a policy set through B: %v, want enrolment required", err)
	}
}
