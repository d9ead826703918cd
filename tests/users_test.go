package tests

import (
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
)

const bodyUsernameTaken = `{"error":{"code":"CONFLICT","message":"Username is already taken"}}`

// usernames lists the usernames of a GET /api/v1/users answer, sorted.
func usernames(t *testing.T, r Response) []string {
	t.Helper()
	expectStatus(t, "list users", r, 200)
	list, ok := r.JSON["users"].([]any)
	if !ok {
		t.Fatalf("list users: %s", r.Raw)
	}
	out := make([]string, 0, len(list))
	for _, u := range list {
		out = append(out, u.(map[string]any)["username"].(string))
	}
	sort.Strings(out)
	return out
}

// TestUsersCreateListGetAndDuplicates: create answers 201 with the user, a
// duplicate username (in any case) 409 CONFLICT, list and get show users.
func TestUsersCreateListGetAndDuplicates(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()

	r := in.Do("POST", "/api/v1/users", admin, map[string]any{
		"username": "alice", "email": "alice@example.com", "password": "alice-passphrase",
		"tenants": []map[string]string{{"id": "staging", "role": "viewer"}, {"id": "prod", "role": "admin"}},
	})
	expectStatus(t, "create", r, 201)
	id := r.String("id")
	if !strings.HasPrefix(id, "user-") || r.String("username") != "alice" || r.String("email") != "alice@example.com" || r.JSON["active"] != true {
		t.Fatalf("create: %s", r.Raw)
	}
	wantTenants := []any{map[string]any{"id": "prod", "role": "admin"}, map[string]any{"id": "staging", "role": "viewer"}}
	if !reflect.DeepEqual(r.JSON["tenants"], wantTenants) || !reflect.DeepEqual(r.JSON["roles"], []any{}) {
		t.Fatalf("create: tenants/roles %s", r.Raw)
	}
	if strings.Contains(string(r.Raw), "alice-passphrase") || strings.Contains(string(r.Raw), "password") {
		t.Fatalf("create answer mentions the password: %s", r.Raw)
	}

	before := head(t, in)
	for _, name := range []string{"alice", "ALICE", "Alice"} {
		dup := in.Do("POST", "/api/v1/users", admin, map[string]any{"username": name, "email": "other@example.com", "password": "other-passphrase"})
		expectBody(t, "duplicate "+name, dup, 409, bodyUsernameTaken)
	}
	if h := head(t, in); h != before {
		t.Fatalf("duplicates appended %d events", h-before)
	}
	// The admin made by bootstrap is taken too.
	expectBody(t, "duplicate of the bootstrap admin", in.Do("POST", "/api/v1/users", admin,
		map[string]any{"username": "Admin", "email": "a@example.com", "password": "other-password"}), 409, bodyUsernameTaken)

	in.CreateUser(admin, "bob", "bob-password", nil)
	if got := usernames(t, in.Do("GET", "/api/v1/users", admin, nil)); !reflect.DeepEqual(got, []string{"admin", "alice", "bob"}) {
		t.Fatalf("list: %v", got)
	}
	g := in.Do("GET", "/api/v1/users/"+id, admin, nil)
	expectStatus(t, "get", g, 200)
	if g.String("id") != id || g.String("username") != "alice" || !reflect.DeepEqual(g.JSON["tenants"], wantTenants) {
		t.Fatalf("get: %s", g.Raw)
	}
	expectError(t, "get unknown", in.Do("GET", "/api/v1/users/user-01J00000000000000000000000", admin, nil), 404, "NOT_FOUND")
	expectBody(t, "list without a token", in.Do("GET", "/api/v1/users", "", nil), 401, bodyUnauthorized)

	// The new user logs in case-insensitively and sees only themself.
	bob := in.Login("BOB", "bob-password").String("token")
	if got := usernames(t, in.Do("GET", "/api/v1/users", bob, nil)); !reflect.DeepEqual(got, []string{"bob"}) {
		t.Fatalf("bob lists %v", got)
	}
	expectError(t, "bob gets alice", in.Do("GET", "/api/v1/users/"+id, bob, nil), 404, "NOT_FOUND")
	expectBody(t, "bob creates a user", in.Do("POST", "/api/v1/users", bob,
		map[string]any{"username": "carol", "email": "carol@example.com", "password": "carol-passphrase"}), 403, bodyForbidden)
	expectBody(t, "bob grants himself a role", in.Do("PUT", "/api/v1/users/"+g.String("id")+"/tenants/prod", bob, map[string]string{"role": "admin"}), 403, bodyForbidden)
}

