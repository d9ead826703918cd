package scim

import (
	"errors"
	"testing"
	"time"
)

func TestParseFilter(t *testing.T) {
	for in, want := range map[string]string{
		`userName eq "bjensen"`:                                             `userName eq "bjensen"`,
		`UserName EQ "x"`:                                                   `UserName eq "x"`,
		`userName eq "a\"b\u00e9\/"`:                                        `userName eq "a\"bé/"`,
		`emails[type eq "work"].value eq "a@b.c"`:                           `emails[type eq "work" and value eq "a@b.c"]`,
		`emails[type eq "work" and value co "@example.com"]`:                `emails[type eq "work" and value co "@example.com"]`,
		`emails[type eq "work" and primary eq true and value co "x"]`:       `emails[type eq "work" and primary eq true and value co "x"]`,
		`emails[(type eq "work" or type eq "home") and value co "x"]`:       `emails[(type eq "work" or type eq "home") and value co "x"]`,
		`not (userName eq "x")`:                                             `not (userName eq "x")`,
		`not(userName eq "x")`:                                              `not (userName eq "x")`,
		`title pr and userType eq "Employee"`:                               `title pr and userType eq "Employee"`,
		`userName eq "x" or userName eq "y" and active eq true`:             `userName eq "x" or userName eq "y" and active eq true`,
		`(userName eq "x" or userName eq "y") and active eq True`:           `(userName eq "x" or userName eq "y") and active eq true`,
		`urn:ietf:params:scim:schemas:core:2.0:User:name.familyName sw "J"`: `urn:ietf:params:scim:schemas:core:2.0:User:name.familyName sw "J"`,
		`meta.lastModified gt "2011-05-13T04:42:34Z"`:                       `meta.lastModified gt "2011-05-13T04:42:34Z"`,
		`externalId eq jyoung`:                                              `externalId eq "jyoung"`,
		`x eq null and y eq 1.5e3`:                                          `x eq null and y eq 1500`,
		`members[value eq "abc"]`:                                           `members[value eq "abc"]`,
	} {
		f, err := ParseFilter(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := f.String(); got != want {
			t.Errorf("%s:\n got %s\nwant %s", in, got, want)
		}
		// The printed form parses to the same.
		again, err := ParseFilter(f.String())
		if err != nil || again.String() != want {
			t.Errorf("%s: printed form %q does not parse back (%v)", in, f.String(), err)
		}
	}
	for _, in := range []string{
		``, `userName`, `userName eq`, `userName eq "x" and`, `(userName eq "x"`, `userName eq "x")`,
		`userName like "x"`, `userName eq 'x'`, `userName eq "unterminated`, `"x" eq userName`,
		`emails[type eq "work"`, `emails[members[value eq "x"]]`, `name.givenName[x eq "y"]`,
		`1abc eq "x"`, `a.b.c eq "x"`, `userName eq "\x"`, `not userName eq "x"`, `:name eq "x"`,
		`emails[type eq "work"].value`, `emails[type eq "work"].value eq`,
	} {
		_, err := ParseFilter(in)
		var se *Error
		if !errors.As(err, &se) || se.ScimType != InvalidFilter || se.Status != 400 {
			t.Errorf("%q: %v, want invalidFilter", in, err)
		}
	}
	deep := ""
	for range 40 {
		deep += "("
	}
	if _, err := ParseFilter(deep + `a eq "b"`); err == nil {
		t.Error("nesting deeper than the limit was accepted")
	}
}

func TestParsePath(t *testing.T) {
	for in, want := range map[string]string{
		`emails[type eq "work"].value`: `emails[type eq "work"].value`,
		`members[value eq "2819c223"]`: `members[value eq "2819c223"]`,
		`name.givenName`:               `name.givenName`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`: `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`,
		`active`: `active`,
	} {
		p, err := ParsePath(in)
		if err != nil || p.String() != want {
			t.Errorf("%s: %v %v", in, p, err)
		}
	}
	for _, in := range []string{``, `x y`, `emails[type eq "work"`, `emails[type eq "work"]value`, `name.givenName[type eq "x"]`, `[a eq "b"]`, `emails[type eq "work"].`} {
		_, err := ParsePath(in)
		var se *Error
		if !errors.As(err, &se) || se.ScimType != InvalidPath {
			t.Errorf("%q: %v, want invalidPath", in, err)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	u := User{
		ID: "user-1", ExternalID: "Ext-1", UserName: "Alice.Smith", DisplayName: "Alice Smith",
		Name:   Name{GivenName: "Alice", FamilyName: "Smith"},
		Emails: []Email{{Value: "alice@work.example", Type: "work", Primary: true}, {Value: "alice@home.example", Type: "home"}},
		Active: true, Enterprise: Enterprise{Department: "R&D"},
		Meta: Meta{Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), LastModified: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)},
	}
	for filter, want := range map[string]bool{
		`userName eq "alice.smith"`:                            true, // caseExact false
		`USERNAME eq "ALICE.SMITH"`:                            true,
		`externalId eq "ext-1"`:                                false, // caseExact true
		`externalId eq "Ext-1"`:                                true,
		`id eq "user-1"`:                                       true,
		`emails[type eq "work"].value eq "ALICE@work.example"`: true,
		`emails[type eq "home"].value eq "alice@work.example"`: false,
		`emails[type eq "work" and primary eq true]`:           true,
		`emails[type eq "home" and primary eq true]`:           false,
		`emails.value eq "alice@home.example"`:                 true,
		`emails eq "alice@home.example"`:                       true,
		`emails.type eq "other"`:                               false,
		`userName eq "x" or displayName sw "alice"`:            true,
		`userName eq "alice.smith" and active eq false`:        false,
		`not (active eq false)`:                                true,
		`name.familyName co "MIT"`:                             true,
		`name.givenName ew "ce"`:                               true,
		`displayName pr`:                                       true,
		`externalId pr and name.formatted pr`:                  false,
		`name.formatted eq null`:                               true,
		`userName ne "bob"`:                                    true,
		`meta.lastModified gt "2026-01-15T00:00:00Z"`:          true,
		`meta.created ge "2026-01-01T00:00:00+00:00"`:          true,
		`meta.created lt "2025-12-31T23:00:00-01:00"`:          false,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "r&d"`: true,
		`active eq "True"`: true,
		// Usernames and addresses compare by ASCII case only: a lookalike
		// (İ U+0130, the Kelvin sign U+212A) that strings.ToLower maps onto
		// an ASCII letter matches nothing, in any operator.
		`userName eq "alİce.smith"`:                    false,
		`userName eq "x" or userName eq "ALİCE.SMITH"`: false,
		`userName sw "alİ"`:                            false,
		`userName co "İ"`:                              false,
		`userName ne "alİce.smith"`:                    true,
		`not (userName ne "alİce.smith")`:              false,
		`emails.value eq "alİce@work.example"`:         false,
		`emails[value ew "worK.example"]`:              false,
	} {
		f, err := ParseUserFilter(filter)
		if err != nil {
			t.Errorf("%s: %v", filter, err)
			continue
		}
		if got := f.MatchUser(u); got != want {
			t.Errorf("%s: %v, want %v", filter, got, want)
		}
	}
	g := Group{ID: "group-1", DisplayName: "Prod Admins", Members: []Member{{Value: "user-1"}}}
	for filter, want := range map[string]bool{
		`displayName eq "prod admins"`: true,
		`members[value eq "user-1"]`:   true,
		`members.value eq "USER-1"`:    false, // caseExact
		`externalId eq "x"`:            false,
	} {
		f, err := ParseGroupFilter(filter)
		if err != nil {
			t.Errorf("%s: %v", filter, err)
			continue
		}
		if got := f.MatchGroup(g); got != want {
			t.Errorf("%s: %v, want %v", filter, got, want)
		}
		if f.MatchUser(u) {
			t.Errorf("%s: a group filter matched a user", filter)
		}
	}
}

func TestEquality(t *testing.T) {
	for filter, want := range map[string]Equality{
		`userName eq "X"`:                       {Attr: "userName", Value: "X", Whole: true},
		`USERNAME eq "X" and active eq true`:    {Attr: "userName", Value: "X"},
		`active eq true and externalId eq "e"`:  {Attr: "externalId", Value: "e", CaseExact: true},
		`emails[type eq "work"].value eq "a@b"`: {Attr: "emails.value", Type: "work", Value: "a@b", Whole: true},
		`emails[value eq "a@b"]`:                {Attr: "emails.value", Value: "a@b", Whole: true},
		`emails.value eq "a@b"`:                 {Attr: "emails.value", Value: "a@b", Whole: true},
		`id eq "user-1"`:                        {Attr: "id", Value: "user-1", CaseExact: true, Whole: true},
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7"`: {Attr: EnterpriseSchema + ":employeeNumber", Value: "7", Whole: true},
	} {
		f, err := ParseUserFilter(filter)
		if err != nil {
			t.Fatalf("%s: %v", filter, err)
		}
		got, ok := f.Equality()
		if !ok || got != want {
			t.Errorf("%s: %+v %v, want %+v", filter, got, ok, want)
		}
	}
	for _, filter := range []string{`userName eq "a" or userName eq "b"`, `not (userName eq "a")`, `userName sw "a"`,
		`emails[type eq "work"]`, `active eq true`, `emails[type eq "work" or value eq "x"]`} {
		f, err := ParseUserFilter(filter)
		if err != nil {
			t.Fatalf("%s: %v", filter, err)
		}
		if eq, ok := f.Equality(); ok {
			t.Errorf("%s: %+v, want none", filter, eq)
		}
	}
	g, err := ParseGroupFilter(`displayName eq "Admins"`)
	if err != nil {
		t.Fatal(err)
	}
	if eq, ok := g.Equality(); !ok || eq.Attr != "displayName" || eq.CaseExact {
		t.Errorf("group displayName: %+v", eq)
	}
}
