// Shared pieces of the pages: labelled fields with their errors, notices,
// pagers, copy and two-step confirm buttons, formatting, and Bdi, which
// every string from the API (a name, an ID, an email, an address…) is shown
// in.
import type { ComponentChildren } from 'preact';
import { useEffect, useId, useRef, useState, useCallback } from 'preact/hooks';
import { ApiError, errorText, reauthenticate } from './api';

export const ROLES = ['viewer', 'editor', 'admin'];
export const PERMISSIONS = [
  'nodes:read', 'nodes:write', 'findings:read', 'findings:write', 'jobs:read', 'jobs:write',
  'reports:read', 'audit:read', 'admin:*',
];

// BIDI_CONTROLS are the invisible characters that change the direction of
// the text around them (embeddings, overrides, isolates, marks).
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
// HIDDEN are the characters that show nothing of themselves, as the service
// refuses them in names (domain/names.go): those, controls, zero-width and
// other invisible formatting characters, line and paragraph separators, and
// the fillers that draw nothing — a user agent or an identity provider's
// name may still carry them (a re-check: blank names, a user agent cut in
// two). The zero width (non-)joiners are left: they join emoji and words.
const HIDDEN = /[\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u180e\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\u2800\u3164\ufeff\uffa0\ufff9-\ufffb]/g;
// HIDDEN_IN_JSON: HIDDEN but the newlines and indentation JSON is laid out with.
const HIDDEN_IN_JSON = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u180e\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\u2800\u3164\ufeff\uffa0\ufff9-\ufffb]/g;

function codeOf(c: string): string {
  return 'U+' + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
}

