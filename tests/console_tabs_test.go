package tests

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
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
	in, tab1, tab2 := adminAndBobInTwoTabs(t)
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

// passwordCookieSignIn signs user in in the tab ctx by the API, as the
// sign-in page does but announcing it to no tab.
func passwordCookieSignIn(t *testing.T, ctx context.Context, user, password string) {
	t.Helper()
	if got := evalString(t, ctx, fmt.Sprintf(`fetch('/api/v1/auth/token', {method: 'POST', credentials: 'same-origin',
  headers: {'X-Infracast-Session': 'cookie', 'Content-Type': 'application/json'}, body: JSON.stringify({username: %q, password: %q})})
  .then(function (r) { return String(r.status); })`, user, password)); got != "200" {
		t.Fatalf("%s's sign-in by the API: %s", user, got)
	}
}

// TestConsoleTabsSignInPage: the sign-in page /login (where the console
// sends its users for passkeys and enrolment) tells the console's tabs of
// its sign-ins and sign-outs (outside check 17e: a console tab showing the
// admin heard nothing of bob's sign-in there, and created a key owned by
// bob). A console tab on its sign-in screen learns of a sign-in in another
// tab — told, or found when its tab is shown again — and shows the console:
// its user chose no one here.
func TestConsoleTabsSignInPage(t *testing.T) {
	in, tab1, tab2 := adminAndBobInTwoTabs(t)
	navigateUntil(t, tab2, in.URL+"/login", loginPageState("signed-in"))
	loginAs := func(user, password string) {
		run(t, tab2, "sign in as "+user+" on /login", chromedp.SetValue(chromedp.ID("username"), user), chromedp.SetValue(chromedp.ID("password"), password),
			clickJS(`#submit`), until(loginPageState("signed-in")+fmt.Sprintf(` && document.body.getAttribute('data-user') === %q`, user)))
	}

	run(t, tab2, "sign out on /login", clickJS(`#logout`), until(loginPageState("signed-out")))
	run(t, tab1, "console told", soon(`document.body.getAttribute('data-state') === 'signed-out' && /another tab/.test((document.getElementById('signed-out-reason') || {}).textContent || '')`))
	loginAs("bob", "correct horse battery")
	run(t, tab1, "console says bob signed in", soon(`/Signed in as bob in another tab/.test((document.getElementById('user-changed') || {}).textContent || '')`))

	// On its sign-in screen after its own sign-out, the console shows whoever
	// signs in elsewhere: on /login (told) ...
	run(t, tab1, "continue as bob", clickJS(`#continue-as`), until(`document.body.getAttribute('data-user') === 'bob'`))
	run(t, tab1, "console signs out", clickJS(`#signout`), until(`document.body.getAttribute('data-state') === 'signed-out'`))
	navigateUntil(t, tab2, in.URL+"/login", loginPageState("signed-out"))
	loginAs(AdminUser, AdminPassword)
	run(t, tab1, "console shows the admin", soon(fmt.Sprintf(`document.body.getAttribute('data-state') === 'signed-in' && document.body.getAttribute('data-user') === %q`, AdminUser)))
	// ... or by the API, announced nowhere: found when the tab is shown again.
	run(t, tab1, "console signs out again", clickJS(`#signout`), until(`document.body.getAttribute('data-state') === 'signed-out'`))
	passwordCookieSignIn(t, tab2, "bob", "correct horse battery")
	run(t, tab1, "console shown again", chromedp.Evaluate[chromedp.Void](`document.dispatchEvent(new Event('visibilitychange'))`),
		soon(`document.body.getAttribute('data-state') === 'signed-in' && document.body.getAttribute('data-user') === 'bob'`))
	noPolicyBreach(t, tab1)
}

