// API keys: create (tenants, permissions, expiry, IP ranges) with the
// secret shown once; the list with last use and expiry, keys older than 90
// days flagged; rotate; revoke.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { del, enc, get, post, query, type APIKey } from '../api';
import type { PageProps } from '../main';
import {
  Bdi, changedMeanwhile, ConfirmButton, ErrorNotice, Meanwhile, fieldErrors, focusSoon, Loading, Notice, onEscape, Pager, PERMISSIONS, refusedMeanwhile, SecretPanel, splitList, TextArea, TextField, Time, useLoad, useRefocus,
} from '../ui';

const DAY = 86_400_000;
export const ROTATE_AFTER_DAYS = 90;

interface KeyList { api_keys: APIKey[]; next_cursor?: string }

// age is the days since the key's secret was made (created or last rotated).
function ageDays(k: APIKey): number {
  const since = new Date(k.rotated_at || k.created_at).getTime();
  return Math.floor((Date.now() - since) / DAY);
}

// managesKey mirrors the API's rule (http/apikeys.go) for who may rotate
// and revoke k: a platform admin, its owner (a session scoped to a tenant:
// of a key of that tenant alone), or an admin of every tenant of the key
// (not of "*"). Others see the key without Rotate and Revoke, which
// the API would refuse (403).
function managesKey(p: PageProps, k: APIKey): boolean {
  if (p.platformAdmin) return true;
  if (k.owner_id === p.me.id && (!p.me.tenant || (k.tenants.length > 0 && k.tenants.every((t) => t === p.me.tenant)))) return true;
  return !k.other_tenants && k.tenants.length > 0 && k.tenants.every((t) => t !== '*' && p.adminTenants.includes(t));
}

function status(k: APIKey): { text: string; cls: string } {
  if (k.revoked) return { text: 'revoked', cls: 'bad' };
  if (k.expires_at && new Date(k.expires_at).getTime() <= Date.now()) return { text: 'expired', cls: 'bad' };
  if (ageDays(k) >= ROTATE_AFTER_DAYS) return { text: `older than ${ROTATE_AFTER_DAYS} days: rotate`, cls: 'warn' };
  return { text: 'active', cls: 'ok' };
}

