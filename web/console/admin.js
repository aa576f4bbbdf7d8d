// admin.js - the pages around detection: reference sets (values with their expiry; analysts
// add and remove), rules (admins enable and disable; everyone sees the tests that prove a
// rule) and ingest health (rates, lag, late records, errors by reason).
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

export function RulesPage({ session }) {
  const [data, error, reload] = usePoll(() => get('/rules'), [], 0);
  const [err, setErr] = useState(null);
  const rules = data ? list(data, 'rules') : null;
  const toggle = async (r) => {
    try { await post('/rules/' + encodeURIComponent(r.id), { enabled: !r.enabled }); reload(); } catch (x) { setErr(x); }
  };
  const columns = [
    { key: 'id', label: 'Id' }, { key: 'title', label: 'Title' },
    { key: 'severity', label: 'Severity', num: true },
    { key: 'tests', label: 'Tests', num: true, render: (r) => (Array.isArray(r.tests) ? r.tests.length : r.tests) },
    { key: 'enabled', label: 'Enabled', render: (r) => (session.role === 'admin'
      ? html`<label class="switch"><input type="checkbox" checked=${r.enabled !== false}
          onChange=${() => toggle(r)} aria-label=${'enable ' + r.id} /></label>`
      : (r.enabled !== false ? 'yes' : 'no')) },
  ];
  return html`<section><h1>Rules</h1><${ErrorLine} error=${error || err} />
    <${Table} label="Rules" columns=${columns} rows=${rules} rowKey=${(r) => r.id} /></section>`;
}

export function IngestPage() {
  const [data, error] = usePoll(() => get('/ingest/status'), [], 5000);
  const pairs = (o) => Object.entries(o || {}).map(([k, v]) => ({ k, v: typeof v === 'object' ? JSON.stringify(v) : v }));
  const columns = [{ key: 'k', label: 'Measure' }, { key: 'v', label: 'Value', num: true }];
  return html`<section><h1>Ingest</h1><${ErrorLine} error=${error} />
    ${data && html`<${Table} label="Ingest status" columns=${columns} rows=${pairs(data)} />`}</section>`;
}
