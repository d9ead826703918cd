package scim

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// bigGroup is a group of n members, as a group may be (at most 100,000).
func bigGroup(n int) Group {
	g := Group{ID: "group-1", DisplayName: "Everyone", Members: make([]Member, n)}
	for i := range g.Members {
		g.Members[i] = Member{Value: fmt.Sprintf("user-%08d", i)}
	}
	return g
}

// patchGroup applies a PATCH body to g as the handler does.
func patchGroup(tb testing.TB, g Group, body string) Group {
	tb.Helper()
	list, err := parsePatch([]byte(body))
	if err != nil {
		tb.Fatal(err)
	}
	p := &patcher{rt: groupRT, m: groupMap(g)}
	if err := p.applyAll(list); err != nil {
		tb.Fatal(err)
	}
	return mapToGroup(p.m)
}

// memberOps is a PATCH body of one op adding (or removing) the given
// members by value, as Entra ID sends them.
func memberOps(op string, values ...string) string {
	var b strings.Builder
	for i, v := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"value":%q}`, v)
	}
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"` + op + `","path":"members","value":[` + b.String() + `]}]}`
}

// A change of a group of 100,000 members tells the same members added and
// removed, in order, each once, as a small group's does (the sets that
// replaced a search per member change no answer; BenchmarkGroupChanges
// measures the cost: seconds per change before, milliseconds after).
func TestGroupChangesLargeGroup(t *testing.T) {
	base := bigGroup(100_000)
	result := Group{ID: base.ID, DisplayName: base.DisplayName}
	result.Members = append(result.Members, Member{Value: "user-new-2"}, Member{Value: "user-new-1"}, Member{Value: "user-new-2"})
	result.Members = append(result.Members, base.Members[2:]...)
	base.Members = append(base.Members, base.Members[1]) // a value twice
	changed, added, removed := groupChanges(base, result)
	if fmt.Sprint(changed) != "[members]" {
		t.Fatalf("changed %v", changed)
	}
	if fmt.Sprint(added) != "[{user-new-2  } {user-new-1  }]" {
		t.Fatalf("added %v", added)
	}
	if fmt.Sprint(removed) != "[{user-00000000  } {user-00000001  }]" {
		t.Fatalf("removed %v", removed)
	}
	if changed, added, removed := groupChanges(base, base); changed != nil || added != nil || removed != nil {
		t.Fatalf("no change: %v %v %v", changed, added, removed)
	}
}

// A PATCH adding members to a group of 100,000, or removing them by value
// (Entra ID's form), keeps the others and adds each new value once.
func TestPatchLargeGroupMembers(t *testing.T) {
	base := bigGroup(100_000)
	g := patchGroup(t, base, memberOps("add", "user-00000005", "user-new", "user-new"))
	if len(g.Members) != 100_001 || g.Members[100_000].Value != "user-new" {
		t.Fatalf("add: %d members, last %v", len(g.Members), g.Members[len(g.Members)-1])
	}
	g = patchGroup(t, g, memberOps("remove", "user-00000005", "user-new", "user-gone"))
	if len(g.Members) != 99_999 || g.Members[5].Value != "user-00000006" {
		t.Fatalf("remove: %d members, [5] %v", len(g.Members), g.Members[5])
	}
}

func BenchmarkGroupChanges(b *testing.B) {
	base := bigGroup(100_000)
	result := Group{ID: base.ID, DisplayName: base.DisplayName, Members: append([]Member{{Value: "user-new"}}, base.Members[1:]...)}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, added, removed := groupChanges(base, result); len(added) != 1 || len(removed) != 1 {
			b.Fatal(added, removed)
		}
	}
}

// A PATCH of a group of 100,000 members adding and removing 2,000 members
// by value (what a 64 KiB body holds).
func BenchmarkPatchLargeGroupMembers(b *testing.B) {
	base := bigGroup(100_000)
	var values []string
	for i := 0; i < 2000; i++ {
		values = append(values, fmt.Sprintf("user-n%07d", i))
	}
	add, remove := memberOps("add", values...), memberOps("remove", values...)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g := patchGroup(b, base, add)
		if g = patchGroup(b, g, remove); len(g.Members) != len(base.Members) {
			b.Fatal(len(g.Members))
		}
	}
}

func BenchmarkPatchLargeGroupFilteredRemove(b *testing.B) {
	base := bigGroup(100_000)
	var ops []string
	for i := 0; i < 1000; i++ {
		ops = append(ops, fmt.Sprintf(`{"op":"remove","path":"members[value eq \"user-%08d\"]"}`, i))
	}
	body := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + strings.Join(ops, ",") + `]}`
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if g := patchGroup(b, base, body); len(g.Members) != 99_000 {
			b.Fatal(len(g.Members))
		}
	}
}

// Removals by value one operation each, applied together (applyAll), leave
// what applying them one by one leaves — among other operations, on values
// that are not there, and with an error after them.
func TestPatchRemovesByValueTogether(t *testing.T) {
	base := bigGroup(10)
	cases := []string{
		`{"op":"remove","path":"members[value eq \"user-00000001\"]"},
		 {"op":"remove","path":"members[VALUE eq \"user-gone\"]"},
		 {"op":"remove","path":"Members[value eq \"user-00000002\"]"},
		 {"op":"add","path":"members","value":[{"value":"user-x"}]},
		 {"op":"remove","path":"members[value eq \"user-x\"]"},
		 {"op":"remove","path":"members[value eq \"user-00000003\" or value eq \"user-00000004\"]"},
		 {"op":"remove","path":"members[value eq \"USER-00000005\"]"},
		 {"op":"remove","path":"members[value eq \"user-00000006\"]"}`,
		`{"op":"remove","path":"members[value eq \"user-00000001\"]"},
		 {"op":"remove","path":"members[value eq \"user-00000002\"]"},
		 {"op":"remove","path":"members[value eq \"user-00000003\"]"},
		 {"op":"remove","path":"members[value eq \"user-00000004\"]"},
		 {"op":"remove","path":"members[value eq \"user-00000005\"]"},
		 {"op":"remove","path":"members[value eq \"user-00000006\"]"},
		 {"op":"remove","path":"members[value eq \"user-00000007\"]"},
		 {"op":"remove","path":"members[value eq \"user-00000008\"]"},
		 {"op":"remove","path":"members[value eq \"user-00000009\"]"},
		 {"op":"remove","path":"members[value eq \"user-00000000\"]"}`,
		`{"op":"remove","path":"members[value eq \"user-00000001\"]"},
		 {"op":"remove","path":"members[nope eq \"x\"]"}`,
	}
	for i, c := range cases {
		list, err := parsePatch([]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + c + `]}`))
		if err != nil {
			t.Fatal(err)
		}
		one := &patcher{rt: groupRT, m: groupMap(base)}
		var errOne error
		for _, op := range list {
			if errOne = one.apply(op); errOne != nil {
				break
			}
		}
		all := &patcher{rt: groupRT, m: groupMap(base)}
		errAll := all.applyAll(list)
		if fmt.Sprint(errOne) != fmt.Sprint(errAll) {
			t.Fatalf("case %d: error %v, one by one %v", i, errAll, errOne)
		}
		if errOne == nil && !reflect.DeepEqual(mapToGroup(one.m), mapToGroup(all.m)) {
			t.Fatalf("case %d: together %+v\none by one %+v", i, mapToGroup(all.m), mapToGroup(one.m))
		}
		if i == 0 && len(mapToGroup(all.m).Members) != 5 {
			t.Fatalf("case 0: %+v", mapToGroup(all.m).Members)
		}
	}
}
