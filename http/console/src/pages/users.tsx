// Users: search and page through them; create; a user's tenant roles,
// activation, sessions and MFA reset.
import { useEffect, useState } from 'preact/hooks';
import { del, enc, get, post, put, query, type Session, type User } from '../api';
import type { PageProps } from '../main';
import {
  Checkbox, ConfirmButton, ErrorNotice, fieldErrors, Loading, Notice, Pager, ROLES, SelectField, TextField, Time, useLoad,
} from '../ui';

const PAGE = 20;

interface UserList { users: User[]; next_cursor?: string }

function TenantChips(props: { tenants: User['tenants'] }) {
  if (!props.tenants.length) return <span class="muted">none</span>;
  return <>{props.tenants.map((t) => <span class="chip" key={t.id}>{t.id}: {t.role}</span>)}</>;
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
        <button type="button" class="primary" id="new-user" aria-expanded={creating} onClick={() => setCreating(!creating)}>New user</button>
      </div>
      {creating ? <CreateUser {...p} onDone={(id) => p.go('#/users/' + enc(id) + '?created')} onCancel={() => setCreating(false)} /> : null}
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
              <caption class="sr-only">Users{search ? ` matching “${search}”` : ''}, page {page + 1}</caption>
              <thead><tr><th scope="col">Username</th><th scope="col">Email</th><th scope="col">Tenant roles</th><th scope="col">Status</th><th scope="col">Created</th></tr></thead>
              <tbody>
                {list.data.users.length === 0 ? <tr><td colSpan={5} class="muted">No users{search ? ' match' : ''}.</td></tr> : null}
                {list.data.users.map((u) => (
                  <tr key={u.id} data-user={u.username}>
                    <td><a href={'#/users/' + enc(u.id)}>{u.username}</a>{u.roles.includes('admin') ? <span class="chip strong">platform admin</span> : null}</td>
                    <td>{u.email}</td>
                    <td><TenantChips tenants={u.tenants.filter((t) => p.seesTenant(t.id))} /></td>
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
    <form class="card" id="create-user" onSubmit={submit} aria-labelledby="create-user-title">
      <h2 id="create-user-title">New user</h2>
      <div class="grid2">
        <TextField id="new-username" label="Username" value={f.username} onValue={set('username')} required error={errs.username} />
        <TextField id="new-email" label="Email" type="email" value={f.email} onValue={set('email')} required error={errs.email} />
        <TextField id="new-password" label="Initial password" type="password" value={f.password} onValue={set('password')} required
          error={errs.password} autoComplete="new-password" hint="The user can change it after signing in." />
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

export function UserPage(p: PageProps) {
  const id = p.params[0].split('?')[0];
  const user = useLoad(() => get<User>('/api/v1/users/' + enc(id)), [id]);
  const [notice, setNotice] = useState(location.hash.endsWith('?created') ? 'User created.' : '');
  const [err, setErr] = useState<unknown>(null);
  const [grant, setGrant] = useState({ tenant: p.platformAdmin ? '' : p.adminTenants[0] || '', role: 'viewer' });
  const [grantErr, setGrantErr] = useState('');
  const [roles, setRoles] = useState<Record<string, string>>({});
  const [sessCursors, setSessCursors] = useState<string[]>(['']);
  const sessions = useLoad(() => get<SessionPage>(`/api/v1/users/${enc(id)}/sessions` + query({ limit: 10, cursor: sessCursors[sessCursors.length - 1] })), [id, sessCursors.join()]);
  // roles holds only the choices not yet applied: when the user is loaded
  // again (after any change), a choice the server now has is dropped, and one
  // made meanwhile is kept (never overwritten by the reload).
  useEffect(() => {
    if (!user.data) return;
    const server = Object.fromEntries(user.data.tenants.map((t) => [t.id, t.role]));
    setRoles((prev) => Object.fromEntries(Object.entries(prev).filter(([t, r]) => t in server && server[t] !== r)));
    p.noteTenants(user.data.tenants.map((t) => t.id));
  }, [user.data]);

  const act = async (what: string, f: () => Promise<unknown>, after?: () => void) => {
    setErr(null); setNotice('');
    try { await f(); setNotice(what); user.reload(); if (after) after(); } catch (e) { setErr(e); }
  };
  if (user.loading && !user.data) return <section><h1 tabIndex={-1}>User</h1><Loading what="the user" /></section>;
  if (!user.data) return <section><h1 tabIndex={-1}>User</h1><ErrorNotice error={user.error} /><p><a href="#/users">Back to the users</a></p></section>;
  const u = { ...user.data, tenants: user.data.tenants.filter((t) => p.seesTenant(t.id)) };
  const base = '/api/v1/users/' + enc(u.id);
  const submitGrant = async (e: Event) => {
    e.preventDefault();
    setGrantErr('');
    const t = grant.tenant.trim();
    if (!t) { setGrantErr('Enter a tenant.'); return; }
    await act(`Role ${grant.role} granted in ${t}.`, () => put(`${base}/tenants/${enc(t)}`, { role: grant.role }), () => setGrant({ ...grant, tenant: '' }));
  };
  return (
    <section>
      <p class="crumbs"><a href="#/users">Users</a> › {u.username}</p>
      <div class="page-head">
        <h1 tabIndex={-1} id="user-title">{u.username}</h1>
        {u.active ? <span class="badge ok" id="user-status">active</span> : <span class="badge bad" id="user-status">deactivated</span>}
      </div>
      {notice ? <Notice kind="ok" id="user-notice">{notice}</Notice> : null}
      <ErrorNotice error={err} />
      <dl class="facts">
        <dt>ID</dt><dd class="mono">{u.id}</dd>
        <dt>Email</dt><dd>{u.email}</dd>
        <dt>Global roles</dt><dd>{u.roles.length ? u.roles.join(', ') : 'none'}</dd>
        <dt>Created</dt><dd><Time at={u.created_at} /></dd>
      </dl>

      <h2>Tenant roles</h2>
      <div class="table-wrap" tabIndex={0} role="region" aria-label="Tenant roles">
        <table id="roles-table">
          <thead><tr><th scope="col">Tenant</th><th scope="col">Role</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            {u.tenants.length === 0 ? <tr><td colSpan={3} class="muted">No tenant roles.</td></tr> : null}
            {u.tenants.map((t) => (
              <tr key={t.id} data-tenant={t.id}>
                <td>{t.id}</td>
                <td>
                  <label class="sr-only" for={'role-' + t.id}>Role in {t.id}</label>
                  <select id={'role-' + t.id} value={roles[t.id] || t.role} onChange={(e) => setRoles({ ...roles, [t.id]: (e.currentTarget as HTMLSelectElement).value })}>
                    {ROLES.map((r) => <option value={r} key={r}>{r}</option>)}
                  </select>
                </td>
                <td class="row-actions">
                  <button type="button" class="secondary small" disabled={(roles[t.id] || t.role) === t.role}
                    onClick={() => act(`Role in ${t.id} changed to ${roles[t.id]}.`, () => put(`${base}/tenants/${enc(t.id)}`, { role: roles[t.id] }))}>Change role</button>
                  <ConfirmButton label="Remove" confirm={`Remove ${u.username} from ${t.id}?`} danger
                    onConfirm={() => act(`Removed from ${t.id}.`, () => del(`${base}/tenants/${enc(t.id)}`))} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <form class="inline-form" id="grant-form" onSubmit={submitGrant} aria-label="Grant a tenant role">
        <TextField id="grant-tenant" label="Tenant" value={grant.tenant} onValue={(v) => setGrant({ ...grant, tenant: v })} list="tenants-list" error={grantErr} />
        <SelectField id="grant-role" label="Role" value={grant.role} onValue={(v) => setGrant({ ...grant, role: v })} options={ROLES.map((r) => [r, r])} />
        <button type="submit" class="primary" id="grant-submit">Grant role</button>
      </form>

      <h2>Account</h2>
      <div class="actions">
        {u.active
          ? <ConfirmButton id="deactivate" label="Deactivate" danger confirm={`Deactivate ${u.username}? Every token and session stops at once.`}
              onConfirm={() => act('Deactivated: every token and session of the user stopped.', () => post(`${base}/deactivate`), sessions.reload)} />
          : <ConfirmButton id="activate" label="Activate" confirm={`Activate ${u.username} again?`}
              onConfirm={() => act('Activated.', () => post(`${base}/activate`))} />}
        <ConfirmButton id="reset-mfa" label="Reset MFA" danger confirm={`Remove every second factor of ${u.username} and end their sessions?`}
          onConfirm={() => act('MFA reset: the user enrols a factor again at the next sign-in.', () => post(`${base}/mfa/reset`), sessions.reload)} />
      </div>

      <h2>Sessions</h2>
      <ErrorNotice error={sessions.error} />
      {sessions.data ? (
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
                    <td>{s.method || '—'}</td>
                    <td class="mono">{s.ip || '—'}</td>
                    <td class="ua">{s.user_agent || '—'}</td>
                    <td><ConfirmButton label="Revoke" danger confirm="Revoke this session?"
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
              ? <ConfirmButton id="revoke-all" label="Revoke all sessions" danger confirm={`End every session of ${u.username}?`}
                  onConfirm={() => act('Every session revoked.', () => del(`${base}/sessions`), sessions.reload)} />
              : null}
          </div>
        </>
      ) : sessions.loading ? <Loading what="sessions" /> : null}
    </section>
  );
}
