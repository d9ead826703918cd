package tests

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// The sessions API (issue 17) and cursor pagination of the lists, end to
// end: every answer is also validated against the served OpenAPI document.

// loginAs logs in with a user agent (and optionally scoped to a tenant).
func loginAs(t *testing.T, in *Instance, username, password, userAgent, tenant string) Response {
	t.Helper()
	body := map[string]string{"username": username, "password": password}
	if tenant != "" {
		body["tenant"] = tenant
	}
	r := doReq(t, in, request{Method: "POST", Path: "/api/v1/auth/token", ContentType: "application/json",
		Header: map[string]string{"User-Agent": userAgent}, Body: jsonBody(body)})
	expectStatus(t, "login "+username, r, http.StatusOK)
	return r
}

// sessionsOf is the sessions of a sessions page.
func sessionsOf(t *testing.T, r Response) []map[string]any {
	t.Helper()
	list, ok := r.JSON["sessions"].([]any)
	if !ok {
		t.Fatalf("not a sessions page: %s", r.Raw)
	}
	out := make([]map[string]any, len(list))
	for i, s := range list {
		out[i] = s.(map[string]any)
	}
	return out
}

func sessionIDsOf(t *testing.T, r Response) []string {
	t.Helper()
	var ids []string
	for _, s := range sessionsOf(t, r) {
		ids = append(ids, s["id"].(string))
	}
	return ids
}

