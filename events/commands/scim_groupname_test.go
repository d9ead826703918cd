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

// groupRace is a SCIM connection over two replicas on one stream: B
// appends directly, A through hooked (whose before hook lets B's request
// land between A's decision and its append).
func groupRace(t *testing.T) (s *stream, a *replicaModel, onA, onB *commands.Service, hooked *hookedStream, connID string) {
	t.Helper()
	s, _, onB = newReplica(t, nil)
	hooked = &hookedStream{stream: s}
	a, onA = replicaOn(t, s, hooked)
	ctx := context.Background()
	meta := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	configureOktaAndAzure(t, onB, meta, "prod")
	c, _, err := onB.CreateSCIMConnection(ctx, meta, commands.SCIMConnectionInput{Provider: "okta", Tenants: []string{"prod"}, Platform: true})
	if err != nil {
		t.Fatal(err)
	}
	return s, a, onA, onB, hooked, c.ID
}

// liveGroupsNamed counts the connection's live groups named name (without
// regard to case) as replica r has them once caught up with the stream.
func liveGroupsNamed(t *testing.T, s *stream, r *replicaModel, connID, name string) int {
	t.Helper()
	head, _ := s.Head(context.Background())
	if err := r.WaitFor(context.Background(), head); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range r.model.SCIMGroups(connID) {
		if g.Exists() && strings.EqualFold(g.DisplayName, name) {
			n++
		}
	}
	return n
}

// onceBefore runs race once, before the first append through hooked whose
// messages include one of type typ.
func onceBefore(t *testing.T, hooked *hookedStream, typ string, race func()) *bool {
	t.Helper()
	ran := false
	hooked.before = func(msgs []events.Message) {
		if ran {
			return
		}
		for _, m := range msgs {
			env, _, err := events.Decode(m.Data)
			if err != nil {
				t.Error(err)
				return
			}
			if env.Type == typ {
				ran = true
				race()
				return
			}
		}
	}
	return &ran
}

// TestSCIMGroupCreatesOfOneNameAtOnce: replica A decides the creation of
// group "Eng", and replica B's creation of "eng" lands before A's append:
// A answers ErrSCIMNameTaken (409 uniqueness) and the connection has one
// group of the name. Before, each write expected only its new group's
// subject, and both were stored (an outside check, 16e: five creates at
// once, five groups named "Eng").
func TestSCIMGroupCreatesOfOneNameAtOnce(t *testing.T) {
	s, a, onA, onB, hooked, connID := groupRace(t)
	ctx := context.Background()
	meta := events.Meta{Actor: events.Actor{Type: "scim", ID: connID}}
	var second error
	ran := onceBefore(t, hooked, domain.TypeSCIMGroupCreated, func() {
		_, second = onB.SCIMCreateGroup(ctx, meta, connID, commands.SCIMGroupInput{DisplayName: "eng"})
	})
	_, err := onA.SCIMCreateGroup(ctx, meta, connID, commands.SCIMGroupInput{DisplayName: "Eng"})
	if !*ran {
		t.Fatal("B's create did not run between A's decision and its append")
	}
	if second != nil {
		t.Fatalf("B's create, landing first: %v", second)
	}
	if !errors.Is(err, commands.ErrSCIMNameTaken) {
		t.Errorf("A's create of the name B took meanwhile: %v, want %v", err, commands.ErrSCIMNameTaken)
	}
	if n := liveGroupsNamed(t, s, a, connID, "eng"); n != 1 {
		t.Errorf("%d live groups named eng, want 1", n)
	}
}

// TestSCIMGroupRenameToANameTakenMeanwhile: replica A decides the rename of
// group "Ops" to "Eng", and replica B's creation of "Eng" lands before A's
// append: A answers ErrSCIMNameTaken and the group keeps its name. Before,
// the rename expected only its group's subject, and both were stored
// (16e: four renames to "Eng" at once all answered 204). A name freed — its
// group deleted, or renamed away — is taken again.
func TestSCIMGroupRenameToANameTakenMeanwhile(t *testing.T) {
	s, a, onA, onB, hooked, connID := groupRace(t)
	ctx := context.Background()
	meta := events.Meta{Actor: events.Actor{Type: "scim", ID: connID}}
	ops, err := onB.SCIMCreateGroup(ctx, meta, connID, commands.SCIMGroupInput{DisplayName: "Ops"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WaitFor(ctx, uint64(len(s.msgs))); err != nil {
		t.Fatal(err)
	}
	var second error
	ran := onceBefore(t, hooked, domain.TypeSCIMGroupRenamed, func() {
		_, second = onB.SCIMCreateGroup(ctx, meta, connID, commands.SCIMGroupInput{DisplayName: "Eng"})
	})
	err = onA.SCIMUpdateGroup(ctx, meta, connID, ops, commands.SCIMGroupUpdate{Rename: true, DisplayName: "Eng"})
	if !*ran {
		t.Fatal("B's create did not run between A's decision and its append")
	}
	if second != nil {
		t.Fatalf("B's create, landing first: %v", second)
	}
	if !errors.Is(err, commands.ErrSCIMNameTaken) {
		t.Errorf("A's rename to the name B took meanwhile: %v, want %v", err, commands.ErrSCIMNameTaken)
	}
	if n := liveGroupsNamed(t, s, a, connID, "Eng"); n != 1 {
		t.Errorf("%d live groups named Eng, want 1", n)
	}
	if n := liveGroupsNamed(t, s, a, connID, "Ops"); n != 1 {
		t.Errorf("%d live groups named Ops, want 1 (the rename refused)", n)
	}

	// Freed names are taken again: "Ops" renamed away, then "Ops" created;
	// the group of "Eng" deleted, then "Eng" created; a change of case only.
	if err := onA.SCIMUpdateGroup(ctx, meta, connID, ops, commands.SCIMGroupUpdate{Rename: true, DisplayName: "Platform"}); err != nil {
		t.Fatal(err)
	}
	if _, err := onB.SCIMCreateGroup(ctx, meta, connID, commands.SCIMGroupInput{DisplayName: "ops"}); err != nil {
		t.Errorf("a name renamed away, created again: %v", err)
	}
	if err := onA.SCIMUpdateGroup(ctx, meta, connID, ops, commands.SCIMGroupUpdate{Rename: true, DisplayName: "PLATFORM"}); err != nil {
		t.Errorf("a change of case only: %v", err)
	}
	for _, g := range a.model.SCIMGroups(connID) {
		if g.DisplayName == "Eng" {
			if err := onA.SCIMDeleteGroup(ctx, meta, connID, g.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := onB.SCIMCreateGroup(ctx, meta, connID, commands.SCIMGroupInput{DisplayName: "ENG"}); err != nil {
		t.Errorf("a deleted group's name, created again: %v", err)
	}
	if _, err := onA.SCIMCreateGroup(ctx, meta, connID, commands.SCIMGroupInput{DisplayName: "eng "}); !errors.Is(err, commands.ErrSCIMNameTaken) {
		t.Errorf("a taken name sent again: %v, want %v", err, commands.ErrSCIMNameTaken)
	}
}
