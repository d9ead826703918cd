package commands_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// hookedStream is a stream whose Append first calls before with the
// messages, and whose LastSequence first calls beforeLast with the subject
// (each when set).
type hookedStream struct {
	*stream
	before     func(msgs []events.Message)
	beforeLast func(subject string)
}

func (h *hookedStream) LastSequence(ctx context.Context, subject string) (uint64, error) {
	if h.beforeLast != nil {
		h.beforeLast(subject)
	}
	return h.stream.LastSequence(ctx, subject)
}

func (h *hookedStream) Append(ctx context.Context, msgs ...events.Message) (uint64, error) {
	if h.before != nil {
		h.before(msgs)
	}
	return h.stream.Append(ctx, msgs...)
}

// TestSCIMTwoConnectionsAdoptingOneUserAtOnce: two platform connections
// over one tenant adopt the same existing user at the same moment, through
// two replicas. One adopts it; the other answers ErrUsernameTaken (409
// uniqueness) and writes nothing. Before, when the adoption needed no user
// event (the name and address already the user's, no role in a governed
// tenant), each write expected only its own connection's record of the
// user, and both were stored: the user was provisioned by two connections,
// each undoing the other's deprovisioning (an outside check, 13r1). Here
// replica A decides its adoption, and replica B's adoption runs whole
// before A's append reaches the stream.
func TestSCIMTwoConnectionsAdoptingOneUserAtOnce(t *testing.T) {
	s, b, onB := newReplica(t, nil)
	hooked := &hookedStream{stream: s}
	a, onA := replicaOn(t, s, hooked)
	ctx := context.Background()
	meta := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	configureOktaAndAzure(t, onB, meta, "prod", "dev")
	// The mappings govern dev only: adopting a viewer of prod changes none
	// of the user's roles.
	mappings := []domain.RoleMapping{{Group: "devs", Tenant: "dev", Role: domain.RoleEditor}}
	var conns []string
	for _, p := range []string{"okta", "azure"} {
		c, _, err := onB.CreateSCIMConnection(ctx, meta, commands.SCIMConnectionInput{Provider: p, Tenants: []string{"prod", "dev"}, GroupMappings: mappings, Platform: true})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c.ID)
	}
	uma, err := onB.CreateUser(ctx, meta, commands.CreateUserInput{
		Username: "uma", Email: "uma@example.com", Password: "uma-passphrase-long",
		Tenants: []domain.TenantRole{{Tenant: "prod", Role: domain.RoleViewer}},
	})
	if err != nil {
		t.Fatal(err)
	}
	in := commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "uma",
		Emails: []domain.SCIMEmail{{Value: "uma@example.com", Primary: true}}}, Active: true}

	linkSubject := events.Subject(domain.AggregateSCIMUser, domain.SCIMLinkKey(conns[0], uma.ID))
	var second error
	raced := false
	hooked.before = func(msgs []events.Message) {
		if raced {
			return
		}
		for _, m := range msgs {
			if m.Subject == linkSubject {
				// A has decided its adoption; B adopts the user now.
				raced = true
				_, second = onB.SCIMCreateUser(ctx, meta, conns[1], in)
				return
			}
		}
	}
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}
	_, first := onA.SCIMCreateUser(ctx, meta, conns[0], in)
	if !raced {
		t.Fatalf("A's adoption appended no record of the user (%v)", first)
	}
	if second != nil {
		t.Fatalf("B's adoption: %v", second)
	}
	if !errors.Is(first, commands.ErrUsernameTaken) {
		t.Fatalf("A's adoption, after B's: %v; want ErrUsernameTaken", first)
	}
	// Nothing of A's adoption was stored, and only B provisions the user.
	for _, m := range s.msgs[head:] {
		env, _, err := events.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if env.Actor.Type == "scim" && env.Actor.ID == conns[0] {
			t.Errorf("A's connection appended %s", env.Type)
		}
	}
	for _, r := range []*replicaModel{a, b} {
		if err := r.WaitFor(ctx, uint64(len(s.msgs))); err != nil {
			t.Fatal(err)
		}
		if l, _, ok := r.model.SCIMLink(conns[0], uma.ID); ok && l.Linked {
			t.Fatalf("the first connection provisions the user too: %+v", l)
		}
		if l, _, ok := r.model.SCIMLink(conns[1], uma.ID); !ok || !l.Linked {
			t.Fatalf("the second connection does not provision the user")
		}
	}
}