// servedOpenAPI loads the instance's OpenAPI document for oa.call.
func servedOpenAPI(t *testing.T, in *Instance) *openAPICheck {
	t.Helper()
	raw := in.Do("GET", "/openapi.json", "", nil)
	doc, err := openapi3.NewLoader().LoadFromData(raw.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &openAPICheck{t: t, in: in, doc: doc}
}

// TestSessionsAPI: a user's own sessions (listed with the login's method,
// address and user agent, the calling one marked current; one revoked, not
// another user's), and a user's sessions for those who manage it.
func TestSessionsAPI(t *testing.T) {
	t.Parallel()
	in := Start(t)
	oa := servedOpenAPI(t, in)
	admin := in.AdminToken()
	bob := in.CreateUser(admin, "bob", "bob-passphrase", map[string]string{"prod": "editor", "ci": "admin"})
	carol := in.CreateUser(admin, "carol", "carol-passphrase", map[string]string{"prod": "viewer", "staging": "viewer"})
	in.CreateUser(admin, "pat", "pat-passphrase", map[string]string{"prod": "admin", "ci": "admin"})

	laptop := loginAs(t, in, "bob", "bob-passphrase", "bob-laptop/1.0", "")
	phone := loginAs(t, in, "bob", "bob-passphrase", "bob-phone/2.0", "prod")
	gone := loginAs(t, in, "bob", "bob-passphrase", "bob-old", "")
	expectStatus(t, "refresh the phone", refresh(t, in, phone.String("refresh_token")), http.StatusOK)
	expectStatus(t, "log out one", in.Do("POST", "/api/v1/auth/logout", gone.String("token"), nil), http.StatusNoContent)
	tok := laptop.String("token")
	laptopID, phoneID := sessionOfLogin(t, in, laptop), sessionOfLogin(t, in, phone)

	r := oa.call("/api/v1/auth/sessions", request{Method: "GET", Path: "/api/v1/auth/sessions", Token: tok}, http.StatusOK)
	list := sessionsOf(t, r)
	if ids := sessionIDsOf(t, r); !slices.Equal(ids, []string{laptopID, phoneID}) {
		t.Fatalf("sessions %v, want [%s %s] (the one logged out is not listed)", ids, laptopID, phoneID)
	}
	if _, ok := r.JSON["next_cursor"]; ok {
		t.Fatalf("a next_cursor on the only page: %s", r.Raw)
	}
	l, p := list[0], list[1]
	if l["current"] != true || p["current"] != false || l["user_id"] != bob || p["user_id"] != bob {
		t.Fatalf("current and user: %s", r.Raw)
	}
	if l["method"] != "password" || l["ip"] != "127.0.0.1" || l["user_agent"] != "bob-laptop/1.0" || p["user_agent"] != "bob-phone/2.0" {
		t.Fatalf("the logins' method, address and user agent: %s", r.Raw)
	}
	if _, scoped := l["tenant"]; scoped || p["tenant"] != "prod" {
		t.Fatalf("tenants: %s", r.Raw)
	}
	if l["last_refreshed_at"] != nil || p["last_refreshed_at"] == nil {
		t.Fatalf("last_refreshed_at: %s", r.Raw)
	}
	started, _ := time.Parse(time.RFC3339, l["started_at"].(string))
	expires, _ := time.Parse(time.RFC3339, l["expires_at"].(string))
	if d := expires.Sub(started); d < 7*24*time.Hour-time.Second || d > 7*24*time.Hour+time.Second {
		t.Fatalf("a session of %s (the refresh token lives 7 days): %s", d, r.Raw)
	}
	if strings.Contains(string(r.Raw), laptop.String("refresh_token")) || strings.Contains(string(r.Raw), tok) {
		t.Fatal("a session list holds a token")
	}
	// The phone's own view (its token is scoped to prod): only the sessions
	// in prod, the phone's marked.
	r = in.Do("GET", "/api/v1/auth/sessions", phone.String("token"), nil)
	if s := sessionsOf(t, r); len(s) != 1 || s[0]["id"] != phoneID || s[0]["current"] != true {
		t.Fatalf("the phone's view: %s", r.Raw)
	}

	// Another user's session is 404 to bob, and stays.
	c1 := loginAs(t, in, "carol", "carol-passphrase", "carol-desk", "")
	carolSession := sessionOfLogin(t, in, c1)
	oa.call("/api/v1/auth/sessions/{id}", request{Method: "DELETE", Path: "/api/v1/auth/sessions/" + carolSession, Token: tok}, http.StatusNotFound)
	oa.call("/api/v1/auth/sessions/{id}", request{Method: "DELETE", Path: "/api/v1/auth/sessions/sess-01J00000000000000000000000", Token: tok}, http.StatusNotFound)
	expectStatus(t, "carol's token after bob tried", me(t, in, c1.String("token")), http.StatusOK)

	// Bob revokes his phone: its access and refresh tokens stop.
	oa.call("/api/v1/auth/sessions/{id}", request{Method: "DELETE", Path: "/api/v1/auth/sessions/" + phoneID, Token: tok}, http.StatusNoContent)
	expectBody(t, "the revoked session's token", me(t, in, phone.String("token")), http.StatusUnauthorized, bodyUnauthorized)
	expectBody(t, "the revoked session's refresh", refresh(t, in, phone.String("refresh_token")), http.StatusUnauthorized, bodyUnauthorized)
	expectStatus(t, "revoked already", in.Do("DELETE", "/api/v1/auth/sessions/"+phoneID, tok, nil), http.StatusNoContent)
	if ids := sessionIDsOf(t, in.Do("GET", "/api/v1/auth/sessions", tok, nil)); !slices.Equal(ids, []string{laptopID}) {
		t.Fatalf("after the revocation: %v", ids)
	}

	// An API key has no session.
	k := in.Do("POST", "/api/v1/api-keys", tok, map[string]any{"name": "bob-key", "tenants": []string{"ci"}, "permissions": []string{"nodes:read"}})
	expectStatus(t, "create key", k, http.StatusCreated)
	oa.call("/api/v1/auth/sessions", request{Method: "GET", Path: "/api/v1/auth/sessions", Token: k.String("key")}, http.StatusBadRequest)
	oa.call("/api/v1/auth/sessions/{id}", request{Method: "DELETE", Path: "/api/v1/auth/sessions/" + laptopID, Token: k.String("key")}, http.StatusBadRequest)
	oa.call("/api/v1/auth/sessions", request{Method: "GET", Path: "/api/v1/auth/sessions"}, http.StatusUnauthorized)
	oa.call("/api/v1/auth/sessions", request{Method: "GET", Path: "/api/v1/auth/sessions?order=desc", Token: tok}, http.StatusBadRequest)

	// Admins: a tenant admin sees bob's sessions (a user of its tenant), and
	// may revoke them; carol, who is in staging too, it sees, but neither
	// her sessions (their addresses and browsers) nor their revocation.
	pat := in.Login("pat", "pat-passphrase").String("token")
	r = oa.call("/api/v1/users/{id}/sessions", request{Method: "GET", Path: "/api/v1/users/" + bob + "/sessions", Token: pat}, http.StatusOK)
	if s := sessionsOf(t, r); len(s) != 1 || s[0]["id"] != laptopID || s[0]["current"] != false {
		t.Fatalf("pat's view of bob's sessions: %s", r.Raw)
	}
	oa.call("/api/v1/users/{id}", request{Method: "GET", Path: "/api/v1/users/" + carol, Token: pat}, http.StatusOK)
	oa.call("/api/v1/users/{id}/sessions", request{Method: "GET", Path: "/api/v1/users/" + carol + "/sessions", Token: pat}, http.StatusForbidden)
	oa.call("/api/v1/users/{id}/sessions/{sid}", request{Method: "DELETE", Path: "/api/v1/users/" + carol + "/sessions/" + carolSession, Token: pat}, http.StatusForbidden)
	oa.call("/api/v1/users/{id}/sessions", request{Method: "DELETE", Path: "/api/v1/users/" + carol + "/sessions", Token: pat}, http.StatusForbidden)
	oa.call("/api/v1/users/{id}/sessions", request{Method: "GET", Path: "/api/v1/users/" + carol + "/sessions", Token: tok}, http.StatusNotFound)
	oa.call("/api/v1/users/{id}/sessions/{sid}", request{Method: "DELETE", Path: "/api/v1/users/" + bob + "/sessions/" + carolSession, Token: admin}, http.StatusNotFound)
	oa.call("/api/v1/users/{id}/sessions", request{Method: "GET", Path: "/api/v1/users/user-01J00000000000000000000000/sessions", Token: admin}, http.StatusNotFound)

	// A user revokes its own through the admin route too.
	second := loginAs(t, in, "bob", "bob-passphrase", "bob-tablet", "")
	oa.call("/api/v1/users/{id}/sessions/{sid}", request{Method: "DELETE", Path: "/api/v1/users/" + bob + "/sessions/" + sessionOfLogin(t, in, second), Token: tok}, http.StatusNoContent)
	expectBody(t, "bob's tablet", me(t, in, second.String("token")), http.StatusUnauthorized, bodyUnauthorized)

	// The platform admin revokes all of carol's.
	c2 := loginAs(t, in, "carol", "carol-passphrase", "carol-laptop", "staging")
	r = oa.call("/api/v1/users/{id}/sessions", request{Method: "DELETE", Path: "/api/v1/users/" + carol + "/sessions", Token: admin}, http.StatusOK)
	if r.JSON["revoked"] != float64(2) {
		t.Fatalf("revoke all of carol's: %s", r.Raw)
	}
	for _, c := range []Response{c1, c2} {
		expectBody(t, "carol's token", me(t, in, c.String("token")), http.StatusUnauthorized, bodyUnauthorized)
		expectBody(t, "carol's refresh", refresh(t, in, c.String("refresh_token")), http.StatusUnauthorized, bodyUnauthorized)
	}
	r = in.Do("DELETE", "/api/v1/users/"+carol+"/sessions", admin, nil)
	if r.Status != http.StatusOK || r.JSON["revoked"] != float64(0) {
		t.Fatalf("revoke all again: %d %s", r.Status, r.Raw)
	}
	if s := sessionsOf(t, in.Do("GET", "/api/v1/users/"+carol+"/sessions", admin, nil)); len(s) != 0 {
		t.Fatalf("carol's sessions after: %v", s)
	}
	expectStatus(t, "bob's laptop throughout", me(t, in, tok), http.StatusOK)

	// A deactivated user has no live session; one activated again, only
	// those started since.
	expectStatus(t, "deactivate bob", in.Do("POST", "/api/v1/users/"+bob+"/deactivate", admin, nil), http.StatusOK)
	if s := sessionsOf(t, in.Do("GET", "/api/v1/users/"+bob+"/sessions", admin, nil)); len(s) != 0 {
		t.Fatalf("a deactivated user's sessions: %v", s)
	}
	oa.call("/api/v1/users/{id}/activate", request{Method: "POST", Path: "/api/v1/users/" + bob + "/activate", Token: admin}, http.StatusOK)
	oa.call("/api/v1/users/{id}/activate", request{Method: "POST", Path: "/api/v1/users/" + bob + "/activate", Token: admin}, http.StatusConflict)
	if s := sessionsOf(t, in.Do("GET", "/api/v1/users/"+bob+"/sessions", admin, nil)); len(s) != 0 {
		t.Fatalf("sessions from before the deactivation, listed after the activation: %v", s)
	}
	fresh := loginAs(t, in, "bob", "bob-passphrase", "bob-laptop/1.1", "")
	if ids := sessionIDsOf(t, in.Do("GET", "/api/v1/auth/sessions", fresh.String("token"), nil)); !slices.Equal(ids, []string{sessionOfLogin(t, in, fresh)}) {
		t.Fatalf("after the activation: %v", ids)
	}
}

// TestSessionRevocationAcrossReplicas: a session revoked, all of a user's
// sessions revoked, or a user deactivated and activated again on replica A
// is enforced by replica B on its next request once the events arrived.
func TestSessionRevocationAcrossReplicas(t *testing.T) {
	t.Parallel()
	d := NewDeployment(t, 1)
	a := d.StartReplica(t)
	b := d.StartReplica(t)
	admin := a.AdminToken()
	uid := a.CreateUser(admin, "dana", "dana-passphrase", map[string]string{"prod": "editor", "ci": "admin"})

	one := b.Login("dana", "dana-passphrase") // started on b
	two := b.Login("dana", "dana-passphrase")
	accepted(t, a, one.String("token"))
	accepted(t, a, two.String("token"))
	expectStatus(t, "revoke on a", a.Do("DELETE", "/api/v1/auth/sessions/"+sessionOfLogin(t, a, one), two.String("token"), nil), http.StatusNoContent)
	arrived(t, a, b)
	refused(t, b, "a session revoked on a", one.String("token"))
	expectBody(t, "its refresh on b", refresh(t, b, one.String("refresh_token")), http.StatusUnauthorized, bodyUnauthorized)
	expectStatus(t, "the other session on b", me(t, b, two.String("token")), http.StatusOK)
	if ids := sessionIDsOf(t, b.Do("GET", "/api/v1/auth/sessions", two.String("token"), nil)); len(ids) != 1 {
		t.Fatalf("b lists %v", ids)
	}

	expectStatus(t, "revoke all on a", a.Do("DELETE", "/api/v1/users/"+uid+"/sessions", admin, nil), http.StatusOK)
	arrived(t, a, b)
	refused(t, b, "every session revoked on a", two.String("token"))

	// Deactivated and activated again on a: on b, nothing from before
	// works — tokens, refresh tokens, keys — and a new login does.
	three := b.Login("dana", "dana-passphrase")
	k := b.Do("POST", "/api/v1/api-keys", three.String("token"), map[string]any{"name": "dana-ci", "tenants": []string{"ci"}, "permissions": []string{"nodes:read"}})
	expectStatus(t, "create key on b", k, http.StatusCreated)
	accepted(t, a, k.String("key"))
	expectStatus(t, "deactivate on a", a.Do("POST", "/api/v1/users/"+uid+"/deactivate", admin, nil), http.StatusOK)
	expectStatus(t, "activate on a", a.Do("POST", "/api/v1/users/"+uid+"/activate", admin, nil), http.StatusOK)
	arrived(t, a, b)
	refused(t, b, "a token from before the deactivation", three.String("token"))
	refused(t, b, "a key from before the deactivation", k.String("key"))
	expectBody(t, "a refresh token from before, on b", refresh(t, b, three.String("refresh_token")), http.StatusUnauthorized, bodyUnauthorized)
	four := b.Login("dana", "dana-passphrase")
	expectStatus(t, "a new login on b", me(t, b, four.String("token")), http.StatusOK)
}

// pageWalk walks a list from its first page with limit, calling between
// pages, and returns every item's key in order.
func pageWalk(t *testing.T, in *Instance, token, path, field, key string, limit int, between func()) []string {
	t.Helper()
	var out []string
	cursor := ""
	for pages := 0; ; pages++ {
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r := in.Do("GET", path+"?"+q.Encode(), token, nil)
		expectStatus(t, "page of "+path, r, http.StatusOK)
		items, _ := r.JSON[field].([]any)
		if len(items) > limit {
			t.Fatalf("%d items on a page of %d", len(items), limit)
		}
		for _, it := range items {
			out = append(out, it.(map[string]any)[key].(string))
		}
		next, _ := r.JSON["next_cursor"].(string)
		if next == "" {
			return out
		}
		if pages > 1000 {
			t.Fatal("the walk does not end")
		}
		cursor = next
		if between != nil {
			between()
		}
	}
}

// TestListPagination: users, API keys and sessions page with limit and
// cursor; a walk sees every item that exists throughout it exactly once
// while others are created between its pages; without limit and cursor,
// /users and /api-keys still answer everything; bad input is a 400.
func TestListPagination(t *testing.T) {
	t.Parallel()
	in := Start(t)
	oa := servedOpenAPI(t, in)
	admin := in.AdminToken()
	var before []string
	for i := range 23 {
		name := fmt.Sprintf("pg%02d", i*7%23) // created out of order
		in.CreateUser(admin, name, name+"-passphrase", map[string]string{"prod": "viewer"})
		before = append(before, name)
	}

	// Users, by username, while others are created between the pages (by
	// names before, among and after the walk's).
	var mu sync.Mutex
	var created []string
	n := 0
	between := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, name := range []string{fmt.Sprintf("a-new%02d", n), fmt.Sprintf("pg%02d-new", n), fmt.Sprintf("zz-new%02d", n)} {
			in.CreateUser(admin, name, name+"-passphrase", map[string]string{"prod": "viewer"})
			created = append(created, name)
		}
		n++
	}
	walk := pageWalk(t, in, admin, "/api/v1/users", "users", "username", 4, between)
	seen := map[string]int{}
	for i, name := range walk {
		seen[name]++
		if seen[name] > 1 {
			t.Fatalf("%s twice in the walk %v", name, walk)
		}
		if i > 0 && walk[i-1] >= name {
			t.Fatalf("the walk is not in username order: %v", walk)
		}
	}
	for _, name := range append([]string{AdminUser}, before...) {
		if seen[name] != 1 {
			t.Fatalf("%s, which existed throughout, seen %d times in %v", name, seen[name], walk)
		}
	}
	if n == 0 {
		t.Fatal("no page boundary: nothing was created during the walk")
	}

	// Without limit and cursor: everyone, no next_cursor (as before pages).
	all := oa.call("/api/v1/users", request{Method: "GET", Path: "/api/v1/users", Token: admin}, http.StatusOK)
	if users, _ := all.JSON["users"].([]any); len(users) != 1+len(before)+len(created) {
		t.Fatalf("GET /users without a limit: %d users, want %d", len(users), 1+len(before)+len(created))
	}
	if _, ok := all.JSON["next_cursor"]; ok {
		t.Fatal("next_cursor without a limit")
	}
	first := oa.call("/api/v1/users", request{Method: "GET", Path: "/api/v1/users?limit=2", Token: admin}, http.StatusOK)
	oa.call("/api/v1/users", request{Method: "GET", Path: "/api/v1/users?limit=2&cursor=" + first.String("next_cursor"), Token: admin}, http.StatusOK)
	for _, bad := range []string{"limit=0", "limit=1001", "limit=x", "limit=", "cursor=nope", "cursor=", "cursor=dXNlcnM6"} { // "users:", no key
		r := oa.call("/api/v1/users", request{Method: "GET", Path: "/api/v1/users?" + bad, Token: admin}, http.StatusBadRequest)
		expectError(t, "users?"+bad, r, http.StatusBadRequest, "VALIDATION_ERROR")
	}

	// API keys, by ID, with keys created between the pages: every one is
	// seen once (new IDs sort last, and are seen too).
	var keys []string
	for i := range 9 {
		r := in.Do("POST", "/api/v1/api-keys", admin, map[string]any{"name": fmt.Sprintf("k%d", i)})
		expectStatus(t, "create key", r, http.StatusCreated)
		keys = append(keys, r.String("id"))
	}
	var newKeys []string
	walk = pageWalk(t, in, admin, "/api/v1/api-keys", "api_keys", "id", 2, func() {
		r := in.Do("POST", "/api/v1/api-keys", admin, map[string]any{"name": fmt.Sprintf("during-%d", len(newKeys))})
		expectStatus(t, "create key during the walk", r, http.StatusCreated)
		newKeys = append(newKeys, r.String("id"))
	})
	if !slices.IsSorted(walk) || len(slices.Compact(slices.Clone(walk))) != len(walk) {
		t.Fatalf("the keys' walk: %v", walk)
	}
	for _, id := range keys {
		if !slices.Contains(walk, id) {
			t.Fatalf("key %s missing from the walk %v", id, walk)
		}
	}
	// And with keys created concurrently with the walk, not only between
	// its pages.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var concurrent []string
	var createErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Names of their own: an owner's live keys have different names.
			r, err := send(in.URL, jsonRequest("POST", "/api/v1/api-keys", admin, map[string]any{"name": fmt.Sprintf("concurrent-%d", i)}))
			if err != nil || r.Status != http.StatusCreated {
				createErr = fmt.Errorf("create a key concurrently: %v %d %s", err, r.Status, r.Raw)
				return
			}
			mu.Lock()
			concurrent = append(concurrent, r.String("id"))
			mu.Unlock()
		}
	}()
	mu.Lock()
	existing := append(append([]string(nil), keys...), newKeys...)
	mu.Unlock()
	walk = pageWalk(t, in, admin, "/api/v1/api-keys", "api_keys", "id", 3, nil)
	close(stop)
	wg.Wait()
	if createErr != nil {
		t.Fatal(createErr)
	}
	if !slices.IsSorted(walk) || len(slices.Compact(slices.Clone(walk))) != len(walk) {
		t.Fatalf("the keys' walk under concurrent creation: %v", walk)
	}
	for _, id := range existing {
		if countOf(walk, id) != 1 {
			t.Fatalf("key %s seen %d times in the walk under concurrent creation", id, countOf(walk, id))
		}
	}
	newKeys = append(newKeys, concurrent...)
	oa.call("/api/v1/api-keys", request{Method: "GET", Path: "/api/v1/api-keys?limit=3", Token: admin}, http.StatusOK)
	if ks, _ := in.Do("GET", "/api/v1/api-keys", admin, nil).JSON["api_keys"].([]any); len(ks) != len(keys)+len(newKeys) {
		t.Fatalf("GET /api-keys without a limit: %d keys, want %d", len(ks), len(keys)+len(newKeys))
	}
	cur := in.Do("GET", "/api/v1/users?limit=1", admin, nil).String("next_cursor")
	expectError(t, "a users cursor on the keys", in.Do("GET", "/api/v1/api-keys?cursor="+cur, admin, nil), http.StatusBadRequest, "VALIDATION_ERROR", "cursor")

	// Sessions, with logins between the pages.
	in.CreateUser(admin, "eve", "eve-passphrase", map[string]string{"prod": "viewer"})
	var sessions []string
	var eve string
	for range 5 {
		l := in.Login("eve", "eve-passphrase")
		eve = l.String("token")
		sessions = append(sessions, sessionOfLogin(t, in, l))
	}
	walk = pageWalk(t, in, eve, "/api/v1/auth/sessions", "sessions", "id", 2, func() { in.Login("eve", "eve-passphrase") })
	for _, id := range sessions {
		if c := countOf(walk, id); c != 1 {
			t.Fatalf("session %s seen %d times in %v", id, c, walk)
		}
	}
	if !slices.IsSorted(walk) {
		t.Fatalf("sessions out of order: %v", walk)
	}
	r := oa.call("/api/v1/auth/sessions", request{Method: "GET", Path: "/api/v1/auth/sessions?limit=1", Token: eve}, http.StatusOK)
	if len(sessionsOf(t, r)) != 1 || r.String("next_cursor") == "" {
		t.Fatalf("a page of one: %s", r.Raw)
	}
	expectError(t, "limit=0 on sessions", in.Do("GET", "/api/v1/auth/sessions?limit=0", eve, nil), http.StatusBadRequest, "VALIDATION_ERROR", "limit")
	// Without a limit, sessions come 100 at a time.
	if got := len(sessionsOf(t, in.Do("GET", "/api/v1/auth/sessions", eve, nil))); got < len(sessions) || got > 100 {
		t.Fatalf("the default page: %d sessions", got)
	}
}

