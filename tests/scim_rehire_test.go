package tests

import (
	"net/http"
	"strings"
	"testing"
)

// The match rule's adoption by username and the rehire (scim.md, "Which
// user a SCIM user is"): an identity that changed hands is never taken over
// (outside check 19e).

// TestSCIMRecycledUserNameIsNotTheDepartedPersonsAccount: the IdP deletes
// jdoe@corp.example (00u-OLD) and later gives the name to a new hire
// (00u-NEW). The new hire's create is 409 uniqueness with a detail that
// says what to do, and nothing changes: the departed person's account stays
// inactive, their password signs nobody in, and the new hire's SSO login
// does not land on it. Before, the create adopted the departed person's
// account and activated it: old password, hand-given roles and both
// identities signing in to one account.
func TestSCIMRecycledUserNameIsNotTheDepartedPersonsAccount(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	old := testOIDCUser{Subject: "00u-OLD", Email: "jdoe@corp.example", EmailVerified: true, Username: "jdoe@corp.example"}
	idp := configureOIDC(t, in, admin, "okta", "okta", old, nil)
	r := in.Do("POST", "/api/v1/admin/scim", admin, map[string]any{"provider": "okta", "tenants": []string{"prod", "staging"},
		"group_mappings": []map[string]string{{"group": "eng", "tenant": "prod", "role": "editor"}}})
	expectStatus(t, "connection", r, http.StatusCreated)
	tok := r.String("token")
	call := func(method, path, body string) Response { return scimCall(t, in, method, path, tok, body) }
	const oldPW = "old-person-secret-77"
	first := wantSCIM(t, "create jdoe", call("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"jdoe@corp.example","externalId":"00u-OLD",
		"emails":[{"value":"jdoe@corp.example","type":"work","primary":true}],"password":"`+oldPW+`","active":true}`), 201).String("id")
	// A role by hand in a tenant no mapping governs: the delete keeps it.
	expectStatus(t, "staging viewer by hand", in.Do("PUT", "/api/v1/users/"+first+"/tenants/staging", admin, map[string]string{"role": "viewer"}), 200)
	wantSCIM(t, "delete jdoe", call("DELETE", "/scim/v2/Users/"+first, ""), 204)

	seq := head(t, in)
	newHire := `{` + userSchema + `,"userName":"jdoe@corp.example","externalId":"00u-NEW",
		"emails":[{"value":"jdoe@corp.example","type":"work","primary":true}],"active":true}`
	r = call("POST", "/scim/v2/Users", newHire)
	wantSCIMError(t, "the new hire's create", r, http.StatusConflict, "uniqueness")
	if d := r.String("detail"); !strings.Contains(d, "another SSO identity") || !strings.Contains(d, "platform admin") {
		t.Errorf("the 409's detail says nothing of what to do: %q", d)
	}
	unchanged(t, in, seq, "the refused create")
	if u := in.Do("GET", "/api/v1/users/"+first, admin, nil); u.JSON["active"] != false {
		t.Fatalf("the departed person's account after the refused create: %s", u.Raw)
	}
	if lr := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "jdoe@corp.example", "password": oldPW}); lr.Status == http.StatusOK {
		t.Fatal("the departed person's old password signs in")
	}
	idp.SetUser(testOIDCUser{Subject: "00u-NEW", Email: "jdoe@corp.example", EmailVerified: true, Username: "jdoe@corp.example"})
	if r := newBrowser(t).get(in.URL + "/api/v1/auth/sso/okta/login"); r.Status == http.StatusOK {
		if u, _ := r.JSON["user"].(map[string]any); u["id"] == first {
			t.Fatal("the new hire's SSO login signs in to the departed person's account")
		}
	}
	// The departed person's own externalId is a rehire, as before.
	r = wantSCIM(t, "the departed person rehired", call("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"jdoe@corp.example","externalId":"00u-OLD","active":true}`), 201)
	if r.String("id") != first || r.JSON["active"] != true {
		t.Fatalf("rehire: %s (want %s, active)", r.Raw, first)
	}
}

