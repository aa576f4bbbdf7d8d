// offenses.js - the offense list (sorted and filtered on the server, refreshed every few
// seconds so new offenses appear without a reload) and the offense page: summary, rules with
// counts and times, the offense's timeline, the investigation graph, the evidence events with their raw records,
// notes, the response plan (proposed, and run by an admin after confirming), assignment and
// closing with a reason. Updates send the ETag the page was drawn from
// (If-Match): when another analyst changed the offense meanwhile the server answers 412 and
// the page reloads it instead of overwriting their change.
import { html, useEffect, useState } from './vendor/htm-preact.mjs';
import { ApiError, call, get, list, post, qs } from './api.js';
import { ErrorLine, Magnitude, Table, fmtNum, fmtTime, go, usePoll } from './ui.js';
import { Graph } from './graph.js';
import { Timeline } from './users.js';
import { Series } from './chart.js';

const canChange = (s) => s.role === 'analyst' || s.role === 'admin';
const who = (o) => (o.index ? o.index.value : o.user || '');

export function OffenseList({ params }) {
  const [sort, setSort] = useState(params.get('sort') || '-magnitude');
  const [status, setStatus] = useState(params.get('status') || 'open');
  const [text, setText] = useState(params.get('filter') || '');
  const [filter, setFilter] = useState(text);
  const expr = [status ? `status == "${status}"` : '', filter ? `(${filter})` : '']
    .filter(Boolean).join(' and ');
  const [data, error] = usePoll(() => get('/offenses' + qs({ filter: expr, sort, limit: 200 })),
    [expr, sort], 5000);
  const rows = data ? list(data, 'offenses') : null;
  const columns = [
    { key: 'id', label: 'Id', num: true },
    { key: 'magnitude', label: 'Magnitude', render: (o) => html`<${Magnitude} value=${o.magnitude} />` },
    { key: 'index', label: 'Offense source', sort: false, render: (o) => who(o) },
    { key: 'assigned_to', label: 'Assigned to', render: (o) => o.assigned_to || '' },
    { key: 'rules', label: 'Rules', sort: false,
      render: (o) => (o.rules || []).map((r) => r.id).slice(0, 4).join(', ') + ((o.rules || []).length > 4 ? ' …' : '') },
    { key: 'event_count', label: 'Events', num: true, render: (o) => fmtNum(o.event_count) },
    { key: 'status', label: 'Status' },
    { key: 'last_seen', label: 'Last event', render: (o) => fmtTime(o.last_seen) },
  ];
  return html`<section><h1>Offenses</h1>
    <form class="toolbar" onSubmit=${(e) => { e.preventDefault(); setFilter(text); }}>
      <label>Status <select value=${status} onChange=${(e) => setStatus(e.target.value)}>
        <option value="open">open</option><option value="hidden">hidden</option>
        <option value="closed">closed</option><option value="">any</option></select></label>
      <label class="grow">Filter <input value=${text} placeholder='magnitude >= 7 and user == "alice"'
        onInput=${(e) => setText(e.target.value)} /></label>
      <button type="submit">Apply</button></form>
    <${ErrorLine} error=${error} />
    <${Table} label="Offenses" columns=${columns} rows=${rows} sort=${sort} onSort=${setSort}
      rowKey=${(o) => o.id} onRow=${(o) => go('#/offenses/' + o.id)} empty="No offense matches." />
  </section>`;
}

function Notes({ id, session }) {
  const [text, setText] = useState('');
  const [error, setError] = useState(null);
  const [data, loadError, reload] = usePoll(() => get(`/offenses/${id}/notes`), [id], 0);
  const add = async (e) => {
    e.preventDefault();
    try { await post(`/offenses/${id}/notes`, { text }); setText(''); reload(); } catch (err) { setError(err); }
  };
  const notes = data ? list(data, 'notes') : [];
  return html`<section aria-labelledby="notes-h"><h2 id="notes-h">Notes</h2>
    <${ErrorLine} error=${loadError || error} />
    <ul class="notes">${notes.map((n) => html`<li key=${n.id}><span class="muted">${fmtTime(n.created || n.time)}
      ${n.author || n.username}</span><p>${n.text || n.note_text}</p></li>`)}</ul>
    ${canChange(session) && html`<form onSubmit=${add}><label>New note
      <textarea value=${text} required onInput=${(e) => setText(e.target.value)}></textarea></label>
      <button type="submit">Add note</button></form>`}</section>`;
}

