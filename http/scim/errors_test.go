package scim

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

const patchBody = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":%s}`

func ops(s string) string { return strings.Replace(patchBody, "%s", s, 1) }

// Bad input: the right status and scimType, and nothing changed.
func TestErrorsChangeNothing(t *testing.T) {
	s := newServer(t, Options{})
	id := s.do("POST", "/scim/v2/Users", entraCT, entraCreateUser).want(t, 201).body["id"].(string)
	before := s.user(id)

	cases := []struct {
		name, method, target, ct, body string
		status                         int
		scimType                       string
	}{
		{"malformed filter", "GET", "/scim/v2/Users?filter=" + url.QueryEscape(`userName eq`), "", "", 400, InvalidFilter},
		{"unbalanced filter", "GET", "/scim/v2/Users?filter=" + url.QueryEscape(`(userName eq "a"`), "", "", 400, InvalidFilter},
		{"unknown operator", "GET", "/scim/v2/Users?filter=" + url.QueryEscape(`userName like "a"`), "", "", 400, InvalidFilter},
		{"unknown filter attribute", "GET", "/scim/v2/Users?filter=" + url.QueryEscape(`shoeSize eq "9"`), "", "", 400, InvalidFilter},
		{"filter on a dropped attribute", "GET", "/scim/v2/Users?filter=" + url.QueryEscape(`title eq "x"`), "", "", 400, InvalidFilter},
		{"filter on password", "GET", "/scim/v2/Users?filter=" + url.QueryEscape(`password eq "x"`), "", "", 400, InvalidFilter},
		{"gt on a boolean", "GET", "/scim/v2/Users?filter=" + url.QueryEscape(`active gt true`), "", "", 400, InvalidFilter},
		{"bad count", "GET", "/scim/v2/Users?count=ten", "", "", 400, InvalidValue},
		{"sorting", "GET", "/scim/v2/Users?sortBy=userName", "", "", 400, InvalidValue},
		{"no schemas", "POST", "/scim/v2/Users", entraCT, `{"userName":"x"}`, 400, InvalidSyntax},
		{"wrong schema", "POST", "/scim/v2/Users", entraCT, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"userName":"x"}`, 400, InvalidSyntax},
		{"not JSON", "POST", "/scim/v2/Users", entraCT, `{"schemas":`, 400, InvalidSyntax},
		{"not an object", "POST", "/scim/v2/Users", entraCT, `[1]`, 400, InvalidSyntax},
		{"unknown attribute", "POST", "/scim/v2/Users", entraCT, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x","shoeSize":9}`, 400, InvalidValue},
		{"unknown extension", "POST", "/scim/v2/Users", entraCT, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x","urn:example:ext:2.0:User":{"a":"b"}}`, 400, InvalidValue},
		{"wrong type", "POST", "/scim/v2/Users", entraCT, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x","active":"maybe"}`, 400, InvalidValue},
		{"no userName", "POST", "/scim/v2/Users", entraCT, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]}`, 400, InvalidValue},
		{"two primaries", "POST", "/scim/v2/Users", entraCT, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x","emails":[{"value":"a@x","primary":true},{"value":"b@x","primary":"True"}]}`, 400, InvalidValue},
		{"password not accepted", "POST", "/scim/v2/Users", entraCT, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x","password":"secret-pass"}`, 400, InvalidValue},
		{"media type", "POST", "/scim/v2/Users", "text/plain", `{}`, 415, ""},
		{"duplicate", "POST", "/scim/v2/Users", entraCT, entraCreateUser, 409, Uniqueness},
		{"PUT wrong schema", "PUT", "/scim/v2/Users/" + id, entraCT, `{"schemas":["urn:x"],"userName":"x"}`, 400, InvalidSyntax},
		{"PATCH not a PatchOp", "PATCH", "/scim/v2/Users/" + id, entraCT, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"Operations":[{"op":"replace","path":"active","value":false}]}`, 400, InvalidSyntax},
		{"PATCH no operations", "PATCH", "/scim/v2/Users/" + id, entraCT, ops(`[]`), 400, InvalidSyntax},
		{"PATCH unknown op", "PATCH", "/scim/v2/Users/" + id, entraCT, ops(`[{"op":"merge","path":"active","value":false}]`), 400, InvalidSyntax},
		{"PATCH id", "PATCH", "/scim/v2/Users/" + id, entraCT, ops(`[{"op":"replace","path":"id","value":"user-9"}]`), 400, Mutability},
		{"PATCH meta", "PATCH", "/scim/v2/Users/" + id, entraCT, ops(`[{"op":"replace","path":"meta.created","value":"2020-01-01T00:00:00Z"}]`), 400, Mutability},
		{"PATCH groups", "PATCH", "/scim/v2/Users/" + id, entraCT, ops(`[{"op":"add","path":"groups","value":[{"value":"group-1"}]}]`), 400, Mutability},
		{"PATCH pathless groups", "PATCH", "/scim/v2/Users/" + id, entraCT, ops(`[{"op":"replace","value":{"active":false,"groups":[]}}]`), 400, Mutability},
		{"PATCH unknown path", "PATCH", "/scim/v2/Users/" + id, entraCT, ops(`[{"op":"replace","path":"active","value":false},{"op":"replace","path":"shoeSize","value":"9"}]`), 400, InvalidPath},
		{"PATCH malformed path", "PATCH", "/scim/v2/Users/" + id, entraCT, ops(`[{"op":"replace","path":"emails[type eq","value":"x"}]`), 400, InvalidPath},
		{"PATCH filter on a single value", "PATCH", "/scim/v2/Users/" + id, entraCT, ops(`[{"op":"replace","path":"name[givenName eq \"x\"]","value":{}}]`), 400, InvalidPath},
		{"PATCH unknown sub-attribute", "PATCH", "/scim/v2/Users/" + id, entraCT, ops(`[{"op":"replace","path":"name.nickname","value":"x"}]`), 400, InvalidPath},
		{"PATCH remove without path", "PATCH", "/scim/v2/Users/" + id, entraCT, ops(`[{"op":"replace","path":"active","value":false},{"op":"remove"}]`), 400, NoTarget},
		{"PATCH no target", "PATCH", "/scim/v2/Users/" + id, entraCT, ops(`[{"op":"replace","path":"emails[value co \"nowhere\"].type","value":"home"}]`), 400, NoTarget},
		{"PATCH bad value", "PATCH", "/scim/v2/Users/" + id, entraCT, ops(`[{"op":"replace","path":"active","value":false},{"op":"replace","path":"active","value":7}]`), 400, InvalidValue},
		{"PATCH remove userName", "PATCH", "/scim/v2/Users/" + id, entraCT, ops(`[{"op":"remove","path":"userName"}]`), 400, InvalidValue},
		{"PATCH pathless not an object", "PATCH", "/scim/v2/Users/" + id, entraCT, ops(`[{"op":"replace","value":false}]`), 400, InvalidValue},
		{"PATCH password not accepted", "PATCH", "/scim/v2/Users/" + id, entraCT, ops(`[{"op":"replace","path":"password","value":"secret-pass"}]`), 400, InvalidValue},
		{"PATCH unknown user", "PATCH", "/scim/v2/Users/user-9999", entraCT, ops(`[{"op":"replace","path":"active","value":false}]`), 404, ""},
		{"unknown endpoint", "GET", "/scim/v2/Bulk", "", "", 404, ""},
		{"method", "POST", "/scim/v2/Users/" + id, entraCT, `{}`, 405, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			updates := s.mem.updates
			r := s.do(c.method, c.target, c.ct, c.body)
			r.wantError(t, c.status, c.scimType)
			if strings.Contains(r.raw, "secret-pass") {
				t.Fatalf("the password is in the answer: %s", r.raw)
			}
			if s.mem.updates != updates {
				t.Fatal("the backend was called")
			}
			if after := s.user(id); !reflect.DeepEqual(after, before) {
				t.Fatalf("the user changed:\n%+v\n%+v", before, after)
			}
		})
	}
}

// TestDuplicateNamesRefused: a member name given twice in an object, in
// the same or another letter case, is refused (400 invalidSyntax) on every
// path, every time — at any depth, in a PatchOp's operations and values too
// (outside check 14d: {"SCHEMAS":"bogus","schemas":[…]} answered 400 or
// 201 at random, as the map iteration picked one; a PATCH without a path
// took one of {"userName":…,"USERNAME":…} where POST and PUT refused them).
func TestDuplicateNamesRefused(t *testing.T) {
	s := newServer(t, Options{})
	id := s.do("POST", "/scim/v2/Users", entraCT, entraCreateUser).want(t, 201).body["id"].(string)
	before := s.user(id)
	const core = `"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]`
	cases := []struct{ name, method, target, body string }{
		{"POST schemas twice", "POST", "/scim/v2/Users", `{"SCHEMAS":"bogus",` + core + `,"userName":"dup-a"}`},
		{"POST schemas twice, the other order", "POST", "/scim/v2/Users", `{` + core + `,"SCHEMAS":"bogus","userName":"dup-b"}`},
		{"POST userName twice", "POST", "/scim/v2/Users", `{` + core + `,"userName":"dup-c","USERNAME":"dup-d"}`},
		{"POST userName twice, one null", "POST", "/scim/v2/Users", `{` + core + `,"userName":null,"username":"dup-e"}`},
		{"POST the same name twice", "POST", "/scim/v2/Users", `{` + core + `,"userName":"dup-f","userName":"dup-g"}`},
		{"POST sub-attribute twice", "POST", "/scim/v2/Users", `{` + core + `,"userName":"dup-h","name":{"givenName":"A","GIVENNAME":"B"}}`},
		{"POST in a list's element", "POST", "/scim/v2/Users", `{` + core + `,"userName":"dup-i","emails":[{"value":"a@x","VALUE":"b@x"}]}`},
		{"POST extension twice", "POST", "/scim/v2/Users", `{` + core + `,"userName":"dup-j","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"A"},"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER":{"department":"B"}}`},
		{"PUT userName twice", "PUT", "/scim/v2/Users/" + id, `{` + core + `,"userName":"dup-k","USERNAME":"dup-l"}`},
		{"PATCH pathless userName twice", "PATCH", "/scim/v2/Users/" + id, ops(`[{"op":"replace","value":{"userName":"Xa","USERNAME":"Xb"}}]`)},
		{"PATCH op twice", "PATCH", "/scim/v2/Users/" + id, ops(`[{"op":"replace","OP":"remove","path":"displayName","value":"X"}]`)},
		{"PATCH Operations twice", "PATCH", "/scim/v2/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"X"}],"operations":[]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			updates := s.mem.updates
			for range 20 { // a map's order is random: every time
				s.do(c.method, c.target, entraCT, c.body).wantError(t, 400, InvalidSyntax)
			}
			if s.mem.updates != updates {
				t.Fatal("the backend was called")
			}
			if after := s.user(id); !reflect.DeepEqual(after, before) {
				t.Fatalf("the user changed:\n%+v\n%+v", before, after)
			}
		})
	}
	// Names that differ otherwise are fine: one object per level.
	body := `{` + core + `,"userName":"dup-ok","name":{"givenName":"A","familyName":"B"},"emails":[{"value":"a@x","type":"work"},{"value":"b@x","type":"home"}]}`
	s.do("POST", "/scim/v2/Users", entraCT, body).want(t, 201)
}

// A Backend that finds Base stale answers ErrConflict; the request is
// resolved again on a fresh read.
func TestConflictRetried(t *testing.T) {
	s := newServer(t, Options{})
	id := s.do("POST", "/scim/v2/Users", entraCT, entraCreateUser).want(t, 201).body["id"].(string)
	s.mem.conflicts = 2
	s.do("PATCH", "/scim/v2/Users/"+id, entraCT, ops(`[{"op":"replace","path":"active","value":false}]`)).want(t, 200)
	if s.user(id).Active {
		t.Fatal("not deactivated")
	}
	s.mem.conflicts = 10
	s.do("PATCH", "/scim/v2/Users/"+id, entraCT, ops(`[{"op":"replace","path":"active","value":true}]`)).wantError(t, 409, "")
}

func TestDiscovery(t *testing.T) {
	s := newServer(t, Options{AcceptPasswords: true, MaxResults: 50, BaseURL: "https://auth.example.com/scim/v2/"})
	r := s.do("GET", "/scim/v2/ServiceProviderConfig", "", "").want(t, 200)
	for path, want := range map[string]any{
		"patch.supported": true, "bulk.supported": false, "filter.supported": true, "filter.maxResults": 50.0,
		"changePassword.supported": true, "sort.supported": false, "etag.supported": false,
		"meta.location": "https://auth.example.com/scim/v2/ServiceProviderConfig",
	} {
		keys := []any{}
		for _, k := range strings.Split(path, ".") {
			keys = append(keys, k)
		}
		if got := get(r.body, keys...); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	if get(r.body, "authenticationSchemes", 0, "type") != "oauthbearertoken" {
		t.Errorf("authenticationSchemes: %s", r.raw)
	}
	r = s.do("GET", "/scim/v2/ResourceTypes", "", "").want(t, 200)
	if r.body["totalResults"] != 2.0 || get(r.body, "Resources", 0, "schemaExtensions", 0, "schema") != EnterpriseSchema {
		t.Fatalf("resource types: %s", r.raw)
	}
	r = s.do("GET", "/scim/v2/ResourceTypes/Group", "", "").want(t, 200)
	if r.body["endpoint"] != "/Groups" || r.body["schema"] != GroupSchema {
		t.Fatalf("group type: %s", r.raw)
	}
	r = s.do("GET", "/scim/v2/Schemas/"+UserSchema, "", "").want(t, 200)
	if !strings.Contains(r.raw, `"name":"password"`) || !strings.Contains(r.raw, `"returned":"never"`) {
		t.Fatalf("password is accepted, so listed, write-only: %s", r.raw)
	}
	// Lists: count is capped at MaxResults, startIndex below 1 is 1.
	for i := range 3 {
		s.do("POST", "/scim/v2/Users", entraCT, strings.Replace(entraCreateUser, "Test_User_ab", "u"+string(rune('a'+i)), 1)).want(t, 201)
	}
	r = s.do("GET", "/scim/v2/Users?startIndex=0&count=2&attributes=userName", "", "").want(t, 200)
	if r.body["totalResults"] != 3.0 || r.body["itemsPerPage"] != 2.0 || r.body["startIndex"] != 1.0 {
		t.Fatalf("page: %s", r.raw)
	}
	if u := get(r.body, "Resources", 0).(map[string]any); len(u) != 3 || u["userName"] == nil || u["id"] == nil {
		t.Fatalf("attributes=userName: %v", u)
	}
	r = s.do("GET", "/scim/v2/Users?startIndex=3&count=2&excludedAttributes=emails,name.givenName", "", "").want(t, 200)
	if r.body["itemsPerPage"] != 1.0 || get(r.body, "Resources", 0, "emails") != nil ||
		get(r.body, "Resources", 0, "name", "givenName") != nil || get(r.body, "Resources", 0, "name", "familyName") == nil {
		t.Fatalf("page 2: %s", r.raw)
	}
	r = s.do("GET", "/scim/v2/Users?count=0", "", "").want(t, 200)
	if r.body["totalResults"] != 3.0 || len(r.body["Resources"].([]any)) != 0 {
		t.Fatalf("count=0: %s", r.raw)
	}
}