// TestTenantAdminManagesOnlyTheirTenant: a tenant admin manages the users of
// their tenant, and nothing else; users they cannot see are 404.
func TestTenantAdminManagesOnlyTheirTenant(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	in.CreateUser(admin, "ta", "ta-password", map[string]string{"prod": "admin"})
	p1 := in.CreateUser(admin, "p1", "p1-password", map[string]string{"prod": "viewer"})
	s1 := in.CreateUser(admin, "s1", "s1-password", map[string]string{"staging": "viewer"})
	both := in.CreateUser(admin, "both", "both-passphrase", map[string]string{"prod": "viewer", "staging": "viewer"})
	ta := in.Login("ta", "ta-password").String("token")

	if got := usernames(t, in.Do("GET", "/api/v1/users", ta, nil)); !reflect.DeepEqual(got, []string{"both", "p1", "ta"}) {
		t.Fatalf("tenant admin lists %v", got)
	}
	expectStatus(t, "get a user of the tenant", in.Do("GET", "/api/v1/users/"+p1, ta, nil), 200)
	expectError(t, "get a user of another tenant", in.Do("GET", "/api/v1/users/"+s1, ta, nil), 404, "NOT_FOUND")

	// Create: only into their tenant, never a platform admin.
	expectStatus(t, "create in prod", in.Do("POST", "/api/v1/users", ta, map[string]any{
		"username": "p2", "email": "p2@example.com", "password": "p2-password", "tenants": []map[string]string{{"id": "prod", "role": "editor"}}}), 201)
	expectBody(t, "create in staging", in.Do("POST", "/api/v1/users", ta, map[string]any{
		"username": "s2", "email": "s2@example.com", "password": "s2-password", "tenants": []map[string]string{{"id": "staging", "role": "viewer"}}}), 403, bodyForbidden)
	expectBody(t, "create in prod and staging", in.Do("POST", "/api/v1/users", ta, map[string]any{
		"username": "s3", "email": "s3@example.com", "password": "s3-password", "tenants": []map[string]string{{"id": "prod", "role": "viewer"}, {"id": "staging", "role": "viewer"}}}), 403, bodyForbidden)
	expectBody(t, "create a platform admin", in.Do("POST", "/api/v1/users", ta, map[string]any{
		"username": "root2", "email": "r@example.com", "password": "root2-passphrase", "roles": []string{"admin"}, "tenants": []map[string]string{{"id": "prod", "role": "viewer"}}}), 403, bodyForbidden)
	expectBody(t, "create without a tenant", in.Do("POST", "/api/v1/users", ta, map[string]any{
		"username": "nobody", "email": "n@example.com", "password": "nobody-passphrase"}), 403, bodyForbidden)

	// Roles: in their tenant only, on users they can see.
	expectStatus(t, "grant in prod", in.Do("PUT", "/api/v1/users/"+p1+"/tenants/prod", ta, map[string]string{"role": "editor"}), 200)
	expectBody(t, "grant in staging", in.Do("PUT", "/api/v1/users/"+p1+"/tenants/staging", ta, map[string]string{"role": "viewer"}), 403, bodyForbidden)
	expectBody(t, "revoke in staging", in.Do("DELETE", "/api/v1/users/"+both+"/tenants/staging", ta, nil), 403, bodyForbidden)
	before := head(t, in)
	g := in.Do("PUT", "/api/v1/users/"+s1+"/tenants/prod", ta, map[string]string{"role": "viewer"})
	expectError(t, "grant prod to a user the tenant admin cannot see", g, 404, "NOT_FOUND")
	d := in.Do("DELETE", "/api/v1/users/"+s1+"/tenants/prod", ta, nil)
	expectError(t, "revoke prod from a user the tenant admin cannot see", d, 404, "NOT_FOUND")
	if h := head(t, in); h != before {
		t.Fatalf("refused role changes appended %d events", h-before)
	}
	expectStatus(t, "revoke in prod", in.Do("DELETE", "/api/v1/users/"+both+"/tenants/prod", ta, nil), 200)
	expectError(t, "a user who left the tenant is no longer visible", in.Do("GET", "/api/v1/users/"+both, ta, nil), 404, "NOT_FOUND")

	// Deactivate: users wholly inside their tenant only.
	in.Do("PUT", "/api/v1/users/"+both+"/tenants/prod", admin, map[string]string{"role": "viewer"})
	expectBody(t, "deactivate a user also in staging", in.Do("POST", "/api/v1/users/"+both+"/deactivate", ta, nil), 403, bodyForbidden)
	expectError(t, "deactivate a user of another tenant", in.Do("POST", "/api/v1/users/"+s1+"/deactivate", ta, nil), 404, "NOT_FOUND")
	// Passwords of others: platform admin only.
	expectBody(t, "set another user's password", in.Do("POST", "/api/v1/users/"+p1+"/password", ta, map[string]string{"password": "taken-over-1"}), 403, bodyForbidden)
	expectStatus(t, "deactivate a user of the tenant", in.Do("POST", "/api/v1/users/"+p1+"/deactivate", ta, nil), 200)

	// The platform admin can do all of it.
	expectStatus(t, "platform admin grants prod to s1", in.Do("PUT", "/api/v1/users/"+s1+"/tenants/prod", admin, map[string]string{"role": "viewer"}), 200)
	expectStatus(t, "platform admin deactivates", in.Do("POST", "/api/v1/users/"+both+"/deactivate", admin, nil), 200)
}

