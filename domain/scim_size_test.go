package domain

import (
	"fmt"
	"testing"
)

// A PUT of a group of 50,000 members that replaces them all with as many
// others: one event that adds the new and removes the old, in order (the
// searches by halves and the set that replaced searches from the start
// change no answer; BenchmarkSCIMGroupReplaceMembers measures the cost).
func TestSCIMGroupReplaceAllMembers(t *testing.T) {
	g, old, fresh := bigSCIMGroup(50_000)
	// Both lists hold the same value: it is neither added nor removed.
	add, remove := append([]string{"u-both"}, fresh...), append([]string{"u-both"}, old...)
	evs, err := DecideSCIMGroup(g, ChangeSCIMGroupMembers{Add: add, Remove: remove, Now: scimT0})
	if err != nil || len(evs) != 1 {
		t.Fatal(evs, err)
	}
	ev := evs[0].(SCIMGroupMembersChanged)
	if len(ev.Added) != len(fresh) || ev.Added[0] != fresh[0] || len(ev.Removed) != len(old) || ev.Removed[0] != old[0] {
		t.Fatalf("added %d (%s…), removed %d (%s…)", len(ev.Added), ev.Added[0], len(ev.Removed), ev.Removed[0])
	}
	after := EvolveSCIMGroup(g, ev)
	if len(after.Members) != len(fresh) || after.Members[0] != fresh[0] || after.HasMember(old[0]) {
		t.Fatalf("members %d, first %s", len(after.Members), after.Members[0])
	}
}

// TestSCIMGroupReplaceAtTheBound: replacing every member of a group at the
// bound (100,000) with as many others is within it — the removed leave as
// the added come; one more than the bound is refused, nothing decided.
func TestSCIMGroupReplaceAtTheBound(t *testing.T) {
	g, old, fresh := bigSCIMGroup(maxSCIMMembers)
	evs, err := DecideSCIMGroup(g, ChangeSCIMGroupMembers{Add: fresh, Remove: old, Now: scimT0})
	if err != nil || len(evs) != 1 {
		t.Fatalf("replace all %d members: %v, %v", maxSCIMMembers, len(evs), err)
	}
	if evs, err := DecideSCIMGroup(g, ChangeSCIMGroupMembers{Add: append(fresh[:1:1], "u-c0000000"), Remove: old[:1], Now: scimT0}); err == nil {
		t.Fatalf("one member more than the bound: %v, want refused", evs)
	}
}

func bigSCIMGroup(n int) (g SCIMGroup, members, others []string) {
	for i := 0; i < n; i++ {
		members = append(members, fmt.Sprintf("u-a%07d", i))
		others = append(others, fmt.Sprintf("u-b%07d", i))
	}
	evs, err := DecideSCIMGroup(SCIMGroup{}, CreateSCIMGroup{GroupID: "g", ConnectionID: "c", DisplayName: "all", Members: members, Now: scimT0})
	if err != nil {
		panic(err)
	}
	return EvolveSCIMGroup(SCIMGroup{}, evs[0]), members, others
}

func BenchmarkSCIMGroupReplaceMembers(b *testing.B) {
	g, old, fresh := bigSCIMGroup(50_000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		evs, err := DecideSCIMGroup(g, ChangeSCIMGroupMembers{Add: fresh, Remove: old, Now: scimT0})
		if err != nil {
			b.Fatal(err)
		}
		if after := EvolveSCIMGroup(g, evs[0]); len(after.Members) != len(fresh) {
			b.Fatal(len(after.Members))
		}
	}
}