// escapeBidi writes the hidden characters in s (direction controls and the
// rest of HIDDEN) as JSON escapes (\u202e), for text shown as JSON.
export function escapeBidi(s: string): string {
  return s.replace(HIDDEN_IN_JSON, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

// Bdi shows a string that came from the API (user-supplied: a name, an ID,
// an email, an address, a user agent) in its own bidi isolate, so that it
// cannot reorder the text around it (a sentence of the console, the ID
// beside a name), and with its direction controls — and every other hidden
// character (HIDDEN) — shown as their code (U+202E) rather than applied, so that "\u202eyek nimda" does not pass
// for "admin key" (outside check 12e). Right-to-left text without them
// reads as it is.
export function Bdi(props: { text: string | number | null | undefined; class?: string; id?: string; title?: string }) {
  const s = props.text === null || props.text === undefined ? '' : String(props.text);
  const parts: ComponentChildren[] = [];
  let last = 0;
  for (const m of s.matchAll(HIDDEN)) {
    const at = m.index ?? 0;
    if (at > last) parts.push(s.slice(last, at));
    const title = BIDI_CONTROLS.test(m[0]) ? "An invisible character that changes the text's direction" : 'An invisible character';
    parts.push(<span class="bidi-control" key={at} title={title}>{codeOf(m[0])}</span>);
    last = at + m[0].length;
  }
  if (last < s.length) parts.push(s.slice(last));
  return <bdi class={props.class} id={props.id} title={props.title}>{parts}</bdi>;
}

type InputProps = { inputMode?: 'text' | 'numeric'; step?: number };

// NOT_MINE are the attributes that tell password managers a field holds
// no credential of the person at the screen — a new user's initial
// password, a client secret to store in the service: autocomplete="off"
// (the standard's word; browsers' own managers) and the ignore markers of
// 1Password, LastPass, Bitwarden and Dashlane, which otherwise offer to
// save it as the admin's login or fill the admin's own password in
// (outside check 20w: "new-password" beside a username read as a sign-up
// of the admin).
const NOT_MINE = { autoComplete: 'off', 'data-1p-ignore': '', 'data-lpignore': 'true', 'data-bwignore': 'true', 'data-form-type': 'other' };

export function TextField(props: {
  id: string; label: string; value: string; onValue: (v: string) => void; error?: string; hint?: string;
  type?: string; required?: boolean; autoComplete?: string; list?: string; placeholder?: string;
  inputProps?: InputProps; readOnly?: boolean;
  // notMine: a secret that is not the signed-in admin's (NOT_MINE).
  notMine?: boolean;
  // errorAt: the id of an error about this field shown elsewhere (the
  // sign-in's notice): the field is invalid and described by it.
  errorAt?: string;
}) {
  const described = [props.hint ? props.id + '-hint' : '', props.error ? props.id + '-err' : '', props.errorAt || ''].filter(Boolean).join(' ');
  return (
    <div class={'field' + (props.error ? ' invalid' : '')}>
      <label for={props.id}>{props.label}{props.required ? <span class="req" aria-hidden="true"> *</span> : null}</label>
      <input id={props.id} name={props.id} type={(props.type || 'text') as 'text'} value={props.value}
        onInput={(e) => props.onValue((e.currentTarget as HTMLInputElement).value)}
        required={props.required} autoComplete={props.autoComplete || 'off'} list={props.list}
        placeholder={props.placeholder} readOnly={props.readOnly}
        aria-invalid={props.error || props.errorAt ? 'true' : undefined} aria-describedby={described || undefined}
        inputMode={props.inputProps?.inputMode} step={props.inputProps?.step} {...(props.notMine ? NOT_MINE : {})} />
      {props.hint ? <p class="hint" id={props.id + '-hint'}>{props.hint}</p> : null}
      {props.error ? <p class="field-error" id={props.id + '-err'}>{props.error}</p> : null}
    </div>
  );
}

export function TextArea(props: {
  id: string; label: string; value: string; onValue: (v: string) => void; error?: string; hint?: string;
  rows?: number; required?: boolean; readOnly?: boolean; placeholder?: string;
}) {
  const described = [props.hint ? props.id + '-hint' : '', props.error ? props.id + '-err' : ''].filter(Boolean).join(' ');
  return (
    <div class={'field' + (props.error ? ' invalid' : '')}>
      <label for={props.id}>{props.label}{props.required ? <span class="req" aria-hidden="true"> *</span> : null}</label>
      <textarea id={props.id} name={props.id} rows={props.rows || 4} value={props.value} readOnly={props.readOnly}
        placeholder={props.placeholder} required={props.required}
        onInput={(e) => props.onValue((e.currentTarget as HTMLTextAreaElement).value)}
        aria-invalid={props.error ? 'true' : undefined} aria-describedby={described || undefined} />
      {props.hint ? <p class="hint" id={props.id + '-hint'}>{props.hint}</p> : null}
      {props.error ? <p class="field-error" id={props.id + '-err'}>{props.error}</p> : null}
    </div>
  );
}

export function SelectField(props: {
  id: string; label: string; value: string; onValue: (v: string) => void; options: Array<[string, string]>;
  error?: string; hint?: string;
}) {
  return (
    <div class={'field' + (props.error ? ' invalid' : '')}>
      <label for={props.id}>{props.label}</label>
      <select id={props.id} name={props.id} value={props.value}
        onChange={(e) => props.onValue((e.currentTarget as HTMLSelectElement).value)}
        aria-invalid={props.error ? 'true' : undefined}
        aria-describedby={props.error ? props.id + '-err' : props.hint ? props.id + '-hint' : undefined}>
        {props.options.map(([v, l]) => <option value={v} key={v}>{l}</option>)}
      </select>
      {props.hint ? <p class="hint" id={props.id + '-hint'}>{props.hint}</p> : null}
      {props.error ? <p class="field-error" id={props.id + '-err'}>{props.error}</p> : null}
    </div>
  );
}

export function Checkbox(props: { id: string; label: string; checked: boolean; onValue: (v: boolean) => void; hint?: string }) {
  return (
    <div class="check">
      <input type="checkbox" id={props.id} checked={props.checked}
        onChange={(e) => props.onValue((e.currentTarget as HTMLInputElement).checked)}
        aria-describedby={props.hint ? props.id + '-hint' : undefined} />
      <label for={props.id}>{props.label}</label>
      {props.hint ? <p class="hint" id={props.id + '-hint'}>{props.hint}</p> : null}
    </div>
  );
}

export function Notice(props: { kind: 'ok' | 'error' | 'warn' | 'info'; children: ComponentChildren; id?: string }) {
  return (
    <div id={props.id} class={'notice ' + props.kind} role={props.kind === 'error' ? 'alert' : 'status'}>
      {props.children}
    </div>
  );
}

// Meanwhile is an action on a listed item that the service refused because
// the item changed since the page listed it — revoked, deleted or changed in
// another tab or by another admin (404, 409, or 403 for an action no longer
// the caller's: refusedMeanwhile): its message says so in words,
// and the page has reloaded its list (outside check 15a: a revoked key still
// showed as active, with Rotate and Revoke, beside "Resource not found").
export class Meanwhile extends Error {}

// changedMeanwhile: e is an answer that the item acted on is gone (404) or
// was changed by another request (409).
export function changedMeanwhile(e: unknown): e is ApiError {
  return e instanceof ApiError && (e.status === 404 || e.status === 409);
}

// refusedMeanwhile: e is the API's plain refusal of an action (403
// FORBIDDEN "Insufficient permissions", http/errors.go errForbidden). The
// page offers an action only to a caller it judged may take it, on the item
// as it read it; refused so, the item (or the caller's roles) changed since
// — a user given a role in a tenant the admin does not administer, a key
// rotated by another admin and so owned by them (outside check 15r2: the
// page said "Insufficient permissions" and kept offering the action). Not
// the other 403s: a sign-in that is too old (REAUTHENTICATION_REQUIRED), a
// scoped session, a missing CSRF token, each of which says what to do.
export function refusedMeanwhile(e: unknown): e is ApiError {
  return e instanceof ApiError && e.status === 403 && e.code === 'FORBIDDEN' && e.message === 'Insufficient permissions';
}

// ErrorNotice shows a failed call's message (field errors are shown by their fields).
export function ErrorNotice(props: { error: unknown }) {
  if (!props.error) return null;
  const e = props.error;
  if (e instanceof Meanwhile) {
    return <div class="notice warn meanwhile" role="alert">{e.message}</div>;
  }
  if (e instanceof ApiError && e.code === 'REAUTHENTICATION_REQUIRED') {
    return <Notice kind="error">{e.message}{' '}
      <button type="button" id="reauthenticate" class="secondary small" onClick={() => reauthenticate(e.message)}>Sign in again</button></Notice>;
  }
  return <Notice kind="error">{errorText(props.error)}</Notice>;
}

// fieldErrors maps a VALIDATION_ERROR to the field it names, when the form has it.
export function fieldErrors(e: unknown, fields: string[]): { fields: Record<string, string>; rest: unknown } {
  if (e instanceof ApiError && e.field && fields.includes(e.field)) {
    return { fields: { [e.field]: e.message.slice(e.message.indexOf(':') + 1).trim() }, rest: null };
  }
  return { fields: {}, rest: e };
}

// Pager: the buttons that lead nowhere (Previous on the first page, Next on
// the last) are aria-disabled, not disabled: a button disabled under the
// focus — Next pressed to reach the last page — loses it to <body> once the
// browser notices (outside check 20w), so they stay focusable, say they are
// unavailable, and do nothing when pressed.
export function Pager(props: { page: number; hasNext: boolean; onPrev: () => void; onNext: () => void; onFirst?: () => void; label: string }) {
  const first = props.page === 0;
  return (
    <nav class="pager" aria-label={props.label}>
      {props.onFirst ? <PagerButton class="first-page" off={first} onClick={props.onFirst}>First page</PagerButton> : null}
      <PagerButton class="prev-page" off={first} onClick={props.onPrev}>Previous page</PagerButton>
      <span class="page-no" aria-live="polite">Page {props.page + 1}</span>
      <PagerButton class="next-page" off={!props.hasNext} onClick={props.onNext}>Next page</PagerButton>
    </nav>
  );
}

function PagerButton(props: { class: string; off: boolean; onClick: () => void; children: ComponentChildren }) {
  return <button type="button" class={'secondary ' + props.class} aria-disabled={props.off ? 'true' : undefined}
    onClick={() => { if (!props.off) props.onClick(); }}>{props.children}</button>;
}

// CopyButton copies text to the clipboard (the Clipboard API, or a selected
// hidden field where it is not available) and says so.
export function CopyButton(props: { text: string; label?: string; id?: string }) {
  const [done, setDone] = useState('');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.text);
      setDone('Copied');
    } catch {
      const ta = document.createElement('textarea');
      ta.value = props.text;
      ta.setAttribute('readonly', '');
      ta.className = 'offscreen';
      document.body.appendChild(ta);
      ta.select();
      const ok = document.execCommand('copy');
      ta.remove();
      setDone(ok ? 'Copied' : 'Copy failed: select the text and copy it');
    }
  };
  return (
    <span class="copy">
      <button type="button" class="secondary small" id={props.id} onClick={copy}>{props.label || 'Copy'}</button>
      <span class="copied" role="status">{done}</span>
    </span>
  );
}

