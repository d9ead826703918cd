// The admin console: the app shell (sign-in, session upkeep, navigation)
// and the router. Pages are in pages/. State that says where the app is
// goes on <body> as data attributes (data-state, data-page, data-ready) for
// scripts that drive a browser, and performance.mark('console-ready')
// marks the first settled screen.
import { render, type ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, callRaw, csrfToken, sessionEnded, setConfirmed, setReauthenticateHandler, setSessionConfirm, setUnauthorizedHandler, type Me } from './api';
import { Bdi, Notice, TextField, useRefocus } from './ui';
import { UsersPage, UserPage } from './pages/users';
import { KeysPage } from './pages/keys';
import { SSOPage } from './pages/sso';
import { SCIMPage } from './pages/scim';
import { AuditPage } from './pages/audit';
import { AccessPage } from './pages/access';

interface Provider { name: string; label: string; url: string }

export interface PageProps {
  me: Me;
  platformAdmin: boolean;
  // Tenants the caller administers (all for a platform admin: "*").
  adminTenants: string[];
  // Tenants seen so far, offered in the tenant fields.
  noteTenants: (ids: string[]) => void;
  // seesTenant: whether the console shows this tenant's data (a tenant
  // admin's tenants; every tenant for a platform admin). The API already
  // answers only what the caller may see; a user or key that is also in
  // other tenants comes with those, which the console leaves out.
  seesTenant: (id: string) => boolean;
  go: (hash: string) => void;
  params: string[];
  // recheck asks /auth/me again now: an action refused as no longer the
  // caller's (refusedMeanwhile) may be the caller's own roles that changed.
  recheck: () => void;
}

const cookieSession = { 'X-Infracast-Session': 'cookie' };
const CHECK_EVERY_MS = 20_000;

function providers(): Provider[] {
  try {
    const v = JSON.parse(document.body.dataset.sso || '[]');
    return Array.isArray(v) ? v : [];
  } catch {
    return [];
  }
}

function setBody(attrs: Record<string, string | null>) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null) document.body.removeAttribute('data-' + k);
    else document.body.setAttribute('data-' + k, v);
  }
}

let readyMarked = false;
function markReady() {
  if (readyMarked) return;
  readyMarked = true;
  setBody({ ready: '1' });
  try { performance.mark('console-ready'); } catch { /* no Performance API: the data attribute says it */ }
}

// ---- sign-in ----

// signInSpent begins the 503 of a sign-in step that spent its code but
// started no session (http/errors.go msgSignInSpent; docs/mfa.md keeps it).
const signInSpent = 'The sign-in could not be completed';

// TITLE ends every page's title; the page or step comes first (outside
// check 20w: the tab and a screen reader's window list said the same
// through every step and page).
const TITLE = 'Infracast Auth';
function setTitle(...parts: string[]) { document.title = [...parts, TITLE].join(' · '); }

// waitText says a Retry-After (seconds) in words, rounded: "15 minutes".
export function waitText(seconds: number): string {
  const s = Math.max(1, Math.round(seconds));
  if (s < 60) return s === 1 ? '1 second' : s + ' seconds';
  const m = Math.round(s / 60);
  if (m < 120) return m === 1 ? '1 minute' : m + ' minutes';
  const h = Math.round(m / 60);
  return h + ' hours';
}

// refusalText is what a refused sign-in step says: the API's message, but
// a lockout (429) with the wait its Retry-After gives (outside check 20w:
// "try again later" while the answer said 884 s).
function refusalText(res: { status: number; body: any; headers: Headers }, fallback: string): string {
  const retry = Number(res.headers.get('Retry-After'));
  if (res.status === 429 && Number.isFinite(retry) && retry > 0) return 'Too many failed sign-in attempts: try again in ' + waitText(retry) + '.';
  return res.body?.error?.message || fallback;
}

