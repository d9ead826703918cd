// The service's HTTP API, called with the browser session of the cookies:
// the access token is in the HttpOnly cookie (this script never sees it),
// and every request that changes state repeats the CSRF cookie in the
// X-CSRF-Token header. Nothing here is written to storage or logged.

export interface TenantRole { id: string; role: string }
export interface MeTenant { id: string; role: string; permissions: string[] }
export interface Me {
  type: string; id: string; username: string; email: string; roles: string[];
  tenants: MeTenant[]; tenant?: string; session_id: string; expires_at: string;
}
export interface User {
  id: string; username: string; email: string; roles: string[]; tenants: TenantRole[];
  // other_tenants: roles in tenants the caller does not administer, left out of tenants.
  other_tenants?: boolean; active: boolean; created_at: string;
  // deactivated_by_tenant_admin, on a deactivated user only: a tenant admin
  // deactivated it, and a tenant admin who manages it may activate it.
  deactivated_by_tenant_admin?: boolean;
}
export interface Session {
  id: string; user_id: string; tenant?: string; started_at: string; last_refreshed_at: string;
  expires_at: string; method?: string; ip?: string; user_agent?: string; current: boolean;
}
export interface APIKey {
  id: string; name: string; key?: string; tenants: string[]; permissions: string[]; allowed_ips: string[];
  created_at: string; expires_at: string | null; last_used_at: string | null; rotated_at?: string | null;
  revoked: boolean; owner_id: string;
  // other_tenants: tenants the caller does not administer, left out of tenants.
  other_tenants?: boolean;
}
// directory: an Azure AD provider's mapping applies to that directory's logins only (docs/sso.md).
export interface RoleMapping { group: string; tenant: string; role: string; directory?: string }
export interface SSOProvider {
  name: string; type: string; issuer?: string; domain?: string; tenant_id?: string; client_id?: string;
  client_secret?: string; entity_id?: string; sso_url?: string; certificate?: { subject: string; not_after: string; not_before: string };
  groups_claim?: string; role_mappings: RoleMapping[]; link_by_email: boolean; login_url: string;
  trust_idp_mfa?: boolean; allowed_tenants?: string[];
  callback_url?: string; metadata_url?: string; acs_url?: string; configured_at: string; warnings?: string[];
}
export interface SCIMConnection {
  id: string; name: string; provider: string; tenants: string[]; group_mappings: RoleMapping[]; platform: boolean; token?: string; base_url: string;
  users: number; groups: number; created_at: string; updated_at: string; rotated_at: string | null;
}
export interface Actor { type: string; id?: string }
export interface AuditEvent {
  sequence: number; id: string; time: string; type: string; version: number; aggregate: string; aggregate_id: string;
  actor: Actor; tenants: string[]; request: { ip?: string; user_agent?: string; request_id?: string }; data: unknown;
}
export interface EventRef { sequence: number; time: string; type: string; actor: Actor }
export interface Grant {
  tenant: string; via: string; role?: string; permissions: string[]; granted_by: EventRef; owner_id?: string;
  owner_grant?: { tenant: string; via: string; role?: string; permissions: string[]; granted_by: EventRef };
}
export interface Principal { type: string; id: string; name: string; permissions: string[]; grants: Grant[] }
export interface TenantAccess { tenant: string; at: string; permission?: string; principals: Principal[] }

// ApiError is an answer in the contract's error shape. field is the field a
// VALIDATION_ERROR names ("issuer: must be …" → "issuer").
export class ApiError extends Error {
  status: number;
  code: string;
  field: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
    const m = code === 'VALIDATION_ERROR' ? /^([A-Za-z_][A-Za-z0-9_.[\]]*): /.exec(message) : null;
    this.field = m ? m[1].replace(/\[\d+\].*$/, '').replace(/\..*$/, '') : '';
  }
}

// The session's end (a 401 on an authenticated call) is told to the app.
let onUnauthorized: (() => void) | null = null;
export function setUnauthorizedHandler(f: () => void) { onUnauthorized = f; }

// A change that needs a recent sign-in (403 REAUTHENTICATION_REQUIRED: a
// new API key secret, the caller's second factors) offers to sign in again;
// the app does it (signs out, and says why on the sign-in form).
let onReauthenticate: ((message: string) => void) | null = null;
export function setReauthenticateHandler(f: (message: string) => void) { onReauthenticate = f; }
export function reauthenticate(message: string) { if (onReauthenticate) onReauthenticate(message); }

export function csrfToken(): string {
  const m = /(?:^|; )infracast_csrf=([^;]*)/.exec(document.cookie);
  return m ? decodeURIComponent(m[1]) : '';
}

