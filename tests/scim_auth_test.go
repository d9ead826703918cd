package tests

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestSCIMTokens: a SCIM token works under /scim/v2 only, and only it
// does; it is shown once, stored as a hash, rotated and revoked at once.
func TestSCIMTokens(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	id, tok := newConnection(t, in, admin, admin, []string{"prod"})
	in.CreateUser(admin, "uma", "uma-passphrase-1", map[string]string{"prod": "admin"})
	uma := in.Login("uma", "uma-passphrase-1")
	keyRes := in.Do("POST", "/api/v1/api-keys", uma.String("token"), map[string]any{"name": "ci", "tenants": []string{"prod"}, "permissions": []string{"admin:*"}})
	expectStatus(t, "key", keyRes, http.StatusCreated)
	key := keyRes.String("key")

	// A SCIM token on the rest of the API: 401, like any bad credential.
	for _, r := range []request{
		{Method: "GET", Path: "/api/v1/auth/me"},
		{Method: "GET", Path: "/api/v1/users"},
		{Method: "GET", Path: "/api/v1/admin/scim"},
		{Method: "GET", Path: "/api/v1/auth/verify", Header: map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/api/v1/tenants/prod/nodes"}},
		{Method: "POST", Path: "/api/v1/api-keys", ContentType: "application/json", Body: []byte(`{"name":"x","tenants":["prod"]}`)},
		{Method: "GET", Path: "/api/v1/tenants/prod/nodes"},
	} {
		r.Token = tok
		expectBody(t, "a SCIM token on "+r.Method+" "+r.Path, doReq(t, in, r), http.StatusUnauthorized, bodyUnauthorized)
	}

	// Under /scim/v2 nothing but a SCIM token: 401 in the SCIM error schema.
	flipped := []byte(tok)
	flipped[20] ^= 1
	for what, hdr := range map[string]string{
		"no credentials":                 "",
		"a user's access token":          "Bearer " + uma.String("token"),
		"an admin's access token":        "Bearer " + admin,
		"an API key with admin:*":        "Bearer " + key,
		"a refresh token":                "Bearer " + uma.String("refresh_token"),
		"a mistyped SCIM token":          "Bearer " + string(flipped),
		"a made-up SCIM token":           "Bearer ic_scim_" + strings.Repeat("A", 49),
		"the token as Basic credentials": "Basic " + tok,
		"the token without Bearer":       tok,
	} {
		r := request{Method: "GET", Path: "/scim/v2/Users"}
		if hdr != "" {
			r.Header = map[string]string{"Authorization": hdr}
		}
		wantSCIMError(t, what+" on /scim/v2", doReq(t, in, r), 401, "")
	}
	// Also for a route that does not exist there, and for discovery.
	wantSCIMError(t, "an access token on /scim/v2/Schemas", scimCall(t, in, "GET", "/scim/v2/Schemas", admin, ""), 401, "")
	wantSCIMError(t, "an access token on an unknown SCIM route", scimCall(t, in, "GET", "/scim/v2/Nope", admin, ""), 401, "")
	wantSCIM(t, "the SCIM token", scimCall(t, in, "GET", "/scim/v2/Users", tok, ""), 200)

	// Shown once: never listed, never in the stream (its hash is).
	r := in.Do("GET", "/api/v1/admin/scim/"+id, admin, nil)
	expectStatus(t, "get connection", r, http.StatusOK)
	if _, ok := r.JSON["token"]; ok || r.String("base_url") != in.URL+"/scim/v2" {
		t.Fatalf("get connection: %s", r.Raw)
	}
	if l := in.Do("GET", "/api/v1/admin/scim", admin, nil); strings.Contains(string(l.Raw), tok) || strings.Contains(string(l.Raw), `"token"`) {
		t.Fatalf("list shows a token: %s", l.Raw)
	}
	for _, e := range storedEvents(t, in.Svc) {
		if strings.Contains(string(e.Data), tok) {
			t.Fatalf("%s holds the token", e.Type)
		}
	}

	// Rotate: the old token stops, the new one works, at once.
	r = in.Do("POST", "/api/v1/admin/scim/"+id+"/rotate", admin, nil)
	expectStatus(t, "rotate", r, http.StatusOK)
	fresh := r.String("token")
	if fresh == "" || fresh == tok || r.String("rotated_at") == "" {
		t.Fatalf("rotate: %s", r.Raw)
	}
	wantSCIMError(t, "the rotated-away token", scimCall(t, in, "GET", "/scim/v2/Users", tok, ""), 401, "")
	wantSCIM(t, "the new token", scimCall(t, in, "GET", "/scim/v2/Users", fresh, ""), 200)
	// Delete: the token stops.
	expectStatus(t, "delete", in.Do("DELETE", "/api/v1/admin/scim/"+id, admin, nil), http.StatusNoContent)
	wantSCIMError(t, "a deleted connection's token", scimCall(t, in, "GET", "/scim/v2/Users", fresh, ""), 401, "")
	expectError(t, "get deleted", in.Do("GET", "/api/v1/admin/scim/"+id, admin, nil), http.StatusNotFound, "NOT_FOUND")
}

// TestSCIMConnectionAdmin: who may manage which connection, and bad input
// refused with nothing appended.
func TestSCIMConnectionAdmin(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	configureOkta(t, in, admin)
	in.CreateUser(admin, "pia", "pia-passphrase-1", map[string]string{"prod": "admin", "staging": "viewer"})
	in.CreateUser(admin, "vic", "vic-passphrase-1", map[string]string{"prod": "viewer"})
	pia := in.Login("pia", "pia-passphrase-1").String("token")
	vic := in.Login("vic", "vic-passphrase-1").String("token")

	// A tenant admin, for tenants it administers.
	r := in.Do("POST", "/api/v1/admin/scim", pia, map[string]any{"provider": "okta", "tenants": []string{"prod"},
		"group_mappings": []map[string]string{{"group": "infracast-prod-admins", "tenant": "prod", "role": "admin"}}})
	expectStatus(t, "a tenant admin's connection", r, http.StatusCreated)
	piaConn := r.String("id")
	if r.String("provider") != "okta" || at(r.JSON, "group_mappings", 0, "group") != "infracast-prod-admins" || r.JSON["users"] != 0.0 {
		t.Fatalf("create: %s", r.Raw)
	}
	platformConn, _ := newConnection(t, in, admin, admin, []string{"prod", "staging"})

	seq := head(t, in)
	for _, c := range []struct {
		what, token string
		body        any
		status      int
		code        string
		parts       []string
	}{
		{"a tenant it does not administer", pia, map[string]any{"provider": "okta", "tenants": []string{"prod", "staging"}}, 403, "FORBIDDEN", nil},
		{"a viewer", vic, map[string]any{"provider": "okta", "tenants": []string{"prod"}}, 403, "FORBIDDEN", nil},
		{"a mapping outside its tenants", admin, map[string]any{"provider": "okta", "tenants": []string{"prod"},
			"group_mappings": []map[string]string{{"group": "g", "tenant": "staging", "role": "admin"}}}, 400, "VALIDATION_ERROR", []string{"group_mappings", "staging"}},
		{"an unknown provider", admin, map[string]any{"provider": "onelogin", "tenants": []string{"prod"}}, 400, "VALIDATION_ERROR", []string{"provider"}},
		{"no provider", admin, map[string]any{"tenants": []string{"prod"}}, 400, "VALIDATION_ERROR", []string{"provider"}},
		{"no tenants", admin, map[string]any{"provider": "okta", "tenants": []string{}}, 400, "VALIDATION_ERROR", []string{"tenants"}},
		{"a bad tenant", admin, map[string]any{"provider": "okta", "tenants": []string{"Prod!"}}, 400, "VALIDATION_ERROR", []string{"tenants"}},
		{"an unknown role", admin, map[string]any{"provider": "okta", "tenants": []string{"prod"},
			"group_mappings": []map[string]string{{"group": "g", "tenant": "prod", "role": "owner"}}}, 400, "VALIDATION_ERROR", []string{"group_mappings"}},
		{"an unknown field", admin, map[string]any{"provider": "okta", "tenants": []string{"prod"}, "token": "mine"}, 400, "VALIDATION_ERROR", []string{"token"}},
	} {
		expectError(t, c.what, in.Do("POST", "/api/v1/admin/scim", c.token, c.body), c.status, c.code, c.parts...)
	}
	expectError(t, "PUT a mapping outside", in.Do("PUT", "/api/v1/admin/scim/"+piaConn, pia, map[string]any{
		"group_mappings": []map[string]string{{"group": "g", "tenant": "staging", "role": "viewer"}}}), 400, "VALIDATION_ERROR", "group_mappings")
	expectError(t, "PUT a tenant it does not administer", in.Do("PUT", "/api/v1/admin/scim/"+piaConn, pia, map[string]any{
		"tenants": []string{"prod", "staging"}}), 403, "FORBIDDEN")
	expectError(t, "PUT dropping a mapped tenant", in.Do("PUT", "/api/v1/admin/scim/"+piaConn, pia, map[string]any{
		"tenants": []string{"dev"}}), 403, "FORBIDDEN")
	expectError(t, "PUT nothing", in.Do("PUT", "/api/v1/admin/scim/"+piaConn, pia, map[string]any{}), 400, "VALIDATION_ERROR")
	// Connections over tenants it does not administer (all of them) are 404.
	expectError(t, "get the platform's", in.Do("GET", "/api/v1/admin/scim/"+platformConn, pia, nil), 404, "NOT_FOUND")
	expectError(t, "PUT the platform's", in.Do("PUT", "/api/v1/admin/scim/"+platformConn, pia, map[string]any{"group_mappings": []any{}}), 404, "NOT_FOUND")
	expectError(t, "rotate the platform's", in.Do("POST", "/api/v1/admin/scim/"+platformConn+"/rotate", pia, nil), 404, "NOT_FOUND")
	expectError(t, "delete the platform's", in.Do("DELETE", "/api/v1/admin/scim/"+platformConn, pia, nil), 404, "NOT_FOUND")
	expectError(t, "a viewer gets one", in.Do("GET", "/api/v1/admin/scim/"+piaConn, vic, nil), 404, "NOT_FOUND")
	expectError(t, "bad limit", in.Do("GET", "/api/v1/admin/scim?limit=0", admin, nil), 400, "VALIDATION_ERROR", "limit")
	unchanged(t, in, seq, "refused connection requests")

	// Lists: each sees what it manages; pages by cursor.
	if l := in.Do("GET", "/api/v1/admin/scim", pia, nil); len(l.JSON["connections"].([]any)) != 1 || at(l.JSON, "connections", 0, "id") != piaConn {
		t.Fatalf("pia's list: %s", l.Raw)
	}
	if l := in.Do("GET", "/api/v1/admin/scim", vic, nil); len(l.JSON["connections"].([]any)) != 0 {
		t.Fatalf("vic's list: %s", l.Raw)
	}
	l := in.Do("GET", "/api/v1/admin/scim?limit=1", admin, nil)
	next := l.String("next_cursor")
	if len(l.JSON["connections"].([]any)) != 1 || next == "" {
		t.Fatalf("first page: %s", l.Raw)
	}
	l2 := in.Do("GET", "/api/v1/admin/scim?limit=1&cursor="+next, admin, nil)
	if len(l2.JSON["connections"].([]any)) != 1 || l2.String("next_cursor") != "" || at(l2.JSON, "connections", 0, "id") == at(l.JSON, "connections", 0, "id") {
		t.Fatalf("second page: %s", l2.Raw)
	}

	// The tenant admin changes its mappings, rotates and deletes its own.
	r = in.Do("PUT", "/api/v1/admin/scim/"+piaConn, pia, map[string]any{
		"group_mappings": []map[string]string{{"group": "prod-viewers", "tenant": "prod", "role": "viewer"}}})
	expectStatus(t, "PUT", r, http.StatusOK)
	if len(r.JSON["group_mappings"].([]any)) != 1 || at(r.JSON, "group_mappings", 0, "group") != "prod-viewers" || at(r.JSON, "tenants", 0) != "prod" {
		t.Fatalf("PUT: %s", r.Raw)
	}
	expectStatus(t, "rotate own", in.Do("POST", "/api/v1/admin/scim/"+piaConn+"/rotate", pia, nil), http.StatusOK)
	expectStatus(t, "delete own", in.Do("DELETE", "/api/v1/admin/scim/"+piaConn, pia, nil), http.StatusNoContent)
	// Every change is in the audit log with its admin as actor.
	var types []string
	for _, e := range eventsSince(t, in, seq) {
		if e.Aggregate == "scim" {
			types = append(types, e.Type)
			if e.Actor.Type != "user" {
				t.Fatalf("%s: actor %+v", e.Type, e.Actor)
			}
		}
	}
	if strings.Join(types, " ") != "scim.connection_updated scim.token_rotated scim.connection_deleted" {
		t.Fatalf("events %v", types)
	}
}

// TestSCIMConnectionNamesUniquePerOwner: a named connection is made once,
// as a named API key is — a client retrying a create whose answer it lost,
// or sending it twice at once through two replicas, gets 409 instead of a
// second connection whose live token nobody holds (outside check 11c: four
// creates made four). The name is free among the owner's live connections
// in any letter case; another owner may use it; a deleted connection's
// name is free again. Without a name, as before, each create makes one.
func TestSCIMConnectionNamesUniquePerOwner(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 1)
	a := d.StartReplica(t)
	b := d.StartReplica(t)
	admin := a.AdminToken()
	configureOkta(t, a, admin)
	a.CreateUser(admin, "pia", "pia-passphrase-1", map[string]string{"prod": "admin"})
	pia := a.Login("pia", "pia-passphrase-1").String("token")
	create := func(in *Instance, token, name string) Response {
		body := map[string]any{"provider": "okta", "tenants": []string{"prod"}}
		if name != "" {
			body["name"] = name
		}
		return in.Do("POST", "/api/v1/admin/scim", token, body)
	}
	first := create(a, pia, "  Okta production ")
	expectStatus(t, "create", first, http.StatusCreated)
	if first.String("name") != "Okta production" {
		t.Fatalf("name %q, want it trimmed", first.String("name"))
	}
	before := head(t, a)
	for _, name := range []string{"Okta production", "okta PRODUCTION"} {
		for _, in := range []*Instance{a, b} {
			expectError(t, "create "+name+" again", create(in, pia, name), http.StatusConflict, "CONFLICT", "already exists")
		}
	}
	if h := head(t, a); h != before {
		t.Fatalf("refused creates appended %d events", h-before)
	}
	expectStatus(t, "another owner's", create(b, admin, "Okta production"), http.StatusCreated)
	expectError(t, "a name too long", create(a, pia, strings.Repeat("n", 129)), http.StatusBadRequest, "VALIDATION_ERROR", "name")
	expectError(t, "a control character", create(a, pia, "okta\nprod"), http.StatusBadRequest, "VALIDATION_ERROR", "name")

	// Six at once through two replicas: one connection.
	counts := parallelStatuses(6, func(i int) int { return create([]*Instance{a, b}[i%2], pia, "entra").Status })
	if counts[http.StatusCreated] != 1 || counts[http.StatusConflict] != 5 {
		t.Fatalf("six parallel creates: %v, want one 201 and five 409", counts)
	}
	list := a.Do("GET", "/api/v1/admin/scim", pia, nil)
	expectStatus(t, "list", list, http.StatusOK)
	if n := strings.Count(string(list.Raw), `"name":"entra"`); n != 1 {
		t.Fatalf("%d connections named entra: %s", n, list.Raw)
	}

	// Deleted: the name is free again, on either replica.
	expectStatus(t, "delete", a.Do("DELETE", "/api/v1/admin/scim/"+first.String("id"), pia, nil), http.StatusNoContent)
	expectStatus(t, "the name again after its deletion", create(b, pia, "Okta production"), http.StatusCreated)

	// Unnamed: every create makes a connection.
	for i := range 2 {
		expectStatus(t, fmt.Sprintf("unnamed %d", i), create(a, pia, ""), http.StatusCreated)
	}
}