// ConfirmButton asks again inline (no browser dialog) before acting. The
// question may hold names (in Bdi). Cancel (or Escape), and Yes once done, take the
// focus back to the button that asked; when that is gone (a revoked key's
// row has none), to the page's heading, never to <body>.
export function ConfirmButton(props: {
  label: string; confirm: ComponentChildren; onConfirm: () => Promise<void> | void; danger?: boolean; class?: string; id?: string;
}) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const yes = useRef<HTMLButtonElement>(null);
  const opener = useRef<HTMLButtonElement>(null);
  const asked = useRef(false);
  const textId = useId();
  useEffect(() => {
    if (asking) { asked.current = true; yes.current?.focus(); return; }
    if (asked.current) { asked.current = false; opener.current?.focus(); }
  }, [asking]);
  // Unmounted while its button has the focus (the action removed it):
  // the focus goes to the heading.
  const last = useRef<HTMLButtonElement | null>(null); // the button, kept after it is gone
  useEffect(() => () => {
    const a = document.activeElement;
    if (!a || a === document.body || a === last.current) focusHeadingSoon();
  }, []);
  if (!asking) {
    return <button type="button" ref={(el) => { opener.current = el; if (el) last.current = el; }} id={props.id} class={(props.danger ? 'danger ' : 'secondary ') + 'small ' + (props.class || '')}
      onClick={() => setAsking(true)}>{props.label}</button>;
  }
  return (
    <span class="confirm" role="group" aria-labelledby={textId} onKeyDown={onEscape(() => { if (!busy) setAsking(false); })}>
      <span id={textId}>{props.confirm}</span>
      <button type="button" ref={yes} class={(props.danger ? 'danger' : 'primary') + ' small confirm-yes'} disabled={busy}
        onClick={async () => { setBusy(true); try { await props.onConfirm(); } finally { setBusy(false); setAsking(false); } }}>Yes</button>
      <button type="button" class="secondary small" onClick={() => setAsking(false)}>Cancel</button>
    </span>
  );
}

