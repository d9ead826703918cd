package tests

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCredentialCheckRefreshTokenOfAForgottenSession: a revoked session is
// forgotten by the read models once its access tokens have expired
// (projections.Model.RevokedSessionGrace), and its refresh token with it.
// The credential check then answered "not_issued_by_us" for a refresh
// token that was issued here and revoked minutes before (re-check 20r1);
// it answers "unknown", not usable, and says what that may be — at the
// moment asked and at a moment the token was usable alike. A token of
// another form is still not ours, and one of the form that was never
// issued is as unknown as a forgotten one (nothing tells them apart).
func TestCredentialCheckRefreshTokenOfAForgottenSession(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	uid := in.CreateUser(admin, "forgotten", "forgotten-passphrase", map[string]string{"prod": "viewer"})
	login := in.Login("forgotten", "forgotten-passphrase")
	refresh := login.String("refresh_token")
	usableAt := in.Clock.Now().Format(time.RFC3339Nano)
	sid := me(t, in, login.String("token")).String("session_id")
	in.Clock.Advance(time.Second)
	expectStatus(t, "revoke the session", in.Do("DELETE", "/api/v1/users/"+uid+"/sessions/"+sid, admin, nil), http.StatusNoContent)
	if r := credCheck(t, in, admin, map[string]string{"token": refresh}); r.String("reason") != "revoked" || r.String("session_id") != sid {
		t.Fatalf("before the prune: %s, want revoked", r.Raw)
	}

	in.Clock.Advance(in.Svc.Model.RevokedSessionGrace + time.Minute)
	if n := in.Svc.Model.Prune(in.Clock.Now()); n < 1 {
		t.Fatalf("nothing pruned (%d)", n)
	}
	admin = in.Login(AdminUser, AdminPassword).String("token")
	expectStatus(t, "the forgotten session's refresh", in.Do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh}), http.StatusUnauthorized)
	random := make([]byte, 32)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	for what, body := range map[string]map[string]string{
		"now":                               {"token": refresh},
		"when it was usable":                {"token": refresh, "at": usableAt},
		"a token of the form, never issued": {"token": base64.RawURLEncoding.EncodeToString(random)},
	} {
		r := credCheck(t, in, admin, body)
		notes, _ := r.JSON["notes"].([]any)
		said := false
		for _, n := range notes {
			s, _ := n.(string)
			said = said || strings.Contains(s, "never issued here, or its session was forgotten") && strings.Contains(s, in.Svc.Model.RevokedSessionGrace.String())
		}
		if r.JSON["usable"] != false || r.String("reason") != "unknown" || r.JSON["since"] != nil || r.JSON["subject"] != nil || !said {
			t.Errorf("%s: %s; want unknown, not usable, with a note on what it may be", what, r.Raw)
		}
	}
	if r := credCheck(t, in, admin, map[string]string{"token": "not-a-refresh-token"}); r.String("reason") != "not_issued_by_us" {
		t.Errorf("a token of another form: %s, want not_issued_by_us", r.Raw)
	}
}
