// Single sign-on (platform admins): the configured providers, and a form
// per kind (Okta, Azure AD, SAML, generic OIDC) whose validation errors
// from the API show next to their fields; the URLs to register at the
// identity provider and the SAML SP metadata, to copy.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { del, enc, get, post, type RoleMapping, type SSOProvider } from '../api';
import type { PageProps } from '../main';
import {
  Bdi, changedMeanwhile, Checkbox, ConfirmButton, CopyButton, ErrorNotice, fieldErrors, Loading, MappingsEditor, Meanwhile, Notice, SelectField, TextArea, TextField, Time, useLoad, useRefocus,
} from '../ui';

type Kind = 'okta' | 'azure' | 'saml' | 'oidc';
const KINDS: Array<[Kind, string]> = [['okta', 'Okta'], ['azure', 'Azure AD (Entra ID)'], ['saml', 'SAML 2.0'], ['oidc', 'Generic OpenID Connect']];

// The fields of each kind: [field, label, required, hint].
const FIELDS: Record<Kind, Array<[string, string, boolean, string]>> = {
  okta: [
    ['domain', 'Okta domain', true, 'your-company.okta.com'],
    ['client_id', 'Client ID', true, ''],
    ['client_secret', 'Client secret', true, 'Stored encrypted; never shown again.'],
    ['issuer', 'Issuer (optional)', false, 'A custom authorization server, e.g. https://your-company.okta.com/oauth2/default'],
  ],
  azure: [
    ['tenant_id', 'Directory (tenant) ID', true, 'The GUID of your Entra ID tenant'],
    ['client_id', 'Application (client) ID', true, ''],
    ['client_secret', 'Client secret', true, 'Stored encrypted; never shown again.'],
    ['issuer', 'Issuer (optional)', false, 'Overrides https://login.microsoftonline.com/{tenant}/v2.0'],
  ],
  saml: [
    ['entity_id', 'IdP entity ID', true, 'https://idp.company.com'],
    ['sso_url', 'IdP single sign-on URL', true, 'https://idp.company.com/saml/sso'],
  ],
  oidc: [
    ['name', 'Name', true, 'Lower-case letters, digits and dashes: it names the login URL'],
    ['issuer', 'Issuer URL', true, 'Its discovery document is read at {issuer}/.well-known/openid-configuration'],
    ['client_id', 'Client ID', true, ''],
    ['client_secret', 'Client secret', true, 'Stored encrypted; never shown again.'],
  ],
};

export function SSOPage(p: PageProps) {
  // Offered to platform admins only (the navigation has no link for
  // others); the address typed in shows why instead of a form the API
  // would refuse.
  if (!p.platformAdmin) {
    return (
      <section>
        <h1 tabIndex={-1}>Single sign-on</h1>
        <Notice kind="info" id="sso-platform-only">Single sign-on is configured by platform admins only.</Notice>
      </section>
    );
  }
  return <SSOAdmin />;
}

