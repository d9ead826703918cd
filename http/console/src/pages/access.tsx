// The access explorer: who could do what in a tenant at a moment, and why
// (each grant with the event that made it), with the CSV export of the API.
import type { ComponentChildren } from 'preact';
import { useRef, useState } from 'preact/hooks';
import { downloadCSV, enc, errorText, get, query, type Grant, type TenantAccess } from '../api';
import type { PageProps } from '../main';
import { Bdi, ErrorNotice, Loading, Notice, PERMISSIONS, SelectField, TextField, Time, toRFC3339, useRefocus } from '../ui';

function why(g: Grant): ComponentChildren {
  const by = <>{g.granted_by.type} #{g.granted_by.sequence} by {g.granted_by.actor.type}{g.granted_by.actor.id ? <> <Bdi text={g.granted_by.actor.id} /></> : null}</>;
  let s: ComponentChildren;
  switch (g.via) {
    case 'platform_admin': s = 'platform admin (every tenant)'; break;
    case 'role': s = <>role {g.role} in <Bdi text={g.tenant} /></>; break;
    case 'api_key': s = <>API key for {g.tenant === '*' ? 'every tenant' : <Bdi text={g.tenant} />}</>; break;
    default: s = <Bdi text={g.via} />;
  }
  const o = g.owner_grant;
  return <>{s} — {by}{o ? <>; capped by its owner <Bdi text={g.owner_id || ''} />'s {o.via === 'role' ? 'role ' + o.role : 'platform admin role'} ({o.granted_by.type} #{o.granted_by.sequence})</> : null}</>;
}

export function AccessPage(p: PageProps) {
  const [tenant, setTenant] = useState(p.platformAdmin ? '' : p.adminTenants[0] || '');
  const [perm, setPerm] = useState('');
  const [at, setAt] = useState('');
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<unknown>(null);
  const [tenantErr, setTenantErr] = useState('');
  const [res, setRes] = useState<TenantAccess | null>(null);
  const form = useRef<HTMLFormElement>(null);
  useRefocus(form, busy);
  const path = () => `/api/v1/tenants/${enc(tenant.trim())}/access` + query({ permission: perm, at: toRFC3339(at) });
  const submit = async (e: Event) => {
    e.preventDefault();
    setTenantErr(''); setErr(null);
    if (!tenant.trim()) { setTenantErr('Enter a tenant.'); return; }
    setBusy(true);
    try { setRes(await get<TenantAccess>(path())); } catch (e) { setRes(null); setErr(e); } finally { setBusy(false); }
  };
  const exportCSV = async () => {
    setErr(null);
    try { await downloadCSV(path(), `access-${tenant.trim()}-${(toRFC3339(at) || 'now').replace(/[:]/g, '')}.csv`); } catch (e) { setErr(new Error('CSV export failed: ' + errorText(e))); }
  };
  return (
    <section>
      <h1 tabIndex={-1}>Access explorer</h1>
      <p>Who could do what in a tenant at a moment, and why: each grant with the event that made it.</p>
      <form class="card" id="access-form" ref={form} onSubmit={submit} aria-label="Access question">
        <div class="grid3">
          <TextField id="a-tenant" label="Tenant" value={tenant} onValue={setTenant} list="tenants-list" required error={tenantErr} />
          <SelectField id="a-permission" label="Permission" value={perm} onValue={setPerm} options={[['', 'any permission'], ...PERMISSIONS.map((x): [string, string] => [x, x])]} />
          <TextField id="a-at" label="At (UTC)" type="datetime-local" value={at} onValue={setAt} hint="Empty: now." inputProps={{ step: 1 }} />
        </div>
        <div class="actions">
          <button type="submit" class="primary" id="access-submit" disabled={busy}>Show access</button>
          <button type="button" class="secondary" id="access-csv" onClick={exportCSV} disabled={!tenant.trim()}>Export CSV</button>
        </div>
      </form>
      <ErrorNotice error={err} />
      {busy ? <Loading what="access" /> : null}
      {res ? (
        <>
          <Notice kind="info">{res.principals.length} principal{res.principals.length === 1 ? '' : 's'} could {res.permission ? <strong>{res.permission}</strong> : 'act'} in <strong><Bdi text={res.tenant} /></strong> at <Time at={res.at} />.</Notice>
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Principals">
            <table id="access-table">
              <thead><tr><th scope="col">Principal</th><th scope="col">Permissions</th><th scope="col">Why</th></tr></thead>
              <tbody>
                {res.principals.map((pr) => (
                  <tr key={pr.type + pr.id} data-principal={pr.name}>
                    <td class="name"><strong><Bdi text={pr.name} /></strong> <span class="chip">{pr.type === 'apikey' ? 'API key' : 'user'}</span><br /><Bdi class="mono small muted" text={pr.id} /></td>
                    <td class="small">{pr.permissions.join(', ')}</td>
                    <td class="small"><ul class="why">{pr.grants.map((g, i) => <li key={i}>{why(g)}, <Time at={g.granted_by.time} /></li>)}</ul></td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
    </section>
  );
}
