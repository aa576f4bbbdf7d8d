// admin.js - the pages around detection: reference sets (values with their expiry; analysts
// add and remove), rules (admins enable and disable; everyone sees the tests that prove a
// rule) and ingest health (rates, lag, late records, errors by reason) with the intel feeds.
import { html, useState } from './vendor/htm-preact.mjs';
import { call, get, list, post } from './api.js';
import { ErrorLine, Table, fmtNum, fmtTime, usePoll } from './ui.js';

export function RefsetsPage({ session }) {
  const [data, error, reload] = usePoll(() => get('/reference_sets'), [], 0);
  const [open, setOpen] = useState(null);
  const sets = data ? list(data, 'reference_sets') : null;
  const columns = [
    { key: 'name', label: 'Name' }, { key: 'type', label: 'Type', render: (s) => s.type || s.element_type },
    { key: 'count', label: 'Values', num: true, render: (s) => fmtNum(s.count !== undefined ? s.count : s.number_of_elements) },
    { key: 'ttl', label: 'Time to live', render: (s) => s.ttl || s.time_to_live || '' },
  ];
  return html`<section><h1>Reference sets</h1><${ErrorLine} error=${error} />
    <${Table} label="Reference sets" columns=${columns} rows=${sets} rowKey=${(s) => s.name}
      onRow=${(s) => setOpen(s.name)} empty="No reference set." />
    ${open && html`<${Refset} name=${open} session=${session} onChanged=${reload} />`}</section>`;
}

function Refset({ name, session, onChanged }) {
  const [data, error, reload] = usePoll(() => get('/reference_sets/' + encodeURIComponent(name)), [name], 0);
  const [value, setValue] = useState('');
  const [ttl, setTtl] = useState('');
  const [err, setErr] = useState(null);
  const can = session.role === 'analyst' || session.role === 'admin';
  const values = data ? list(data, 'values') : null;
  const add = async (e) => {
    e.preventDefault();
    try {
      await post(`/reference_sets/${encodeURIComponent(name)}/values`, { values: [value], ttl: ttl || undefined });
      setValue(''); reload(); onChanged();
    } catch (x) { setErr(x); }
  };
  const remove = async (v) => {
    try {
      await call('DELETE', `/reference_sets/${encodeURIComponent(name)}/values/${encodeURIComponent(v)}`);
      reload(); onChanged();
    } catch (x) { setErr(x); }
  };
  const columns = [
    { key: 'value', label: 'Value', render: (v) => v.value || v },
    { key: 'expires', label: 'Expires', render: (v) => fmtTime(v.expires) || 'never' },
    { key: 'source', label: 'Source', render: (v) => v.source || '' },
  ];
  if (can) columns.push({ key: 'x', label: '', sort: false,
    render: (v) => html`<button class="link" onClick=${(e) => { e.stopPropagation(); remove(v.value || v); }}>remove</button>` });
  return html`<section aria-labelledby="rs-h"><h2 id="rs-h">${name}</h2><${ErrorLine} error=${error || err} />
    ${can && html`<form class="toolbar" onSubmit=${add}><label>Value <input value=${value} required
      onInput=${(e) => setValue(e.target.value)} /></label><label>TTL <input value=${ttl} placeholder="30d"
      onInput=${(e) => setTtl(e.target.value)} /></label><button type="submit">Add</button></form>`}
    <${Table} label=${'Values of ' + name} columns=${columns} rows=${values} empty="The set is empty." /></section>`;
}

