package commands_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/projections"
)

// stream is an event log shared by replicas, each with its own read
// model that applies the stored events only as far as it is asked to (as a
// replica's consumer may be one event short of a batch when a request
// arrives).
type stream struct {
	mu      sync.Mutex
	msgs    []events.Message // msgs[i] has stream sequence i+1
	appends [][]events.Message
	// before and after, when set, are called (outside the lock, from the
	// appending goroutine) with every append's messages: before it is
	// made, and after it was stored. A test's way to make something else
	// land in between.
	before, after func([]events.Message)
}

// Append stores msgs unless an expectation fails, as JetStream's: the
// first message on each subject expects that subject (or its
// ExpectSubject) at its ExpectSeq.
func (s *stream) Append(_ context.Context, msgs ...events.Message) (uint64, error) {
	if s.before != nil {
		s.before(msgs)
	}
	seq, err := s.append(msgs)
	if err == nil && s.after != nil {
		s.after(msgs)
	}
	return seq, err
}

func (s *stream) append(msgs []events.Message) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	checked := map[string]bool{}
	for _, m := range msgs {
		if checked[m.Subject] {
			continue
		}
		checked[m.Subject] = true
		subject := m.Subject
		if m.ExpectSubject != "" {
			subject = m.ExpectSubject
		}
		if last := s.last(subject); last != m.ExpectSeq {
			return 0, fmt.Errorf("%w: %s is at %d, not %d", events.ErrConflict, subject, last, m.ExpectSeq)
		}
	}
	s.msgs = append(s.msgs, msgs...)
	s.appends = append(s.appends, msgs)
	return uint64(len(s.msgs)), nil
}

func (s *stream) LastSequence(_ context.Context, subject string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last(subject), nil
}

// last is the stream sequence of the last message on subject (0: none); a
// "*" token matches any one token, as JetStream's.
func (s *stream) last(subject string) uint64 {
	for i := len(s.msgs) - 1; i >= 0; i-- {
		if subjectMatches(subject, s.msgs[i].Subject) {
			return uint64(i + 1)
		}
	}
	return 0
}

// subjectMatches reports whether subject matches filter, whose "*" tokens
// match any one token.
func subjectMatches(filter, subject string) bool {
	f, t := strings.Split(filter, "."), strings.Split(subject, ".")
	if len(f) != len(t) {
		return false
	}
	for i := range f {
		if f[i] != "*" && f[i] != t[i] {
			return false
		}
	}
	return true
}

func (s *stream) Head(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.msgs)), nil
}

// replicaModel is one replica's read model over the stream.
type replicaModel struct {
	t       *testing.T
	s       *stream
	model   *projections.Model
	applied uint64
}

// WaitFor applies the stored events up to seq, and no further.
func (r *replicaModel) WaitFor(_ context.Context, seq uint64) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	for ; r.applied < seq; r.applied++ {
		env, ev, err := events.Decode(r.s.msgs[r.applied].Data)
		if err != nil {
			r.t.Fatal(err)
		}
		r.model.Apply(r.applied+1, env, ev)
	}
	return nil
}

func (r *replicaModel) WaitCurrent(context.Context) error { return nil }

// peers is a barrier that hears of one other replica.
type peers struct{}

func (peers) Wait(context.Context, uint64) {}
func (peers) Peers() int                   { return 1 }

// TestLoginRightAfterCreateOnAnotherReplica: a user created through replica
// A logs in through replica B at once, while B has applied only part of the
// creation's events (the username's reservation comes first in the batch,
// the user's own events after it). The login's catch-up must cover the whole
// batch: before, it waited for the reservation only and answered "Invalid
// username or password" (seen as a flaky refusal in the cluster tests).
func TestLoginRightAfterCreateOnAnotherReplica(t *testing.T) {
	s, _, onA := newReplica(t, nil)
	_, b, onB := newReplica(t, s)
	ctx := context.Background()
	meta := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}

	for _, name := range []string{"grace", "heidi", "ivan"} {
		if _, err := onA.CreateUser(ctx, meta, commands.CreateUserInput{
			Username: name, Password: name + "-passphrase-long",
			Tenants: []domain.TenantRole{{Tenant: "prod", Role: domain.RoleEditor}},
		}); err != nil {
			t.Fatal(err)
		}
		// B has applied everything before the creation's last event.
		head, _ := s.Head(ctx)
		if err := b.WaitFor(ctx, head-1); err != nil {
			t.Fatal(err)
		}
		res, err := onB.Login(ctx, events.Meta{}, commands.LoginInput{Username: name, Password: name + "-passphrase-long"})
		if err != nil {
			t.Fatalf("%s: login through B right after the creation through A: %v", name, err)
		}
		if !strings.EqualFold(res.User.Username, name) {
			t.Fatalf("logged in as %q, want %q", res.User.Username, name)
		}
	}
}

