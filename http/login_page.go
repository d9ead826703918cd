package http

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"
)

// The browser login page (GET /login): signed out, a username/password form
// that posts with fetch to /api/v1/auth/token asking for a cookie session,
// and a button per configured identity provider; signed in (asked of
// /api/v1/auth/me), who is signed in, a link on to return_to when there is
// one, and a sign-out button. Strict security headers: a CSP that allows
// only this page's own script and style (by nonce, no inline handlers or
// style attributes) and requests to this origin, no framing, no MIME
// sniffing, no referrer.

// SessionModeHeader asks POST /api/v1/auth/token for a browser session: the
// access token is set in the HttpOnly cookie (with the CSRF cookie) instead of
// being returned in the body.
const SessionModeHeader = "X-Infracast-Session"

type loginPageProvider struct {
	Name, Label, URL string
}

type loginPageData struct {
	Nonce     string
	Providers []loginPageProvider
	ReturnTo  string
}

var loginPageTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Infracast</title>
<style nonce="{{.Nonce}}">
[hidden]{display:none!important}
body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;display:flex;justify-content:center}
main{background:#fff;margin-top:8vh;padding:2rem 2.5rem;border-radius:8px;box-shadow:0 1px 4px #0002;width:22rem}
h1{font-size:1.3rem;margin:0 0 1.2rem}
label{display:block;margin:.6rem 0 .2rem;font-size:.9rem}
input{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #bbb;border-radius:4px}
button,a.sso{display:block;width:100%;box-sizing:border-box;margin-top:1rem;padding:.6rem;border-radius:4px;border:0;background:#1f5fbf;color:#fff;font-size:1rem;text-align:center;text-decoration:none;cursor:pointer}
a.sso{background:#2d3748}
#status{margin-top:1rem;min-height:1.2rem;font-size:.9rem}
#who{overflow-wrap:anywhere}
#return{overflow-wrap:anywhere}
button.secondary{background:#fff;color:#1f5fbf;border:1px solid #1f5fbf}
.err{color:#b00020}.ok{color:#126b2f}
hr{margin:1.5rem 0;border:0;border-top:1px solid #ddd}
</style>
</head>
<body>
<main>
<section id="signin">
<h1>Sign in to Infracast</h1>
<form id="login" autocomplete="on">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="submit" type="submit">Sign in</button>
</form>
{{if .Providers}}<hr>{{range .Providers}}
<a class="sso" id="sso-{{.Name}}" href="{{.URL}}">Sign in with {{.Label}}</a>{{end}}{{end}}
</section>
<section id="session" hidden>
<h1>Infracast</h1>
<p>Signed in as <strong id="who"></strong></p>
{{if .ReturnTo}}<a class="sso" id="return" href="{{.ReturnTo}}">Continue to {{.ReturnTo}}</a>
{{end}}<button id="logout" class="secondary" type="button">Sign out</button>
</section>
<div id="status" role="status"></div>
</main>
<script nonce="{{.Nonce}}">
(function () {
  var status = document.getElementById('status');
  var signin = document.getElementById('signin');
  var session = document.getElementById('session');
  var who = document.getElementById('who');
  var returnTo = {{.ReturnTo}};
  function show(msg, cls) { status.textContent = msg; status.className = cls || ''; }
  function csrf() {
    var m = document.cookie.match(/(?:^|; )infracast_csrf=([^;]*)/);
    return m ? decodeURIComponent(m[1]) : '';
  }
  // The page shows one state: signed in (who, return link, sign-out) or
  // signed out (the forms); body[data-state] says which, once known.
  function signedIn(me) {
    who.textContent = me.username;
    document.body.setAttribute('data-user', me.username);
    signin.hidden = true;
    session.hidden = false;
    document.body.setAttribute('data-state', 'signed-in');
  }
  function signedOut() {
    who.textContent = '';
    document.body.removeAttribute('data-user');
    session.hidden = true;
    signin.hidden = false;
    document.body.setAttribute('data-state', 'signed-out');
  }
  function whoami() {
    return fetch('/api/v1/auth/me', {credentials: 'same-origin'}).then(function (r) {
      if (!r.ok) { signedOut(); return null; }
      return r.json().then(function (me) { signedIn(me); return me; });
    }).catch(function () { signedOut(); show('Network error', 'err'); });
  }
  document.getElementById('login').addEventListener('submit', function (ev) {
    ev.preventDefault();
    show('Signing in…');
    fetch('/api/v1/auth/token', {
      method: 'POST', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', 'X-Infracast-Session': 'cookie'},
      body: JSON.stringify({username: document.getElementById('username').value,
                            password: document.getElementById('password').value})
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { show((body.error && body.error.message) || 'Sign-in failed', 'err'); return; }
        if (returnTo) { window.location.assign(returnTo); return; }
        show('');
        whoami();
      });
    }).catch(function () { show('Network error', 'err'); });
  });
  document.getElementById('logout').addEventListener('click', function () {
    fetch('/api/v1/auth/logout', {method: 'POST', credentials: 'same-origin', headers: {'X-CSRF-Token': csrf()}})
      .then(function (r) {
        if (!r.ok && r.status !== 401) { show('Sign-out failed', 'err'); return; }
        show('Signed out');
        signedOut();
      }).catch(function () { show('Network error', 'err'); });
  });
  whoami();
})();
</script>
</body>
</html>
`))

func providerLabel(name, typ string) string {
	switch typ {
	case "okta":
		return "Okta"
	case "azure":
		return "Microsoft (Azure AD)"
	case "saml":
		return "SAML single sign-on"
	}
	return name
}

// loginPage: GET /login[?return_to=] (return_to as for SSO logins; it
// defaults to this page).
func (s *Server) loginPage(c *fiber.Ctx) error {
	returnTo := c.Query("return_to")
	if returnTo != "" {
		if _, ok := s.checkReturnTo(returnTo); !ok {
			return errBadReturnTo
		}
	}
	back := returnTo
	if back == "" {
		back = "/login"
	}
	data := loginPageData{Nonce: randomToken(), ReturnTo: returnTo}
	if s.deps.SSOModel != nil {
		for _, p := range s.deps.SSOModel.SSOProviders() {
			data.Providers = append(data.Providers, loginPageProvider{
				Name: p.Name, Label: providerLabel(p.Name, string(p.Type)),
				URL: flowPath + url.PathEscape(p.Name) + "/login?return_to=" + url.QueryEscape(back),
			})
		}
	}
	var buf bytes.Buffer
	if err := loginPageTemplate.Execute(&buf, data); err != nil {
		return err
	}
	setPageSecurityHeaders(c, data.Nonce)
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Send(buf.Bytes())
}

func setPageSecurityHeaders(c *fiber.Ctx, nonce string) {
	c.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; style-src 'nonce-"+nonce+
		"'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	c.Set("X-Frame-Options", "DENY")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set("Cross-Origin-Opener-Policy", "same-origin")
	c.Set(fiber.HeaderCacheControl, "no-store")
}

// browserSession wraps POST /api/v1/auth/token: with "X-Infracast-Session:
// cookie" (the login page sends it), a successful login answers with the
// session cookies, and the body keeps only expires_at and user: the page's
// script never holds the token. The request must come from this origin (a
// custom header cannot be sent cross-origin without a preflight this service
// never grants; Sec-Fetch-Site and Origin are checked too), so another site
// cannot log a browser in (login CSRF).
func (s *Server) browserSession(c *fiber.Ctx) error {
	if c.Get(SessionModeHeader) != "cookie" {
		return c.Next()
	}
	if site := c.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return errCSRF
	}
	if o := c.Get(fiber.HeaderOrigin); o != "" && o != s.baseURL(c) {
		return errCSRF
	}
	if err := c.Next(); err != nil {
		return err
	}
	if c.Response().StatusCode() != fiber.StatusOK {
		return nil
	}
	var body struct {
		Token     string          `json:"token"`
		ExpiresAt string          `json:"expires_at"`
		User      json.RawMessage `json:"user"`
	}
	if err := json.Unmarshal(c.Response().Body(), &body); err != nil || body.Token == "" {
		return errInternal
	}
	exp, err := time.Parse(time.RFC3339, body.ExpiresAt)
	if err != nil {
		return errInternal
	}
	s.setSessionCookies(c, body.Token, exp)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"expires_at": body.ExpiresAt, "user": body.User})
}
