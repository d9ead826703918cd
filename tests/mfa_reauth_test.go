package tests

import (
	"net/http"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	ihttp "github.com/infracast/auth/http"
	"github.com/infracast/auth/http/service"
)

// TestMFAFactorChangesNeedARecentSignIn: a change of the caller's second
// factors — a TOTP enrolment, new recovery codes, a passkey's registration
// or deletion — needs a session that signed in within ReauthWindow. An
// access token of an older session (still valid: it lives an hour), or one
// its refresh token just issued, is refused 403 REAUTHENTICATION_REQUIRED
// and changes nothing; before, a stolen token could register the thief's
// passkey, which then signs in on its own (passwordless), or print new
// recovery codes. Signing in again (here with a recovery code) opens the
// changes.
func TestMFAFactorChangesNeedARecentSignIn(t *testing.T) {
	in := Start(t, func(c *service.Config) { c.PublicURL = "http://localhost" }) // a passkey's relying party
	id := in.CreateUser(in.AdminToken(), "stolen", "stolen-password-1", nil)
	login := in.Login("stolen", "stolen-password-1")
	token, refreshToken := login.String("token"), login.String("refresh_token")
	_, recovery := enrollTOTP(t, in, token) // a fresh session may
	plantPasskey(t, in, id, "cred-1")

	in.Clock.Advance(ihttp.ReauthWindow + time.Second)
	expectStatus(t, "the token still works", in.Do("GET", "/api/v1/auth/mfa", token, nil), http.StatusOK)
	refreshed := refresh(t, in, refreshToken)
	expectStatus(t, "refresh", refreshed, http.StatusOK)
	before := head(t, in)
	for _, tok := range []string{token, refreshed.String("token")} {
		for _, r := range []struct{ method, path string }{
			{"POST", "/api/v1/auth/mfa/totp"},
			{"POST", "/api/v1/auth/mfa/recovery-codes"},
			{"POST", "/api/v1/auth/mfa/passkeys/options"},
			{"DELETE", "/api/v1/auth/mfa/passkeys/cred-1"},
		} {
			expectError(t, r.method+" "+r.path+" from an old session", in.Do(r.method, r.path, tok, nil),
				http.StatusForbidden, "REAUTHENTICATION_REQUIRED", "Sign in again")
		}
	}
	if h := head(t, in); h != before {
		t.Fatalf("refused factor changes appended %d events", h-before)
	}
	st := in.Do("GET", "/api/v1/auth/mfa", token, nil)
	if st.JSON["totp"] != true || st.JSON["totp_pending"] != false || st.JSON["recovery_codes_left"] != float64(10) ||
		len(st.JSON["passkeys"].([]any)) != 1 {
		t.Fatalf("after the refused changes: %s", st.Raw)
	}

	// Signed in again (the second factor a recovery code): the changes go.
	again := secondStep(in, mfaLogin(t, in, "stolen", "stolen-password-1"), recovery[0])
	expectTokens(t, "sign in again", again, "stolen")
	fresh := again.String("token")
	expectStatus(t, "new recovery codes", in.Do("POST", "/api/v1/auth/mfa/recovery-codes", fresh, nil), http.StatusOK)
	if r := in.Do("POST", "/api/v1/auth/mfa/passkeys/options", fresh, nil); r.Status != http.StatusOK || r.String("registration_token") == "" {
		t.Fatalf("passkey options: %d %s", r.Status, r.Raw)
	}
	expectStatus(t, "delete the passkey", in.Do("DELETE", "/api/v1/auth/mfa/passkeys/cred-1", fresh, nil), http.StatusNoContent)
	// The old session's tokens still may not.
	expectError(t, "old session after the new sign-in", in.Do("POST", "/api/v1/auth/mfa/recovery-codes", token, nil),
		http.StatusForbidden, "REAUTHENTICATION_REQUIRED")
}

