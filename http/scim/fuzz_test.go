package scim

import (
	"errors"
	"testing"
)

var filterSeeds = []string{
	`userName eq "bjensen"`, `emails[type eq "work"].value eq "a@b.c"`, `emails[type eq "work" and value co "@x"]`,
	`not (userName eq "x") or (a pr and b.c gt 1.5e3)`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x"`,
	`meta.lastModified gt "2011-05-13T04:42:34Z"`, `externalId eq jyoung`, `userName eq "\u00e9\"\\"`, `((a eq "b"))`,
	`members[value eq "x"]`, `emails[not (type eq "work")]`, `active eq True`, `x eq null`,
}

// FuzzParseFilter: any input parses or fails with invalidFilter, never
// panics; what parses prints to a form that parses to the same; checking it
// against the user type and matching it never panics.
func FuzzParseFilter(f *testing.F) {
	for _, s := range filterSeeds {
		f.Add(s)
	}
	u := User{ID: "user-1", UserName: "Alice", Active: true, Emails: []Email{{Value: "a@x", Type: "work", Primary: true}},
		Name: Name{GivenName: "A"}, Enterprise: Enterprise{Department: "D"}}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(s)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || se.ScimType != InvalidFilter {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		printed := flt.String()
		again, err := ParseFilter(printed)
		if err != nil || again.String() != printed {
			t.Fatalf("%q printed as %q, which parses to %v (%v)", s, printed, again, err)
		}
		if uf, err := ParseUserFilter(s); err == nil {
			uf.MatchUser(u)
			uf.Equality()
		}
		if gf, err := ParseGroupFilter(s); err == nil {
			gf.MatchGroup(Group{ID: "g", DisplayName: "G", Members: []Member{{Value: "user-1"}}})
		}
	})
}

// FuzzParsePath: any input parses or fails with invalidPath; applying it
// in each operation to a user fails with an *Error or leaves a user.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{`emails[type eq "work"].value`, `members[value eq "x"]`, `name.givenName`, `active`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`,
		`emails[type eq "work" and primary eq true]`, `meta.created`, `id`, `phoneNumbers[type eq "fax"].value`} {
		f.Add(s, `"x"`)
	}
	f.Add(`emails`, `[{"value":"a@b","primary":"True"}]`)
	f.Add(`name`, `{"givenName":"B"}`)
	f.Fuzz(func(t *testing.T, path, value string) {
		if _, err := ParsePath(path); err != nil {
			var se *Error
			if !errors.As(err, &se) || se.ScimType != InvalidPath {
				t.Fatalf("%q: %v", path, err)
			}
		}
		base := User{ID: "user-1", UserName: "alice", Emails: []Email{{Value: "a@x", Type: "work", Primary: true}}}
		for _, op := range []string{"add", "replace", "remove"} {
			v, err := decodeObject([]byte(`{"v":` + value + `}`))
			if err != nil {
				return
			}
			p := &patcher{rt: userRT, m: userMap(base)}
			if err := p.apply(patchOp{Op: op, Path: path, HasPath: true, Value: v["v"]}); err != nil {
				var se *Error
				if !errors.As(err, &se) || se.Status != 400 {
					t.Fatalf("%s %q %s: %v", op, path, value, err)
				}
				continue
			}
			mapToUser(p.m)
		}
	})
}

// FuzzPatchBody: any PATCH body fails with an *Error or resolves.
func FuzzPatchBody(f *testing.F) {
	f.Add(ops(`[{"op":"Replace","path":"active","value":"False"}]`))
	f.Add(ops(`[{"op":"replace","value":{"name.givenName":"K","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"1"}}]`))
	f.Add(ops(`[{"op":"remove","path":"members","value":[{"value":"u"}]}]`))
	f.Fuzz(func(t *testing.T, body string) {
		list, err := parsePatch([]byte(body))
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatal(err)
			}
			return
		}
		for _, rt := range []*resourceType{userRT, groupRT} {
			p := &patcher{rt: rt, m: userMap(User{ID: "x", UserName: "a"})}
			for _, op := range list {
				if err := p.apply(op); err != nil {
					var se *Error
					if !errors.As(err, &se) {
						t.Fatal(err)
					}
					break
				}
			}
		}
	})
}
