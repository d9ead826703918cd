package tests

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/http/service"
)

// cookieSignIn signs user in in the tab ctx by the API (the cookie session
// the sign-in page asks for), with a recovery code as the second factor:
// a sign-in that no tab announces.
func cookieSignIn(t *testing.T, ctx context.Context, user, code string) {
	t.Helper()
	got := evalString(t, ctx, fmt.Sprintf(`(function () {
  var h = {'Content-Type': 'application/json', 'X-Infracast-Session': 'cookie'};
  return fetch('/api/v1/auth/token', {method: 'POST', credentials: 'same-origin', headers: h, body: JSON.stringify({username: %q, password: 'correct horse battery'})})
    .then(function (r) { return r.json(); })
    .then(function (b) { return fetch('/api/v1/auth/token/mfa', {method: 'POST', credentials: 'same-origin', headers: h, body: JSON.stringify({mfa_token: b.mfa_token, code: %q})}); })
    .then(function (r) { return String(r.status); });
})()`, user, code))
	if got != "200" {
		t.Fatalf("%s's sign-in by the API: %s", user, got)
	}
}

// meIn is the username /api/v1/auth/me answers in the tab ctx ("" when
// signed out).
func meIn(t *testing.T, ctx context.Context) string {
	t.Helper()
	return evalString(t, ctx, `fetch('/api/v1/auth/me', {credentials: 'same-origin'}).then(function (r) { return r.ok ? r.json() : {}; }).then(function (b) { return b.username || ''; })`)
}

// loginPageTabs starts a service with ivy and jay (each with TOTP and
// their recovery codes, handed out one by one by code) and a browser whose
// first tab is signed in as ivy on the sign-in page; the second tab is at
// the sign-in page too.
type loginPageTabs struct {
	in         *Instance
	tab1, tab2 context.Context
	page       func(js string) string
	run1, run2 func(what string, actions ...chromedp.Action[chromedp.Void])
	code       func(user string) string
	signIn     func(run func(string, ...chromedp.Action[chromedp.Void]), user string)
}

func startLoginPageTabs(t *testing.T) *loginPageTabs {
	addr := freeAddr(t)
	public := "http://localhost:" + addr[strings.LastIndex(addr, ":")+1:]
	in := Start(t, WithListen(addr), func(c *service.Config) { c.PublicURL = public })
	codes := map[string][]string{}
	for _, u := range []string{"ivy", "jay"} {
		in.CreateUser(in.AdminToken(), u, "correct horse battery", map[string]string{"acme": "editor"})
		_, codes[u] = enrollTOTP(t, in, in.Login(u, "correct horse battery").String("token"))
	}
	p := &loginPageTabs{in: in}
	p.code = func(u string) string { c := codes[u][0]; codes[u] = codes[u][1:]; return c }
	p.tab1 = newChrome(t)
	virtualAuthenticator(t, p.tab1)
	p.page, p.run1 = loginPageDriver(t, p.tab1)
	p.signIn = func(run func(string, ...chromedp.Action[chromedp.Void]), u string) {
		run("password of "+u, chromedp.SetValue(chromedp.ID("username"), u),
			chromedp.SetValue(chromedp.ID("password"), "correct horse battery"), clickID("submit"), loginPagePoll(loginPageState("mfa")))
		run("code of "+u, chromedp.SetValue(chromedp.ID("mfa-code"), p.code(u)), clickID("mfa-submit"), loginPagePoll(loginPageState("signed-in")))
	}
	navigateUntil(t, p.tab1, public+"/login", loginPageState("signed-out"))
	p.signIn(p.run1, "ivy")
	var cancel context.CancelFunc
	p.tab2, cancel = chromedp.NewContext(p.tab1) // a second tab of the same browser
	t.Cleanup(cancel)
	navigateUntil(t, p.tab2, public+"/login", loginPageState("signed-in"))
	_, p.run2 = loginPageDriver(t, p.tab2)
	return p
}

// clickID clicks the element with that id once shown, by script: a mouse
// click at its place can miss when the passkey list, filled meanwhile,
// moves it.
func clickID(id string) chromedp.Action[chromedp.Void] { return clickJS("#" + id) }

// changedTo is the condition that the sign-in page shows "Signed in as u
// in another tab", and no one signed in.
func changedTo(u string) string {
	return loginPageState("user-changed") + fmt.Sprintf(` && /Signed in as %s in another tab/.test(document.getElementById('changed').textContent)`, u) +
		` && !document.body.getAttribute('data-user')`
}

// continueAs is the notice's "Continue as u": u's view.
func continueAs(u string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{clickID("continue-as"),
		loginPagePoll(loginPageState("signed-in") + fmt.Sprintf(` && document.body.getAttribute('data-user') === %q`, u))}
}

