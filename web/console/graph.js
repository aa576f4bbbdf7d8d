// graph.js - the offense's investigation graph drawn with cytoscape.js from the server's
// `elements` JSON (GET /offenses/{id}/graph). Group nodes (a burst of instances) expand on
// click through the same route with ?expand=NODE; any other node pivots to a search on the
// field and value it stands for. The layout is computed once per load (breadthfirst from the
// principals), never animated, so that what the analyst sees does not move under the pointer.
import { html, useEffect, useRef, useState } from './vendor/htm-preact.mjs';
import cytoscape from './vendor/cytoscape.mjs';
import { get, qs } from './api.js';
import { ErrorLine, go } from './ui.js';

const COLORS = {
  user: '#c0392b', root: '#8e0000', role: '#d35400', access_key: '#e67e22', address: '#2471a3',
  user_agent: '#7f8c8d', region: '#16a085', instance: '#6c3483', instance_group: '#6c3483',
  interface: '#a569bd', domain: '#b7950b', pool_address: '#9a7d0a', indicator: '#1e8449', rule: '#34495e',
};

function elementsOf(data) {
  if (!data) return [];
  const e = data.elements || data;
  if (Array.isArray(e)) return e;
  return [...(e.nodes || []), ...(e.edges || [])];
}

export function pivotExpression(d) {
  if (!d.field || d.value === undefined) return null;
  const v = String(d.value).replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  return `${d.field} == "${v}"`;
}

export function Graph({ offense }) {
  const box = useRef(null);
  const [expand, setExpand] = useState([]);
  const [error, setError] = useState(null);
  const [info, setInfo] = useState(null);
  useEffect(() => {
    let cy = null;
    let live = true;
    get(`/offenses/${offense}/graph` + qs({ expand: expand.join(',') })).then((data) => {
      if (!live || !box.current) return;
      const elements = elementsOf(data);
      const nodes = elements.filter((x) => !x.data.source).map((x) => x.data);
      setInfo({ nodes, edges: elements.length - nodes.length });
      cy = cytoscape({
        container: box.current, elements, wheelSensitivity: 0.3,
        style: [
          { selector: 'node', style: {
            label: 'data(label)', 'font-size': 10, 'text-wrap': 'ellipsis', 'text-max-width': 120,
            'background-color': (n) => COLORS[n.data('type')] || '#555', width: 22, height: 22 } },
          { selector: 'node[count > 1]', style: { shape: 'round-rectangle', width: 34, height: 26,
            label: (n) => `${n.data('label')} ×${n.data('count')}` } },
          { selector: 'edge', style: { width: 1.2, 'line-color': '#aab', 'target-arrow-shape': 'triangle',
            'target-arrow-color': '#aab', 'curve-style': 'bezier', label: 'data(label)', 'font-size': 8 } },
        ],
        layout: { name: 'breadthfirst', directed: true, spacingFactor: 1.1, animate: false },
      });
      cy.on('tap', 'node', (ev) => {
        const d = ev.target.data();
        if (d.group || d.expandable) { setExpand((x) => (x.includes(d.id) ? x : [...x, d.id])); return; }
        const q = pivotExpression(d);
        if (q) go('#/search?q=' + encodeURIComponent(q));
      });
      box.current.dataset.ready = '1';
    }, (err) => live && setError(err));
    return () => { live = false; if (cy) cy.destroy(); };
  }, [offense, expand.join(',')]);
  return html`<div>
    <${ErrorLine} error=${error} />
    <div class="graph" ref=${box} role="img"
      aria-label=${info ? `Investigation graph: ${info.nodes.length} nodes, ${info.edges} edges` : 'Investigation graph'}></div>
    <p class="muted">Click a node to search its events; click a group to expand it.</p>
    ${info && html`<details class="graph-nodes"><summary>The graph's ${info.nodes.length} nodes as a list</summary>
      <ul>${info.nodes.map((d) => html`<li key=${d.id} data-type=${d.type}>${d.type}: ${d.label}${d.count > 1 ? ` (×${d.count})` : ''}
        ${pivotExpression(d) && html` <a href=${'#/search?q=' + encodeURIComponent(pivotExpression(d))}>search</a>`}</li>`)}</ul></details>`}
    </div>`;
}
