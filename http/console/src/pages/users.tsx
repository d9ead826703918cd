// Users: search and page through them; create; a user's tenant roles,
// activation, sessions and MFA reset, each offered only where the API
// would allow it.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { del, enc, get, post, put, query, type Session, type User } from '../api';
import type { PageProps } from '../main';
import {
  Bdi, changedMeanwhile, Checkbox, ConfirmButton, ErrorNotice, fieldErrors, focusSoon, Loading, Meanwhile, Notice, onEscape, Pager, refusedMeanwhile, ROLES, SelectField, TextField, Time, useLoad, useRefocus,
} from '../ui';

const PAGE = 20;

interface UserList { users: User[]; next_cursor?: string }

function TenantChips(props: { tenants: User['tenants'] }) {
  if (!props.tenants.length) return <span class="muted">none</span>;
  return <>{props.tenants.map((t) => <span class="chip" key={t.id}><Bdi text={t.id} />: {t.role}</span>)}</>;
}

// shownTenants: the tenant roles of u the console shows: all of the
// caller's own, and of another user those in tenants the caller
// administers (PageProps.seesTenant).
function shownTenants(p: PageProps, u: User): User['tenants'] {
  return u.id === p.me.id ? u.tenants : u.tenants.filter((t) => p.seesTenant(t.id));
}

// managesUser mirrors the API's rule (http/users.go) for who may
// deactivate, activate, reset the MFA of and revoke the sessions of u: a
// platform admin anyone; a tenant admin a user that is not a platform admin
// and holds roles only in tenants it administers. To a tenant admin the
// API answers only the roles in its tenants, and other_tenants when the
// user holds roles elsewhere.
function managesUser(p: PageProps, u: User): boolean {
  if (p.platformAdmin) return true;
  return !u.roles.includes('admin') && !u.other_tenants && u.tenants.length > 0 && u.tenants.every((t) => p.adminTenants.includes(t.id));
}

// activatesUser mirrors the API's rule for activating u (http/users.go
// activatesUser): who manages it, and a tenant admin only a user a tenant
// admin deactivated (deactivated_by_tenant_admin). Offered otherwise, the
// button ended in a bare 403 (re-check 20r6).
function activatesUser(p: PageProps, u: User): boolean {
  return managesUser(p, u) && (p.platformAdmin || u.active || u.deactivated_by_tenant_admin === true);
}

