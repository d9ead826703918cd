package http

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// The browser login page (GET /login): signed out, a username/password form
// that posts with fetch to /api/v1/auth/token asking for a cookie session,
// and a button per configured identity provider; signed in (asked of
// /api/v1/auth/me), who is signed in, a link on to return_to when there is
// one, the caller's passkeys (add, delete), and a sign-out button.
// Multi-factor authentication (docs/mfa.md): "Sign in with a passkey"
// (passwordless, a discoverable credential); after the password of a user
// with a second factor, the code step (TOTP or recovery code) with "Use a
// passkey" when the user has one; a user whom a policy requires to have a
// factor enrols first (the TOTP QR code and key, or a passkey) and sees the
// recovery codes once; an enrolment restarted in another tab meanwhile
// keeps this one on the step, saying so, until the user starts again. A
// session, an enrolment or a login's second step that ends meanwhile (401:
// expired, revoked, reset) goes back to the sign-in form, saying so; a
// browser that refuses a passkey for the page's origin (a SecurityError:
// the page opened at another address than the public URL) is named.
// Tabs share the session: the page tells the console's channel of its
// sign-ins and sign-outs, asks /api/v1/auth/me on hearing another tab's
// (or when shown again), says "Signed in as … in another tab" rather than
// act for another user, and sends a request that changes state only while
// the session is still the user shown (the CSRF cookie it confirmed).
// Single sign-on lands here for those steps with the token in the
// fragment. body[data-state] names the state shown. Strict
// security headers: a CSP that allows only this page's own script and
// style (by nonce, no inline handlers or style attributes) and requests to
// this origin, no framing, no MIME sniffing, no referrer.

// SessionModeHeader asks POST /api/v1/auth/token for a browser session: the
// access token is set in the HttpOnly cookie (with the CSRF cookie) instead of
// being returned in the body.
const SessionModeHeader = "X-Infracast-Session"

// cookieSession reads SessionModeHeader: "cookie" asks for a browser
// session, no header (or an empty one) for the tokens of the contract, and
// any other value is 400 rather than quietly a token login (outside check
// 13a: "Cookie" answered the tokens in the body).
func cookieSession(c *fiber.Ctx) (bool, error) {
	switch c.Get(SessionModeHeader) {
	case "":
		return false, nil
	case "cookie":
		return true, nil
	}
	return false, validation(SessionModeHeader + `: must be "cookie" (a browser session), or absent`)
}

type loginPageProvider struct {
	Name, Label, URL string
}