// TestConsoleActsOnlyForUserShown: a sign-in that no tab announces (or
// whose message has not arrived yet) does not let a console tab act for its
// user: the CSRF cookie changed, so before a request that changes state the
// console asks /auth/me, sends nothing for another user, and shows "Signed
// in as … in another tab" (outside check 17e: a tab showing the admin
// created an API key owned by bob and showed its secret, within the 20 s
// before its next check). Sign out likewise never signs the other user out.
func TestConsoleActsOnlyForUserShown(t *testing.T) {
	in, tab1, tab2 := adminAndBobInTwoTabs(t)
	navigateUntil(t, tab2, in.URL+"/console", fmt.Sprintf(`document.body.getAttribute('data-user') === %q`, AdminUser))

	passwordCookieSignIn(t, tab2, "bob", "correct horse battery")
	run(t, tab1, "the admin creates a key in tab 1", clickJS(`#nav-keys`), until(`!!document.querySelector('#keys-table')`), clickJS(`#new-key`), chromedp.WaitVisible(`#create-key`),
		fill(`#key-name`, "admin-ci"), fill(`#key-tenants`, "acme"), clickJS(`#create-key-submit`),
		soon(`/Signed in as bob in another tab/.test((document.getElementById('user-changed') || {}).textContent || '')`))
	if keys := in.Do("GET", "/api/v1/api-keys", in.AdminToken(), nil); strings.Contains(string(keys.Raw), "admin-ci") {
		t.Fatalf("a key was created from the tab that showed the admin after bob signed in: %s", keys.Raw)
	}
	if n := evalString(t, tab1, `String(document.querySelectorAll('#key-secret-value').length)`); n != "0" {
		t.Fatal("tab 1 shows a key's secret")
	}

	run(t, tab1, "continue as bob", clickJS(`#continue-as`), until(`document.body.getAttribute('data-user') === 'bob'`))
	passwordCookieSignIn(t, tab2, AdminUser, AdminPassword)
	run(t, tab1, "sign out in tab 1", clickJS(`#signout`),
		soon(fmt.Sprintf(`/Signed in as %s in another tab/.test((document.getElementById('user-changed') || {}).textContent || '')`, AdminUser)))
	if st := fetchStatus(t, tab2, "GET", "/api/v1/auth/me"); st != 200 {
		t.Fatalf("after tab 1 (showing bob) clicked Sign out, /auth/me answers %d: the admin was signed out", st)
	}
	noPolicyBreach(t, tab1)
}

// adminAndBobInTwoTabs starts the service with bob (admin of acme), signs
// the admin in to the console in a first tab, and opens a second tab of
// the same browser (its page for the test to choose).
func adminAndBobInTwoTabs(t *testing.T) (*Instance, context.Context, context.Context) {
	t.Helper()
	in := Start(t)
	in.CreateUser(in.AdminToken(), "bob", "correct horse battery", map[string]string{"acme": "admin"})
	tab1 := consoleChrome(t)
	consoleSignIn(t, tab1, in.URL, AdminUser, AdminPassword)
	tab2, cancel := chromedp.NewContext(tab1) // a second tab of the same browser
	t.Cleanup(cancel)
	return in, tab1, tab2
}