function Actions({ offense, etag, session, onChanged }) {
  const [reasons, setReasons] = useState([]);
  const [reason, setReason] = useState('');
  const [assignee, setAssignee] = useState(offense.assigned_to || '');
  const [error, setError] = useState(null);
  useEffect(() => {
    get('/offense_closing_reasons').then((d) => setReasons(list(d, 'reasons')), setError);
  }, []);
  if (!canChange(session)) return html`<p class="muted">Your role (${session.role}) can read offenses but not change them.</p>`;
  const update = async (body) => {
    setError(null);
    try {
      await call('POST', `/offenses/${offense.id}`, { body, headers: { 'If-Match': etag } });
      onChanged();
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) {
        setError(new Error('Someone changed this offense meanwhile; it has been reloaded, check and try again.'));
        onChanged();
      } else setError(err);
    }
  };
  const reasonLabel = (r) => r.text || r;
  return html`<section aria-labelledby="act-h"><h2 id="act-h">Actions</h2>
    <form class="toolbar" onSubmit=${(e) => { e.preventDefault(); update({ assigned_to: assignee }); }}>
      <label>Assigned to <input value=${assignee} onInput=${(e) => setAssignee(e.target.value)} /></label>
      <button type="submit">Assign</button></form>
    ${offense.status !== 'closed' ? html`<form class="toolbar" onSubmit=${(e) => {
      e.preventDefault();
      if (window.confirm(`Close offense ${offense.id} as "${reason}"? Closing is final.`)) {
        update({ status: 'closed', closing_reason: reason });
      }
    }}>
      <label>Closing reason <select value=${reason} required onChange=${(e) => setReason(e.target.value)}>
        <option value="">choose…</option>
        ${reasons.map((r) => html`<option value=${reasonLabel(r)}>${reasonLabel(r)}</option>`)}</select></label>
      <button type="submit" disabled=${!reason}>Close offense</button></form>`
    : html`<p>Closed${offense.closing_reason ? ` as "${offense.closing_reason}"` : ''}: closing is final, a new hit opens a new offense.</p>`}
    <${ErrorLine} error=${error} /></section>`;
}

function Events({ id }) {
  const [data, error] = usePoll(() => get(`/offenses/${id}/events` + qs({ limit: 100 })), [id], 0);
  const [open, setOpen] = useState(null);
  const rows = data ? list(data, 'events') : null;
  const field = (e, path) => path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), e);
  const columns = [
    { key: 'time', label: 'Time', render: (e) => fmtTime(field(e, '@timestamp') || e.time) },
    { key: 'action', label: 'Action', render: (e) => field(e, 'event.action') },
    { key: 'user', label: 'User', render: (e) => field(e, 'user.name') },
    { key: 'src', label: 'Source', render: (e) => field(e, 'source.ip') },
    { key: 'dst', label: 'Destination', render: (e) => field(e, 'destination.ip') || field(e, 'dns.question.name') },
  ];
  return html`<section aria-labelledby="ev-h"><h2 id="ev-h">Evidence events</h2>
    <${ErrorLine} error=${error} />
    <${Table} label="Evidence events" columns=${columns} rows=${rows} onRow=${(e) => setOpen(e)}
      empty="No stored events for this offense." />
    ${open && html`<figure class="raw"><figcaption>Original record <button class="link"
      onClick=${() => setOpen(null)}>close</button></figcaption>
      <pre>${JSON.stringify(open.original || open.raw || open, null, 2)}</pre></figure>`}</section>`;
}