type loginPageData struct {
	Nonce     string
	Providers []loginPageProvider
	ReturnTo  string
	// The beginnings of the messages that tell an enrolment step's 409
	// answers apart (mfa.go): the factor set up already, or the enrolment
	// restarted elsewhere.
	SetUpAlready []string
	Restarted    string
	// The beginning of the 503 that says a sign-in's code or passkey was
	// spent but no session started (errSignInSpent): the page goes back
	// to the password form, as for a dead MFA token.
	SignInSpent string
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
#enroll-qr{display:block;margin:.5rem auto;width:12rem;height:12rem}
code,#recovery-codes{font-family:ui-monospace,monospace;overflow-wrap:anywhere}
#recovery-codes{display:grid;grid-auto-flow:column;grid-template-rows:repeat(5,auto);column-gap:2.6rem;padding-left:1.8rem}
#passkeys{padding-left:1.2rem}
#passkeys button{display:inline;width:auto;margin:0 0 0 .5rem;padding:.1rem .4rem;font-size:.8rem;background:#b00020}
.copy-row{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap}
.copy-row button{width:auto;margin-top:.3rem;padding:.3rem .7rem;font-size:.9rem}
.copied{font-size:.9rem;color:#126b2f}
#enroll-secret span{margin-right:.45em}
.offscreen{position:absolute;left:-9999px;width:1px;height:1px;overflow:hidden}
</style>
</head>
<body>
<main>
<section id="signin">
<h1 tabindex="-1">Sign in to Infracast</h1>
<noscript><p>This page needs JavaScript.</p></noscript>
<form id="login" method="post" autocomplete="on">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="submit" type="submit">Sign in</button>
</form>
<button id="passkey" class="secondary" type="button">Sign in with a passkey</button>
{{if .Providers}}<hr>{{range .Providers}}
<a class="sso" id="sso-{{.Name}}" href="{{.URL}}">Sign in with {{.Label}}</a>{{end}}{{end}}
</section>
<section id="mfa" hidden>
<h1 tabindex="-1">Second factor</h1>
<form id="mfa-form" method="post" autocomplete="off">
<label for="mfa-code">Code from your authenticator app, or a recovery code</label>
<input id="mfa-code" name="code" inputmode="text" autocomplete="one-time-code" required>
<button id="mfa-submit" type="submit">Verify</button>
</form>
<button id="mfa-passkey" class="secondary" type="button" hidden>Use a passkey</button>
</section>
<section id="enroll" hidden>
<h1 tabindex="-1">Set up a second factor</h1>
<p>Your organization requires a second factor. Scan the code with an authenticator app, then enter the code it shows.</p>
<div id="enroll-totp">
<img id="enroll-qr" alt="QR code of the TOTP secret">
<p>Or enter this key: <code id="enroll-secret"></code></p>
<p class="copy-row"><button id="copy-key" class="secondary" type="button">Copy key</button><span class="copied" id="copy-key-done" role="status"></span></p>
<form id="enroll-form" method="post" autocomplete="off">
<label for="enroll-code">Code</label>
<input id="enroll-code" name="code" inputmode="numeric" autocomplete="one-time-code" required>
<button id="enroll-submit" type="submit">Confirm</button>
</form>
</div>
<button id="enroll-again" type="button" hidden>Start again here</button>
<button id="enroll-passkey" class="secondary" type="button">Use a passkey instead</button>
</section>
<section id="recovery" hidden>
<h1 tabindex="-1">Recovery codes</h1>
<p>Keep these codes somewhere safe: each signs you in once if you lose your device. They are shown only now.</p>
<ol id="recovery-codes"></ol>
<p class="copy-row"><button id="copy-codes" class="secondary" type="button">Copy codes</button><button id="download-codes" class="secondary" type="button">Download codes</button><span class="copied" id="copy-codes-done" role="status"></span></p>
<button id="recovery-done" type="button">I have saved them</button>
</section>
<section id="session" hidden>
<h1 tabindex="-1">Infracast</h1>
<p>Signed in as <strong id="who"></strong></p>
{{if .ReturnTo}}<a class="sso" id="return" href="{{.ReturnTo}}">Continue to {{.ReturnTo}}</a>
{{end}}<h2>Passkeys</h2>
<ul id="passkeys"></ul>
<p id="no-passkeys" hidden>No passkey yet.</p>
<label for="passkey-name">Name of a new passkey</label>
<input id="passkey-name" value="This device" maxlength="64">
<button id="add-passkey" class="secondary" type="button">Add a passkey</button>
<p id="recovery-new-p" hidden><button id="recovery-new" class="secondary" type="button">New recovery codes</button></p>
<button id="logout" class="secondary" type="button">Sign out</button>
</section>
<section id="changed" hidden>
<h1 tabindex="-1">Signed in as <strong class="other-who"></strong> in another tab</h1>
<p>This browser now acts as <strong class="other-who"></strong> in every tab, this one too. Nothing was done here for them.</p>
<button id="continue-as" type="button">Continue as <span class="other-who"></span></button>
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
  // show says msg in the status line; a field marked invalid by the
  // message it replaces is no longer (invalid marks one again after).
  function show(msg, cls) { valid(); status.textContent = msg; status.className = cls || ''; }
  // invalid marks the field of a refused step — the password, the code —
  // invalid and described by the status line that says why, and moves the
  // focus to it, as the console does (outside check 20w: the message was
  // tied to no field); valid undoes it.
  var invalidField = null;
  function invalid(id) {
    valid();
    var f = document.getElementById(id);
    if (!f || f.closest('[hidden]')) { return; }
    f.setAttribute('aria-invalid', 'true');
    f.setAttribute('aria-describedby', 'status');
    invalidField = f;
    f.focus();
  }
  function valid() {
    if (!invalidField) { return; }
    invalidField.removeAttribute('aria-invalid');
    invalidField.removeAttribute('aria-describedby');
    invalidField = null;
  }
  // waitText says a Retry-After (seconds) in words, rounded: "15 minutes".
  function waitText(seconds) {
    var s = Math.max(1, Math.round(seconds));
    if (s < 60) { return s === 1 ? '1 second' : s + ' seconds'; }
    var m = Math.round(s / 60);
    if (m < 120) { return m === 1 ? '1 minute' : m + ' minutes'; }
    return Math.round(m / 60) + ' hours';
  }
  // copyText puts text on the clipboard (the Clipboard API, or a selected
  // hidden field where it is not available) and says so in done.
  function copyText(text, done) {
    function fallback() {
      var ta = document.createElement('textarea');
      ta.value = text;
      ta.setAttribute('readonly', '');
      ta.className = 'offscreen';
      document.body.appendChild(ta);
      ta.select();
      var ok = false;
      try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
      ta.remove();
      done.textContent = ok ? 'Copied' : 'Copy failed: select the text and copy it';
    }
    done.textContent = '';
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { done.textContent = 'Copied'; }, fallback);
    } else { fallback(); }
  }
  function csrf() {
    var m = document.cookie.match(/(?:^|; )infracast_csrf=([^;]*)/);
    return m ? decodeURIComponent(m[1]) : '';
  }
  // Tabs of one browser share the cookies, so one session (docs/console.md
  // "Tabs"): this page and the console's tabs tell each other of their
  // sign-ins and sign-outs on one channel, with the console's messages
  // (same origin only; no token or name in them), and a tab that hears one
  // asks /api/v1/auth/me (check).
  var channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('infracast-console') : null;
  function tell(type) {
    try { if (channel) { channel.postMessage({type: type}); } } catch (e) { /* a closed channel: nothing to tell */ }
  }
  // shown: the user this page last showed signed in ({id, username}),
  // until this page's own sign-out or sign-in; confirmed: the CSRF
  // cookie's value when /auth/me last answered that user. Each sign-in
  // sets a new CSRF cookie (a refresh keeps it), so while the cookie still
  // holds confirmed the session is still shown's (acting).
  var shown = null, confirmed = '';
  // The page shows one state: signed in (who, return link, sign-out) or
  // signed out (the forms); body[data-state] says which, once known.
  function signedIn(me) {
    shown = {id: me.id, username: me.username};
    who.textContent = me.username;
    document.body.setAttribute('data-user', me.username);
    document.body.removeAttribute('data-other-user');
    showOnly('session', 'signed-in');
    passkeys();
  }
  function signedOut() {
    who.textContent = '';
    confirmed = '';
    document.body.removeAttribute('data-user');
    document.body.removeAttribute('data-other-user');
    showOnly('signin', 'signed-out');
  }
  // userChanged: another user than the one shown is signed in now (in
  // another tab): say so rather than act for them, until the user chooses
  // to continue as them (outside check 17e: this page, still saying "ivy",
  // added a passkey to jay's account and showed jay's recovery codes).
  function userChanged(me) {
    document.querySelectorAll('.other-who').forEach(function (e) { e.textContent = me.username; });
    document.body.removeAttribute('data-user');
    document.body.setAttribute('data-other-user', me.username);
    showOnly('changed', 'user-changed');
    show('');
  }
  // check asks /api/v1/auth/me who is signed in. mine (the page's load,
  // its own sign-in, "Continue as"): show them. Otherwise (another tab's
  // message, the tab shown again, a request about to change state): no
  // one signed in shows the sign-in form, saying why; another user than
  // the one shown, the notice; the user shown, their view again. Steps of
  // a sign-in under way (the code, an enrolment, recovery codes shown
  // once) are left alone. The answer is true when the session is still
  // shown's; confirmed then takes the CSRF value read before asking (read
  // after, it could be a later sign-in's).
  var ownSteps = {mfa: true, enroll: true, 'enroll-restarted': true, recovery: true};
  function check(mine, why) {
    var c = csrf(), st = document.body.getAttribute('data-state');
    if (!mine && (!st || ownSteps[st])) { return Promise.resolve(false); }
    return fetch('/api/v1/auth/me', {credentials: 'same-origin', cache: 'no-store'}).then(function (r) {
      if (mine && !r.ok) { signedOut(); return false; }
      st = document.body.getAttribute('data-state');
      if (r.status === 401) {
        if (st === 'signed-in' || st === 'user-changed') {
          forget();
          signedOut();
          show(why || 'Your session has ended (it expired, or was signed out or revoked): sign in again', 'err');
        }
        return false;
      }
      if (!r.ok) { show('Could not tell who is signed in (the service answered ' + r.status + '): try again', 'err'); return false; }
      return r.json().then(function (me) {
        if (mine) { signedIn(me); confirmed = c; return true; }
        if (ownSteps[document.body.getAttribute('data-state')]) { return false; }
        if (!shown) {
          // No one shown here: a sign-in of this browser, as on this form.
          if (st === 'signed-out') { signedIn(me); confirmed = c; }
          return false;
        }
        if (shown.id !== me.id) { userChanged(me); return false; }
        confirmed = c;
        if (st === 'signed-out' || st === 'user-changed') { signedIn(me); }
        return true;
      });
    }).catch(function () {
      if (mine) { signedOut(); }
      show('Network error', 'err');
      return false;
    });
  }
  // acting gives the CSRF token for a request of the signed-in view that
  // changes state, once sure the session is still the shown user's: while
  // the cookie holds confirmed it is; otherwise /auth/me is asked first,
  // and when another user (or no one) is signed in now the request is not
  // sent (the promise fails with {moved: true}) and check says so. The
  // token given is confirmed, not the cookie read when sending: a sign-in
  // that lands in between is refused by the CSRF check (movedMeanwhile)
  // rather than acted on for its user.
  function acting() {
    if (confirmed && csrf() === confirmed) { return Promise.resolve(confirmed); }
    return check(false).then(function (same) {
      if (!same) { throw {moved: true}; }
      return confirmed;
    });
  }
  // movedMeanwhile: a request of the signed-in view was refused (403)
  // because a sign-in elsewhere replaced the CSRF cookie after acting
  // looked: ask who is signed in now.
  function movedMeanwhile(res) {
    if (res.status !== 403 || csrf() === confirmed) { return false; }
    check(false).then(function (same) { if (same) { show('You signed in again in another tab meanwhile: try again', 'err'); } });
    return true;
  }
  var sections = ['signin', 'mfa', 'enroll', 'recovery', 'session', 'changed'];
  // showOnly shows one section, names it in body[data-state], and moves
  // the focus into it — to the field to fill (the password when the
  // username is there), else its heading — so that keyboard and screen
  // reader users land on the new step rather than at the page's top.
  var firstField = {signin: 'username', mfa: 'mfa-code', enroll: 'enroll-code'};
  // titles name each step in the page's title (outside check 20w: it
  // said "Sign in" through the code step, the enrolment and signed in).
  var titles = {signin: 'Sign in', mfa: 'Enter your code · Sign in', enroll: 'Set up a second factor · Sign in',
    recovery: 'Your recovery codes · Sign in', session: 'Signed in', changed: 'Signed in in another tab'};
  function showOnly(id, state) {
    sections.forEach(function (s) { document.getElementById(s).hidden = s !== id; });
    document.body.setAttribute('data-state', state);
    document.title = titles[id] + ' · Infracast';
    valid();
    var f = firstField[id] && document.getElementById(firstField[id]);
    if (f && f.closest('[hidden]')) { f = null; }
    if (f && id === 'signin' && f.value) { f = document.getElementById('password'); }
    (f || document.querySelector('#' + id + ' h1')).focus();
  }
  // WebAuthn's binary fields travel as base64url.
  function b64u(buf) {
    var s = '', b = new Uint8Array(buf);
    for (var i = 0; i < b.length; i++) { s += String.fromCharCode(b[i]); }
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function unb64u(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) { s += '='; }
    var bin = atob(s), b = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { b[i] = bin.charCodeAt(i); }
    return b.buffer;
  }
  function creds(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, {id: unb64u(c.id)}); });
  }
  function credentialJSON(c) {
    var r = c.response, out = {id: c.id, rawId: b64u(c.rawId), type: c.type,
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      authenticatorAttachment: c.authenticatorAttachment || undefined, response: {clientDataJSON: b64u(r.clientDataJSON)}};
    if (r.attestationObject) {
      out.response.attestationObject = b64u(r.attestationObject);
      if (r.getTransports) { out.response.transports = r.getTransports(); }
    } else {
      out.response.authenticatorData = b64u(r.authenticatorData);
      out.response.signature = b64u(r.signature);
      if (r.userHandle) { out.response.userHandle = b64u(r.userHandle); }
    }
    return out;
  }
  function getAssertion(pk) {
    pk = Object.assign({}, pk, {challenge: unb64u(pk.challenge), allowCredentials: creds(pk.allowCredentials)});
    return navigator.credentials.get({publicKey: pk}).then(credentialJSON);
  }
  function post(path, body, extra) {
    return fetch(path, {method: 'POST', credentials: 'same-origin',
      headers: Object.assign({'Content-Type': 'application/json'}, extra || {}), body: JSON.stringify(body || {})})
      .then(function (r) { return r.text().then(function (t) { return {ok: r.ok, status: r.status, body: t ? JSON.parse(t) : {}, retryAfter: r.headers.get('Retry-After')}; }); });
  }
  // failed says why a request was refused — a lockout with its wait, from
  // Retry-After (outside check 20w: "try again later" while the answer
  // said 884 s) — and marks field, when given, invalid.
  function failed(res, what, field) {
    var msg = (res.body.error && res.body.error.message) || what, wait = Number(res.retryAfter);
    if (res.status === 429 && wait > 0) { msg = 'Too many failed sign-in attempts: try again in ' + waitText(wait) + '.'; }
    show(msg, 'err');
    if (field) { invalid(field); }
  }
  // conflictSaying: res is a 409 whose message begins with one of
  // beginnings — the API keeps these beginnings as they are (docs/mfa.md),
  // and they tell its 409s apart.
  var setUpAlready = {{.SetUpAlready}}, restarted = {{.Restarted}}, signInSpent = {{.SignInSpent}};
  function conflictSaying(res, beginnings) {
    var m = (res.body && res.body.error && res.body.error.message) || '';
    return res.status === 409 && beginnings.some(function (b) { return m.indexOf(b) === 0; });
  }
  // enrolledMeanwhile: an enrolment step answered 409 because the factor
  // was set up already by this token (a confirmation sent again after its
  // answer was lost, or another tab): sign in with it, as after enrolling;
  // the message says to make new recovery codes, which the signed-in view
  // offers. Any other 409 is not that (outside check 13r5: "restarted
  // elsewhere" was taken for it, and the page enrolled anew by itself,
  // voiding the other tab's secret).
  // The message stays on the step it leads to (outside check 14e: the
  // sign-in's code step wiped it at once).
  function enrolledMeanwhile(res) {
    if (!conflictSaying(res, setUpAlready)) { return false; }
    enrollToken = '';
    forgetEnrolment();
    var msg = (res.body.error && res.body.error.message) || 'A second factor is set up already: sign in with it';
    if (document.getElementById('username').value && document.getElementById('password').value) { signIn(msg); return true; }
    showOnly('signin', 'signed-out');
    show(msg, 'err');
    return true;
  }
  // ended: a 401 to a request of the signed-in view (the session was
  // revoked — an administrator reset the factors, the password changed —
  // or it expired) or of the enrolment step (its token expired, or a reset
  // voided it): the sign-in form, saying so, rather than a view whose every
  // button now fails, or a void key and QR code (outside check 14e).
  function ended(res) {
    if (res.status !== 401) { return false; }
    var enrolling = enrollToken !== '';
    enrollToken = '';
    forgetEnrolment();
    if (!enrolling) { forget(); }
    signedOut();
    show(enrolling ? 'The set-up of a second factor has ended (it timed out, or your factors were reset): sign in again'
      : 'Your session has ended (it expired, or was signed out or revoked): sign in again', 'err');
    return true;
  }
  // mfaEnded: the second step's MFA token is dead (expired, used, or the
  // password changed since), or the step spent it and its code or passkey
  // but could not start the session (the 503 "…sign in again", which
  // refuses the same request then): the sign-in form again, with the
  // message (the code form stayed, and its next code was refused as a
  // used MFA token).
  function mfaEnded(res) {
    var m = (res.body.error || {}).message || '';
    var spent = res.status === 503 && m.indexOf(signInSpent) === 0;
    if (!spent && (res.status !== 401 || !/MFA token/.test(m))) { return false; }
    mfaToken = '';
    mfaOptions = null;
    showOnly('signin', 'signed-out');
    return true;
  }
  // unused: the browser gave no passkey — the user cancelled, none
  // matched, or the page is not at the relying party's origin: then its
  // SecurityError is named (outside check 14e: it was swallowed).
  function unused(e, what) {
    var why = e && e.name === 'SecurityError' ? ' (' + e.name + (e.message ? ': ' + e.message : '') + ')' : '';
    show(what + why, 'err');
  }
  // needsReauth: a change of factors needs a recent sign-in
  // (REAUTHENTICATION_REQUIRED): the sign-in form again, with the
  // message; signed in, the user tries again.
  function needsReauth(res) {
    if (!res.body || !res.body.error || res.body.error.code !== 'REAUTHENTICATION_REQUIRED') { return false; }
    document.getElementById('username').value = who.textContent;
    document.getElementById('password').value = '';
    showOnly('signin', 'reauth');
    show(res.body.error.message, 'err');
    return true;
  }
  var mfaToken = '', mfaOptions = null, enrollToken = '';
  // afterRecovery runs once the user has saved the recovery codes shown.
  var afterRecovery = null;
  // forget empties the secrets typed in the page: once signed in, and on
  // signing out — the next person at the screen must not sign the last one
  // in again with Enter. (Between the steps of one sign-in the password
  // stays: the page signs in again with it after an enrolment. Nor does the
  // page empty the form when it loads: a password manager may have filled
  // it.)
  function forget() {
    ['password', 'mfa-code', 'enroll-code'].forEach(function (id) { document.getElementById(id).value = ''; });
    forgetEnrolment();
  }
  // forgetEnrolment drops the TOTP secret shown for an enrolment (its key
  // and QR code) and the code typed, once the step is over.
  var enrollKey = '';
  function forgetEnrolment() {
    enrollKey = '';
    document.getElementById('copy-key-done').textContent = '';
    document.getElementById('enroll-secret').textContent = '';
    document.getElementById('enroll-qr').removeAttribute('src');
    document.getElementById('enroll-code').value = '';
  }
  // A started session: on to return_to, or show who is signed in.
  function started() {
    forget();
    tell('signed-in');
    if (returnTo) { window.location.assign(returnTo); return; }
    show('');
    check(true);
  }
  // answer handles the answer of a sign-in step; note, when given, is
  // shown on the second-factor step it leads to.
  function answer(res, note, field) {
    if (res.ok) { started(); return; }
    var code = res.body.error && res.body.error.code;
    if (code === 'MFA_REQUIRED') {
      mfaStep(res.body.mfa_token, res.body.webauthn);
      show(note || '', note ? 'err' : '');
      return;
    }
    if (code === 'MFA_ENROLLMENT_REQUIRED') { enroll(res.body.enrollment_token); return; }
    failed(res, 'Sign-in failed', field);
  }
  // mfaStep shows the second-factor step of the login of token; options
  // (WebAuthn request options) when the user has a passkey.
  function mfaStep(token, options) {
    mfaToken = token;
    mfaOptions = options || null;
    document.getElementById('mfa-passkey').hidden = !mfaOptions;
    document.getElementById('mfa-code').value = '';
    showOnly('mfa', 'mfa');
  }
  // showRecovery shows a new set of recovery codes (once), then goes on
  // with next.
  var recoveryCodes = [];
  function showRecovery(codes, next) {
    var ol = document.getElementById('recovery-codes');
    ol.textContent = '';
    recoveryCodes = codes.slice();
    document.getElementById('copy-codes-done').textContent = '';
    codes.forEach(function (c) { var li = document.createElement('li'); li.textContent = c; ol.appendChild(li); });
    afterRecovery = next;
    showOnly('recovery', 'recovery');
  }
  // enrolled: a first factor is set up under an enrolment token; the
  // login starts again (with the password still in the form, or, after
  // single sign-on, from the start) and asks for it.
  function enrolled() {
    enrollToken = '';
    forgetEnrolment();
    if (document.getElementById('username').value && document.getElementById('password').value) { signIn(); return; }
    showOnly('signin', 'signed-out');
    show('Second factor set up: sign in again', 'ok');
  }
  function enroll(token) {
    enrollToken = token;
    post('/api/v1/auth/mfa/totp', {}, {'Authorization': 'Bearer ' + token}).then(function (res) {
      if (enrolledMeanwhile(res) || ended(res)) { return; }
      if (!res.ok) { failed(res, 'Enrolment failed'); return; }
      document.getElementById('enroll-qr').src = 'data:image/png;base64,' + res.body.qr_png;
      // The key in groups of four, to read and type — set apart by the
      // style, not by spaces, so that the key selected and copied is the
      // key; Copy key copies it whole.
      enrollKey = res.body.secret;
      var key = document.getElementById('enroll-secret');
      key.textContent = '';
      (enrollKey.match(/.{1,4}/g) || []).forEach(function (g) { var sp = document.createElement('span'); sp.textContent = g; key.appendChild(sp); });
      document.getElementById('enroll-code').value = '';
      document.getElementById('enroll-totp').hidden = false;
      document.getElementById('enroll-again').hidden = true;
      showOnly('enroll', 'enroll');
      show('');
    }).catch(function () { show('Network error', 'err'); });
  }
  // restartedElsewhere: the confirmation answered 409 because another tab
  // or window enrolled again meanwhile, replacing the secret shown here.
  // The page stays on the enrolment step and says so; it drops the void
  // key and offers to start again here, which the user asks for (enrolling
  // again by itself would void the other tab's secret in turn).
  function restartedElsewhere(res) {
    if (!conflictSaying(res, [restarted])) { return false; }
    forgetEnrolment();
    document.getElementById('enroll-totp').hidden = true;
    document.getElementById('enroll-again').hidden = false;
    showOnly('enroll', 'enroll-restarted');
    show('The set-up was restarted in another tab or window, so the key shown here no longer works: finish it there, or start again here.', 'err');
    return true;
  }
  var cookieMode = {'X-Infracast-Session': 'cookie'};
  function signIn(note) {
    show('Signing in…');
    post('/api/v1/auth/token', {username: document.getElementById('username').value,
      password: document.getElementById('password').value}, cookieMode).then(function (res) { answer(res, note, 'password'); })
      .catch(function () { show('Network error', 'err'); });
  }
  function passkeys() {
    return fetch('/api/v1/auth/mfa', {credentials: 'same-origin'}).then(function (r) { return r.ok ? r.json() : {passkeys: [], status: r.status}; })
      .then(function (st) {
        if (ended(st)) { return; }
        var ul = document.getElementById('passkeys');
        ul.textContent = '';
        st.passkeys.forEach(function (p) {
          var li = document.createElement('li'), del = document.createElement('button');
          li.textContent = p.name;
          li.setAttribute('data-id', p.id);
          del.type = 'button';
          del.textContent = 'Delete';
          del.className = 'delete';
          del.addEventListener('click', function () {
            acting().then(function (token) {
              return fetch('/api/v1/auth/mfa/passkeys/' + encodeURIComponent(p.id), {method: 'DELETE', credentials: 'same-origin', headers: {'X-CSRF-Token': token}});
            }).then(function (r) {
                if (r.ok) { show('Passkey deleted', 'ok'); passkeys(); return; }
                return r.json().catch(function () { return {}; }).then(function (b) {
                  var res = {ok: false, status: r.status, body: b};
                  if (!needsReauth(res) && !ended(res) && !movedMeanwhile(res)) { failed(res, 'Deleting the passkey failed'); }
                });
              }).catch(function (e) { if (!e || !e.moved) { show('Network error', 'err'); } });
          });
          li.appendChild(del);
          ul.appendChild(li);
        });
        document.getElementById('no-passkeys').hidden = st.passkeys.length > 0;
        document.getElementById('recovery-new-p').hidden = !(st.totp || st.passkeys.length > 0);
        document.body.setAttribute('data-passkeys', String(st.passkeys.length));
      });
  }
  document.getElementById('login').addEventListener('submit', function (ev) {
    ev.preventDefault();
    signIn();
  });
  document.getElementById('mfa-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    show('Verifying…');
    post('/api/v1/auth/token/mfa', {mfa_token: mfaToken, code: document.getElementById('mfa-code').value}, cookieMode).then(function (res) {
      if (res.ok) { started(); return; }
      failed(res, 'Verification failed', mfaEnded(res) ? null : 'mfa-code');
    }).catch(function () { show('Network error', 'err'); });
  });
  document.getElementById('mfa-passkey').addEventListener('click', function () {
    show('Waiting for the passkey…');
    getAssertion(mfaOptions).then(function (cred) {
      return post('/api/v1/auth/token/mfa', {mfa_token: mfaToken, webauthn: cred}, cookieMode);
    }).then(function (res) {
      if (res.ok) { started(); return; }
      mfaEnded(res);
      failed(res, 'The passkey was not accepted');
    }).catch(function (e) { unused(e, 'The passkey was not used'); });
  });
  document.getElementById('passkey').addEventListener('click', function () {
    show('Waiting for the passkey…');
    post('/api/v1/auth/passkey/options').then(function (res) {
      if (!res.ok) { throw res; }
      return getAssertion(res.body.publicKey).then(function (cred) {
        return post('/api/v1/auth/token/passkey', {passkey_token: res.body.passkey_token, credential: cred}, cookieMode);
      });
    }).then(answer).catch(function (res) { if (res && res.body) { failed(res, 'Passkey sign-in failed'); } else { unused(res, 'The passkey was not used'); } });
  });
  document.getElementById('enroll-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    post('/api/v1/auth/mfa/totp/confirm', {code: document.getElementById('enroll-code').value}, {'Authorization': 'Bearer ' + enrollToken})
      .then(function (res) {
        if (enrolledMeanwhile(res) || restartedElsewhere(res) || ended(res)) { return; }
        if (!res.ok) {
          // A code that does not match, in words (outside check 20w: the
          // API's "code: does not match the secret being enrolled…").
          if (res.status === 400 && /does not match/.test((res.body.error || {}).message || '')) {
            res = {status: 400, body: {error: {message: 'That code does not match the key shown. Use the authenticator entry of the newest set-up (a new set-up replaces the key of an older one), and check that the device\'s clock is right.'}}};
          }
          failed(res, 'The code did not match', 'enroll-code');
          // A code of an older enrolment (another tab restarted before this
          // one confirmed) or a mistyped one: the key stays, and starting
          // again here is offered.
          if (res.status === 400) { document.getElementById('enroll-again').hidden = false; }
          return;
        }
        forgetEnrolment();
        showRecovery(res.body.recovery_codes, enrolled);
        show('');
      }).catch(function () { show('Network error', 'err'); });
  });
  // The key and the codes, copied or saved from the keyboard (outside
  // check 20w: only selecting them with a mouse did).
  document.getElementById('copy-key').addEventListener('click', function () {
    copyText(enrollKey, document.getElementById('copy-key-done'));
  });
  document.getElementById('copy-codes').addEventListener('click', function () {
    copyText(recoveryCodes.join('\n'), document.getElementById('copy-codes-done'));
  });
  document.getElementById('download-codes').addEventListener('click', function () {
    var a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob(['Infracast recovery codes (each signs in once)\n\n' + recoveryCodes.join('\n') + '\n'], {type: 'text/plain'}));
    a.download = 'infracast-recovery-codes.txt';
    document.body.appendChild(a);
    a.click();
    a.remove();
    window.setTimeout(function () { URL.revokeObjectURL(a.href); }, 0);
    document.getElementById('copy-codes-done').textContent = 'Downloaded';
  });
  document.getElementById('recovery-done').addEventListener('click', function () {
    var next = afterRecovery;
    afterRecovery = null;
    recoveryCodes = [];
    document.getElementById('copy-codes-done').textContent = '';
    document.getElementById('recovery-codes').textContent = '';
    if (next) { next(); }
  });
  // addPasskey registers a passkey named name, with the session (cookie
  // and CSRF token) or an enrolment token: h gives (a promise of) the
  // headers, asked again for each request — a sign-in in another tab while
  // the authenticator is asked sets a new CSRF cookie, and the one read at
  // the click was refused (re-check 14r3); with the session, acting makes
  // sure that sign-in was the same user's (outside check 17e: another
  // user's got the passkey).
  function addPasskey(h, name, done) {
    show('Waiting for the passkey…');
    h().then(function (hd) { return post('/api/v1/auth/mfa/passkeys/options', {}, hd); }).then(function (res) {
      if (!res.ok) { throw res; }
      var pk = res.body.publicKey;
      pk = Object.assign({}, pk, {challenge: unb64u(pk.challenge), user: Object.assign({}, pk.user, {id: unb64u(pk.user.id)}),
        excludeCredentials: creds(pk.excludeCredentials)});
      return navigator.credentials.create({publicKey: pk}).then(function (c) {
        return h().then(function (hd) {
          return post('/api/v1/auth/mfa/passkeys', {registration_token: res.body.registration_token,
            name: name, credential: credentialJSON(c)}, hd);
        });
      });
    }).then(function (res) {
      if (!res.ok) { throw res; }
      show('Passkey added', 'ok');
      done(res.body);
    }).catch(function (res) {
      if (res && res.moved) { return; }
      if (res && res.body) { if (!needsReauth(res) && !ended(res) && !movedMeanwhile(res)) { failed(res, 'Adding the passkey failed'); } } else { unused(res, 'The passkey was not created'); }
    });
  }
  // backToSession: the signed-in view again after recovery codes shown
  // there, once /auth/me says it is still its user's.
  function backToSession() {
    showOnly('session', 'signed-in');
    check(false).then(function (same) { if (same) { passkeys(); } });
  }
  // A passkey added while signed in: the list, after the recovery codes
  // when it is the first factor (they come with it, shown once).
  document.getElementById('add-passkey').addEventListener('click', function () {
    addPasskey(function () { return acting().then(function (token) { return {'X-CSRF-Token': token}; }); }, document.getElementById('passkey-name').value, function (body) {
      if (body.recovery_codes) { showRecovery(body.recovery_codes, backToSession); return; }
      passkeys();
    });
  });
  // A new set of recovery codes (the old set is void): after a lost
  // answer that held the first set, or when they run low.
  document.getElementById('recovery-new').addEventListener('click', function () {
    acting().then(function (token) { return post('/api/v1/auth/mfa/recovery-codes', {}, {'X-CSRF-Token': token}); }).then(function (res) {
      if (needsReauth(res) || ended(res) || movedMeanwhile(res)) { return; }
      if (!res.ok) { failed(res, 'No new recovery codes'); return; }
      showRecovery(res.body.recovery_codes, backToSession);
      show('');
    }).catch(function (e) { if (!e || !e.moved) { show('Network error', 'err'); } });
  });
  // A new enrolment here, asked for after one restarted elsewhere.
  document.getElementById('enroll-again').addEventListener('click', function () {
    show('Starting again…');
    enroll(enrollToken);
  });
  // A passkey as the factor a policy requires.
  document.getElementById('enroll-passkey').addEventListener('click', function () {
    addPasskey(function () { return Promise.resolve({'Authorization': 'Bearer ' + enrollToken}); }, 'Passkey', function (body) {
      forgetEnrolment(); // the TOTP secret offered first is not the factor
      if (body.recovery_codes) { showRecovery(body.recovery_codes, enrolled); return; }
      enrolled();
    });
  });
  // An SSO login that needs the second factor (or its enrolment) comes
  // back here with the token in the fragment, which no server sees.
  // With a passkey, the WebAuthn request options come along (base64url
  // JSON).
  var frag = new URLSearchParams(location.hash.slice(1));
  if (frag.get('mfa')) {
    history.replaceState(null, '', location.pathname + location.search);
    var opts = null;
    try { opts = frag.get('webauthn') ? JSON.parse(new TextDecoder().decode(unb64u(frag.get('webauthn')))) : null; } catch (e) { opts = null; }
    mfaStep(frag.get('mfa'), opts);
  } else if (frag.get('enroll')) {
    history.replaceState(null, '', location.pathname + location.search);
    enroll(frag.get('enroll'));
  }
  document.getElementById('logout').addEventListener('click', function () {
    acting().then(function (token) { return fetch('/api/v1/auth/logout', {method: 'POST', credentials: 'same-origin', headers: {'X-CSRF-Token': token}}); })
      .then(function (r) {
        if (r.status === 403 && movedMeanwhile({status: r.status})) { return; }
        if (!r.ok && r.status !== 401) { show('Sign-out failed', 'err'); return; }
        forget();
        shown = null;
        tell('signed-out');
        show('Signed out');
        signedOut();
      }).catch(function (e) { if (!e || !e.moved) { show('Network error', 'err'); } });
  });
  // "Continue as" the user signed in in another tab: their view.
  document.getElementById('continue-as').addEventListener('click', function () {
    shown = null;
    check(true);
  });
  // Another tab signed in or out, or this tab is shown again: who now?
  if (channel) {
    channel.addEventListener('message', function (e) {
      var m = e.data;
      if (!m || typeof m !== 'object') { return; }
      if (m.type === 'signed-out') { check(false, 'You signed out in another tab.'); } else if (m.type === 'signed-in') { check(false); }
    });
  }
  document.addEventListener('visibilitychange', function () { if (document.visibilityState === 'visible') { check(false); } });
  if (!frag.get('mfa') && !frag.get('enroll')) { check(true); }
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
	data := loginPageData{Nonce: randomToken(), ReturnTo: returnTo,
		SetUpAlready: []string{msgSetUpAlready, msgTOTPConfirmed}, Restarted: msgTOTPRestarted, SignInSpent: msgSignInSpent}
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

