package tests

import (
	"net/http"
	"testing"

	"github.com/infracast/auth/http/scim/scimtest"
)

// Microsoft Entra ID's documented request sequences (http/scim/scimtest,
// which http/scim's own tests replay against an in-memory backend), here
// against the running service: the users and the roles behind the answers.

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
	active := func(what, id string, want bool) {
		t.Helper()
		if r := in.Do("GET", "/api/v1/users/"+id, admin, nil); r.JSON["active"] != want {
			t.Fatalf("%s: the user %s", what, r.Raw)
		}
	}
	scimtest.EntraUsers(t, scimEndpoint(t, in, tok), scimtest.EntraUserHooks{
		Created: func(ids scimtest.IDs) {
			u := in.Do("GET", "/api/v1/users/"+ids.User, admin, nil)
			if u.String("username") != scimtest.EntraUserName || u.String("email") != scimtest.EntraEmail {
				t.Fatalf("the user: %s", u.Raw)
			}
		},
		Disabled: func(ids scimtest.IDs) { active("disable", ids.User, false) },
		Enabled:  func(ids scimtest.IDs) { active("enable", ids.User, true) },
	})
}

func TestSCIMEntraGroupSequence(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	tok := entraSetup(t, in, admin, []string{"prod"}, mapping{"displayName", "prod", "editor"})
	scimtest.EntraGroups(t, scimEndpoint(t, in, tok), scimtest.EntraGroupHooks{
		// The member of the mapped group is an editor in prod at once.
		MemberAdded: func(ids scimtest.IDs) {
			if tenantRole(t, in, admin, ids.User, "prod") != "editor" {
				t.Fatal("a member of the mapped group is an editor in prod")
			}
		},
		// The name no longer matches the mapping, so the member's role goes.
		Renamed: func(ids scimtest.IDs) {
			if tenantRole(t, in, admin, ids.User, "prod") != "" {
				t.Fatal("renamed out of the mapping: no role in prod")
			}
		},
		RemoveAbsent: func() func() {
			seq := head(t, in)
			return func() { unchanged(t, in, seq, "removing a member that is not there") }
		},
	})
}

func TestSCIMEntraSchemaDiscovery(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	scimtest.EntraSchemas(t, scimEndpoint(t, in, entraSetup(t, in, admin, []string{"prod"})))
}

// TestSCIMPatchOperationExtraMembers: an operation with members beyond op,
// path and value — Microsoft's SCIM reference code sends "name":
// "addMember" and "removeMember" — is applied, the extra member ignored as
// unknown attributes are; op is still checked.
func TestSCIMPatchOperationExtraMembers(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	tok := entraSetup(t, in, admin, []string{"prod"}, mapping{"Engineers", "prod", "editor"})
	call := func(method, path, body string) Response { return scimCall(t, in, method, path, tok, body) }
	user := wantSCIM(t, "create user", call("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"mia@corp.example","externalId":"mia"}`), 201).String("id")
	group := wantSCIM(t, "create group", call("POST", "/scim/v2/Groups", `{`+groupSchema+`,"displayName":"Engineers"}`), 201).String("id")

	wantSCIM(t, "addMember", call("PATCH", "/scim/v2/Groups/"+group, patchOps(`[{"name":"addMember","op":"add","path":"members",
		"value":[{"displayName":"mia","value":"`+user+`"}]}]`)), 204)
	if role := tenantRole(t, in, admin, user, "prod"); role != "editor" {
		t.Fatalf("added with name addMember, the member is %q in prod, want editor", role)
	}
	wantSCIM(t, "removeMember", call("PATCH", "/scim/v2/Groups/"+group, patchOps(`[{"name":"removeMember","op":"remove",
		"path":"members[value eq \"`+user+`\"]"}]`)), 204)
	if role := tenantRole(t, in, admin, user, "prod"); role != "" {
		t.Fatalf("removed with name removeMember, the member is %q in prod, want none", role)
	}

	seq := head(t, in)
	wantSCIMError(t, "an unknown op", call("PATCH", "/scim/v2/Groups/"+group, patchOps(`[{"name":"addMember","op":"merge","path":"members",
		"value":[{"value":"`+user+`"}]}]`)), 400, "invalidSyntax")
	unchanged(t, in, seq, "an unknown op")
}
