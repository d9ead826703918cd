package tests

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const (
	userSchema  = `"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]`
	groupSchema = `"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"]`
	patchSchema = `"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]`
)

func patchOps(ops string) string { return `{` + patchSchema + `,"Operations":` + ops + `}` }

// TestSCIMConformance runs every SCIM operation against the real service
// (RFC 7643, RFC 7644): discovery, users and groups with create, get, list
// with filters and pages, PUT, PATCH in its forms, DELETE; and bad input of
// every kind, answered in the SCIM error schema with nothing appended to the
// event store.
func TestSCIMConformance(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	_, tok := newConnection(t, in, admin, admin, []string{"prod", "staging"},
		mapping{"prod-admins", "prod", "admin"}, mapping{"prod-viewers", "prod", "viewer"}, mapping{"staging-editors", "staging", "editor"})
	call := func(method, path, body string) Response { return scimCall(t, in, method, path, tok, body) }

	t.Run("discovery", func(t *testing.T) {
		r := wantSCIM(t, "ServiceProviderConfig", call("GET", "/scim/v2/ServiceProviderConfig", ""), 200)
		if at(r.JSON, "patch", "supported") != true || at(r.JSON, "filter", "supported") != true ||
			at(r.JSON, "changePassword", "supported") != true || at(r.JSON, "authenticationSchemes", 0, "type") != "oauthbearertoken" {
			t.Fatalf("ServiceProviderConfig: %s", r.Raw)
		}
		r = wantSCIM(t, "ResourceTypes", call("GET", "/scim/v2/ResourceTypes", ""), 200)
		if r.JSON["totalResults"] != 2.0 {
			t.Fatalf("ResourceTypes: %s", r.Raw)
		}
		wantSCIM(t, "ResourceTypes/User", call("GET", "/scim/v2/ResourceTypes/User", ""), 200)
		r = wantSCIM(t, "Schemas", call("GET", "/scim/v2/Schemas", ""), 200)
		if r.JSON["totalResults"] != 3.0 {
			t.Fatalf("Schemas: %s", r.Raw)
		}
		wantSCIM(t, "Schemas/User", call("GET", "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", ""), 200)
		wantSCIMError(t, "unknown endpoint", call("GET", "/scim/v2/Bulk", ""), 404, "")
		wantSCIMError(t, "method not allowed", call("DELETE", "/scim/v2/Users", ""), 405, "")
	})

	var alice, bob, carol string
	t.Run("users", func(t *testing.T) {
		seq := head(t, in)
		r := wantSCIM(t, "create alice", call("POST", "/scim/v2/Users", `{`+userSchema+`,
			"userName":"alice@example.com","externalId":"00ualice","name":{"givenName":"Alice","familyName":"Smith"},
			"displayName":"Alice Smith","emails":[{"value":"alice@example.com","type":"work","primary":true}],
			"password":"orchid-lantern-42","active":true,
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"701","department":"Ops"}}`), 201)
		alice = r.String("id")
		if !strings.HasPrefix(alice, "user-") || r.Header.Get("Location") != in.URL+"/scim/v2/Users/"+alice ||
			r.String("userName") != "alice@example.com" || at(r.JSON, "name", "givenName") != "Alice" ||
			at(r.JSON, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "department") != "Ops" || r.JSON["active"] != true {
			t.Fatalf("create: %s", r.Raw)
		}
		if strings.Contains(string(r.Raw), "orchid-lantern-42") || strings.Contains(string(r.Raw), "password") {
			t.Fatalf("the password is echoed: %s", r.Raw)
		}
		// The SCIM user is the service's user: the same ID and username,
		// signing in with the pushed password.
		u := in.Do("GET", "/api/v1/users/"+alice, admin, nil)
		if u.String("username") != "alice@example.com" || u.String("email") != "alice@example.com" {
			t.Fatalf("the user: %s", u.Raw)
		}
		in.Login("alice@example.com", "orchid-lantern-42")
		for _, e := range eventsSince(t, in, seq) {
			if e.Aggregate != "session" && e.Type != "user.login_succeeded" && (e.Actor.Type != "scim" || !strings.HasPrefix(e.Actor.ID, "scim-")) {
				t.Fatalf("%s has actor %+v", e.Type, e.Actor)
			}
		}

		bob = wantSCIM(t, "create bob", call("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"Bob","externalId":"00ubob",
			"emails":[{"value":"bob@home.example","type":"home"},{"value":"bob@example.com","type":"work"}]}`), 201).String("id")
		carol = wantSCIM(t, "create carol inactive", call("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"carol","active":false}`), 201).String("id")
		if r := call("GET", "/scim/v2/Users/"+carol, ""); r.JSON["active"] != false {
			t.Fatalf("carol: %s", r.Raw)
		}
		if u := in.Do("GET", "/api/v1/users/"+bob, admin, nil); u.String("email") != "bob@example.com" {
			t.Fatalf("bob's address is the work one: %s", u.Raw)
		}

		r = wantSCIM(t, "get", call("GET", "/scim/v2/Users/"+alice, ""), 200)
		if r.String("id") != alice || at(r.JSON, "meta", "resourceType") != "User" || at(r.JSON, "meta", "location") != in.URL+"/scim/v2/Users/"+alice {
			t.Fatalf("get: %s", r.Raw)
		}
		r = wantSCIM(t, "get with attributes", call("GET", "/scim/v2/Users/"+alice+"?attributes=userName", ""), 200)
		if r.JSON["name"] != nil || r.String("userName") == "" {
			t.Fatalf("attributes=userName: %s", r.Raw)
		}

		list := func(query string) Response {
			t.Helper()
			return wantSCIM(t, "list "+query, call("GET", "/scim/v2/Users?"+query, ""), 200)
		}
		ids := func(r Response) string {
			var out []string
			for i := range r.JSON["Resources"].([]any) {
				out = append(out, at(r.JSON, "Resources", i, "id").(string))
			}
			return strings.Join(out, ",")
		}
		filter := func(f string) string { return "filter=" + url.QueryEscape(f) }
		for _, c := range []struct{ query, want string }{
			{"", strings.Join(sorted(alice, bob, carol), ",")},
			{filter(`userName eq "ALICE@example.com"`), alice},
			{filter(`externalId eq "00ubob"`), bob},
			{filter(`emails[type eq "work"].value eq "bob@example.com"`), bob},
			{filter(`emails[type eq "work"].value eq "bob@home.example"`), ""},
			{filter(`userName eq "bob" or userName eq "carol"`), strings.Join(sorted(bob, carol), ",")},
			{filter(`active eq false and userName eq "carol"`), carol},
			{filter(`userName sw "a" and externalId pr`), alice},
			{filter(`userName eq "nobody"`), ""},
		} {
			if got := ids(list(c.query)); got != c.want {
				t.Errorf("list %s: %s, want %s", c.query, got, c.want)
			}
		}
		r = list("startIndex=2&count=1")
		if r.JSON["totalResults"] != 3.0 || r.JSON["startIndex"] != 2.0 || r.JSON["itemsPerPage"] != 1.0 || ids(r) != sorted(alice, bob, carol)[1] {
			t.Fatalf("page: %s", r.Raw)
		}
		if r = list("count=0"); r.JSON["totalResults"] != 3.0 || len(r.JSON["Resources"].([]any)) != 0 {
			t.Fatalf("count=0: %s", r.Raw)
		}

		// PUT replaces what a client may set.
		r = wantSCIM(t, "put", call("PUT", "/scim/v2/Users/"+bob, `{`+userSchema+`,"userName":"Bob","externalId":"00ubob",
			"name":{"givenName":"Robert"},"emails":[{"value":"bob@example.com","type":"work","primary":true}]}`), 200)
		if at(r.JSON, "name", "givenName") != "Robert" || len(r.JSON["emails"].([]any)) != 1 || r.JSON["active"] != true {
			t.Fatalf("put: %s", r.Raw)
		}
		// PATCH: add, replace, remove; with a path, a value-filter path,
		// and without a path.
		r = wantSCIM(t, "patch", call("PATCH", "/scim/v2/Users/"+bob, patchOps(`[
			{"op":"add","path":"emails","value":[{"value":"robert@home.example","type":"home"}]},
			{"op":"replace","path":"emails[type eq \"work\"].value","value":"robert@example.com"},
			{"op":"replace","value":{"displayName":"Robert B","name.familyName":"Brown"}},
			{"op":"remove","path":"externalId"}]`)), 200)
		if r.JSON["displayName"] != "Robert B" || at(r.JSON, "name", "familyName") != "Brown" || r.JSON["externalId"] != nil ||
			len(r.JSON["emails"].([]any)) != 2 || at(r.JSON, "emails", 0, "value") != "robert@example.com" {
			t.Fatalf("patch: %s", r.Raw)
		}
		// A PATCH that changes nothing appends nothing.
		seq = head(t, in)
		wantSCIM(t, "no-op patch", call("PATCH", "/scim/v2/Users/"+bob, patchOps(`[{"op":"replace","path":"displayName","value":"Robert B"}]`)), 200)
		unchanged(t, in, seq, "a PATCH that changes nothing")
	})

	var admins, viewers string
	t.Run("groups", func(t *testing.T) {
		r := wantSCIM(t, "create group", call("POST", "/scim/v2/Groups", `{`+groupSchema+`,"displayName":"prod-admins","externalId":"g1",
			"members":[{"value":"`+alice+`"}]}`), 201)
		admins = r.String("id")
		if !strings.HasPrefix(admins, "group-") || at(r.JSON, "members", 0, "value") != alice || at(r.JSON, "members", 0, "display") != "alice@example.com" ||
			r.Header.Get("Location") != in.URL+"/scim/v2/Groups/"+admins {
			t.Fatalf("create group: %s", r.Raw)
		}
		viewers = wantSCIM(t, "create group", call("POST", "/scim/v2/Groups", `{`+groupSchema+`,"displayName":"prod-viewers"}`), 201).String("id")
		wantSCIM(t, "unmapped group", call("POST", "/scim/v2/Groups", `{`+groupSchema+`,"displayName":"everyone","members":[{"value":"`+bob+`"}]}`), 201)
		if role := tenantRole(t, in, admin, alice, "prod"); role != "admin" {
			t.Fatalf("alice's role in prod: %q", role)
		}
		r = wantSCIM(t, "get group", call("GET", "/scim/v2/Groups/"+admins, ""), 200)
		if r.String("displayName") != "prod-admins" || r.String("externalId") != "g1" {
			t.Fatalf("get group: %s", r.Raw)
		}
		r = wantSCIM(t, "list groups", call("GET", "/scim/v2/Groups?filter="+url.QueryEscape(`displayName eq "PROD-viewers"`)+"&excludedAttributes=members", ""), 200)
		if r.JSON["totalResults"] != 1.0 || at(r.JSON, "Resources", 0, "id") != viewers {
			t.Fatalf("list groups: %s", r.Raw)
		}
		if r = wantSCIM(t, "list groups", call("GET", "/scim/v2/Groups", ""), 200); r.JSON["totalResults"] != 3.0 {
			t.Fatalf("list groups: %s", r.Raw)
		}
		if r = wantSCIM(t, "user's groups", call("GET", "/scim/v2/Users/"+alice, ""), 200); at(r.JSON, "groups", 0, "value") != admins {
			t.Fatalf("alice's groups: %s", r.Raw)
		}

		// Members: add, remove by filter, replace (answers 204).
		wantSCIM(t, "add members", call("PATCH", "/scim/v2/Groups/"+viewers, patchOps(`[{"op":"add","path":"members","value":[{"value":"`+bob+`"},{"value":"`+carol+`"}]}]`)), 204)
		if tenantRole(t, in, admin, bob, "prod") != "viewer" || tenantRole(t, in, admin, carol, "prod") != "viewer" {
			t.Fatal("members of prod-viewers are viewers in prod")
		}
		wantSCIM(t, "remove member", call("PATCH", "/scim/v2/Groups/"+viewers, patchOps(`[{"op":"remove","path":"members[value eq \"`+carol+`\"]"}]`)), 204)
		if tenantRole(t, in, admin, carol, "prod") != "" {
			t.Fatal("carol left prod-viewers: no role in prod")
		}
		wantSCIM(t, "replace members", call("PATCH", "/scim/v2/Groups/"+admins, patchOps(`[{"op":"replace","path":"members","value":[{"value":"`+alice+`"},{"value":"`+bob+`"}]}]`)), 204)
		if tenantRole(t, in, admin, bob, "prod") != "admin" {
			t.Fatal("bob in prod-admins and prod-viewers: the stronger role")
		}
		// Rename into a mapping's group, with PUT.
		r = wantSCIM(t, "put group", call("PUT", "/scim/v2/Groups/"+viewers, `{`+groupSchema+`,"displayName":"staging-editors","members":[{"value":"`+bob+`"}]}`), 200)
		if r.String("displayName") != "staging-editors" || tenantRole(t, in, admin, bob, "staging") != "editor" {
			t.Fatalf("rename: %s", r.Raw)
		}
		// A group deleted takes its roles with it.
		wantSCIM(t, "delete group", call("DELETE", "/scim/v2/Groups/"+viewers, ""), 204)
		wantSCIMError(t, "deleted group", call("GET", "/scim/v2/Groups/"+viewers, ""), 404, "")
		if tenantRole(t, in, admin, bob, "staging") != "" || tenantRole(t, in, admin, bob, "prod") != "admin" {
			t.Fatal("deleting staging-editors revokes bob's staging role, only")
		}
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		for _, c := range []struct {
			what, method, path, body string
			status                   int
			scimType                 string
		}{
			{"malformed filter", "GET", "/scim/v2/Users?filter=" + url.QueryEscape(`userName eq`), "", 400, "invalidFilter"},
			{"unknown attribute in a filter", "GET", "/scim/v2/Users?filter=" + url.QueryEscape(`favoriteColor eq "red"`), "", 400, "invalidFilter"},
			{"unbalanced filter", "GET", "/scim/v2/Groups?filter=" + url.QueryEscape(`(displayName eq "x"`), "", 400, "invalidFilter"},
			{"unknown attribute", "POST", "/scim/v2/Users", `{` + userSchema + `,"userName":"dave","favoriteColor":"red"}`, 400, "invalidValue"},
			{"wrong schema", "POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"userName":"dave"}`, 400, "invalidSyntax"},
			{"no schemas", "POST", "/scim/v2/Users", `{"userName":"dave"}`, 400, "invalidSyntax"},
			{"malformed JSON", "POST", "/scim/v2/Users", `{` + userSchema + `,"userName":`, 400, "invalidSyntax"},
			{"no userName", "POST", "/scim/v2/Users", `{` + userSchema + `,"displayName":"Dave"}`, 400, "invalidValue"},
			{"userName not a username", "POST", "/scim/v2/Users", `{` + userSchema + `,"userName":"dave smith"}`, 400, "invalidValue"},
			{"weak password", "POST", "/scim/v2/Users", `{` + userSchema + `,"userName":"dave","password":"password"}`, 400, "invalidValue"},
			{"short password", "POST", "/scim/v2/Users", `{` + userSchema + `,"userName":"dave","password":"x1"}`, 400, "invalidValue"},
			{"userName taken", "POST", "/scim/v2/Users", `{` + userSchema + `,"userName":"ALICE@example.com"}`, 409, "uniqueness"},
			{"userName of a user outside", "POST", "/scim/v2/Users", `{` + userSchema + `,"userName":"admin"}`, 409, "uniqueness"},
			{"PATCH of a read-only attribute", "PATCH", "/scim/v2/Users/" + alice, patchOps(`[{"op":"add","path":"groups","value":[{"value":"x"}]}]`), 400, "mutability"},
			{"PATCH of another id", "PATCH", "/scim/v2/Users/" + alice, patchOps(`[{"op":"replace","path":"id","value":"user-x"}]`), 400, "mutability"},
			{"PATCH of an unknown path", "PATCH", "/scim/v2/Users/" + alice, patchOps(`[{"op":"replace","path":"favoriteColor","value":"red"}]`), 400, "invalidPath"},
			{"PATCH without operations", "PATCH", "/scim/v2/Users/" + alice, `{` + patchSchema + `}`, 400, "invalidSyntax"},
			{"PATCH with an unknown op", "PATCH", "/scim/v2/Users/" + alice, patchOps(`[{"op":"merge","path":"displayName","value":"x"}]`), 400, "invalidSyntax"},
			{"PATCH with a weak password", "PATCH", "/scim/v2/Users/" + alice, patchOps(`[{"op":"replace","path":"password","value":"12345678"}]`), 400, "invalidValue"},
			{"PUT renaming to a taken name", "PUT", "/scim/v2/Users/" + bob, `{` + userSchema + `,"userName":"alice@example.com"}`, 409, "uniqueness"},
			{"PUT renaming to another user's username", "PUT", "/scim/v2/Users/" + bob, `{` + userSchema + `,"userName":"admin"}`, 409, "uniqueness"},
			{"unknown user", "GET", "/scim/v2/Users/user-01J00000000000000000000000", "", 404, ""},
			{"PATCH of an unknown user", "PATCH", "/scim/v2/Users/user-nope", patchOps(`[{"op":"replace","path":"active","value":false}]`), 404, ""},
			{"DELETE of an unknown user", "DELETE", "/scim/v2/Users/user-nope", "", 404, ""},
			{"group without a name", "POST", "/scim/v2/Groups", `{` + groupSchema + `,"members":[]}`, 400, "invalidValue"},
			{"group name taken", "POST", "/scim/v2/Groups", `{` + groupSchema + `,"displayName":"PROD-ADMINS"}`, 409, "uniqueness"},
			{"member not a user of the connection", "POST", "/scim/v2/Groups", `{` + groupSchema + `,"displayName":"x","members":[{"value":"user-nope"}]}`, 400, "invalidValue"},
			{"a group as a member", "PATCH", "/scim/v2/Groups/" + admins, patchOps(`[{"op":"add","path":"members","value":[{"value":"` + admins + `","type":"Group"}]}]`), 400, "invalidValue"},
			{"rename to a taken name", "PATCH", "/scim/v2/Groups/" + admins, patchOps(`[{"op":"replace","path":"displayName","value":"everyone"}]`), 409, "uniqueness"},
			{"unknown group", "DELETE", "/scim/v2/Groups/group-nope", "", 404, ""},
			{"sorting", "GET", "/scim/v2/Users?sortBy=userName", "", 400, "invalidValue"},
		} {
			seq := head(t, in)
			wantSCIMError(t, c.what, call(c.method, c.path, c.body), c.status, c.scimType)
			unchanged(t, in, seq, c.what)
		}
		// A body that is not SCIM (or JSON) at all.
		seq := head(t, in)
		r := doReq(t, in, request{Method: "POST", Path: "/scim/v2/Users", Token: tok, ContentType: "text/plain", Body: []byte("userName=x")})
		wantSCIMError(t, "text/plain", r, 415, "")
		unchanged(t, in, seq, "a text/plain body")
	})

	t.Run("delete", func(t *testing.T) {
		wantSCIM(t, "delete alice", call("DELETE", "/scim/v2/Users/"+alice, ""), 204)
		wantSCIMError(t, "deleted user", call("GET", "/scim/v2/Users/"+alice, ""), 404, "")
		u := in.Do("GET", "/api/v1/users/"+alice, admin, nil)
		if u.JSON["active"] != false || tenantRole(t, in, admin, alice, "prod") != "" {
			t.Fatalf("a deleted user is deactivated and loses the connection's roles: %s", u.Raw)
		}
		r := wantSCIM(t, "group after delete", call("GET", "/scim/v2/Groups/"+admins, ""), 200)
		for _, m := range r.JSON["members"].([]any) {
			if at(m, "value") == alice {
				t.Fatalf("alice is still a member: %s", r.Raw)
			}
		}
		expectStatus(t, "login after delete", in.Do("POST", "/api/v1/auth/token", "", map[string]string{
			"username": "alice@example.com", "password": "orchid-lantern-42"}), http.StatusUnauthorized)
		// Created again (a rehire): the same user, matched by externalId,
		// active again.
		r = wantSCIM(t, "create again", call("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"alice@example.com","externalId":"00ualice","password":"orchid-lantern-43"}`), 201)
		if r.String("id") != alice || r.JSON["active"] != true {
			t.Fatalf("rehire: %s (want %s)", r.Raw, alice)
		}
		in.Login("alice@example.com", "orchid-lantern-43")
	})
}

func sorted(ids ...string) []string {
	out := append([]string(nil), ids...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// tenantRole is the role user id holds in tenant ("" for none), as the
// users API shows it.
func tenantRole(t testing.TB, in *Instance, admin, id, tenant string) string {
	t.Helper()
	r := in.Do("GET", "/api/v1/users/"+id, admin, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET user %s: %d %s", id, r.Status, r.Raw)
	}
	for _, tr := range r.JSON["tenants"].([]any) {
		if at(tr, "id") == tenant {
			return fmt.Sprint(at(tr, "role"))
		}
	}
	return ""
}
