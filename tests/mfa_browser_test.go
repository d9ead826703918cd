package tests

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	ihttp "github.com/infracast/auth/http"
	"github.com/infracast/auth/http/service"
)

// TestMFABrowserPasskeys: in headless Chromium with the DevTools virtual
// authenticator (a platform authenticator with resident keys and user
// verification), on /login: register a passkey (its recovery codes shown
// once), sign in with it alone (passwordless), sign in with the password
// and the passkey as the second factor, through single sign-on and the
// passkey, with a wrong code and then a recovery code, delete it (and it no
// longer signs in); then a tenant's policy leads the user through TOTP
// enrolment (QR code and key), the recovery codes and the code step. The
// relying party is the public URL, http://localhost:<port> (WebAuthn takes
// no IP address as an RP ID). Screenshots of the states go to
// $INFRACAST_SCREENSHOT_DIR (docs/img for the docs: see docs/mfa.md).
//
// Elements are found by ID (chromedp.ID), never by a plain string: that is
// a DOM text search, which for "#passkey" also matches the style sheet's
// "#passkeys" rules — a node that is never visible, so a click on it waits
// forever.
func TestMFABrowserPasskeys(t *testing.T) {
	addr := freeAddr(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	public := "http://localhost:" + port
	in := Start(t, WithListen(addr), func(c *service.Config) { c.PublicURL = public })
	admin := in.AdminToken()
	frankID := in.CreateUser(admin, "frank", "correct horse battery", map[string]string{"acme": "editor"})
	// An identity provider that knows frank by his verified address.
	idp := configureOIDC(t, in, admin, "oidc", "corp", testOIDCUser{
		Subject: "frank-at-corp", Email: "frank@example.com", EmailVerified: true, Username: "frank",
	}, map[string]any{"link_by_email": true})
	idp.AddClient("client-corp", "secret-corp", public+"/api/v1/auth/sso/corp/callback")

	ctx := newChrome(t) // its deadline (a minute) bounds the whole test
	authenticator := virtualAuthenticator(t, ctx)
	page, run := loginPageDriver(t, ctx)
	until, state := loginPagePoll, loginPageState
	signedInAsFrank := state("signed-in") + ` && document.body.getAttribute('data-user') === 'frank'`
	click := func(id string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.ID(id)) }
	signInWithPassword := func() {
		t.Helper()
		run("password", chromedp.SetValue(chromedp.ID("username"), "frank"),
			chromedp.SetValue(chromedp.ID("password"), "correct horse battery"), click("submit"))
	}
	// Signed in, and signed out again, the page holds no password or code
	// for the next person at the screen to sign in with (outside check 11f:
	// the password stayed, and Enter signed the last user in again).
	noSecretsLeft := `['password', 'mfa-code', 'enroll-code'].every(function (id) { return document.getElementById(id).value === ''; })` +
		` && document.getElementById('enroll-secret').textContent === '' && !document.getElementById('enroll-qr').getAttribute('src')` +
		` && document.getElementById('recovery-codes').textContent === ''`
	signOut := func() {
		t.Helper()
		run("sign out", click("logout"), until(state("signed-out")+` && `+noSecretsLeft))
	}
	passkeyUses := func() int { return countEvents(storedEvents(t, in.Svc), "mfa.passkey_used", frankID) }

	// Signed out: the password form and the passkey button.
	navigateUntil(t, ctx, public+"/login", state("signed-out"))
	if !shown(t, ctx, "#passkey") || !shown(t, ctx, "#login") || !shown(t, ctx, "#sso-corp") {
		t.Fatal("signed out, the page shows no passkey button, password form or SSO button")
	}
	screenshot(t, ctx, "mfa-login-signed-out")

	// Sign in with the password (no factor yet), add a passkey: its
	// recovery codes are shown once, then the list.
	signInWithPassword()
	run("signed in", until(signedInAsFrank+` && document.body.getAttribute('data-passkeys') === '0' && `+noSecretsLeft))
	if !shown(t, ctx, "#no-passkeys") {
		t.Fatal("no passkey, and the page does not say so")
	}
	run("add a passkey", chromedp.SetValue(chromedp.ID("passkey-name"), "Laptop"), click("add-passkey"),
		until(state("recovery")+` && document.querySelectorAll('#recovery-codes li').length === 10`))
	recovery := strings.Fields(page(`Array.from(document.querySelectorAll('#recovery-codes li')).map(function (li) { return li.textContent; }).join(' ')`))
	if len(recovery) != 10 {
		t.Fatalf("recovery codes shown: %v", recovery)
	}
	run("codes saved", click("recovery-done"), until(signedInAsFrank+` && document.body.getAttribute('data-passkeys') === '1'`))
	if got := page(`document.querySelector('#passkeys li').firstChild.textContent`); got != "Laptop" || shown(t, ctx, "#no-passkeys") {
		t.Fatalf("the passkey list shows %q", got)
	}
	screenshot(t, ctx, "mfa-passkey-added")
	got, err := chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: authenticator})
	if err != nil || len(got.Credentials) != 1 || !got.Credentials[0].IsResidentCredential {
		t.Fatalf("the authenticator holds %+v (%v), want one resident (discoverable) credential", got, err)
	}

	// Passwordless: the passkey alone.
	signOut()
	run("passkey sign-in", click("passkey"), until(signedInAsFrank))
	if n := passkeyUses(); n != 1 {
		t.Fatalf("%d passkey uses after the passwordless sign-in, want 1", n)
	}

	// The password, then the second factor: a wrong code is refused on the
	// page, the passkey is accepted.
	signOut()
	signInWithPassword()
	run("MFA step", until(state("mfa")))
	// Each step takes the focus to its field (a keyboard or screen reader
	// user lands there, not at the page's top: outside check 11d).
	if f := page(`document.activeElement.id`); f != "mfa-code" {
		t.Errorf("at the MFA step the focus is on %q, want mfa-code", f)
	}
	if !shown(t, ctx, "#mfa-passkey") || !shown(t, ctx, "#mfa-code") || shown(t, ctx, "#login") {
		t.Fatal("the MFA step shows neither the passkey button nor the code field, or still the password form")
	}
	screenshot(t, ctx, "mfa-login-second-factor")
	run("wrong code", chromedp.SetValue(chromedp.ID("mfa-code"), "AAAA-BBBB-CCCC"), click("mfa-submit"),
		until(state("mfa")+` && document.getElementById('status').textContent === 'Invalid or already used code'`))
	// The refusal is the code field's: invalid, described by the message,
	// focused; the title names the step (outside check 20w).
	if got := page(tiedToStatus("mfa-code")); got != "true status mfa-code" {
		t.Errorf("after a wrong code, the code field: %q (want aria-invalid, described by #status, focused)", got)
	}
	if got := page(`document.title`); got != "Enter your code · Sign in · Infracast" {
		t.Errorf("the code step's title %q", got)
	}
	run("second factor", click("mfa-passkey"), until(signedInAsFrank))
	if n := passkeyUses(); n != 2 {
		t.Fatalf("%d passkey uses after the second factor, want 2", n)
	}

	// A recovery code instead, typed in lower case.
	signOut()
	signInWithPassword()
	run("MFA step again", until(state("mfa")))
	run("recovery code", chromedp.SetValue(chromedp.ID("mfa-code"), strings.ToLower(recovery[0])), click("mfa-submit"), until(signedInAsFrank))

	// Single sign-on, then the passkey: the identity provider's answer
	// lands on this page's second-factor step (the request options in the
	// fragment), which goes on to return_to.
	signOut()
	run("SSO", click("sso-corp"))
	afterNavigation(t, ctx, state("mfa")+` && !document.getElementById('mfa-passkey').hidden`)
	if u := page(`location.href`); strings.Contains(u, "#") || !strings.HasPrefix(u, public+"/login?return_to=") {
		t.Fatalf("after SSO the page is at %s (want /login?return_to=…, the fragment dropped)", u)
	}
	run("SSO second factor", click("mfa-passkey"))
	afterNavigation(t, ctx, signedInAsFrank+` && location.search === ''`) // on to return_to, this page
	if n := passkeyUses(); n != 3 {
		t.Fatalf("%d passkey uses after SSO, want 3", n)
	}

	// Past the re-authentication window the deletion asks to sign in again
	// (the sign-in form, the username filled in), then goes.
	in.Clock.Advance(ihttp.ReauthWindow + time.Second)
	run("delete, signed in too long ago", chromedp.Click(chromedp.CSS(`#passkeys button.delete`)),
		until(state("reauth")+` && /^Sign in again/.test(document.getElementById('status').textContent) && document.getElementById('username').value === 'frank'`))
	screenshot(t, ctx, "mfa-reauthenticate")
	run("sign in again", chromedp.SetValue(chromedp.ID("password"), "correct horse battery"), click("submit"), until(state("mfa")))
	// The list shown before signing in again says 1 as well: wait for the
	// one drawn after it, or the click below may hit a node being replaced
	// ("Could not find node with given id", seen once).
	run("with the passkey", chromedp.Evaluate[chromedp.Void](`document.body.removeAttribute('data-passkeys')`), click("mfa-passkey"),
		until(signedInAsFrank+` && document.body.getAttribute('data-passkeys') === '1'`))

	// Delete it: the list empties, the API agrees, and the authenticator's
	// credential no longer signs in.
	run("delete", chromedp.Click(chromedp.CSS(`#passkeys button.delete`)), until(`document.body.getAttribute('data-passkeys') === '0'`))
	frank := in.Login("frank", "correct horse battery") // no factor left: the documented answer
	expectTokens(t, "login after the deletion", frank, "frank")
	if st := in.Do("GET", "/api/v1/auth/mfa", frank.String("token"), nil); !strings.Contains(string(st.Raw), `"passkeys":[]`) {
		t.Fatalf("after deletion: %s", st.Raw)
	}
	signOut()
	run("deleted passkey", click("passkey"), until(state("signed-out")+` && document.getElementById('status').textContent === 'The passkey was not accepted'`))
	envs := storedEvents(t, in.Svc)
	for _, typ := range []string{"mfa.passkey_registered", "mfa.passkey_used", "mfa.passkey_deleted", "mfa.recovery_code_used", "mfa.failed"} {
		if countEvents(envs, typ, "") == 0 {
			t.Errorf("no %s event", typ)
		}
	}

	// A tenant requiring MFA: enrolment on the page (QR code and key), a
	// wrong code refused, the recovery codes, then the code step.
	expectStatus(t, "acme requires MFA", in.Do("PUT", "/api/v1/admin/mfa/policy/acme", admin, map[string]bool{"required": true}), http.StatusOK)
	in.Clock.Advance(time.Minute)
	signInWithPassword()
	run("enrolment", until(state("enroll")+` && document.getElementById('enroll-qr').naturalWidth > 0`))
	if f := page(`document.activeElement.id`); f != "enroll-code" {
		t.Errorf("at the enrolment step the focus is on %q, want enroll-code", f)
	}
	if !shown(t, ctx, "#enroll-passkey") {
		t.Fatal("the enrolment step offers no passkey")
	}
	screenshot(t, ctx, "mfa-login-enroll")
	secret := page(`document.getElementById('enroll-secret').textContent`)
	run("wrong enrolment code", chromedp.SetValue(chromedp.ID("enroll-code"), "000000"), click("enroll-submit"),
		until(state("enroll")+` && /does not match/.test(document.getElementById('status').textContent)`))
	// In words, tied to the field (outside check 20w: the API's raw
	// "code: does not match the secret being enrolled…").
	if got := page(`document.getElementById('status').textContent`); !strings.HasPrefix(got, "That code does not match the key shown.") {
		t.Errorf("a wrong enrolment code says %q", got)
	}
	if got := page(tiedToStatus("enroll-code")); got != "true status enroll-code" {
		t.Errorf("after a wrong enrolment code, the code field: %q (want aria-invalid, described by #status, focused)", got)
	}
	if got := page(`document.title`); got != "Set up a second factor · Sign in · Infracast" {
		t.Errorf("the enrolment step's title %q", got)
	}
	run("confirm", chromedp.SetValue(chromedp.ID("enroll-code"), totpAt(t, secret, in.Clock.Now())), click("enroll-submit"),
		until(state("recovery")+` && document.querySelectorAll('#recovery-codes li').length === 10`+
			` && document.getElementById('enroll-secret').textContent === '' && document.getElementById('enroll-code').value === ''`))
	screenshot(t, ctx, "mfa-login-recovery-codes")
	in.Clock.Advance(time.Minute)
	run("sign in again", click("recovery-done"), until(state("mfa")))
	if shown(t, ctx, "#mfa-passkey") || page(`document.getElementById('recovery-codes').textContent`) != "" {
		t.Fatal("the code step offers a passkey frank no longer has, or the recovery codes stayed in the page")
	}
	run("code", chromedp.SetValue(chromedp.ID("mfa-code"), totpAt(t, secret, in.Clock.Now())), click("mfa-submit"), until(signedInAsFrank+` && `+noSecretsLeft))

	// The answer to an enrolment's confirmation lost (Chromium sends the
	// POST again by itself when its connection closes): the first use of
	// the enrolment token set the factor up; the page, asked again with
	// the token, says so and leads to signing in with the factor, where it
	// offers a new set of recovery codes (those of the lost answer are in
	// force but shown nowhere).
	signOut()
	in.CreateUser(admin, "gail", "gail-passphrase-1", map[string]string{"acme": "viewer"})
	r := in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": "gail", "password": "gail-passphrase-1"})
	if r.Status != http.StatusForbidden || r.ErrorCode() != "MFA_ENROLLMENT_REQUIRED" {
		t.Fatalf("gail under the policy: %d %s", r.Status, r.Raw)
	}
	gailSecret, _ := enrollTOTP(t, in, r.String("enrollment_token")) // the lost answer
	navigateUntil(t, ctx, "about:blank", `true`)
	navigateUntil(t, ctx, public+"/login#enroll="+r.String("enrollment_token"),
		state("signed-out")+` && /set up already/.test(document.getElementById('status').textContent)`)
	if f := page(`document.activeElement.id`); f != "username" {
		t.Errorf("back at the sign-in form the focus is on %q, want username", f)
	}
	in.Clock.Advance(time.Minute)
	run("gail signs in", chromedp.SetValue(chromedp.ID("username"), "gail"), chromedp.SetValue(chromedp.ID("password"), "gail-passphrase-1"),
		click("submit"), until(state("mfa")))
	run("gail's code", chromedp.SetValue(chromedp.ID("mfa-code"), totpAt(t, gailSecret, in.Clock.Now())), click("mfa-submit"),
		until(state("signed-in")+` && document.body.getAttribute('data-user') === 'gail' && !document.getElementById('recovery-new-p').hidden`))
	run("new recovery codes", click("recovery-new"), until(state("recovery")+` && document.querySelectorAll('#recovery-codes li').length === 10`))
	run("saved", click("recovery-done"), until(state("signed-in")+` && document.body.getAttribute('data-user') === 'gail'`))
	if n := countEvents(storedEvents(t, in.Svc), "mfa.recovery_codes_generated", ""); n < 2 {
		t.Fatalf("%d recovery code sets generated, want gail's second", n)
	}
}