function SignIn(props: { onSignedIn: () => void; reason: string }) {
  const [step, setStep] = useState<'password' | 'mfa' | 'enroll'>('password');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [mfaToken, setMfaToken] = useState('');
  const [error, setError] = useState('');
  // refused: the error is the service's refusal of what was typed (not a
  // network error): the field of the step is invalid, described by it, and
  // takes the focus.
  const [refused, setRefused] = useState(false);
  const [busy, setBusy] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);
  const form = useRef<HTMLFormElement>(null);
  useRefocus(form, busy);
  useEffect(() => {
    setBody({ state: step === 'password' ? 'signed-out' : step });
    setTitle(...(step === 'mfa' ? ['Enter your code', 'Sign in'] : step === 'enroll' ? ['Set up a second factor', 'Sign in'] : ['Sign in']));
    heading.current?.focus();
  }, [step]);

  const answer = (res: { ok: boolean; status: number; body: any; headers: Headers }) => {
    if (res.ok) { setPassword(''); setCode(''); setMfaToken(''); props.onSignedIn(); return; }
    const code = res.body?.error?.code;
    if (code === 'MFA_REQUIRED') { setMfaToken(res.body.mfa_token); setCode(''); setError(''); setStep('mfa'); return; }
    if (code === 'MFA_ENROLLMENT_REQUIRED') { setError(''); setStep('enroll'); return; }
    setError(refusalText(res, 'Sign-in failed'));
    setRefused(true);
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true); setError(''); setRefused(false);
    try { answer(await callRaw('POST', '/api/v1/auth/token', { username, password }, cookieSession)); }
    catch { setError('The service did not answer (network error)'); }
    finally { setBusy(false); }
  };
  const submitCode = async (e: Event) => {
    e.preventDefault();
    setBusy(true); setError(''); setRefused(false);
    try {
      const res = await callRaw('POST', '/api/v1/auth/token/mfa', { mfa_token: mfaToken, code: code.trim() }, cookieSession);
      const msg: string = res.body?.error?.message || '';
      // A dead MFA token (401), or the 503 whose code was spent but whose
      // session did not start (it refuses the same code again): the
      // password form, with the message.
      if (!res.ok && ((res.status === 401 && /MFA token/.test(msg)) || (res.status === 503 && msg.startsWith(signInSpent)))) { setStep('password'); }
      answer(res);
    } catch { setError('The service did not answer (network error)'); }
    finally { setBusy(false); }
  };
  const sso = providers();
  const loginPage = '/login?return_to=' + encodeURIComponent('/console');
  return (
    <main class="signin" id="main">
      <div class="signin-card">
        <p class="brand">Infracast Auth</p>
        {step === 'password' ? (
          <>
            <h1 tabIndex={-1} ref={heading}>Sign in to the admin console</h1>
            {props.reason ? <Notice kind="warn" id="signed-out-reason">{props.reason}</Notice> : null}
            <form id="signin-form" onSubmit={submit} ref={form}>
              <TextField id="username" label="Username" value={username} onValue={setUsername} required autoComplete="username" />
              <TextField id="password" label="Password" type="password" value={password} onValue={setPassword} required autoComplete="current-password"
                errorAt={error && refused ? 'signin-error' : undefined} />
              {error ? <Notice kind="error" id="signin-error">{error}</Notice> : null}
              <button type="submit" class="primary wide" id="signin-submit" disabled={busy}>Sign in</button>
            </form>
            {sso.length > 0 ? (
              <div class="sso-buttons" role="group" aria-label="Single sign-on">
                <p class="or">or</p>
                {sso.map((p) => <a class="button wide sso" id={'sso-' + p.name} href={p.url} key={p.name}>Sign in with {p.label}</a>)}
              </div>
            ) : null}
            <p class="hint center"><a href={loginPage}>Sign in with a passkey</a> on the sign-in page.</p>
          </>
        ) : step === 'mfa' ? (
          <>
            <h1 tabIndex={-1} ref={heading}>Second factor</h1>
            <form id="mfa-form" onSubmit={submitCode} ref={form}>
              <TextField id="mfa-code" label="Code from your authenticator app, or a recovery code" value={code} onValue={setCode}
                required autoComplete="one-time-code" inputProps={{ inputMode: 'text' }} errorAt={error && refused ? 'signin-error' : undefined} />
              {error ? <Notice kind="error" id="signin-error">{error}</Notice> : null}
              <button type="submit" class="primary wide" id="mfa-submit" disabled={busy}>Verify</button>
            </form>
            <p class="hint center"><a href={loginPage}>Use a passkey</a> on the sign-in page instead.</p>
            <button type="button" class="link" onClick={() => { setStep('password'); setError(''); }}>Back</button>
          </>
        ) : (
          <>
            <h1 tabIndex={-1} ref={heading}>Set up a second factor first</h1>
            <p>Your organization requires a second factor. Enrol one on the sign-in page; it brings you back here.</p>
            <a class="button primary wide" id="enroll-link" href={loginPage}>Set up a second factor</a>
            <button type="button" class="link" onClick={() => setStep('password')}>Back</button>
          </>
        )}
      </div>
    </main>
  );
}

// ---- the signed-in shell ----

// platform: offered to platform admins only; audit: to those who may read
// the audit log somewhere (audit:read, which admin:* holds) — the API
// refuses everyone else both pages (a re-check: viewers were offered them).
const NAV: Array<{ page: string; label: string; platform?: boolean; audit?: boolean }> = [
  { page: 'users', label: 'Users' },
  { page: 'keys', label: 'API keys' },
  { page: 'sso', label: 'Single sign-on', platform: true },
  { page: 'scim', label: 'SCIM provisioning' },
  { page: 'audit', label: 'Audit log', audit: true },
  { page: 'access', label: 'Access explorer', audit: true },
];

function route(): { page: string; params: string[] } {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] || 'users', params: parts.slice(1) };
}

