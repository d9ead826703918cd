package tests

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The request sequences of Okta's "SCIM 2.0 Protocol Reference" and of its
// "Okta SCIM 2.0 SPEC Test" validator, verbatim (the same bodies as
// http/scim's okta_test.go, which replays them against an in-memory
// backend), here against the running service: users become the service's
// users, the pushed password signs in, deactivation stops their tokens.

const oktaCreateUserBody = `{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "test.user@okta.local",
    "name": {
        "givenName": "Test",
        "familyName": "User"
    },
    "emails": [{
        "primary": true,
        "value": "test.user@okta.local",
        "type": "work"
    }],
    "displayName": "Test User",
    "locale": "en-US",
    "externalId": "00ujl29u0le5T6Aj10h7",
    "groups": [],
    "password": "1mz050nq",
    "active": true
}`

// oktaRequest sends a request as Okta's documentation shows it: no
// Content-Type on its examples.
func oktaRequest(t *testing.T, in *Instance, method, path, token, body string) Response {
	t.Helper()
	r := request{Method: method, Path: path, Token: token}
	if body != "" {
		r.Body = []byte(body)
	}
	return doReq(t, in, r)
}

func TestSCIMOktaUserSequence(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	_, tok := newConnection(t, in, admin, admin, []string{"prod"}, mapping{"Test SCIMv2", "prod", "editor"})
	do := func(method, path, body string) Response { return oktaRequest(t, in, method, path, tok, body) }

	// Determine if the User already exists, then create it.
	r := wantSCIM(t, "lookup", do("GET", "/scim/v2/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100", ""), 200)
	if r.JSON["totalResults"] != 0.0 || at(r.JSON, "schemas", 0) != "urn:ietf:params:scim:api:messages:2.0:ListResponse" {
		t.Fatalf("lookup: %s", r.Raw)
	}
	r = wantSCIM(t, "create", do("POST", "/scim/v2/Users", oktaCreateUserBody), 201)
	id := r.String("id")
	if r.String("userName") != "test.user@okta.local" || r.String("displayName") != "Test User" || r.JSON["active"] != true ||
		r.String("externalId") != "00ujl29u0le5T6Aj10h7" || strings.Contains(string(r.Raw), "1mz050nq") || strings.Contains(string(r.Raw), `"password"`) {
		t.Fatalf("create: %s", r.Raw)
	}
	// The pushed password is the user's password (hashed: no event holds it).
	login := in.Login("test.user@okta.local", "1mz050nq")
	for _, e := range storedEvents(t, in.Svc) {
		if strings.Contains(string(e.Data), "1mz050nq") {
			t.Fatalf("%s holds the password", e.Type)
		}
	}
	// The same user again: 409 uniqueness, so Okta stops.
	wantSCIMError(t, "create again", do("POST", "/scim/v2/Users", oktaCreateUserBody), 409, "uniqueness")
	r = wantSCIM(t, "lookup", do("GET", "/scim/v2/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100", ""), 200)
	if r.JSON["totalResults"] != 1.0 || at(r.JSON, "Resources", 0, "id") != id {
		t.Fatalf("lookup: %s", r.Raw)
	}

	// Retrieve the User, then update it with PUT.
	if r = wantSCIM(t, "get", do("GET", "/scim/v2/Users/"+id, ""), 200); at(r.JSON, "name", "givenName") != "Test" {
		t.Fatalf("get: %s", r.Raw)
	}
	r = wantSCIM(t, "put", do("PUT", "/scim/v2/Users/"+id, `{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "id": "`+id+`",
    "userName": "test.user@okta.local",
    "name": {
        "givenName": "Another",
        "middleName": "Excited",
        "familyName": "User"
    },
    "emails": [{
        "primary": true,
        "value": "test.user@okta.local",
        "type": "work",
        "display": "test.user@okta.local"
    }],
    "active": true,
    "groups": [],
    "meta": {
        "resourceType": "User"
    }
}`), 200)
	if at(r.JSON, "name", "givenName") != "Another" || r.JSON["displayName"] != nil || r.JSON["externalId"] != nil {
		t.Fatalf("put: %s", r.Raw)
	}

	// Deactivate with PATCH: the user's token stops at once.
	r = wantSCIM(t, "deactivate", do("PATCH", "/scim/v2/Users/"+id, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "replace",
        "value": {
            "active": false
        }
    }]
}`), 200)
	if r.JSON["active"] != false {
		t.Fatalf("deactivate: %s", r.Raw)
	}
	expectBody(t, "a deprovisioned user's token", me(t, in, login.String("token")), http.StatusUnauthorized, bodyUnauthorized)
	expectStatus(t, "a deprovisioned user's refresh token", refresh(t, in, login.String("refresh_token")), http.StatusUnauthorized)
	// Activate again, then sync the password (Okta pushes it on
	// activation): it signs in; the old session stays revoked.
	wantSCIM(t, "activate", do("PATCH", "/scim/v2/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":true}}]}`), 200)
	wantSCIM(t, "password sync", do("PATCH", "/scim/v2/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"password":"n3w-pass"}}]}`), 200)
	in.Login("test.user@okta.local", "n3w-pass")
	expectStatus(t, "the old session after activation", refresh(t, in, login.String("refresh_token")), http.StatusUnauthorized)
	// Deactivate with PUT (custom app integrations).
	r = wantSCIM(t, "put inactive", scimCall(t, in, "PUT", "/scim/v2/Users/"+id, tok, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"test.user@okta.local","active":false}`), 200)
	if r.JSON["active"] != false || in.Do("GET", "/api/v1/users/"+id, admin, nil).JSON["active"] != false {
		t.Fatalf("PUT active:false: %s", r.Raw)
	}
}

func TestSCIMOktaGroupSequence(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	_, tok := newConnection(t, in, admin, admin, []string{"prod", "staging"},
		mapping{"Test SCIMv2", "prod", "viewer"}, mapping{"Test SCIMv20", "staging", "editor"})
	do := func(method, path, body string) Response { return oktaRequest(t, in, method, path, tok, body) }
	user1 := wantSCIM(t, "user 1", do("POST", "/scim/v2/Users", oktaCreateUserBody), 201).String("id")
	user2 := wantSCIM(t, "user 2", do("POST", "/scim/v2/Users", strings.NewReplacer("test.user@okta.local", "other@okta.local",
		"00ujl29u0le5T6Aj10h7", "00ujl29u0le5T6Aj10h8").Replace(oktaCreateUserBody)), 201).String("id")

	r := wantSCIM(t, "create group", do("POST", "/scim/v2/Groups", `{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
    "displayName": "Test SCIMv2",
    "members": []
}`), 201)
	id := r.String("id")
	if r.String("displayName") != "Test SCIMv2" {
		t.Fatalf("create: %s", r.Raw)
	}
	wantSCIM(t, "get group", do("GET", "/scim/v2/Groups/"+id, ""), 200)
	if r = wantSCIM(t, "list", do("GET", "/scim/v2/Groups?startIndex=1&count=100", ""), 200); r.JSON["totalResults"] != 1.0 {
		t.Fatalf("list: %s", r.Raw)
	}

	// Update a specific Group name: a pathless replace that repeats the id.
	wantSCIM(t, "rename", do("PATCH", "/scim/v2/Groups/"+id, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "replace",
        "value": {
            "id": "`+id+`",
            "displayName": "Test SCIMv20"
        }
    }]
}`), 204)
	if r = wantSCIM(t, "get group", do("GET", "/scim/v2/Groups/"+id, ""), 200); r.String("displayName") != "Test SCIMv20" {
		t.Fatalf("rename: %s", r.Raw)
	}

	// Update specific Group membership: add, then remove by filter and add.
	wantSCIM(t, "add", do("PATCH", "/scim/v2/Groups/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"`+user2+`"}]}]}`), 204)
	if tenantRole(t, in, admin, user2, "staging") != "editor" {
		t.Fatal("a member of Test SCIMv20 is an editor in staging")
	}
	wantSCIM(t, "remove and add", do("PATCH", "/scim/v2/Groups/"+id, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
          "op": "remove",
          "path": "members[value eq \"`+user2+`\"]"
        },
        {
          "op": "add",
          "path": "members",
          "value": [{
              "value": "`+user1+`",
              "display": "test.user@okta.local"
        }]
    }]
}`), 204)
	if tenantRole(t, in, admin, user2, "staging") != "" || tenantRole(t, in, admin, user1, "staging") != "editor" {
		t.Fatal("membership moved from user 2 to user 1, and the role with it")
	}

	// A full push of the membership with replace.
	wantSCIM(t, "replace members", do("PATCH", "/scim/v2/Groups/"+id, `{
  "schemas": [
    "urn:ietf:params:scim:api:messages:2.0:PatchOp"
  ],
  "Operations": [
    {
      "op": "replace",
      "path": "members",
      "value": [
        {
          "value": "`+user1+`",
          "display": "test.user@okta.local"
        },
        {
          "value": "`+user2+`",
          "display": "test.user@okta.local"
        }
      ]
    }
  ]
}`), 204)
	if r = wantSCIM(t, "get group", do("GET", "/scim/v2/Groups/"+id, ""), 200); len(r.JSON["members"].([]any)) != 2 {
		t.Fatalf("replace members: %s", r.Raw)
	}
	// The group name update with PUT (custom app integrations): back to
	// the name mapped to prod viewer, one member.
	r = wantSCIM(t, "put group", do("PUT", "/scim/v2/Groups/"+id, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"`+id+`","displayName":"Test SCIMv2","members":[{"value":"`+user1+`"}]}`), 200)
	if r.String("displayName") != "Test SCIMv2" || len(r.JSON["members"].([]any)) != 1 {
		t.Fatalf("put: %s", r.Raw)
	}
	if tenantRole(t, in, admin, user1, "prod") != "viewer" || tenantRole(t, in, admin, user1, "staging") != "" ||
		tenantRole(t, in, admin, user2, "prod") != "" || tenantRole(t, in, admin, user2, "staging") != "" {
		t.Fatal("after the rename, user 1 is a prod viewer only and user 2 holds nothing")
	}
	wantSCIM(t, "delete group", do("DELETE", "/scim/v2/Groups/"+id, ""), 204)
	if tenantRole(t, in, admin, user1, "prod") != "" {
		t.Fatal("a deleted group takes its role with it")
	}
}