// plantPasskey records a passkey for the user as its event (the browser
// test registers real ones).
func plantPasskey(t testing.TB, in *Instance, userID, credentialID string) {
	t.Helper()
	ctx := ctxFor(t)
	_, seq := in.Svc.Model.MFA(userID)
	data, err := events.Encode(commands.NewID("evt"), domain.AggregateMFA, userID, seq+1, in.Clock.Now(), events.Meta{Actor: events.System},
		domain.MFAPasskeyRegistered{UserID: userID, Passkey: domain.Passkey{ID: credentialID, Name: "laptop", PublicKey: []byte{1, 2, 3}, CreatedAt: in.Clock.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	last, err := in.Svc.Store.Append(ctx, events.Message{Subject: events.Subject(domain.AggregateMFA, userID), ExpectSeq: seq, ID: commands.NewID("cmd"), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Svc.Runner.WaitFor(ctx, last); err != nil {
		t.Fatal(err)
	}
}

// TestMFAPasskeysOnAnIPAddress: opened at an IP address without
// INFRACAST_PUBLIC_URL, a passkey's options are refused 400 saying why
// (WebAuthn takes no IP address as the relying party's ID), not 500.
func TestMFAPasskeysOnAnIPAddress(t *testing.T) {
	in := Start(t)
	in.CreateUser(in.AdminToken(), "byip", "byip-password-1", nil)
	token := in.Login("byip", "byip-password-1").String("token")
	expectError(t, "passkey options at 127.0.0.1", in.Do("POST", "/api/v1/auth/mfa/passkeys/options", token, nil),
		http.StatusBadRequest, "VALIDATION_ERROR", "host name", "INFRACAST_PUBLIC_URL")
	expectError(t, "passwordless options at 127.0.0.1", in.Do("POST", "/api/v1/auth/passkey/options", "", nil),
		http.StatusBadRequest, "VALIDATION_ERROR", "host name", "INFRACAST_PUBLIC_URL")
}

// TestMFATokensEndWithACutOff: a login's second step, and an enrolment,
// started before a deactivation — even one undone since — or a password
// change by an admin no longer go on: "an activation brings back nothing
// the deactivation stopped". Before, an outside check finished both after
// the activation, and enrolled its own TOTP with an enrolment token issued
// for a password an admin had since reset.
func TestMFATokensEndWithACutOff(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	id := in.CreateUser(admin, "paused", "paused-password-1", map[string]string{"acme": "viewer"})
	secret, _ := enrollTOTP(t, in, in.Login("paused", "paused-password-1").String("token"))
	mfaToken := mfaLogin(t, in, "paused", "paused-password-1")
	expectStatus(t, "deactivate", in.Do("POST", "/api/v1/users/"+id+"/deactivate", admin, nil), http.StatusOK)
	expectStatus(t, "activate", in.Do("POST", "/api/v1/users/"+id+"/activate", admin, nil), http.StatusOK)
	in.Clock.Advance(30 * time.Second)
	expectError(t, "second step begun before the deactivation", secondStep(in, mfaToken, totpAt(t, secret, in.Clock.Now())),
		http.StatusUnauthorized, "UNAUTHORIZED", "MFA token")
	expectTokens(t, "a new login", secondStep(in, mfaLogin(t, in, "paused", "paused-password-1"), totpAt(t, secret, in.Clock.Now())), "paused")

	// Enrolment tokens, under a policy for globex.
	expectStatus(t, "globex requires MFA", in.Do("PUT", "/api/v1/admin/mfa/policy/globex", admin, map[string]bool{"required": true}), http.StatusOK)
	newID := in.CreateUser(admin, "newbie", "newbie-password-1", map[string]string{"globex": "viewer"})
	enrollment := func() string {
		t.Helper()
		r := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "newbie", "password": "newbie-password-1"})
		if r.Status != http.StatusForbidden || r.ErrorCode() != "MFA_ENROLLMENT_REQUIRED" {
			t.Fatalf("login under the policy: %d %s", r.Status, r.Raw)
		}
		return r.String("enrollment_token")
	}
	tok := enrollment()
	expectStatus(t, "deactivate newbie", in.Do("POST", "/api/v1/users/"+newID+"/deactivate", admin, nil), http.StatusOK)
	expectStatus(t, "activate newbie", in.Do("POST", "/api/v1/users/"+newID+"/activate", admin, nil), http.StatusOK)
	expectError(t, "enrolment begun before the deactivation", in.Do("POST", "/api/v1/auth/mfa/totp", tok, nil), http.StatusUnauthorized, "UNAUTHORIZED")
	tok = enrollment()
	expectStatus(t, "an admin resets the password", in.Do("POST", "/api/v1/users/"+newID+"/password", admin,
		map[string]string{"password": "newbie-password-2"}), http.StatusNoContent)
	expectError(t, "enrolment begun before the reset", in.Do("POST", "/api/v1/auth/mfa/totp", tok, nil), http.StatusUnauthorized, "UNAUTHORIZED")
	r := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "newbie", "password": "newbie-password-2"})
	expectStatus(t, "enrolment after signing in again", in.Do("POST", "/api/v1/auth/mfa/totp", r.String("enrollment_token"), nil), http.StatusCreated)
}
