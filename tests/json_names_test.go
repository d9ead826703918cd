package tests

import (
	"testing"
)

// TestJSONBodiesReadExactlyAsWritten: an /api/v1 body naming a member twice,
// or a field in another letter case or with a Unicode folding of its name
// (U+017F "ſ" for "s"), is refused with 400 VALIDATION_ERROR naming it, and
// nothing changes. The service took the last of two and any case (outside
// check 18s), so a WAF, proxy, rate limiter or audit tool that reads the
// first or the exact key saw another request than the one acted on.
func TestJSONBodiesReadExactlyAsWritten(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	const alicePassword = "alice-password-1"
	uid := in.CreateUser(admin, "alice", alicePassword, map[string]string{"prod": "viewer"})
	grant := "/api/v1/users/" + uid + "/tenants/prod"
	before := head(t, in)
	keysBefore := len(in.Svc.Model.APIKeys())
	for _, c := range []struct{ what, method, path, token, body, want string }{
		{"role twice", "PUT", grant, admin, `{"role":"viewer","role":"admin"}`, `"role" is given twice`},
		{"role and ROLE", "PUT", grant, admin, `{"role":"viewer","ROLE":"editor"}`, `unknown field "ROLE" is not allowed`},
		{"roles with a long s", "POST", "/api/v1/users", admin,
			`{"username":"fay","email":"fay@example.com","password":"correct-horse-battery","role\u017f":["admin"]}`, `unknown field "roleſ" is not allowed`},
		{"allowed_ips then null", "POST", "/api/v1/api-keys", admin,
			`{"name":"k1","tenants":["prod"],"permissions":["nodes:read"],"allowed_ips":["10.9.9.9/32"],"allowed_ips":null}`, `"allowed_ips" is given twice`},
		{"username and USERNAME", "POST", "/api/v1/auth/token", "",
			`{"username":"nobody","USERNAME":"alice","password":"` + alicePassword + `"}`, `unknown field "USERNAME" is not allowed`},
		{"tenant and Tenant", "POST", "/api/v1/auth/token", "",
			`{"username":"alice","password":"` + alicePassword + `","tenant":"prod","Tenant":""}`, `unknown field "Tenant" is not allowed`},
		{"twice in a tenants item", "POST", "/api/v1/users", admin,
			`{"username":"fay","email":"fay@example.com","password":"correct-horse-battery","tenants":[{"id":"prod","role":"viewer","role":"admin"}]}`, `"role" is given twice`},
	} {
		r := in.Do(c.method, c.path, c.token, []byte(c.body))
		expectError(t, c.what, r, 400, "VALIDATION_ERROR", c.want)
	}
	if h := head(t, in); h != before {
		t.Fatalf("refused requests appended %d events", h-before)
	}
	if u, _, _ := in.Svc.Model.User(uid); len(u.Tenants) != 1 || u.Tenants["prod"] != "viewer" {
		t.Fatalf("alice's roles changed: %+v", u.Tenants)
	}
	if _, _, ok := in.Svc.Model.UserByName("fay"); ok {
		t.Fatal("user fay was created")
	}
	if n := len(in.Svc.Model.APIKeys()); n != keysBefore {
		t.Fatalf("%d API keys, %d before", n, keysBefore)
	}
	// The same requests written once, exactly, are served.
	expectStatus(t, "role once", in.Do("PUT", grant, admin, []byte(`{"role":"editor"}`)), 200)
	expectStatus(t, "alice's login, scoped", in.Do("POST", "/api/v1/auth/token", "",
		[]byte(`{"username":"alice","password":"`+alicePassword+`","tenant":"prod"}`)), 200)
}