// TestPasswordChangeBySelf: a user changing their own password must give the
// current one; it revokes their other sessions and keeps the current one.
func TestPasswordChangeBySelf(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	uid := in.CreateUser(admin, "frank", "old-password", map[string]string{"prod": "viewer"})
	current := in.Login("frank", "old-password")
	other := in.Login("frank", "old-password")
	tok := current.String("token")
	path := "/api/v1/users/" + uid + "/password"

	before := head(t, in)
	expectError(t, "without current_password", in.Do("POST", path, tok, map[string]string{"password": "new-password"}), 400, "VALIDATION_ERROR", "current_password")
	expectError(t, "too short", in.Do("POST", path, tok, map[string]string{"password": "short", "current_password": "old-password"}), 400, "VALIDATION_ERROR", "password")
	if h := head(t, in); h != before {
		t.Fatalf("refused password changes appended %d events", h-before)
	}
	// A wrong current password is a guess: recorded (one user.login_failed,
	// toward the lockout), nothing else.
	expectError(t, "wrong current_password", in.Do("POST", path, tok, map[string]string{"password": "new-password", "current_password": "not-it-at-all"}), 400, "VALIDATION_ERROR", "current_password")
	if h := head(t, in); h != before+1 {
		t.Fatalf("a wrong current password appended %d events, want 1", h-before)
	}
	expectStatus(t, "other session still fine", me(t, in, other.String("token")), 200)

	ok := in.Do("POST", path, tok, map[string]string{"password": "new-password", "current_password": "old-password"})
	if ok.Status != 204 || len(ok.Raw) != 0 {
		t.Fatalf("change password: %d %s", ok.Status, ok.Raw)
	}
	// The current session goes on; the other one is revoked.
	expectStatus(t, "current session's token", me(t, in, tok), 200)
	expectStatus(t, "current session's refresh", refresh(t, in, current.String("refresh_token")), 200)
	expectBody(t, "other session's token", me(t, in, other.String("token")), 401, bodyUnauthorized)
	expectBody(t, "other session's refresh", refresh(t, in, other.String("refresh_token")), 401, bodyUnauthorized)
	// Old password out, new one in.
	expectError(t, "login with the old password", in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "frank", "password": "old-password"}), 401, "UNAUTHORIZED")
	later := in.Login("frank", "new-password")

	// Someone else's password: 404 for a user who cannot see them.
	expectError(t, "frank sets the admin's password", in.Do("POST", "/api/v1/users/"+in.Login(AdminUser, AdminPassword).JSON["user"].(map[string]any)["id"].(string)+"/password", tok,
		map[string]string{"password": "taken-over-1", "current_password": "new-password"}), 404, "NOT_FOUND")

	// A platform admin resets it without current_password; every session of the user ends.
	expectStatus(t, "admin resets", in.Do("POST", path, admin, map[string]string{"password": "reset-password"}), 204)
	expectBody(t, "current session after an admin reset", me(t, in, tok), 401, bodyUnauthorized)
	expectBody(t, "later session after an admin reset", me(t, in, later.String("token")), 401, bodyUnauthorized)
	expectStatus(t, "the admin's own session", me(t, in, admin), 200)
	in.Login("frank", "reset-password")
}

