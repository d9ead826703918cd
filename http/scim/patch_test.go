package scim

import (
	"errors"
	"reflect"
	"testing"
)

func patchUser(t *testing.T, u User, body string) (User, error) {
	t.Helper()
	list, err := parsePatch([]byte(ops(body)))
	if err != nil {
		return User{}, err
	}
	p := &patcher{rt: userRT, m: userMap(u)}
	for _, op := range list {
		if err := p.apply(op); err != nil {
			return User{}, err
		}
	}
	out := mapToUser(p.m)
	return out, validateUser(out)
}

func TestPatchUser(t *testing.T) {
	base := User{ID: "user-1", UserName: "alice", Active: true,
		Name:   Name{GivenName: "Alice", FamilyName: "Smith"},
		Emails: []Email{{Value: "alice@work.example", Type: "work", Primary: true}}}
	withEmails := func(es ...Email) User { u := base; u.Emails = es; return u }
	work := Email{Value: "alice@work.example", Type: "work", Primary: true}
	cases := []struct {
		name, ops string
		want      User
	}{
		{"add an email that is there changes nothing",
			`[{"op":"add","path":"emails","value":[{"value":"alice@work.example","type":"work","primary":true}]}]`, base},
		{"a new primary email takes primary from the old one",
			`[{"op":"add","path":"emails","value":[{"value":"a@home.example","type":"home","primary":true}]}]`,
			withEmails(Email{Value: "alice@work.example", Type: "work"}, Email{Value: "a@home.example", Type: "home", Primary: true})},
		{"a value filter that matches nothing adds what it describes",
			`[{"op":"add","path":"emails[type eq \"home\"].value","value":"a@home.example"}]`,
			withEmails(work, Email{Value: "a@home.example", Type: "home"})},
		{"remove by value filter",
			`[{"op":"add","path":"emails","value":{"value":"a@home.example","type":"home"}},{"op":"remove","path":"emails[type eq \"home\"]"}]`, base},
		{"remove by value filter that matches nothing",
			`[{"op":"remove","path":"emails[type eq \"other\"]"}]`, base},
		{"remove a sub-attribute through a filter",
			`[{"op":"remove","path":"emails[type eq \"work\"].primary"}]`, withEmails(Email{Value: "alice@work.example", Type: "work"})},
		{"replace a whole multi-valued attribute",
			`[{"op":"replace","path":"emails","value":[{"value":"new@x.example"}]}]`, withEmails(Email{Value: "new@x.example"})},
		{"remove a whole attribute",
			`[{"op":"remove","path":"emails"}]`, withEmails()},
		{"replace on a complex attribute keeps the sub-attributes not given",
			`[{"op":"replace","path":"name","value":{"formatted":"Alice Smith"}}]`,
			func() User { u := base; u.Name.Formatted = "Alice Smith"; return u }()},
		{"pathless keys: an attribute and a path into it, an extension object",
			`[{"op":"Add","value":{"name":{"givenName":"Al"},"name.familyName":"Smythe","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Ops","manager":{"value":"m"}},"title":"CTO"}}]`,
			func() User {
				u := base
				u.Name = Name{GivenName: "Al", FamilyName: "Smythe"}
				u.Enterprise.Department = "Ops"
				return u
			}()},
		{"remove an extension attribute, then the extension",
			`[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber","value":"7"},{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}]`, base},
		{"attribute names in any case, core URN prefix",
			`[{"op":"REPLACE","path":"urn:ietf:params:scim:schemas:core:2.0:User:Name.GivenName","value":"Ally"},{"op":"replace","path":"DISPLAYNAME","value":"A"}]`,
			func() User { u := base; u.Name.GivenName = "Ally"; u.DisplayName = "A"; return u }()},
		{"sub-attribute of every value",
			`[{"op":"replace","path":"emails.type","value":"other"}]`, withEmails(Email{Value: "alice@work.example", Type: "other", Primary: true})},
		{"ignored attributes and sub-attributes", `[{"op":"add","path":"phoneNumbers[type eq \"work\"].value","value":"1"},{"op":"replace","path":"name.middleName","value":"B"},{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}]`, base},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := patchUser(t, base, c.ops)
			if err != nil {
				t.Fatal(err)
			}
			got.ID = base.ID
			if !reflect.DeepEqual(userMap(got), userMap(c.want)) {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestPatchGroupMembers(t *testing.T) {
	base := Group{ID: "group-1", DisplayName: "Admins", Members: []Member{{Value: "user-1"}, {Value: "user-2"}}}
	apply := func(body string) Group {
		t.Helper()
		list, err := parsePatch([]byte(ops(body)))
		if err != nil {
			t.Fatal(err)
		}
		p := &patcher{rt: groupRT, m: groupMap(base)}
		for _, op := range list {
			if err := p.apply(op); err != nil {
				t.Fatal(err)
			}
		}
		return mapToGroup(p.m)
	}
	g := apply(`[{"op":"add","path":"members","value":[{"value":"user-2","display":"x"},{"value":"user-3"}]}]`)
	changed, added, removed := groupChanges(base, g)
	if len(added) != 1 || added[0].Value != "user-3" || len(removed) != 0 || len(changed) != 1 {
		t.Fatalf("add: %v %v %v", changed, added, removed)
	}
	g = apply(`[{"op":"replace","path":"members","value":[{"value":"user-3"}]}]`)
	if _, added, removed = groupChanges(base, g); len(added) != 1 || len(removed) != 2 {
		t.Fatalf("replace: %v %v", added, removed)
	}
	g = apply(`[{"op":"remove","path":"members[value eq \"user-1\" or value eq \"user-2\"]"}]`)
	if len(g.Members) != 0 {
		t.Fatalf("remove by filter: %+v", g)
	}
	g = apply(`[{"op":"remove","path":"members"}]`)
	if len(g.Members) != 0 {
		t.Fatalf("remove all: %+v", g)
	}
	list, err := parsePatch([]byte(ops(`[{"op":"replace","path":"members[value eq \"user-1\"].display","value":"x"}]`)))
	if err != nil {
		t.Fatal(err)
	}
	err = (&patcher{rt: groupRT, m: groupMap(base)}).apply(list[0])
	var se *Error
	if !errors.As(err, &se) || se.ScimType != Mutability {
		t.Fatalf("display is read-only: %v", err)
	}
}
