package tests

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

// TestSCIMRenameAndEmail: a userName the identity provider changes renames
// the user (a password login takes the new name and no longer the old),
// a changed work/primary e-mail becomes the user's e-mail, both as
// user.profile_changed with the connection as actor; a name another user
// has, or had, is 409 uniqueness with nothing appended.
func TestSCIMRenameAndEmail(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	connID, tok := newConnection(t, in, admin, admin, []string{"prod"})
	call := func(method, path, body string) Response { return scimCall(t, in, method, path, tok, body) }
	const password = "orchid-lantern-42"
	ren := wantSCIM(t, "create ren", call("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"ren","externalId":"00uren",
		"emails":[{"value":"ren@example.com","type":"work","primary":true}],"password":"`+password+`","active":true}`), 201).String("id")
	wantSCIM(t, "create sky", call("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"sky","password":"`+password+`"}`), 201)
	in.CreateUser(admin, "carla", "tangerine-sky-7", map[string]string{"dev": "viewer"})
	in.Login("ren", password)
	loginStatus := func(name string) int {
		return in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": name, "password": password}).Status
	}
	userOf := func() Response {
		r := in.Do("GET", "/api/v1/users/"+ren, admin, nil)
		expectStatus(t, "get user", r, http.StatusOK)
		return r
	}

	t.Run("a new userName renames the user", func(t *testing.T) {
		seq := head(t, in)
		r := wantSCIM(t, "rename", call("PATCH", "/scim/v2/Users/"+ren, patchOps(`[{"op":"replace","path":"userName","value":"ren.tanaka"}]`)), 200)
		if r.String("userName") != "ren.tanaka" {
			t.Fatalf("rename: %s", r.Raw)
		}
		var types []string
		for _, e := range eventsSince(t, in, seq) {
			types = append(types, e.Type)
			if e.Actor.Type != "scim" || e.Actor.ID != connID {
				t.Errorf("%s by %+v, want the connection", e.Type, e.Actor)
			}
			if e.Type == "user.profile_changed" {
				var d map[string]any
				if err := json.Unmarshal(e.Data, &d); err != nil {
					t.Fatal(err)
				}
				if d["user_id"] != ren || d["username"] != "ren.tanaka" || d["email"] != nil {
					t.Errorf("user.profile_changed: %s", e.Data)
				}
			}
		}
		for _, want := range []string{"username.reserved", "user.profile_changed", "scim.user_updated"} {
			if !slices.Contains(types, want) {
				t.Fatalf("rename appended %v, want %s among them", types, want)
			}
		}
		if u := userOf(); u.String("username") != "ren.tanaka" || u.String("email") != "ren@example.com" {
			t.Fatalf("user after the rename: %s", u.Raw)
		}
		in.Login("ren.tanaka", password)
		in.Login("REN.Tanaka", password) // without regard to case
		if s := loginStatus("ren"); s != http.StatusUnauthorized {
			t.Fatalf("login with the old name: %d, want 401", s)
		}
		r = wantSCIM(t, "find by the new name", call("GET", `/scim/v2/Users?filter=userName+eq+"ren.tanaka"`, ""), 200)
		if r.JSON["totalResults"] != 1.0 || at(r.JSON, "Resources", 0, "id") != ren {
			t.Fatalf("filter: %s", r.Raw)
		}
	})

	t.Run("a taken name is 409 and changes nothing", func(t *testing.T) {
		seq := head(t, in)
		for _, c := range []struct{ what, method, body string }{
			{"another SCIM user's", "PATCH", patchOps(`[{"op":"replace","path":"userName","value":"SKY"}]`)},
			{"a user outside the connection's", "PATCH", patchOps(`[{"op":"replace","path":"userName","value":"carla"}]`)},
			{"the platform admin's", "PUT", `{` + userSchema + `,"userName":"` + AdminUser + `","externalId":"00uren"}`},
			{"its own former name (a name once used stays reserved)", "PATCH", patchOps(`[{"op":"replace","path":"userName","value":"ren"}]`)},
		} {
			wantSCIMError(t, c.what, call(c.method, "/scim/v2/Users/"+ren, c.body), 409, "uniqueness")
		}
		// A new user under the name the user had: the name stays
		// reserved (at once, not after retries ending in a conflict).
		wantSCIMError(t, "a new user under a former name", call("POST", "/scim/v2/Users", `{`+userSchema+`,"userName":"ren"}`), 409, "uniqueness")
		wantSCIMError(t, "a name the username rules refuse", call("PATCH", "/scim/v2/Users/"+ren,
			patchOps(`[{"op":"replace","path":"userName","value":"ren tanaka"}]`)), 400, "invalidValue")
		unchanged(t, in, seq, "a rename to a taken or invalid name")
		in.Login("ren.tanaka", password)
		in.Login("sky", password)
	})

	t.Run("a change of case needs no new reservation", func(t *testing.T) {
		seq := head(t, in)
		wantSCIM(t, "recase", call("PATCH", "/scim/v2/Users/"+ren, patchOps(`[{"op":"replace","path":"userName","value":"Ren.Tanaka"}]`)), 200)
		for _, e := range eventsSince(t, in, seq) {
			if e.Type == "username.reserved" {
				t.Fatalf("a change of case reserved the name again")
			}
		}
		if u := userOf(); u.String("username") != "Ren.Tanaka" {
			t.Fatalf("user after the change of case: %s", u.Raw)
		}
		in.Login("ren.tanaka", password)
	})

	t.Run("a new work e-mail becomes the user's", func(t *testing.T) {
		r := wantSCIM(t, "new e-mail", call("PATCH", "/scim/v2/Users/"+ren,
			patchOps(`[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"ren.tanaka@example.com"}]`)), 200)
		if at(r.JSON, "emails", 0, "value") != "ren.tanaka@example.com" {
			t.Fatalf("patch: %s", r.Raw)
		}
		if u := userOf(); u.String("email") != "ren.tanaka@example.com" || u.String("username") != "Ren.Tanaka" {
			t.Fatalf("user after the e-mail change: %s", u.Raw)
		}
		// PUT with both at once.
		r = wantSCIM(t, "put", call("PUT", "/scim/v2/Users/"+ren, `{`+userSchema+`,"userName":"rtanaka","externalId":"00uren",
			"emails":[{"value":"rt@example.com","type":"work","primary":true}]}`), 200)
		if r.String("userName") != "rtanaka" {
			t.Fatalf("put: %s", r.Raw)
		}
		if u := userOf(); u.String("email") != "rt@example.com" || u.String("username") != "rtanaka" {
			t.Fatalf("user after the PUT: %s", u.Raw)
		}
		in.Login("rtanaka", password)
		if s := loginStatus("Ren.Tanaka"); s != http.StatusUnauthorized {
			t.Fatalf("login with the name before: %d, want 401", s)
		}
		// A PATCH of another attribute leaves username and e-mail alone.
		seq := head(t, in)
		wantSCIM(t, "display name", call("PATCH", "/scim/v2/Users/"+ren, patchOps(`[{"op":"replace","path":"displayName","value":"Ren T"}]`)), 200)
		for _, e := range eventsSince(t, in, seq) {
			if e.Type == "user.profile_changed" {
				t.Fatalf("a display name changed the user: %s", e.Data)
			}
		}
	})
}