export function KeysPage(p: PageProps) {
  const [cursors, setCursors] = useState<string[]>(['']);
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState<{ key: APIKey; secret: string; rotated: boolean } | null>(null);
  const [notice, setNotice] = useState<ComponentChildren>(null);
  const [err, setErr] = useState<unknown>(null);
  const page = cursors.length - 1;
  const list = useLoad(() => get<KeyList>('/api/v1/api-keys' + query({ limit: 25, cursor: cursors[page] })), [cursors.join()]);
  useEffect(() => { if (list.data) p.noteTenants(list.data.api_keys.flatMap((k) => k.tenants)); }, [list.data]);

  // A new secret is what happened now: an earlier action's notice or
  // error does not stay beside it (outside check 17l: "revoked meanwhile"
  // stayed above the next key's secret).
  const showSecret = (k: APIKey, rotated: boolean) => {
    const s = k.key || '';
    setErr(null); setNotice(null);
    setSecret({ key: { ...k, key: undefined }, secret: s, rotated });
    setCreating(false);
    list.reload();
  };
  // failed: an action refused because the key changed since the list was
  // read (404: revoked or out of reach; 409: rotated by another request;
  // 403: no longer the caller's — rotated by another admin, who owns it
  // since, or the caller's own roles changed) reloads the list (and, for a
  // 403, the caller's roles) and says what happened; other errors are shown
  // as they are.
  const failed = (e: unknown, gone: string) => {
    if (refusedMeanwhile(e)) {
      setErr(new Meanwhile('This key changed meanwhile — in another tab or by another admin (rotated by them, say): it is no longer yours to manage. The list is reloaded.'));
      list.reload();
      p.recheck();
      return;
    }
    if (!changedMeanwhile(e)) { setErr(e); return; }
    setErr(new Meanwhile(e.status === 404 ? gone : e.message));
    list.reload();
  };
  const rotate = async (k: APIKey) => {
    setErr(null); setNotice(null);
    try { showSecret(await post<APIKey>(`/api/v1/api-keys/${enc(k.id)}/rotate`), true); }
    catch (e) { failed(e, 'This key was revoked meanwhile — in another tab or by another admin. The list is reloaded.'); }
  };
  const revoke = async (k: APIKey) => {
    setErr(null); setNotice(null);
    try { await del(`/api/v1/api-keys/${enc(k.id)}`); setNotice(<>Key “<Bdi text={k.name} />” revoked: it is refused from the next request on.</>); list.reload(); }
    catch (e) { failed(e, 'This key is no longer yours to manage: it was changed meanwhile — in another tab or by another admin. The list is reloaded.'); }
  };
  const old = list.data ? list.data.api_keys.filter((k) => !k.revoked && ageDays(k) >= ROTATE_AFTER_DAYS).length : 0;
  return (
    <section>
      <div class="page-head">
        <h1 tabIndex={-1}>API keys</h1>
        {p.platformAdmin || p.adminTenants.length
          ? <button type="button" class="primary" id="new-key" aria-expanded={creating} onClick={() => { setCreating(!creating); setSecret(null); setErr(null); setNotice(null); }}>New API key</button>
          : null}
      </div>
      {secret ? (
        <SecretPanel id="key-secret" title={<>{secret.rotated ? 'New secret of ' : 'API key created: '}<Bdi text={secret.key.name} /></>} secret={secret.secret}
          what="the key" onDone={() => setSecret(null)}
          back={() => (secret.rotated ? document.querySelector<HTMLElement>(`tr[data-key="${CSS.escape(secret.key.id)}"] button.rotate`) : null) || document.getElementById('new-key')} />
      ) : null}
      {creating ? <CreateKey {...p} onCreated={(k) => showSecret(k, false)} onCancel={() => { setCreating(false); focusSoon('new-key'); }} /> : null}
      {notice ? <Notice kind="ok" id="keys-notice">{notice}</Notice> : null}
      <ErrorNotice error={err} />
      {old > 0 ? <Notice kind="warn">{old} key{old > 1 ? 's are' : ' is'} older than {ROTATE_AFTER_DAYS} days: rotate {old > 1 ? 'them' : 'it'} (docs/security.md recommends it).</Notice> : null}
      <ErrorNotice error={list.error} />
      {list.loading && !list.data ? <Loading what="API keys" /> : null}
      {list.data ? (
        <>
          <div class="table-wrap" tabIndex={0} role="region" aria-label="API keys">
            <table id="keys-table">
              <caption class="sr-only">API keys, page {page + 1}</caption>
              <thead><tr><th scope="col">Name</th><th scope="col">Tenants</th><th scope="col">Permissions</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Expires</th><th scope="col">Status</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
              <tbody>
                {list.data.api_keys.length === 0 ? <tr><td colSpan={8} class="muted">No API keys.</td></tr> : null}
                {list.data.api_keys.map((k) => {
                  const st = status(k);
                  return (
                    <tr key={k.id} data-key={k.id} data-status={st.text}>
                      <td class="name"><strong><Bdi text={k.name} class="key-name" /></strong><br /><Bdi class="mono muted small" text={k.id} />
                        {k.allowed_ips && k.allowed_ips.length ? <><br /><span class="small">from <Bdi text={k.allowed_ips.join(', ')} /></span></> : null}</td>
                      <td>{k.tenants.filter((t) => t === '*' || p.seesTenant(t)).map((t) => <span class="chip" key={t}>{t === '*' ? 'every tenant' : <Bdi text={t} />}</span>)}</td>
                      <td class="small">{k.permissions.join(', ')}</td>
                      <td><Time at={k.created_at} />{k.rotated_at ? <><br /><span class="small">rotated <Time at={k.rotated_at} /></span></> : null}</td>
                      <td>{k.last_used_at ? <Time at={k.last_used_at} /> : <span class="muted">never</span>}</td>
                      <td>{k.expires_at ? <Time at={k.expires_at} /> : <span class="muted">never</span>}</td>
                      <td><span class={'badge ' + st.cls}>{st.text}</span></td>
                      <td class="row-actions">
                        {k.revoked || !managesKey(p, k) ? null : <>
                          <ConfirmButton label="Rotate" confirm={<>Rotate “<Bdi text={k.name} />”? The current secret stops.</>} onConfirm={() => rotate(k)} class="rotate" />
                          <ConfirmButton label="Revoke" danger confirm={<>Revoke “<Bdi text={k.name} />”?</>} onConfirm={() => revoke(k)} class="revoke" />
                        </>}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          <Pager label="API keys pages" page={page} hasNext={!!list.data.next_cursor}
            onPrev={() => setCursors(cursors.slice(0, -1))} onNext={() => setCursors([...cursors, list.data!.next_cursor!])} />
        </>
      ) : null}
    </section>
  );
}

function CreateKey(p: PageProps & { onCreated: (k: APIKey) => void; onCancel: () => void }) {
  const mine = p.platformAdmin ? [] : p.adminTenants;
  const [name, setName] = useState('');
  const [tenants, setTenants] = useState(mine.join(', '));
  const [perms, setPerms] = useState<string[]>(['nodes:read', 'findings:read', 'jobs:read', 'reports:read']);
  const [expires, setExpires] = useState('');
  const [ips, setIps] = useState('');
  const [errs, setErrs] = useState<Record<string, string>>({});
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  useRefocus(form, busy);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true); setErrs({}); setErr(null);
    try {
      const body: Record<string, unknown> = { name: name.trim(), permissions: perms };
      const ts = splitList(tenants);
      if (ts.length) body.tenants = ts;
      if (expires) body.expires_at = expires + 'T23:59:59Z';
      const list = splitList(ips);
      if (list.length) body.allowed_ips = list;
      p.onCreated(await post<APIKey>('/api/v1/api-keys', body));
    } catch (e) {
      const fe = fieldErrors(e, ['name', 'tenants', 'permissions', 'expires_at', 'allowed_ips']);
      setErrs(fe.fields); setErr(fe.rest);
    } finally { setBusy(false); }
  };
  const toggle = (perm: string, on: boolean) => setPerms(on ? [...perms, perm] : perms.filter((x) => x !== perm));
  return (
    <form class="card" id="create-key" ref={form} onSubmit={submit} onKeyDown={onEscape(p.onCancel)} aria-labelledby="create-key-title">
      <h2 id="create-key-title">New API key</h2>
      <div class="grid2">
        <TextField id="key-name" label="Name" value={name} onValue={setName} required error={errs.name} hint="What uses it, e.g. ci-deployer." />
        <TextField id="key-tenants" label="Tenants" value={tenants} onValue={setTenants} list="tenants-list" error={errs.tenants}
          hint={p.platformAdmin ? 'Comma-separated tenant IDs, or * for every tenant.' : 'Comma-separated; only tenants you administer.'} />
        <TextField id="key-expires" label="Expires on (UTC, end of day)" type="date" value={expires} onValue={setExpires} error={errs.expires_at}
          hint="Empty: never. Keys should be rotated every 90 days." />
        <TextArea id="key-ips" label="Allowed IP addresses and ranges" value={ips} onValue={setIps} rows={2} error={errs.allowed_ips}
          hint="One per line or comma-separated, e.g. 10.0.0.0/8, 2001:db8::/32. Empty: any address." />
      </div>
      <fieldset class={'perms' + (errs.permissions ? ' invalid' : '')} aria-describedby={errs.permissions ? 'key-perms-err' : undefined}>
        <legend>Permissions</legend>
        {PERMISSIONS.map((perm) => (
          <span class="check" key={perm}>
            <input type="checkbox" id={'perm-' + perm.replace(/[^a-z]/g, '-')} checked={perms.includes(perm)}
              onChange={(e) => toggle(perm, (e.currentTarget as HTMLInputElement).checked)} />
            <label for={'perm-' + perm.replace(/[^a-z]/g, '-')}>{perm}</label>
          </span>
        ))}
        {errs.permissions ? <p class="field-error" id="key-perms-err">{errs.permissions}</p> : null}
      </fieldset>
      <ErrorNotice error={err} />
      <div class="actions">
        <button type="submit" class="primary" id="create-key-submit" disabled={busy}>Create key</button>
        <button type="button" class="secondary" onClick={p.onCancel}>Cancel</button>
      </div>
    </form>
  );
}
