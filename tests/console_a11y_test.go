package tests

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// settledFocus describes the focused element once the browser has had its
// rendering updates: Chromium takes the focus from a control disabled under
// it at a rendering update (a timer after it), shortly after the change
// that disabled it, so a check at once passes where a user's next key
// press finds the focus on <body> (outside check 20w). It waits for a few
// animation frames and a task after them — the updates themselves, no
// fixed time — then answers "BODY", or the element's id or class.
func settledFocus(t *testing.T, ctx context.Context) string {
	t.Helper()
	return evalString(t, ctx, `new Promise(function (done) {
  var n = 0;
  (function frame() {
    if (++n > 5) { setTimeout(function () {
      var a = document.activeElement;
      done(!a || a === document.body ? 'BODY' : (a.id || a.className || a.tagName));
    }, 0); return; }
    requestAnimationFrame(frame);
  })();
})`)
}

// TestConsoleKeyboardAndScreenReader drives the console as a keyboard and
// screen-reader user (outside check 20w): the sign-in's refusals are tied
// to the password field, which takes the focus, and a lockout says how long
// to wait; every page has its own title; the pager keeps the focus on the
// button pressed when it leads nowhere more (it fell to <body>); a form
// refused after Enter in another field moves the focus to the invalid
// field (it stayed, and nothing was said); Escape closes the New user form
// and cancels an inline confirmation, the focus back on the button that
// opened them.
func TestConsoleKeyboardAndScreenReader(t *testing.T) {
	in := Start(t, withThrottle(3, 0, 15*time.Minute))
	admin := in.AdminToken()
	for i := 0; i < 21; i++ { // 22 users with admin: two pages of 20
		in.CreateUser(admin, fmt.Sprintf("u%02d", i), "correct horse battery", map[string]string{"acme": "viewer"})
	}
	ctx := consoleChrome(t)

	t.Run("sign-in refusals", func(t *testing.T) {
		navigateUntil(t, ctx, in.URL+"/console", `document.body.getAttribute('data-state') === 'signed-out'`)
		if got := evalString(t, ctx, `document.title`); got != "Sign in · Infracast Auth" {
			t.Errorf("sign-in title %q", got)
		}
		run(t, ctx, "wrong password", chromedp.SendKeys(`#username`, "u00"), chromedp.SendKeys(`#password`, "wrong"+kb.Enter),
			until(`!!document.getElementById('signin-error')`))
		tied := `(function () {
  var p = document.getElementById('password');
  return p.getAttribute('aria-invalid') + ' ' + p.getAttribute('aria-describedby') + ' ' + document.activeElement.id;
})()`
		if got := evalString(t, ctx, tied); got != "true signin-error password" {
			t.Errorf("after a wrong password, the password field: %q (want aria-invalid, described by the error, focused)", got)
		}
		for i := 0; i < 2; i++ { // the third failure locks the account
			if r := login(in, "u00", "wrong"); r.Status != 401 {
				t.Fatalf("failure %d: %d %s", i+2, r.Status, r.Raw)
			}
		}
		run(t, ctx, "locked", fill(`#password`, "wrong"), chromedp.SendKeys(`#password`, kb.Enter),
			until(`/Too many/.test((document.getElementById('signin-error') || {}).textContent || '')`))
		if got := evalString(t, ctx, `document.getElementById('signin-error').textContent`); got != "Too many failed sign-in attempts: try again in 15 minutes." {
			t.Errorf("the lockout says %q", got)
		}
	})

	consoleSignIn(t, ctx, in.URL, "admin", AdminPassword)
	if got := evalString(t, ctx, `document.title`); got != "Users · Infracast Auth" {
		t.Errorf("users title %q", got)
	}

	t.Run("pager keeps the focus", func(t *testing.T) {
		run(t, ctx, "next page", until(`document.querySelectorAll('#users-table tbody tr').length === 20`),
			chromedp.Focus(`.next-page`), chromedp.KeyEvent(kb.Enter),
			until(`document.querySelector('.page-no').textContent === 'Page 2' && document.querySelectorAll('#users-table tbody tr').length === 2`))
		if got := settledFocus(t, ctx); !strings.Contains(got, "next-page") {
			t.Errorf("after Next page to the last page, the focus is on %s", got)
		}
		if got := evalString(t, ctx, `document.querySelector('.next-page').getAttribute('aria-disabled') || ''`); got != "true" {
			t.Errorf("Next page on the last page: aria-disabled %q", got)
		}
		// Pressed there, it does nothing.
		run(t, ctx, "next again", chromedp.KeyEvent(kb.Enter))
		if got := evalString(t, ctx, `document.querySelector('.page-no').textContent`); got != "Page 2" {
			t.Errorf("Next page on the last page led to %q", got)
		}
		run(t, ctx, "previous page", chromedp.Focus(`.prev-page`), chromedp.KeyEvent(kb.Enter),
			until(`document.querySelector('.page-no').textContent === 'Page 1' && document.querySelectorAll('#users-table tbody tr').length === 20`))
		if got := settledFocus(t, ctx); !strings.Contains(got, "prev-page") {
			t.Errorf("after Previous page to the first page, the focus is on %s", got)
		}
	})

	t.Run("refused form sent with Enter", func(t *testing.T) {
		run(t, ctx, "new user", chromedp.Click(`#new-user`), chromedp.WaitVisible(`#create-user`),
			fill(`#new-username`, "dora"), fill(`#new-email`, "dora@example.com"), fill(`#new-password`, "short"), fill(`#new-tenant`, "acme"),
			chromedp.Focus(`#new-tenant`), chromedp.KeyEvent(kb.Enter),
			until(`!!document.getElementById('new-password-err')`))
		if got := settledFocus(t, ctx); got != "new-password" {
			t.Errorf("after a refused New user sent from the Tenant field, the focus is on %s, want new-password", got)
		}
		// Password managers are told the new user's password is not the admin's.
		if got := evalString(t, ctx, `(function (p) { return p.autocomplete + ' ' + p.hasAttribute('data-1p-ignore') + ' ' + p.getAttribute('data-lpignore'); })(document.getElementById('new-password'))`); got != "off true true" {
			t.Errorf("the new user's password field: %q", got)
		}
		run(t, ctx, "escape", chromedp.KeyEvent(kb.Escape), until(`!document.getElementById('create-user')`))
		if got := settledFocus(t, ctx); got != "new-user" {
			t.Errorf("after Escape in New user, the focus is on %s, want new-user", got)
		}
	})

	t.Run("escape cancels a confirmation", func(t *testing.T) {
		run(t, ctx, "user page", clickJS(`#users-table tr[data-user="u01"] a`),
			until(`(document.getElementById('user-title') || {}).textContent === 'u01'`))
		if got := evalString(t, ctx, `document.title`); got != "User · Users · Infracast Auth" {
			t.Errorf("user page title %q", got)
		}
		run(t, ctx, "ask", clickJS(`#deactivate`), until(`document.activeElement && document.activeElement.classList.contains('confirm-yes')`),
			chromedp.KeyEvent(kb.Escape), until(`!document.querySelector('.confirm-yes')`))
		if got := settledFocus(t, ctx); got != "deactivate" {
			t.Errorf("after Escape in the confirmation, the focus is on %s, want deactivate", got)
		}
		run(t, ctx, "audit page", chromedp.Click(`#nav-audit`), until(`document.body.getAttribute('data-page') === 'audit'`))
		if got := evalString(t, ctx, `document.title`); got != "Audit log · Infracast Auth" {
			t.Errorf("audit title %q", got)
		}
	})
}
