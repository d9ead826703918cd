package tests

import (
	"fmt"
	"net/http"
	"strings"
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

// TestMFATOTPConfirmationNeedsARecentSignIn: confirming a pending TOTP
// enrolment is a change of the caller's factors like the enrolment: an
// access token of a session that signed in more than ReauthWindow ago is
// refused 403 REAUTHENTICATION_REQUIRED, one scoped to a tenant 403
// FORBIDDEN, with the right code too, and nothing is stored. The codes
// are guesses like a second step's: wrong ones are mfa.failed (reason
// invalid_enrolment_code), and after five the right one is refused 429
// with Retry-After — and so is the password. Before, a stolen stale or
// scoped token took unlimited guesses (all 400, nothing recorded), and a
// hit answered new recovery codes (outside check 17b).
func TestMFATOTPConfirmationNeedsARecentSignIn(t *testing.T) {
	in := Start(t)
	id := in.CreateUser(in.AdminToken(), "pending", "pending-password-1", map[string]string{"prod": "viewer"})
	token := in.Login("pending", "pending-password-1").String("token")
	r := in.Do("POST", "/api/v1/auth/mfa/totp", token, nil) // scanned, never confirmed
	expectStatus(t, "enrol", r, http.StatusCreated)
	secret := r.String("secret")
	confirm := func(tok, code string) Response {
		return in.Do("POST", "/api/v1/auth/mfa/totp/confirm", tok, map[string]string{"code": code})
	}

	scoped := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "pending", "password": "pending-password-1", "tenant": "prod"})
	expectStatus(t, "scoped login", scoped, http.StatusOK)
	before := head(t, in)
	expectError(t, "confirm with a token scoped to a tenant", confirm(scoped.String("token"), totpAt(t, secret, in.Clock.Now())),
		http.StatusForbidden, "FORBIDDEN", "scoped to a tenant")
	in.Clock.Advance(ihttp.ReauthWindow + time.Second)
	expectError(t, "confirm from an old session", confirm(token, totpAt(t, secret, in.Clock.Now())),
		http.StatusForbidden, "REAUTHENTICATION_REQUIRED", "Sign in again")
	if h := head(t, in); h != before {
		t.Fatalf("refused confirmations appended %d events", h-before)
	}

	fresh := in.Login("pending", "pending-password-1").String("token")
	right := totpAt(t, secret, in.Clock.Now())
	wrong := 0
	for i := 0; wrong < 5; i++ {
		c := fmt.Sprintf("%06d", (123457+i*7919)%1000000)
		if c == right || c == totpAt(t, secret, in.Clock.Now().Add(-30*time.Second)) || c == totpAt(t, secret, in.Clock.Now().Add(30*time.Second)) {
			continue
		}
		wrong++
		expectError(t, "a wrong confirmation code", confirm(fresh, c), http.StatusBadRequest, "VALIDATION_ERROR", "code")
	}
	r = confirm(fresh, right)
	expectError(t, "the right code after five wrong ones", r, http.StatusTooManyRequests, "RATE_LIMITED")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	expectError(t, "the password after five wrong confirmation codes", in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "pending", "password": "pending-password-1"}),
		http.StatusTooManyRequests, "RATE_LIMITED")
	failed := 0
	for _, e := range storedEvents(t, in.Svc) {
		if e.Type == "mfa.failed" && e.AggregateID == id && strings.Contains(string(e.Data), `"invalid_enrolment_code"`) {
			failed++
		}
	}
	if failed != 5 {
		t.Fatalf("%d mfa.failed (invalid_enrolment_code) stored, want 5", failed)
	}
	if st := in.Do("GET", "/api/v1/auth/mfa", fresh, nil); st.JSON["totp"] != false || st.JSON["totp_pending"] != true {
		t.Fatalf("after the refused confirmations: %s", st.Raw)
	}

	// Once the lockout is over, a new sign-in confirms with a code.
	in.Clock.Advance(15*time.Minute + time.Second)
	again := in.Login("pending", "pending-password-1").String("token")
	r = confirm(again, totpAt(t, secret, in.Clock.Now()))
	expectStatus(t, "confirm after a new sign-in", r, http.StatusOK)
	if codes, _ := r.JSON["recovery_codes"].([]any); len(codes) != 10 {
		t.Fatalf("recovery codes: %s", r.Raw)
	}
}