function SSOAdmin() {
  const list = useLoad(() => get<{ providers: SSOProvider[] }>('/api/v1/admin/sso'), []);
  const [editing, setEditing] = useState<SSOProvider | null>(null);
  const [notice, setNotice] = useState<ComponentChildren>(null);
  const [err, setErr] = useState<unknown>(null);
  const remove = async (prov: SSOProvider) => {
    setErr(null); setNotice(null);
    try { await del('/api/v1/admin/sso/' + enc(prov.name)); setNotice(<>Provider <Bdi text={prov.name} /> removed.</>); list.reload(); } catch (e) {
      // Removed meanwhile (404): the list is reloaded, and the page says so.
      if (!changedMeanwhile(e)) { setErr(e); return; }
      setErr(new Meanwhile(e.status === 404 ? 'This provider was removed meanwhile — in another tab or by another admin. The list is reloaded.' : e.message));
      list.reload();
    }
  };
  return (
    <section>
      <h1 tabIndex={-1}>Single sign-on</h1>
      {notice ? <Notice kind="ok" id="sso-notice">{notice}</Notice> : null}
      <ErrorNotice error={err} />
      <h2>Configured providers</h2>
      <ErrorNotice error={list.error} />
      {list.loading && !list.data ? <Loading what="providers" /> : null}
      {list.data && list.data.providers.length === 0 ? <p class="muted" id="no-providers">No identity provider yet.</p> : null}
      <div class="cards">
        {list.data?.providers.map((prov) => (
          <article class="card provider" key={prov.name} data-provider={prov.name} aria-labelledby={'prov-' + prov.name}>
            <div class="page-head">
              <h3 id={'prov-' + prov.name}><Bdi text={prov.name} /> <span class="chip"><Bdi text={prov.type} /></span></h3>
              <span>
                <button type="button" class="secondary small edit" onClick={() => { setEditing(prov); requestAnimationFrame(() => document.getElementById('sso-form-title')?.focus()); }}>Edit</button>{' '}
                <ConfirmButton label="Remove" danger confirm={<>Remove <Bdi text={prov.name} />? Its users can no longer sign in with it.</>} onConfirm={() => remove(prov)} />
              </span>
            </div>
            <dl class="facts">
              {prov.issuer ? <><dt>Issuer</dt><dd class="mono"><Bdi text={prov.issuer} /></dd></> : null}
              {prov.domain ? <><dt>Domain</dt><dd><Bdi text={prov.domain} /></dd></> : null}
              {prov.tenant_id ? <><dt>Directory</dt><dd class="mono"><Bdi text={prov.tenant_id} /></dd></> : null}
              {prov.client_id ? <><dt>Client ID</dt><dd class="mono"><Bdi text={prov.client_id} /></dd></> : null}
              {prov.client_secret ? <><dt>Client secret</dt><dd class="mono"><Bdi text={prov.client_secret} /></dd></> : null}
              {prov.entity_id ? <><dt>IdP entity ID</dt><dd class="mono"><Bdi text={prov.entity_id} /></dd></> : null}
              {prov.certificate ? <><dt>IdP certificate</dt><dd><Bdi text={prov.certificate.subject} />, valid until <Time at={prov.certificate.not_after} /></dd></> : null}
              {prov.callback_url ? <><dt>Redirect URI</dt><dd><Bdi class="mono" text={prov.callback_url} /> <CopyButton text={prov.callback_url} /></dd></> : null}
              {prov.acs_url ? <><dt>ACS URL</dt><dd><Bdi class="mono" text={prov.acs_url} /> <CopyButton text={prov.acs_url} /></dd></> : null}
              {prov.metadata_url ? <><dt>SP metadata</dt><dd><Bdi class="mono" text={prov.metadata_url} /> <CopyButton text={prov.metadata_url} /></dd></> : null}
              <dt>Sign-in link</dt><dd><Bdi class="mono" text={prov.login_url} /></dd>
              <dt>Group mappings</dt><dd>{prov.role_mappings.length ? prov.role_mappings.map((m, i) => <span class="chip" key={i}><Bdi text={m.group} />{m.directory ? <> (directory <Bdi class="mono" text={m.directory} />)</> : null} → <Bdi text={m.tenant} />: {m.role}</span>) : 'none'}</dd>
              <dt>Configured</dt><dd><Time at={prov.configured_at} /></dd>
            </dl>
            {prov.warnings?.length ? <Notice kind="warn"><Bdi text={prov.warnings.join(' ')} /></Notice> : null}
          </article>
        ))}
      </div>
      <ConfigureForm editing={editing} onSaved={(name) => { setErr(null); setEditing(null); setNotice(<>Provider <Bdi text={name} /> saved.</>); list.reload(); }} />
      <SAMLMetadata />
    </section>
  );
}

