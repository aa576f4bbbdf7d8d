// ui.js - small pieces every page shares: time and number formats, the magnitude bar, a
// sortable table, an error line and a polling hook. Kept framework-thin (preact + htm, no
// build step) so that what the browser runs is what is in the repository.
import { html, useEffect, useRef, useState } from './vendor/htm-preact.mjs';

export function fmtTime(t) {
  if (t === undefined || t === null || t === '') return '';
  const d = typeof t === 'number' ? new Date(t > 1e12 ? t : t * 1000) : new Date(t);
  if (isNaN(d)) return String(t);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export const fmtNum = (n) => (n === undefined || n === null ? '' : Number(n).toLocaleString('en-US'));

export function Magnitude({ value }) {
  const v = Math.max(0, Math.min(10, Number(value) || 0));
  const cls = v >= 7 ? 'high' : v >= 4 ? 'mid' : 'low';
  return html`<span class="mag" title=${'magnitude ' + v} aria-label=${'magnitude ' + v}>
    <span class=${'mag-bar ' + cls} style=${{ width: v * 10 + '%' }}></span>
    <span class="mag-num">${v}</span></span>`;
}

export function ErrorLine({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message || String(error)}</p>`;
}

// Re-run fn every `ms` while the page is visible; returns [data, error, reload]. reload's promise
// settles once the answer is in the state, so a caller can show a message beside it.
export function usePoll(fn, deps, ms) {
  const [state, setState] = useState({ data: null, error: null });
  const gen = useRef(0);
  const load = () => {
    const g = ++gen.current;
    return fn().then((data) => g === gen.current && setState({ data, error: null }),
      (error) => g === gen.current && setState((s) => ({ data: s.data, error })));
  };
  useEffect(() => {
    load();
    if (!ms) return undefined;
    const t = setInterval(() => { if (!document.hidden) load(); }, ms);
    return () => clearInterval(t);
  }, deps);
  return [state.data, state.error, load];
}

// columns: [{key, label, render?(row), sort?: false, num?: true}]
export function Table({ columns, rows, sort, onSort, onRow, rowKey, empty = 'Nothing here.', label }) {
  if (!rows) return html`<p class="muted">Loading…</p>`;
  if (rows.length === 0) return html`<p class="muted">${empty}</p>`;
  const head = (c) => {
    if (!onSort || c.sort === false) return html`<th scope="col">${c.label}</th>`;
    const dir = sort === c.key ? 'ascending' : sort === '-' + c.key ? 'descending' : 'none';
    const next = sort === '-' + c.key ? c.key : '-' + c.key;
    return html`<th scope="col" aria-sort=${dir}>
      <button class="link" onClick=${() => onSort(next)}>${c.label}${dir === 'ascending' ? ' ▲' : dir === 'descending' ? ' ▼' : ''}</button></th>`;
  };
  return html`<table class="grid" aria-label=${label}>
    <thead><tr>${columns.map(head)}</tr></thead>
    <tbody>${rows.map((r, i) => html`<tr key=${rowKey ? rowKey(r) : i}
        class=${onRow ? 'clickable' : ''} tabindex=${onRow ? 0 : undefined}
        onClick=${onRow ? () => onRow(r) : undefined}
        onKeyDown=${onRow ? (e) => e.key === 'Enter' && onRow(r) : undefined}>
      ${columns.map((c) => html`<td class=${c.num ? 'num' : ''}>${c.render ? c.render(r) : r[c.key]}</td>`)}
    </tr>`)}</tbody></table>`;
}

export function go(hash) { window.location.hash = hash; }
