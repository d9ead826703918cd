package tests

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	ihttp "github.com/infracast/auth/http"
)

// TestSCIMTenantConnectionTakesNoAccount replays an outside check's chains
// by which a tenant admin (of acme only) got an account it holds the
// password of signed in as someone's SSO identity — with the admin role in
// beta that the identity provider's groups bring — or took over a user of
// its tenant:
//
//   - its SCIM connection pushed a password for a user it created, or
//     adopted (the password endpoint refuses a tenant admin);
//   - it created a user with a password it knows through the REST API, and
//     its connection adopted it with the SSO identity as externalId: the
//     identity was linked to that user;
//   - its connection created a user with the SSO identity as externalId:
//     the identity was linked to it (the connection could name anyone's);
//   - it created a user with the identity's e-mail address: the SSO login
//     linked by e-mail to it (link_by_email), or, with the real owner's
//     account holding the address too, to nobody.
//
// A tenant admin's connection is a tenant connection: no password, no
// identity linked, no address vouched for; an
// address a tenant admin sets links nothing. A platform connection is made
// and managed by platform admins only.
func TestSCIMTenantConnectionTakesNoAccount(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	configureOIDC(t, in, admin, "oidc", "corp", testOIDCUser{
		Subject: "carol-sub", Email: "carol@corp.example", EmailVerified: true, Username: "carol", Groups: []string{"beta-admins"},
	}, map[string]any{"link_by_email": true, "role_mappings": []map[string]string{{"group": "beta-admins", "tenant": "beta", "role": "admin"}}})
	in.CreateUser(admin, "tadmin", "tadmin-passphrase", map[string]string{"acme": "admin"})
	tadmin := in.Login("tadmin", "tadmin-passphrase").String("token")
	// Carol's own account, made by a platform admin with her address.
	carol := createUser(t, in, admin, "carol", "carol@corp.example", map[string]string{"acme": "viewer"})

	expectBody(t, "a tenant admin asking for a platform connection",
		in.Do("POST", "/api/v1/admin/scim", tadmin, map[string]any{"provider": "corp", "tenants": []string{"acme"}, "platform": true}), 403,
		`{"error":{"code":"FORBIDDEN","message":"Only a platform admin makes a platform SCIM connection (platform: true)"}}`)
	r := in.Do("POST", "/api/v1/admin/scim", tadmin, map[string]any{"provider": "corp", "tenants": []string{"acme"}})
	expectStatus(t, "tenant connection", r, http.StatusCreated)
	if r.JSON["platform"] != false {
		t.Fatalf("a tenant admin's connection: %s", r.Raw)
	}
	connID, tok := r.String("id"), r.String("token")
	expectError(t, "the tenant connection made a platform one", in.Do("PUT", "/api/v1/admin/scim/"+connID, tadmin, map[string]any{"platform": true}),
		http.StatusForbidden, "FORBIDDEN")

	// No password: neither for a user it creates nor for one it adopts.
	in.CreateUser(tadmin, "acmeonly", "acmeonly-passphrase", map[string]string{"acme": "editor"})
	before := head(t, in)
	wantSCIMError(t, "a new user with a password", scimCall(t, in, "POST", "/scim/v2/Users", tok,
		`{`+userSchema+`,"userName":"ghost","password":"Ghost-chosen-pass-2468","active":true}`), 400, "invalidValue")
	wantSCIMError(t, "an adopted user with a password", scimCall(t, in, "POST", "/scim/v2/Users", tok,
		`{`+userSchema+`,"userName":"acmeonly","password":"Adopted-pass-88123","active":true}`), 400, "invalidValue")
	if h := head(t, in); h != before {
		t.Fatalf("refused SCIM passwords appended %d events", h-before)
	}
	adopted := wantSCIM(t, "adopted without a password", scimCall(t, in, "POST", "/scim/v2/Users", tok,
		`{`+userSchema+`,"userName":"acmeonly","active":true}`), 201)
	wantSCIMError(t, "a password for the adopted user", scimCall(t, in, "PATCH", "/scim/v2/Users/"+adopted.String("id"), tok,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"password":"Adopted-pass-88123"}}]}`), 400, "invalidValue")
	expectStatus(t, "acmeonly's own password", in.Login("acmeonly", "acmeonly-passphrase"), http.StatusOK)

	// A user tadmin knows the password of, adopted with Carol's SSO
	// subject as externalId, and another with her address.
	trap := createUser(t, in, tadmin, "carol-trap", "trap@example.com", map[string]string{"acme": "viewer"})
	wantSCIM(t, "adopted with carol's subject", scimCall(t, in, "POST", "/scim/v2/Users", tok,
		`{`+userSchema+`,"userName":"carol-trap","externalId":"carol-sub","active":true}`), 201)
	mailTrap := createUser(t, in, tadmin, "mail-trap", "carol@corp.example", map[string]string{"acme": "viewer"})
	// And a user a connection creates, named after Carol's identity (an
	// outside check: her login then signed in as it, with the roles her
	// groups give) — through another of tadmin's connections: one
	// connection provisions one user per externalId (re-check 19r2).
	wantSCIMError(t, "a second user for carol's subject", scimCall(t, in, "POST", "/scim/v2/Users", tok,
		`{`+userSchema+`,"userName":"carol-shadow","externalId":"carol-sub","active":true}`), http.StatusConflict, "uniqueness")
	r = in.Do("POST", "/api/v1/admin/scim", tadmin, map[string]any{"provider": "corp", "tenants": []string{"acme"}})
	expectStatus(t, "another tenant connection", r, http.StatusCreated)
	shadow := wantSCIM(t, "created with carol's subject", scimCall(t, in, "POST", "/scim/v2/Users", r.String("token"),
		`{`+userSchema+`,"userName":"carol-shadow","externalId":"carol-sub","active":true}`), 201).String("id")

	// Carol signs in through SSO: her own account, not a trap.
	login := newBrowser(t).get(in.URL + "/api/v1/auth/sso/corp/login")
	mustStatus(t, login, http.StatusOK, "carol's SSO login")
	if u, _ := login.JSON["user"].(map[string]any); u["id"] != carol {
		t.Fatalf("carol's SSO login signed in as %v (carol %s, carol-trap %s, mail-trap %s, carol-shadow %s)", u["id"], carol, trap, mailTrap, shadow)
	}
	for _, name := range []string{"carol-trap", "mail-trap"} {
		m := me(t, in, in.Login(name, name+"-passphrase").String("token"))
		if ts, _ := m.JSON["tenants"].([]any); len(ts) != 1 {
			t.Fatalf("%s after carol's login: %s", name, m.Raw)
		}
	}

	// A platform admin's connection is a platform one, out of tadmin's reach.
	pr := in.Do("POST", "/api/v1/admin/scim", admin, map[string]any{"provider": "corp", "tenants": []string{"acme"}})
	expectStatus(t, "platform connection", pr, http.StatusCreated)
	if pr.JSON["platform"] != true {
		t.Fatalf("a platform admin's connection: %s", pr.Raw)
	}
	pid := pr.String("id")
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/admin/scim/" + pid}, {"PUT", "/api/v1/admin/scim/" + pid}, {"POST", "/api/v1/admin/scim/" + pid + "/rotate"}, {"DELETE", "/api/v1/admin/scim/" + pid},
	} {
		expectError(t, "tadmin: "+c.method+" "+c.path, in.Do(c.method, c.path, tadmin, map[string]any{"tenants": []string{"acme"}}), http.StatusNotFound, "NOT_FOUND")
	}
	if l := in.Do("GET", "/api/v1/admin/scim", tadmin, nil); len(l.JSON["connections"].([]any)) != 2 { // its own two
		t.Fatalf("tadmin's list: %s", l.Raw)
	}
	wantSCIM(t, "a platform connection pushes a password", scimCall(t, in, "POST", "/scim/v2/Users", pr.String("token"),
		`{`+userSchema+`,"userName":"pushed","password":"Pushed-pass-97531","active":true}`), 201)
	expectStatus(t, "the pushed password", in.Login("pushed", "Pushed-pass-97531"), http.StatusOK)
}

// createUser creates a user with an e-mail address as token and returns
// its ID; its password is username + "-passphrase".
func createUser(t testing.TB, in *Instance, token, username, email string, tenants map[string]string) string {
	t.Helper()
	var trs []map[string]string
	for id, role := range tenants {
		trs = append(trs, map[string]string{"id": id, "role": role})
	}
	r := in.Do("POST", "/api/v1/users", token, map[string]any{"username": username, "email": email, "password": username + "-passphrase", "tenants": trs})
	expectStatus(t, "create "+username, r, http.StatusCreated)
	return r.String("id")
}

// TestSCIMTokenActsForItsOwner: a SCIM token acts for who made the
// connection or last rotated its token, and only while they may still
// manage it — before, an outside check's token outlived its maker's
// deactivation and the API key that made it, and went on creating admins.
func TestSCIMTokenActsForItsOwner(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	configureOkta(t, in, admin)
	tadminID := in.CreateUser(admin, "tadmin", "tadmin-passphrase", map[string]string{"acme": "admin"})
	otherID := in.CreateUser(admin, "tadmin2", "tadmin2-passphrase", map[string]string{"acme": "admin"})
	tadmin := in.Login("tadmin", "tadmin-passphrase").String("token")
	works := func(what, tok string) {
		t.Helper()
		wantSCIM(t, what, scimCall(t, in, "GET", "/scim/v2/Users", tok, ""), 200)
	}
	stopped := func(what, tok string) {
		t.Helper()
		wantSCIMError(t, what, scimCall(t, in, "GET", "/scim/v2/Users", tok, ""), 401, "")
	}
	r := in.Do("POST", "/api/v1/admin/scim", tadmin, map[string]any{"provider": "okta", "tenants": []string{"acme"}})
	expectStatus(t, "tadmin's connection", r, http.StatusCreated)
	if r.String("owner_id") != tadminID || r.JSON["owner_key_id"] != nil {
		t.Fatalf("owner of tadmin's connection: %s", r.Raw)
	}
	connID, byUser := r.String("id"), r.String("token")
	k := in.Do("POST", "/api/v1/api-keys", tadmin, map[string]any{"name": "automation", "tenants": []string{"acme"}, "permissions": []string{"admin:*"}})
	expectStatus(t, "tadmin's key", k, http.StatusCreated)
	r = in.Do("POST", "/api/v1/admin/scim", k.String("key"), map[string]any{"provider": "okta", "tenants": []string{"acme"}})
	expectStatus(t, "the key's connection", r, http.StatusCreated)
	if r.String("owner_id") != tadminID || r.String("owner_key_id") != k.String("id") {
		t.Fatalf("owner of the key's connection: %s", r.Raw)
	}
	byKey := r.String("token")
	works("made by tadmin", byUser)
	works("made by tadmin's key", byKey)

	expectStatus(t, "revoke the key", in.Do("DELETE", "/api/v1/api-keys/"+k.String("id"), tadmin, nil), http.StatusNoContent)
	stopped("made by a revoked key", byKey)
	works("made by tadmin, after the key went", byUser)

	expectStatus(t, "deactivate tadmin", in.Do("POST", "/api/v1/users/"+tadminID+"/deactivate", admin, nil), http.StatusOK)
	stopped("made by a deactivated admin", byUser)
	// An activation brings nothing back: the deactivation gave the
	// connection a token nobody holds.
	// A connection made by a request that raced the deactivation (stored
	// after it, planted here as such): the activation retires its token.
	raced, racedToken, err := in.Svc.Commands.CreateSCIMConnection(ctxFor(t), events.Meta{Actor: events.Actor{Type: "user", ID: tadminID}},
		commands.SCIMConnectionInput{Provider: "okta", Tenants: []string{"acme"}, OwnerID: tadminID})
	if err != nil || raced.OwnerID != tadminID {
		t.Fatalf("the raced connection: %+v %v", raced, err)
	}
	expectStatus(t, "activate tadmin", in.Do("POST", "/api/v1/users/"+tadminID+"/activate", admin, nil), http.StatusOK)
	stopped("made by an admin deactivated and activated again", byUser)
	stopped("made by a request that raced the deactivation", racedToken)
	// Another admin of acme takes it over by rotating its token.
	tadmin2 := in.Login("tadmin2", "tadmin2-passphrase").String("token")
	rot := in.Do("POST", "/api/v1/admin/scim/"+connID+"/rotate", tadmin2, nil)
	expectStatus(t, "rotate", rot, http.StatusOK)
	if rot.String("owner_id") != otherID {
		t.Fatalf("owner after the rotation: %s", rot.Raw)
	}
	works("rotated by tadmin2", rot.String("token"))
	stopped("the old token", byUser)
	// No longer an admin of acme: the token stops with the role.
	expectStatus(t, "tadmin2 now a viewer", in.Do("PUT", "/api/v1/users/"+otherID+"/tenants/acme", admin, map[string]string{"role": "viewer"}), http.StatusOK)
	stopped("owned by a viewer", rot.String("token"))
}

// TestSCIMPlatformConnectionAdoptsNoTenantAdminAccount: a tenant admin
// squats the username a person will get from the identity provider (with a
// password it knows); a platform connection must not adopt that account by
// userName — it would link the person's SSO identity to it and give it the
// roles their groups bring in other tenants (an outside check: beta admin
// for an acme admin). The name counts as taken (409 uniqueness).
func TestSCIMPlatformConnectionAdoptsNoTenantAdminAccount(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	configureOkta(t, in, admin)
	in.CreateUser(admin, "tadmin", "tadmin-passphrase", map[string]string{"acme": "admin"})
	tadmin := in.Login("tadmin", "tadmin-passphrase").String("token")
	_, tok := newConnection(t, in, admin, admin, []string{"acme", "beta"}, mapping{"eng-admins", "beta", "admin"})
	createUser(t, in, tadmin, "nina@corp.example", "nina@corp.example", map[string]string{"acme": "viewer"})
	before := head(t, in)
	wantSCIMError(t, "adopt the squatted name", scimCall(t, in, "POST", "/scim/v2/Users", tok,
		`{`+userSchema+`,"userName":"nina@corp.example","externalId":"okta-nina-1","active":true}`), 409, "uniqueness")
	if h := head(t, in); h != before {
		t.Fatalf("the refused adoption appended %d events", h-before)
	}
	// Nor an account a tenant connection renamed to the name — the tenant
	// admin's own, made by a platform admin — nor one it created without
	// an address (the re-check's ways round: the connection deleted after).
	tconn, ttok := newConnection(t, in, admin, tadmin, []string{"acme"})
	self := wantSCIM(t, "the tenant admin adopts itself", scimCall(t, in, "POST", "/scim/v2/Users", ttok, `{`+userSchema+`,"userName":"tadmin","active":true}`), 201)
	wantSCIM(t, "and renames itself", scimCall(t, in, "PATCH", "/scim/v2/Users/"+self.String("id"), ttok,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"userName","value":"rita@corp.example"}]}`), 200)
	victor := wantSCIM(t, "a user without an address", scimCall(t, in, "POST", "/scim/v2/Users", ttok,
		`{`+userSchema+`,"userName":"victor@corp.example","externalId":"okta-tadmin-own","active":true}`), 201).String("id")
	expectStatus(t, "delete the tenant connection", in.Do("DELETE", "/api/v1/admin/scim/"+tconn, tadmin, nil), http.StatusNoContent)
	for _, name := range []string{"rita@corp.example", "victor@corp.example"} {
		wantSCIMError(t, "adopt "+name, scimCall(t, in, "POST", "/scim/v2/Users", tok,
			`{`+userSchema+`,"userName":"`+name+`","externalId":"okta-`+name+`","active":true}`), 409, "uniqueness")
	}
	// Nor by the identity the tenant connection gave it (the third
	// re-check: linked, then adopted by it, it got the person's beta admin):
	// a tenant connection links no identity, so the platform connection
	// makes the identity's person a user of its own.
	vic := wantSCIM(t, "the identity the tenant connection named", scimCall(t, in, "POST", "/scim/v2/Users", tok,
		`{`+userSchema+`,"userName":"vic@corp.example","externalId":"okta-tadmin-own","active":true}`), 201)
	if vic.String("id") == victor {
		t.Fatalf("the platform connection adopted the tenant connection's user by identity: %s", vic.Raw)
	}
	// A user a platform admin made is adopted by its name.
	createUser(t, in, admin, "omar@corp.example", "omar@corp.example", map[string]string{"acme": "viewer"})
	wantSCIM(t, "adopt a platform admin's user", scimCall(t, in, "POST", "/scim/v2/Users", tok,
		`{`+userSchema+`,"userName":"omar@corp.example","externalId":"okta-omar-1","active":true}`), 201)
}