// TestPasswordChangesRacedBySelf: N sessions of a user change the password
// at the same moment, each with the same (right) current password. As one
// after the other, exactly one change holds: the others are refused as made
// after it (400 current_password), one user.password_changed is stored, and
// the password is the one whose change was answered 204.
func TestPasswordChangesRacedBySelf(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	uid := in.CreateUser(admin, "grace", "old-password", map[string]string{"prod": "viewer"})
	const n = 8
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = in.Login("grace", "old-password").String("token")
	}
	path := "/api/v1/users/" + uid + "/password"
	statuses := make([]Response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i] = in.Do("POST", path, tokens[i], map[string]string{"password": fmt.Sprintf("fresh-password-%d", i), "current_password": "old-password"})
		}()
	}
	close(start)
	wg.Wait()
	won := -1
	for i, r := range statuses {
		switch {
		case r.Status == 204 && won < 0:
			won = i
		case r.Status == 204:
			t.Errorf("changes %d and %d both held", won, i)
		case r.Status == 400 && r.ErrorCode() == "VALIDATION_ERROR" && strings.Contains(string(r.Raw), "current_password"):
		case r.Status == 401:
			// Its session was ended by the change that held before its
			// request was authenticated: refused too.
		default:
			t.Errorf("change %d: %d %s", i, r.Status, r.Raw)
		}
	}
	if won < 0 {
		t.Fatal("no change held")
	}
	if got := countEvents(storedEvents(t, in.Svc), "user.password_changed", uid); got != 1 {
		t.Fatalf("%d user.password_changed events, want 1", got)
	}
	in.Login("grace", fmt.Sprintf("fresh-password-%d", won))
}

// TestPasswordOfADeactivatedUser: a platform admin setting a deactivated
// user's password gets 409 saying why — it was 401 "Invalid or expired
// token", which reads as the admin's own token failing (an outside check;
// clients may sign the admin out) — and nothing changes. The answer comes
// from the command's decision on the user as stored, so a deactivation
// landing while the request is under way answers the same (re-check 19r2:
// it answered 401 when the handler's own look had found the user active).
func TestPasswordOfADeactivatedUser(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	id := in.CreateUser(admin, "gone", "gone-passphrase", map[string]string{"prod": "viewer"})
	expectStatus(t, "deactivate", in.Do("POST", "/api/v1/users/"+id+"/deactivate", admin, nil), 200)
	before := head(t, in)
	expectError(t, "password of a deactivated user", in.Do("POST", "/api/v1/users/"+id+"/password", admin, map[string]string{"password": "gone-passphrase-2"}),
		409, "CONFLICT", "deactivated")
	if h := head(t, in); h != before {
		t.Fatalf("the refused change appended %d events", h-before)
	}
	expectStatus(t, "the admin's token", me(t, in, admin), 200)
}