function Shell(props: { me: Me; onSignOut: () => void; recheck: () => void; notices?: ComponentChildren; focusOnMount?: boolean }) {
  const [r, setR] = useState(route());
  const [tenants, setTenants] = useState<string[]>(() => props.me.tenants.filter((t) => props.me.roles.includes('admin') || t.permissions.includes('admin:*')).map((t) => t.id));
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  useEffect(() => {
    const on = () => setR(route());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  useEffect(() => {
    setBody({ page: r.page });
    const nav = NAV.find((n) => n.page === r.page);
    if (!nav) setTitle('Not found');
    else if (r.page === 'users' && r.params[0]) setTitle('User', nav.label);
    else setTitle(nav.label);
    // A new page — or the first one after signing in here, where the
    // focus was on the sign-in form that is gone — moves the focus to its
    // heading, as a page load would; the page load itself leaves it.
    if (first.current) { first.current = false; if (!props.focusOnMount) return; }
    requestAnimationFrame(() => (main.current?.querySelector('h1') as HTMLElement | null)?.focus());
  }, [r.page, r.params.join('/')]);
  const platformAdmin = props.me.roles.includes('admin');
  const adminTenants = platformAdmin ? ['*'] : props.me.tenants.filter((t) => t.permissions.includes('admin:*')).map((t) => t.id);
  const seesTenant = (id: string) => platformAdmin || adminTenants.includes(id);
  const auditor = platformAdmin || props.me.tenants.some((t) => t.permissions.includes('audit:read') || t.permissions.includes('admin:*'));
  const auditOnly = (title: string) => (
    <section><h1 tabIndex={-1}>{title}</h1><p id="audit-only">Only admins — those who may read the audit log (<code>audit:read</code>) in a tenant — see this page.</p></section>
  );
  const noteTenants = useCallback((ids: string[]) => {
    setTenants((old) => {
      const add = ids.filter((id) => id && id !== '*' && seesTenant(id) && !old.includes(id));
      return add.length ? [...old, ...add].sort() : old;
    });
  }, []);
  const go = (hash: string) => { location.hash = hash; };
  const pp: PageProps = { me: props.me, platformAdmin, adminTenants, noteTenants, seesTenant, go, params: r.params, recheck: props.recheck };
  let page;
  switch (r.page) {
    case 'users': page = r.params[0] ? <UserPage {...pp} key={r.params[0]} /> : <UsersPage {...pp} />; break;
    case 'keys': page = <KeysPage {...pp} />; break;
    case 'sso': page = <SSOPage {...pp} />; break;
    case 'scim': page = <SCIMPage {...pp} />; break;
    case 'audit': page = auditor ? <AuditPage {...pp} /> : auditOnly('Audit log'); break;
    case 'access': page = auditor ? <AccessPage {...pp} /> : auditOnly('Access explorer'); break;
    default: page = <section><h1 tabIndex={-1}>Not found</h1><p>No such page. <a href="#/users">Go to the users</a>.</p></section>;
  }
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); (main.current?.querySelector('h1') as HTMLElement | null)?.focus(); }}>Skip to the content</a>
      <header class="top">
        <span class="brand">Infracast Auth <span class="muted">console</span></span>
        <span class="who">
          <Bdi id="who" title={props.me.id} text={props.me.username} />
          <span class="muted" id="who-role"> · {platformAdmin ? 'platform admin'
            : adminTenants.length ? <>tenant admin of {adminTenants.map((t, i) => <span key={t}>{i ? ', ' : ''}<Bdi text={t} /></span>)}</>
              : 'no admin role: your own account and keys'}</span>
        </span>
        <button type="button" class="secondary small" id="signout" onClick={props.onSignOut}>Sign out</button>
      </header>
      {props.notices ? <div class="session-notices">{props.notices}</div> : null}
      <div class="layout">
        <nav class="side" aria-label="Console sections">
          <ul>
            {NAV.filter((n) => (!n.platform || platformAdmin) && (!n.audit || auditor)).map((n) => (
              <li key={n.page}><a href={'#/' + n.page} id={'nav-' + n.page} aria-current={r.page === n.page ? 'page' : undefined}>{n.label}</a></li>
            ))}
          </ul>
        </nav>
        <main id="main" ref={main}>{page}</main>
      </div>
      <datalist id="tenants-list">{tenants.map((t) => <option value={t} key={t} />)}</datalist>
    </>
  );
}

// ---- the app: who is signed in, and keeping the session ----

// Refresh retries. After a failure whose outcome is unknown (network error,
// 5xx, any status but 401/403 without Retry-After) the service may have
// applied the refresh: with rotation on, the refresh token the browser holds
// is then spent, and presenting it again is safe only within the service's
// reuse interval, counted from the rotation; later it revokes the session.
// So the console retries quickly (1 s, 2 s, 4 s after the failures) only
// while a retry starts more than a margin (a fifth of the interval, at
// least 1 s: the retry's own way to the service, the skew's whole seconds)
// before the interval ends, counted from when the first attempt that may
// have spent the token *started* — a failure that comes slowly (a dropped
// connection seconds later) or a short interval leaves fewer quick retries,
// an interval of 0 none (outside check 18w: timed from each failure with a
// fixed 10 s in mind, the retries revoked the session). Past that, and for
// every slower retry, it asks the session list first whether the refresh
// was applied. Without rotation there is no reuse detection: every retry is
// safe, so the slower ones need no asking.
const QUICK_RETRY_MS = [1_000, 2_000, 4_000];
const SLOW_RETRY_MS = 15_000;
const reuseMargin = (reuseMs: number) => Math.max(1_000, reuseMs / 5);