// TestSCIMBecomingPlatformRotatesItsToken: a tenant connection made a
// platform one by a platform admin gets a new token, in the answer only;
// the old one — which the tenant admin who made it holds — stops in the
// same append (an outside check pushed a password with it right after the
// switch the upgrade notes recommend).
func TestSCIMBecomingPlatformRotatesItsToken(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	configureOkta(t, in, admin)
	in.CreateUser(admin, "tadmin", "tadmin-passphrase", map[string]string{"acme": "admin"})
	tadmin := in.Login("tadmin", "tadmin-passphrase").String("token")
	id, old := newConnection(t, in, admin, tadmin, []string{"acme"})
	r := in.Do("PUT", "/api/v1/admin/scim/"+id, admin, map[string]any{"platform": true})
	expectStatus(t, "make it a platform connection", r, http.StatusOK)
	fresh := r.String("token")
	if r.JSON["platform"] != true || fresh == "" || fresh == old || r.String("owner_id") != me(t, in, admin).String("id") {
		t.Fatalf("the switch: %s", r.Raw)
	}
	if n := countEvents(storedEvents(t, in.Svc), "scim.token_rotated", id); n != 1 {
		t.Fatalf("%d scim.token_rotated events, want 1", n)
	}
	wantSCIMError(t, "the tenant admin's old token", scimCall(t, in, "GET", "/scim/v2/Users", old, ""), 401, "")
	wantSCIM(t, "the new token pushes a password", scimCall(t, in, "POST", "/scim/v2/Users", fresh,
		`{`+userSchema+`,"userName":"jill","password":"Platform-pass-24680","active":true}`), 201)
	// Already a platform connection: a PUT leaves its token alone.
	r = in.Do("PUT", "/api/v1/admin/scim/"+id, admin, map[string]any{"platform": true, "tenants": []string{"acme", "beta"}})
	expectStatus(t, "update a platform connection", r, http.StatusOK)
	if r.JSON["token"] != nil {
		t.Fatalf("a token in the answer to an update: %s", r.Raw)
	}
	wantSCIM(t, "the token after the update", scimCall(t, in, "GET", "/scim/v2/Users", fresh, ""), 200)
}