// ConfigureForm configures a provider; with editing, it starts from that
// provider as stored (the secret and a SAML certificate aside, which no
// answer shows) and sends back what it does not show (trust_idp_mfa,
// Azure's allowed_tenants): a save replaces the whole configuration, and
// those were reset (re-check 20r6). An OpenID Connect provider's secret
// left empty keeps the stored one (same client at the same issuer).
function ConfigureForm(props: { editing: SSOProvider | null; onSaved: (name: string) => void }) {
  const [kind, setKind] = useState<Kind>('oidc');
  const [values, setValues] = useState<Record<string, string>>({});
  const [cert, setCert] = useState('');
  const [groupsClaim, setGroupsClaim] = useState('');
  const [mappings, setMappings] = useState<RoleMapping[]>([]);
  const [linkByEmail, setLinkByEmail] = useState(false);
  const [hidden, setHidden] = useState<Record<string, unknown>>({});
  const [editOf, setEditOf] = useState('');
  useEffect(() => {
    const prov = props.editing;
    if (!prov) return;
    const k = prov.type as Kind;
    const v: Record<string, string> = {};
    for (const [f] of FIELDS[k]) {
      const stored = (prov as unknown as Record<string, unknown>)[f];
      if (f !== 'client_secret' && typeof stored === 'string') v[f] = stored;
    }
    setKind(k); setValues(v); setCert(''); setGroupsClaim(prov.groups_claim || '');
    setMappings(prov.role_mappings.map((m) => ({ ...m }))); setLinkByEmail(prov.link_by_email);
    const h: Record<string, unknown> = {};
    if (prov.trust_idp_mfa) h.trust_idp_mfa = true;
    if (prov.allowed_tenants?.length) h.allowed_tenants = prov.allowed_tenants;
    setHidden(h); setEditOf(prov.name); setErrs({}); setErr(null);
  }, [props.editing]);
  const [errs, setErrs] = useState<Record<string, string>>({});
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  useRefocus(form, busy);
  const name = kind === 'oidc' ? (values.name || '').trim() : kind;
  const origin = location.origin;
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true); setErrs({}); setErr(null);
    const body: Record<string, unknown> = {};
    for (const [f] of FIELDS[kind]) { const v = (values[f] || '').trim(); if (v) body[f] = v; }
    if (kind === 'saml' && cert.trim()) body.certificate = cert.trim();
    if (groupsClaim.trim()) body.groups_claim = groupsClaim.trim();
    if (mappings.length) body.role_mappings = mappings;
    if (linkByEmail) body.link_by_email = true;
    if (editOf && editOf === (name || kind)) Object.assign(body, hidden);
    try {
      await post('/api/v1/admin/sso/' + kind, body);
      props.onSaved(name || kind);
      setValues({}); setCert(''); setMappings([]); setGroupsClaim(''); setLinkByEmail(false); setHidden({}); setEditOf('');
    } catch (e) {
      const fe = fieldErrors(e, [...FIELDS[kind].map(([f]) => f), 'certificate', 'groups_claim', 'role_mappings', 'link_by_email', 'name', 'trust_idp_mfa', 'allowed_tenants']);
      setErrs(fe.fields); setErr(fe.rest);
    } finally { setBusy(false); }
  };
  return (
    <form class="card" id="sso-form" ref={form} onSubmit={submit} aria-labelledby="sso-form-title" noValidate>
      <h2 id="sso-form-title" tabIndex={-1}>{editOf ? <>Edit <Bdi text={editOf} /></> : 'Configure a provider'}</h2>
      {editOf && hidden.trust_idp_mfa ? <p class="hint" id="sso-kept">Kept as stored: the provider's own second factor counts here (trust_idp_mfa).</p> : null}
      {editOf && hidden.allowed_tenants ? <p class="hint" id="sso-kept-tenants">Kept as stored: the allowed directories (allowed_tenants).</p> : null}
      <SelectField id="sso-kind" label="Kind" value={kind} onValue={(v) => { setKind(v as Kind); setErrs({}); setErr(null); }}
        options={KINDS} hint="Saving a kind that exists replaces its configuration." />
      <div class="grid2">
        {FIELDS[kind].map(([f, label, req, hint]) => (
          <TextField key={kind + f} id={'sso-' + f} label={label} required={req && !(editOf && f === 'client_secret')} value={values[f] || ''}
            hint={editOf && f === 'client_secret' ? 'Leave empty to keep the stored one (the same client at the same issuer).' : hint || undefined}
            type={f === 'client_secret' ? 'password' : 'text'} notMine={f === 'client_secret'}
            onValue={(v) => setValues({ ...values, [f]: v })} error={errs[f]} />
        ))}
      </div>
      {kind === 'saml' ? <TextArea id="sso-certificate" label={editOf ? 'IdP signing certificate (PEM): give it again, no answer shows it' : 'IdP signing certificate (PEM)'} required value={cert} onValue={setCert} rows={5}
        error={errs.certificate} placeholder="-----BEGIN CERTIFICATE-----" /> : null}
      <TextField id="sso-groups_claim" label="Groups claim (optional)" value={groupsClaim} onValue={setGroupsClaim} error={errs.groups_claim}
        hint={kind === 'saml' ? 'The attribute that lists the groups.' : 'Default: groups.'} />
      <MappingsEditor id="sso-mappings" value={mappings} onValue={setMappings} tenantsList="tenants-list" error={errs.role_mappings} />
      <Checkbox id="sso-link_by_email" label="Link to an existing user with the same verified email" checked={linkByEmail} onValue={setLinkByEmail} />
      {kind !== 'saml' && name ? (
        <p class="hint">Register this redirect URI at the provider: <Bdi class="mono" id="sso-redirect-uri" text={`${origin}/api/v1/auth/sso/${name}/callback`} />{' '}
          <CopyButton text={`${origin}/api/v1/auth/sso/${name}/callback`} /></p>
      ) : null}
      <ErrorNotice error={err} />
      <button type="submit" class="primary" id="sso-submit" disabled={busy}>Save provider</button>
    </form>
  );
}

