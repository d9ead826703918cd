package commands_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// headHook is a log whose Head, once, lets something land right after it
// answered: the failures of a burst recorded through another replica while
// this one verifies a password (its read model, as a replicaModel, does not
// see them until it waits for them).
type headHook struct {
	*stream
	mu   sync.Mutex
	hook func()
}

func (h *headHook) Head(ctx context.Context) (uint64, error) {
	seq, err := h.stream.Head(ctx)
	h.mu.Lock()
	hook := h.hook
	h.hook = nil
	h.mu.Unlock()
	if hook != nil {
		hook()
	}
	return seq, err
}

// throttledReplica is replicaOn with the login throttle of the defaults
// (5 failures, 15 minutes).
func throttledReplica(t *testing.T, s *stream, log commands.Log) (*replicaModel, *commands.Service) {
	r, svc, _ := throttledReplicaHashing(t, s, log)
	return r, svc
}

// throttledReplicaHashing is throttledReplica with its password hasher.
func throttledReplicaHashing(t *testing.T, s *stream, log commands.Log) (*replicaModel, *commands.Service, *commands.Passwords) {
	t.Helper()
	return replicaWith(t, s, log, func(c *commands.Config) {
		c.Throttle = domain.LoginThrottle{MaxFailures: 5, LockoutFor: 15 * time.Minute}
	})
}

// TestRightPasswordWithAForeignTenantWhileLocked: a login with the right
// password and a tenant the user holds no role in answers 403 — which tells
// the password was right — only if the account is not locked as the event
// store has it when the answer is decided. Here five wrong guesses land
// through replica A while replica B verifies the right one: B answers 429,
// as a session's start would. Before, B answered 403 on the state it read
// before the hashing (outside check 15e: the right guess answered 403 among
// 429s in a burst).
func TestRightPasswordWithAForeignTenantWhileLocked(t *testing.T) {
	s := &stream{}
	_, onA := throttledReplica(t, s, s)
	logB := &headHook{stream: s}
	_, onB := throttledReplica(t, s, logB)
	ctx := context.Background()
	meta := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	if _, err := onA.CreateUser(ctx, meta, commands.CreateUserInput{
		Username: "tess", Password: "tess-passphrase-long",
		Tenants: []domain.TenantRole{{Tenant: "prod", Role: domain.RoleViewer}},
	}); err != nil {
		t.Fatal(err)
	}
	logB.hook = func() {
		for range 5 {
			if _, err := onA.Login(ctx, events.Meta{}, commands.LoginInput{Username: "tess", Password: "wrong-guess-123"}); !errors.Is(err, domain.ErrInvalidCredentials) {
				t.Errorf("a wrong guess through A: %v", err)
			}
		}
	}
	_, err := onB.Login(ctx, events.Meta{}, commands.LoginInput{Username: "tess", Password: "tess-passphrase-long", Tenant: "elsewhere"})
	if logB.hook != nil {
		t.Fatal("the guesses through A did not land during B's login")
	}
	if !errors.Is(err, domain.ErrThrottled) {
		t.Fatalf("the right password with a foreign tenant, locked meanwhile: %v, want the lockout", err)
	}
	// Not locked: the 403 it is.
	s2 := &stream{}
	_, onC := throttledReplica(t, s2, s2)
	if _, err := onC.CreateUser(ctx, meta, commands.CreateUserInput{Username: "tess", Password: "tess-passphrase-long"}); err != nil {
		t.Fatal(err)
	}
	if _, err := onC.Login(ctx, events.Meta{}, commands.LoginInput{Username: "tess", Password: "tess-passphrase-long", Tenant: "elsewhere"}); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("the right password with a foreign tenant: %v, want forbidden", err)
	}
}

// TestRightCurrentPasswordWhileLocked: a password change with the right
// current password is decided against the lockout as it stands when the
// change is stored. Here five wrong guesses land through replica A just
// before B stores the change: B's change is refused with the lockout and
// the password stays. Before, the right guess of a burst changed the
// password after the wrong ones had locked the account (outside check 15e).
func TestRightCurrentPasswordWhileLocked(t *testing.T) {
	s := &stream{}
	_, onA := throttledReplica(t, s, s)
	_, onB, pwB := throttledReplicaHashing(t, s, s)
	ctx := context.Background()
	meta := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	u, err := onA.CreateUser(ctx, meta, commands.CreateUserInput{Username: "uma", Password: "uma-passphrase-long"})
	if err != nil {
		t.Fatal(err)
	}
	// B has the user.
	if _, err := onB.Login(ctx, events.Meta{}, commands.LoginInput{Username: "uma", Password: "uma-passphrase-long"}); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	landed := false
	s.before = func(msgs []events.Message) {
		env, _, err := events.Decode(msgs[0].Data)
		if err != nil || env.Type != domain.TypeUserPasswordChanged {
			return
		}
		once.Do(func() {
			for range 5 {
				if _, err := onA.Login(ctx, events.Meta{}, commands.LoginInput{Username: "uma", Password: "wrong-guess-123"}); !errors.Is(err, domain.ErrInvalidCredentials) {
					t.Errorf("a wrong guess through A: %v", err)
				}
			}
			landed = true
		})
	}
	before := pwB.Runs()
	err = onB.ChangePassword(ctx, events.Meta{}, u.ID, "a-brand-new-passphrase", "uma-passphrase-long", "")
	rightRuns := pwB.Runs() - before
	if !landed {
		t.Fatal("the guesses through A did not land before B's change")
	}
	if !errors.Is(err, domain.ErrThrottled) {
		t.Fatalf("the right current password, locked meanwhile: %v, want the lockout", err)
	}
	for _, m := range s.msgs {
		if env, _, _ := events.Decode(m.Data); env.Type == domain.TypeUserPasswordChanged {
			t.Fatal("the password was changed")
		}
	}
	// The right guess, refused, cost as much as a wrong one: its answer's
	// time does not tell it apart in a burst (a re-check, 15r1: the right
	// guess paid a second argon2id, and was the slowest 429 of its burst).
	s2 := &stream{}
	_, onC, pwC := throttledReplicaHashing(t, s2, s2)
	v, err := onC.CreateUser(ctx, meta, commands.CreateUserInput{Username: "vic", Password: "vic-passphrase-long"})
	if err != nil {
		t.Fatal(err)
	}
	before = pwC.Runs()
	if err := onC.ChangePassword(ctx, events.Meta{}, v.ID, "a-brand-new-passphrase", "a-wrong-guess-1", ""); err == nil {
		t.Fatal("a wrong current password changed it")
	}
	if wrongRuns := pwC.Runs() - before; wrongRuns != rightRuns {
		t.Fatalf("a wrong guess cost %d argon2id, the right one refused by the lockout %d", wrongRuns, rightRuns)
	}
}
