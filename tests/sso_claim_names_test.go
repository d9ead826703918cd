package tests

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSSOClaimNamesExact: an ID token's or a userinfo answer's claims are
// read with their exact names, and an object that holds a name twice —
// exactly or in another letter case — is refused (401, logged with the
// reason). encoding/json read "Email_Verified": true as email_verified, so
// that with link_by_email an ID token saying email_verified: false linked
// mallory's first login to alice's account; and a "Sub" claim stood for sub
// (outside check 18s). A custom claim in another case with no registered
// counterpart is only a claim.
func TestSSOClaimNamesExact(t *testing.T) {
	var logs LogBuffer
	in := StartLogged(t, &logs)
	admin := in.AdminToken()
	aliceID := in.CreateUser(admin, "alice", "alice-password-1", nil) // alice@example.com
	mallory := testOIDCUser{Subject: "00u-mallory", Email: "alice@example.com", EmailVerified: false, Username: "mallory",
		ExtraClaims: map[string]any{"Email_Verified": true}}
	idp := configureOIDC(t, in, admin, "oidc", "corp", mallory, map[string]any{"link_by_email": true})
	login := func() Response { return newBrowser(t).get(in.URL + "/api/v1/auth/sso/corp/login") }

	// The test IdP omits email_verified: false: the ID token says only
	// "Email_Verified": true, which is no email_verified.
	r := login()
	mustStatus(t, r, http.StatusOK, "an ID token with Email_Verified only")
	if ssoUserOf(t, r)["id"] == aliceID {
		t.Fatal(`"Email_Verified": true linked mallory to alice's account`)
	}

	// Both: refused, whichever comes last.
	mallory.Email, mallory.EmailVerified = "mallory@corp.example", true
	mallory.ExtraClaims = map[string]any{"EMAIL_VERIFIED": false}
	idp.SetUser(mallory)
	mustError(t, login(), http.StatusUnauthorized, "UNAUTHORIZED", "an ID token with email_verified in two letter cases")
	Eventually(t, 5*time.Second, func() error {
		if !strings.Contains(logs.String(), "is given twice (exactly or in another letter case)") {
			return fmt.Errorf("no log line gives the reason:\n%s", logs.String())
		}
		return nil
	})

	// A sub in another letter case: alice's subject under "Sub".
	mallory.ExtraClaims = map[string]any{"Sub": "00u-alice"}
	idp.SetUser(mallory)
	mustError(t, login(), http.StatusUnauthorized, "UNAUTHORIZED", "an ID token with sub in two letter cases")

	// A custom claim of its own in capitals is read as nothing else.
	mallory.ExtraClaims = map[string]any{"Department": "ops"}
	idp.SetUser(mallory)
	mustStatus(t, login(), http.StatusOK, "an ID token with a custom claim")

	// The userinfo answer is read the same way: a case variant alone is
	// nothing, two of a name are refused.
	lee := testOIDCUser{Subject: "00u-lee", Email: "alice@example.com", Username: "lee", ExtraClaims: map[string]any{"EMAIL_VERIFIED": true}}
	lean := opFor(t, in, "lean", testOPOptions{UserinfoOnly: true}, lee)
	mustStatus(t, postProvider(in, admin, "oidc", "lean", lean, map[string]any{"link_by_email": true}), http.StatusCreated, "configure lean")
	r = newBrowser(t).get(in.URL + "/api/v1/auth/sso/lean/login")
	mustStatus(t, r, http.StatusOK, "a userinfo answer with EMAIL_VERIFIED only")
	if ssoUserOf(t, r)["id"] == aliceID {
		t.Fatal("a userinfo answer's EMAIL_VERIFIED: true linked lee to alice's account")
	}
	lee.Subject, lee.ExtraClaims = "00u-lee2", map[string]any{"Email": "boss@corp.example"}
	lean.SetUser(lee)
	mustError(t, newBrowser(t).get(in.URL+"/api/v1/auth/sso/lean/login"), http.StatusUnauthorized, "UNAUTHORIZED", "a userinfo answer with email in two letter cases")
}
