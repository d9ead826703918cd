package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestLoginPageRefusalsTiedToFields: on /login a wrong password marks the
// password field invalid, described by the status line that says why, and
// focuses it; a lockout says how long to wait (from Retry-After, rounded),
// not "later"; the title names each state (outside check 20w: the message
// was tied to no field, the lockout said "try again later" and the title
// was "Sign in" even signed in).
func TestLoginPageRefusalsTiedToFields(t *testing.T) {
	in := Start(t, withThrottle(2, 0, 15*time.Minute))
	admin := in.AdminToken()
	in.CreateUser(admin, "gail", "correct horse battery", map[string]string{"acme": "viewer"})
	ctx := newChrome(t)
	page, run := loginPageDriver(t, ctx)
	navigateUntil(t, ctx, in.URL+"/login", loginPageState("signed-out"))
	if got := page(`document.title`); got != "Sign in · Infracast" {
		t.Errorf("signed out, the title is %q", got)
	}
	run("wrong password", chromedp.SendKeys(chromedp.ID("username"), "gail"), chromedp.SendKeys(chromedp.ID("password"), "wrong"+kb.Enter),
		loginPagePoll(`document.getElementById('status').textContent === 'Invalid username or password'`))
	if got := page(tiedToStatus("password")); got != "true status password" {
		t.Errorf("after a wrong password, the password field: %q (want aria-invalid, described by #status, focused)", got)
	}
	if r := login(in, "gail", "wrong again"); r.Status != 401 { // the second failure locks the account
		t.Fatalf("second failure: %d %s", r.Status, r.Raw)
	}
	run("locked", chromedp.SetValue(chromedp.ID("password"), "correct horse battery"), chromedp.Click(chromedp.ID("submit")),
		loginPagePoll(`/Too many/.test(document.getElementById('status').textContent)`))
	if got := page(`document.getElementById('status').textContent`); got != "Too many failed sign-in attempts: try again in 15 minutes." {
		t.Errorf("the lockout says %q", got)
	}
	if got := page(tiedToStatus("password")); got != "true status password" {
		t.Errorf("after the lockout, the password field: %q", got)
	}
	// A status that is no refusal frees the field again.
	in.Clock.Advance(16 * time.Minute)
	run("signed in", chromedp.Click(chromedp.ID("submit")), loginPagePoll(loginPageState("signed-in")))
	if got := page(`document.title + ' | ' + document.getElementById('password').hasAttribute('aria-invalid')`); !strings.HasPrefix(got, "Signed in · Infracast | false") {
		t.Errorf("signed in: %q", got)
	}
}
