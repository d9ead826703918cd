package tests

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestOffboardTenant follows docs/operations.md "Offboarding a tenant" step
// by step, through the API the CLI commands it names call, on a tenant with
// admins (one also of another tenant), users, a key of its own and one
// naming another tenant too, a SCIM connection whose group gives a role, an
// OpenID Connect provider whose group gives a role, and an MFA policy. After
// it nothing acts in the tenant — a scoped token, a refresh, a key, an SSO
// login, a SCIM push — also once a new customer's admin is given the name
// (which the page forbids, and this shows what it would and would not
// bring), and the other tenant is as it was (outside check 20t: the docs had
// no procedure, and the natural order half-applied).
func TestOffboardTenant(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	const acme, globex, nodes = "acme", "globex", "/api/v1/tenants/acme/nodes"
	okIn := func(what, cred, tenant string) {
		t.Helper()
		expectStatus(t, what, verify(t, in, cred, "GET", "/api/v1/tenants/"+tenant+"/nodes"), http.StatusOK)
	}
	noneIn := func(what, cred string) {
		t.Helper()
		if r := verify(t, in, cred, "GET", nodes); r.Status == http.StatusOK {
			t.Errorf("%s still acts in acme: %d %s", what, r.Status, r.Raw)
		}
	}

	// The tenant as a customer left it.
	acmeAdmin := in.CreateUser(admin, "acme-admin", "tangerine-sky-41", map[string]string{acme: "admin"})
	acmeDev := in.CreateUser(admin, "acme-dev", "copper-river-82", map[string]string{acme: "editor"})
	both := in.CreateUser(admin, "both", "violet-harbor-93", map[string]string{acme: "admin", globex: "admin"})
	globexAdmin := in.CreateUser(admin, "globex-admin", "granite-meadow-17", map[string]string{globex: "admin"})
	acmeAdminTok := in.Login("acme-admin", "tangerine-sky-41").String("token")
	bothTok := in.Login("both", "violet-harbor-93").String("token")
	acmeKey := expectOK(t, "acme's key", in.Do("POST", "/api/v1/api-keys", acmeAdminTok,
		map[string]any{"name": "acme-ci", "tenants": []string{acme}, "permissions": []string{"nodes:read"}}), http.StatusCreated)
	multiKey := expectOK(t, "a key naming acme and globex", in.Do("POST", "/api/v1/api-keys", bothTok,
		map[string]any{"name": "both-ci", "tenants": []string{acme, globex}, "permissions": []string{"nodes:read"}}), http.StatusCreated)
	scoped := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "acme-dev", "password": "copper-river-82", "tenant": acme})
	expectStatus(t, "a token scoped to acme", scoped, http.StatusOK)
	// SCIM: a connection over acme whose group gives its members a role.
	scimID, scimTok := newConnection(t, in, admin, admin, []string{acme}, mapping{"acme-eng", acme, "editor"})
	scimPat := wantSCIM(t, "pat", scimCall(t, in, "POST", "/scim/v2/Users", scimTok, `{`+userSchema+`,"userName":"scim-pat"}`), http.StatusCreated).String("id")
	wantSCIM(t, "acme-eng", scimCall(t, in, "POST", "/scim/v2/Groups", scimTok,
		`{`+groupSchema+`,"displayName":"acme-eng","members":[{"value":"`+scimPat+`"}]}`), http.StatusCreated)
	// SSO: an OpenID Connect provider whose groups give acme and globex.
	configureOIDC(t, in, admin, "oidc", "corp", alice(), map[string]any{"role_mappings": []map[string]string{
		{"group": "infra-admins", "tenant": acme, "role": "admin"}, {"group": "everyone", "tenant": globex, "role": "viewer"},
	}})
	ssoLogin := func(what string) Response {
		t.Helper()
		r := newBrowser(t).get(in.URL + "/api/v1/auth/sso/corp/login")
		expectStatus(t, what, r, http.StatusOK)
		return r
	}
	aliceID := ssoLogin("alice's SSO login").JSON["user"].(map[string]any)["id"].(string)
	for what, cred := range map[string]string{"acme's admin": acmeAdminTok, "acme's key": acmeKey.String("key"), "the key naming acme": multiKey.String("key"),
		"the scoped token": scoped.String("token")} {
		okIn(what+" before", cred, acme)
	}
	if tenantRole(t, in, admin, scimPat, acme) != "editor" || tenantRole(t, in, admin, aliceID, acme) != "admin" {
		t.Fatal("fixture: SCIM's and SSO's roles in acme")
	}
	// A platform admin's key for every tenant: acme's access lists it
	// (via api_key) before and after, and step 0's keys query shows it.
	star := expectOK(t, "a platform admin's * key", in.Do("POST", "/api/v1/api-keys", admin,
		map[string]any{"name": "ops-all", "tenants": []string{"*"}, "permissions": []string{"admin:*"}}), http.StatusCreated)
	// Last: a policy over acme (the logins above would need a factor).
	expectStatus(t, "acme's MFA policy", in.Do("PUT", "/api/v1/admin/mfa/policy/acme", admin, map[string]bool{"required": true}), http.StatusOK)

	// 0. The inventory, before anything changes.
	var users, adminsOf []string
	onlyAcme := map[string]bool{}
	for _, u := range asList(expectOK(t, "users", in.Do("GET", "/api/v1/users", admin, nil), http.StatusOK).JSON["users"]) {
		var tenants []string
		role := ""
		for _, tr := range asList(at(u, "tenants")) {
			tenants = append(tenants, at(tr, "id").(string))
			if at(tr, "id") == acme {
				role = at(tr, "role").(string)
			}
		}
		if role == "" {
			continue
		}
		id := at(u, "id").(string)
		users = append(users, id)
		onlyAcme[id] = len(tenants) == 1
		if role == "admin" {
			adminsOf = append(adminsOf, id)
		}
	}
	// Step 0's keys query: those naming acme, and those for every tenant
	// (step 4 revokes the former).
	var keyIDs, starKeys []string
	for _, k := range asList(expectOK(t, "keys", in.Do("GET", "/api/v1/api-keys", admin, nil), http.StatusOK).JSON["api_keys"]) {
		switch tenants := strs(at(k, "tenants")); {
		case at(k, "revoked") == true:
		case slices.Contains(tenants, acme):
			keyIDs = append(keyIDs, at(k, "id").(string))
		case slices.Contains(tenants, "*"):
			starKeys = append(starKeys, at(k, "id").(string))
		}
	}
	if !slices.Equal(starKeys, []string{star.String("id")}) {
		t.Fatalf("inventory: keys for every tenant %v, want the platform admin's", starKeys)
	}
	scims := acmeSCIMConnections(t, in, admin)
	providers := acmeSSOProviders(t, in, admin)
	slices.Sort(users)
	slices.Sort(adminsOf)
	if want := sorted(acmeAdmin, acmeDev, both, scimPat, aliceID); !slices.Equal(users, want) {
		t.Fatalf("inventory: users %v, want %v", users, want)
	}
	if !slices.Equal(adminsOf, sorted(acmeAdmin, aliceID, both)) || len(keyIDs) != 2 || !slices.Equal(scims, []string{scimID}) || !slices.Equal(providers, []string{"corp"}) {
		t.Fatalf("inventory: admins %v, keys %v, SCIM %v, SSO %v", adminsOf, keyIDs, scims, providers)
	}

	// A hostile acme admin makes another admin after the inventory.
	sleeper := expectOK(t, "acme's admin makes another", in.Do("POST", "/api/v1/users", acmeAdminTok, map[string]any{
		"username": "sleeper", "email": "sleeper@example.com", "password": "quiet-harbor-64", "tenants": []map[string]string{{"id": acme, "role": "admin"}},
	}), http.StatusCreated).String("id")

	// 1. The tenant's admins first: asked for again before each round and
	// after it, until none are left (the page's loop).
	removed := map[string]bool{}
	for round := 0; ; round++ {
		current := acmeAdminsNow(t, in, admin)
		if len(current) == 0 {
			break
		}
		if round > 3 {
			t.Fatalf("acme's admins after %d rounds: %v", round, current)
		}
		for _, id := range current {
			removed[id] = true
			expectStatus(t, "remove an admin's role", in.Do("DELETE", "/api/v1/users/"+id+"/tenants/acme", admin, nil), http.StatusOK)
			expectStatus(t, "revoke an admin's sessions", in.Do("DELETE", "/api/v1/users/"+id+"/sessions", admin, nil), http.StatusOK)
		}
	}
	if !removed[sleeper] || len(removed) != len(adminsOf)+1 {
		t.Fatalf("step 1 removed %v; the inventory's admins %v and the one made since, %s", removed, adminsOf, sleeper)
	}
	noneIn("acme's admin, its role removed", acmeAdminTok)
	// The one made since is no acme user any more (its only role was
	// admin): deactivated with the others of acme alone (step 5).
	users, onlyAcme[sleeper] = append(users, sleeper), true
	// 2. SCIM: the mapping removed (its roles revoked), then the connection.
	expectStatus(t, "SCIM: PUT without the mapping", in.Do("PUT", "/api/v1/admin/scim/"+scimID, admin, map[string]any{"group_mappings": []any{}}), http.StatusOK)
	if tenantRole(t, in, admin, scimPat, acme) != "" {
		t.Fatal("the SCIM mapping's role outlived the PUT")
	}
	expectStatus(t, "SCIM: DELETE", in.Do("DELETE", "/api/v1/admin/scim/"+scimID, admin, nil), http.StatusNoContent)
	// 3. SSO: the page's own command (GET, jq, POST), run by bash as
	// written: the provider again without acme's mapping, the secret kept.
	saved := runDocsBlock(t, "../docs/operations.md", "3. **SSO providers**", "TOKEN="+admin, "BASE="+in.URL)
	var answer map[string]any
	if err := json.Unmarshal([]byte(saved), &answer); err != nil || answer["name"] != "corp" || answer["client_secret"] != "[redacted]" {
		t.Fatalf("step 3's command answered: %s (%v)", saved, err)
	}
	for _, m := range asList(answer["role_mappings"]) {
		if at(m, "tenant") == acme {
			t.Fatalf("step 3's command kept acme's mapping: %s", saved)
		}
	}
	// 4. Keys.
	for _, id := range keyIDs {
		expectStatus(t, "revoke a key", in.Do("DELETE", "/api/v1/api-keys/"+id, admin, nil), http.StatusNoContent)
	}
	// 5. Every other role, sessions, and the users of acme alone deactivated.
	for _, id := range users {
		expectStatus(t, "remove a role", in.Do("DELETE", "/api/v1/users/"+id+"/tenants/acme", admin, nil), http.StatusOK)
		expectStatus(t, "revoke sessions", in.Do("DELETE", "/api/v1/users/"+id+"/sessions", admin, nil), http.StatusOK)
		if onlyAcme[id] {
			expectStatus(t, "deactivate", in.Do("POST", "/api/v1/users/"+id+"/deactivate", admin, nil), http.StatusOK)
		}
	}
	// 6. The MFA policy.
	expectStatus(t, "reset acme's MFA policy", in.Do("PUT", "/api/v1/admin/mfa/policy/acme", admin, map[string]bool{"required": false}), http.StatusOK)
	// 7. Verify.
	starListed := false
	for _, pr := range asList(expectOK(t, "acme's access", in.Do("GET", "/api/v1/tenants/acme/access", admin, nil), http.StatusOK).JSON["principals"]) {
		for _, g := range asList(at(pr, "grants")) {
			switch {
			case at(g, "via") == "platform_admin":
			case at(g, "via") == "api_key" && at(at(g, "owner_grant"), "via") == "platform_admin" && at(pr, "id") == star.String("id"):
				starListed = true
			default:
				t.Errorf("acme's access after offboarding: %v", pr)
			}
		}
	}
	if !starListed {
		t.Error("acme's access after offboarding does not list the platform admin's * key (step 7 says it does)")
	}
	if s, p := acmeSCIMConnections(t, in, admin), acmeSSOProviders(t, in, admin); len(s)+len(p) != 0 {
		t.Errorf("re-granters left: SCIM %v, SSO %v", s, p)
	}
	if pol := in.Do("GET", "/api/v1/admin/mfa/policy/acme", admin, nil); pol.JSON["required"] != false {
		t.Errorf("acme's MFA policy: %s", pol.Raw)
	}

	// Nothing acts in acme: the scoped token and its refresh, the keys,
	// an SSO login (which re-grants nothing), a SCIM push (the token is
	// dead).
	noneIn("the scoped token", scoped.String("token"))
	if r := refresh(t, in, scoped.String("refresh_token")); r.Status == http.StatusOK {
		noneIn("a token refreshed from the scoped session", r.String("token"))
	}
	noneIn("acme's key", acmeKey.String("key"))
	noneIn("the key naming acme and globex", multiKey.String("key"))
	again := ssoLogin("alice's SSO login after offboarding")
	noneIn("alice's SSO token", again.String("token"))
	if tenantRole(t, in, admin, aliceID, acme) != "" || tenantRole(t, in, admin, aliceID, globex) != "viewer" {
		t.Error("the SSO login re-granted acme, or lost globex")
	}
	if r := scimCall(t, in, "PATCH", "/scim/v2/Groups/x", scimTok, patchOps(`[{"op":"add","path":"members","value":[{"value":"`+scimPat+`"}]}]`)); r.Status != http.StatusUnauthorized {
		t.Errorf("a SCIM push after offboarding: %d %s", r.Status, r.Raw)
	}
	// The other tenant is as it was: its admin, the shared user's role, and
	// the owner's key re-issued for globex alone.
	okIn("globex's admin", in.Login("globex-admin", "granite-meadow-17").String("token"), globex)
	if tenantRole(t, in, admin, both, globex) != "admin" || tenantRole(t, in, admin, globexAdmin, globex) != "admin" {
		t.Error("globex's roles changed")
	}
	bothTok = in.Login("both", "violet-harbor-93").String("token")
	reissued := expectOK(t, "the key re-issued for globex", in.Do("POST", "/api/v1/api-keys", bothTok,
		map[string]any{"name": "both-ci-globex", "tenants": []string{globex}, "permissions": []string{"nodes:read"}}), http.StatusCreated)
	okIn("the re-issued key", reissued.String("key"), globex)

	// What the page forbids — the name given to a new customer — would not
	// bring the old one's people or credentials back either.
	in.CreateUser(admin, "new-acme-admin", "amber-lantern-55", map[string]string{acme: "admin"})
	newAdmin := in.Login("new-acme-admin", "amber-lantern-55").String("token")
	for _, id := range []string{acmeDev, scimPat} {
		if r := in.Do("POST", "/api/v1/users/"+id+"/activate", newAdmin, nil); r.Status == http.StatusOK {
			t.Errorf("the new admin activated an old user: %s", r.Raw)
		}
	}
	expectStatus(t, "the shared user given acme again", in.Do("PUT", "/api/v1/users/"+both+"/tenants/acme", admin, map[string]string{"role": "editor"}), http.StatusOK)
	noneIn("the revoked key naming acme, its owner in acme again", multiKey.String("key"))
	noneIn("the scoped token, with acme in use again", scoped.String("token"))
}

