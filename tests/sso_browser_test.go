package tests

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chromium finds Debian's chromium (installed by .ci/run).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missingTool(t, "chromium")
	return ""
}

// chromeLifetime is how long newChrome's browser serves a test.
const chromeLifetime = 60 * time.Second

// newChrome is a headless Chromium for chromeLifetime.
func newChrome(t *testing.T) context.Context {
	t.Helper()
	return newChromeFor(t, chromeLifetime)
}

// newChromeFor is a headless Chromium whose actions may run for lifetime:
// the returned context ends then. The browser itself belongs to the test,
// not to that context — chromedp ties a browser to the context of its first
// action, so one started under a timeout died with it whatever the caller's
// context said (consoleChrome's 4 minutes ended at newChrome's 60 s) — and is
// killed, with its processes, at the test's cleanup.
func newChromeFor(t *testing.T, lifetime time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("headless", true), chromedp.UserDataDir(t.TempDir()),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() }) // kills the browser and waits for it
	// A start that hangs ends the browser; a start that worked stops the watch.
	hung := time.AfterFunc(chromeLifetime, cancelBrowser)
	err := chromedp.Do(browser) // start the browser
	if !hung.Stop() {
		err = fmt.Errorf("no browser within %s: %w", chromeLifetime, err)
	}
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(browser, lifetime)
	t.Cleanup(cancel)
	return ctx
}

func browserCookie(t *testing.T, ctx context.Context, name string) *network.Cookie {
	t.Helper()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// fetchStatus runs fetch(path) in the page (same origin, with cookies).
func fetchStatus(t *testing.T, ctx context.Context, method, path string) int {
	t.Helper()
	js := fmt.Sprintf(`fetch(%q, {method: %q, credentials: 'same-origin'}).then(r => r.status)`, path, method)
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	return status
}

// TestSSOBrowser: headless Chromium signs in on /login with a password and
// with the OIDC button, ends with the session cookie, and a cross-site form
// POST carrying the cookie but no CSRF token is refused.
func TestSSOBrowser(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	configureOIDC(t, in, admin, "oidc", "corp", alice(), nil)

	t.Run("password", func(t *testing.T) {
		ctx := newChrome(t)
		err := chromedp.Do(ctx,
			chromedp.Navigate(in.URL+"/login"),
			chromedp.WaitVisible(`#login`),
			chromedp.SendKeys(`#username`, AdminUser),
			chromedp.SendKeys(`#password`, AdminPassword),
			chromedp.Click(`#submit`),
			chromedp.WaitVisible(`body[data-user="admin"]`),
		)
		if err != nil {
			t.Fatal(err)
		}
		c := browserCookie(t, ctx, "infracast_token")
		if c == nil || !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax {
			t.Fatalf("session cookie: %+v", c)
		}
		visible, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(visible, "infracast_token") || !strings.Contains(visible, "infracast_csrf") {
			t.Fatalf("script sees cookies %q: the token must be HttpOnly, the CSRF token readable", visible)
		}
		if got := fetchStatus(t, ctx, "GET", "/api/v1/auth/me"); got != http.StatusOK {
			t.Fatalf("GET /auth/me by cookie: %d", got)
		}
		// Without the X-CSRF-Token header, even same-origin: 403.
		if got := fetchStatus(t, ctx, "POST", "/api/v1/auth/logout"); got != http.StatusForbidden {
			t.Fatalf("POST /auth/logout without CSRF token: %d", got)
		}
	})

	t.Run("oidc button and cross-site post", func(t *testing.T) {
		ctx := newChrome(t)
		err := chromedp.Do(ctx,
			chromedp.Navigate(in.URL+"/login"),
			chromedp.WaitVisible(`#sso-corp`),
			chromedp.Click(`#sso-corp`),
			chromedp.WaitVisible(`body[data-user="alice@corp.example"]`),
		)
		if err != nil {
			t.Fatal(err)
		}
		if c := browserCookie(t, ctx, "infracast_token"); c == nil || !c.HTTPOnly {
			t.Fatalf("session cookie after SSO: %+v", c)
		}
		if got := fetchStatus(t, ctx, "GET", "/api/v1/auth/me"); got != http.StatusOK {
			t.Fatalf("GET /auth/me after SSO: %d", got)
		}
		// Another origin of the same site (another port on 127.0.0.1: the
		// Lax cookie goes along) posts a form to the API.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		evil := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<form id="f" method="post" action="%s/api/v1/auth/logout"></form><script>document.getElementById('f').submit()</script>`, in.URL)
		})}
		go func() { _ = evil.Serve(ln) }()
		t.Cleanup(func() { _ = evil.Close() })
		err = chromedp.Do(ctx,
			chromedp.Navigate("http://"+ln.Addr().String()+"/"),
			chromedp.Poll[chromedp.Void](`location.pathname === '/api/v1/auth/logout' && document.body && document.body.innerText.length > 0`),
		)
		if err != nil {
			t.Fatal(err)
		}
		body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(body, `"FORBIDDEN"`) {
			t.Fatalf("cross-site POST answered %q, want 403 FORBIDDEN", body)
		}
		// The session survived.
		if err := chromedp.Do(ctx, chromedp.Navigate(in.URL+"/login"), chromedp.WaitVisible(`body[data-user="alice@corp.example"]`)); err != nil {
			t.Fatal(err)
		}
	})
}