// The service's refresh rules, which it puts on <body> (console.go):
// whether it rotates refresh tokens, and its reuse interval. Without them
// the console assumes the strictest: rotation on, no reuse interval.
function refreshRules(): { rotation: boolean; reuseMs: number } {
  const d = document.body.dataset;
  const ms = d.refreshReuseMs ? Number(d.refreshReuseMs) : NaN;
  return { rotation: d.refreshRotation !== 'false', reuseMs: Number.isFinite(ms) && ms > 0 ? ms : 0 };
}
const rules = refreshRules();

// Why a tab shows the sign-in screen: a session revoked (or ended for a
// reason the console cannot tell), and one that reached its end — the
// session's absolute lifetime, or an access token the console stopped
// renewing — which is nobody's doing and must not read as a revocation.
const endedOrRevoked = 'Your session has ended or was revoked. Sign in again.';
const sessionEndedReason = 'Your session has ended. Sign in again to continue.';

// last_refreshed_at has whole seconds and the clock skew comes from the
// second-precise Date header (2 s), and the replica that applied the
// refresh (its clock in last_refreshed_at) may be up to the tolerated skew
// between replicas (2 s, docs/operations.md "Clocks") behind the one whose
// Date the console keeps (an outside check, 19b: 3 s of skew, "not
// applied", the spent token presented): a refresh up to this long before
// the first failed attempt counts as applied (stopping is the safe side:
// refreshes come at least 30 s apart).
const APPLIED_SLACK_MS = 4_000;

// Tabs of one browser share the cookies, so one session: they tell each
// other when they sign in or out (same origin only).
type TabMessage = { type: 'signed-in' } | { type: 'signed-out' } | { type: 'refreshed'; expires_at: string }
  | ({ type: 'renewal-stopped' } & RenewalStop);
const channel: BroadcastChannel | null = typeof BroadcastChannel === 'function' ? new BroadcastChannel('infracast-console') : null;
function tell(m: TabMessage) { try { channel?.postMessage(m); } catch { /* a closed channel: nothing to tell */ } }

// A session this browser's console no longer renews, and why: 'stopped' —
// a refresh may have spent the refresh token all tabs share (the cookie
// jar), so presenting it again past the reuse interval would revoke the
// session for reuse in whichever tab did (a false theft alarm); 'ends' —
// its absolute end caps the access token. The tab that stops tells the
// others (the 'renewal-stopped' message) and leaves this mark in
// localStorage for a tab opened, or woken from a frozen background, later:
// a tab about to refresh reads it first. Keyed by the session's ID (from
// /auth/me; no credential), so a new sign-in — a new session — is not
// concerned; a sign-in or sign-out in the console, and the session's end,
// remove it. The only thing the console keeps in web storage.
type RenewalStop = { session_id: string; expires_at: string; kind: 'stopped' | 'ends' };
const RENEWAL_STOP_KEY = 'infracast-console-renewal-stopped';
function readRenewalStop(): RenewalStop | null {
  try {
    const v = JSON.parse(localStorage.getItem(RENEWAL_STOP_KEY) || 'null');
    return v && typeof v.session_id === 'string' && typeof v.expires_at === 'string' && (v.kind === 'stopped' || v.kind === 'ends') ? v : null;
  } catch {
    return null; // no storage (disabled, or a private window's): the message alone tells the open tabs
  }
}
function writeRenewalStop(v: RenewalStop | null) {
  try {
    if (v) localStorage.setItem(RENEWAL_STOP_KEY, JSON.stringify(v));
    else localStorage.removeItem(RENEWAL_STOP_KEY);
  } catch { /* no storage: the message alone tells the open tabs */ }
}

type MeSource = 'first' | 'own-sign-in' | 'check' | 'other-tab';