// SAMLMetadata: what to give the IdP for SAML (this service as the SP).
function SAMLMetadata() {
  const [xml, setXml] = useState('');
  const [err, setErr] = useState('');
  const url = location.origin + '/api/v1/auth/sso/saml/metadata';
  const load = async () => {
    setErr('');
    try {
      const res = await fetch('/api/v1/auth/sso/saml/metadata', { credentials: 'same-origin', headers: { Accept: 'application/samlmetadata+xml, application/xml' } });
      if (!res.ok) {
        const e = await res.json().catch(() => null);
        setErr(e?.error?.message || 'No SP metadata (' + res.status + '): configure a SAML provider first.');
        return;
      }
      setXml(await res.text());
    } catch { setErr('The service did not answer (network error)'); }
  };
  return (
    <section class="card" aria-labelledby="sp-title">
      <h2 id="sp-title">SAML service provider metadata</h2>
      <p>Give these to your SAML identity provider.</p>
      <dl class="facts">
        <dt>Metadata URL</dt><dd><span class="mono">{url}</span> <CopyButton text={url} /></dd>
        <dt>ACS URL</dt><dd><span class="mono">{location.origin}/api/v1/auth/sso/saml/acs</span> <CopyButton text={location.origin + '/api/v1/auth/sso/saml/acs'} /></dd>
      </dl>
      <button type="button" class="secondary" id="sp-metadata-load" onClick={load}>Show the metadata XML</button>
      {err ? <Notice kind="warn">{err}</Notice> : null}
      {xml ? (
        <>
          <TextArea id="sp-metadata" label="SP metadata (XML)" value={xml} onValue={() => undefined} readOnly rows={8} />
          <CopyButton text={xml} label="Copy the XML" />
        </>
      ) : null}
    </section>
  );
}
