// The audit log: the event stream filtered by tenant, actor, subject, type,
// time and login result, page by page with the API's cursor.
import { useState } from 'preact/hooks';
import { get, query, type AuditEvent } from '../api';
import type { PageProps } from '../main';
import { Bdi, ErrorNotice, escapeBidi, Loading, Pager, SelectField, TextField, Time, toRFC3339, useLoad } from '../ui';

interface EventPage { events: AuditEvent[]; next_cursor?: string }

const TYPES = ['user.', 'user.created', 'user.role_granted', 'user.role_revoked', 'user.deactivated', 'user.login_succeeded', 'user.login_failed',
  'session.', 'apikey.', 'apikey.created', 'apikey.rotated', 'apikey.revoked', 'sso.', 'scim.', 'mfa.'];

const EMPTY = { tenant: '', actor: '', subject: '', type: '', since: '', until: '', result: '', order: 'desc' };
const PAGE = 25;

export function AuditPage(p: PageProps) {
  // No tenant filter at first: the API shows a tenant admin the events of
  // all its tenants (before, the first one's only — a re-check).
  const [form, setForm] = useState({ ...EMPTY });
  const [filter, setFilter] = useState(form);
  const [cursors, setCursors] = useState<string[]>(['']);
  const [open, setOpen] = useState('');
  const page = cursors.length - 1;
  const events = useLoad(() => get<EventPage>('/api/v1/audit/events' + query({
    tenant: filter.tenant, actor: filter.actor, subject: filter.subject, type: filter.type, result: filter.result,
    since: toRFC3339(filter.since), until: toRFC3339(filter.until), order: filter.order, limit: PAGE, cursor: cursors[page],
  })), [JSON.stringify(filter), cursors.join()]);
  const set = (k: keyof typeof EMPTY) => (v: string) => setForm({ ...form, [k]: v });
  const apply = (f: typeof EMPTY) => { setForm(f); setFilter(f); setCursors(['']); };
  return (
    <section>
      <h1 tabIndex={-1}>Audit log</h1>
      <form class="card filters" id="audit-filters" onSubmit={(e) => { e.preventDefault(); apply(form); }} aria-label="Filters">
        <div class="grid4">
          <TextField id="f-tenant" label="Tenant" value={form.tenant} onValue={set('tenant')} list="tenants-list" />
          <TextField id="f-actor" label="Actor (user or key ID)" value={form.actor} onValue={set('actor')} />
          <TextField id="f-subject" label="Subject (user, key, session or provider ID)" value={form.subject} onValue={set('subject')} />
          <TextField id="f-type" label="Type or prefix" value={form.type} onValue={set('type')} list="event-types" placeholder="apikey." />
          <TextField id="f-since" label="Since (UTC)" type="datetime-local" value={form.since} onValue={set('since')} />
          <TextField id="f-until" label="Until (UTC)" type="datetime-local" value={form.until} onValue={set('until')} />
          <SelectField id="f-result" label="Login result" value={form.result} onValue={set('result')}
            options={[['', 'any'], ['succeeded', 'succeeded'], ['failed', 'failed']]} />
          <SelectField id="f-order" label="Order" value={form.order} onValue={set('order')} options={[['desc', 'newest first'], ['asc', 'oldest first']]} />
        </div>
        <datalist id="event-types">{TYPES.map((t) => <option value={t} key={t} />)}</datalist>
        <div class="actions">
          <button type="submit" class="primary" id="audit-apply">Apply filters</button>
          <button type="button" class="secondary" onClick={() => apply({ ...EMPTY })}>Reset</button>
        </div>
      </form>
      <ErrorNotice error={events.error} />
      {events.loading && !events.data ? <Loading what="events" /> : null}
      {events.data ? (
        <>
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Audit events">
            <table id="audit-table" data-page={page + 1} aria-busy={events.loading ? 'true' : 'false'}>
              <caption class="sr-only">Audit events, page {page + 1}</caption>
              <thead><tr><th scope="col">#</th><th scope="col">Time</th><th scope="col">Type</th><th scope="col">Actor</th><th scope="col">Subject</th><th scope="col">Tenants</th><th scope="col">Address</th><th scope="col"><span class="sr-only">Details</span></th></tr></thead>
              <tbody>
                {events.data.events.length === 0 ? <tr><td colSpan={8} class="muted">No events match.</td></tr> : null}
                {events.data.events.map((ev) => [
                  <tr key={ev.id} data-seq={ev.sequence}>
                    <td class="mono small nowrap">{ev.sequence}</td>
                    <td class="small"><Time at={ev.time} /></td>
                    <td><button type="button" class="link mono" title="Only this type" onClick={() => apply({ ...filter, type: ev.type })}><Bdi text={ev.type} /></button></td>
                    <td>{ev.actor.id
                      ? <button type="button" class="link mono small" title={'Only events by this ' + ev.actor.type} onClick={() => apply({ ...filter, actor: ev.actor.id! })}><Bdi text={ev.actor.id} /></button>
                      : <span class="muted">{ev.actor.type}</span>}</td>
                    <td><button type="button" class="link mono small" title="Only this subject" onClick={() => apply({ ...filter, subject: ev.aggregate_id })}><Bdi text={ev.aggregate_id} /></button></td>
                    <td>{ev.tenants.filter((t) => t === '*' || p.seesTenant(t)).map((t) => <span class="chip" key={t}><Bdi text={t} /></span>)}</td>
                    <td class="mono small nowrap">{ev.request?.ip ? <Bdi text={ev.request.ip} /> : '—'}</td>
                    <td><button type="button" class="secondary small" aria-expanded={open === ev.id} aria-controls={'ev-' + ev.id}
                      onClick={() => setOpen(open === ev.id ? '' : ev.id)}>Details</button></td>
                  </tr>,
                  open === ev.id ? <tr key={ev.id + '-d'} id={'ev-' + ev.id}><td colSpan={8}><pre class="json">{escapeBidi(JSON.stringify({ data: ev.data, request: ev.request, version: ev.version }, null, 2))}</pre></td></tr> : null,
                ])}
              </tbody>
            </table>
          </div>
          <Pager label="Audit log pages" page={page} hasNext={!!events.data.next_cursor} onFirst={() => setCursors([''])}
            onPrev={() => setCursors(cursors.slice(0, -1))} onNext={() => setCursors([...cursors, events.data!.next_cursor!])} />
        </>
      ) : null}
    </section>
  );
}