// What happened in the offense, in time order: each rule's first and last hit, and, for an
// offense of a user, that user's timeline (firsts, rule hits with the risk they added) within
// the offense's span.
function OffenseTimeline({ o }) {
  const user = o.index && o.index.field === 'user.name' ? o.index.value : null;
  const [tl, error] = usePoll(() => (user ? get(`/users/${encodeURIComponent(user)}/timeline`)
    : Promise.resolve(null)), [user], 0);
  const from = Date.parse(o.first_seen), to = Date.parse(o.last_seen);
  let entries = [];
  if (user && tl) {
    entries = list(tl, 'timeline').filter((e) => {
      const t = Date.parse(e.time);
      return t >= from && t <= to;
    });
  } else {
    for (const r of o.rules || []) {
      entries.push({ time: r.first_seen, type: 'rule', rule: `${r.id} first hit` });
      if (r.last_seen && r.last_seen !== r.first_seen) entries.push({ time: r.last_seen, type: 'rule', rule: `${r.id} last hit (${r.count})` });
    }
  }
  entries.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  // The first 100 keep the page readable; the user's page has the rest.
  const shown = entries.slice(0, 100);
  const riskPoints = entries.filter((e) => e.type === 'rule' && e.risk !== undefined)
    .map((e) => [Date.parse(e.time) / 1000, e.risk]);
  return html`<section aria-labelledby="otl-h"><h2 id="otl-h">Timeline</h2><${ErrorLine} error=${error} />
    ${riskPoints.length > 1 && html`<${Series} title=${`${user}'s risk during the offense`} label="risk" points=${riskPoints} />`}
    <${Timeline} label="Offense timeline" entries=${user && !tl ? null : shown}
      empty="Nothing happened within this offense's span." />
    ${user && entries.length > shown.length && html`<p class="muted">${entries.length - shown.length} more entries on
      <a href=${'#/users/' + encodeURIComponent(user)}>${user}'s page</a>.</p>`}</section>`;
}

// The containment plan (docs/RESPONSE.md): proposed on request (a dry run, stored and audited),
// shown step by step with the AWS call each makes; an admin may run it after confirming. The
// server refuses a run unless its configuration enables execution, and says so. A run is
// asynchronous: the server answers 202 once it is under way, and the plan's state (each step's
// run row) is polled until the plan is no longer running.
const RUN_POLL_MS = 1000;

// Counts of a plan's run from its step rows (phase run; "7@vpc-..." rows are one VPC's or ACL's
// call of step 7, not steps of their own).
function runCounts(state) {
  const rows = (state.run || []).filter((r) => r.phase === 'run' && !String(r.step).includes('@'));
  const n = (st) => rows.filter((r) => r.state === st).length;
  const failed = rows.find((r) => r.state === 'failed');
  return { status: state.status, done: n('done'), running: n('running'), failed: n('failed'),
    error: failed ? `step ${failed.step}: ${failed.error || 'failed'}` : null };
}