func countOf(l []string, s string) int {
	n := 0
	for _, x := range l {
		if x == s {
			n++
		}
	}
	return n
}

// TestListsRefuseUnknownAndRepeatedParameters: the paged lists (and the SSO
// providers' list, which takes none) refuse a query parameter they do not
// take, and one given twice, with 400 VALIDATION_ERROR naming it, as the
// audit log does (outside check 14d: /users?limitt=2 answered every user,
// and ?limit=1&limit=3 took the first).
func TestListsRefuseUnknownAndRepeatedParameters(t *testing.T) {
	t.Parallel()
	in := Start(t)
	oa := servedOpenAPI(t, in)
	admin := in.AdminToken()
	uid := in.CreateUser(admin, "lister", "lister-passphrase", map[string]string{"prod": "viewer"})
	cases := []struct{ route, path, query, names string }{
		{"/api/v1/users", "/api/v1/users", "limitt=2", "limitt"},
		{"/api/v1/users", "/api/v1/users", "limit=1&limit=3", "limit"},
		{"/api/v1/users", "/api/v1/users", "q=a&q=b", "q"},
		{"/api/v1/users", "/api/v1/users", "cursor=x&cursor=y", "cursor"},
		{"/api/v1/api-keys", "/api/v1/api-keys", "limitt=2", "limitt"},
		{"/api/v1/api-keys", "/api/v1/api-keys", "limit=1&limit=3", "limit"},
		{"/api/v1/api-keys", "/api/v1/api-keys", "q=a", "q"},
		{"/api/v1/admin/scim", "/api/v1/admin/scim", "limitt=2", "limitt"},
		{"/api/v1/admin/scim", "/api/v1/admin/scim", "limit=1&limit=3", "limit"},
		{"/api/v1/admin/sso", "/api/v1/admin/sso", "limit=1", "limit"},
		{"/api/v1/auth/sessions", "/api/v1/auth/sessions", "limit=1&limit=3", "limit"},
		{"/api/v1/users/{id}/sessions", "/api/v1/users/" + uid + "/sessions", "limitt=2", "limitt"},
	}
	for _, c := range cases {
		r := oa.call(c.route, request{Method: "GET", Path: c.path + "?" + c.query, Token: admin}, http.StatusBadRequest)
		expectError(t, c.path+"?"+c.query, r, http.StatusBadRequest, "VALIDATION_ERROR", c.names)
	}
	// What they take still works.
	for _, c := range []struct{ route, path string }{
		{"/api/v1/users", "/api/v1/users?limit=1&q=list"}, {"/api/v1/api-keys", "/api/v1/api-keys?limit=1"},
		{"/api/v1/admin/scim", "/api/v1/admin/scim?limit=1"}, {"/api/v1/admin/sso", "/api/v1/admin/sso"},
	} {
		oa.call(c.route, request{Method: "GET", Path: c.path, Token: admin}, http.StatusOK)
	}
}
