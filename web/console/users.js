// users.js - users by risk (the bounded score the risk model shows, with the raw sum beside
// it) and one user's page: risk over time and the timeline of what matters (first login from
// a country, first use of a region, instance type or API, rule hits, offenses).
import { html } from './vendor/htm-preact.mjs';
import { get, list, qs } from './api.js';
import { ErrorLine, Table, fmtNum, fmtTime, go, usePoll } from './ui.js';
import { Series } from './chart.js';

const score = (u) => (u.score !== undefined ? u.score : u.risk);

export function UserList() {
  const [data, error] = usePoll(() => get('/users' + qs({ limit: 200 })), [], 10000);
  const rows = data ? list(data, 'users') : null;
  const columns = [
    { key: 'name', label: 'User', render: (u) => u.name || u.user },
    { key: 'score', label: 'Risk', num: true, render: (u) => fmtNum(score(u)) },
    { key: 'raw', label: 'Raw sum', num: true, render: (u) => fmtNum(u.raw !== undefined ? u.raw : u.risk_raw) },
    { key: 'hits', label: 'Rule hits', num: true, render: (u) => fmtNum(u.hits !== undefined ? u.hits : u.rule_hits) },
    { key: 'last_seen', label: 'Last hit', render: (u) => fmtTime(u.last_seen || u.updated) },
  ];
  return html`<section><h1>Users by risk</h1><${ErrorLine} error=${error} />
    <${Table} label="Users by risk" columns=${columns} rows=${rows}
      rowKey=${(u) => u.name || u.user} onRow=${(u) => go('#/users/' + encodeURIComponent(u.name || u.user))}
      empty="No user has any risk." /></section>`;
}

export function UserPage({ name }) {
  const [user, error] = usePoll(() => get('/users/' + encodeURIComponent(name)), [name], 0);
  const [tl, tlError] = usePoll(() => get(`/users/${encodeURIComponent(name)}/timeline`), [name], 0);
  const entries = tl ? list(tl, 'timeline') : null;
  const riskPoints = tl && Array.isArray(tl.risk)
    ? tl.risk.map((p) => [Date.parse(p.time) / 1000, p.score !== undefined ? p.score : p.risk]) : [];
  const columns = [
    { key: 'time', label: 'Time', render: (e) => fmtTime(e.time) },
    { key: 'kind', label: 'What' },
    { key: 'text', label: 'Detail', render: (e) => e.text || e.detail || e.rule || '' },
  ];
  return html`<section><h1>User ${name}</h1><${ErrorLine} error=${error || tlError} />
    ${user && html`<dl class="summary"><dt>Risk</dt><dd>${fmtNum(score(user))}</dd>
      <dt>Raw sum</dt><dd>${fmtNum(user.raw !== undefined ? user.raw : user.risk_raw)}</dd></dl>`}
    <${Series} title="Risk over time" label="risk" points=${riskPoints} />
    <h2>Timeline</h2>
    <${Table} label="User timeline" columns=${columns} rows=${entries} empty="Nothing on this user's timeline." />
  </section>`;
}
