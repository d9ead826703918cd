package tests

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/infracast/auth/http/service"
)

// The sign-in page when something goes wrong, in headless Chromium with
// the DevTools virtual authenticator (outside check 14e).

// virtualAuthenticator adds a platform authenticator with resident keys
// and user verification to the browser of ctx, and returns its ID.
func virtualAuthenticator(t *testing.T, ctx context.Context) webauthn.AuthenticatorID {
	t.Helper()
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	added, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return added.AuthenticatorID
}

// addCredential is WebAuthn.addCredential with the fields of a credential
// that Chromium takes: cdproto's sends generateCmtgKeyOnNextOperation
// always, which Chromium refuses ("CMTG is not supported by this
// authenticator").
var addCredential = cdp.Command[addCredentialParams, cdp.Empty]{Method: webauthn.CommandAddCredential}

type addCredentialParams struct {
	AuthenticatorID webauthn.AuthenticatorID `json:"authenticatorId"`
	Credential      addedCredential          `json:"credential"`
}

type addedCredential struct {
	CredentialID         []byte  `json:"credentialId"`
	IsResidentCredential bool    `json:"isResidentCredential"`
	RpID                 string  `json:"rpId"`
	PrivateKey           []byte  `json:"privateKey"`
	UserHandle           []byte  `json:"userHandle,omitempty"`
	SignCount            float64 `json:"signCount"`
}

func credentialToAdd(c *webauthn.Credential) addedCredential {
	return addedCredential{CredentialID: c.CredentialID, IsResidentCredential: c.IsResidentCredential, RpID: "localhost",
		PrivateKey: c.PrivateKey, UserHandle: c.UserHandle, SignCount: c.SignCount}
}

// inSequence is one action doing actions one after the other.
func inSequence(actions ...chromedp.Action[chromedp.Void]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		for _, a := range actions {
			if _, err := a(ctx, tg); err != nil {
				return chromedp.Void{}, err
			}
		}
		return chromedp.Void{}, nil
	}
}

// statusSays is the condition that the page's status line matches the
// regular expression re (JavaScript syntax).
func statusSays(re string) string {
	return re + `.test(document.getElementById('status').textContent)`
}

// TestLoginPagePasskeyRefusals: at the address of the public URL's host
// but another name (127.0.0.1 for localhost), the password's answer names
// the origin to open the page at (it said "Missing or invalid CSRF token")
// and "Sign in with a passkey" names the browser's SecurityError (it said
// only "The passkey was not used"). At the second step, a passkey that
// does not verify (the authenticator's key is not the one registered) is
// "The passkey was not accepted", not "Invalid or already used code"; and
// "Use a passkey" with an expired MFA token goes back to the sign-in form,
// as the code form does (it stayed on the second step, with no form).
func TestLoginPagePasskeyRefusals(t *testing.T) {
	addr := freeAddr(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	public := "http://localhost:" + port
	in := Start(t, WithListen(addr), func(c *service.Config) { c.PublicURL = public })
	in.CreateUser(in.AdminToken(), "hank", "correct horse battery", map[string]string{"acme": "editor"})

	ctx := newChrome(t)
	authenticator := virtualAuthenticator(t, ctx)
	_, run := loginPageDriver(t, ctx)
	until, state := loginPagePoll, loginPageState
	click := func(id string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.ID(id)) }
	signInWithPassword := func() chromedp.Action[chromedp.Void] {
		return inSequence(chromedp.SetValue(chromedp.ID("username"), "hank"),
			chromedp.SetValue(chromedp.ID("password"), "correct horse battery"), click("submit"))
	}

	// The page at http://127.0.0.1:<port>.
	navigateUntil(t, ctx, "http://"+addr+"/login", state("signed-out"))
	run("password at another origin", signInWithPassword(),
		until(state("signed-out")+` && `+statusSays(`/open the page at `+strings.ReplaceAll(public, "/", `\/`)+`$/`)))
	run("passkey at another origin", click("passkey"),
		until(state("signed-out")+` && `+statusSays(`/^The passkey was not used \(SecurityError/`)))

	// At the public URL: a passkey, then the second step.
	navigateUntil(t, ctx, public+"/login", state("signed-out"))
	run("signed in", signInWithPassword(), until(state("signed-in")))
	run("add a passkey", chromedp.SetValue(chromedp.ID("passkey-name"), "Laptop"), click("add-passkey"), until(state("recovery")))
	run("codes saved", click("recovery-done"), until(state("signed-in")+` && document.body.getAttribute('data-passkeys') === '1'`))
	run("sign out", click("logout"), until(state("signed-out")))
	run("second step", signInWithPassword(), until(state("mfa")+` && !document.getElementById('mfa-passkey').hidden`))

	// The authenticator answers with another key under the same credential.
	got, err := chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: authenticator})
	if err != nil || len(got.Credentials) != 1 {
		t.Fatalf("the authenticator holds %+v (%v), want one credential", got, err)
	}
	registered := got.Credentials[0]
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := x509.MarshalPKCS8PrivateKey(other)
	if err != nil {
		t.Fatal(err)
	}
	forged := *registered
	forged.PrivateKey, forged.SignCount = otherKey, registered.SignCount+1
	if _, err := chromedp.Call(ctx, webauthn.RemoveCredential, webauthn.RemoveCredentialParams{AuthenticatorID: authenticator, CredentialID: registered.CredentialID}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, addCredential, addCredentialParams{AuthenticatorID: authenticator, Credential: credentialToAdd(&forged)}); err != nil {
		t.Fatal(err)
	}
	run("a passkey that does not verify", click("mfa-passkey"),
		until(state("mfa")+` && document.getElementById('status').textContent === 'The passkey was not accepted'`))
	if n := countEvents(storedEvents(t, in.Svc), "mfa.failed", ""); n != 1 {
		t.Errorf("%d mfa.failed events, want the refused passkey's", n)
	}

	// The MFA token expires; the passkey is the registered one again.
	if _, err := chromedp.Call(ctx, webauthn.RemoveCredential, webauthn.RemoveCredentialParams{AuthenticatorID: authenticator, CredentialID: registered.CredentialID}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, addCredential, addCredentialParams{AuthenticatorID: authenticator, Credential: credentialToAdd(registered)}); err != nil {
		t.Fatal(err)
	}
	in.Clock.Advance(6 * time.Minute)
	run("an expired MFA token", click("mfa-passkey"),
		until(state("signed-out")+` && `+statusSays(`/^MFA token invalid/`)+` && `+shownJS("#login")))
	run("sign in again", chromedp.SetValue(chromedp.ID("password"), "correct horse battery"), click("submit"), until(state("mfa")))
	run("with the passkey", click("mfa-passkey"), until(state("signed-in")))
}

