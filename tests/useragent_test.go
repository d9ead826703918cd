package tests

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestUserAgentCutAtACharacter: a User-Agent longer than 256 bytes is kept
// as its first 256 bytes or fewer, cut before a character rather than
// through it: 255 ASCII bytes and an "é" (two bytes) keep the 255 bytes, not
// half the "é", which the event's JSON stored as a three-byte U+FFFD, 258
// bytes in all (outside check 15h).
func TestUserAgentCutAtACharacter(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	ascii := strings.Repeat("a", 255)
	r := doReq(t, in, request{Method: "POST", Path: "/api/v1/auth/token", ContentType: "application/json",
		Header: map[string]string{"User-Agent": ascii + "é"}, Body: jsonBody(map[string]string{"username": AdminUser, "password": "not-the-password"})})
	expectStatus(t, "failed login", r, http.StatusUnauthorized)
	q := url.Values{"type": {"user.login_failed"}}
	r = doReq(t, in, request{Method: "GET", Path: "/api/v1/audit/events?" + q.Encode(), Token: admin})
	expectStatus(t, "audit page", r, http.StatusOK)
	list, _ := r.JSON["events"].([]any)
	if len(list) != 1 {
		t.Fatalf("%d failed logins, want 1: %s", len(list), r.Raw)
	}
	ev, _ := list[0].(map[string]any)
	req, _ := ev["request"].(map[string]any)
	ua, _ := req["user_agent"].(string)
	if ua != ascii {
		t.Errorf("user_agent is %d bytes (valid UTF-8: %v), ending %q; want the 255 ASCII bytes", len(ua), utf8.ValidString(ua), ua[max(0, len(ua)-6):])
	}
}