// TestSCIMNewTokenNeedsARecentSignIn: a new SCIM token — a connection's
// creation, its rotation, its switch to a platform connection — needs a
// session that signed in within ReauthWindow, as a new API key secret
// does: a stolen admin token must not mint a bearer token that outlives it
// (the second re-check made platform connections with a stale session).
func TestSCIMNewTokenNeedsARecentSignIn(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	configureOkta(t, in, admin)
	in.CreateUser(admin, "tadmin", "tadmin-passphrase", map[string]string{"acme": "admin"})
	tenantID, _ := newConnection(t, in, admin, in.Login("tadmin", "tadmin-passphrase").String("token"), []string{"acme"})
	platformID, _ := newConnection(t, in, admin, admin, []string{"acme"})
	in.Clock.Advance(ihttp.ReauthWindow + time.Second)
	before := head(t, in)
	for _, r := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/admin/scim", map[string]any{"provider": "okta", "tenants": []string{"acme"}}},
		{"POST", "/api/v1/admin/scim/" + platformID + "/rotate", nil},
		{"PUT", "/api/v1/admin/scim/" + tenantID, map[string]any{"platform": true}},
	} {
		expectError(t, r.method+" "+r.path, in.Do(r.method, r.path, admin, r.body), http.StatusForbidden, "REAUTHENTICATION_REQUIRED", "SCIM token")
	}
	if h := head(t, in); h != before {
		t.Fatalf("refused SCIM requests appended %d events", h-before)
	}
	expectStatus(t, "a change that makes no token", in.Do("PUT", "/api/v1/admin/scim/"+platformID, admin, map[string]any{"tenants": []string{"acme", "beta"}}), http.StatusOK)
	fresh := in.Login(AdminUser, AdminPassword).String("token")
	expectStatus(t, "rotate after signing in again", in.Do("POST", "/api/v1/admin/scim/"+platformID+"/rotate", fresh, nil), http.StatusOK)
}