// TestUsersListPagesWhatTheCallerSees: the users list's pages, for each
// kind of caller, are the users it sees in order (username, then ID, by
// bytes), with q and cursors, and the same as its unpaged list: the read
// model now chooses them a chunk at a time (projections.Model.ListUsers)
// instead of the handler filtering a copy of every user (outside check
// 20s). A user who sees only themselves gets themselves, or nothing past
// their own place.
func TestUsersListPagesWhatTheCallerSees(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	in.CreateUser(admin, "ta", "tenant-keeper-42", map[string]string{"prod": "admin"})
	for _, name := range []string{"p3", "P1", "p2", "Zp"} {
		in.CreateUser(admin, name, name+"-passphrase", map[string]string{"prod": "viewer"})
	}
	in.CreateUser(admin, "s1", "s1-password", map[string]string{"staging": "viewer"})
	in.CreateUser(admin, "loner", "quiet-harbour-42", nil)
	ta := in.Login("ta", "tenant-keeper-42").String("token")
	loner := in.Login("loner", "quiet-harbour-42").String("token")
	scoped := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": AdminUser, "password": AdminPassword, "tenant": "prod"})
	expectStatus(t, "admin scoped login", scoped, 200)

	// list walks the list by pages of limit (0: one request without
	// limit), in the order answered.
	list := func(token, q string, limit int) []string {
		t.Helper()
		var out []string
		cursor := ""
		for pages := 0; pages < 100; pages++ {
			v := url.Values{}
			if q != "" {
				v.Set("q", q)
			}
			if limit > 0 {
				v.Set("limit", fmt.Sprint(limit))
			}
			if cursor != "" {
				v.Set("cursor", cursor)
			}
			r := in.Do("GET", "/api/v1/users?"+v.Encode(), token, nil)
			expectStatus(t, "list users", r, 200)
			items, _ := r.JSON["users"].([]any)
			if limit > 0 && len(items) > limit {
				t.Fatalf("%d users on a page of %d", len(items), limit)
			}
			for _, it := range items {
				out = append(out, it.(map[string]any)["username"].(string))
			}
			if cursor, _ = r.JSON["next_cursor"].(string); cursor == "" {
				return out
			}
		}
		t.Fatal("the walk does not end")
		return nil
	}
	prod := []string{"P1", "Zp", "p2", "p3", "ta"} // by bytes: upper case first
	for _, tc := range []struct {
		name, token, q string
		want           []string
	}{
		{"platform admin", admin, "", []string{"P1", "Zp", AdminUser, "loner", "p2", "p3", "s1", "ta"}},
		{"platform admin, q", admin, "S1", []string{"s1"}},
		{"tenant admin", ta, "", prod},
		{"tenant admin, q by e-mail", ta, "p2@", []string{"p2"}},
		{"tenant admin, q on a user it does not see", ta, "s1", nil},
		{"platform admin scoped to prod", scoped.String("token"), "", []string{"P1", "Zp", AdminUser, "p2", "p3", "ta"}},
		{"a user without roles", loner, "", []string{"loner"}},
		{"a user without roles, q", loner, "LON", []string{"loner"}},
		{"a user without roles, q not matching", loner, "p2", nil},
	} {
		for _, limit := range []int{0, 1, 2, 1000} {
			if got := list(tc.token, tc.q, limit); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s, limit %d: %v, want %v", tc.name, limit, got, tc.want)
			}
		}
	}

	// Past their own place, a user who sees only themselves gets nothing.
	r := in.Do("GET", "/api/v1/users?limit=4", admin, nil) // P1, Zp, admin, loner
	expectStatus(t, "admin's first page", r, 200)
	after := r.String("next_cursor")
	r = in.Do("GET", "/api/v1/users?limit=4&cursor="+url.QueryEscape(after), loner, nil)
	if got := usernames(t, r); len(got) != 0 || r.String("next_cursor") != "" {
		t.Fatalf("after their own place, loner lists %v: %s", got, r.Raw)
	}
}
