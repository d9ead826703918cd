package tests

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/infracast/auth/http/service"
)

// TestPasskeyRegistrationTokenExpired: a passkey registration whose
// registration_token expired is refused 400 VALIDATION_ERROR saying to
// start the registration again — not 401 "…; sign in again", which told a
// signed-in caller (and the login page) that the session was over
// (outside check 14e). The session goes on.
func TestPasskeyRegistrationTokenExpired(t *testing.T) {
	in := Start(t, func(c *service.Config) { c.PublicURL = "http://localhost:8080" }) // a relying party
	in.CreateUser(in.AdminToken(), "hank", "correct horse battery", nil)
	tok := in.Login("hank", "correct horse battery").String("token")
	r := in.Do("POST", "/api/v1/auth/mfa/passkeys/options", tok, nil)
	expectStatus(t, "registration options", r, http.StatusOK)
	in.Clock.Advance(6 * time.Minute)
	r = in.Do("POST", "/api/v1/auth/mfa/passkeys", tok, map[string]any{
		"registration_token": r.String("registration_token"), "name": "Laptop",
		"credential": map[string]any{"id": "x", "rawId": "x", "type": "public-key", "response": map[string]any{}},
	})
	e, _ := r.JSON["error"].(map[string]any)
	msg, _ := e["message"].(string)
	if r.Status != http.StatusBadRequest || r.ErrorCode() != "VALIDATION_ERROR" || !strings.HasPrefix(msg, "registration_token:") || !strings.HasSuffix(msg, "start the passkey registration again") {
		t.Fatalf("an expired registration: %d %s, want 400 saying to start again", r.Status, r.Raw)
	}
	expectStatus(t, "the session after it", in.Do("GET", "/api/v1/auth/me", tok, nil), http.StatusOK)
}