// TestMFAOwnResetNeedsARecentSignIn: an admin's reset of its own second
// factors (POST /users/{own id}/mfa/reset) is a change of its own factors:
// from a session that signed in more than ReauthWindow ago it is refused
// 403 REAUTHENTICATION_REQUIRED, as the self-service changes are, and
// from an API key of its own too (a key has no sign-in); nothing is
// stored, the factor stays. Before, the stale token took every factor away
// (outside check 17b) while a passkey's deletion from it was refused. A
// token scoped to a tenant is refused it (403 FORBIDDEN), however recent.
// Another user's reset stays an admin change made with any valid admin
// token (docs/security.md, "Known limits").
func TestMFAOwnResetNeedsARecentSignIn(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	taID := in.CreateUser(admin, "ta", "ta-password-123", map[string]string{"beta": "admin"})
	userID := in.CreateUser(admin, "member", "member-password-1", map[string]string{"beta": "viewer"})
	tok := in.Login("ta", "ta-password-123").String("token")
	_, recovery := enrollTOTP(t, in, tok)
	key := in.Do("POST", "/api/v1/api-keys", tok, map[string]any{"name": "ops", "tenants": []string{"beta"}, "permissions": []string{"admin:*"}})
	expectStatus(t, "ta's key", key, http.StatusCreated)
	memberTok := in.Login("member", "member-password-1").String("token")
	enrollTOTP(t, in, memberTok)

	in.Clock.Advance(ihttp.ReauthWindow + time.Second)
	before := head(t, in)
	expectError(t, "own reset from an old session", in.Do("POST", "/api/v1/users/"+taID+"/mfa/reset", tok, nil),
		http.StatusForbidden, "REAUTHENTICATION_REQUIRED", "Sign in again")
	expectError(t, "own reset with an API key", in.Do("POST", "/api/v1/users/"+taID+"/mfa/reset", key.String("key"), nil),
		http.StatusForbidden, "REAUTHENTICATION_REQUIRED", "API key")
	// A token scoped to a tenant, however recent, changes no account.
	r := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "ta", "password": "ta-password-123", "tenant": "beta"})
	if r.ErrorCode() != "MFA_REQUIRED" {
		t.Fatalf("scoped login: %d %s", r.Status, r.Raw)
	}
	scoped := secondStep(in, r.String("mfa_token"), recovery[1])
	expectStatus(t, "scoped second step", scoped, http.StatusOK)
	before = head(t, in)
	expectError(t, "own reset with a token scoped to a tenant", in.Do("POST", "/api/v1/users/"+taID+"/mfa/reset", scoped.String("token"), nil),
		http.StatusForbidden, "FORBIDDEN", "scoped to a tenant")
	if h := head(t, in); h != before {
		t.Fatalf("refused resets appended %d events", h-before)
	}
	mfaLogin(t, in, "ta", "ta-password-123") // the factor stays

	// Another user's reset: an admin change, as before.
	r = in.Do("POST", "/api/v1/users/"+userID+"/mfa/reset", tok, nil)
	expectStatus(t, "a member's reset from the same token", r, http.StatusOK)

	// Signed in again: the own reset goes.
	fresh := secondStep(in, mfaLogin(t, in, "ta", "ta-password-123"), recovery[0])
	expectTokens(t, "sign in again", fresh, "ta")
	expectStatus(t, "own reset from a new sign-in", in.Do("POST", "/api/v1/users/"+taID+"/mfa/reset", fresh.String("token"), nil), http.StatusOK)
	expectTokens(t, "the password alone afterwards", in.Login("ta", "ta-password-123"), "ta")
}