// Rules: the list with each rule's state; an admin turns one on or off after confirming (the
// change is durable and audited on the server, and applies to the running pipeline at once).
// A row opens the rule: its expression, correlation and test cases, and a form that runs it
// over records pasted as JSON (POST /rules/test, analysts and admins).
export function RulesPage({ session }) {
  const [data, error, reload] = usePoll(() => get('/rules'), [], 0);
  const [err, setErr] = useState(null);
  const [asking, setAsking] = useState(null); // the rule whose toggle awaits confirmation
  const [open, setOpen] = useState(null);
  const [done, setDone] = useState(null);
  const rules = data ? list(data, 'rules') : null;
  const admin = session.role === 'admin';
  const toggle = async (r) => {
    setAsking(null);
    try {
      const after = await post('/rules/' + encodeURIComponent(r.id), { enabled: !r.enabled });
      // The message and the list's new switch in one render: said before the list reloaded,
      // "now disabled" stood beside a switch still on.
      await reload();
      setDone(`${after.id} is now ${after.enabled ? 'enabled' : 'disabled'}.`);
      setErr(null);
    } catch (x) { setErr(x); }
  };
  const columns = [
    { key: 'id', label: 'Id' }, { key: 'title', label: 'Title' },
    { key: 'type', label: 'Correlation' },
    { key: 'severity', label: 'Severity', num: true },
    { key: 'tests', label: 'Tests', num: true, render: (r) => (Array.isArray(r.tests) ? r.tests.length : r.tests) },
    { key: 'enabled', label: 'Enabled', sort: false, render: (r) => (admin
      ? html`<label class="switch"><input type="checkbox" checked=${r.enabled !== false}
          onClick=${(e) => e.stopPropagation()}
          onChange=${(e) => { e.target.checked = r.enabled !== false; setAsking(r); }}
          aria-label=${'enable ' + r.id} /><span>${r.enabled !== false ? 'on' : 'off'}</span></label>`
      : html`<span class=${r.enabled !== false ? '' : 'off'}>${r.enabled !== false ? 'yes' : 'no'}</span>`) },
  ];
  return html`<section><h1>Rules</h1><${ErrorLine} error=${error || err} />
    ${done && html`<p class="muted" role="status">${done}</p>`}
    ${asking && html`<div class="confirm" role="alertdialog" aria-labelledby="confirm-q">
      <p id="confirm-q">${asking.enabled !== false ? 'Disable' : 'Enable'} rule ${asking.id} (${asking.title})?
        ${asking.enabled !== false ? ' It stops firing at once, for every analyst, until enabled again.' : ' It fires again from the next event.'}</p>
      <button onClick=${() => toggle(asking)}>${asking.enabled !== false ? 'Disable' : 'Enable'} ${asking.id}</button>
      <button onClick=${() => setAsking(null)}>Cancel</button></div>`}
    <${Table} label="Rules" columns=${columns} rows=${rules} rowKey=${(r) => r.id}
      onRow=${(r) => setOpen(r.id)} />
    ${open && html`<${Rule} id=${open} session=${session} />`}</section>`;
}

function Rule({ id, session }) {
  const [r, error] = usePoll(() => get('/rules/' + encodeURIComponent(id)), [id], 0);
  const [records, setRecords] = useState('');
  const [result, setResult] = useState(null);
  const [err, setErr] = useState(null);
  const canTest = session.role === 'analyst' || session.role === 'admin';
  const run = async (e) => {
    e.preventDefault();
    setErr(null); setResult(null);
    let events;
    try {
      const v = JSON.parse(records);
      events = Array.isArray(v) ? v : [v];
    } catch (x) { setErr(new Error('The records are not JSON: ' + x.message)); return; }
    try { setResult(await post('/rules/test', { id, events })); } catch (x) { setErr(x); }
  };
  if (!r) return html`<${ErrorLine} error=${error} />`;
  const cases = [
    { key: 'name', label: 'Case' }, { key: 'expect', label: 'Expect' },
    { key: 'events', label: 'Events', render: (c) => (c.events || []).map((f) => f.split('/').pop()).join(', ') },
    { key: 'line', label: 'Line', num: true },
  ];
  const hits = [
    { key: 'record', label: 'Record', num: true }, { key: 'time', label: 'Time', render: (h) => fmtTime(h.time) },
    { key: 'index_value', label: 'Offense index' }, { key: 'evidence', label: 'Evidence' },
  ];
  return html`<section aria-labelledby="rule-h"><h2 id="rule-h">${r.id}: ${r.title}</h2><${ErrorLine} error=${error} />
    <dl class="summary">
      <dt>State</dt><dd>${r.enabled !== false ? 'enabled' : 'disabled'}</dd>
      <dt>Correlation</dt><dd>${r.type}${r.count ? `, ${r.count} within ${r.within_ms / 1000} s` : ''}</dd>
      <dt>Where</dt><dd><code>${r.where || '(sequence steps)'}</code></dd>
      <dt>ATT&CK</dt><dd>${(r.mitre || []).join(', ')}</dd>
      <dt>File</dt><dd>${r.file}</dd></dl>
    <h3>Tests</h3>
    <${Table} label=${'Tests of ' + r.id} columns=${cases} rows=${r.cases || []} empty="This rule has no test case." />
    ${canTest && html`<form class="ruletest" onSubmit=${run} aria-label=${'Test ' + r.id}>
      <label>Records to test (JSON: one record or an array)<textarea rows="6" value=${records}
        onInput=${(e) => setRecords(e.target.value)} required></textarea></label>
      <button type="submit">Run the rule</button></form>`}
    <${ErrorLine} error=${err} />
    ${result && html`<p role="status">${(result.fired ? `Fired ${result.hits.length} time(s) on record(s) ${result.fired_on.join(', ')}` : 'Did not fire')
      + `; its expression selects record(s) ${result.matched.join(', ') || 'none'}`
      + ` over ${result.records} record(s)` + (result.bad_records ? `, ${result.bad_records} bad` : '')}.</p>
      ${result.errors.map((e) => html`<p class="error">${e}</p>`)}
      ${result.hits.length > 0 && html`<${Table} label="Test hits" columns=${hits} rows=${result.hits} />`}`}
  </section>`;
}

