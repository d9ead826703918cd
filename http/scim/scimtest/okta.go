package scimtest

import (
	"net/url"
	"strings"
	"testing"
)

// The request sequence of Okta's "SCIM 2.0 Protocol Reference" (Okta
// developer documentation) and the requests of its "Okta SCIM 2.0 SPEC
// Test" validator; bodies verbatim (Okta's examples show no Content-Type;
// the validator sends application/json or application/scim+json), IDs in
// URLs the ones the endpoint assigned.

// OktaCreateUser is the body Okta creates its example user with; its
// password is OktaPassword.
const OktaCreateUser = `{
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

// The example user's userName, its password, and the password the
// sequence syncs later.
const (
	OktaUserName     = "test.user@okta.local"
	OktaPassword     = "1mz050nq"
	OktaSyncPassword = "n3w-pass"
)

// OktaUserHooks check what lies behind OktaUsers' answers; each runs after
// the request it is named for (nil: nothing more to check).
type OktaUserHooks struct {
	Created        func(IDs) // POST: with the password OktaPassword
	Replaced       func(IDs) // PUT: name changed, displayName and externalId gone
	Deactivated    func(IDs) // PATCH active false
	PasswordSynced func(IDs) // PATCH password OktaSyncPassword, after activating again
	PutInactive    func(IDs) // PUT with active false
}

// OktaUsers is Okta's user sequence: look the user up, create it (again:
// 409), read it, replace it, deactivate it with PATCH, activate it and sync
// its password, deactivate it with PUT. The endpoint must accept passwords.
func OktaUsers(t *testing.T, e Endpoint, h OktaUserHooks) {
	t.Helper()
	do := func(method, path, body string) Response { return e.do(method, path, "", body) }

	// Determine if the User already exists, then create it.
	const lookup = "/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100"
	r := Want(t, "lookup", do("GET", lookup, ""), 200)
	if r.Body["totalResults"] != 0.0 || At(r.Body, "schemas", 0) != listSchema {
		t.Fatalf("lookup: %s", r.Raw)
	}
	r = Want(t, "create", do("POST", "/Users", OktaCreateUser), 201)
	ids := IDs{User: str(r.Body["id"])}
	if r.Body["userName"] != OktaUserName || r.Body["displayName"] != "Test User" || r.Body["active"] != true ||
		r.Body["externalId"] != "00ujl29u0le5T6Aj10h7" || strings.Contains(r.Raw, OktaPassword) || strings.Contains(r.Raw, `"password"`) {
		t.Fatalf("create: %s", r.Raw)
	}
	call(h.Created, ids)
	// The same user again: 409 uniqueness, so Okta stops.
	WantError(t, "create again", do("POST", "/Users", OktaCreateUser), 409, "uniqueness")
	r = Want(t, "lookup", do("GET", lookup, ""), 200)
	if r.Body["totalResults"] != 1.0 || At(r.Body, "Resources", 0, "id") != ids.User {
		t.Fatalf("lookup: %s", r.Raw)
	}

	// Retrieve the User, then update it with PUT.
	if r = Want(t, "get", do("GET", "/Users/"+ids.User, ""), 200); At(r.Body, "name", "givenName") != "Test" {
		t.Fatalf("get: %s", r.Raw)
	}
	r = Want(t, "put", do("PUT", "/Users/"+ids.User, `{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "id": "`+ids.User+`",
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
	// PUT replaces: displayName and externalId were not sent, so they are gone.
	if At(r.Body, "name", "givenName") != "Another" || r.Body["displayName"] != nil || r.Body["externalId"] != nil {
		t.Fatalf("put: %s", r.Raw)
	}
	call(h.Replaced, ids)

	// Deactivate with PATCH.
	r = Want(t, "deactivate", do("PATCH", "/Users/"+ids.User, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "replace",
        "value": {
            "active": false
        }
    }]
}`), 200)
	if r.Body["active"] != false {
		t.Fatalf("deactivate: %s", r.Raw)
	}
	call(h.Deactivated, ids)
	// Activate again, then sync the password (Okta pushes it on activation).
	Want(t, "activate", do("PATCH", "/Users/"+ids.User, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":true}}]}`), 200)
	Want(t, "password sync", do("PATCH", "/Users/"+ids.User, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"password":"n3w-pass"}}]}`), 200)
	call(h.PasswordSynced, ids)
	// Deactivate with PUT (custom app integrations).
	r = Want(t, "put inactive", e.do("PUT", "/Users/"+ids.User, scimJSON, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"test.user@okta.local","active":false}`), 200)
	if r.Body["active"] != false {
		t.Fatalf("PUT active:false: %s", r.Raw)
	}
	call(h.PutInactive, ids)
}

