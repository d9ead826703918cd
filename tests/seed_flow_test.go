package tests

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// checkExpiresAt fails unless v is an RFC 3339 UTC time ("…Z", whole seconds)
// about ttl after now.
func checkExpiresAt(t *testing.T, what string, v any, now time.Time, ttl time.Duration) {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%s: expires_at is %T, want string", what, v)
	}
	at, err := time.Parse(time.RFC3339, s)
	if err != nil || !strings.HasSuffix(s, "Z") || at.Format(time.RFC3339) != s {
		t.Fatalf("%s: expires_at %q is not RFC 3339 UTC with whole seconds (%v)", what, s, err)
	}
	want := now.Add(ttl)
	if d := at.Sub(want); d < -2*time.Second || d > 2*time.Second {
		t.Fatalf("%s: expires_at %s, want about %s", what, s, want.Format(time.RFC3339))
	}
}

// TestSeedLoginFlow follows the seed's "Getting a Token" → "Using Tokens" →
// "Refreshing Tokens" flow and checks every response shape it documents.
func TestSeedLoginFlow(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	uid := in.CreateUser(admin, "your-username", "your-password", map[string]string{"my-tenant": "viewer"})

	// Login: exactly the documented top-level fields.
	r := in.Do("POST", "/api/v1/auth/token", "", `{
"username": "your-username",
"password": "your-password"
}`)
	expectStatus(t, "login", r, 200)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("login Content-Type %q", ct)
	}
	if got, want := keys(r.JSON), []string{"expires_at", "refresh_token", "token", "user"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("login keys %v, want %v", got, want)
	}
	token, refreshToken := r.String("token"), r.String("refresh_token")
	if strings.Count(token, ".") != 2 || !strings.HasPrefix(token, "eyJ") {
		t.Fatalf("token is not a JWT: %q", token)
	}
	if len(refreshToken) < 32 || refreshToken == token {
		t.Fatalf("refresh_token %q", refreshToken)
	}
	checkExpiresAt(t, "login", r.JSON["expires_at"], in.Clock.Now(), time.Hour)

	user, ok := r.JSON["user"].(map[string]any)
	if !ok {
		t.Fatalf("user is %T", r.JSON["user"])
	}
	for _, k := range []string{"id", "username", "email", "roles", "tenants"} {
		if _, ok := user[k]; !ok {
			t.Fatalf("user lacks %q: %s", k, r.Raw)
		}
	}
	if extra := keys(user); len(extra) != 5 {
		t.Logf("login user object carries more than the documented fields: %v", extra)
	}
	if user["id"] != uid || !strings.HasPrefix(uid, "user-") {
		t.Fatalf("user.id %v, created %s", user["id"], uid)
	}
	if user["username"] != "your-username" || user["email"] != "your-username@example.com" {
		t.Fatalf("user %v", user)
	}
	if roles, ok := user["roles"].([]any); !ok || len(roles) != 0 {
		t.Fatalf("user.roles %#v, want []", user["roles"])
	}
	wantTenants := []any{map[string]any{"id": "my-tenant", "role": "viewer"}}
	if !reflect.DeepEqual(user["tenants"], wantTenants) {
		t.Fatalf("user.tenants %#v, want %#v", user["tenants"], wantTenants)
	}

	// The bootstrap admin's login documents roles ["admin"].
	ar := in.Login(AdminUser, AdminPassword)
	if au, _ := ar.JSON["user"].(map[string]any); !reflect.DeepEqual(au["roles"], []any{"admin"}) {
		t.Fatalf("admin roles: %s", ar.Raw)
	}

	// Using the token.
	m := me(t, in, token)
	expectStatus(t, "me", m, 200)
	if m.String("id") != uid || m.String("username") != "your-username" {
		t.Fatalf("me: %s", m.Raw)
	}
	nodes := in.Do("GET", "/api/v1/tenants/my-tenant/nodes", token, nil)
	expectBody(t, "GET my-tenant/nodes (authorized, no upstream)", nodes, 404, bodyNoUpstream)
	v := verify(t, in, token, "GET", "/api/v1/tenants/my-tenant/nodes")
	expectStatus(t, "verify GET my-tenant/nodes", v, 200)
	if v.Header.Get("X-Infracast-Subject") != uid || v.Header.Get("X-Infracast-Tenant") != "my-tenant" ||
		!strings.Contains(v.Header.Get("X-Infracast-Permissions"), "nodes:read") {
		t.Fatalf("verify headers: %v", v.Header)
	}
	noAuth := in.Do("GET", "/api/v1/tenants/my-tenant/nodes", "", nil)
	expectBody(t, "nodes without a token", noAuth, 401, bodyUnauthorized)

	// Refreshing: {token, expires_at} and no refresh_token by default.
	in.Clock.Advance(55 * time.Minute) // "when 5 minutes remain"
	rr := in.Do("POST", "/api/v1/auth/refresh", "", `{
"refresh_token": "`+refreshToken+`"
}`)
	expectStatus(t, "refresh", rr, 200)
	if got, want := keys(rr.JSON), []string{"expires_at", "token"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("refresh keys %v, want %v (%s)", got, want, rr.Raw)
	}
	checkExpiresAt(t, "refresh", rr.JSON["expires_at"], in.Clock.Now(), time.Hour)
	newToken := rr.String("token")
	if newToken == token || strings.Count(newToken, ".") != 2 {
		t.Fatalf("refresh token: %q", newToken)
	}
	expectStatus(t, "me with refreshed token", me(t, in, newToken), 200)
	expectStatus(t, "verify with refreshed token", verify(t, in, newToken, "GET", "/api/v1/tenants/my-tenant/nodes"), 200)
	expectBody(t, "nodes with refreshed token", in.Do("GET", "/api/v1/tenants/my-tenant/nodes", newToken, nil), 404, bodyNoUpstream)

	// Without rotation the refresh token stays valid for its lifetime.
	expectStatus(t, "second refresh with the same refresh token", refresh(t, in, refreshToken), 200)
}