// TestLoginPageEndsOfASessionOrEnrolment: a session revoked by an
// administrator's reset of the user's factors, under the signed-in view,
// leads to the sign-in form at the next click (it said "Invalid or expired
// token" under "Signed in as …" and its buttons); a passkey registration
// whose ceremony expired asks to start again, still signed in (it said
// "sign in again"); an enrolment step whose token a reset voided leads to
// the sign-in form without the void key and QR code; and "a second factor
// is set up already" (set up through another sign-in meanwhile) stays on
// the code step it leads to (it was wiped at once).
func TestLoginPageEndsOfASessionOrEnrolment(t *testing.T) {
	addr := freeAddr(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	public := "http://localhost:" + port
	in := Start(t, WithListen(addr), func(c *service.Config) { c.PublicURL = public })
	admin := in.AdminToken()
	hankID := in.CreateUser(admin, "hank", "correct horse battery", map[string]string{"beta": "editor"})
	ivyID := in.CreateUser(admin, "ivy", "ivy-passphrase-long", map[string]string{"acme": "viewer"})
	in.CreateUser(admin, "jay", "jay-passphrase-long", map[string]string{"acme": "viewer"})
	expectStatus(t, "acme requires MFA", in.Do("PUT", "/api/v1/admin/mfa/policy/acme", admin, map[string]bool{"required": true}), http.StatusOK)

	ctx := newChrome(t)
	virtualAuthenticator(t, ctx)
	_, run := loginPageDriver(t, ctx)
	until, state := loginPagePoll, loginPageState
	click := func(id string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.ID(id)) }
	signIn := func(user, password string) chromedp.Action[chromedp.Void] {
		return inSequence(chromedp.SetValue(chromedp.ID("username"), user),
			chromedp.SetValue(chromedp.ID("password"), password), click("submit"))
	}
	noEnrolmentLeft := `document.getElementById('enroll-secret').textContent === '' && !document.getElementById('enroll-qr').getAttribute('src')`

	// Signed in; an administrator resets hank's factors, which revokes his
	// sessions.
	navigateUntil(t, ctx, public+"/login", state("signed-out"))
	run("hank signs in", signIn("hank", "correct horse battery"), until(state("signed-in")))
	expectStatus(t, "reset hank's factors", in.Do("POST", "/api/v1/users/"+hankID+"/mfa/reset", admin, nil), http.StatusOK)
	run("a click after the reset", click("add-passkey"),
		until(state("signed-out")+` && `+statusSays(`/^Your session has ended/`)+` && `+shownJS("#login")))

	// A passkey registration whose ceremony expires while the
	// authenticator is asked (held here until the clock moved on).
	run("hank signs in again", signIn("hank", "correct horse battery"), until(state("signed-in")))
	run("hold the authenticator", chromedp.Evaluate[chromedp.Void](`(function () {
  var create = navigator.credentials.create.bind(navigator.credentials);
  var hold = new Promise(function (release) { window.releaseCreate = release; });
  navigator.credentials.create = function (o) { window.createAsked = true; return hold.then(function () { return create(o); }); };
})()`))
	run("add a passkey", click("add-passkey"), until(`window.createAsked === true`))
	in.Clock.Advance(6 * time.Minute)
	run("the ceremony expired", chromedp.Evaluate[chromedp.Void](`window.releaseCreate()`),
		until(state("signed-in")+` && `+statusSays(`/start the passkey registration again$/`)))
	run("sign out", click("logout"), until(state("signed-out")))

	// ivy at the enrolment step; an administrator resets her factors.
	run("ivy signs in", signIn("ivy", "ivy-passphrase-long"),
		until(state("enroll")+` && document.getElementById('enroll-qr').naturalWidth > 0`))
	expectStatus(t, "reset ivy's factors", in.Do("POST", "/api/v1/users/"+ivyID+"/mfa/reset", admin, nil), http.StatusOK)
	run("a code after the reset", chromedp.SetValue(chromedp.ID("enroll-code"), "000000"), click("enroll-submit"),
		until(state("signed-out")+` && `+statusSays(`/^The set-up of a second factor has ended/`)+` && `+noEnrolmentLeft))

	// jay at the enrolment step sets TOTP up through another sign-in.
	in.Clock.Advance(time.Minute)
	run("jay signs in", signIn("jay", "jay-passphrase-long"), until(state("enroll")))
	r := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "jay", "password": "jay-passphrase-long"})
	if r.Status != http.StatusForbidden || r.ErrorCode() != "MFA_ENROLLMENT_REQUIRED" {
		t.Fatalf("jay under the policy: %d %s", r.Status, r.Raw)
	}
	enrollTOTP(t, in, r.String("enrollment_token"))
	run("a code of the page's enrolment", chromedp.SetValue(chromedp.ID("enroll-code"), "000000"), click("enroll-submit"),
		until(state("mfa")+` && `+statusSays(`/^A second factor is set up already/`)))
}

