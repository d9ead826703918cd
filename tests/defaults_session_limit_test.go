package tests

import (
	"net/http"
	"testing"

	"github.com/infracast/auth/domain"
)

// TestShippedSessionLimit: on the built binary with its shipped defaults
// (INFRACAST_MAX_SESSIONS_PER_USER unset: 100), 101 logins of one user
// leave 100 live sessions: the 101st ended the least recently used, the
// first — its refresh token is refused as a revoked session's is (401), its
// access token by the forward auth — and the audit log tells why
// (session.revoked, reason session_limit). Before the limit, nothing
// bounded one account's sessions (docs/scale.md, "A worst tenant").
func TestShippedSessionLimit(t *testing.T) {
	_, in, _ := startShipped(t)
	admin := in.Login(AdminUser, shippedAdminPassword).String("token")
	uid := in.CreateUser(admin, "many-logins", "correct-horse-battery-staple", map[string]string{"prod": "viewer"})
	live := func() int {
		t.Helper()
		r := in.Do("GET", "/api/v1/users/"+uid+"/sessions?limit=1000", admin, nil)
		expectStatus(t, "the user's sessions", r, http.StatusOK)
		l, _ := r.JSON["sessions"].([]any)
		return len(l)
	}

	first := in.Login("many-logins", "correct-horse-battery-staple")
	nodes := "/api/v1/tenants/prod/nodes"
	expectBody(t, "the first login's access token", verify(t, in, first.String("token"), "GET", nodes), http.StatusOK, "")
	firstSession := me(t, in, first.String("token")).String("session_id")
	for range 99 {
		in.Login("many-logins", "correct-horse-battery-staple")
	}
	if n := live(); n != 100 {
		t.Fatalf("after 100 logins: %d live sessions, want 100 (none ended at the limit)", n)
	}
	last := in.Login("many-logins", "correct-horse-battery-staple") // the 101st
	if n := live(); n != 100 {
		t.Fatalf("after 101 logins: %d live sessions, want 100", n)
	}
	expectBody(t, "the first login's refresh token", in.Do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": first.String("refresh_token")}), http.StatusUnauthorized, bodyUnauthorized)
	expectBody(t, "the first login's access token", verify(t, in, first.String("token"), "GET", nodes), http.StatusUnauthorized, bodyUnauthorized)
	expectBody(t, "the last login's access token", verify(t, in, last.String("token"), "GET", nodes), http.StatusOK, "")
	expectStatus(t, "the last login's refresh token", in.Do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": last.String("refresh_token")}), http.StatusOK)

	ended := in.Do("GET", "/api/v1/audit/events?type="+domain.TypeSessionRevoked, admin, nil)
	expectStatus(t, "audit", ended, http.StatusOK)
	evs, _ := ended.JSON["events"].([]any)
	if len(evs) != 1 {
		t.Fatalf("audit of the session's end: %s, want one session.revoked", ended.Raw)
	}
	if data, _ := evs[0].(map[string]any)["data"].(map[string]any); data["reason"] != domain.RevokeReasonSessionLimit || data["session_id"] != firstSession {
		t.Fatalf("the session's end: %v, want the first login's session (%s), reason %q", data, firstSession, domain.RevokeReasonSessionLimit)
	}
}
