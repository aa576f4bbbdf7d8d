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

// A timeline table: firsts, rule hits and offenses (docs/INVESTIGATION.md), as the user page
// and the offense page show them.
export function Timeline({ label, entries, empty }) {
  const what = (e) => (e.type === 'first_seen' ? `first ${e.kind.replace('_', ' ')}` : e.type);
  const detail = (e) => {
    if (e.type === 'first_seen') return e.value;
    if (e.type === 'rule') return e.delta !== undefined ? html`${e.rule} (+${e.delta}, risk ${e.risk})` : e.rule;
    if (e.type === 'offense') return html`<a href=${'#/offenses/' + e.offense}>offense ${e.offense}</a> magnitude ${e.magnitude}${e.via ? ` (${e.via})` : ''}`;
    return e.value || '';
  };
  const columns = [
    { key: 'time', label: 'Time', render: (e) => fmtTime(e.time) },
    { key: 'type', label: 'What', render: what },
    { key: 'detail', label: 'Detail', render: detail },
  ];
  return html`<${Table} label=${label} columns=${columns} rows=${entries} empty=${empty} />`;
}

export function UserPage({ name }) {
  const [user, error] = usePoll(() => get('/users/' + encodeURIComponent(name)), [name], 0);
  const [tl, tlError] = usePoll(() => get(`/users/${encodeURIComponent(name)}/timeline`), [name], 0);
  // Risk over time is the score after each rule hit.
  const entries = tl ? list(tl, 'timeline') : null;
  const riskPoints = entries ? entries.filter((e) => e.type === 'rule' && e.risk !== undefined)
    .map((e) => [Date.parse(e.time) / 1000, e.risk]).sort((a, b) => a[0] - b[0]) : [];
  const risk = tl && tl.risk;
  return html`<section><h1>User ${name}</h1><${ErrorLine} error=${error || tlError} />
    ${risk && html`<dl class="summary"><dt>Risk (0-100)</dt><dd>${fmtNum(risk.score)}${risk.stands_out ? ' — stands out' : ''}</dd>
      <dt>Raw sum</dt><dd>${fmtNum(risk.raw)}</dd><dt>Population threshold</dt><dd>${fmtNum(risk.threshold)}</dd>
      ${tl.lineage && tl.lineage.parent && html`<dt>Created by</dt><dd><a href=${'#/users/' + encodeURIComponent(tl.lineage.parent.name)}>${tl.lineage.parent.name}</a> (${tl.lineage.parent.relation})</dd>`}</dl>`}
    ${user && user.hits && html`<p class="muted">${user.hits.length} recent rule hits.</p>`}
    <${Series} title="Risk over time" label="risk" points=${riskPoints} />
    <h2>Timeline</h2>
    <${Timeline} label="User timeline" entries=${entries} empty="Nothing on this user's timeline." />
  </section>`;
}