// TestSCIMRotationsDoNotHoldOffADeactivation: a connection's token rotated
// over and over (by the owner's API key, which needs no new sign-in) must
// not keep its owner from being deactivated — the third re-check got 409
// "Concurrent modification" five times in a row when the deactivation
// rotated the owned connections' tokens in its own atomic append. Then the
// token the loop last got is dead too.
func TestSCIMRotationsDoNotHoldOffADeactivation(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	configureOkta(t, in, admin)
	id := in.CreateUser(admin, "looper", "looper-passphrase", map[string]string{"acme": "admin"})
	k := in.Do("POST", "/api/v1/api-keys", in.Login("looper", "looper-passphrase").String("token"),
		map[string]any{"name": "loop", "tenants": []string{"acme"}, "permissions": []string{"admin:*"}})
	expectStatus(t, "key", k, http.StatusCreated)
	connID, _ := newConnection(t, in, admin, k.String("key"), []string{"acme"})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	last, rotations := "", 0
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				r := in.Do("POST", "/api/v1/admin/scim/"+connID+"/rotate", k.String("key"), nil)
				if r.Status != http.StatusOK {
					return // the key died with its owner
				}
				mu.Lock()
				last, rotations = r.String("token"), rotations+1
				mu.Unlock()
			}
		}()
	}
	Eventually(t, 10*time.Second, func() error { // the loop is going
		mu.Lock()
		defer mu.Unlock()
		if rotations < 5 {
			return fmt.Errorf("%d rotations", rotations)
		}
		return nil
	})
	r := in.Do("POST", "/api/v1/users/"+id+"/deactivate", admin, nil)
	cancel()
	wg.Wait()
	expectStatus(t, "deactivate while the token is rotated over and over", r, http.StatusOK)
	wantSCIMError(t, "the loop's last token", scimCall(t, in, "GET", "/scim/v2/Users", last, ""), 401, "")
}