// TestConsoleTabsStopRenewingTogether: the tabs of one browser share the
// refresh cookie. With rotation on, tab A's refresh is applied but its
// answer lost, and tab A stops renewing ("could not be renewed"): the
// token the browser holds is spent. Tab B, a background tab frozen by the
// browser meanwhile (its refresh due), wakes past the reuse interval: it
// presented that token at once, which revoked the session for reuse in
// every tab — a false theft alarm (left open by outside check 18w). Tab A
// now tells the others, and leaves a mark in localStorage that a tab reads
// before it refreshes (a frozen tab's timer can fire before the message
// arrives) and a tab opened later reads on loading: B and a new tab C stop
// too, say the same, and send nothing; no session.refresh_reused; the
// session works until its access token expires (docs/console.md).
func TestConsoleTabsStopRenewingTogether(t *testing.T) {
	const interval = 5 * time.Second
	// The service's clock stands 15 s behind: the console sees 45 s left of
	// a minute's access token and refreshes 15 s after signing in (time to
	// open tab B), then the clock is set on time (shiftedClock).
	in, attempts, base := refreshLosingService(t, interval, 15*time.Second, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
	})
	tabA := consoleChrome(t)
	consoleSignIn(t, tabA, base, AdminUser, AdminPassword)
	tabB, cancelB := chromedp.NewContext(tabA)
	t.Cleanup(cancelB)
	navigateUntil(t, tabB, base+"/console", fmt.Sprintf(`document.body.getAttribute('data-user') === %q`, AdminUser))
	if _, err := chromedp.Call(tabB, page.SetWebLifecycleState, page.SetWebLifecycleStateParams{State: page.SetWebLifecycleStateStateFrozen}); err != nil {
		t.Fatal(err)
	}
	if _, _, log := attempts.get(); log != "" {
		t.Fatalf("a refresh came before tab B was frozen (refreshes %s): the test's 15 s were not enough", log)
	}

	run(t, tabA, "tab A stops renewing", chromedp.Poll[chromedp.Void](`document.body.getAttribute('data-renew') === 'stopped'`, chromedp.WithPollingTimeout(40*time.Second)))
	// Tab B wakes once the reuse interval has passed since tab A's first
	// attempt (the one the service applied): any send of the token now is
	// reuse.
	Eventually(t, 20*time.Second, func() error {
		after, _, log := attempts.get()
		if len(after) == 0 {
			return fmt.Errorf("no refresh yet")
		}
		if since := time.Since(attempts.firstAt()); since <= interval {
			return fmt.Errorf("%s since the first refresh (refreshes %s)", since, log)
		}
		return nil
	})
	_, _, before := attempts.get()
	if _, err := chromedp.Call(tabB, page.SetWebLifecycleState, page.SetWebLifecycleStateParams{State: page.SetWebLifecycleStateStateActive}); err != nil {
		t.Fatal(err)
	}
	state := `document.body.getAttribute('data-state') + ' ' + (document.body.getAttribute('data-renew') || '')`
	Eventually(t, 20*time.Second, func() error {
		s, err := chromedp.Run(tabB, chromedp.Evaluate[string](state))
		if err != nil {
			return err
		}
		if s != "signed-in stopped" && !strings.HasPrefix(s, "signed-out") {
			return fmt.Errorf("tab B: %q", s)
		}
		return nil
	})

	noneSince := func(who string) {
		t.Helper()
		_, _, log := attempts.get()
		if n := countEvents(storedEvents(t, in.Svc), "session.refresh_reused", ""); n != 0 {
			t.Fatalf("%s presented the spent refresh token: %d session.refresh_reused alarm(s) (refreshes %s; %s before tab B woke)", who, n, log, before)
		}
		if log != before {
			t.Fatalf("refreshes %s, want none from %s after tab A stopped (%s)", log, who, before)
		}
	}
	noneSince("tab B")

	// A tab opened now stops at once too.
	tabC, cancelC := chromedp.NewContext(tabA)
	t.Cleanup(cancelC)
	navigateUntil(t, tabC, base+"/console", fmt.Sprintf(`document.body.getAttribute('data-user') === %q && document.body.getAttribute('data-renew') === 'stopped'`, AdminUser))
	noneSince("tab C")
	notice := `document.body.getAttribute('data-state') + ' | ' + ((document.getElementById('renew-notice') || {}).textContent || '')`
	shownA := evalString(t, tabA, notice)
	if !strings.HasPrefix(shownA, "signed-in | Your session could not be renewed; it ends at ") {
		t.Fatalf("tab A shows %q, want the could-not-be-renewed notice", shownA)
	}
	for name, tab := range map[string]context.Context{"B": tabB, "C": tabC} {
		if shown := evalString(t, tab, notice); shown != shownA {
			t.Errorf("tab %s shows %q, want what tab A shows: %q", name, shown, shownA)
		}
	}
	if got := evalString(t, tabB, `fetch('/api/v1/auth/me', {credentials: 'same-origin'}).then(r => String(r.status))`); got != "200" {
		t.Fatalf("the session after the tabs stopped renewing: /auth/me %s", got)
	}
	noPolicyBreach(t, tabC)
}