// OktaGroupHooks check what lies behind OktaGroups' answers. The group is
// created as "Test SCIMv2" and renamed "Test SCIMv20" at once; User and
// Other are two users Okta created with OktaCreateUser.
type OktaGroupHooks struct {
	OtherAdded  func(IDs) // Other added to "Test SCIMv20"
	MemberMoved func(IDs) // Other removed by a filter, User added, in one PATCH
	Put         func(IDs) // PUT: back to "Test SCIMv2", User its one member
	Deleted     func(IDs)
}

// OktaGroups is Okta's group sequence: create a group, read it and list
// the groups, rename it with a pathless replace, change its members (add;
// remove by filter and add; replace all), PUT it, delete it.
func OktaGroups(t *testing.T, e Endpoint, h OktaGroupHooks) {
	t.Helper()
	do := func(method, path, body string) Response { return e.do(method, path, "", body) }
	ids := IDs{
		User: str(Want(t, "user", do("POST", "/Users", OktaCreateUser), 201).Body["id"]),
		Other: str(Want(t, "other user", do("POST", "/Users", strings.NewReplacer(OktaUserName, "other@okta.local",
			"00ujl29u0le5T6Aj10h7", "00ujl29u0le5T6Aj10h8").Replace(OktaCreateUser)), 201).Body["id"]),
	}

	r := Want(t, "create group", do("POST", "/Groups", `{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
    "displayName": "Test SCIMv2",
    "members": []
}`), 201)
	ids.Group = str(r.Body["id"])
	if r.Body["displayName"] != "Test SCIMv2" {
		t.Fatalf("create: %s", r.Raw)
	}
	group := "/Groups/" + ids.Group
	Want(t, "get group", do("GET", group, ""), 200)
	if r = Want(t, "list", do("GET", "/Groups?startIndex=1&count=100", ""), 200); r.Body["totalResults"] != 1.0 {
		t.Fatalf("list: %s", r.Raw)
	}

	// Update a specific Group name: a pathless replace that repeats the id.
	Want(t, "rename", do("PATCH", group, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "replace",
        "value": {
            "id": "`+ids.Group+`",
            "displayName": "Test SCIMv20"
        }
    }]
}`), 204)
	if r = Want(t, "get group", do("GET", group, ""), 200); r.Body["displayName"] != "Test SCIMv20" {
		t.Fatalf("rename: %s", r.Raw)
	}

	// Update specific Group membership: add, then remove by filter and add.
	Want(t, "add", do("PATCH", group, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"`+ids.Other+`"}]}]}`), 204)
	call(h.OtherAdded, ids)
	Want(t, "remove and add", do("PATCH", group, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
          "op": "remove",
          "path": "members[value eq \"`+ids.Other+`\"]"
        },
        {
          "op": "add",
          "path": "members",
          "value": [{
              "value": "`+ids.User+`",
              "display": "test.user@okta.local"
        }]
    }]
}`), 204)
	call(h.MemberMoved, ids)

	// A full push of the membership with replace.
	Want(t, "replace members", do("PATCH", group, `{
  "schemas": [
    "urn:ietf:params:scim:api:messages:2.0:PatchOp"
  ],
  "Operations": [
    {
      "op": "replace",
      "path": "members",
      "value": [
        {
          "value": "`+ids.User+`",
          "display": "test.user@okta.local"
        },
        {
          "value": "`+ids.Other+`",
          "display": "test.user@okta.local"
        }
      ]
    }
  ]
}`), 204)
	if r = Want(t, "get group", do("GET", group, ""), 200); count(r.Body["members"]) != 2 {
		t.Fatalf("replace members: %s", r.Raw)
	}
	// The group name update with PUT (custom app integrations).
	r = Want(t, "put group", do("PUT", group, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"`+ids.Group+`","displayName":"Test SCIMv2","members":[{"value":"`+ids.User+`"}]}`), 200)
	if r.Body["displayName"] != "Test SCIMv2" || count(r.Body["members"]) != 1 {
		t.Fatalf("put: %s", r.Raw)
	}
	call(h.Put, ids)
	Want(t, "delete group", do("DELETE", group, ""), 204)
	call(h.Deleted, ids)
}