// checkOrigin refuses a browser session's request whose Origin is not
// the public URL's: another site's, or this service's page opened at
// another address (http://127.0.0.1:8080 for http://localhost:8080, where
// the cookies and passkeys of the public URL do not work either). The
// answer names the origin to open the page at — the public URL is no
// secret — rather than a missing CSRF token, which it is not (outside
// check 14e). Without a public URL, behind a proxy that terminates TLS, the
// page is at https and the service sees http: the answer then says to set
// INFRACAST_PUBLIC_URL, not to open the page at http (outside check 15d).
func (s *Server) checkOrigin(c *fiber.Ctx) error {
	o, want := c.Get(fiber.HeaderOrigin), s.baseURL(c)
	if o == "" || o == want {
		return nil
	}
	if s.cfg.SSO.PublicURL == nil && s.behindTLSProxy(c, o) {
		return &Error{http.StatusForbidden, "FORBIDDEN", "This request comes from a page at another origin than this service's: the page is at " + o +
			", and this service, without INFRACAST_PUBLIC_URL, takes its own origin from the request: " + want +
			" (a proxy that terminates TLS does not pass the https on). If the page is this service's, set INFRACAST_PUBLIC_URL to its origin, " + o}
	}
	return &Error{http.StatusForbidden, "FORBIDDEN", "This request comes from a page at another origin than this service's: open the page at " + want}
}