// onEscape is a keydown handler that runs f on Escape — cancel an inline
// question, close a form — and keeps the key from outer handlers.
export function onEscape(f: () => void) {
  return (e: KeyboardEvent) => {
    if (e.key !== 'Escape') return;
    e.preventDefault();
    e.stopPropagation();
    f();
  };
}

// focusSoon moves the focus, once the page has rendered, to the element
// with id — the button that opened a form just closed — or, when it is
// gone, to the page's heading.
export function focusSoon(id: string) {
  window.setTimeout(() => {
    const to = document.getElementById(id);
    if (to) to.focus();
    else focusHeadingSoon();
  }, 0);
}

// focusHeadingSoon moves the focus, once the page has rendered, to the
// page's heading if nothing holds it.
export function focusHeadingSoon() {
  window.setTimeout(() => {
    const a = document.activeElement;
    if (!a || a === document.body || !a.isConnected) (document.querySelector('main h1') as HTMLElement | null)?.focus();
  }, 0);
}

// useLoad runs load when deps change; reload runs it again.
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const seq = useRef(0);
  const run = useCallback(() => {
    const n = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => { if (n === seq.current) setState({ data, loading: false }); },
      (error) => { if (n === seq.current) setState({ error, loading: false }); },
    );
  }, deps); // eslint-disable-line
  useEffect(run, [run]);
  return { ...state, reload: run };
}