// TestLoginPagePasskeyAddedAcrossASignInElsewhere: while the authenticator
// is asked for a new passkey, the user signs in again in another tab
// (which sets a new CSRF cookie): the passkey is still added. The page read
// the CSRF token once, at the click, and the registration was refused
// "Missing or invalid CSRF token" (re-check 14r3).
func TestLoginPagePasskeyAddedAcrossASignInElsewhere(t *testing.T) {
	addr := freeAddr(t)
	public := "http://localhost:" + addr[strings.LastIndex(addr, ":")+1:]
	in := Start(t, WithListen(addr), func(c *service.Config) { c.PublicURL = public })
	in.CreateUser(in.AdminToken(), "ivy", "correct horse battery", map[string]string{"acme": "editor"})

	ctx := newChrome(t)
	virtualAuthenticator(t, ctx)
	_, run := loginPageDriver(t, ctx)
	until, state := loginPagePoll, loginPageState
	click := func(id string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.ID(id)) }

	navigateUntil(t, ctx, public+"/login", state("signed-out"))
	run("signed in", chromedp.SetValue(chromedp.ID("username"), "ivy"),
		chromedp.SetValue(chromedp.ID("password"), "correct horse battery"), click("submit"), until(state("signed-in")))
	// The other tab's sign-in, made once the authenticator has answered and
	// before the page sends the registration.
	run("another tab signs in meanwhile", chromedp.Evaluate[chromedp.Void](`(function () {
  var create = navigator.credentials.create.bind(navigator.credentials);
  var csrf = function () { var m = /(?:^|; )infracast_csrf=([^;]*)/.exec(document.cookie); return m ? m[1] : ''; };
  navigator.credentials.create = function (o) {
    var before = csrf();
    return create(o).then(function (c) {
      return fetch('/api/v1/auth/token', {method: 'POST', credentials: 'same-origin',
        headers: {'Content-Type': 'application/json', 'X-Infracast-Session': 'cookie'},
        body: JSON.stringify({username: 'ivy', password: 'correct horse battery'})
      }).then(function (r) { window.elsewhere = r.status === 200 && csrf() !== before; return c; });
    });
  };
})()`))
	run("add a passkey", chromedp.SetValue(chromedp.ID("passkey-name"), "Laptop"), click("add-passkey"),
		until(`window.elsewhere === true && `+state("recovery")))
	run("codes saved", click("recovery-done"), until(state("signed-in")+` && document.body.getAttribute('data-passkeys') === '1'`))
}