// shown reports whether the element sel is rendered, as the browser computes
// it: present, laid out (it has boxes, so neither it nor an ancestor is
// display:none) and not visibility:hidden.
func shown(t *testing.T, ctx context.Context, sel string) bool {
	t.Helper()
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](shownJS(sel)))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func shownJS(sel string) string {
	return fmt.Sprintf(`(function () {
  var e = document.querySelector(%q);
  return !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';
})()`, sel)
}

// screenshot saves the page as name.png in $INFRACAST_SCREENSHOT_DIR, or in
// the test's temporary directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("INFRACAST_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// navigateUntil loads url and waits until js is true, loading it again if
// the browser drops the page's context on the way (a navigation still
// finishing when the next one starts: "Cannot find context with specified id").
func navigateUntil(t *testing.T, ctx context.Context, url, js string) {
	t.Helper()
	Eventually(t, 30*time.Second, func() error {
		return chromedp.Do(ctx, chromedp.Navigate(url), chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(5*time.Second)))
	})
}

// TestLoginPageSignedInOut: in headless Chromium, /login signed out shows
// the sign-in form and no sign-out; signed in it names the user and offers
// sign-out and the return_to link, not the form. Visibility is the
// browser's (layout and computed style), under the page's strict CSP, which
// must report no violation.
func TestLoginPageSignedInOut(t *testing.T) {
	in := Start(t)
	configureOIDC(t, in, in.AdminToken(), "oidc", "corp", alice(), nil)

	res, err := http.Get(in.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'nonce-") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Fatalf("login page CSP %q: want scripts by nonce only", csp)
	}
	// Without its script (blocked, not yet run, switched off) a form must
	// not submit itself: as a GET it would put the password in the URL —
	// the history, a proxy's access log (outside check 11d). The CSP
	// forbids native submission; the forms say POST besides.
	if !strings.Contains(csp, "form-action 'none'") {
		t.Errorf("login page CSP %q: want form-action 'none'", csp)
	}
	for _, form := range regexp.MustCompile(`<form [^>]*>`).FindAllString(string(body), -1) {
		if !strings.Contains(form, `method="post"`) {
			t.Errorf("login page form without method=\"post\": %s", form)
		}
	}

	ctx := newChrome(t)
	// Record CSP violations (a DevTools script runs outside the page's CSP).
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.__csp = []; document.addEventListener('securitypolicyviolation', function (e) { window.__csp.push(e.violatedDirective + ' ' + e.blockedURI); });`,
	}); err != nil {
		t.Fatal(err)
	}
	const returnTo = "/app/home"
	loginURL := in.URL + "/login?return_to=" + returnTo
	mustShow := func(t *testing.T, state string, want map[string]bool) {
		t.Helper()
		for sel, w := range want {
			if got := shown(t, ctx, sel); got != w {
				t.Errorf("%s: %s shown = %v, want %v", state, sel, got, w)
			}
		}
	}

	// Signed out: wait until the page knows (or shows a sign-out anyway).
	navigateUntil(t, ctx, loginURL, `document.body.getAttribute('data-state') === 'signed-out' || `+shownJS("#logout"))
	screenshot(t, ctx, "login-signed-out")
	mustShow(t, "signed out", map[string]bool{
		"#logout": false, "#who": false, "#return": false,
		"#login": true, "#username": true, "#submit": true, "#sso-corp": true,
	})
	if t.Failed() {
		t.FailNow()
	}

	// Sign in with the password: the page goes on to return_to.
	err = chromedp.Do(ctx,
		chromedp.SendKeys(`#username`, AdminUser),
		chromedp.SendKeys(`#password`, AdminPassword),
		chromedp.Click(`#submit`),
	)
	if err != nil {
		t.Fatal(err)
	}
	Eventually(t, 20*time.Second, func() error { // across the navigation
		path, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname`))
		if err == nil && path != returnTo {
			err = fmt.Errorf("at %q, want %q", path, returnTo)
		}
		return err
	})
	// Back on /login, signed in.
	navigateUntil(t, ctx, loginURL, `document.body.getAttribute('data-user') === 'admin'`)
	screenshot(t, ctx, "login-signed-in")
	mustShow(t, "signed in", map[string]bool{
		"#who": true, "#logout": true, "#return": true,
		"#login": false, "#sso-corp": false,
	})
	if t.Failed() {
		t.FailNow()
	}
	who, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('who').textContent`))
	if err != nil || who != AdminUser {
		t.Fatalf("signed in as %q (%v), want %q", who, err, AdminUser)
	}
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('return').href`))
	if err != nil || href != in.URL+returnTo {
		t.Fatalf("return link %q (%v), want %q", href, err, in.URL+returnTo)
	}

	// Without return_to: no return link (nowhere to return to).
	navigateUntil(t, ctx, in.URL+"/login", `document.body.getAttribute('data-user') === 'admin'`)
	mustShow(t, "signed in, no return_to", map[string]bool{"#who": true, "#logout": true, "#return": false, "#login": false})

	// Sign out: back to the signed-out page, and the session is gone.
	err = chromedp.Do(ctx,
		chromedp.Click(`#logout`),
		chromedp.Poll[chromedp.Void](`document.body.getAttribute('data-state') === 'signed-out'`),
	)
	if err != nil {
		t.Fatal(err)
	}
	mustShow(t, "signed out again", map[string]bool{"#logout": false, "#who": false, "#login": true})
	if got := fetchStatus(t, ctx, "GET", "/api/v1/auth/me"); got != http.StatusUnauthorized {
		t.Fatalf("GET /auth/me after sign-out: %d", got)
	}

	violations, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__csp`))
	if err != nil {
		t.Fatal(err)
	}
	if len(violations) > 0 {
		t.Fatalf("CSP violations on /login: %v", violations)
	}
}