// SecretPanel shows a secret once, with a warning and a copy button. Its
// title may hold a name (in Bdi). Done, the focus goes to back() — the
// button that led to it — or else to the page's heading.
export function SecretPanel(props: { title: ComponentChildren; secret: string; onDone: () => void; what: string; id: string; back?: () => HTMLElement | null }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => { ref.current?.focus(); }, []);
  const done = () => {
    props.onDone();
    window.setTimeout(() => {
      const to = props.back?.();
      if (to && to.isConnected) to.focus();
      else focusHeadingSoon();
    }, 0);
  };
  return (
    <div class="secret-panel" id={props.id} ref={ref} tabIndex={-1} role="region" aria-labelledby={props.id + '-title'}>
      <h2 id={props.id + '-title'}>{props.title}</h2>
      <p class="warn-text"><strong>Copy it now: it is shown only this once.</strong> The service keeps only a hash of {props.what}; if it is lost, rotate it.</p>
      <label for={props.id + '-value'}>Secret</label>
      <div class="secret-row">
        <input id={props.id + '-value'} class="mono secret-value" readOnly value={props.secret}
          onFocus={(e) => (e.currentTarget as HTMLInputElement).select()} />
        <CopyButton text={props.secret} id={props.id + '-copy'} label="Copy secret" />
      </div>
      <button type="button" class="primary" id={props.id + '-done'} onClick={done}>I have stored it safely</button>
    </div>
  );
}

// useRefocus: when a form's call is over, the focus goes to its first
// invalid field, or else — when the focus was lost to <body> (the submit
// button was disabled while busy) — back to its submit button. A refused
// form moves the focus to its first invalid field wherever it was: sent
// with Enter from another field, the focus stayed there, and the error
// (not a live region) went unsaid (outside check 20w).
export function useRefocus(form: { current: HTMLFormElement | null }, busy: boolean) {
  const was = useRef(false);
  useEffect(() => {
    if (busy) { was.current = true; return; }
    if (!was.current) return;
    was.current = false;
    const f = form.current;
    if (!f || !f.isConnected) return;
    const invalid = f.querySelector('[aria-invalid="true"]') as HTMLElement | null;
    if (invalid) { invalid.focus(); return; }
    const a = document.activeElement;
    if (a && a !== document.body && a.isConnected) return;
    (f.querySelector('button[type=submit]') as HTMLElement | null)?.focus();
  }, [busy]);
}

const pad = (n: number) => String(n).padStart(2, '0');

export function fmtTime(s?: string | null): string {
  if (!s) return '—';
  const d = new Date(s);
  if (isNaN(d.getTime())) return s;
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

export function Time(props: { at?: string | null }) {
  if (!props.at) return <span>—</span>;
  return <time dateTime={props.at} title={props.at}>{fmtTime(props.at)}</time>;
}

// toRFC3339 turns a datetime-local value (taken as UTC) into RFC 3339.
export function toRFC3339(local: string): string {
  if (!local) return '';
  return (local.length === 16 ? local + ':00' : local) + 'Z';
}

export function splitList(s: string): string[] {
  return s.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);
}

export function Loading(props: { what: string }) {
  return <p class="loading" role="status">Loading {props.what}…</p>;
}

// MappingsEditor edits group → tenant role mappings.
export function MappingsEditor(props: { id: string; value: Array<{ group: string; tenant: string; role: string }>; onValue: (v: Array<{ group: string; tenant: string; role: string }>) => void; tenantsList?: string; error?: string }) {
  const set = (i: number, k: 'group' | 'tenant' | 'role', v: string) => props.onValue(props.value.map((m, j) => (j === i ? { ...m, [k]: v } : m)));
  return (
    <fieldset class={'mappings' + (props.error ? ' invalid' : '')} id={props.id}>
      <legend>Group → tenant role mappings</legend>
      {props.value.length === 0 ? <p class="hint">No mappings: groups give no tenant role.</p> : null}
      {props.value.map((m, i) => (
        <div class="mapping-row" key={i}>
          <TextField id={`${props.id}-${i}-group`} label="Group" value={m.group} onValue={(v) => set(i, 'group', v)} />
          <TextField id={`${props.id}-${i}-tenant`} label="Tenant" value={m.tenant} onValue={(v) => set(i, 'tenant', v)} list={props.tenantsList} />
          <SelectField id={`${props.id}-${i}-role`} label="Role" value={m.role} onValue={(v) => set(i, 'role', v)} options={ROLES.map((r) => [r, r])} />
          <button type="button" class="secondary small" onClick={() => props.onValue(props.value.filter((_, j) => j !== i))}
            aria-label={`Remove mapping ${i + 1}`}>Remove</button>
        </div>
      ))}
      <button type="button" class="secondary small" onClick={() => props.onValue([...props.value, { group: '', tenant: '', role: 'viewer' }])}>Add a mapping</button>
      {props.error ? <p class="field-error" id={props.id + '-err'}>{props.error}</p> : null}
    </fieldset>
  );
}
