package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// soon waits, up to 5 s — well before the console's 20-s /auth/me check —
// for js to be true in the page.
func soon(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(5*time.Second))
}

// TestConsoleTabs: two tabs of one browser share the cookies, so one
// session. When tab 2 signs out, tab 1 shows the sign-in screen at once
// ("You signed out in another tab"); when tab 2 then signs in as bob, tab 1
// does not silently become bob but says "Signed in as bob in another tab"
// until its user chooses to continue as bob. Both within seconds (a
// BroadcastChannel), not at the next 20-s check (docs/console.md).
func TestConsoleTabs(t *testing.T) {
	in := Start(t)
	in.CreateUser(in.AdminToken(), "bob", "correct horse battery", map[string]string{"acme": "admin"})
	tab1 := consoleChrome(t)
	consoleSignIn(t, tab1, in.URL, AdminUser, AdminPassword)
	tab2, cancel := chromedp.NewContext(tab1) // a second tab of the same browser
	t.Cleanup(cancel)
	navigateUntil(t, tab2, in.URL+"/console", `document.body.getAttribute('data-user') === 'admin'`)

	run(t, tab2, "sign out in tab 2", clickJS(`#signout`), until(`document.body.getAttribute('data-state') === 'signed-out'`))
	run(t, tab1, "tab 1 signed out", soon(`document.body.getAttribute('data-state') === 'signed-out' && /another tab/.test((document.getElementById('signed-out-reason') || {}).textContent || '')`))

	run(t, tab2, "sign in as bob in tab 2", fill(`#username`, "bob"), fill(`#password`, "correct horse battery"), chromedp.Click(`#signin-submit`),
		until(`document.body.getAttribute('data-user') === 'bob' && document.body.getAttribute('data-state') === 'signed-in'`))
	run(t, tab1, "tab 1 says bob signed in", soon(`/Signed in as bob in another tab/.test((document.getElementById('user-changed') || {}).textContent || '')`))
	if who := evalString(t, tab1, `document.body.getAttribute('data-state') + ' ' + (document.body.getAttribute('data-user') || '')`); who != "user-changed " {
		t.Fatalf("tab 1 after bob signed in in tab 2: %q, want the user-changed notice and no user shown", who)
	}
	checkAxe(t, tab1, "user changed in another tab")
	run(t, tab1, "continue as bob", clickJS(`#continue-as`), until(`document.body.getAttribute('data-user') === 'bob' && document.body.getAttribute('data-state') === 'signed-in'`))
	if who := strings.TrimSpace(evalString(t, tab1, `document.getElementById('who').textContent`)); who != "bob" {
		t.Fatalf("tab 1 shows %q, want bob", who)
	}

	// Signed out and in again, as admin: tab 1, which showed bob, is told.
	run(t, tab2, "sign out in tab 2 again", clickJS(`#signout`), until(`document.body.getAttribute('data-state') === 'signed-out'`))
	run(t, tab1, "tab 1 signed out again", soon(`document.body.getAttribute('data-state') === 'signed-out'`))
	run(t, tab2, "sign in as admin in tab 2", fill(`#username`, AdminUser), fill(`#password`, AdminPassword), chromedp.Click(`#signin-submit`),
		until(fmt.Sprintf(`document.body.getAttribute('data-user') === %q`, AdminUser)))
	run(t, tab1, "tab 1 says admin signed in", soon(fmt.Sprintf(`/Signed in as %s in another tab/.test((document.getElementById('user-changed') || {}).textContent || '')`, AdminUser)))
	run(t, tab1, "continue as admin", clickJS(`#continue-as`), until(fmt.Sprintf(`document.body.getAttribute('data-user') === %q`, AdminUser)))

	// A sign-in no tab announces (the API called directly): tab 1's own
	// check of /auth/me — here the one when its tab is shown again — finds
	// another user than it shows, and says so.
	if got := evalString(t, tab2, `fetch('/api/v1/auth/token', {method: 'POST', credentials: 'same-origin',
  headers: {'X-Infracast-Session': 'cookie', 'Content-Type': 'application/json'}, body: JSON.stringify({username: 'bob', password: 'correct horse battery'})})
  .then(function (r) { return String(r.status); })`); got != "200" {
		t.Fatalf("bob's sign-in by the API: %s", got)
	}
	run(t, tab1, "tab 1 shown again", chromedp.Evaluate[chromedp.Void](`document.dispatchEvent(new Event('visibilitychange'))`),
		soon(`/Signed in as bob in another tab/.test((document.getElementById('user-changed') || {}).textContent || '')`))
	noPolicyBreach(t, tab1)
}