// TestSCIMPlainNameOfAnotherProvidersUserIsNotAdopted: a user of another
// identity provider signed in first with the preferred username "jdoe" and
// was provisioned under it (sso.md); a platform connection's create of
// jdoe is 409 uniqueness and changes nothing. Before, it adopted the other
// provider's user: the corporate address, the Okta identity and the
// groups' roles went to whoever had picked the name.
func TestSCIMPlainNameOfAnotherProvidersUserIsNotAdopted(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	squatter := testOIDCUser{Subject: "partner-1", Email: "mallory@partner.example", Username: "jdoe", Groups: []string{"everyone"}}
	configureOIDC(t, in, admin, "oidc", "partner", squatter, map[string]any{
		"role_mappings": []map[string]string{{"group": "everyone", "tenant": "prod", "role": "viewer"}}})
	r := newBrowser(t).get(in.URL + "/api/v1/auth/sso/partner/login")
	mustStatus(t, r, http.StatusOK, "the partner user's login")
	user, _ := r.JSON["user"].(map[string]any)
	partnerID, _ := user["id"].(string)
	if user["username"] != "jdoe" {
		t.Fatalf("the partner user was provisioned as %v, not jdoe", user["username"])
	}
	_, tok := newConnection(t, in, admin, admin, []string{"prod"}, mapping{"prod-admins", "prod", "admin"})
	seq := head(t, in)
	r = scimCall(t, in, "POST", "/scim/v2/Users", tok, `{`+userSchema+`,"userName":"jdoe","externalId":"00u-jdoe",
		"emails":[{"value":"jdoe@corp.example","type":"work","primary":true}],"active":true}`)
	wantSCIMError(t, "the IdP's jdoe", r, http.StatusConflict, "uniqueness")
	unchanged(t, in, seq, "the refused create")
	if u := in.Do("GET", "/api/v1/users/"+partnerID, admin, nil); u.String("email") == "jdoe@corp.example" {
		t.Fatalf("the partner user took the corporate address: %s", u.Raw)
	}
}

// TestSCIMTenantConnectionRehiresItsUser: a tenant admin's connection
// (which links no SSO identity) deletes rae and creates her again with the
// same externalId: its own record of her finds her — 201 with her ID,
// active, shown again — and a group gives her role back. Before, every
// such create was 409 for good and the user could not be found by the IdP.
func TestSCIMTenantConnectionRehiresItsUser(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	in.CreateUser(admin, "tadmin", "tadmin-passphrase", map[string]string{"prod": "admin"})
	ta := in.Login("tadmin", "tadmin-passphrase").String("token")
	_, tok := newConnection(t, in, admin, ta, []string{"prod"}, mapping{"eng", "prod", "editor"})
	call := func(method, path, body string) Response { return scimCall(t, in, method, path, tok, body) }
	rae := `{` + userSchema + `,"userName":"rae@corp.example","externalId":"00u-rae","active":true}`
	id := wantSCIM(t, "create", call("POST", "/scim/v2/Users", rae), 201).String("id")
	group := wantSCIM(t, "group", call("POST", "/scim/v2/Groups", `{`+groupSchema+`,"displayName":"eng","members":[{"value":"`+id+`"}]}`), 201).String("id")
	wantSCIM(t, "delete", call("DELETE", "/scim/v2/Users/"+id, ""), 204)

	r := wantSCIM(t, "the rehire", call("POST", "/scim/v2/Users", rae), 201)
	if r.String("id") != id || r.JSON["active"] != true {
		t.Fatalf("rehire: %s (want %s, active)", r.Raw, id)
	}
	r = wantSCIM(t, "lookup", call("GET", `/scim/v2/Users?filter=userName+eq+"rae@corp.example"`, ""), 200)
	if r.JSON["totalResults"] != 1.0 {
		t.Fatalf("the connection does not show her again: %s", r.Raw)
	}
	wantSCIM(t, "back in eng", call("PATCH", "/scim/v2/Groups/"+group, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"add","path":"members","value":[{"value":"`+id+`"}]}]}`), 204)
	u := in.Do("GET", "/api/v1/users/"+id, admin, nil)
	if u.JSON["active"] != true || !strings.Contains(string(u.Raw), `"editor"`) {
		t.Fatalf("rehired user: %s (want active, prod editor)", u.Raw)
	}
}