// afterNavigation waits until js is true on a page that is navigating (a
// poll in the page being left fails with "Cannot find context with
// specified id": it is asked again in the next one).
func afterNavigation(t *testing.T, ctx context.Context, js string) {
	t.Helper()
	Eventually(t, 15*time.Second, func() error {
		return chromedp.Do(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(5*time.Second)))
	})
}

// loginPageDriver drives the sign-in page in ctx: page reads what the page
// shows; run does the actions, each step within 15 s, and says what the
// page said when one fails.
func loginPageDriver(t *testing.T, ctx context.Context) (page func(js string) string, run func(what string, actions ...chromedp.Action[chromedp.Void])) {
	page = func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	run = func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			msg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.getAttribute('data-state') + ': ' + document.getElementById('status').textContent`))
			t.Fatalf("%s: %v (page: %q)", what, err, msg)
		}
	}
	return page, run
}

// tiedToStatus reads whether the login page's field id is marked invalid,
// described by the status line, and focused: "true status <id>" when so.
func tiedToStatus(id string) string {
	return `(function (f) { return f.getAttribute('aria-invalid') + ' ' + f.getAttribute('aria-describedby') + ' ' + document.activeElement.id; })(document.getElementById('` + id + `'))`
}

// loginPagePoll waits until js holds on the page.
func loginPagePoll(js string) chromedp.Action[chromedp.Void] { return chromedp.Poll[chromedp.Void](js) }

// loginPageState is the condition that the sign-in page is in state s.
func loginPageState(s string) string {
	return `document.body.getAttribute('data-state') === '` + s + `'`
}