function ResponsePlan({ id, session }) {
  const [plan, setPlan] = useState(null);
  const [error, setError] = useState(null);
  const [asking, setAsking] = useState(false);
  const [result, setResult] = useState(null);
  const [busy, setBusy] = useState(false);
  if (!canChange(session)) return null;
  const propose = async () => {
    setError(null); setResult(null); setBusy(true);
    try { setPlan(await get(`/offenses/${id}/response_plan`)); } catch (err) { setError(err); }
    setBusy(false);
  };
  const run = async () => {
    setAsking(false); setError(null); setBusy(true);
    try {
      const started = await post(`/response_plans/${plan.id}/run`, { approve: true });
      setResult({ status: started.status, done: 0, running: 0, failed: 0 });
      const url = (started.status_url || `/api/v1/response_plans/${plan.id}`).replace(/^\/api\/v1/, '');
      for (;;) {
        await new Promise((r) => setTimeout(r, RUN_POLL_MS));
        const state = await get(url);
        setResult(runCounts(state));
        if (state.status !== 'running') { setPlan(state); break; }
      }
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  const p = plan && (plan.plan || plan);
  const steps = p ? p.steps || [] : [];
  const columns = [
    { key: 'id', label: 'Step' }, { key: 'kind', label: 'Kind' },
    { key: 'action', label: 'AWS action', render: (s) => `${s.service}:${s.action}` },
    { key: 'region', label: 'Region' }, { key: 'why', label: 'Why' },
    { key: 'reversible', label: 'Reversible', render: (s) => (s.reversible ? 'yes' : 'no') },
  ];
  return html`<section aria-labelledby="resp-h"><h2 id="resp-h">Response plan</h2>
    <p class="muted">A plan is a dry run: proposing one sends nothing to AWS.</p>
    <button onClick=${propose} disabled=${busy}>${plan ? 'Propose again' : 'Propose a response plan'}</button>
    <${ErrorLine} error=${error} />
    ${plan && html`<p>Plan ${plan.id} (${plan.status || 'proposed'}): ${steps.length} steps.</p>
      <${Table} label="Response plan steps" columns=${columns} rows=${steps} rowKey=${(s) => s.id}
        empty="Nothing in this offense's evidence to contain." />
      <details><summary>AWS CLI commands</summary><pre class="cli">${steps.map((s) => s.cli).join('\n')}</pre></details>
      ${session.role === 'admin' && steps.length > 0 && html`<button onClick=${() => setAsking(true)} disabled=${busy}>Run plan…</button>`}`}
    ${asking && html`<div class="confirm" role="alertdialog" aria-labelledby="resp-q">
      <p id="resp-q">Run plan ${plan.id} against AWS? Its ${steps.length} steps deactivate keys, stop and
        isolate instances and block the pool destinations; every step is audited under your name.</p>
      <button onClick=${run}>Run ${steps.length} steps</button>
      <button onClick=${() => setAsking(false)}>Cancel</button></div>`}
    ${result && html`<p role="status">Run: ${result.status || ''} — ${result.done ?? 0} of ${steps.length} steps done,
      ${result.running ? `${result.running} under way, ` : ''}${result.failed ?? 0} failed.${result.error ? ` ${result.error}` : ''}</p>`}</section>`;
}

export function OffensePage({ id, session }) {
  const [state, setState] = useState({ offense: null, etag: null, error: null });
  const load = () => call('GET', `/offenses/${id}`).then(
    (r) => setState({ offense: r.data, etag: r.headers.get('ETag'), error: null }),
    (error) => setState((s) => ({ ...s, error })));
  useEffect(() => { load(); }, [id]);
  const o = state.offense;
  if (!o) return html`<section><${ErrorLine} error=${state.error} /><p class="muted">Loading…</p></section>`;
  const rules = [
    { key: 'id', label: 'Rule' }, { key: 'title', label: 'Title' },
    { key: 'count', label: 'Hits', num: true },
    { key: 'first_seen', label: 'First', render: (r) => fmtTime(r.first_seen) },
    { key: 'last_seen', label: 'Last', render: (r) => fmtTime(r.last_seen) },
  ];
  const user = who(o);
  return html`<section class="offense">
    <h1>Offense ${o.id} <${Magnitude} value=${o.magnitude} /></h1>
    <dl class="summary">
      <dt>Offense source</dt><dd>${o.index ? o.index.field + ' = ' : ''}${o.index && o.index.field === 'user.name'
        ? html`<a href=${'#/users/' + encodeURIComponent(user)}>${user}</a>` : user}</dd>
      <dt>Status</dt><dd>${o.status}${o.closing_reason ? ' (' + o.closing_reason + ')' : ''}</dd>
      <dt>Assigned to</dt><dd>${o.assigned_to || '—'}</dd>
      <dt>Events</dt><dd>${fmtNum(o.event_count)}</dd>
      <dt>First event</dt><dd>${fmtTime(o.first_seen)}</dd><dt>Last event</dt><dd>${fmtTime(o.last_seen)}</dd>
      <dt>Severity / credibility / relevance</dt><dd>${o.severity} / ${o.credibility} / ${o.relevance}</dd>
    </dl>
    <${ErrorLine} error=${state.error} />
    <section aria-labelledby="rules-h"><h2 id="rules-h">Rules</h2>
      <${Table} label="Rules that fired" columns=${rules} rows=${o.rules || []} rowKey=${(r) => r.id} /></section>
    <${OffenseTimeline} o=${o} />
    <section aria-labelledby="graph-h"><h2 id="graph-h">Who and what was involved</h2>
      <${Graph} offense=${o.id} /></section>
    <${Events} id=${o.id} />
    <${Notes} id=${o.id} session=${session} />
    <${ResponsePlan} id=${o.id} session=${session} />
    <${Actions} offense=${o} etag=${state.etag} session=${session} onChanged=${load} />
  </section>`;
}