// newReplica returns a replica's command service and read model on s (a new
// stream when nil). Replicas share the sealing key and the MFA key (MFA
// tokens, recovery codes' hashes), as a deployment's do.
func newReplica(t *testing.T, s *stream) (*stream, *replicaModel, *commands.Service) {
	t.Helper()
	if s == nil {
		s = &stream{}
	}
	r, svc := replicaOn(t, s, s)
	return s, r, svc
}

// replicaOn is a replica's read model over s, and its command service
// appending through log (s itself, or a wrapper of it that holds appends).
func replicaOn(t *testing.T, s *stream, log commands.Log) (*replicaModel, *commands.Service) {
	t.Helper()
	r, svc, _ := replicaWith(t, s, log, nil)
	return r, svc
}

// replicaWith is replicaOn with its configuration changed by with (nil:
// none), and its password hasher.
func replicaWith(t *testing.T, s *stream, log commands.Log, with func(*commands.Config)) (*replicaModel, *commands.Service, *commands.Passwords) {
	t.Helper()
	sealer, err := events.NewSealer(testSealKey)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := commands.NewPasswords(commands.HashParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := &replicaModel{t: t, s: s, model: projections.NewModel()}
	cfg := commands.Config{Now: time.Now, Barrier: peers{}, MFAKey: testMFAKey}
	if with != nil {
		with(&cfg)
	}
	return r, commands.New(log, r, r.model, pw, sealer, cfg), pw
}

var testSealKey = func() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return k
}()

var testMFAKey = func() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return k
}()

// TestSCIMCreateInactiveIsOneAppend: a user an identity provider creates
// inactive is created and deactivated in one atomic append. In two, a
// replica stopped between them left the user active — able to sign in with
// the pushed password — and the provider's retry got 409 (the connection
// shows the user) and stopped (an outside check: 2 of 20 crashes).
func TestSCIMCreateInactiveIsOneAppend(t *testing.T) {
	s, r, svc := newReplica(t, nil)
	ctx := context.Background()
	meta := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	if _, _, err := svc.ConfigureSSOProvider(ctx, meta, commands.SSOProviderInput{
		Name: "okta", Type: domain.SSOOkta, Domain: "example.okta.com", ClientID: "client", ClientSecret: "client-secret", AllowedTenants: []string{"prod"},
	}); err != nil {
		t.Fatal(err)
	}
	conn, _, err := svc.CreateSCIMConnection(ctx, meta, commands.SCIMConnectionInput{Provider: "okta", Tenants: []string{"prod"}, GroupMappings: []domain.RoleMapping{{Group: "ops", Tenant: "prod", Role: domain.RoleEditor}}, Platform: true})
	if err != nil {
		t.Fatal(err)
	}
	before := len(s.appends)
	id, err := svc.SCIMCreateUser(ctx, meta, conn.ID, commands.SCIMUserInput{
		Profile: domain.SCIMProfile{UserName: "mallory"}, Password: "mallory-passphrase-long", Active: false,
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.appends) - before; n != 1 {
		t.Fatalf("%d appends, want 1", n)
	}
	var types []string
	for _, m := range s.appends[before] {
		env, _, err := events.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, env.Type)
	}
	if !slices.Contains(types, domain.TypeUserCreated) || !slices.Contains(types, domain.TypeUserDeactivated) {
		t.Fatalf("the append holds %v", types)
	}
	if u, _, ok := r.model.User(id); !ok || u.Active {
		t.Fatalf("user %+v, found %v: want inactive", u, ok)
	}
	if _, err := svc.Login(ctx, events.Meta{}, commands.LoginInput{Username: "mallory", Password: "mallory-passphrase-long"}); err == nil {
		t.Fatal("the inactive user logged in")
	}

	// An existing user the connection adopts inactive: the link, the role
	// reconciliation and the deactivation in one append.
	ex, err := svc.CreateUser(ctx, meta, commands.CreateUserInput{
		Username: "oscar", Password: "oscar-passphrase-long", Tenants: []domain.TenantRole{{Tenant: "prod", Role: domain.RoleAdmin}},
	})
	if err != nil {
		t.Fatal(err)
	}
	before = len(s.appends)
	if _, err := svc.SCIMCreateUser(ctx, meta, conn.ID, commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "oscar"}, Active: false}); err != nil {
		t.Fatal(err)
	}
	if len(s.appends) == before {
		t.Fatal("nothing appended")
	}
	types = nil
	var versions []uint64 // the user's events' positions in its aggregate: one after the other
	for _, m := range s.appends[before] {
		env, _, err := events.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, env.Type)
		if env.AggregateID == ex.ID {
			versions = append(versions, env.Sequence)
		}
	}
	for i := 1; i < len(versions); i++ {
		if versions[i] != versions[i-1]+1 {
			t.Fatalf("the user's events carry versions %v", versions)
		}
	}
	if !slices.Contains(types, domain.TypeSCIMUserLinked) || !slices.Contains(types, domain.TypeUserDeactivated) || !slices.Contains(types, domain.TypeUserRoleRevoked) {
		t.Fatalf("the adoption's append holds %v", types)
	}
	if u, _, _ := r.model.User(ex.ID); u.Active || len(u.Tenants) != 0 {
		t.Fatalf("adopted user %+v: want inactive, without the hand-granted admin role", u)
	}
}