// behindTLSProxy reports whether a request from a page at origin looks like
// one through a proxy that terminates TLS: the page's origin is this
// service's host with another scheme, or a proxy said the client used https
// (X-Forwarded-Proto, from anyone: it only chooses the advice given).
func (s *Server) behindTLSProxy(c *fiber.Ctx, origin string) bool {
	if proto, _, _ := strings.Cut(c.Get(fiber.HeaderXForwardedProto), ","); strings.EqualFold(strings.TrimSpace(proto), "https") {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Scheme != "" && u.Scheme != requestScheme(c) &&
		strings.EqualFold(u.Host, string(c.Request().Host()))
}

func setPageSecurityHeaders(c *fiber.Ctx, nonce string) {
	c.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; style-src 'nonce-"+nonce+
		"'; connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
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
	cookie, err := cookieSession(c)
	if err != nil {
		return err
	}
	if !cookie {
		return c.Next()
	}
	if site := c.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return errCSRF
	}
	if err := s.checkOrigin(c); err != nil {
		return err
	}
	if err := c.Next(); err != nil {
		return err
	}
	if c.Response().StatusCode() != fiber.StatusOK {
		return nil
	}
	var body struct {
		Token        string          `json:"token"`
		ExpiresAt    string          `json:"expires_at"`
		RefreshToken string          `json:"refresh_token"`
		User         json.RawMessage `json:"user"`
	}
	if err := json.Unmarshal(c.Response().Body(), &body); err != nil || body.Token == "" {
		return errInternal
	}
	exp, err := time.Parse(time.RFC3339, body.ExpiresAt)
	if err != nil {
		return errInternal
	}
	s.setSessionCookies(c, body.Token, exp)
	s.setRefreshCookie(c, body.RefreshToken) // console_session.go
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"expires_at": body.ExpiresAt, "user": body.User})
}