// OktaSpecTest sends the requests of the "Okta SCIM 2.0 SPEC Test"
// validator, in its order, with its headers.
func OktaSpecTest(t *testing.T, e Endpoint) {
	t.Helper()
	const ct = "application/scim+json; charset=utf-8"
	validator := func(method, path string) Response {
		return e.Do(Request{Method: method, Path: path, ContentType: ct,
			Header: map[string]string{"Accept-Charset": "utf-8", "Accept": "application/scim+json", "User-Agent": "OKTA SCIM Integration"}})
	}
	post := func(body string) Response { return e.do("POST", "/Users", "application/json", body) }
	// The validator expects a user to exist already.
	Want(t, "first user", post(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"first@example.com","name":{"givenName":"First","familyName":"User"},"emails":[{"primary":true,"value":"first@example.com","type":"work"}],"active":true}`), 201)

	// Required Test: Test Users endpoint; Get Users/{{id}}.
	r := Want(t, "users endpoint", validator("GET", "/Users?count=1&startIndex=1"), 200)
	first := str(At(r.Body, "Resources", 0, "id"))
	if first == "" || At(r.Body, "Resources", 0, "name", "familyName") == nil || At(r.Body, "Resources", 0, "emails", 0, "value") == nil ||
		r.Body["itemsPerPage"] != 1.0 || r.Body["startIndex"] != 1.0 || r.Body["totalResults"] != 1.0 {
		t.Fatalf("users endpoint: %s", r.Raw)
	}
	if r = Want(t, "get", validator("GET", "/Users/"+first), 200); r.Body["id"] != first {
		t.Fatalf("get: %s", r.Raw)
	}
	// Test invalid User by username; by ID; random user doesn't exist.
	r = Want(t, "invalid user", validator("GET", "/Users?filter="+url.QueryEscape(`userName eq "invalid-user@example.com"`)), 200)
	if r.Body["totalResults"] != 0.0 {
		t.Fatalf("invalid user: %s", r.Raw)
	}
	WantError(t, "no such id", validator("GET", "/Users/010101"), 404, "")

	// Create Okta user with realistic values; verify; recreate fails.
	body := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"Mona.Lisa@example.com","name":{"givenName":"Mona","familyName":"Lisa"},"emails":[{"primary":true,"value":"mona@example.com","type":"work"}],"displayName":"Mona Lisa","active":true}`
	r = Want(t, "create", post(body), 201)
	if r.Body["active"] != true || At(r.Body, "name", "familyName") != "Lisa" || r.Body["userName"] != "Mona.Lisa@example.com" {
		t.Fatalf("create: %s", r.Raw)
	}
	created := str(r.Body["id"])
	Want(t, "get created", validator("GET", "/Users/"+created), 200)
	WantError(t, "recreate", post(body), 409, "uniqueness")

	// Username Case Sensitivity Check: userName is caseExact false.
	r = Want(t, "case", validator("GET", "/Users?filter="+url.QueryEscape(`userName eq "MONA.LISA@EXAMPLE.COM"`)), 200)
	if r.Body["totalResults"] != 1.0 || At(r.Body, "Resources", 0, "id") != created {
		t.Fatalf("case check: %s", r.Raw)
	}
	// Optional Test: Verify Groups endpoint.
	Want(t, "groups endpoint", validator("GET", "/Groups"), 200)

	// Check status 401; Check status 404.
	WantError(t, "401", e.Do(Request{Method: "GET", Path: "/Users?filter=" + url.QueryEscape(`userName eq "x"`),
		Header: map[string]string{"Authorization": "non-token"}}), 401, "")
	WantError(t, "404", validator("GET", "/Users/00919288221112222"), 404, "")
}
