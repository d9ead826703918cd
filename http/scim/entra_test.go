package scim

import (
	"net/url"
	"strings"
	"testing"
)

// The request sequence of Microsoft's "Tutorial: Develop and plan
// provisioning for a SCIM endpoint in Microsoft Entra ID" (section "SCIM
// protocol requests and responses"), and the requests of "Known issues and
// resolutions with SCIM 2.0 protocol compliance" (with and without the
// aadOptscim062020 flag). Bodies are verbatim; the resource IDs in the
// URLs are the ones this server assigned.

const entraCreateUser = `{
    "schemas": [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
    "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
    "active": true,
    "emails": [{
        "primary": true,
        "type": "work",
        "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"
    }],
    "meta": {
        "resourceType": "User"
    },
    "name": {
        "formatted": "givenName familyName",
        "familyName": "familyName",
        "givenName": "givenName"
    },
    "roles": []
}`

const entraCT = "application/scim+json"

func TestEntraUserSequence(t *testing.T) {
	s := newServer(t, Options{})

	// Create User.
	r := s.do("POST", "/scim/v2/Users", entraCT, entraCreateUser).want(t, 201)
	id, _ := r.body["id"].(string)
	if id == "" || r.header.Get("Location") != "http://example.com/scim/v2/Users/"+id ||
		get(r.body, "meta", "location") != r.header.Get("Location") ||
		r.body["externalId"] != "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef" ||
		r.body["userName"] != "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1" ||
		r.body["active"] != true || get(r.body, "name", "formatted") != "givenName familyName" ||
		get(r.body, "emails", 0, "value") != "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com" ||
		get(r.body, "emails", 0, "primary") != true || get(r.body, "meta", "resourceType") != "User" {
		t.Fatalf("create: %s", r.raw)
	}

	// Get User; and one that does not exist.
	r = s.do("GET", "/scim/v2/Users/"+id, "", "").want(t, 200)
	if r.body["id"] != id || get(r.body, "meta", "created") != "2026-03-27T19:59:26Z" {
		t.Fatalf("get: %s", r.raw)
	}
	s.do("GET", "/scim/v2/Users/5171a35d82074e068ce2", "", "").wantError(t, 404, "")

	// Get User by query; zero results.
	r = s.do("GET", "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1"`), "", "").want(t, 200)
	if r.body["totalResults"] != 1.0 || get(r.body, "Resources", 0, "id") != id || r.body["startIndex"] != 1.0 ||
		r.body["itemsPerPage"] != 1.0 || toStrings(r.body["schemas"])[0] != ListSchema {
		t.Fatalf("query: %s", r.raw)
	}
	if l := s.mem.lookups[len(s.mem.lookups)-1]; l.Attr != "userName" || !l.Whole || l.CaseExact {
		t.Fatalf("the backend was not offered the userName lookup: %+v", l)
	}
	r = s.do("GET", "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "non-existent user"`), "", "").want(t, 200)
	if r.body["totalResults"] != 0.0 || len(r.body["Resources"].([]any)) != 0 {
		t.Fatalf("zero results: %s", r.raw)
	}
	// Users are also matched on emails[type eq "work"].value and, in the
	// documentation's example, on an unquoted externalId.
	r = s.do("GET", "/scim/v2/Users?filter="+url.QueryEscape(`emails[type eq "work"].value eq "TEST_USER_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"`), "", "").want(t, 200)
	if r.body["totalResults"] != 1.0 {
		t.Fatalf("work email query: %s", r.raw)
	}
	if l := s.mem.lookups[len(s.mem.lookups)-1]; l.Attr != "emails.value" || l.Type != "work" || !l.Whole {
		t.Fatalf("lookup %+v", l)
	}
	r = s.do("GET", "/scim/v2/Users?filter="+url.QueryEscape(`externalId eq 0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef`), "", "").want(t, 200)
	if r.body["totalResults"] != 1.0 {
		t.Fatalf("bare-word externalId query: %s", r.raw)
	}

	// Update User [Multi-valued properties].
	r = s.do("PATCH", "/scim/v2/Users/"+id, entraCT, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [
            {
            "op": "Replace",
            "path": "emails[type eq \"work\"].value",
            "value": "updatedEmail@microsoft.com"
            },
            {
            "op": "Replace",
            "path": "name.familyName",
            "value": "updatedFamilyName"
            }
    ]
}`).want(t, 200)
	if get(r.body, "emails", 0, "value") != "updatedEmail@microsoft.com" || get(r.body, "emails", 0, "type") != "work" ||
		get(r.body, "emails", 0, "primary") != true || get(r.body, "name", "familyName") != "updatedFamilyName" ||
		get(r.body, "name", "givenName") != "givenName" {
		t.Fatalf("multi-valued update: %s", r.raw)
	}
	if up := s.mem.lastUser; up.Method != "PATCH" || strings.Join(up.Changed, ",") != "name,emails" {
		t.Fatalf("changed %v", up.Changed)
	}

	// Update User [Single-valued properties].
	r = s.do("PATCH", "/scim/v2/Users/"+id, entraCT, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Replace",
        "path": "userName",
        "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    }]
}`).want(t, 200)
	if r.body["userName"] != "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com" {
		t.Fatalf("single-valued update: %s", r.raw)
	}

	// Requests to replace multiple attributes, without the flag (nickName
	// is an RFC attribute this service does not keep: accepted, ignored).
	r = s.do("PATCH", "/scim/v2/Users/"+id, entraCT, `{
    "schemas": [
        "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    ],
    "Operations": [
        {
            "op": "Replace",
            "path": "displayName",
            "value": "Pvlo"
        },
        {
            "op": "Replace",
            "path": "emails[type eq \"work\"].value",
            "value": "TestBcwqnm@test.microsoft.com"
        },
        {
            "op": "Replace",
            "path": "name.givenName",
            "value": "Gtfd"
        },
        {
            "op": "Replace",
            "path": "name.familyName",
            "value": "Pkqf"
        },
        {
            "op": "Replace",
            "path": "externalId",
            "value": "Eqpj"
        },
        {
            "op": "Replace",
            "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            "value": "Eqpj"
        }
    ]
  }`).want(t, 200)
	if r.body["displayName"] != "Pvlo" || get(r.body, "name", "givenName") != "Gtfd" || r.body["externalId"] != "Eqpj" ||
		get(r.body, EnterpriseSchema, "employeeNumber") != "Eqpj" || get(r.body, "emails", 0, "value") != "TestBcwqnm@test.microsoft.com" ||
		!strings.Contains(strings.Join(toStrings(r.body["schemas"]), " "), EnterpriseSchema) {
		t.Fatalf("replace multiple: %s", r.raw)
	}
	s.do("PATCH", "/scim/v2/Users/"+id, entraCT, `{
    "schemas": [
        "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    ],
    "Operations": [
      {
        "op": "Add",
        "path": "nickName",
        "value": "Babs"
      }
    ]
  }`).want(t, 200)

	// The same with the flag: a pathless replace whose keys are paths.
	r = s.do("PATCH", "/scim/v2/Users/"+id, entraCT, `{
    "schemas": [
        "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    ],
    "Operations": [
        {
            "op": "replace",
            "path": "emails[type eq \"work\"].value",
            "value": "TestMhvaes@test.microsoft.com"
        },
        {
            "op": "replace",
            "value": {
                "displayName": "Bjfe",
                "name.givenName": "Kkom",
                "name.familyName": "Unua",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"
            }
        }
    ]
  }`).want(t, 200)
	if r.body["displayName"] != "Bjfe" || get(r.body, "name", "givenName") != "Kkom" || get(r.body, "name", "familyName") != "Unua" ||
		get(r.body, EnterpriseSchema, "employeeNumber") != "Aklq" || get(r.body, "emails", 0, "value") != "TestMhvaes@test.microsoft.com" {
		t.Fatalf("pathless replace: %s", r.raw)
	}

	// Disable User, without the flag ("False", a string), then with it.
	r = s.do("PATCH", "/scim/v2/Users/"+id, entraCT, `{
    "schemas": [
        "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    ],
    "Operations": [
        {
            "op": "Replace",
            "path": "active",
            "value": "False"
        }
    ]
  }`).want(t, 200)
	if r.body["active"] != false || s.user(id).Active || strings.Join(s.mem.lastUser.Changed, ",") != "active" {
		t.Fatalf("disable: %s (changed %v)", r.raw, s.mem.lastUser.Changed)
	}
	s.do("PATCH", "/scim/v2/Users/"+id, entraCT, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"True"}]}`).want(t, 200)
	updates := s.mem.updates
	r = s.do("PATCH", "/scim/v2/Users/"+id, entraCT, `{
    "Operations": [
        {
            "op": "Replace",
            "path": "active",
            "value": false
        }
    ],
    "schemas": [
        "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    ]
}`).want(t, 200)
	if r.body["active"] != false || s.mem.updates != updates+1 {
		t.Fatalf("disable: %s", r.raw)
	}

	// Delete User.
	r = s.do("DELETE", "/scim/v2/Users/"+id, "", "").want(t, 204)
	if r.raw != "" {
		t.Fatalf("delete answered a body: %s", r.raw)
	}
	s.do("GET", "/scim/v2/Users/"+id, "", "").wantError(t, 404, "")
}

func TestEntraGroupSequence(t *testing.T) {
	s := newServer(t, Options{})
	member := s.do("POST", "/scim/v2/Users", entraCT, entraCreateUser).want(t, 201).body["id"].(string)

	// Create Group: Entra lists a schema of its own beside the core one.
	r := s.do("POST", "/scim/v2/Groups", entraCT, `{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
    "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
    "displayName": "displayName",
    "meta": {
        "resourceType": "Group"
    }
}`).want(t, 201)
	id := r.body["id"].(string)
	if r.body["displayName"] != "displayName" || r.body["externalId"] != "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159" ||
		get(r.body, "meta", "resourceType") != "Group" {
		t.Fatalf("create group: %s", r.raw)
	}

	// Update Group [Add Members], then Get Group without its members.
	r = s.do("PATCH", "/scim/v2/Groups/"+id, entraCT, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Add",
        "path": "members",
        "value": [{
            "$ref": null,
            "value": "`+member+`"
        }]
    }]
}`).want(t, 204)
	if up := s.mem.lastGroup; len(up.Added) != 1 || up.Added[0].Value != member || len(up.Removed) != 0 {
		t.Fatalf("add members: %+v", up)
	}
	r = s.do("GET", "/scim/v2/Groups/"+id+"?excludedAttributes=members", "", "").want(t, 200)
	if _, ok := r.body["members"]; ok || r.body["displayName"] != "displayName" || r.body["id"] != id {
		t.Fatalf("get group: %s", r.raw)
	}
	r = s.do("GET", "/scim/v2/Groups/"+id, "", "").want(t, 200)
	if get(r.body, "members", 0, "value") != member || get(r.body, "members", 0, "$ref") != "http://example.com/scim/v2/Users/"+member {
		t.Fatalf("members: %s", r.raw)
	}
	r = s.do("GET", "/scim/v2/Users/"+member, "", "").want(t, 200)
	if get(r.body, "groups", 0, "value") != id || get(r.body, "groups", 0, "display") != "displayName" {
		t.Fatalf("the user's groups: %s", r.raw)
	}

	// Get Group by displayName.
	r = s.do("GET", "/scim/v2/Groups?excludedAttributes=members&filter="+url.QueryEscape(`displayName eq "displayName"`), "", "").want(t, 200)
	if r.body["totalResults"] != 1.0 || get(r.body, "Resources", 0, "id") != id || get(r.body, "Resources", 0, "members") != nil {
		t.Fatalf("group by displayName: %s", r.raw)
	}

	// Update Group [Non-member attributes].
	s.do("PATCH", "/scim/v2/Groups/"+id, entraCT, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Replace",
        "path": "displayName",
        "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    }]
}`).want(t, 204)
	if g := s.mem.groups[id]; g.DisplayName != "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName" || len(g.Members) != 1 {
		t.Fatalf("rename: %+v", g)
	}

	// Update Group [Remove Members]; and the flag's form.
	s.do("PATCH", "/scim/v2/Groups/"+id, entraCT, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Remove",
        "path": "members",
        "value": [{
            "$ref": null,
            "value": "`+member+`"
        }]
    }]
}`).want(t, 204)
	if g := s.mem.groups[id]; len(g.Members) != 0 {
		t.Fatalf("remove members: %+v", g)
	}
	s.do("PATCH", "/scim/v2/Groups/"+id, entraCT, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"value":"`+member+`"}]}]}`).want(t, 204)
	s.do("PATCH", "/scim/v2/Groups/"+id, entraCT, `{
    "schemas": [
        "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    ],
    "Operations": [
        {
            "op": "remove",
            "path": "members[value eq \"`+member+`\"]"
        }
    ]
  }`).want(t, 204)
	if g := s.mem.groups[id]; len(g.Members) != 0 {
		t.Fatalf("remove members by filter: %+v", g)
	}
	// Removing a member that is not there changes nothing, and is no error.
	updates := s.mem.updates
	s.do("PATCH", "/scim/v2/Groups/"+id, entraCT, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"value":"u1091"}]}]}`).want(t, 204)
	if s.mem.updates != updates {
		t.Fatal("a PATCH that changes nothing called the backend")
	}

	// Delete Group.
	s.do("DELETE", "/scim/v2/Groups/"+id, "", "").want(t, 204)
	s.do("GET", "/scim/v2/Groups/"+id, "", "").wantError(t, 404, "")
}

