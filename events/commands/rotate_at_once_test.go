package commands_test

import (
	"context"
	"errors"
	"testing"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// TestRotateAtOnce: rotations of one API key, or one SCIM connection's
// token, at once: the second is refused, instead of answering with a
// secret that the first has already made void (six rotations at once gave
// six secrets, only the last one working).
func TestRotateAtOnce(t *testing.T) {
	s, a, onA := newReplica(t, nil)
	_, b, onB := newReplica(t, s)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	every := func(string) domain.PermissionSet { return domain.SetOf(domain.AdminAll) }

	k := deployKey(t, onA)
	rotate := func(on *commands.Service, k domain.APIKey) error {
		_, _, err := on.RotateAPIKey(ctx, admin, commands.RotateInput{
			KeyID: k.ID, Env: domain.KeyEnvLive, OwnerID: "user-admin", CallerPermissions: every, Replaces: k.SecretHash,
		})
		return err
	}
	behind(t, s, a, b, func() error { return rotate(onB, k) })
	seen, _, _ := a.model.APIKey(k.ID) // the key as a request on A finds it
	refusedWith(t, s, "a rotation of a key rotated meanwhile", domain.ErrAPIKeyRotated, func() error { return rotate(onA, seen) })
	// Without the key the caller saw: the one A's read model has.
	behind(t, s, a, b, func() error {
		now, _, _ := b.model.APIKey(k.ID)
		return rotate(onB, now)
	})
	refusedWith(t, s, "a rotation (as A has the key) of a key rotated meanwhile", domain.ErrAPIKeyRotated, func() error {
		_, _, err := onA.RotateAPIKey(ctx, admin, commands.RotateInput{KeyID: k.ID, Env: domain.KeyEnvLive, OwnerID: "user-admin", CallerPermissions: every})
		return err
	})
	if err := a.WaitFor(ctx, uint64(len(s.msgs))); err != nil {
		t.Fatal(err)
	}
	now, _, _ := a.model.APIKey(k.ID)
	if err := rotate(onA, now); err != nil {
		t.Fatalf("a rotation once caught up: %v", err)
	}

	// A SCIM connection's token.
	conn := oktaConnection(t, onA)
	anyone := func(domain.SCIMConnection) error { return nil }
	behind(t, s, a, b, func() error {
		_, _, err := onB.RotateSCIMToken(ctx, admin, conn.ID, "user-admin", "", anyone)
		return err
	})
	refusedWith(t, s, "a rotation of a SCIM token rotated meanwhile", domain.ErrSCIMTokenRotated, func() error {
		_, _, err := onA.RotateSCIMToken(ctx, admin, conn.ID, "user-admin", "", anyone)
		return err
	})
	if _, _, err := onA.RotateSCIMToken(ctx, admin, conn.ID, "user-admin", "", anyone); err != nil {
		t.Fatalf("a SCIM rotation once caught up: %v", err)
	}
}

// deployKey creates the platform admin's key "deploy" through svc.
func deployKey(t *testing.T, svc *commands.Service) domain.APIKey {
	t.Helper()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	k, _, err := svc.CreateAPIKey(context.Background(), admin, commands.CreateAPIKeyInput{
		Name: "deploy", Owner: "user-admin", Tenants: []string{"t1"}, Permissions: []string{string(domain.NodesRead)},
		Env: domain.KeyEnvLive, CallerPermissions: func(string) domain.PermissionSet { return domain.SetOf(domain.AdminAll) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// oktaConnection configures the provider "okta" and a platform SCIM
// connection of it through svc.
func oktaConnection(t *testing.T, svc *commands.Service) domain.SCIMConnection {
	t.Helper()
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	if _, _, err := svc.ConfigureSSOProvider(ctx, admin, commands.SSOProviderInput{
		Name: "okta", Type: domain.SSOOkta, Domain: "example.okta.com", ClientID: "client", ClientSecret: "client-secret", AllowedTenants: []string{"t1"},
	}); err != nil {
		t.Fatal(err)
	}
	conn, _, err := svc.CreateSCIMConnection(ctx, admin, commands.SCIMConnectionInput{Provider: "okta", Tenants: []string{"t1"}, Platform: true})
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// afterNextAppend makes change (through replica b, once it has applied the
// stream) land right after the next append is stored: before the request
// that made it answers.
func afterNextAppend(t *testing.T, s *stream, b *replicaModel, change func() error) {
	t.Helper()
	s.after = func([]events.Message) {
		s.after = nil
		ctx := context.Background()
		head, err := s.Head(ctx)
		if err == nil {
			err = b.WaitFor(ctx, head)
		}
		if err == nil {
			err = change()
		}
		if err != nil {
			t.Error(err)
		}
	}
}

// TestRotationReplacedBeforeTheAnswer: a rotation whose secret (token)
// another rotation, decided once it was stored, replaced before it
// answered: it answers 409, not the void secret. Before, of six rotations
// sent together, three answered a secret, two of them void (a re-check,
// 14r4).
func TestRotationReplacedBeforeTheAnswer(t *testing.T) {
	s, _, onA := newReplica(t, nil)
	_, b, onB := newReplica(t, s)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	every := func(string) domain.PermissionSet { return domain.SetOf(domain.AdminAll) }
	k := deployKey(t, onA)
	rotate := func(on *commands.Service) (string, error) {
		_, secret, err := on.RotateAPIKey(ctx, admin, commands.RotateInput{KeyID: k.ID, Env: domain.KeyEnvLive, OwnerID: "user-admin", CallerPermissions: every})
		return secret, err
	}
	var inForce string
	afterNextAppend(t, s, b, func() (err error) { inForce, err = rotate(onB); return err })
	if secret, err := rotate(onA); !errors.Is(err, domain.ErrAPIKeyRotated) {
		t.Errorf("a rotation replaced before its answer: secret %v, %v; want %v", secret != "", err, domain.ErrAPIKeyRotated)
	}
	if now, _, _ := b.model.APIKey(k.ID); now.SecretHash != commands.HashToken(inForce) {
		t.Error("the other rotation's secret is not in force")
	}

	conn := oktaConnection(t, onA)
	anyone := func(domain.SCIMConnection) error { return nil }
	afterNextAppend(t, s, b, func() error {
		_, _, err := onB.RotateSCIMToken(ctx, admin, conn.ID, "user-admin", "", anyone)
		return err
	})
	if _, token, err := onA.RotateSCIMToken(ctx, admin, conn.ID, "user-admin", "", anyone); !errors.Is(err, domain.ErrSCIMTokenRotated) {
		t.Errorf("a SCIM rotation replaced before its answer: token %v, %v; want %v", token != "", err, domain.ErrSCIMTokenRotated)
	}
}

// TestReplacingClaimsOnePerAggregate: a secret is claimed for one
// replacement at a time (the HTTP handlers hold the claim until they
// answer); another aggregate's is free meanwhile.
func TestReplacingClaimsOnePerAggregate(t *testing.T) {
	_, _, on := newReplica(t, nil)
	release, ok := on.Replacing(domain.AggregateAPIKey, "key-1")
	if !ok {
		t.Fatal("a first claim was refused")
	}
	if _, ok := on.Replacing(domain.AggregateAPIKey, "key-1"); ok {
		t.Fatal("a second claim of one key was granted")
	}
	other, ok := on.Replacing(domain.AggregateAPIKey, "key-2")
	if !ok {
		t.Fatal("another key's claim was refused")
	}
	other()
	if _, ok := on.Replacing(domain.AggregateMFA, "key-1"); !ok {
		t.Fatal("another aggregate of the same id was refused")
	}
	release()
	again, ok := on.Replacing(domain.AggregateAPIKey, "key-1")
	if !ok {
		t.Fatal("a claim after the release was refused")
	}
	again()
}

// TestRotationReplacedBeforeItsStateWasRead: another replica's rotation
// that this replica applies between storing its own rotation and reading the
// key back: the rotation answers 409, since its secret is void. Before, the
// check compared the key as read back (holding the other secret already)
// with the key now, found them equal, and answered the void secret.
func TestRotationReplacedBeforeItsStateWasRead(t *testing.T) {
	s, a, onA := newReplica(t, nil)
	_, b, onB := newReplica(t, s)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	every := func(string) domain.PermissionSet { return domain.SetOf(domain.AdminAll) }
	k := deployKey(t, onA)
	// B rotates right after A's rotation is stored, and A applies it with
	// its own.
	andOnA := func(change func() error) func() error {
		return func() error {
			if err := change(); err != nil {
				return err
			}
			head, err := s.Head(ctx)
			if err != nil {
				return err
			}
			return a.WaitFor(ctx, head)
		}
	}
	afterNextAppend(t, s, b, andOnA(func() error {
		_, _, err := onB.RotateAPIKey(ctx, admin, commands.RotateInput{KeyID: k.ID, Env: domain.KeyEnvLive, OwnerID: "user-admin", CallerPermissions: every})
		return err
	}))
	if _, secret, err := onA.RotateAPIKey(ctx, admin, commands.RotateInput{KeyID: k.ID, Env: domain.KeyEnvLive, OwnerID: "user-admin", CallerPermissions: every}); !errors.Is(err, domain.ErrAPIKeyRotated) {
		t.Errorf("a rotation replaced before it was read back: secret %v, %v; want %v", secret != "", err, domain.ErrAPIKeyRotated)
	}
	conn := oktaConnection(t, onA)
	anyone := func(domain.SCIMConnection) error { return nil }
	afterNextAppend(t, s, b, andOnA(func() error {
		_, _, err := onB.RotateSCIMToken(ctx, admin, conn.ID, "user-admin", "", anyone)
		return err
	}))
	if _, token, err := onA.RotateSCIMToken(ctx, admin, conn.ID, "user-admin", "", anyone); !errors.Is(err, domain.ErrSCIMTokenRotated) {
		t.Errorf("a SCIM rotation replaced before it was read back: token %v, %v; want %v", token != "", err, domain.ErrSCIMTokenRotated)
	}
}

// TestReplacementOvertakenBeforeItsClaim: a request that read the secret it
// replaces, and was overtaken by another replacement before it claimed it
// (the HTTP handlers read, then claim): it is refused, and the other's
// answer stays the secret in force. Before, the regeneration and the SCIM
// rotation read what they replace after the claim, and replaced a set the
// other request had already shown (re-check 15r4, on a loaded host).
func TestReplacementOvertakenBeforeItsClaim(t *testing.T) {
	_, r, on := newReplica(t, nil)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}

	u := newMFAUser(t, on, "overtaken")
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}
	confirmedTOTP(t, on, self, u)
	read, err := on.RecoverySet(ctx, u.ID)
	if err != nil || read == "" {
		t.Fatalf("the set in force: %q, %v", read, err)
	}
	other, err := on.RegenerateRecoveryCodes(ctx, self, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if codes, err := on.RegenerateRecoveryCodesReplacing(ctx, self, u.ID, read); !errors.Is(err, domain.ErrRecoveryCodesReplaced) {
		t.Fatalf("a regeneration overtaken before its claim: %d codes, %v; want %v", len(codes), err, domain.ErrRecoveryCodesReplaced)
	}
	if res, err := on.CompleteMFA(ctx, events.Meta{}, commands.MFAInput{Token: firstStep(t, on, u).Token, Code: other[0]}); err != nil || res.User.ID != u.ID {
		t.Fatalf("a code of the other regeneration's set: %v", err)
	}

	conn := oktaConnection(t, on)
	anyone := func(domain.SCIMConnection) error { return nil }
	c, _, err := on.RotateSCIMToken(ctx, admin, conn.ID, "user-admin", "", anyone)
	if err != nil {
		t.Fatal(err)
	}
	seen := c.TokenHash
	c, token, err := on.RotateSCIMToken(ctx, admin, conn.ID, "user-admin", "", anyone)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := on.RotateSCIMTokenReplacing(ctx, admin, conn.ID, seen, "user-admin", "", anyone); !errors.Is(err, domain.ErrSCIMTokenRotated) {
		t.Fatalf("a SCIM rotation overtaken before its claim: %v; want %v", err, domain.ErrSCIMTokenRotated)
	}
	if now, _, _ := r.model.SCIMConnection(conn.ID); now.TokenHash != commands.HashToken(token) || c.TokenHash != now.TokenHash {
		t.Fatal("the other rotation's token is not in force")
	}
}