// TestSCIMNoAdoptionFromAnotherConnection: a user one connection provisions
// is not adopted by another connection governing the same tenant (moving
// from one identity provider to another): each would take over the roles
// the other's groups give, the last to act winning (an outside check). Once
// the first connection is deleted, the second may adopt the user.
func TestSCIMNoAdoptionFromAnotherConnection(t *testing.T) {
	_, _, svc := newReplica(t, nil)
	ctx := context.Background()
	meta := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	configureOktaAndAzure(t, svc, meta, "prod")
	mappings := []domain.RoleMapping{{Group: "admins", Tenant: "prod", Role: domain.RoleAdmin}}
	c1, _, err := svc.CreateSCIMConnection(ctx, meta, commands.SCIMConnectionInput{Provider: "okta", Tenants: []string{"prod"}, GroupMappings: mappings})
	if err != nil {
		t.Fatal(err)
	}
	c2, _, err := svc.CreateSCIMConnection(ctx, meta, commands.SCIMConnectionInput{Provider: "azure", Tenants: []string{"prod"}, GroupMappings: mappings})
	if err != nil {
		t.Fatal(err)
	}
	uma := commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "uma"}, Active: true}
	id, err := svc.SCIMCreateUser(ctx, meta, c1.ID, uma)
	if err != nil {
		t.Fatal(err)
	}
	// An admin of prod through the first connection's group: a user the
	// second connection could otherwise adopt (it holds nothing elsewhere).
	if _, err := svc.SCIMCreateGroup(ctx, meta, c1.ID, commands.SCIMGroupInput{DisplayName: "admins", Members: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SCIMCreateUser(ctx, meta, c2.ID, uma); !errors.Is(err, commands.ErrUsernameTaken) {
		t.Fatalf("the second connection's create: %v, want ErrUsernameTaken", err)
	}
	if err := svc.DeleteSCIMConnection(ctx, meta, c1.ID, func(domain.SCIMConnection) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got, err := svc.SCIMCreateUser(ctx, meta, c2.ID, uma); err != nil || got != id {
		t.Fatalf("after the first connection's deletion: %q, %v; want %q adopted", got, err, id)
	}
}

// configureOktaAndAzure configures the okta and azure SSO providers
// through svc, both allowed tenants.
func configureOktaAndAzure(t *testing.T, svc *commands.Service, meta events.Meta, tenants ...string) {
	t.Helper()
	for _, p := range []string{"okta", "azure"} {
		in := commands.SSOProviderInput{Name: p, Type: domain.SSOType(p), ClientID: "client", ClientSecret: "client-secret", AllowedTenants: tenants}
		if p == "okta" {
			in.Domain = "example.okta.com"
		} else {
			in.TenantID = "11111111-2222-3333-4444-555555555555"
		}
		if _, _, err := svc.ConfigureSSOProvider(context.Background(), meta, in); err != nil {
			t.Fatal(err)
		}
	}
}

// appliedUpTo makes r apply the stream up to and including the first stored
// event of type typ (after from), and no further: a replica applying a
// write of several events just then.
func appliedUpTo(t *testing.T, s *stream, r *replicaModel, from int, typ string) {
	t.Helper()
	for i := from; i < len(s.msgs); i++ {
		env, _, err := events.Decode(s.msgs[i].Data)
		if err != nil {
			t.Fatal(err)
		}
		if env.Type == typ {
			if err := r.WaitFor(context.Background(), uint64(i+1)); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no %s event stored", typ)
}

// TestNamedCreateWhileAnotherReplicaAppliesTheFirst: a key (a SCIM
// connection) named through A, then again through B while B has applied the
// name's reservation but not yet the rest of that write: B refuses the name.
// Before, B caught up with the reservation only, found no live key of that
// name, and created a second one (a full-suite run saw two of six creates
// at once through two replicas answer 201).
func TestNamedCreateWhileAnotherReplicaAppliesTheFirst(t *testing.T) {
	s, _, onA := newReplica(t, nil)
	_, b, onB := newReplica(t, s)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	every := func(string) domain.PermissionSet { return domain.SetOf(domain.AdminAll) }
	key := commands.CreateAPIKeyInput{
		Name: "deploy", Owner: "user-admin", Tenants: []string{"t1"}, Permissions: []string{string(domain.NodesRead)},
		Env: domain.KeyEnvLive, CallerPermissions: every,
	}
	from := len(s.msgs)
	if _, _, err := onA.CreateAPIKey(ctx, admin, key); err != nil {
		t.Fatal(err)
	}
	appliedUpTo(t, s, b, from, domain.TypeAPIKeyNameReserved)
	if _, _, err := onB.CreateAPIKey(ctx, admin, key); !errors.Is(err, commands.ErrAPIKeyNameTaken) {
		t.Errorf("the same name through B, applying A's create: %v, want %v", err, commands.ErrAPIKeyNameTaken)
	}

	if _, _, err := onA.ConfigureSSOProvider(ctx, admin, commands.SSOProviderInput{
		Name: "okta", Type: domain.SSOOkta, Domain: "example.okta.com", ClientID: "client", ClientSecret: "client-secret", AllowedTenants: []string{"t1"},
	}); err != nil {
		t.Fatal(err)
	}
	conn := commands.SCIMConnectionInput{Name: "okta-prod", Provider: "okta", Tenants: []string{"t1"}, Platform: true, OwnerID: "user-admin"}
	from = len(s.msgs)
	if _, _, err := onA.CreateSCIMConnection(ctx, admin, conn); err != nil {
		t.Fatal(err)
	}
	appliedUpTo(t, s, b, from, domain.TypeSCIMNameReserved)
	if _, _, err := onB.CreateSCIMConnection(ctx, admin, conn); !errors.Is(err, commands.ErrSCIMConnectionNameTaken) {
		t.Errorf("the same connection name through B, applying A's create: %v, want %v", err, commands.ErrSCIMConnectionNameTaken)
	}
}

// TestAPIKeyNameTrimmedForItsUniqueness: a key's name is stored trimmed, and
// is unique trimmed: "deploy " sent after "deploy" (a client's retry, or
// the CLI passing the name as typed) is the same name. Before, the
// reservation and the check took the name as sent, and a second live key
// named "deploy" was made (a re-check, 14r5).
func TestAPIKeyNameTrimmedForItsUniqueness(t *testing.T) {
	_, _, svc := newReplica(t, nil)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	every := func(string) domain.PermissionSet { return domain.SetOf(domain.AdminAll) }
	key := func(name string) commands.CreateAPIKeyInput {
		return commands.CreateAPIKeyInput{
			Name: name, Owner: "user-admin", Tenants: []string{"t1"}, Permissions: []string{string(domain.NodesRead)},
			Env: domain.KeyEnvLive, CallerPermissions: every,
		}
	}
	if _, _, err := svc.CreateAPIKey(ctx, admin, key("deploy")); err != nil {
		t.Fatal(err)
	}
	for _, again := range []string{"deploy ", " deploy", "\tDEPLOY\n"} {
		if _, _, err := svc.CreateAPIKey(ctx, admin, key(again)); !errors.Is(err, commands.ErrAPIKeyNameTaken) {
			t.Errorf("%q after \"deploy\": %v, want %v", again, err, commands.ErrAPIKeyNameTaken)
		}
	}
	if _, _, err := svc.CreateAPIKey(ctx, admin, key(" ci ")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateAPIKey(ctx, admin, key("ci")); !errors.Is(err, commands.ErrAPIKeyNameTaken) {
		t.Errorf("\"ci\" after \" ci \": %v, want %v", err, commands.ErrAPIKeyNameTaken)
	}
}

// nobody is a barrier that hears of no other replica.
type nobody struct{}

func (nobody) Wait(context.Context, uint64) {}
func (nobody) Peers() int                   { return 0 }

// TestAloneOnlyWhileTheStoreServes: a replica that hears no other is alone
// only while the event store serves it (Config.Serving): cut off — a NATS
// node that echoes its own heartbeats but has no stream and none of the
// others — it hears no one and is not alone for that, so an unknown
// credential is looked for (503 when that fails), not refused as unknown
// (re-check 19r4).
func TestAloneOnlyWhileTheStoreServes(t *testing.T) {
	serving := true
	s := &stream{}
	_, svc, _ := replicaWith(t, s, s, func(c *commands.Config) {
		c.Barrier = nobody{}
		c.Serving = func() bool { return serving }
	})
	if !svc.Alone() {
		t.Fatal("no other replica, the store serving: want alone")
	}
	serving = false
	if svc.Alone() {
		t.Fatal("no other replica heard, the store not serving: want not alone")
	}
	_, withPeer, _ := replicaWith(t, s, s, nil)
	if withPeer.Alone() {
		t.Fatal("another replica heard: want not alone")
	}
}