export function IngestPage({ session }) {
  const [data, error] = usePoll(() => get('/ingest/status'), [], 5000);
  const pairs = (o) => Object.entries(o || {}).map(([k, v]) => ({ k, v: typeof v === 'object' ? JSON.stringify(v) : v }));
  const columns = [{ key: 'k', label: 'Measure' }, { key: 'v', label: 'Value', num: true }];
  return html`<section><h1>Ingest</h1><${ErrorLine} error=${error} />
    ${data && html`<${Table} label="Ingest status" columns=${columns} rows=${pairs(data)} />`}
    <${Feeds} session=${session} /></section>`;
}

// The configured threat-intelligence pull feeds (GET /intel/feeds): last pull, its result, what
// it added, the next pull; an admin pulls one now (POST /intel/pull), and the status follows.
function Feeds({ session }) {
  const [feeds, error, reload] = usePoll(() => get('/intel/feeds'), [], 5000);
  const [err, setErr] = useState(null);
  const [said, setSaid] = useState(null);
  const admin = session && session.role === 'admin';
  const pull = async (f) => {
    try {
      await post('/intel/pull', { feed: f.index });
      setSaid(`Pull of ${f.url} requested.`); setErr(null);
      setTimeout(reload, 1000);
    } catch (x) { setErr(x); }
  };
  const columns = [
    { key: 'url', label: 'Feed' }, { key: 'collection', label: 'Collection', render: (f) => f.collection || 'all' },
    { key: 'status', label: 'Status', render: (f) => html`<span class=${f.status === 'failed' ? 'off' : ''}>${f.status}</span>` },
    { key: 'last_pull', label: 'Last pull', render: (f) => fmtTime(f.last_pull) || 'never' },
    { key: 'indicators_added', label: 'Added', num: true, render: (f) => fmtNum(f.indicators_added) },
    { key: 'next_pull', label: 'Next pull', render: (f) => fmtTime(f.next_pull) },
    { key: 'error', label: 'Error', render: (f) => f.error || '' },
  ];
  if (admin) columns.push({ key: 'x', label: '', sort: false,
    render: (f) => html`<button onClick=${() => pull(f)} aria-label=${'Pull ' + f.url + ' now'}>Pull now</button>` });
  return html`<section aria-labelledby="feeds-h"><h2 id="feeds-h">Threat-intelligence feeds</h2>
    <${ErrorLine} error=${error || err} />${said && html`<p class="muted" role="status">${said}</p>`}
    <${Table} label="Intel feeds" columns=${columns} rows=${feeds ? list(feeds, 'feeds') : null}
      rowKey=${(f) => f.index} empty="No feed is configured (intel.pull in the server's configuration)." /></section>`;
}
