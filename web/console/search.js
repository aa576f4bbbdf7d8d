// search.js - searches over the event store in the rules' own expression language. Searches
// are asynchronous on the server (POST /searches, then poll its status, then page through
// results), so a long one never holds a request open and can be cancelled.
import { html, useEffect, useRef, useState } from './vendor/htm-preact.mjs';
import { call, get, list, post, qs } from './api.js';
import { ErrorLine, Table, fmtNum, fmtTime } from './ui.js';

const field = (e, path) => path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), e);
const DEFAULT_FIELDS = '@timestamp,event.action,user.name,source.ip,destination.ip,dns.question.name';

export function SearchPage({ params }) {
  const [q, setQ] = useState(params.get('q') || '');
  const [from, setFrom] = useState(params.get('from') || '');
  const [to, setTo] = useState(params.get('to') || '');
  const [countBy, setCountBy] = useState('');
  const [state, setState] = useState({ status: null, rows: null, counts: null, error: null });
  const current = useRef(null);
  const run = async (e) => {
    if (e) e.preventDefault();
    if (!q) return;
    if (current.current) call('DELETE', '/searches/' + current.current).catch(() => {});
    setState({ status: { status: 'running' }, rows: null, counts: null, error: null });
    try {
      const s = await post('/searches', { expression: q, from: from || undefined, to: to || undefined,
        count_by: countBy || undefined, limit: 500 });
      current.current = s.id;
      let st = s;
      while (st.status === 'running' || st.status === 'queued') {
        await new Promise((r) => setTimeout(r, 300));
        if (current.current !== s.id) return;
        st = await get('/searches/' + s.id);
        setState((x) => ({ ...x, status: st }));
      }
      if (st.status !== 'done' && st.status !== 'completed') throw new Error(st.error || `search ${st.status}`);
      const res = await get(`/searches/${s.id}/results` + qs({ limit: 500 }));
      setState({ status: st, rows: list(res, 'events'), counts: res.counts || null, error: null });
    } catch (error) {
      setState((x) => ({ ...x, error }));
    }
  };
  useEffect(() => { if (q) run(); }, []);
  const fields = DEFAULT_FIELDS.split(',');
  const columns = fields.map((f) => ({ key: f, label: f,
    render: (e) => (f === '@timestamp' ? fmtTime(field(e, f)) : field(e, f)) }));
  return html`<section><h1>Search</h1>
    <form class="search" onSubmit=${run}>
      <label class="grow">Expression <input name="q" value=${q} placeholder='user.name == "alice" and event.action == "RunInstances"'
        onInput=${(e) => setQ(e.target.value)} /></label>
      <label>From <input value=${from} placeholder="2024-06-01T00:00:00Z or -7d" onInput=${(e) => setFrom(e.target.value)} /></label>
      <label>To <input value=${to} placeholder="now" onInput=${(e) => setTo(e.target.value)} /></label>
      <label>Count by <input value=${countBy} placeholder="user.name" onInput=${(e) => setCountBy(e.target.value)} /></label>
      <button type="submit">Search</button></form>
    <${ErrorLine} error=${state.error} />
    ${state.status && html`<p class="muted" aria-live="polite">${state.status.status}
      ${state.status.matched !== undefined ? ` · ${fmtNum(state.status.matched)} matched` : ''}
      ${state.status.scanned !== undefined ? ` · ${fmtNum(state.status.scanned)} scanned` : ''}</p>`}
    ${state.counts && html`<${Table} label="Counts" rows=${list(state.counts, 'counts')}
      columns=${Object.keys(list(state.counts, 'counts')[0] || {}).map((k) => ({ key: k, label: k }))} />`}
    ${state.rows && html`<${Table} label="Search results" columns=${columns} rows=${state.rows} empty="No event matches." />`}
  </section>`;
}