// TestSCIMConnectionsPerOwnerAreBounded: one user owns at most
// MaxSCIMConnectionsPerOwner live connections — a deactivation retires
// each owned token in an append of its own, and the fourth re-check kept
// one past its request timeout with 12,000 made by a stolen session.
func TestSCIMConnectionsPerOwnerAreBounded(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	configureOkta(t, in, admin)
	id := in.CreateUser(admin, "many", "many-passphrase", map[string]string{"acme": "admin"})
	meta := events.Meta{Actor: events.Actor{Type: "user", ID: id}}
	for range commands.MaxSCIMConnectionsPerOwner {
		if _, _, err := in.Svc.Commands.CreateSCIMConnection(ctxFor(t), meta, commands.SCIMConnectionInput{Provider: "okta", Tenants: []string{"acme"}, OwnerID: id}); err != nil {
			t.Fatal(err)
		}
	}
	tok := in.Login("many", "many-passphrase").String("token")
	expectError(t, "one connection too many", in.Do("POST", "/api/v1/admin/scim", tok, map[string]any{"provider": "okta", "tenants": []string{"acme"}}),
		http.StatusBadRequest, "VALIDATION_ERROR", "at most 100")
	expectStatus(t, "deactivate the owner", in.Do("POST", "/api/v1/users/"+id+"/deactivate", admin, nil), http.StatusOK)
	if n := countEvents(storedEvents(t, in.Svc), "scim.token_rotated", ""); n != commands.MaxSCIMConnectionsPerOwner {
		t.Fatalf("%d tokens retired, want %d", n, commands.MaxSCIMConnectionsPerOwner)
	}
}