export function UsersPage(p: PageProps) {
  const [q, setQ] = useState('');
  const [search, setSearch] = useState('');
  const [cursors, setCursors] = useState<string[]>(['']);
  const [creating, setCreating] = useState(false);
  const page = cursors.length - 1;
  const list = useLoad(() => get<UserList>('/api/v1/users' + query({ limit: PAGE, cursor: cursors[page], q: search })), [search, cursors.join()]);
  useEffect(() => { if (list.data) p.noteTenants(list.data.users.flatMap((u) => u.tenants.map((t) => t.id))); }, [list.data]);
  return (
    <section>
      <div class="page-head">
        <h1 tabIndex={-1}>Users</h1>
        {p.platformAdmin || p.adminTenants.length ? <button type="button" class="primary" id="new-user" aria-expanded={creating} onClick={() => setCreating(!creating)}>New user</button> : null}
      </div>
      {creating ? <CreateUser {...p} onDone={(id) => p.go('#/users/' + enc(id) + '?created')} onCancel={() => { setCreating(false); focusSoon('new-user'); }} /> : null}
      <form class="toolbar" role="search" onSubmit={(e) => { e.preventDefault(); setSearch(q.trim()); setCursors(['']); }}>
        <TextField id="user-search" label="Search by username or email" value={q} onValue={setQ} type="search" />
        <button type="submit" class="secondary">Search</button>
        {search ? <button type="button" class="link" onClick={() => { setQ(''); setSearch(''); setCursors(['']); }}>Clear</button> : null}
      </form>
      <ErrorNotice error={list.error} />
      {list.loading && !list.data ? <Loading what="users" /> : null}
      {list.data ? (
        <>
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Users">
            <table id="users-table">
              <caption class="sr-only">Users{search ? <> matching “<Bdi text={search} />”</> : ''}, page {page + 1}</caption>
              <thead><tr><th scope="col">Username</th><th scope="col">Email</th><th scope="col">Tenant roles</th><th scope="col">Status</th><th scope="col">Created</th></tr></thead>
              <tbody>
                {list.data.users.length === 0 ? <tr><td colSpan={5} class="muted">No users{search ? ' match' : ''}.</td></tr> : null}
                {list.data.users.map((u) => (
                  <tr key={u.id} data-user={u.username}>
                    <td class="name"><a href={'#/users/' + enc(u.id)}><Bdi text={u.username} /></a>{u.roles.includes('admin') ? <span class="chip strong">platform admin</span> : null}</td>
                    <td class="name"><Bdi text={u.email} /></td>
                    <td><TenantChips tenants={shownTenants(p, u)} /></td>
                    <td>{u.active ? 'active' : <span class="badge bad">deactivated</span>}</td>
                    <td><Time at={u.created_at} /></td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager label="Users pages" page={page} hasNext={!!list.data.next_cursor}
            onPrev={() => setCursors(cursors.slice(0, -1))} onNext={() => setCursors([...cursors, list.data!.next_cursor!])} />
        </>
      ) : null}
    </section>
  );
}

function CreateUser(p: PageProps & { onDone: (id: string) => void; onCancel: () => void }) {
  const [f, setF] = useState({ username: '', email: '', password: '', tenant: p.platformAdmin ? '' : p.adminTenants[0] || '', role: 'viewer', admin: false });
  const [errs, setErrs] = useState<Record<string, string>>({});
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  useRefocus(form, busy);
  const set = (k: keyof typeof f) => (v: string | boolean) => setF({ ...f, [k]: v });
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true); setErrs({}); setErr(null);
    try {
      const body: Record<string, unknown> = { username: f.username.trim(), email: f.email.trim(), password: f.password };
      if (f.tenant.trim()) body.tenants = [{ id: f.tenant.trim(), role: f.role }];
      if (f.admin) body.roles = ['admin'];
      const u = await post<User>('/api/v1/users', body);
      p.onDone(u.id);
    } catch (e) {
      const fe = fieldErrors(e, ['username', 'email', 'password', 'tenants', 'roles']);
      if (fe.fields.tenants) fe.fields.tenant = fe.fields.tenants;
      setErrs(fe.fields); setErr(fe.rest);
    } finally { setBusy(false); }
  };
  return (
    <form class="card" id="create-user" ref={form} onSubmit={submit} onKeyDown={onEscape(p.onCancel)} aria-labelledby="create-user-title">
      <h2 id="create-user-title">New user</h2>
      <div class="grid2">
        <TextField id="new-username" label="Username" value={f.username} onValue={set('username')} required error={errs.username} />
        <TextField id="new-email" label="Email" type="email" value={f.email} onValue={set('email')} required error={errs.email} />
        <TextField id="new-password" label="Initial password" type="password" value={f.password} onValue={set('password')} required
          error={errs.password} notMine hint="The user can change it after signing in." />
        <TextField id="new-tenant" label="Tenant" value={f.tenant} onValue={set('tenant')} list="tenants-list" error={errs.tenant}
          hint={p.platformAdmin ? 'Optional: a first tenant role.' : 'One of the tenants you administer.'} required={!p.platformAdmin} />
        <SelectField id="new-role" label="Role in that tenant" value={f.role} onValue={set('role')} options={ROLES.map((r) => [r, r])} />
      </div>
      {p.platformAdmin ? <Checkbox id="new-platform-admin" label="Platform admin (manages every tenant, SSO and users)" checked={f.admin} onValue={set('admin')} /> : null}
      <ErrorNotice error={err} />
      <div class="actions">
        <button type="submit" class="primary" id="create-user-submit" disabled={busy}>Create user</button>
        <button type="button" class="secondary" onClick={p.onCancel}>Cancel</button>
      </div>
    </form>
  );
}

interface SessionPage { sessions: Session[]; next_cursor?: string }

const USER_GONE = 'This user is no longer one you may see: changed meanwhile — in another tab or by another admin.';
// USER_NOT_YOURS: an action on the user refused as no longer the caller's
// (403, refusedMeanwhile).
const USER_NOT_YOURS = 'This user changed meanwhile — in another tab or by another admin (a role in a tenant you do not administer, say): '
  + 'this is no longer yours to do. The page is reloaded.';
// TENANT_NOT_YOURS: a role change or removal refused so: the caller no
// longer administers the tenant.
const TENANT_NOT_YOURS = 'Your own roles changed meanwhile — in another tab or by another admin: you no longer administer this tenant. The page is reloaded.';

export function UserPage(p: PageProps) {
  const id = p.params[0].split('?')[0];
  const user = useLoad(() => get<User>('/api/v1/users/' + enc(id)), [id]);
  const [notice, setNotice] = useState<ComponentChildren>(location.hash.endsWith('?created') ? 'User created.' : null);
  // "?created" says so once: the address loses it (without a new history
  // entry), so that a reload, Back or a bookmark does not say "User
  // created." again over what happened since (outside check 17l).
  useEffect(() => {
    if (location.hash.endsWith('?created')) history.replaceState(history.state, '', location.hash.slice(0, -'?created'.length));
  }, []);
  const [err, setErr] = useState<unknown>(null);
  const [grant, setGrant] = useState({ tenant: p.platformAdmin ? '' : p.adminTenants[0] || '', role: 'viewer' });
  const [grantErr, setGrantErr] = useState('');
  const [roles, setRoles] = useState<Record<string, string>>({});
  const [sessCursors, setSessCursors] = useState<string[]>(['']);
  // The sessions are asked for only once the user is loaded, and only of a
  // user the caller manages or of the caller: the API refuses the others
  // (403), a refusal the browser would report in its console (outside
  // check 15a).
  const seesSessions = !!user.data && (managesUser(p, user.data) || user.data.id === p.me.id);
  const sessions = useLoad(() => (seesSessions
    ? get<SessionPage>(`/api/v1/users/${enc(id)}/sessions` + query({ limit: 10, cursor: sessCursors[sessCursors.length - 1] }))
    : Promise.resolve(null)), [id, sessCursors.join(), seesSessions]);
  // roles holds only the choices not yet applied: when the user is loaded
  // again (after any change), a choice the server now has is dropped, and one
  // made meanwhile is kept (never overwritten by the reload).
  useEffect(() => {
    if (!user.data) return;
    const server = Object.fromEntries(user.data.tenants.map((t) => [t.id, t.role]));
    setRoles((prev) => Object.fromEntries(Object.entries(prev).filter(([t, r]) => t in server && server[t] !== r)));
    p.noteTenants(user.data.tenants.map((t) => t.id));
  }, [user.data]);

  // act runs an action on the user. One refused because the user, a role or
  // a session changed since the page read them (404, 409: in another tab or
  // by another admin) reloads the user and its sessions and says what
  // happened: in the words given for a 404 (gone) or a 409 (changed), else
  // that the user is out of reach (404) or the API's message (409). One
  // refused as no longer the caller's (403: the user now holds a role in a
  // tenant the admin does not administer, or the admin's own roles changed)
  // reloads the user — whose page then shows the note instead of the
  // actions — and the caller's roles, and says so (refused, else
  // USER_NOT_YOURS); the sessions follow the user (not asked of a user the
  // caller no longer manages).
  const act = async (what: ComponentChildren, f: () => Promise<unknown>, after?: () => void, gone?: string, changed?: string, refused?: string) => {
    setErr(null); setNotice(null);
    try { await f(); setNotice(what); user.reload(); if (after) after(); } catch (e) {
      if (refusedMeanwhile(e)) {
        setErr(new Meanwhile(refused || USER_NOT_YOURS));
        user.reload();
        p.recheck();
        return;
      }
      if (!changedMeanwhile(e)) { setErr(e); return; }
      setErr(new Meanwhile(e.status === 404 ? gone || USER_GONE : changed || e.message));
      user.reload();
      sessions.reload();
    }
  };
  if (user.loading && !user.data) return <section><h1 tabIndex={-1}>User</h1><Loading what="the user" /></section>;
  if (!user.data) return <section><h1 tabIndex={-1}>User</h1><ErrorNotice error={err instanceof Meanwhile ? err : user.error} /><p><a href="#/users">Back to the users</a></p></section>;
  const u = { ...user.data, tenants: shownTenants(p, user.data) };
  const self = u.id === p.me.id;
  const manages = managesUser(p, user.data);
  const mayGrant = p.platformAdmin || p.adminTenants.length > 0;
  const name = <Bdi text={u.username} />;
  const base = '/api/v1/users/' + enc(u.id);
  const submitGrant = async (e: Event) => {
    e.preventDefault();
    setGrantErr('');
    const t = grant.tenant.trim();
    if (!t) { setGrantErr('Enter a tenant.'); return; }
    setErr(null); setNotice(null);
    try {
      await put(`${base}/tenants/${enc(t)}`, { role: grant.role });
      setNotice(<>Role {grant.role} granted in <Bdi text={t} />.</>);
      user.reload();
      setGrant({ ...grant, tenant: '' });
    } catch (e) {
      // The API's word on the tenant belongs to the Tenant field (a
      // re-check: it showed at the top of the page, unlinked).
      const fe = fieldErrors(e, ['tenant']);
      if (fe.fields.tenant) {
        setGrantErr(fe.fields.tenant);
        document.getElementById('grant-tenant')?.focus();
      } else {
        setErr(fe.rest);
      }
    }
  };
  return (
    <section>
      <p class="crumbs"><a href="#/users">Users</a> › {name}</p>
      <div class="page-head">
        <h1 tabIndex={-1} id="user-title">{name}</h1>
        {u.active ? <span class="badge ok" id="user-status">active</span> : <span class="badge bad" id="user-status">deactivated</span>}
      </div>
      {notice ? <Notice kind="ok" id="user-notice">{notice}</Notice> : null}
      <ErrorNotice error={err} />
      <dl class="facts">
        <dt>ID</dt><dd class="mono"><Bdi text={u.id} /></dd>
        <dt>Email</dt><dd><Bdi text={u.email} /></dd>
        <dt>Global roles</dt><dd>{u.roles.length ? u.roles.join(', ') : 'none'}</dd>
        <dt>Created</dt><dd><Time at={u.created_at} /></dd>
      </dl>

      <h2>Tenant roles</h2>
      <div class="table-wrap" tabIndex={0} role="region" aria-label="Tenant roles">
        <table id="roles-table">
          <thead><tr><th scope="col">Tenant</th><th scope="col">Role</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            {u.tenants.length === 0 && !u.other_tenants ? <tr><td colSpan={3} class="muted">No tenant roles.</td></tr> : null}
            {u.other_tenants ? <tr id="other-tenants"><td colSpan={3} class="muted">Also holds roles in tenants you do not administer (not shown).</td></tr> : null}
            {u.tenants.map((t) => !p.seesTenant(t.id) ? (
              // The caller's own role in a tenant it does not administer.
              <tr key={t.id} data-tenant={t.id}>
                <td><Bdi text={t.id} /></td>
                <td>{t.role}</td>
                <td></td>
              </tr>
            ) : (
              <tr key={t.id} data-tenant={t.id}>
                <td><Bdi text={t.id} /></td>
                <td>
                  <label class="sr-only" for={'role-' + t.id}>Role in <Bdi text={t.id} /></label>
                  <select id={'role-' + t.id} value={roles[t.id] || t.role} onChange={(e) => setRoles({ ...roles, [t.id]: (e.currentTarget as HTMLSelectElement).value })}>
                    {ROLES.map((r) => <option value={r} key={r}>{r}</option>)}
                  </select>
                </td>
                <td class="row-actions">
                  <button type="button" class="secondary small" disabled={(roles[t.id] || t.role) === t.role}
                    onClick={() => act(<>Role in <Bdi text={t.id} /> changed to {roles[t.id]}.</>, () => put(`${base}/tenants/${enc(t.id)}`, { role: roles[t.id] }),
                      // The button is disabled once the role is the one chosen: the
                      // focus goes to the role it changed, not to <body> (a re-check).
                      () => document.getElementById('role-' + t.id)?.focus(), undefined, undefined, TENANT_NOT_YOURS)}>Change role</button>
                  <ConfirmButton label="Remove" confirm={<>Remove {name} from <Bdi text={t.id} />?</>} danger
                    onConfirm={() => act(<>Removed from <Bdi text={t.id} />.</>, () => del(`${base}/tenants/${enc(t.id)}`), undefined, undefined, undefined, TENANT_NOT_YOURS)} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {mayGrant ? (
        <form class="inline-form" id="grant-form" onSubmit={submitGrant} aria-label="Grant a tenant role">
          <TextField id="grant-tenant" label="Tenant" value={grant.tenant} onValue={(v) => setGrant({ ...grant, tenant: v })} list="tenants-list" error={grantErr} />
          <SelectField id="grant-role" label="Role" value={grant.role} onValue={(v) => setGrant({ ...grant, role: v })} options={ROLES.map((r) => [r, r])} />
          <button type="submit" class="primary" id="grant-submit">Grant role</button>
        </form>
      ) : null}

      <h2>Account</h2>
      {manages ? (
        <div class="actions">
          {self ? null : u.active
            ? <ConfirmButton id="deactivate" label="Deactivate" danger confirm={<>Deactivate {name}? Every token and session stops at once.</>}
                onConfirm={() => act('Deactivated: every token and session of the user stopped.', () => post(`${base}/deactivate`), sessions.reload)} />
            : activatesUser(p, user.data)
              ? <ConfirmButton id="activate" label="Activate" confirm={<>Activate {name} again?</>}
                  onConfirm={() => act('Activated.', () => post(`${base}/activate`), undefined, undefined,
                    'This user was activated meanwhile — in another tab or by another admin.')} />
              : <p class="muted" id="activate-note">Deactivated by a platform admin (or a SCIM connection): only a platform admin may activate this user.</p>}
          <ConfirmButton id="reset-mfa" label="Reset MFA" danger confirm={<>Remove every second factor of {name} and end their sessions?</>}
            onConfirm={() => act('MFA reset: the user enrols a factor again at the next sign-in.', () => post(`${base}/mfa/reset`), sessions.reload)} />
        </div>
      ) : (
        <p class="muted" id="account-note">{user.data.roles.includes('admin')
          ? 'A platform admin: only a platform admin may deactivate them or reset their MFA.'
          : user.data.tenants.length === 0
            ? 'No tenant role: only a platform admin may deactivate this user or reset their MFA.'
            : self
              ? 'Only a platform admin may reset your MFA here.'
              : 'Also holds roles in tenants you do not administer: only a platform admin may deactivate this user, reset their MFA or end their sessions.'}</p>
      )}

      <h2>Sessions</h2>
      {manages || self ? <ErrorNotice error={sessions.error} /> : <p class="muted" id="sessions-note">Only a platform admin, or an admin of every tenant they have a role in, sees their sessions.</p>}
      {(manages || self) && sessions.data ? (
        <>
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Sessions">
            <table id="sessions-table">
              <thead><tr><th scope="col">Started</th><th scope="col">Last refreshed</th><th scope="col">Expires</th><th scope="col">Method</th><th scope="col">Address</th><th scope="col">Browser</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
              <tbody>
                {sessions.data.sessions.length === 0 ? <tr><td colSpan={7} class="muted">No live sessions.</td></tr> : null}
                {sessions.data.sessions.map((s) => (
                  <tr key={s.id}>
                    <td><Time at={s.started_at} />{s.current ? <span class="chip">this session</span> : null}</td>
                    <td><Time at={s.last_refreshed_at} /></td>
                    <td><Time at={s.expires_at} /></td>
                    <td>{s.method ? <Bdi text={s.method} /> : '—'}</td>
                    <td class="mono">{s.ip ? <Bdi text={s.ip} /> : '—'}</td>
                    <td class="ua">{s.user_agent ? <Bdi text={s.user_agent} /> : '—'}</td>
                    <td><ConfirmButton label="Revoke" danger confirm="Revoke this session?"
                      // A session that ended meanwhile (signed out, revoked,
                      // expired) is revoked all the same: the API's 204 is
                      // idempotent, and the reloaded list no longer shows it.
                      onConfirm={() => act('Session revoked.', () => del(`${base}/sessions/${enc(s.id)}`), sessions.reload)} /></td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div class="actions">
            <Pager label="Sessions pages" page={sessCursors.length - 1} hasNext={!!sessions.data.next_cursor}
              onPrev={() => setSessCursors(sessCursors.slice(0, -1))} onNext={() => setSessCursors([...sessCursors, sessions.data!.next_cursor!])} />
            {sessions.data.sessions.length > 0
              ? <ConfirmButton id="revoke-all" label="Revoke all sessions" danger confirm={<>End every session of {name}?</>}
                  onConfirm={() => act('Every session revoked.', () => del(`${base}/sessions`), sessions.reload)} />
              : null}
          </div>
        </>
      ) : (manages || self) && sessions.loading ? <Loading what="sessions" /> : null}
    </section>
  );
}
