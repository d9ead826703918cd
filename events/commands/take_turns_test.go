package commands_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// rounds makes the appends of writers to one subject go in rounds: an
// append waits until every writer is accounted for — appending too, waiting
// for its turn on the subject (waiters), or done — and then all go at once.
// The appends of a round were decided on the same state, as those of
// writers racing across fsync'd appends (3–4 ms each) are: without turns
// all but one conflict, round after round.
type rounds struct {
	t        *testing.T
	writers  int
	waiters  func() int
	mu       sync.Mutex
	round    int // the round now gathering
	arrived  int // its appends arrived
	finished int // writers done
}

// hook is s.before for appends to subject.
func (b *rounds) hook(subject string) func([]events.Message) {
	return func(msgs []events.Message) {
		if msgs[0].Subject != subject {
			return
		}
		b.mu.Lock()
		round := b.round
		b.arrived++
		b.mu.Unlock()
		// (The turns' waiters signal nothing: they are polled.)
		gathered := holdsWithin(10*time.Second, 20*time.Microsecond, func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.round != round {
				return true
			}
			if b.arrived+b.waiters()+b.finished >= b.writers {
				b.round, b.arrived = b.round+1, 0
				return true
			}
			return false
		})
		if !gathered {
			b.t.Error("a round of appends never gathered")
		}
	}
}

// done tells b that a writer has finished.
func (b *rounds) done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.finished++
}

// storedOfType counts the events of type typ stored on s since from.
func storedOfType(t *testing.T, s *stream, from int, typ string) int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.msgs[from:] {
		env, _, err := events.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if env.Type == typ {
			n++
		}
	}
	return n
}