// TestLoginPageTabs: the sign-in page and another tab of the same browser
// (one session: the cookies are shared). Tab 2 signing out on the page
// shows tab 1 the sign-in form ("You signed out in another tab."); tab 2
// signing in as jay shows tab 1, which showed ivy, "Signed in as jay in
// another tab" until its user continues as jay — within seconds (the
// console's BroadcastChannel), as the console does (docs/console.md
// "Tabs"); a sign-in no tab announced is found when the tab is shown again
// (outside check 17e: the page heard nothing, and acted for jay under
// "Signed in as ivy").
func TestLoginPageTabs(t *testing.T) {
	p := startLoginPageTabs(t)
	p.run2("sign out in tab 2", clickID("logout"), loginPagePoll(loginPageState("signed-out")))
	p.run1("tab 1 told", soon(loginPageState("signed-out")+` && `+statusSays(`/You signed out in another tab/`)))
	p.signIn(p.run2, "jay")
	p.run1("tab 1 says jay signed in", soon(changedTo("jay")))
	checkAxe(t, p.tab1, "login page: user changed in another tab")
	p.run1("continue as jay", continueAs("jay")...)

	cookieSignIn(t, p.tab2, "ivy", p.code("ivy"))
	p.run1("tab 1 shown again", chromedp.Evaluate[chromedp.Void](`document.dispatchEvent(new Event('visibilitychange'))`), soon(changedTo("ivy")))
	noPolicyBreach(t, p.tab1)
}

// TestLoginPageActsOnlyForUserShown: a sign-in that no tab announces (the
// API called directly, or any sign-in before its message arrives) does
// not let the sign-in page act for its user: Add a passkey, New recovery
// codes and Sign out each find the CSRF cookie changed, ask /auth/me
// first, send nothing, and show "Signed in as … in another tab"; and a
// sign-in that lands after that check, before the request, is refused by
// the CSRF check, since the page sends the token it confirmed (outside
// check 17e: tab 1, still saying "ivy", added a passkey to jay's account,
// showed and replaced jay's recovery codes, and signed jay out).
func TestLoginPageActsOnlyForUserShown(t *testing.T) {
	p := startLoginPageTabs(t)

	// Add a passkey: tab 1 shows ivy, jay signed in meanwhile.
	cookieSignIn(t, p.tab2, "jay", p.code("jay"))
	p.run1("add a passkey in tab 1", chromedp.SetValue(chromedp.ID("passkey-name"), "ivy laptop"), clickID("add-passkey"), soon(changedTo("jay")))
	if n := evalString(t, p.tab2, `fetch('/api/v1/auth/mfa', {credentials: 'same-origin'}).then(function (r) { return r.json(); }).then(function (b) { return String(b.passkeys.length); })`); n != "0" {
		t.Fatalf("jay has %s passkeys after tab 1, showing ivy, added one", n)
	}

	// New recovery codes: tab 1 shows jay, ivy signed in meanwhile.
	p.run1("continue as jay", continueAs("jay")...)
	cookieSignIn(t, p.tab2, "ivy", p.code("ivy"))
	before := countEvents(storedEvents(t, p.in.Svc), domain.TypeMFARecoveryCodesGenerated, "")
	p.run1("new recovery codes in tab 1", clickID("recovery-new"), soon(changedTo("ivy")))
	if shown := p.page(`String(document.querySelectorAll('#recovery-codes li').length)`); shown != "0" {
		t.Fatalf("tab 1 shows %s recovery codes", shown)
	}
	if after := countEvents(storedEvents(t, p.in.Svc), domain.TypeMFARecoveryCodesGenerated, ""); after != before {
		t.Fatalf("recovery codes generated: %d, then %d after tab 1's click", before, after)
	}

	// Sign out: tab 1 shows ivy, jay signed in meanwhile; jay stays.
	p.run1("continue as ivy", continueAs("ivy")...)
	cookieSignIn(t, p.tab2, "jay", p.code("jay"))
	p.run1("sign out in tab 1", clickID("logout"), soon(changedTo("jay")))
	if who := meIn(t, p.tab2); who != "jay" {
		t.Fatalf("after tab 1 (showing ivy) clicked Sign out, /auth/me answers %q, want jay still signed in", who)
	}

	// A sign-in that lands after tab 1 checked, before its request is
	// sent: the request carries the CSRF token tab 1 confirmed, and is
	// refused; tab 1 then says who is signed in.
	p.run1("continue as jay again", continueAs("jay")...)
	p.run1("a sign-in lands just before the sign-out", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(function () {
  var send = window.fetch;
  window.fetch = function (path, opts) {
    if (path !== '/api/v1/auth/logout') { return send.apply(this, arguments); }
    window.fetch = send;
    var h = {'Content-Type': 'application/json', 'X-Infracast-Session': 'cookie'};
    return send('/api/v1/auth/token', {method: 'POST', credentials: 'same-origin', headers: h, body: JSON.stringify({username: 'ivy', password: 'correct horse battery'})})
      .then(function (r) { return r.json(); })
      .then(function (b) { return send('/api/v1/auth/token/mfa', {method: 'POST', credentials: 'same-origin', headers: h, body: JSON.stringify({mfa_token: b.mfa_token, code: %q})}); })
      .then(function (r) { window.landed = r.status; return send(path, opts); });
  };
})()`, p.code("ivy"))))
	p.run1("sign out in tab 1, raced", clickID("logout"), soon(`window.landed === 200 && `+changedTo("ivy")))
	if who := meIn(t, p.tab2); who != "ivy" {
		t.Fatalf("after tab 1's raced sign-out, /auth/me answers %q, want ivy still signed in", who)
	}
	noPolicyBreach(t, p.tab1)
}