func TestEntraSchemaDiscovery(t *testing.T) {
	s := newServer(t, Options{})
	r := s.do("GET", "/scim/v2/Schemas", "", "").want(t, 200)
	if r.body["totalResults"] != 3.0 || toStrings(r.body["schemas"])[0] != ListSchema {
		t.Fatalf("schemas: %s", r.raw)
	}
	ids := []string{}
	for _, res := range r.body["Resources"].([]any) {
		ids = append(ids, get(res, "id").(string))
	}
	if strings.Join(ids, " ") != UserSchema+" "+EnterpriseSchema+" "+GroupSchema {
		t.Fatalf("schema ids %v", ids)
	}
	if strings.Contains(r.raw, `"password"`) {
		t.Fatal("password is listed though passwords are not accepted")
	}
	user := r.body["Resources"].([]any)[0]
	for _, a := range get(user, "attributes").([]any) {
		if get(a, "name") == "userName" && (get(a, "caseExact") != false || get(a, "uniqueness") != "server" || get(a, "required") != true) {
			t.Fatalf("userName: %v", a)
		}
	}
	s.do("GET", "/scim/v2/Schemas/"+EnterpriseSchema, "", "").want(t, 200)
	s.do("GET", "/scim/v2/Schemas/urn:nope", "", "").wantError(t, 404, "")
}