// expectOK checks r's status and returns it.
func expectOK(t *testing.T, what string, r Response, status int) Response {
	t.Helper()
	expectStatus(t, what, r, status)
	return r
}

// acmeSCIMConnections: step 0's query, the SCIM connections over acme or
// with a mapping to it.
func acmeSCIMConnections(t *testing.T, in *Instance, admin string) []string {
	t.Helper()
	var out []string
	for _, c := range asList(in.Do("GET", "/api/v1/admin/scim", admin, nil).JSON["connections"]) {
		hit := slices.Contains(strs(at(c, "tenants")), "acme")
		for _, m := range asList(at(c, "group_mappings")) {
			hit = hit || at(m, "tenant") == "acme"
		}
		if hit {
			out = append(out, at(c, "id").(string))
		}
	}
	return out
}

// acmeSSOProviders: step 0's query, the SSO providers with a role mapping
// to acme.
func acmeSSOProviders(t *testing.T, in *Instance, admin string) []string {
	t.Helper()
	var out []string
	for _, p := range asList(in.Do("GET", "/api/v1/admin/sso", admin, nil).JSON["providers"]) {
		for _, m := range asList(at(p, "role_mappings")) {
			if at(m, "tenant") == "acme" {
				out = append(out, at(p, "name").(string))
				break
			}
		}
	}
	return out
}

