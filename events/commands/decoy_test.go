package commands_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/projections"
)

// Two argon2id costs, both cheap: the one the users were created at, and
// the one the service runs at after a restart with another setting.
var (
	costBefore = commands.HashParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}
	costAfter  = commands.HashParams{MemoryKiB: 256, Iterations: 2, Parallelism: 1}
)

// replicaAt is a replica on s hashing at cost, sealing with sealKey, with
// a fixed name key (so that which user a name is paired with does not
// change from run to run) and log as its logger (nil: discarded).
func replicaAt(t *testing.T, s *stream, cost commands.HashParams, sealKey []byte, log *slog.Logger) (*replicaModel, *commands.Service, *commands.Passwords) {
	t.Helper()
	sealer, err := events.NewSealer(sealKey)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := commands.NewPasswords(cost)
	if err != nil {
		t.Fatal(err)
	}
	r := &replicaModel{t: t, s: s, model: projections.NewModel()}
	cfg := commands.Config{Now: time.Now, Barrier: peers{}, MFAKey: testMFAKey, NameKey: []byte("a fixed name key, for the test"), Log: log}
	return r, commands.New(s, r, r.model, pw, sealer, cfg), pw
}

// createAt creates users through a replica hashing at cost, and returns
// their IDs.
func createAt(t *testing.T, s *stream, cost commands.HashParams, sealKey []byte, names ...string) []string {
	t.Helper()
	_, svc, _ := replicaAt(t, s, cost, sealKey, nil)
	var ids []string
	for _, name := range names {
		u, err := svc.CreateUser(context.Background(), events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}, commands.CreateUserInput{
			Username: name, Password: name + "-passphrase-long",
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	return ids
}

// failedLogin logs in as name with password through svc, whose read model
// r has applied the whole stream, and checks that it failed as every
// failed login on a name that matches no user does: ErrInvalidCredentials,
// one argon2id, one append of user.login_failed (reason
// invalid_credentials) on the name's login aggregate, with no user in it.
// It returns the cost the argon2id ran at.
func failedLogin(t *testing.T, s *stream, r *replicaModel, svc *commands.Service, pw *commands.Passwords, name, password string) commands.HashParams {
	t.Helper()
	ctx := context.Background()
	head, _ := s.Head(ctx)
	if err := r.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}
	appends, runs := len(s.appends), pw.Runs()
	_, err := svc.Login(ctx, events.Meta{Request: events.RequestInfo{IP: "192.0.2.7"}}, commands.LoginInput{Username: name, Password: password})
	if !errors.Is(err, domain.ErrInvalidCredentials) {
		t.Fatalf("login as %q: %v, want ErrInvalidCredentials", name, err)
	}
	if n := pw.Runs() - runs; n != 1 {
		t.Fatalf("login as %q ran argon2id %d times, want 1", name, n)
	}
	if n := len(s.appends) - appends; n != 1 {
		t.Fatalf("login as %q made %d appends, want 1", name, n)
	}
	msgs := s.appends[appends]
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Subject, events.Subject(domain.AggregateLogin, "")) {
		t.Fatalf("login as %q appended %d messages, the first on %s: want one on a login aggregate", name, len(msgs), msgs[0].Subject)
	}
	_, ev, err := events.Decode(msgs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	f, ok := ev.(domain.UserLoginFailed)
	if !ok || f.UserID != "" || f.Reason != "invalid_credentials" {
		t.Fatalf("login as %q appended %T %+v, want user.login_failed (invalid_credentials) with no user", name, ev, ev)
	}
	return pw.LastRun()
}

// TestUnknownNameCostsAStoredHash: after the argon2id cost changed, a name
// that matches no user is checked at the cost of a stored user's hash, not
// at the current one — before, it was checked against a dummy hash made
// at the current cost, and one failed login told an unknown name (~86 ms
// after the memory cost was raised to 64 MiB) from a user created before
// the change (~22 ms): outside check 18t. Nothing is timed: the hasher
// tells the cost its last run paid.
func TestUnknownNameCostsAStoredHash(t *testing.T) {
	s := &stream{}
	createAt(t, s, costBefore, testSealKey, "olga", "pavel", "quinn")
	r, svc, pw := replicaAt(t, s, costAfter, testSealKey, nil)

	// A user's wrong password costs their hash's cost...
	ctx := context.Background()
	head, _ := s.Head(ctx)
	if err := r.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Login(ctx, events.Meta{}, commands.LoginInput{Username: "olga", Password: "not-her-password"}); !errors.Is(err, domain.ErrInvalidCredentials) {
		t.Fatalf("a wrong password: %v", err)
	}
	if got := pw.LastRun(); got != costBefore {
		t.Fatalf("a user's wrong password ran at %+v, want their hash's %+v", got, costBefore)
	}
	// ...and so does a name nobody has, every time.
	for i, name := range []string{"nobody", "NoBody", "someone-else", "olga2", "x"} {
		for range 2 {
			if got := failedLogin(t, s, r, svc, pw, name, fmt.Sprintf("a-guess-%d", i)); got != costBefore {
				t.Fatalf("a name nobody has (%q) ran at %+v, the current cost; want a stored hash's %+v", name, got, costBefore)
			}
		}
	}
	// The same for the current password of a user ID nobody has.
	runs := pw.Runs()
	if err := svc.ChangePassword(ctx, events.Meta{}, "user-nobody", "a-brand-new-passphrase", "a-guess", ""); err == nil {
		t.Fatal("a password change of a user nobody has succeeded")
	}
	if n := pw.Runs() - runs; n != 2 { // the new password's hash, the check
		t.Fatalf("the change ran argon2id %d times, want 2", n)
	}
	if got := pw.LastRun(); got != costBefore {
		t.Fatalf("the current password of a user nobody has was checked at %+v, want a stored hash's %+v", got, costBefore)
	}
}

// TestUnknownNamesFollowTheUsersCosts: with users' hashes of two costs,
// names that match no user are checked at the one or the other — each name
// always at the same, as a user always is at their hash's —, and never at
// a cost no user's hash has.
func TestUnknownNamesFollowTheUsersCosts(t *testing.T) {
	s := &stream{}
	createAt(t, s, costBefore, testSealKey, "rita", "sam")
	createAt(t, s, costAfter, testSealKey, "tom", "ursula")
	third := commands.HashParams{MemoryKiB: 128, Iterations: 1, Parallelism: 1}
	r, svc, pw := replicaAt(t, s, third, testSealKey, nil)
	seen := map[commands.HashParams]int{}
	for i := range 24 {
		name := fmt.Sprintf("nobody-%d", i)
		got := failedLogin(t, s, r, svc, pw, name, "a-guess-of-it")
		if got != costBefore && got != costAfter {
			t.Fatalf("%s was checked at %+v, a cost no user's hash has", name, got)
		}
		if again := failedLogin(t, s, r, svc, pw, name, "another-guess"); again != got {
			t.Fatalf("%s was checked at %+v, then at %+v", name, got, again)
		}
		seen[got]++
	}
	if seen[costBefore] == 0 || seen[costAfter] == 0 {
		t.Fatalf("24 names were all checked at one cost (%v): the pick does not spread over the users", seen)
	}
}

// TestUnknownNameMatchingAUsersPasswordFails: a name that matches no user,
// with the password of the user its check is paired with (with one user,
// every name is paired with them), fails as any unknown name does: the
// match is discarded.
func TestUnknownNameMatchingAUsersPasswordFails(t *testing.T) {
	s := &stream{}
	createAt(t, s, costBefore, testSealKey, "vera")
	r, svc, pw := replicaAt(t, s, costAfter, testSealKey, nil)
	failedLogin(t, s, r, svc, pw, "not-vera", "vera-passphrase-long")
	if got := pw.LastRun(); got != costBefore {
		t.Fatalf("checked at %+v, not against vera's hash (%+v)", got, costBefore)
	}
	// The self-service change's check of a user nobody has, too.
	err := svc.ChangePassword(context.Background(), events.Meta{}, "user-nobody", "a-brand-new-passphrase", "vera-passphrase-long", "")
	var invalid *domain.ValidationError
	if !errors.As(err, &invalid) || invalid.Field != "current_password" {
		t.Fatalf("a user nobody has, with vera's password as the current one: %v, want the current_password refusal", err)
	}
}

// TestUnknownNameWithoutUsersOrAnUnopenableHash: with no users, a name is
// checked against the dummy hash (the current cost). A paired hash that
// does not open with this replica's key is counted, and logged without
// naming its user; the dummy hash stands in, and the login fails as any
// unknown name's does (not with the unseal error).
func TestUnknownNameWithoutUsersOrAnUnopenableHash(t *testing.T) {
	s := &stream{}
	var logs bytes.Buffer
	r, svc, pw := replicaAt(t, s, costAfter, testSealKey, slog.New(slog.NewTextHandler(&logs, nil)))
	if got := failedLogin(t, s, r, svc, pw, "nobody", "a-guess-of-it"); got != costAfter {
		t.Fatalf("with no users, checked at %+v, want the dummy hash's %+v", got, costAfter)
	}

	otherKey := bytes.Repeat([]byte{7}, 32)
	ids := createAt(t, s, costBefore, otherKey, "wanda")
	if got := failedLogin(t, s, r, svc, pw, "nobody", "a-guess-of-it"); got != costAfter {
		t.Fatalf("with the paired hash unopenable, checked at %+v, want the dummy hash's %+v", got, costAfter)
	}
	if n := svc.DecoyFailures(); n != 1 {
		t.Fatalf("DecoyFailures = %d, want 1", n)
	}
	if logs.Len() == 0 {
		t.Fatal("the unopenable hash was not logged")
	}
	for _, leak := range []string{ids[0], "wanda"} {
		if strings.Contains(logs.String(), leak) {
			t.Fatalf("the log names the paired user (%s): %s", leak, logs.String())
		}
	}
}