// TestSCIMUnauthorizedChallenge: a 401 under /scim/v2 carries the bearer
// challenge of RFC 6750 section 3 (ServiceProviderConfig declares
// oauthbearertoken), naming invalid_token when a credential was presented.
func TestSCIMUnauthorizedChallenge(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	id, tok := newConnection(t, in, admin, admin, []string{"prod"})
	const bare, invalid = `Bearer realm="scim"`, `Bearer realm="scim", error="invalid_token"`
	flipped := []byte(tok)
	flipped[20] ^= 1
	for _, c := range []struct{ what, path, auth, want string }{
		{"no credentials", "/scim/v2/Users", "", bare},
		{"no credentials, discovery", "/scim/v2/ServiceProviderConfig", "", bare},
		{"an access token", "/scim/v2/Users", "Bearer " + admin, invalid},
		{"an access token on an unknown route", "/scim/v2/Nope", "Bearer " + admin, invalid},
		{"a mistyped SCIM token", "/scim/v2/Users", "Bearer " + string(flipped), invalid},
		{"the token as Basic credentials", "/scim/v2/Users", "Basic " + tok, invalid},
	} {
		r := request{Method: "GET", Path: c.path}
		if c.auth != "" {
			r.Header = map[string]string{"Authorization": c.auth}
		}
		res := doReq(t, in, r)
		wantSCIMError(t, c.what, res, 401, "")
		if got := res.Header.Get("WWW-Authenticate"); got != c.want {
			t.Errorf("%s: WWW-Authenticate %q, want %q", c.what, got, c.want)
		}
	}
	wantSCIM(t, "the SCIM token", scimCall(t, in, "GET", "/scim/v2/Users", tok, ""), 200)
	expectStatus(t, "delete", in.Do("DELETE", "/api/v1/admin/scim/"+id, admin, nil), http.StatusNoContent)
	res := scimCall(t, in, "GET", "/scim/v2/Users", tok, "")
	wantSCIMError(t, "a deleted connection's token", res, 401, "")
	if got := res.Header.Get("WWW-Authenticate"); got != invalid {
		t.Errorf("a deleted connection's token: WWW-Authenticate %q, want %q", got, invalid)
	}
}