// runDocsBlock runs with bash, as written, the first sh block of the page
// at path after the line starting with after (its list indentation
// removed), with env added and a folder of its own, and returns its output.
func runDocsBlock(t *testing.T, path, after string, env ...string) string {
	t.Helper()
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			missingTool(t, tool)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := string(raw)
	i := strings.Index(page, "\n"+after)
	if i < 0 {
		t.Fatalf("%s: no line starting with %q", path, after)
	}
	rest := page[i:]
	start := strings.Index(rest, "```sh\n")
	if start < 0 {
		t.Fatalf("%s: no sh block after %q", path, after)
	}
	rest = rest[start+len("```sh\n"):]
	end := strings.Index(rest, "```")
	if end < 0 {
		t.Fatalf("%s: the sh block after %q does not end", path, after)
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for _, l := range strings.Split(rest[:end], "\n") {
		script.WriteString(strings.TrimPrefix(l, "   ") + "\n")
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s, the block after %q: %v\n%s", path, after, err, out)
	}
	return string(out)
}

// acmeAdminsNow: step 1's query, the users whose role in acme is admin now.
func acmeAdminsNow(t *testing.T, in *Instance, admin string) []string {
	t.Helper()
	var out []string
	for _, u := range asList(expectOK(t, "users", in.Do("GET", "/api/v1/users", admin, nil), http.StatusOK).JSON["users"]) {
		for _, tr := range asList(at(u, "tenants")) {
			if at(tr, "id") == "acme" && at(tr, "role") == "admin" {
				out = append(out, at(u, "id").(string))
			}
		}
	}
	return out
}
