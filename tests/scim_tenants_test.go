package tests

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/http/scim/scimtest"
)

// TestSCIMTenantScopedConnections: a connection sees only the users it
// provisions and the groups it pushed; it cannot adopt a user who holds
// anything outside its tenants, nor deactivate, rename or set the password
// of one who came to; its groups give roles in its own tenants only. Every
// refusal leaves the event store as it was.
func TestSCIMTenantScopedConnections(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	_, prod := newConnection(t, in, admin, admin, []string{"prod"}, mapping{"viewers", "prod", "viewer"})
	_, staging := newConnection(t, in, admin, admin, []string{"staging"}, mapping{"viewers", "staging", "viewer"}, mapping{"admins", "staging", "admin"})
	onProd := func(method, path, body string) Response { return scimCall(t, in, method, path, prod, body) }
	onStaging := func(method, path, body string) Response { return scimCall(t, in, method, path, staging, body) }

	pat := wantSCIM(t, "pat", onProd("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"pat","externalId":"00upat","password":"tangerine-sky-7"}`), 201).String("id")
	viewers := wantSCIM(t, "prod's viewers", onProd("POST", "/scim/v2/Groups", `{`+groupSchema+`,"displayName":"viewers","members":[{"value":"`+pat+`"}]}`), 201).String("id")
	sam := wantSCIM(t, "sam", onStaging("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"sam"}`), 201).String("id")
	if tenantRole(t, in, admin, pat, "prod") != "viewer" || tenantRole(t, in, admin, pat, "staging") != "" {
		t.Fatal("prod's group gives a role in prod only")
	}
	// A user outside both (created by an admin, a role in dev).
	dana := in.CreateUser(admin, "dana", "dana-passphrase-1", map[string]string{"dev": "editor"})

	seq := head(t, in)
	t.Run("other connections' users and groups are not there", func(t *testing.T) {
		for _, c := range []struct{ what, method, path, body string }{
			{"get", "GET", "/scim/v2/Users/" + pat, ""},
			{"put", "PUT", "/scim/v2/Users/" + pat, `{` + userSchema + `,"userName":"pat","active":false}`},
			{"patch", "PATCH", "/scim/v2/Users/" + pat, patchOps(`[{"op":"replace","path":"active","value":false}]`)},
			{"delete", "DELETE", "/scim/v2/Users/" + pat, ""},
			{"get a user created by an admin", "GET", "/scim/v2/Users/" + dana, ""},
			{"patch a user created by an admin", "PATCH", "/scim/v2/Users/" + dana, patchOps(`[{"op":"replace","path":"active","value":false}]`)},
			{"get group", "GET", "/scim/v2/Groups/" + viewers, ""},
			{"patch group", "PATCH", "/scim/v2/Groups/" + viewers, patchOps(`[{"op":"add","path":"members","value":[{"value":"` + sam + `"}]}]`)},
			{"put group", "PUT", "/scim/v2/Groups/" + viewers, `{` + groupSchema + `,"displayName":"viewers","members":[]}`},
			{"delete group", "DELETE", "/scim/v2/Groups/" + viewers, ""},
		} {
			wantSCIMError(t, "staging: "+c.what, onStaging(c.method, c.path, c.body), 404, "")
		}
		for _, q := range []string{"", "?filter=" + url.QueryEscape(`userName eq "pat"`), "?filter=" + url.QueryEscape(`externalId eq "00upat"`)} {
			r := wantSCIM(t, "staging lists users", onStaging("GET", "/scim/v2/Users"+q, ""), 200)
			if strings.Contains(string(r.Raw), pat) {
				t.Fatalf("staging's list %q shows prod's user: %s", q, r.Raw)
			}
		}
		if r := wantSCIM(t, "staging lists groups", onStaging("GET", "/scim/v2/Groups", ""), 200); r.JSON["totalResults"] != 0.0 {
			t.Fatalf("staging's groups: %s", r.Raw)
		}
		wantSCIMError(t, "prod's user in staging's group", onStaging("POST", "/scim/v2/Groups",
			`{`+groupSchema+`,"displayName":"admins","members":[{"value":"`+pat+`"}]}`), 400, "invalidValue")
	})
	t.Run("users outside its tenants are not adopted", func(t *testing.T) {
		for _, c := range []struct{ what, body string }{
			{"prod's user by userName", `{` + userSchema + `,"userName":"PAT"}`},
			{"prod's user by externalId", `{` + userSchema + `,"userName":"pat2","externalId":"00upat"}`},
			{"a user in dev", `{` + userSchema + `,"userName":"dana"}`},
			{"the platform admin", `{` + userSchema + `,"userName":"admin","password":"hijack-attempt-99"}`},
		} {
			wantSCIMError(t, "staging adopts "+c.what, onStaging("POST", "/scim/v2/Users", c.body), 409, "uniqueness")
		}
	})
	unchanged(t, in, seq, "a connection reaching outside its tenants")
	in.Login("pat", "tangerine-sky-7") // the password was not taken over

	t.Run("a user who came to hold more", func(t *testing.T) {
		// An admin gives pat a role outside prod: prod's connection may no
		// longer deactivate, delete, rename pat or set the password.
		expectStatus(t, "grant", in.Do("PUT", "/api/v1/users/"+pat+"/tenants/dev", admin, map[string]string{"role": "viewer"}), http.StatusOK)
		seq := head(t, in)
		for _, c := range []struct{ what, method, body string }{
			{"PATCH active:false", "PATCH", patchOps(`[{"op":"replace","value":{"active":false}}]`)},
			{"PUT active:false", "PUT", `{` + userSchema + `,"userName":"pat","externalId":"00upat","active":false}`},
			{"a password", "PATCH", patchOps(`[{"op":"replace","path":"password","value":"my-own-choice-42"}]`)},
			{"a new userName", "PATCH", patchOps(`[{"op":"replace","path":"userName","value":"patricia"}]`)},
			{"DELETE", "DELETE", ""},
		} {
			wantSCIMError(t, c.what, onProd(c.method, "/scim/v2/Users/"+pat, c.body), 403, "")
		}
		unchanged(t, in, seq, "changes to a user holding roles outside")
		// Its own tenants' roles still follow its groups; other attributes
		// still change.
		wantSCIM(t, "leave viewers", onProd("PATCH", "/scim/v2/Groups/"+viewers, patchOps(`[{"op":"remove","path":"members[value eq \"`+pat+`\"]"}]`)), 204)
		if tenantRole(t, in, admin, pat, "prod") != "" || tenantRole(t, in, admin, pat, "dev") != "viewer" {
			t.Fatal("leaving prod's group takes the prod role, and only that")
		}
		r := wantSCIM(t, "a display name", onProd("PATCH", "/scim/v2/Users/"+pat, patchOps(`[{"op":"replace","path":"displayName","value":"Pat"}]`)), 200)
		if r.String("displayName") != "Pat" {
			t.Fatalf("display name: %s", r.Raw)
		}
	})
	t.Run("group names map per connection", func(t *testing.T) {
		// staging's group named like prod's mapped one gives staging roles.
		wantSCIM(t, "staging's viewers", onStaging("POST", "/scim/v2/Groups", `{`+groupSchema+`,"displayName":"viewers","members":[{"value":"`+sam+`"}]}`), 201)
		if tenantRole(t, in, admin, sam, "staging") != "viewer" || tenantRole(t, in, admin, sam, "prod") != "" {
			t.Fatal("staging's viewers are staging viewers, not prod's")
		}
	})
}

// TestSCIMInAuditAndAccess: what a connection does is explained by the
// audit log and the access history: "removed by Okta provisioning at 09:14".
func TestSCIMInAuditAndAccess(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	conn, tok := newConnection(t, in, admin, admin, []string{"prod"}, mapping{"infracast-prod-admins", "prod", "admin"})
	call := func(method, path, body string) Response { return scimCall(t, in, method, path, tok, body) }
	id := wantSCIM(t, "user", call("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"leo","externalId":"00uleo"}`), 201).String("id")
	group := wantSCIM(t, "group", call("POST", "/scim/v2/Groups", `{`+groupSchema+`,"displayName":"infracast-prod-admins","members":[{"value":"`+id+`"}]}`), 201).String("id")

	// The access history: leo is admin in prod, granted by the connection.
	r := in.Do("GET", "/api/v1/users/"+id+"/access", admin, nil)
	expectStatus(t, "access", r, http.StatusOK)
	grant := at(r.JSON, "tenants", 0, "grants", 0)
	if at(r.JSON, "tenants", 0, "id") != "prod" || at(grant, "role") != "admin" || at(grant, "granted_by", "type") != "user.role_granted" ||
		at(grant, "granted_by", "actor", "type") != "scim" || at(grant, "granted_by", "actor", "id") != conn {
		t.Fatalf("access: %s", r.Raw)
	}
	before := in.Clock.Now()
	in.Clock.Advance(time.Minute)

	// Removed from the group: the audit log says by which connection, when.
	wantSCIM(t, "leave", call("PATCH", "/scim/v2/Groups/"+group, patchOps(`[{"op":"remove","path":"members[value eq \"`+id+`\"]"}]`)), 204)
	wantSCIM(t, "deactivate", call("PATCH", "/scim/v2/Users/"+id, patchOps(`[{"op":"replace","path":"active","value":false}]`)), 200)
	r = in.Do("GET", "/api/v1/audit/events?actor="+conn+"&subject="+id, admin, nil)
	expectStatus(t, "audit", r, http.StatusOK)
	var types []string
	for _, e := range r.JSON["events"].([]any) {
		types = append(types, at(e, "type").(string))
		if at(e, "actor", "type") != "scim" || at(e, "actor", "id") != conn || at(e, "time") == nil {
			t.Fatalf("audit event: %v", e)
		}
		if at(e, "type") == "user.role_revoked" && (at(e, "data", "tenant") != "prod" || !strings.Contains(strings.Join(scimtest.Strings(at(e, "tenants")), ","), "prod")) {
			t.Fatalf("revocation: %v", e)
		}
	}
	if strings.Join(types, " ") != "user.created user.role_granted user.role_revoked user.deactivated" &&
		strings.Join(types, " ") != "user.deactivated user.role_revoked user.role_granted user.created" {
		t.Fatalf("the connection's events on leo: %v", types)
	}
	// Now: no access; at the moment before, admin in prod by the connection.
	if r = in.Do("GET", "/api/v1/users/"+id+"/access", admin, nil); len(asList(r.JSON["tenants"])) != 0 {
		t.Fatalf("access now: %s", r.Raw)
	}
	r = in.Do("GET", "/api/v1/users/"+id+"/access?at="+url.QueryEscape(before.Format(time.RFC3339Nano)), admin, nil)
	if at(r.JSON, "tenants", 0, "grants", 0, "granted_by", "actor", "id") != conn {
		t.Fatalf("access before: %s", r.Raw)
	}
	// The connection's own record is in the log too (platform only).
	r = in.Do("GET", "/api/v1/audit/events?type=scim.", admin, nil)
	if len(asList(r.JSON["events"])) < 3 {
		t.Fatalf("scim.* events: %s", r.Raw)
	}
}

// TestSCIMAdoptionAppliesMappings: a user the connection adopts (found by
// userName) holds, from the adoption's answer on, what the connection's
// groups give in the tenants its mappings govern — none before a group has
// them as a member, whatever an admin had granted there — while roles in
// the connection's other tenants stay; a group then gives its role.
func TestSCIMAdoptionAppliesMappings(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	_, tok := newConnection(t, in, admin, admin, []string{"prod", "staging", "dev"},
		mapping{"viewers", "prod", "viewer"}, mapping{"admins", "staging", "admin"})
	alice := in.CreateUser(admin, "alice", "alice-passphrase-1", map[string]string{"prod": "admin", "staging": "editor", "dev": "viewer"})
	aliceToken := in.Login("alice", "alice-passphrase-1").String("token")
	readsProd := func() int {
		return gwRaw(t, in, "GET", "/api/v1/auth/verify", [][2]string{bearerHeader(aliceToken),
			{"X-Original-Method", "GET"}, {"X-Original-URI", "/api/v1/tenants/prod/nodes"}}).Status
	}
	if st := readsProd(); st != http.StatusOK {
		t.Fatalf("alice reads prod before: %d", st)
	}

	got := wantSCIM(t, "adopt alice", scimCall(t, in, "POST", "/scim/v2/Users", tok, `{`+userSchema+`,"userName":"alice"}`), 201).String("id")
	if got != alice {
		t.Fatalf("adopted %s, want alice %s", got, alice)
	}
	for tenant, want := range map[string]string{"prod": "", "staging": "", "dev": "viewer"} {
		if role := tenantRole(t, in, admin, alice, tenant); role != want {
			t.Errorf("after the adoption alice is %q in %s, want %q", role, tenant, want)
		}
	}
	// Her token from before acts on the roles as they are now.
	if st := readsProd(); st != http.StatusForbidden {
		t.Errorf("alice reads prod after the adoption: %d, want 403", st)
	}

	wantSCIM(t, "admins", scimCall(t, in, "POST", "/scim/v2/Groups", tok, `{`+groupSchema+`,"displayName":"admins","members":[{"value":"`+alice+`"}]}`), 201)
	if role := tenantRole(t, in, admin, alice, "staging"); role != "admin" {
		t.Errorf("in admins, alice is %q in staging, want admin", role)
	}
}