// togetherDoing runs f(i, j) for i in [0, writers) at once, each writer
// making its j in [0, each) one after the other, and returns every error;
// b is told when each writer is done.
func togetherDoing(b *rounds, each int, f func(i, j int) error) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for i := range b.writers {
		wg.Go(func() {
			defer b.done()
			for j := range each {
				if err := f(i, j); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("writer %d, #%d: %w", i, j, err))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errs
}

// TestLocalWritersOnOneSubjectTakeTurns: writers of one replica to one
// aggregate at once — threads refreshing one session (rotation off),
// grants of roles to one user — all succeed, each with its event, and end
// where a serial order would: after a conflict they take turns on the
// subject (subjectLocks), each deciding on what the one before it wrote,
// so each conflicts about once. Before, every retry raced the same local
// writers again across its append, and one could lose Config.MaxAttempts
// times in a row (outside check 18w: 36 of 4,000 refreshes by 8 threads
// answered 409, "too many conflicting writes").
func TestLocalWritersOnOneSubjectTakeTurns(t *testing.T) {
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	for _, writers := range []int{8, 16} {
		t.Run(fmt.Sprintf("refresh/%d", writers), func(t *testing.T) {
			s, r, svc := newReplica(t, nil)
			if _, err := svc.CreateUser(ctx, admin, commands.CreateUserInput{Username: "rita", Password: "rita-passphrase-long"}); err != nil {
				t.Fatal(err)
			}
			in, err := svc.Login(ctx, events.Meta{}, commands.LoginInput{Username: "rita", Password: "rita-passphrase-long"})
			if err != nil {
				t.Fatal(err)
			}
			subject := events.Subject(domain.AggregateSession, in.Session.ID)
			b := &rounds{t: t, writers: writers, waiters: func() int { return svc.TurnWaiters(subject) }}
			s.before = b.hook(subject)
			const each = 25
			from, conflicts := len(s.msgs), svc.Conflicts()
			errs := togetherDoing(b, each, func(int, int) error {
				_, err := svc.Refresh(ctx, events.Meta{}, in.RefreshToken)
				return err
			})
			for _, err := range errs {
				t.Error(err)
			}
			n := writers * each
			if got := storedOfType(t, s, from, domain.TypeSessionRefreshed); got != n-len(errs) {
				t.Errorf("%d session.refreshed stored, %d refreshes answered", got, n-len(errs))
			}
			if sess, _, _ := r.model.Session(in.Session.ID); sess.Version != in.Session.Version+uint64(n) {
				t.Errorf("the session is at version %d after %d refreshes from %d", sess.Version, n, in.Session.Version)
			}
			// About one conflict per refresh at most (its optimistic first
			// attempt): before, several.
			if c := svc.Conflicts() - conflicts; c > uint64(n) {
				t.Errorf("%d conflicts for %d refreshes", c, n)
			}
		})
		t.Run(fmt.Sprintf("grants/%d", writers), func(t *testing.T) {
			s, r, svc := newReplica(t, nil)
			u, err := svc.CreateUser(ctx, admin, commands.CreateUserInput{Username: "gina", Password: "gina-passphrase-long"})
			if err != nil {
				t.Fatal(err)
			}
			subject := events.Subject(domain.AggregateUser, u.ID)
			b := &rounds{t: t, writers: writers, waiters: func() int { return svc.TurnWaiters(subject) }}
			s.before = b.hook(subject)
			const each = 10
			from := len(s.msgs)
			// Each writer grants its own tenants, a role after another in
			// each: a serial order ends with every tenant at admin.
			roles := []domain.Role{domain.RoleViewer, domain.RoleEditor, domain.RoleAdmin}
			errs := togetherDoing(b, each, func(i, j int) error {
				_, err := svc.ExecuteUser(ctx, admin, u.ID, domain.GrantRole{Tenant: fmt.Sprintf("t%d-%d", i, j/len(roles)), Role: string(roles[j%len(roles)])})
				return err
			})
			for _, err := range errs {
				t.Error(err)
			}
			if got := storedOfType(t, s, from, domain.TypeUserRoleGranted); got != writers*each-len(errs) {
				t.Errorf("%d user.role_granted stored, %d grants answered", got, writers*each-len(errs))
			}
			got, _, _ := r.model.User(u.ID)
			for i := range writers {
				for j := 0; j < each; j += len(roles) {
					tenant := fmt.Sprintf("t%d-%d", i, j/len(roles))
					want := roles[min(each-1-j, len(roles)-1)]
					if role := got.Tenants[tenant]; role != want {
						t.Errorf("%s: %q, want %q", tenant, role, want)
					}
				}
			}
		})
	}
}

// TestKeyCreationsInOneTenantAtOnce: keys created at once for one owner in
// one tenant, each of its own name, are all created — each name's
// reservation and each key a subject of its own, nothing to take turns on.
func TestKeyCreationsInOneTenantAtOnce(t *testing.T) {
	_, r, svc := newReplica(t, nil)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	every := func(string) domain.PermissionSet { return domain.SetOf(domain.AdminAll) }
	const writers, each = 16, 5
	errs := togetherDoing(&rounds{writers: writers}, each, func(i, j int) error {
		_, _, err := svc.CreateAPIKey(ctx, admin, commands.CreateAPIKeyInput{
			Name: fmt.Sprintf("deploy-%d-%d", i, j), Owner: "user-admin", Tenants: []string{"t1"},
			Permissions: []string{string(domain.NodesRead)}, Env: domain.KeyEnvLive, CallerPermissions: every,
		})
		return err
	})
	for _, err := range errs {
		t.Error(err)
	}
	if got := len(r.model.APIKeysOwnedBy("user-admin")); got != writers*each {
		t.Errorf("%d keys, want %d", got, writers*each)
	}
}

// TestTurnWaitEndsWithTheRequest: a writer waiting for its turn on a
// subject (another writer of this replica retrying there) stops waiting
// when its request ends, with the request's error, and leaves no waiter
// behind: once the holder is done, no turn is left, and the next writer's
// first attempt conflicts with nothing.
func TestTurnWaitEndsWithTheRequest(t *testing.T) {
	s := &stream{}
	hooked := &hookedStream{stream: s}
	r, onA := replicaOn(t, s, hooked)
	_, onB := replicaOn(t, s, s)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	u, err := onA.CreateUser(ctx, admin, commands.CreateUserInput{Username: "tess", Password: "tess-passphrase-long"})
	if err != nil {
		t.Fatal(err)
	}
	userSubject := events.Subject(domain.AggregateUser, u.ID)
	// A's first grant is overtaken by a grant through B (it conflicts, and
	// takes the user's turn); its retry is held until the test lets it go.
	held, release := make(chan struct{}), make(chan struct{})
	appends := 0
	hooked.before = func(msgs []events.Message) {
		if msgs[0].Subject != userSubject {
			return
		}
		switch appends++; appends {
		case 1:
			if _, err := onB.ExecuteUser(ctx, admin, u.ID, domain.GrantRole{Tenant: "b1", Role: string(domain.RoleViewer)}); err != nil {
				t.Errorf("the grant through B: %v", err)
			}
		case 2:
			close(held)
			<-release
		}
	}
	first := make(chan error, 1)
	go func() {
		_, err := onA.ExecuteUser(ctx, admin, u.ID, domain.GrantRole{Tenant: "t1", Role: string(domain.RoleAdmin)})
		first <- err
	}()
	<-held
	wctx, cancel := context.WithCancel(ctx)
	waiting := make(chan error, 1)
	go func() {
		_, err := onA.ExecuteUser(wctx, admin, u.ID, domain.GrantRole{Tenant: "t2", Role: string(domain.RoleAdmin)})
		waiting <- err
	}()
	waitUntil(t, "the second grant waits for its turn", func() bool { return onA.Turns(userSubject) == 2 })
	cancel()
	if err := within(t, "the waiting grant", func() error { return <-waiting }); !errors.Is(err, context.Canceled) {
		t.Fatalf("the grant whose request ended while waiting: %v, want %v", err, context.Canceled)
	}
	if n := onA.Turns(userSubject); n != 1 {
		t.Errorf("%d writers hold or wait for the turn after the waiter left, want 1 (the holder)", n)
	}
	close(release)
	if err := within(t, "the first grant", func() error { return <-first }); err != nil {
		t.Fatal(err)
	}
	if !onA.NoTurns() {
		t.Error("a turn is left after every writer is done")
	}
	conflicts := onA.Conflicts()
	if _, err := onA.ExecuteUser(ctx, admin, u.ID, domain.GrantRole{Tenant: "t3", Role: string(domain.RoleViewer)}); err != nil {
		t.Fatal(err)
	}
	if c := onA.Conflicts() - conflicts; c != 0 {
		t.Errorf("a grant after the others conflicted %d times", c)
	}
	got, _, _ := r.model.User(u.ID)
	want := map[string]domain.Role{"b1": domain.RoleViewer, "t1": domain.RoleAdmin, "t3": domain.RoleViewer}
	if !maps.Equal(got.Tenants, want) {
		t.Errorf("tenants %v, want %v", got.Tenants, want)
	}
}

// TestSameKeyNameAtOnceTakesTurns: creates of one key name at once, whose
// atomic batches (the name's reservation and the key) collide: one key is
// created, every other create answers ErrAPIKeyNameTaken, decided on the
// state the winner wrote once its turn came (writeBatch), and no turn is
// left behind.
func TestSameKeyNameAtOnceTakesTurns(t *testing.T) {
	s, r, svc := newReplica(t, nil)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	every := func(string) domain.PermissionSet { return domain.SetOf(domain.AdminAll) }
	subject := events.Subject(domain.AggregateAPIKeyName, commands.APIKeyNameKey("user-admin", "deploy"))
	const writers = 16
	b := &rounds{t: t, writers: writers, waiters: func() int { return svc.TurnWaiters(subject) }}
	s.before = b.hook(subject)
	var mu sync.Mutex
	created := 0
	errs := togetherDoing(b, 1, func(int, int) error {
		_, _, err := svc.CreateAPIKey(ctx, admin, commands.CreateAPIKeyInput{
			Name: "deploy", Owner: "user-admin", Tenants: []string{"t1"},
			Permissions: []string{string(domain.NodesRead)}, Env: domain.KeyEnvLive, CallerPermissions: every,
		})
		if err == nil {
			mu.Lock()
			created++
			mu.Unlock()
		}
		return err
	})
	for _, err := range errs {
		if !errors.Is(err, commands.ErrAPIKeyNameTaken) {
			t.Error(err)
		}
	}
	if got := len(r.model.APIKeysOwnedBy("user-admin")); created != 1 || got != 1 {
		t.Errorf("%d creates answered a key, %d keys stored: want 1", created, got)
	}
	if !svc.NoTurns() {
		t.Error("a turn is left after every writer is done")
	}
}
