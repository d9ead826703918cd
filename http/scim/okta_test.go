package scim

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// The request sequence of Okta's "SCIM 2.0 Protocol Reference" (Okta
// developer documentation) and the requests of its "Okta SCIM 2.0 SPEC
// Test" validator; bodies verbatim (Okta's examples show no Content-Type;
// the validator sends application/json or application/scim+json), IDs in
// URLs the ones this server assigned.

const oktaCreateUser = `{
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

func TestOktaUserSequence(t *testing.T) {
	s := newServer(t, Options{AcceptPasswords: true})

	// Determine if the User already exists, then create it.
	r := s.do("GET", "/scim/v2/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100", "", "").want(t, 200)
	if r.body["totalResults"] != 0.0 || toStrings(r.body["schemas"])[0] != ListSchema {
		t.Fatalf("lookup: %s", r.raw)
	}
	r = s.do("POST", "/scim/v2/Users", "", oktaCreateUser).want(t, 201)
	id := r.body["id"].(string)
	if r.body["userName"] != "test.user@okta.local" || r.body["displayName"] != "Test User" || r.body["active"] != true ||
		r.body["externalId"] != "00ujl29u0le5T6Aj10h7" || strings.Contains(r.raw, "1mz050nq") || strings.Contains(r.raw, `"password"`) {
		t.Fatalf("create: %s", r.raw)
	}
	if s.mem.passwords[id] != "1mz050nq" {
		t.Fatal("the password did not reach the backend")
	}
	// The same user again: 409 uniqueness, so Okta stops.
	s.do("POST", "/scim/v2/Users", "", oktaCreateUser).wantError(t, 409, Uniqueness)
	r = s.do("GET", "/scim/v2/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100", "", "").want(t, 200)
	if r.body["totalResults"] != 1.0 || get(r.body, "Resources", 0, "id") != id {
		t.Fatalf("lookup: %s", r.raw)
	}

	// Retrieve the User, then update it with PUT.
	r = s.do("GET", "/scim/v2/Users/"+id, "", "").want(t, 200)
	if get(r.body, "name", "givenName") != "Test" {
		t.Fatalf("get: %s", r.raw)
	}
	r = s.do("PUT", "/scim/v2/Users/"+id, "", `{
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
}`).want(t, 200)
	if get(r.body, "name", "givenName") != "Another" || r.body["displayName"] != nil || r.body["externalId"] != nil {
		t.Fatalf("put: %s", r.raw)
	}
	// PUT replaces: displayName and externalId were not sent, so they are
	// gone; no password was sent, so it is not among the changes.
	if up := s.mem.lastUser; up.Method != "PUT" || strings.Join(up.Changed, ",") != "name,displayName,externalId" {
		t.Fatalf("changed %v", up.Changed)
	}

	// Deactivate with PATCH; sync the password; activate again.
	r = s.do("PATCH", "/scim/v2/Users/"+id, "", `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "replace",
        "value": {
            "active": false
        }
    }]
}`).want(t, 200)
	if r.body["active"] != false || s.user(id).Active || strings.Join(s.mem.lastUser.Changed, ",") != "active" {
		t.Fatalf("deactivate: %s", r.raw)
	}
	s.do("PATCH", "/scim/v2/Users/"+id, "", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"password":"n3w-pass"}}]}`).want(t, 200)
	if s.mem.passwords[id] != "n3w-pass" || strings.Join(s.mem.lastUser.Changed, ",") != "password" {
		t.Fatalf("password sync: %v", s.mem.lastUser.Changed)
	}
	s.do("PATCH", "/scim/v2/Users/"+id, "", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":true}}]}`).want(t, 200)
	// Deactivate with PUT (custom app integrations).
	s.do("PUT", "/scim/v2/Users/"+id, "application/scim+json", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"test.user@okta.local","active":false}`).want(t, 200)
	if s.user(id).Active {
		t.Fatal("PUT active:false left the user active")
	}
}

func TestOktaGroupSequence(t *testing.T) {
	s := newServer(t, Options{AcceptPasswords: true})
	user1 := s.do("POST", "/scim/v2/Users", "", oktaCreateUser).want(t, 201).body["id"].(string)
	user2 := s.do("POST", "/scim/v2/Users", "", strings.Replace(oktaCreateUser, "test.user@okta.local", "other@okta.local", 1)).want(t, 201).body["id"].(string)

	r := s.do("POST", "/scim/v2/Groups", "", `{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
    "displayName": "Test SCIMv2",
    "members": []
}`).want(t, 201)
	id := r.body["id"].(string)
	if r.body["displayName"] != "Test SCIMv2" {
		t.Fatalf("create: %s", r.raw)
	}
	s.do("GET", "/scim/v2/Groups/"+id, "", "").want(t, 200)
	r = s.do("GET", "/scim/v2/Groups?startIndex=1&count=100", "", "").want(t, 200)
	if r.body["totalResults"] != 1.0 {
		t.Fatalf("list: %s", r.raw)
	}

	// Update a specific Group name: a pathless replace that repeats the id.
	s.do("PATCH", "/scim/v2/Groups/"+id, "", `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "replace",
        "value": {
            "id": "`+id+`",
            "displayName": "Test SCIMv20"
        }
    }]
}`).want(t, 204)
	if s.mem.groups[id].DisplayName != "Test SCIMv20" {
		t.Fatalf("rename: %+v", s.mem.groups[id])
	}

	// Update specific Group membership: remove by filter, add.
	s.do("PATCH", "/scim/v2/Groups/"+id, "", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"`+user2+`"}]}]}`).want(t, 204)
	s.do("PATCH", "/scim/v2/Groups/"+id, "", `{
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
}`).want(t, 204)
	if up := s.mem.lastGroup; len(up.Added) != 1 || up.Added[0].Value != user1 || len(up.Removed) != 1 || up.Removed[0].Value != user2 {
		t.Fatalf("membership: %+v", up)
	}

	// A full push of the membership with replace.
	s.do("PATCH", "/scim/v2/Groups/"+id, "", `{
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
}`).want(t, 204)
	if g := s.mem.groups[id]; len(g.Members) != 2 {
		t.Fatalf("replace members: %+v", g)
	}
	// The group name update with PUT (custom app integrations).
	r = s.do("PUT", "/scim/v2/Groups/"+id, "", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"`+id+`","displayName":"Test SCIMv2","members":[{"value":"`+user1+`"}]}`).want(t, 200)
	if r.body["displayName"] != "Test SCIMv2" || len(s.mem.groups[id].Members) != 1 {
		t.Fatalf("put: %s", r.raw)
	}

	s.do("DELETE", "/scim/v2/Groups/"+id, "", "").want(t, 204)
}

// The requests of the "Okta SCIM 2.0 SPEC Test" validator, in its order.
func TestOktaSpecTest(t *testing.T) {
	s := newServer(t, Options{})
	scimHeaders := func(method, target, ct, body string) response {
		var req = httptest.NewRequest(method, target, strings.NewReader(body))
		req.Header.Set("Accept-Charset", "utf-8")
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Accept", "application/scim+json")
		req.Header.Set("Authorization", "Bearer good")
		req.Header.Set("User-Agent", "OKTA SCIM Integration")
		return s.send(req)
	}
	const ct = "application/scim+json; charset=utf-8"
	// The validator expects a user to exist already.
	s.do("POST", "/scim/v2/Users", "application/json", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"first@example.com","name":{"givenName":"First","familyName":"User"},"emails":[{"primary":true,"value":"first@example.com","type":"work"}],"active":true}`).want(t, 201)

	// Required Test: Test Users endpoint; Get Users/{{id}}.
	r := scimHeaders("GET", "/scim/v2/Users?count=1&startIndex=1", ct, "").want(t, 200)
	first := get(r.body, "Resources", 0, "id")
	if first == nil || get(r.body, "Resources", 0, "name", "familyName") == nil || get(r.body, "Resources", 0, "emails", 0, "value") == nil ||
		r.body["itemsPerPage"] != 1.0 || r.body["startIndex"] != 1.0 || r.body["totalResults"] != 1.0 {
		t.Fatalf("users endpoint: %s", r.raw)
	}
	if r = scimHeaders("GET", "/scim/v2/Users/"+first.(string), ct, "").want(t, 200); r.body["id"] != first {
		t.Fatalf("get: %s", r.raw)
	}
	// Test invalid User by username; by ID; random user doesn't exist.
	r = scimHeaders("GET", "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "invalid-user@example.com"`), ct, "").want(t, 200)
	if r.body["totalResults"] != 0.0 {
		t.Fatalf("invalid user: %s", r.raw)
	}
	scimHeaders("GET", "/scim/v2/Users/010101", ct, "").wantError(t, 404, "")

	// Create Okta user with realistic values; verify; recreate fails.
	body := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"Mona.Lisa@example.com","name":{"givenName":"Mona","familyName":"Lisa"},"emails":[{"primary":true,"value":"mona@example.com","type":"work"}],"displayName":"Mona Lisa","active":true}`
	r = s.do("POST", "/scim/v2/Users", "application/json", body).want(t, 201)
	if r.body["active"] != true || get(r.body, "name", "familyName") != "Lisa" || r.body["userName"] != "Mona.Lisa@example.com" {
		t.Fatalf("create: %s", r.raw)
	}
	created := r.body["id"].(string)
	scimHeaders("GET", "/scim/v2/Users/"+created, ct, "").want(t, 200)
	s.do("POST", "/scim/v2/Users", "application/json", body).wantError(t, 409, Uniqueness)

	// Username Case Sensitivity Check: userName is caseExact false.
	r = scimHeaders("GET", "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "MONA.LISA@EXAMPLE.COM"`), ct, "").want(t, 200)
	if r.body["totalResults"] != 1.0 || get(r.body, "Resources", 0, "id") != created {
		t.Fatalf("case check: %s", r.raw)
	}
	// Optional Test: Verify Groups endpoint.
	scimHeaders("GET", "/scim/v2/Groups", ct, "").want(t, 200)

	// Check status 401; Check status 404.
	req := httptest.NewRequest("GET", "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "x"`), nil)
	req.Header.Set("Authorization", "non-token")
	s.send(req).wantError(t, 401, "")
	scimHeaders("GET", "/scim/v2/Users/00919288221112222", ct, "").wantError(t, 404, "")
}
