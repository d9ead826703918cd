package tests

import (
	"net/http"
	"strings"
	"testing"
)

// The update path's takeover, what a tenant connection learns, and one
// externalId per connection (re-check 19r2; scim.md, "Which user a SCIM
// user is").

// TestSCIMOktaReassignOfDeactivatedUserIsRefused: Okta deactivates the
// departed jdoe (PATCH active false) and never deletes them; the new hire
// given the name is a 409 on create (the connection shows the user), Okta
// finds the inactive resource by its userName and PUTs the new hire's
// externalId with active: true. That is 409 uniqueness with a detail that
// names the ways out, and nothing changes: the account stays inactive and
// the old password signs nobody in. Before, it answered 200: the departed
// person's account active again for the new hire, their password and
// identity still working. If it is the same person, an administrator
// activates the account and the same PUT goes through.
func TestSCIMOktaReassignOfDeactivatedUserIsRefused(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	old := testOIDCUser{Subject: "00u-OLD", Email: "jdoe@corp.example", EmailVerified: true, Username: "jdoe@corp.example"}
	configureOIDC(t, in, admin, "okta", "okta", old, nil)
	r := in.Do("POST", "/api/v1/admin/scim", admin, map[string]any{"provider": "okta", "tenants": []string{"prod"},
		"group_mappings": []map[string]string{{"group": "eng", "tenant": "prod", "role": "editor"}}})
	expectStatus(t, "connection", r, http.StatusCreated)
	tok := r.String("token")
	call := func(method, path, body string) Response { return scimCall(t, in, method, path, tok, body) }
	const oldPW = "old-person-secret-77"
	id := wantSCIM(t, "create jdoe", call("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"jdoe@corp.example","externalId":"00u-OLD",
		"password":"`+oldPW+`","active":true}`), 201).String("id")
	wantSCIM(t, "deactivate jdoe", call("PATCH", "/scim/v2/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","value":{"active":false}}]}`), 200)
	wantSCIMError(t, "the new hire's create", call("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"jdoe@corp.example","externalId":"00u-NEW","active":true}`),
		http.StatusConflict, "uniqueness")

	seq := head(t, in)
	reassign := `{` + userSchema + `,"userName":"jdoe@corp.example","externalId":"00u-NEW","active":true}`
	r = call("PUT", "/scim/v2/Users/"+id, reassign)
	wantSCIMError(t, "the PUT giving the account to the new hire", r, http.StatusConflict, "uniqueness")
	d := r.String("detail")
	if !strings.Contains(d, "POST /api/v1/users/{id}/activate") || !strings.Contains(d, "another userName") {
		t.Errorf("the 409's detail names no way out: %q", d)
	}
	if strings.Contains(d, id) || strings.Contains(d, "jdoe") || strings.Contains(d, "00u-") {
		t.Errorf("the 409's detail carries user data: %q", d)
	}
	unchanged(t, in, seq, "the refused PUT")
	if u := in.Do("GET", "/api/v1/users/"+id, admin, nil); u.JSON["active"] != false {
		t.Fatalf("the departed person's account after the refused PUT: %s", u.Raw)
	}
	if lr := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "jdoe@corp.example", "password": oldPW}); lr.Status == http.StatusOK {
		t.Fatal("the departed person's old password signs in")
	}
	// The same PATCHed instead of PUT: refused alike.
	seq = head(t, in) // after the login's failure
	r = call("PATCH", "/scim/v2/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","value":{"externalId":"00u-NEW","active":true}}]}`)
	wantSCIMError(t, "the PATCH giving the account to the new hire", r, http.StatusConflict, "uniqueness")
	unchanged(t, in, seq, "the refused PATCH")

	// The way out when it is the same person: an administrator activates
	// the account; an active user's new externalId is their new key.
	expectStatus(t, "activate", in.Do("POST", "/api/v1/users/"+id+"/activate", admin, nil), http.StatusOK)
	r = wantSCIM(t, "the PUT once the account is active", call("PUT", "/scim/v2/Users/"+id, reassign), 200)
	if r.String("externalId") != "00u-NEW" || r.JSON["active"] != true {
		t.Fatalf("after the PUT: %s", r.Raw)
	}
}

// TestSCIMTenantConnectionLearnsNothingOfUsersOutsideItsTenants: a tenant
// connection over prod creates the names of a deactivated user in no
// tenant (ghost) and of a user another tenant's connection provisioned and
// deleted (devguy, in no tenant since): both are the plain 409, without
// "deactivated". Before, Within (true of a user in no tenant) let the
// detail tell the tenant admin's IdP the state of users it has no view of
// (re-check 19r2, D3).
func TestSCIMTenantConnectionLearnsNothingOfUsersOutsideItsTenants(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	in.CreateUser(admin, "tadmin", "tadmin-passphrase", map[string]string{"prod": "admin"})
	ta := in.Login("tadmin", "tadmin-passphrase").String("token")
	ghost := in.CreateUser(admin, "ghost", "ghost-passphrase-1", nil)
	expectStatus(t, "deactivate ghost", in.Do("POST", "/api/v1/users/"+ghost+"/deactivate", admin, map[string]string{"reason": "left"}), http.StatusOK)
	_, tok := newConnection(t, in, admin, ta, []string{"prod"}, mapping{"eng", "prod", "editor"})

	in.CreateUser(admin, "dadmin", "dadmin-passphrase", map[string]string{"dev": "admin"})
	da := in.Login("dadmin", "dadmin-passphrase").String("token")
	_, dtok := newConnection(t, in, admin, da, []string{"dev"}, mapping{"deveng", "dev", "editor"})
	dev := wantSCIM(t, "dev create", scimCall(t, in, "POST", "/scim/v2/Users", dtok, `{`+userSchema+`,"userName":"devguy","externalId":"d1","active":true}`), 201).String("id")
	wantSCIM(t, "dev group", scimCall(t, in, "POST", "/scim/v2/Groups", dtok, `{`+groupSchema+`,"displayName":"deveng","members":[{"value":"`+dev+`"}]}`), 201)
	wantSCIM(t, "dev delete", scimCall(t, in, "DELETE", "/scim/v2/Users/"+dev, dtok, ""), 204)

	for _, name := range []string{"ghost", "devguy"} {
		seq := head(t, in)
		r := scimCall(t, in, "POST", "/scim/v2/Users", tok, `{`+userSchema+`,"userName":"`+name+`","externalId":"x-`+name+`","active":true}`)
		wantSCIMError(t, "prod's create of "+name, r, http.StatusConflict, "uniqueness")
		if d := r.String("detail"); strings.Contains(d, "deactivated") || strings.Contains(d, "SSO identity") {
			t.Errorf("the tenant connection learns of %s: %q", name, d)
		}
		unchanged(t, in, seq, "the refused create of "+name)
	}
}

// TestSCIMTenantConnectionOneUserPerExternalID: a tenant connection's
// create of an externalId it provisions already, under another userName,
// is 409 uniqueness and changes nothing, as a platform connection's is.
// Before, it made a second user with the same externalId (re-check 19r2).
func TestSCIMTenantConnectionOneUserPerExternalID(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	in.CreateUser(admin, "tadmin", "tadmin-passphrase", map[string]string{"prod": "admin"})
	ta := in.Login("tadmin", "tadmin-passphrase").String("token")
	_, tok := newConnection(t, in, admin, ta, []string{"prod"}, mapping{"eng", "prod", "editor"})
	wantSCIM(t, "create", scimCall(t, in, "POST", "/scim/v2/Users", tok, `{`+userSchema+`,"userName":"rae@corp.example","externalId":"00u-rae","active":true}`), 201)
	seq := head(t, in)
	wantSCIMError(t, "the same externalId under another name", scimCall(t, in, "POST", "/scim/v2/Users", tok,
		`{`+userSchema+`,"userName":"rae.b@corp.example","externalId":"00u-rae","active":true}`), http.StatusConflict, "uniqueness")
	unchanged(t, in, seq, "the refused create")
}
