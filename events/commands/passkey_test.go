package commands_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// TestPasskeyRegistrationBegunBeforeACutOff: a passkey registration begun
// before an administrator's reset of the user's factors, a password change
// or a deactivation (undone since) does not finish after it — in a session
// started since, say — while one begun after it goes on to the WebAuthn
// verification. Before, its token carried neither the resets nor the
// cut-off, and was taken (outside check 14e). The refusal comes before the
// authenticator's answer is verified: this one is no registration at all,
// which a live ceremony refuses as such.
func TestPasskeyRegistrationBegunBeforeACutOff(t *testing.T) {
	s, _, svc := newReplica(t, nil)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	notARegistration := json.RawMessage(`{"id":"x","rawId":"x","type":"public-key","response":{}}`)
	for _, tc := range []struct {
		name, user string
		cut        func(u domain.User) error
	}{
		{"an administrator's reset of the factors", "regreset", func(u domain.User) error {
			_, err := svc.ResetMFA(ctx, admin, u.ID, "lost device", func(domain.User) error { return nil })
			return err
		}},
		{"a new password", "regpassword", func(u domain.User) error {
			return svc.ChangePassword(ctx, admin, u.ID, "another-passphrase-long", "", "")
		}},
		{"a deactivation, undone since", "regdeactivated", func(u domain.User) error {
			if _, err := svc.DeactivateUser(ctx, admin, u.ID, "left"); err != nil {
				return err
			}
			_, err := svc.ActivateUser(ctx, admin, u.ID, "back")
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newMFAUser(t, svc, tc.user)
			self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}
			before, _, err := svc.BeginPasskeyRegistration(ctx, u.ID, testRP)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.cut(u); err != nil {
				t.Fatal(err)
			}
			refusedWith(t, s, "the registration begun before", commands.ErrMFATokenInvalid, func() error {
				_, err := svc.FinishPasskeyRegistration(ctx, self, u.ID, before, "Laptop", notARegistration, testRP)
				return err
			})
			after, _, err := svc.BeginPasskeyRegistration(ctx, u.ID, testRP)
			if err != nil {
				t.Fatal(err)
			}
			_, err = svc.FinishPasskeyRegistration(ctx, self, u.ID, after, "Laptop", notARegistration, testRP)
			var invalid *domain.ValidationError
			if !errors.As(err, &invalid) || invalid.Field != "credential" {
				t.Errorf("the registration begun after: %v, want the answer refused as no registration", err)
			}
		})
	}
}

// TestRefusedPasskeyAtTheSecondStep: an assertion that does not verify at
// a login's second step is ErrPasskeyNotAccepted — told apart from a wrong
// code (whose answer speaks of a code: outside check 14e), and counted as
// one (mfa.failed, in the login throttle).
func TestRefusedPasskeyAtTheSecondStep(t *testing.T) {
	s, _, svc := newReplica(t, nil)
	ctx := context.Background()
	u := newMFAUser(t, svc, "refusedkey")
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}
	pk := domain.Passkey{ID: "Y3JlZGVudGlhbC0x", Name: "Laptop", PublicKey: []byte{1, 2, 3}, CreatedAt: time.Now().UTC()}
	data, err := events.Encode(commands.NewID("evt"), domain.AggregateMFA, u.ID, 1, time.Now(), self, domain.MFAPasskeyRegistered{UserID: u.ID, Passkey: pk})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, events.Message{Subject: events.Subject(domain.AggregateMFA, u.ID), ID: commands.NewID("cmd") + "-0", Data: data}); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Login(ctx, events.Meta{}, commands.LoginInput{Username: u.Username, Password: u.Username + "-passphrase-long"})
	var required *commands.MFARequiredError
	if !errors.As(err, &required) {
		t.Fatalf("login: %v, want a second factor required", err)
	}
	tok, assertion, err := svc.WebAuthnChallenge(ctx, required.Token, testRP)
	if err != nil {
		t.Fatal(err)
	}
	// An assertion of the passkey for this challenge, whose signature is
	// not the passkey's.
	b64 := base64.RawURLEncoding.EncodeToString
	clientData, err := json.Marshal(map[string]string{"type": "webauthn.get", "challenge": assertion.Response.Challenge.String(), "origin": testRP.Origins[0]})
	if err != nil {
		t.Fatal(err)
	}
	rpHash := sha256.Sum256([]byte(testRP.ID))
	authData := append(rpHash[:], 0x05, 0, 0, 0, 1) // user present and verified, sign count 1
	raw, err := json.Marshal(map[string]any{"id": pk.ID, "rawId": pk.ID, "type": "public-key", "response": map[string]string{
		"clientDataJSON": b64(clientData), "authenticatorData": b64(authData), "signature": b64([]byte("not the passkey's signature")),
		"userHandle": b64([]byte(u.ID)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	failures := func() int {
		n := 0
		for _, m := range s.msgs {
			if env, _, err := events.Decode(m.Data); err == nil && env.Type == domain.TypeMFAFailed {
				n++
			}
		}
		return n
	}
	before := failures()
	_, err = svc.CompleteMFA(ctx, events.Meta{}, commands.MFAInput{Token: tok, WebAuthn: raw, RP: testRP})
	if !errors.Is(err, commands.ErrPasskeyNotAccepted) || !errors.Is(err, commands.ErrMFACodeInvalid) {
		t.Errorf("a passkey's assertion that does not verify: %v, want %v (an %v)", err, commands.ErrPasskeyNotAccepted, commands.ErrMFACodeInvalid)
	}
	if n := failures() - before; n != 1 {
		t.Errorf("%d mfa.failed appended, want 1: the refusal counts in the throttle", n)
	}
}