// The requests of the "Okta SCIM 2.0 SPEC Test" validator, in its order.
func TestSCIMOktaSpecTest(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	_, tok := newConnection(t, in, admin, admin, []string{"prod"})
	scimHeaders := func(method, target, body string) Response {
		return doReq(t, in, request{Method: method, Path: target, Token: tok, Body: []byte(body), ContentType: "application/scim+json; charset=utf-8",
			Header: map[string]string{"Accept-Charset": "utf-8", "Accept": "application/scim+json", "User-Agent": "OKTA SCIM Integration"}})
	}
	post := func(body string) Response {
		return doReq(t, in, request{Method: "POST", Path: "/scim/v2/Users", Token: tok, ContentType: "application/json", Body: []byte(body)})
	}
	// The validator expects a user to exist already.
	wantSCIM(t, "first user", post(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"first@example.com","name":{"givenName":"First","familyName":"User"},"emails":[{"primary":true,"value":"first@example.com","type":"work"}],"active":true}`), 201)

	// Required Test: Test Users endpoint; Get Users/{{id}}.
	r := wantSCIM(t, "users endpoint", scimHeaders("GET", "/scim/v2/Users?count=1&startIndex=1", ""), 200)
	first, _ := at(r.JSON, "Resources", 0, "id").(string)
	if first == "" || at(r.JSON, "Resources", 0, "name", "familyName") == nil || at(r.JSON, "Resources", 0, "emails", 0, "value") == nil ||
		r.JSON["itemsPerPage"] != 1.0 || r.JSON["startIndex"] != 1.0 || r.JSON["totalResults"] != 1.0 {
		t.Fatalf("users endpoint: %s", r.Raw)
	}
	if r = wantSCIM(t, "get", scimHeaders("GET", "/scim/v2/Users/"+first, ""), 200); r.String("id") != first {
		t.Fatalf("get: %s", r.Raw)
	}
	// Test invalid User by username; by ID; random user doesn't exist.
	r = wantSCIM(t, "invalid user", scimHeaders("GET", "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "invalid-user@example.com"`), ""), 200)
	if r.JSON["totalResults"] != 0.0 {
		t.Fatalf("invalid user: %s", r.Raw)
	}
	wantSCIMError(t, "no such id", scimHeaders("GET", "/scim/v2/Users/010101", ""), 404, "")

	// Create Okta user with realistic values; verify; recreate fails.
	body := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"Mona.Lisa@example.com","name":{"givenName":"Mona","familyName":"Lisa"},"emails":[{"primary":true,"value":"mona@example.com","type":"work"}],"displayName":"Mona Lisa","active":true}`
	r = wantSCIM(t, "create", post(body), 201)
	if r.JSON["active"] != true || at(r.JSON, "name", "familyName") != "Lisa" || r.String("userName") != "Mona.Lisa@example.com" {
		t.Fatalf("create: %s", r.Raw)
	}
	created := r.String("id")
	wantSCIM(t, "get created", scimHeaders("GET", "/scim/v2/Users/"+created, ""), 200)
	wantSCIMError(t, "recreate", post(body), 409, "uniqueness")

	// Username Case Sensitivity Check: userName is caseExact false.
	r = wantSCIM(t, "case", scimHeaders("GET", "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "MONA.LISA@EXAMPLE.COM"`), ""), 200)
	if r.JSON["totalResults"] != 1.0 || at(r.JSON, "Resources", 0, "id") != created {
		t.Fatalf("case check: %s", r.Raw)
	}
	// Optional Test: Verify Groups endpoint.
	wantSCIM(t, "groups endpoint", scimHeaders("GET", "/scim/v2/Groups", ""), 200)

	// Check status 401; Check status 404.
	wantSCIMError(t, "401", doReq(t, in, request{Method: "GET", Path: "/scim/v2/Users?filter=" + url.QueryEscape(`userName eq "x"`),
		Header: map[string]string{"Authorization": "non-token"}}), 401, "")
	wantSCIMError(t, "404", scimHeaders("GET", "/scim/v2/Users/00919288221112222", ""), 404, "")
}
