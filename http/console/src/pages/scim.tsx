// SCIM provisioning: the connections (an identity provider pushing users
// and groups into tenants), their group → role mappings, and their bearer
// tokens, shown once at creation and rotation.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, del, enc, get, post, put, query, type RoleMapping, type SCIMConnection, type SSOProvider } from '../api';
import type { PageProps } from '../main';
import {
  Bdi, changedMeanwhile, ConfirmButton, CopyButton, ErrorNotice, Meanwhile, fieldErrors, Loading, MappingsEditor, Notice, Pager, SecretPanel, splitList, TextField, Time, useLoad, useRefocus,
} from '../ui';

interface ConnList { connections: SCIMConnection[]; next_cursor?: string }

const GONE = 'This connection was deleted meanwhile — in another tab or by another admin. The list is reloaded.';

export function SCIMPage(p: PageProps) {
  const [cursors, setCursors] = useState<string[]>(['']);
  const page = cursors.length - 1;
  // Connections are a platform admin's or a tenant admin's: a caller who
  // administers no tenant is not asked for them (the API would refuse).
  const admin = p.platformAdmin || p.adminTenants.length > 0;
  const list = useLoad(() => (admin ? get<ConnList>('/api/v1/admin/scim' + query({ limit: 25, cursor: cursors[page] })) : Promise.resolve({ connections: [] })), [cursors.join()]);
  const providers = useLoad(() => (p.platformAdmin ? get<{ providers: SSOProvider[] }>('/api/v1/admin/sso') : Promise.resolve({ providers: [] })), []);
  const [token, setToken] = useState<{ title: ComponentChildren; token: string; back: string } | null>(null);
  const [editing, setEditing] = useState('');
  const [notice, setNotice] = useState<ComponentChildren>(null);
  const [err, setErr] = useState<unknown>(null);
  useEffect(() => { if (list.data) p.noteTenants(list.data.connections.flatMap((c) => c.tenants)); }, [list.data]);
  // failed: an action refused because the connection changed since the
  // list was read (404: deleted, or out of reach; 409: its token rotated by
  // another request) reloads the list and says what happened.
  const failed = (e: unknown) => {
    if (!changedMeanwhile(e)) { setErr(e); return; }
    setErr(new Meanwhile(e.status === 404 ? GONE : e.message));
    list.reload();
  };
  const run = async (what: string, f: () => Promise<unknown>) => {
    setErr(null); setNotice(null);
    try { await f(); setNotice(what); list.reload(); } catch (e) { failed(e); }
  };
  return (
    <section>
      <h1 tabIndex={-1}>SCIM provisioning</h1>
      <p>An identity provider (Okta, Entra ID) creates, updates and deactivates users and their tenant roles at <span class="mono">{location.origin}/scim/v2</span> with a connection's token.</p>
      {token ? <SecretPanel id="scim-token" title={token.title} secret={token.token} what="the token" onDone={() => setToken(null)}
        back={() => document.querySelector<HTMLElement>(token.back)} /> : null}
      {notice ? <Notice kind="ok" id="scim-notice">{notice}</Notice> : null}
      <ErrorNotice error={err} />
      <h2>Connections</h2>
      <ErrorNotice error={list.error} />
      {list.loading && !list.data ? <Loading what="connections" /> : null}
      {list.data && list.data.connections.length === 0 ? <p class="muted">No SCIM connection yet.</p> : null}
      <div class="cards">
        {list.data?.connections.map((c) => (
          <article class="card" key={c.id} data-connection={c.id} aria-labelledby={'conn-' + c.id}>
            <div class="page-head">
              <h3 id={'conn-' + c.id}><Bdi text={c.name || c.provider} class="conn-name" /> <Bdi class="mono muted small" text={c.id} /></h3>
              <span class="row-actions">
                <button type="button" class="secondary small" aria-expanded={editing === c.id} onClick={() => setEditing(editing === c.id ? '' : c.id)}>Edit</button>
                <ConfirmButton label="Rotate token" class="rotate" confirm={<>Rotate the token of <Bdi text={c.name || c.provider} />? The identity provider needs the new one.</>} onConfirm={async () => {
                  setErr(null); setNotice(null);
                  try {
                    const r = await post<SCIMConnection>(`/api/v1/admin/scim/${enc(c.id)}/rotate`);
                    setToken({ title: <>New token of <Bdi text={c.name || c.provider} /></>, token: r.token || '', back: `article[data-connection="${CSS.escape(c.id)}"] button.rotate` });
                    list.reload();
                  } catch (e) { failed(e); }
                }} />
                <ConfirmButton label="Delete" danger confirm={<>Delete <Bdi text={c.name || c.provider} />? Its token stops at once.</>} onConfirm={() => run('Connection deleted.', () => del(`/api/v1/admin/scim/${enc(c.id)}`))} />
              </span>
            </div>
            <dl class="facts">
              <dt>Provider</dt><dd><Bdi text={c.provider} /></dd>
              <dt>Base URL</dt><dd><Bdi class="mono" text={c.base_url} /> <CopyButton text={c.base_url} /></dd>
              <dt>Tenants</dt><dd>{c.tenants.filter((t) => p.seesTenant(t)).map((t) => <span class="chip" key={t}><Bdi text={t} /></span>)}</dd>
              <dt>Kind</dt><dd data-platform={String(c.platform)}>{c.platform
                ? 'Platform connection: may push passwords and take over existing users with their SSO identity; platform admins only'
                : 'Tenant connection: no passwords; links no SSO identity'}</dd>
              <dt>Group mappings</dt><dd>{c.group_mappings.length ? c.group_mappings.map((m, i) => <span class="chip" key={i}><Bdi text={m.group} /> → <Bdi text={m.tenant} />: {m.role}</span>) : 'none'}</dd>
              <dt>Provisioned</dt><dd>{c.users} users, {c.groups} groups</dd>
              <dt>Updated</dt><dd><Time at={c.updated_at} />{c.rotated_at ? <>, token rotated <Time at={c.rotated_at} /></> : null}</dd>
            </dl>
            {editing === c.id ? <ConnectionForm conn={c} onSaved={() => { setEditing(''); setErr(null); setNotice('Connection updated.'); list.reload(); }}
              onGone={(e) => { setNotice(null); failed(e); }} /> : null}
          </article>
        ))}
      </div>
      {list.data ? <Pager label="Connections pages" page={page} hasNext={!!list.data.next_cursor}
        onPrev={() => setCursors(cursors.slice(0, -1))} onNext={() => setCursors([...cursors, list.data!.next_cursor!])} /> : null}
      {admin ? <ConnectionForm providers={providers.data?.providers.map((x) => x.name) || []} defaultTenants={p.platformAdmin ? [] : p.adminTenants}
        onCreated={(c) => { setErr(null); setNotice(null); setToken({ title: <>Connection <Bdi text={c.name} /> created: its token</>, token: c.token || '', back: '#scim-form button[type=submit]' }); list.reload(); }} />
        : <p class="muted" id="scim-not-admin">Only a platform admin or a tenant admin manages SCIM connections.</p>}
    </section>
  );
}