// TestSCIMTwoConnectionsCreatingOneIdentityAtOnce: two platform
// connections over one SSO provider create a user with the same externalId
// (different userNames) at the same moment, through two replicas. Exactly
// one user is made and linked to the identity; the other connection's
// create answers ErrUsernameTaken (409 uniqueness) and writes nothing, as
// in either serial order (the second finds the first's user by identity,
// provisioned by the other connection). Before, the create read the
// identity's link twice: unlinked at first (so: a new user), linked again
// after the username's round trip — by then the other connection's link
// was applied — so it appended no link and its write touched nothing the
// other's did: two users, one of them with the externalId and no link (an
// outside check, 13r6). Here replica B's create runs whole, and replica A
// applies it, while A checks its new user's name.
func TestSCIMTwoConnectionsCreatingOneIdentityAtOnce(t *testing.T) {
	f := newIdentityRace(t)
	ctx := context.Background()
	var second error
	var userB string
	raced := false
	f.hooked.beforeLast = func(subject string) {
		if raced || !strings.HasPrefix(subject, events.Subject(domain.AggregateUsername, "")) {
			return
		}
		// A found the identity unlinked and no user named ann.a: it is
		// making a new user. B makes its own, with the identity, now.
		raced = true
		userB, second = f.onB.SCIMCreateUser(ctx, f.meta, f.conns[1], f.input("ann.b"))
		f.applyAllOnA(ctx)
	}
	_, first := f.onA.SCIMCreateUser(ctx, f.meta, f.conns[0], f.input("ann.a"))
	if !raced {
		t.Fatalf("A's create checked no username (%v)", first)
	}
	if second != nil {
		t.Fatalf("B's create: %v", second)
	}
	if !errors.Is(first, commands.ErrUsernameTaken) {
		t.Fatalf("A's create, after B's: %v; want ErrUsernameTaken", first)
	}
	created := 0
	for _, m := range f.s.msgs[f.head:] {
		env, _, err := events.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if env.Type == "user.created" {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d users created for one externalId; want 1", created)
	}
	f.checkOnlyB(ctx, userB)
}

// TestSCIMAdoptionByNameWhileAnotherConnectionCreatesTheIdentity: platform
// connection P1 adopts an existing user Y by username, with externalId E,
// while P2 creates a new user X with E. One of them succeeds; the other is
// ErrUsernameTaken and writes nothing, as in either serial order. Before,
// both were stored: P1 showed Y as E, and E signed in as X (an outside
// check, 13r6). Here replica B's create runs whole, and replica A applies
// it, while A reads Y's adoption claim.
func TestSCIMAdoptionByNameWhileAnotherConnectionCreatesTheIdentity(t *testing.T) {
	f := newIdentityRace(t)
	ctx := context.Background()
	yan, err := f.onB.CreateUser(ctx, f.meta, commands.CreateUserInput{
		Username: "yan", Email: "yan@example.com", Password: "yan-passphrase-long",
		Tenants: []domain.TenantRole{{Tenant: "prod", Role: domain.RoleViewer}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.applyAllOnA(ctx)
	f.head = uint64(len(f.s.msgs))
	claim := events.Subject(domain.AggregateSCIMAdoption, yan.ID)
	var second error
	var userB string
	raced := false
	f.hooked.beforeLast = func(subject string) {
		if raced || subject != claim {
			return
		}
		// A found the identity unlinked and adopts yan by name; B makes
		// a new user with the identity now.
		raced = true
		userB, second = f.onB.SCIMCreateUser(ctx, f.meta, f.conns[1], f.input("yves"))
		f.applyAllOnA(ctx)
	}
	_, first := f.onA.SCIMCreateUser(ctx, f.meta, f.conns[0], f.input("yan"))
	if !raced {
		t.Fatalf("A's create adopted nobody (%v)", first)
	}
	if second != nil {
		t.Fatalf("B's create: %v", second)
	}
	if !errors.Is(first, commands.ErrUsernameTaken) {
		t.Fatalf("A's adoption, after B's create: %v; want ErrUsernameTaken", first)
	}
	f.checkOnlyB(ctx, userB)
	if l, _, ok := f.a.model.SCIMLink(f.conns[0], yan.ID); ok && l.Linked {
		t.Errorf("the first connection provisions yan: %+v", l)
	}
}

// identityRace is two replicas (A appending through hooked) over one
// stream, with two platform connections over one SSO provider.
type identityRace struct {
	t        *testing.T
	s        *stream
	hooked   *hookedStream
	a, b     *replicaModel
	onA, onB *commands.Service
	meta     events.Meta
	conns    []string
	issuer   string
	head     uint64 // the stream's length once set up
}

const racedExternalID = "00u-same-person"

func newIdentityRace(t *testing.T) *identityRace {
	t.Helper()
	f := &identityRace{t: t, meta: events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}}
	f.s, f.b, f.onB = newReplica(t, nil)
	f.hooked = &hookedStream{stream: f.s}
	f.a, f.onA = replicaOn(t, f.s, f.hooked)
	ctx := context.Background()
	if _, _, err := f.onB.ConfigureSSOProvider(ctx, f.meta, commands.SSOProviderInput{
		Name: "okta", Type: domain.SSOType("okta"), Domain: "example.okta.com",
		ClientID: "client", ClientSecret: "client-secret", AllowedTenants: []string{"prod"},
	}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		c, _, err := f.onB.CreateSCIMConnection(ctx, f.meta, commands.SCIMConnectionInput{Provider: "okta", Tenants: []string{"prod"}, Platform: true})
		if err != nil {
			t.Fatal(err)
		}
		f.conns = append(f.conns, c.ID)
	}
	f.applyAllOnA(ctx)
	p, _, ok := f.a.model.SSOProvider("okta")
	if !ok || p.IdentityIssuer() == "" {
		t.Fatalf("no identity issuer for okta: %+v", p)
	}
	f.issuer = p.IdentityIssuer()
	f.head = uint64(len(f.s.msgs))
	return f
}

// input is the SCIM user userName with the raced externalId.
func (f *identityRace) input(userName string) commands.SCIMUserInput {
	return commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: userName, ExternalID: racedExternalID,
		Emails: []domain.SCIMEmail{{Value: userName + "@example.com", Primary: true}}}, Active: true}
}

// applyAllOnA makes replica A's read model apply the whole stream.
func (f *identityRace) applyAllOnA(ctx context.Context) {
	f.t.Helper()
	head, err := f.s.Head(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.a.WaitFor(ctx, head); err != nil {
		f.t.Fatal(err)
	}
}

// checkOnlyB checks that connection A appended nothing since set-up, and
// that on both replicas the identity signs in as userB, which only
// connection B provisions.
func (f *identityRace) checkOnlyB(ctx context.Context, userB string) {
	f.t.Helper()
	for _, m := range f.s.msgs[f.head:] {
		env, _, err := events.Decode(m.Data)
		if err != nil {
			f.t.Fatal(err)
		}
		if env.Actor.Type == "scim" && env.Actor.ID == f.conns[0] {
			f.t.Errorf("A's connection appended %s", env.Type)
		}
	}
	for _, r := range []*replicaModel{f.a, f.b} {
		if err := r.WaitFor(ctx, uint64(len(f.s.msgs))); err != nil {
			f.t.Fatal(err)
		}
		if id, ok := r.model.SSOIdentity(f.issuer, racedExternalID); !ok || id != userB {
			f.t.Errorf("the identity signs in as %q (linked: %v); want B's user %s", id, ok, userB)
		}
		if l, _, ok := r.model.SCIMLink(f.conns[1], userB); !ok || !l.Linked {
			f.t.Errorf("the second connection does not provision its user")
		}
		for _, u := range r.model.SCIMLinks(f.conns[0]) {
			if u.Linked {
				f.t.Errorf("the first connection provisions %s", u.UserID)
			}
		}
	}
}

// TestSCIMSameUpdateTwiceAtOnce: an identity provider sends the same PUT
// twice at once (a retry after a timeout) through two replicas, and the
// other replica's runs whole just before this one's first append. Both are
// answered as the first was: a rename (before, 409 uniqueness for the
// user's own new name: the name's reservation was found taken), and a
// deactivation with the user's password (before, 400: the password was
// decided on a user the other had deactivated) (re-check 17r2).
func TestSCIMSameUpdateTwiceAtOnce(t *testing.T) {
	s, _, onB := newReplica(t, nil)
	hooked := &hookedStream{stream: s}
	_, onA := replicaOn(t, s, hooked)
	connID, userID, _ := scimSetup(t, onB)
	ctx := context.Background()
	meta := events.Meta{Actor: events.Actor{Type: "scim", ID: connID}}
	if err := onA.CatchUpHead(ctx); err != nil {
		t.Fatal(err)
	}
	no, yes := false, true
	for _, c := range []struct {
		name string
		up   commands.SCIMUserUpdate
	}{
		{"a rename", commands.SCIMUserUpdate{Profile: &domain.SCIMProfile{UserName: "tess-renamed"}}},
		{"a rename and a deactivation with a password", commands.SCIMUserUpdate{Profile: &domain.SCIMProfile{UserName: "tess-second"}, Active: &no, Password: "orchid-lantern-42-x"}},
		{"a deactivation with a password", commands.SCIMUserUpdate{Profile: &domain.SCIMProfile{UserName: "tess-second"}, Active: &no, Password: "orchid-lantern-43-y"}},
	} {
		// Active, so that the deactivation has something to do.
		if err := onB.SCIMUpdateUser(ctx, meta, connID, userID, commands.SCIMUserUpdate{Active: &yes}); err != nil {
			t.Fatal(err)
		}
		if err := onA.CatchUpHead(ctx); err != nil {
			t.Fatal(err)
		}
		var other error
		ran := false
		hooked.before = func([]events.Message) {
			hooked.before, ran = nil, true
			other = onB.SCIMUpdateUser(ctx, meta, connID, userID, c.up)
		}
		if err := onA.SCIMUpdateUser(ctx, meta, connID, userID, c.up); err != nil {
			t.Errorf("%s, sent again at once: %v", c.name, err)
		}
		if !ran || other != nil {
			t.Fatalf("%s: the other request did not run first (%v), or failed: %v", c.name, ran, other)
		}
	}
}