// timeOf: the time of day of iso as the tables show times — in UTC, saying
// so (outside check 20w: the browser's local time, unnamed, beside tables
// in UTC).
function timeOf(iso: string): string {
  const d = new Date(iso);
  if (isNaN(d.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
}

function UserChanged(props: { me: Me; onContinue: () => void }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => { setTitle('Signed in in another tab'); heading.current?.focus(); }, []);
  return (
    <main class="signin" id="main">
      <div class="signin-card" id="user-changed">
        <p class="brand">Infracast Auth</p>
        <h1 tabIndex={-1} ref={heading}>Signed in as <Bdi text={props.me.username} /> in another tab</h1>
        <Notice kind="warn" id="user-changed-notice">
          Signed in as <Bdi text={props.me.username} /> in another tab. This browser now acts as <Bdi text={props.me.username} /> in every tab,
          this one too.
        </Notice>
        <button type="button" class="primary wide" id="continue-as" onClick={props.onContinue}>Continue as <Bdi text={props.me.username} /></button>
      </div>
    </main>
  );
}

function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [changed, setChanged] = useState<Me | null>(null); // another tab signed in someone else
  const [known, setKnown] = useState(false);
  const [reason, setReason] = useState('');
  const [renewNotice, setRenewNotice] = useState('');
  const [signOutError, setSignOutError] = useState('');
  const refreshTimer = useRef<number | undefined>(undefined);
  const skew = useRef(0); // server time − browser time, ms
  const scheduled = useRef(''); // expires_at the refresh is scheduled for
  const firstFailure = useRef<number | null>(null); // server time of the first failed attempt, ms
  const spentSince = useRef<number | null>(null); // performance.now() when that attempt started
  const quickUsed = useRef(0);
  // ends: the expires_at past which the session is not renewed (its
  // absolute end caps it, or the console stopped retrying); endTimer shows
  // the sign-in screen then.
  const ends = useRef('');
  const endTimer = useRef<number | undefined>(undefined);
  const shownUser = useRef<Me | null>(null); // the user this tab last showed
  const sessionId = useRef(''); // the session /auth/me last answered
  // stopped: the tab renews the session no more (it gave up, met the
  // session's end, or another tab of the browser did).
  const stopped = useRef(false);
  // out: the tab is signed out; a 401 of a request still on its way (a
  // page's load, a check) must not replace why ("You have signed out").
  const out = useRef(false);

  const noteDate = (h: Headers) => {
    const date = h.get('Date');
    if (date) { const t = new Date(date).getTime(); if (!isNaN(t)) skew.current = t - Date.now(); }
  };
  const serverNow = () => Date.now() + skew.current;

  const signedOut = useCallback((why: string) => {
    out.current = true;
    window.clearTimeout(refreshTimer.current);
    window.clearTimeout(endTimer.current);
    scheduled.current = '';
    ends.current = '';
    firstFailure.current = null;
    spentSince.current = null;
    quickUsed.current = 0;
    stopped.current = false;
    setMe(null);
    setChanged(null);
    setKnown(true);
    setReason(why);
    setRenewNotice('');
    setSignOutError('');
    setBody({ user: null, page: null });
  }, []);

  // schedule refreshes the session a little before its access token
  // expires (a fifth of its life before, at least 30 s, at most 5 min).
  const schedule = useCallback((expiresAt: string) => {
    window.clearTimeout(refreshTimer.current);
    window.clearTimeout(endTimer.current);
    scheduled.current = expiresAt;
    ends.current = '';
    firstFailure.current = null;
    spentSince.current = null;
    quickUsed.current = 0;
    stopped.current = false;
    setRenewNotice('');
    setBody({ renew: null });
    const left = new Date(expiresAt).getTime() - serverNow();
    const margin = Math.min(5 * 60_000, Math.max(30_000, left / 5));
    refreshTimer.current = window.setTimeout(refresh, Math.max(1_000, left - margin));
  }, []);

  // later: whether expiresAt is after the one the refresh is scheduled for.
  const later = (expiresAt: string) => !scheduled.current || new Date(expiresAt).getTime() > new Date(scheduled.current).getTime();
  // renewedPast: whether the tab knows of an expiry later than expiresAt (a refresh since).
  const renewedPast = (expiresAt: string) => !!scheduled.current && new Date(scheduled.current).getTime() > new Date(expiresAt).getTime();

  // endAt: the session is not renewed past expiresAt; then the tab shows
  // the sign-in screen, saying the session ended (not "revoked").
  const endAt = (expiresAt: string) => {
    window.clearTimeout(refreshTimer.current);
    window.clearTimeout(endTimer.current);
    ends.current = expiresAt;
    endTimer.current = window.setTimeout(() => {
      if (out.current) return;
      // Past the access token, a tab opened now finds no session (401): the mark has done its work.
      if (readRenewalStop()?.session_id === sessionId.current) writeRenewalStop(null);
      signedOut(sessionEndedReason);
    },
      Math.max(0, new Date(expiresAt).getTime() - serverNow()));
  };

  // endedWhy: why a 401 ended the session — its end, when that was due
  // (the cookie gone a moment before the end timer), else why.
  const endedWhy = (why = endedOrRevoked) =>
    why === endedOrRevoked && ends.current && new Date(ends.current).getTime() - serverNow() <= 2_000 ? sessionEndedReason : why;

  // stopAt shows that the session is renewed no more: kind 'stopped' (a
  // refresh may have spent the token), 'ends' (its absolute end); at
  // expiresAt the tab shows the sign-in screen.
  const stopAt = (kind: RenewalStop['kind'], expiresAt: string) => {
    window.clearTimeout(refreshTimer.current);
    stopped.current = true;
    if (expiresAt) scheduled.current = expiresAt;
    if (kind === 'ends') {
      setRenewNotice('Your session ends at ' + timeOf(expiresAt) + '; sign in again to continue.');
      setBody({ renew: 'ends' });
    } else {
      setRenewNotice('Your session could not be renewed; it ends at ' + (expiresAt ? timeOf(expiresAt) : 'soon') + '. Sign in again then.');
      setBody({ renew: 'stopped' });
    }
    if (expiresAt) endAt(expiresAt);
  };

  // tellStopped tells the other tabs, open now or later, that the session
  // is renewed no more (RenewalStop).
  const tellStopped = (kind: RenewalStop['kind'], expiresAt: string) => {
    if (!sessionId.current || !expiresAt) return;
    const v: RenewalStop = { session_id: sessionId.current, expires_at: expiresAt, kind };
    writeRenewalStop(v);
    tell({ type: 'renewal-stopped', ...v });
  };

  // stoppedElsewhere: another tab of this browser stopped renewing this
  // session (the mark in storage) and the tab knows of no renewal since:
  // it stops too, showing the same. Read before every refresh.
  const stoppedElsewhere = (): boolean => {
    const v = readRenewalStop();
    if (!v || v.session_id !== sessionId.current || out.current) return false;
    if (renewedPast(v.expires_at)) return false;
    stopAt(v.kind, v.expires_at);
    return true;
  };

  // giveUp stops retrying: the session lasts until its access token expires.
  // With rotation on, after an attempt that may have spent the refresh
  // token, the other tabs (which hold the same token) stop too.
  const giveUp = () => {
    stopAt('stopped', scheduled.current);
    if (rules.rotation && spentSince.current !== null) tellStopped('stopped', scheduled.current);
  };

  // capped: a refresh did not move the expiry later — the session's
  // absolute end caps the access token — so refreshing again would only
  // repeat it (outside check 18w: once a second in the last 30 s, in every
  // tab). Stop, say when the session ends, and at its end sign in again;
  // the other tabs too.
  const capped = (expiresAt: string) => {
    stopAt('ends', expiresAt);
    tellStopped('ends', expiresAt);
  };

  // tokenLeft: ms until the access token expires, by the server's clock.
  const tokenLeft = () => (scheduled.current ? new Date(scheduled.current).getTime() - serverNow() : Infinity);

  // mayPresent: whether a retry that starts delay ms from now may present,
  // without asking the session list first, the refresh token that a failed
  // attempt may have spent: with rotation on, only while it starts more
  // than the margin before the reuse interval, counted from the start of
  // the first such attempt, ends.
  const mayPresent = (delay: number) => !rules.rotation || spentSince.current === null ||
    performance.now() + delay - spentSince.current < rules.reuseMs - reuseMargin(rules.reuseMs);

  // applied asks the session list whether a refresh reached the service
  // since the first failed attempt: 'yes', 'no', 'unknown', or 'gone' (the
  // session has ended: signed out).
  const applied = async (): Promise<'yes' | 'no' | 'unknown' | 'gone'> => {
    try {
      type S = { current?: boolean; last_refreshed_at: string | null };
      let cur: S | undefined;
      let cursor = '';
      for (let pages = 0; !cur && pages < 50; pages++) {
        const res = await fetch('/api/v1/auth/sessions?limit=100' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''),
          { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } });
        noteDate(res.headers);
        if (res.status === 401) { signedOut(endedWhy()); return 'gone'; }
        if (!res.ok) return 'unknown';
        const body = await res.json() as { sessions?: S[]; next_cursor?: string };
        cur = (body.sessions || []).find((x) => x.current);
        cursor = body.next_cursor || '';
        if (!cursor) break;
      }
      if (!cur) return 'unknown';
      if (!cur.last_refreshed_at) return 'no';
      const at = new Date(cur.last_refreshed_at).getTime();
      return at + APPLIED_SLACK_MS < (firstFailure.current ?? serverNow()) ? 'no' : 'yes';
    } catch {
      return 'unknown';
    }
  };

  // slow: after the quick retries, every 15 s while the token lives: ask
  // whether the lost refresh was applied, and retry only if it was not
  // (without rotation, retry: nothing to ask).
  const slow = async (now: boolean) => {
    const check = async () => {
      if (tokenLeft() <= 0) { giveUp(); return; }
      const a = rules.rotation ? await applied() : 'no';
      if (a === 'gone' || stopped.current) return;
      if (a === 'yes') { giveUp(); return; }
      if (a === 'no' && !now) { refresh(true); return; }
      now = false;
      refreshTimer.current = window.setTimeout(check, SLOW_RETRY_MS);
    };
    window.clearTimeout(refreshTimer.current);
    await check();
  };

  // refresh renews the session; checked: the session list has just said
  // no failed attempt was applied (the slow retries), so the refresh token
  // is unspent.
  const refresh = useCallback(async (checked?: boolean) => {
    window.clearTimeout(refreshTimer.current);
    // Another tab stopped renewing: the token may be spent (or its end
    // met). Read here, not only told: a frozen background tab's timer may
    // fire before the message is delivered.
    if (stoppedElsewhere()) return;
    // A quick retry whose timer fired late (a background tab's timers are
    // slowed) asks first, as any retry past the interval.
    if (checked !== true && !mayPresent(0)) { void slow(true); return; }
    const from = scheduled.current;
    const started = serverNow();
    const startedMono = performance.now();
    // The browser itself sends a request again when its connection drops
    // before the answer (a kept-alive one: Chromium, up to once per idle
    // connection), each time with the token this attempt may have spent:
    // with rotation on, the attempt is aborted when a retry could no longer
    // present it, so that no send of it comes past the reuse interval.
    const abort = new AbortController();
    const since = checked === true || spentSince.current === null ? startedMono : spentSince.current;
    const until = since + rules.reuseMs - reuseMargin(rules.reuseMs) - startedMono;
    // (An interval too short for any retry: nothing to gain, the attempt runs.)
    const abortTimer = rules.rotation && until > 0 ? window.setTimeout(() => abort.abort(), until) : undefined;
    let res: { ok: boolean; status: number; body: any; headers: Headers } | null = null;
    try { res = await callRaw('POST', '/api/v1/auth/refresh', {}, cookieSession, false, abort.signal); } catch { res = null; }
    finally { window.clearTimeout(abortTimer); }
    if (res) noteDate(res.headers);
    if (res && res.ok) {
      const exp: string = res.body.expires_at;
      setBody({ refreshed: exp });
      if (from && !(new Date(exp).getTime() > new Date(from).getTime())) { capped(exp); return; }
      // Renewed: the jar holds an unspent token again, whatever a tab gave up on.
      if (readRenewalStop()?.session_id === sessionId.current) writeRenewalStop(null);
      schedule(exp);
      tell({ type: 'refreshed', expires_at: exp });
      return;
    }
    if (res && (res.status === 401 || res.status === 403)) { signedOut(endedWhy()); return; }
    // Stopped while the attempt was on its way (another tab gave up, or met
    // the session's end): no retry.
    if (stopped.current || stoppedElsewhere()) return;
    // (A tab told of another's refresh meanwhile retries all the same: this
    // attempt may have presented, and spent, the token that refresh set.)
    window.clearTimeout(refreshTimer.current);
    const retryAfter = res ? Number(res.headers.get('Retry-After')) : NaN;
    if (res && res.status === 503 && res.headers.get('Retry-After') !== null && !isNaN(retryAfter)) {
      // Nothing was changed: retry when told, while the access token lives.
      const wait = Math.max(1, retryAfter) * 1000;
      if (wait >= tokenLeft()) { giveUp(); return; }
      refreshTimer.current = window.setTimeout(refresh, wait);
      return;
    }
    // Unknown: the service may have applied it.
    if (firstFailure.current === null) { firstFailure.current = started; spentSince.current = startedMono; }
    if (quickUsed.current < QUICK_RETRY_MS.length && mayPresent(QUICK_RETRY_MS[quickUsed.current])) {
      refreshTimer.current = window.setTimeout(refresh, QUICK_RETRY_MS[quickUsed.current++]);
      return;
    }
    void slow(true);
  }, []);

  // signedInHere: this page showed a sign-in form (or the other-user
  // notice) that the user left by signing in: the shell then takes the
  // focus to its heading.
  const signedInHere = useRef(false);
  // loadMe asks /auth/me who is signed in, and shows them (or the sign-in
  // screen, or the other-user notice). It answers whether the session is
  // still the user the tab shows; it then confirms the CSRF cookie's value
  // read before asking (api.ts actingToken; read after, it could be a
  // later sign-in's).
  const loadMe = useCallback(async (source: MeSource, why = endedOrRevoked): Promise<boolean> => {
    const first = source === 'first';
    const csrf = csrfToken();
    try {
      const res = await fetch('/api/v1/auth/me', { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } });
      noteDate(res.headers);
      if (res.status === 401) {
        if (source === 'check' && out.current) return false; // signed out meanwhile: keep the reason
        signedOut(first || source === 'own-sign-in' ? '' : endedWhy(why));
        return false;
      }
      if (!res.ok) { if (first) { setKnown(true); setReason('The service is not answering (' + res.status + '); try again shortly.'); } return false; }
      const m = (await res.json()) as Me;
      if (m.type !== 'user') { signedOut(''); return false; }
      if (source === 'own-sign-in') { shownUser.current = null; writeRenewalStop(null); }
      sessionId.current = m.session_id;
      if (first || source === 'own-sign-in' || later(m.expires_at)) { schedule(m.expires_at); stoppedElsewhere(); }
      setKnown(true);
      setReason('');
      const shown = shownUser.current;
      if (shown && shown.id !== m.id) {
        // Someone else signed in in another tab: say so, do not switch silently.
        setChanged(m);
        setBody({ state: 'user-changed', user: null, page: null, 'other-user': m.username });
        return false;
      }
      shownUser.current = m;
      setConfirmed(csrf);
      out.current = false;
      setChanged(null);
      setMe((old) => (old && old.id === m.id && old.expires_at === m.expires_at && old.roles.join() === m.roles.join()
        && JSON.stringify(old.tenants) === JSON.stringify(m.tenants) ? old : m));
      setBody({ state: 'signed-in', user: m.username, 'other-user': null });
      return true;
    } catch {
      if (first) { setKnown(true); setReason('The service did not answer (network error).'); }
      return false;
    }
  }, []);

  useEffect(() => {
    setUnauthorizedHandler(() => { if (!out.current) signedOut(endedWhy()); });
    setReauthenticateHandler((message) => { void signOutWith(message); });
    // A request that changes state is sent only for the user shown here.
    setSessionConfirm(() => loadMe('check'));
    loadMe('first');
    if (!channel) return;
    const on = (e: MessageEvent<TabMessage>) => {
      const m = e.data;
      if (!m || typeof m !== 'object') return;
      if (m.type === 'refreshed') { if (later(m.expires_at)) schedule(m.expires_at); return; }
      // Another tab renews this session no more: neither does this one,
      // unless it knows of a renewal past that (a later 'refreshed').
      if (m.type === 'renewal-stopped') {
        if (m.session_id === sessionId.current && !out.current && !renewedPast(m.expires_at)) stopAt(m.kind, m.expires_at);
        return;
      }
      if (m.type === 'signed-out') loadMe('other-tab', 'You signed out in another tab.');
      else if (m.type === 'signed-in') loadMe('other-tab');
    };
    channel.addEventListener('message', on);
    return () => channel.removeEventListener('message', on);
  }, []);
  // Revocation: check the session now and then, and when the tab is shown
  // again — then on the sign-in screen too, which so learns of a sign-in
  // in another tab that none announced (outside check 17e).
  useEffect(() => {
    const vis = () => { if (document.visibilityState === 'visible') loadMe('check'); };
    document.addEventListener('visibilitychange', vis);
    return () => document.removeEventListener('visibilitychange', vis);
  }, []);
  useEffect(() => {
    if (!me) return;
    const t = window.setInterval(() => loadMe('check'), CHECK_EVERY_MS);
    return () => window.clearInterval(t);
  }, [me?.id]);
  useEffect(() => { if (known) markReady(); }, [known, me]);

  // signOut: 204 (or 401: the session had already ended) is signed out;
  // after any other answer the tab asks whether the session still lives,
  // and stays signed in unless it has ended.
  const signOut = () => signOutWith('You have signed out.');
  // signOutWith signs out and shows reason on the sign-in form.
  async function signOutWith(reason: string) {
    setSignOutError('');
    const done = () => {
      writeRenewalStop(null);
      tell({ type: 'signed-out' });
      shownUser.current = null;
      signedOut(reason);
    };
    let why = '';
    try {
      // asShown: never the sign-out of another user signed in meanwhile.
      const res = await callRaw('POST', '/api/v1/auth/logout', {}, {}, true);
      if (res.status === 204 || res.status === 401) { done(); return; }
      why = 'the service answered ' + res.status + (res.body?.error?.message ? ': ' + res.body.error.message : '');
    } catch (e) {
      // Not sent: loadMe shows who is signed in now (or could not tell).
      if (e instanceof ApiError && e.code === 'SESSION_CHANGED') { setSignOutError(e.message); return; }
      why = 'network error';
    }
    // The answer may be what failed, not the sign-out (a proxy's 504, a
    // dropped connection after the service ended the session): ask.
    const ended = await sessionEnded();
    if (ended) { done(); return; }
    setSignOutError('Sign out did not go through (' + why + '); try again. ' +
      (ended === false ? 'You are still signed in.' : 'You may still be signed in.'));
  }

  if (!known) return <p class="loading" role="status">Loading…</p>;
  if (changed) {
    return <UserChanged me={changed} onContinue={() => {
      const m = changed;
      signedInHere.current = true;
      shownUser.current = m;
      setChanged(null);
      setSignOutError('');
      setMe(m);
      setBody({ state: 'signed-in', user: m.username, 'other-user': null });
    }} />;
  }
  if (!me) return <SignIn reason={reason} onSignedIn={() => { signedInHere.current = true; loadMe('own-sign-in').then(() => tell({ type: 'signed-in' })); }} />;
  return <Shell me={me} onSignOut={signOut} recheck={() => { void loadMe('check'); }} key={me.id} focusOnMount={signedInHere.current} notices={<>
    {signOutError ? <Notice kind="error" id="signout-error">{signOutError}</Notice> : null}
    {renewNotice ? <Notice kind="warn" id="renew-notice">{renewNotice}</Notice> : null}
  </>} />;
}

render(<App />, document.getElementById('app')!);
