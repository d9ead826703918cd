package scimtest

import (
	"net/url"
	"strings"
	"testing"
)

// The request sequence of Microsoft's "Tutorial: Develop and plan
// provisioning for a SCIM endpoint in Microsoft Entra ID" (section "SCIM
// protocol requests and responses"), and the requests of "Known issues and
// resolutions with SCIM 2.0 protocol compliance" (with and without the
// aadOptscim062020 flag). Bodies are verbatim, sent as
// application/scim+json; the resource IDs in the URLs are the ones the
// endpoint assigned.

// EntraCreateUser is the body Entra ID creates its example user with.
const EntraCreateUser = `{
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

// The example user's userName and work address, as EntraCreateUser sets
// them.
const (
	EntraUserName = "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1"
	EntraEmail    = "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"
)

// entraDo sends as Entra ID does: application/scim+json with a body.
func entraDo(e Endpoint) func(method, path, body string) Response {
	return func(method, path, body string) Response {
		ct := ""
		if body != "" {
			ct = scimJSON
		}
		return e.do(method, path, ct, body)
	}
}

// EntraUserHooks check what lies behind EntraUsers' answers; each runs
// after the request it is named for.
type EntraUserHooks struct {
	Created          func(IDs)
	Got              func(IDs, Response) // GET of the user, with the answer
	ByUserName       func(IDs)           // the list filtered on userName eq
	ByWorkEmail      func(IDs)           // … on emails[type eq "work"].value eq
	MultiValued      func(IDs)           // PATCH of a work address and name.familyName
	Disabled         func(IDs)           // PATCH active "False"
	Enabled          func(IDs)           // PATCH active "True"
	DisabledWithFlag func(IDs)           // PATCH active false, after Enabled
}

// EntraUsers is Entra ID's user sequence: create, get, query (userName,
// the work address, a bare-word externalId), PATCH with and without the
// flag, disable and enable, delete.
func EntraUsers(t *testing.T, e Endpoint, h EntraUserHooks) {
	t.Helper()
	do := entraDo(e)
	query := func(what, filter string, total float64) Response {
		t.Helper()
		r := Want(t, what, do("GET", "/Users?filter="+url.QueryEscape(filter), ""), 200)
		if r.Body["totalResults"] != total {
			t.Fatalf("%s: %s", what, r.Raw)
		}
		return r
	}

	// Create User.
	r := Want(t, "create", do("POST", "/Users", EntraCreateUser), 201)
	ids := IDs{User: str(r.Body["id"])}
	if ids.User == "" || r.Header.Get("Location") != e.Base+"/Users/"+ids.User ||
		At(r.Body, "meta", "location") != r.Header.Get("Location") ||
		r.Body["externalId"] != "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef" || r.Body["userName"] != EntraUserName ||
		r.Body["active"] != true || At(r.Body, "name", "formatted") != "givenName familyName" ||
		At(r.Body, "emails", 0, "value") != EntraEmail ||
		At(r.Body, "emails", 0, "primary") != true || At(r.Body, "meta", "resourceType") != "User" {
		t.Fatalf("create: %s", r.Raw)
	}
	call(h.Created, ids)
	user := "/Users/" + ids.User

	// Get User; and one that does not exist.
	if r = Want(t, "get", do("GET", user, ""), 200); r.Body["id"] != ids.User {
		t.Fatalf("get: %s", r.Raw)
	}
	if h.Got != nil {
		h.Got(ids, r)
	}
	WantError(t, "no such user", do("GET", "/Users/5171a35d82074e068ce2", ""), 404, "")

	// Get User by query; zero results.
	r = query("query", `userName eq "`+EntraUserName+`"`, 1)
	if At(r.Body, "Resources", 0, "id") != ids.User || r.Body["startIndex"] != 1.0 ||
		r.Body["itemsPerPage"] != 1.0 || At(r.Body, "schemas", 0) != listSchema {
		t.Fatalf("query: %s", r.Raw)
	}
	call(h.ByUserName, ids)
	if r = query("zero results", `userName eq "non-existent user"`, 0); count(r.Body["Resources"]) != 0 {
		t.Fatalf("zero results: %s", r.Raw)
	}
	// Users are also matched on emails[type eq "work"].value and, in the
	// documentation's example, on an unquoted externalId.
	query("work email query", `emails[type eq "work"].value eq "TEST_USER_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"`, 1)
	call(h.ByWorkEmail, ids)
	query("bare-word externalId query", `externalId eq 0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef`, 1)

	// Update User [Multi-valued properties].
	r = Want(t, "multi-valued", do("PATCH", user, `{
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
	if At(r.Body, "emails", 0, "value") != "updatedEmail@microsoft.com" || At(r.Body, "emails", 0, "type") != "work" ||
		At(r.Body, "emails", 0, "primary") != true || At(r.Body, "name", "familyName") != "updatedFamilyName" ||
		At(r.Body, "name", "givenName") != "givenName" {
		t.Fatalf("multi-valued update: %s", r.Raw)
	}
	call(h.MultiValued, ids)

	// Update User [Single-valued properties]: a new userName.
	r = Want(t, "userName", do("PATCH", user, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Replace",
        "path": "userName",
        "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    }]
}`), 200)
	if r.Body["userName"] != "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com" {
		t.Fatalf("single-valued update: %s", r.Raw)
	}
	query("by the new userName", `userName eq "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"`, 1)

	// Requests to replace multiple attributes, without the flag (nickName
	// is an RFC attribute this service does not keep: accepted, ignored).
	r = Want(t, "replace multiple", do("PATCH", user, `{
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
	if r.Body["displayName"] != "Pvlo" || At(r.Body, "name", "givenName") != "Gtfd" || r.Body["externalId"] != "Eqpj" ||
		At(r.Body, enterpriseSchema, "employeeNumber") != "Eqpj" || At(r.Body, "emails", 0, "value") != "TestBcwqnm@test.microsoft.com" ||
		At(r.Body, "schemas", 1) != enterpriseSchema {
		t.Fatalf("replace multiple: %s", r.Raw)
	}
	Want(t, "nickName", do("PATCH", user, `{
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
	r = Want(t, "pathless replace", do("PATCH", user, `{
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
	if r.Body["displayName"] != "Bjfe" || At(r.Body, "name", "givenName") != "Kkom" || At(r.Body, "name", "familyName") != "Unua" ||
		At(r.Body, enterpriseSchema, "employeeNumber") != "Aklq" || At(r.Body, "emails", 0, "value") != "TestMhvaes@test.microsoft.com" {
		t.Fatalf("pathless replace: %s", r.Raw)
	}

	// Disable User, without the flag ("False", a string), then with it.
	r = Want(t, "disable", do("PATCH", user, `{
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
	if r.Body["active"] != false {
		t.Fatalf("disable: %s", r.Raw)
	}
	call(h.Disabled, ids)
	r = Want(t, "enable", do("PATCH", user, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"True"}]}`), 200)
	if r.Body["active"] != true {
		t.Fatalf("enable: %s", r.Raw)
	}
	call(h.Enabled, ids)
	r = Want(t, "disable with the flag", do("PATCH", user, `{
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
	if r.Body["active"] != false {
		t.Fatalf("disable with the flag: %s", r.Raw)
	}
	call(h.DisabledWithFlag, ids)

	// Delete User.
	if r = Want(t, "delete", do("DELETE", user, ""), 204); r.Raw != "" {
		t.Fatalf("delete answered a body: %s", r.Raw)
	}
	WantError(t, "deleted", do("GET", user, ""), 404, "")
}

// EntraGroupHooks check what lies behind EntraGroups' answers. The group
// is created as "displayName"; User is its member, off and on.
type EntraGroupHooks struct {
	MemberAdded func(IDs) // PATCH add members: User
	Renamed     func(IDs) // PATCH displayName: no longer "displayName"
	// RemoveAbsent is called around the removal of a member that is not
	// there: it must change nothing.
	RemoveAbsent Unchanged
}

// EntraGroups is Entra ID's group sequence: create a group (with Entra's
// own schema URN beside the core one), add a member, read it with and
// without its members, find it by displayName, rename it, remove the
// member (both forms), remove one that is not there, delete it.
func EntraGroups(t *testing.T, e Endpoint, h EntraGroupHooks) {
	t.Helper()
	do := entraDo(e)
	ids := IDs{User: str(Want(t, "member", do("POST", "/Users", EntraCreateUser), 201).Body["id"])}
	members := func(what string, n int) Response {
		t.Helper()
		r := Want(t, what, do("GET", "/Groups/"+ids.Group, ""), 200)
		if count(r.Body["members"]) != n {
			t.Fatalf("%s: %s, want %d members", what, r.Raw, n)
		}
		return r
	}

	// Create Group: Entra lists a schema of its own beside the core one.
	r := Want(t, "create group", do("POST", "/Groups", `{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
    "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
    "displayName": "displayName",
    "meta": {
        "resourceType": "Group"
    }
}`), 201)
	ids.Group = str(r.Body["id"])
	if r.Body["displayName"] != "displayName" || r.Body["externalId"] != "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159" ||
		At(r.Body, "meta", "resourceType") != "Group" {
		t.Fatalf("create group: %s", r.Raw)
	}
	group := "/Groups/" + ids.Group

	// Update Group [Add Members], then Get Group without its members.
	Want(t, "add members", do("PATCH", group, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Add",
        "path": "members",
        "value": [{
            "$ref": null,
            "value": "`+ids.User+`"
        }]
    }]
}`), 204)
	call(h.MemberAdded, ids)
	r = Want(t, "get without members", do("GET", group+"?excludedAttributes=members", ""), 200)
	if _, ok := r.Body["members"]; ok || r.Body["displayName"] != "displayName" || r.Body["id"] != ids.Group {
		t.Fatalf("get group: %s", r.Raw)
	}
	r = members("get", 1)
	if At(r.Body, "members", 0, "value") != ids.User || At(r.Body, "members", 0, "$ref") != e.Base+"/Users/"+ids.User {
		t.Fatalf("members: %s", r.Raw)
	}
	r = Want(t, "the user's groups", do("GET", "/Users/"+ids.User, ""), 200)
	if At(r.Body, "groups", 0, "value") != ids.Group || At(r.Body, "groups", 0, "display") != "displayName" {
		t.Fatalf("the user's groups: %s", r.Raw)
	}

	// Get Group by displayName.
	r = Want(t, "by displayName", do("GET", "/Groups?excludedAttributes=members&filter="+url.QueryEscape(`displayName eq "displayName"`), ""), 200)
	if r.Body["totalResults"] != 1.0 || At(r.Body, "Resources", 0, "id") != ids.Group || At(r.Body, "Resources", 0, "members") != nil {
		t.Fatalf("group by displayName: %s", r.Raw)
	}

	// Update Group [Non-member attributes].
	Want(t, "rename", do("PATCH", group, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Replace",
        "path": "displayName",
        "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    }]
}`), 204)
	if r = members("renamed", 1); r.Body["displayName"] != "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName" {
		t.Fatalf("rename: %s", r.Raw)
	}
	call(h.Renamed, ids)

	// Update Group [Remove Members]; and the flag's form.
	Want(t, "remove", do("PATCH", group, `{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Remove",
        "path": "members",
        "value": [{
            "$ref": null,
            "value": "`+ids.User+`"
        }]
    }]
}`), 204)
	members("removed", 0)
	Want(t, "add", do("PATCH", group, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"value":"`+ids.User+`"}]}]}`), 204)
	Want(t, "remove by filter", do("PATCH", group, `{
    "schemas": [
        "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    ],
    "Operations": [
        {
            "op": "remove",
            "path": "members[value eq \"`+ids.User+`\"]"
        }
    ]
  }`), 204)
	members("removed by filter", 0)
	// Removing a member that is not there changes nothing, and is no error.
	var check func()
	if h.RemoveAbsent != nil {
		check = h.RemoveAbsent()
	}
	Want(t, "remove nobody", do("PATCH", group, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"value":"u1091"}]}]}`), 204)
	if check != nil {
		check()
	}

	// Delete Group.
	Want(t, "delete", do("DELETE", group, ""), 204)
	WantError(t, "deleted", do("GET", group, ""), 404, "")
}

// EntraSchemas reads /Schemas as Entra ID does on discovery, and one
// schema; it returns the list, for the caller to check what depends on
// its options (whether password is listed).
func EntraSchemas(t *testing.T, e Endpoint) Response {
	t.Helper()
	r := Want(t, "schemas", e.do("GET", "/Schemas", "", ""), 200)
	if r.Body["totalResults"] != 3.0 || At(r.Body, "schemas", 0) != listSchema {
		t.Fatalf("schemas: %s", r.Raw)
	}
	var ids []string
	for i := range count(r.Body["Resources"]) {
		ids = append(ids, str(At(r.Body, "Resources", i, "id")))
	}
	if strings.Join(ids, " ") != userSchema+" "+enterpriseSchema+" "+groupSchema {
		t.Fatalf("schema ids %v", ids)
	}
	attrs, _ := At(r.Body, "Resources", 0, "attributes").([]any)
	for _, a := range attrs {
		if At(a, "name") == "userName" && (At(a, "caseExact") != false || At(a, "uniqueness") != "server" || At(a, "required") != true) {
			t.Fatalf("userName: %v", a)
		}
	}
	Want(t, "enterprise", e.do("GET", "/Schemas/"+enterpriseSchema, "", ""), 200)
	WantError(t, "unknown schema", e.do("GET", "/Schemas/urn:nope", "", ""), 404, "")
	return r
}
