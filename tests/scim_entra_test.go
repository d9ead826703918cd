package tests

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The request sequence of Microsoft's "Tutorial: Develop and plan
// provisioning for a SCIM endpoint in Microsoft Entra ID" and the requests
// of "Known issues and resolutions with SCIM 2.0 protocol compliance" (with
// and without the aadOptscim062020 flag), verbatim (the same bodies as
// http/scim's entra_test.go), against the running service.

const entraCreateUserBody = `{
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

// entraSetup configures an Azure AD (Entra ID) SSO provider and a
// connection bound to it.
func entraSetup(t *testing.T, in *Instance, admin string, tenants []string, mappings ...mapping) string {
	t.Helper()
	r := in.Do("POST", "/api/v1/admin/sso/azure", admin, map[string]any{
		"tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "client_id": "c", "client_secret": "azure-client-secret",
		"issuer": "http://127.0.0.1:1/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
	})
	if r.Status != http.StatusCreated && r.Status != http.StatusOK {
		t.Fatalf("configure azure: %d %s", r.Status, r.Raw)
	}
	ms := []map[string]string{}
	for _, m := range mappings {
		ms = append(ms, map[string]string{"group": m.group, "tenant": m.tenant, "role": m.role})
	}
	r = in.Do("POST", "/api/v1/admin/scim", admin, map[string]any{"provider": "azure", "tenants": tenants, "group_mappings": ms})
	if r.Status != http.StatusCreated {
		t.Fatalf("create connection: %d %s", r.Status, r.Raw)
	}
	return r.String("token")
}

func TestSCIMEntraUserSequence(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	tok := entraSetup(t, in, admin, []string{"prod"})
	do := func(method, path, body string) Response { return scimCall(t, in, method, path, tok, body) }

	// Create User.
	r := wantSCIM(t, "create", do("POST", "/scim/v2/Users", entraCreateUserBody), 201)
	id := r.String("id")
	if id == "" || r.Header.Get("Location") != in.URL+"/scim/v2/Users/"+id || at(r.JSON, "meta", "location") != r.Header.Get("Location") ||
		r.String("externalId") != "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef" || r.String("userName") != "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1" ||
		r.JSON["active"] != true || at(r.JSON, "name", "formatted") != "givenName familyName" ||
		at(r.JSON, "emails", 0, "value") != "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com" ||
		at(r.JSON, "emails", 0, "primary") != true || at(r.JSON, "meta", "resourceType") != "User" {
		t.Fatalf("create: %s", r.Raw)
	}
	u := in.Do("GET", "/api/v1/users/"+id, admin, nil)
	if u.String("username") != "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1" || u.String("email") != "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com" {
		t.Fatalf("the user: %s", u.Raw)
	}

	// Get User; and one that does not exist.
	if r = wantSCIM(t, "get", do("GET", "/scim/v2/Users/"+id, ""), 200); r.String("id") != id {
		t.Fatalf("get: %s", r.Raw)
	}
	wantSCIMError(t, "no such user", do("GET", "/scim/v2/Users/5171a35d82074e068ce2", ""), 404, "")

	// Get User by query; zero results.
	r = wantSCIM(t, "query", do("GET", "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1"`), ""), 200)
	if r.JSON["totalResults"] != 1.0 || at(r.JSON, "Resources", 0, "id") != id || r.JSON["startIndex"] != 1.0 || r.JSON["itemsPerPage"] != 1.0 {
		t.Fatalf("query: %s", r.Raw)
	}
	r = wantSCIM(t, "zero", do("GET", "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "non-existent user"`), ""), 200)
	if r.JSON["totalResults"] != 0.0 || len(r.JSON["Resources"].([]any)) != 0 {
		t.Fatalf("zero results: %s", r.Raw)
	}
	r = wantSCIM(t, "work email", do("GET", "/scim/v2/Users?filter="+url.QueryEscape(`emails[type eq "work"].value eq "TEST_USER_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"`), ""), 200)
	if r.JSON["totalResults"] != 1.0 {
		t.Fatalf("work email query: %s", r.Raw)
	}
	r = wantSCIM(t, "externalId", do("GET", "/scim/v2/Users?filter="+url.QueryEscape(`externalId eq 0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef`), ""), 200)
	if r.JSON["totalResults"] != 1.0 {
		t.Fatalf("bare-word externalId query: %s", r.Raw)
	}

	// Update User [Multi-valued properties].
	r = wantSCIM(t, "multi-valued", do("PATCH", "/scim/v2/Users/"+id, `{
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
}`), 200)
	if at(r.JSON, "emails", 0, "value") != "updatedEmail@microsoft.com" || at(r.JSON, "name", "familyName") != "updatedFamilyName" ||
		at(r.JSON, "name", "givenName") != "givenName" {
		t.Fatalf("multi-valued update: %s", r.Raw)
	}

	// Update User [Single-valued properties]: a new userName.
	r = wantSCIM(t, "userName", do("PATCH", "/scim/v2/Users/"+id, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Replace",
        "path": "userName",
        "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    }]
}`), 200)
	if r.String("userName") != "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com" {
		t.Fatalf("single-valued update: %s", r.Raw)
	}
	r = wantSCIM(t, "by new userName", do("GET", "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"`), ""), 200)
	if r.JSON["totalResults"] != 1.0 {
		t.Fatalf("found by the new userName: %s", r.Raw)
	}

	// Requests to replace multiple attributes, without the flag.
	r = wantSCIM(t, "multiple", do("PATCH", "/scim/v2/Users/"+id, `{
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
  }`), 200)
	if r.String("displayName") != "Pvlo" || at(r.JSON, "name", "givenName") != "Gtfd" || r.String("externalId") != "Eqpj" ||
		at(r.JSON, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "employeeNumber") != "Eqpj" ||
		at(r.JSON, "emails", 0, "value") != "TestBcwqnm@test.microsoft.com" {
		t.Fatalf("replace multiple: %s", r.Raw)
	}
	wantSCIM(t, "nickName", do("PATCH", "/scim/v2/Users/"+id, `{
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
  }`), 200)

	// The same with the flag: a pathless replace whose keys are paths.
	r = wantSCIM(t, "pathless", do("PATCH", "/scim/v2/Users/"+id, `{
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
  }`), 200)
	if r.String("displayName") != "Bjfe" || at(r.JSON, "name", "givenName") != "Kkom" || at(r.JSON, "name", "familyName") != "Unua" ||
		at(r.JSON, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "employeeNumber") != "Aklq" ||
		at(r.JSON, "emails", 0, "value") != "TestMhvaes@test.microsoft.com" {
		t.Fatalf("pathless replace: %s", r.Raw)
	}

	// Disable User, without the flag ("False", a string), then with it.
	r = wantSCIM(t, "disable", do("PATCH", "/scim/v2/Users/"+id, `{
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
  }`), 200)
	if r.JSON["active"] != false || in.Do("GET", "/api/v1/users/"+id, admin, nil).JSON["active"] != false {
		t.Fatalf("disable: %s", r.Raw)
	}
	wantSCIM(t, "enable", do("PATCH", "/scim/v2/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"True"}]}`), 200)
	if in.Do("GET", "/api/v1/users/"+id, admin, nil).JSON["active"] != true {
		t.Fatal("enable: the user is not active")
	}
	r = wantSCIM(t, "disable with the flag", do("PATCH", "/scim/v2/Users/"+id, `{
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
}`), 200)
	if r.JSON["active"] != false {
		t.Fatalf("disable: %s", r.Raw)
	}

	// Delete User.
	r = wantSCIM(t, "delete", do("DELETE", "/scim/v2/Users/"+id, ""), 204)
	if len(r.Raw) != 0 {
		t.Fatalf("delete answered a body: %s", r.Raw)
	}
	wantSCIMError(t, "deleted", do("GET", "/scim/v2/Users/"+id, ""), 404, "")
}

func TestSCIMEntraGroupSequence(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	tok := entraSetup(t, in, admin, []string{"prod"}, mapping{"displayName", "prod", "editor"})
	do := func(method, path, body string) Response { return scimCall(t, in, method, path, tok, body) }
	member := wantSCIM(t, "member", do("POST", "/scim/v2/Users", entraCreateUserBody), 201).String("id")

	// Create Group: Entra lists a schema of its own beside the core one.
	r := wantSCIM(t, "create group", do("POST", "/scim/v2/Groups", `{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
    "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
    "displayName": "displayName",
    "meta": {
        "resourceType": "Group"
    }
}`), 201)
	id := r.String("id")
	if r.String("displayName") != "displayName" || r.String("externalId") != "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159" || at(r.JSON, "meta", "resourceType") != "Group" {
		t.Fatalf("create group: %s", r.Raw)
	}

	// Update Group [Add Members]: the member is an editor in prod at once.
	wantSCIM(t, "add members", do("PATCH", "/scim/v2/Groups/"+id, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Add",
        "path": "members",
        "value": [{
            "$ref": null,
            "value": "`+member+`"
        }]
    }]
}`), 204)
	if tenantRole(t, in, admin, member, "prod") != "editor" {
		t.Fatal("a member of the mapped group is an editor in prod")
	}
	r = wantSCIM(t, "get without members", do("GET", "/scim/v2/Groups/"+id+"?excludedAttributes=members", ""), 200)
	if _, ok := r.JSON["members"]; ok || r.String("displayName") != "displayName" || r.String("id") != id {
		t.Fatalf("get group: %s", r.Raw)
	}
	r = wantSCIM(t, "get", do("GET", "/scim/v2/Groups/"+id, ""), 200)
	if at(r.JSON, "members", 0, "value") != member || at(r.JSON, "members", 0, "$ref") != in.URL+"/scim/v2/Users/"+member {
		t.Fatalf("members: %s", r.Raw)
	}
	if r = wantSCIM(t, "the user's groups", do("GET", "/scim/v2/Users/"+member, ""), 200); at(r.JSON, "groups", 0, "value") != id || at(r.JSON, "groups", 0, "display") != "displayName" {
		t.Fatalf("the user's groups: %s", r.Raw)
	}

	// Get Group by displayName.
	r = wantSCIM(t, "by displayName", do("GET", "/scim/v2/Groups?excludedAttributes=members&filter="+url.QueryEscape(`displayName eq "displayName"`), ""), 200)
	if r.JSON["totalResults"] != 1.0 || at(r.JSON, "Resources", 0, "id") != id || at(r.JSON, "Resources", 0, "members") != nil {
		t.Fatalf("group by displayName: %s", r.Raw)
	}

	// Update Group [Non-member attributes]: the name no longer matches the
	// mapping, so the member's role goes.
	wantSCIM(t, "rename", do("PATCH", "/scim/v2/Groups/"+id, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Replace",
        "path": "displayName",
        "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    }]
}`), 204)
	if r = wantSCIM(t, "renamed", do("GET", "/scim/v2/Groups/"+id, ""), 200); r.String("displayName") != "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName" ||
		len(r.JSON["members"].([]any)) != 1 {
		t.Fatalf("rename: %s", r.Raw)
	}
	if tenantRole(t, in, admin, member, "prod") != "" {
		t.Fatal("renamed out of the mapping: no role in prod")
	}

	// Update Group [Remove Members]; and the flag's form.
	wantSCIM(t, "remove", do("PATCH", "/scim/v2/Groups/"+id, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Remove",
        "path": "members",
        "value": [{
            "$ref": null,
            "value": "`+member+`"
        }]
    }]
}`), 204)
	if r = wantSCIM(t, "get", do("GET", "/scim/v2/Groups/"+id, ""), 200); len(asList(r.JSON["members"])) != 0 {
		t.Fatalf("remove members: %s", r.Raw)
	}
	wantSCIM(t, "add", do("PATCH", "/scim/v2/Groups/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"value":"`+member+`"}]}]}`), 204)
	wantSCIM(t, "remove by filter", do("PATCH", "/scim/v2/Groups/"+id, `{
    "schemas": [
        "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    ],
    "Operations": [
        {
            "op": "remove",
            "path": "members[value eq \"`+member+`\"]"
        }
    ]
  }`), 204)
	if r = wantSCIM(t, "get", do("GET", "/scim/v2/Groups/"+id, ""), 200); len(asList(r.JSON["members"])) != 0 {
		t.Fatalf("remove members by filter: %s", r.Raw)
	}
	// Removing a member that is not there changes nothing, and is no error.
	seq := head(t, in)
	wantSCIM(t, "remove nobody", do("PATCH", "/scim/v2/Groups/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"value":"u1091"}]}]}`), 204)
	unchanged(t, in, seq, "removing a member that is not there")

	// Delete Group.
	wantSCIM(t, "delete", do("DELETE", "/scim/v2/Groups/"+id, ""), 204)
	wantSCIMError(t, "deleted", do("GET", "/scim/v2/Groups/"+id, ""), 404, "")
}

func TestSCIMEntraSchemaDiscovery(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	tok := entraSetup(t, in, admin, []string{"prod"})
	r := wantSCIM(t, "schemas", scimCall(t, in, "GET", "/scim/v2/Schemas", tok, ""), 200)
	var ids []string
	for i := range r.JSON["Resources"].([]any) {
		ids = append(ids, at(r.JSON, "Resources", i, "id").(string))
	}
	if strings.Join(ids, " ") != "urn:ietf:params:scim:schemas:core:2.0:User urn:ietf:params:scim:schemas:extension:enterprise:2.0:User urn:ietf:params:scim:schemas:core:2.0:Group" {
		t.Fatalf("schema ids %v", ids)
	}
	wantSCIM(t, "enterprise", scimCall(t, in, "GET", "/scim/v2/Schemas/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", tok, ""), 200)
	wantSCIMError(t, "unknown schema", scimCall(t, in, "GET", "/scim/v2/Schemas/urn:nope", tok, ""), 404, "")
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
