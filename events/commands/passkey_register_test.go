package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

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
