package tests

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
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

func newChrome(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("headless", true), chromedp.UserDataDir(t.TempDir()),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // start the browser
		t.Fatalf("start chromium: %v", err)
	}
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