function ConnectionForm(props: {
  conn?: SCIMConnection; providers?: string[]; defaultTenants?: string[];
  onSaved?: () => void; onCreated?: (c: SCIMConnection) => void;
  // onGone: the edited connection is gone (404) — the page says so.
  onGone?: (e: unknown) => void;
}) {
  const c = props.conn;
  const pre = c ? 'edit-' + c.id : 'scim';
  const [name, setName] = useState('');
  const [provider, setProvider] = useState(c?.provider || '');
  const [tenants, setTenants] = useState((c?.tenants || props.defaultTenants || []).join(', '));
  const [mappings, setMappings] = useState<RoleMapping[]>(c?.group_mappings || []);
  const [errs, setErrs] = useState<Record<string, string>>({});
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  useRefocus(form, busy);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true); setErrs({}); setErr(null);
    const body = { tenants: splitList(tenants), group_mappings: mappings };
    try {
      if (c) { await put(`/api/v1/admin/scim/${enc(c.id)}`, body); props.onSaved?.(); }
      else {
        props.onCreated?.(await post<SCIMConnection>('/api/v1/admin/scim', { name: name.trim(), provider: provider.trim(), ...body }));
        setName(''); setProvider(''); setMappings([]);
      }
    } catch (e) {
      if (c && props.onGone && e instanceof ApiError && e.status === 404) { props.onGone(e); return; }
      const fe = fieldErrors(e, ['name', 'provider', 'tenants', 'group_mappings']);
      setErrs(fe.fields); setErr(fe.rest);
    } finally { setBusy(false); }
  };
  return (
    <form class={c ? 'edit' : 'card'} id={pre + '-form'} ref={form} onSubmit={submit} aria-label={c ? 'Edit the connection' : 'New SCIM connection'}>
      {c ? null : <h2>New connection</h2>}
      <div class="grid2">
        {c ? null : <TextField id={pre + '-name'} label="Name" value={name} onValue={setName} required error={errs.name}
          hint="What to call it, e.g. Okta production. One of your connections per name: a create sent twice makes one." />}
        {c ? null : <TextField id={pre + '-provider'} label="Provider" value={provider} onValue={setProvider} required error={errs.provider}
          list={pre + '-providers'} hint="The configured SSO provider whose users it provisions (okta, azure, saml, or a generic one's name)." />}
        <TextField id={pre + '-tenants'} label="Tenants" value={tenants} onValue={setTenants} required error={errs.tenants} list="tenants-list"
          hint="Comma-separated: the tenants it may give roles in." />
      </div>
      {c ? null : <datalist id={pre + '-providers'}>{(props.providers || []).map((x) => <option value={x} key={x} />)}</datalist>}
      <MappingsEditor id={pre + '-mappings'} value={mappings} onValue={setMappings} tenantsList="tenants-list" error={errs.group_mappings} />
      <ErrorNotice error={err} />
      <button type="submit" class="primary" disabled={busy}>{c ? 'Save changes' : 'Create connection'}</button>
    </form>
  );
}