// TestSCIMTenantConnectionAdoptsNoRolelessIdentity: a user an SSO login
// provisioned with no role (no group mapped) is no tenant's: a tenant
// admin's connection naming their identity as externalId gets 409 and
// changes nothing. Before (a re-check of the fix above), it adopted them and
// could rename, re-address and deactivate them. A platform connection still
// adopts them.
func TestSCIMTenantConnectionAdoptsNoRolelessIdentity(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	configureOIDC(t, in, admin, "oidc", "corp", testOIDCUser{
		Subject: "xena-sub", Email: "xena@corp.example", EmailVerified: true, Username: "xena",
	}, nil)
	login := newBrowser(t).get(in.URL + "/api/v1/auth/sso/corp/login")
	mustStatus(t, login, http.StatusOK, "xena's first SSO login")
	xena := ssoUserOf(t, login)["id"]
	in.CreateUser(admin, "tadmin", "tadmin-passphrase", map[string]string{"acme": "admin"})
	tadmin := in.Login("tadmin", "tadmin-passphrase").String("token")
	conn := func(token string) string {
		r := in.Do("POST", "/api/v1/admin/scim", token, map[string]any{"provider": "corp", "tenants": []string{"acme"}})
		expectStatus(t, "a connection to corp", r, http.StatusCreated)
		return r.String("token")
	}
	ttok := conn(tadmin)
	before := head(t, in)
	wantSCIMError(t, "a tenant connection names a roleless user's identity", scimCall(t, in, "POST", "/scim/v2/Users", ttok,
		`{`+userSchema+`,"userName":"anything","externalId":"xena-sub","active":true}`), 409, "uniqueness")
	if h := head(t, in); h != before {
		t.Fatalf("the refused adoption appended %d events", h-before)
	}
	if got := wantSCIM(t, "a platform connection names it", scimCall(t, in, "POST", "/scim/v2/Users", conn(admin),
		`{`+userSchema+`,"userName":"xena","externalId":"xena-sub","active":true}`), 201).String("id"); got != xena {
		t.Fatalf("the platform connection's user %s, want xena %v", got, xena)
	}
}

// TestSCIMLocationsIgnoreForwardedHeaders: without INFRACAST_PUBLIC_URL the
// SCIM base URL (meta.location, Location) is the request's own Host; a
// client's X-Forwarded-Host and X-Forwarded-Proto are not believed (a
// re-check: meta.location read https://evil.example/… from them).
func TestSCIMLocationsIgnoreForwardedHeaders(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	_, tok := newConnection(t, in, admin, admin, []string{"acme"})
	r := doReq(t, in, request{Method: "GET", Path: "/scim/v2/ServiceProviderConfig", Token: tok,
		Header: map[string]string{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}})
	expectStatus(t, "ServiceProviderConfig", r, http.StatusOK)
	meta, _ := r.JSON["meta"].(map[string]any)
	if loc, _ := meta["location"].(string); loc != in.URL+"/scim/v2/ServiceProviderConfig" {
		t.Fatalf("meta.location %q, want %s/scim/v2/ServiceProviderConfig", loc, in.URL)
	}
}
