package commands_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/projections"
)

// hookedStream is a stream whose Append first calls before with the
// messages (when set).
type hookedStream struct {
	*stream
	before func(msgs []events.Message)
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
	for _, p := range []string{"okta", "azure"} {
		in := commands.SSOProviderInput{Name: p, Type: domain.SSOType(p), ClientID: "client", ClientSecret: "client-secret", AllowedTenants: []string{"prod", "dev"}}
		if p == "okta" {
			in.Domain = "example.okta.com"
		} else {
			in.TenantID = "11111111-2222-3333-4444-555555555555"
		}
		if _, _, err := onB.ConfigureSSOProvider(ctx, meta, in); err != nil {
			t.Fatal(err)
		}
	}
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

// replicaOn is a replica's read model over s, and its command service
// appending through log.
func replicaOn(t *testing.T, s *stream, log commands.Log) (*replicaModel, *commands.Service) {
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
	return r, commands.New(log, r, r.model, pw, sealer, commands.Config{Now: time.Now, Barrier: peers{}})
}