// The session this tab acts in (outside check 17e: a tab still showing the
// admin created an API key owned by bob, signed in in another tab). Every
// sign-in sets a new CSRF cookie (a refresh keeps it), so while the cookie
// holds the value it held when /auth/me last answered the user the tab
// shows (confirmed), the session is still that user's. When it differs, the
// app's confirm asks /auth/me before a request that changes state is sent:
// for another user (or no one) the request is not sent and the app shows
// why. The token sent is the confirmed one, not the cookie read when
// sending, so a sign-in that lands in between is refused by the service's
// CSRF check rather than acted on for its user.
let confirmed = '';
let confirmUser: (() => Promise<boolean>) | null = null;
let confirming: Promise<boolean> | null = null;
export function setConfirmed(csrf: string) { confirmed = csrf; }
export function setSessionConfirm(f: () => Promise<boolean>) { confirmUser = f; }

async function actingToken(): Promise<string> {
  if (!confirmUser) return csrfToken();
  if (confirmed && csrfToken() === confirmed) return confirmed;
  confirming = confirming || confirmUser().finally(() => { confirming = null; });
  if (!(await confirming)) {
    throw new ApiError(0, 'SESSION_CHANGED', 'Not sent: this browser may no longer be signed in as the user shown here (another tab signed in or out).');
  }
  return confirmed;
}

// refusedMeanwhile: a request refused 403 after a sign-in elsewhere replaced
// the CSRF cookie since actingToken looked: the app asks who is signed in.
function refusedMeanwhile(status: number, sent: string) {
  if (status === 403 && confirmUser && csrfToken() !== sent) void confirmUser();
}

export interface CallOptions {
  headers?: Record<string, string>;
  // quiet: a 401 is this call's own answer, not the session's end.
  quiet?: boolean;
  accept?: string;
}

async function send(method: string, path: string, body: unknown, opts: CallOptions): Promise<Response> {
  const headers: Record<string, string> = { Accept: opts.accept || 'application/json', ...(opts.headers || {}) };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') headers['X-CSRF-Token'] = await actingToken();
  let res: Response;
  try {
    res = await fetch(path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'NETWORK', 'The service did not answer (network error)');
  }
  if (res.ok) return res;
  let code = 'HTTP_' + res.status, message = res.statusText || 'Request failed';
  try {
    const e = (await res.json()) as { error?: { code?: string; message?: string } };
    if (e && e.error) { code = e.error.code || code; message = e.error.message || message; }
  } catch { /* not JSON: keep the status */ }
  const err = new ApiError(res.status, code, message);
  if (method !== 'GET') refusedMeanwhile(res.status, headers['X-CSRF-Token']);
  if (res.status === 401 && !opts.quiet && onUnauthorized) onUnauthorized();
  throw err;
}

// call sends a JSON request and returns the JSON answer (undefined for 204).
export async function call<T>(method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<T> {
  const res = await send(method, path, body, opts);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

// callRaw returns the answer's body and status for callers that read the
// error body themselves (the sign-in steps: MFA_REQUIRED carries fields),
// and the answer's headers (Date, Retry-After). A network error throws.
// asShown: the request acts for the user the tab shows (sign out), and is
// sent only once sure the session is still theirs (actingToken; it throws
// the SESSION_CHANGED ApiError otherwise). signal aborts it (the refresh:
// docs/console.md).
export async function callRaw(method: string, path: string, body: unknown, headers: Record<string, string> = {}, asShown = false, signal?: AbortSignal):
  Promise<{ ok: boolean; status: number; body: any; headers: Headers }> {
  const h: Record<string, string> = { Accept: 'application/json', 'Content-Type': 'application/json', ...headers };
  if (method !== 'GET') h['X-CSRF-Token'] = asShown ? await actingToken() : csrfToken();
  const res = await fetch(path, { method, headers: h, credentials: 'same-origin', cache: 'no-store', body: JSON.stringify(body ?? {}), signal });
  if (asShown) refusedMeanwhile(res.status, h['X-CSRF-Token']);
  const text = await res.text();
  let parsed: any = {};
  try { parsed = text ? JSON.parse(text) : {}; } catch { parsed = {}; }
  return { ok: res.ok, status: res.status, body: parsed, headers: res.headers };
}

// sessionEnded asks whether the browser's session has ended: true (401),
// false (it lives), null (no answer to tell by).
export async function sessionEnded(): Promise<boolean | null> {
  try {
    const res = await fetch('/api/v1/auth/me', { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } });
    return res.status === 401 ? true : res.ok ? false : null;
  } catch {
    return null;
  }
}

export const get = <T>(path: string, opts?: CallOptions) => call<T>('GET', path, undefined, opts);
export const post = <T>(path: string, body?: unknown, opts?: CallOptions) => call<T>('POST', path, body ?? {}, opts);
export const put = <T>(path: string, body?: unknown) => call<T>('PUT', path, body ?? {});
export const del = <T>(path: string) => call<T>('DELETE', path);

// query builds "?a=1&b=2" from the set values.
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

export const enc = encodeURIComponent;

// download fetches path as CSV and saves it as name, through a blob URL (no
// new window, nothing stored).
export async function downloadCSV(path: string, name: string): Promise<void> {
  const res = await send('GET', path, undefined, { accept: 'text/csv' });
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.rel = 'noopener';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return 'Something went wrong';
}
