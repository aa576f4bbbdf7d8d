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
  user: '#c0392b', root: '#8e0000', role: '#d35400', service: '#a04000', access_key: '#e67e22',
  address: '#2471a3', user_agent: '#7f8c8d', region: '#16a085', instance: '#6c3483',
  instance_group: '#6c3483', interface: '#a569bd', private_address: '#a569bd', domain: '#b7950b',
  indicator: '#1e8449', rule: '#34495e', summary: '#95a5a6',
};

// The event field a node stands for, so that a click searches its events (node ids are
// KIND-PREFIX:VALUE, docs/INVESTIGATION.md).
const PIVOT = {
  user: 'user.name', root: 'user.name', access_key: 'user.access_key_id',
  address: 'source.ip', user_agent: 'user_agent.original', region: 'cloud.region',
  instance: 'cloud.instance.id', interface: 'network.interface.id', private_address: 'source.ip',
  domain: 'dns.question.name',
};

function elementsOf(data) {
  if (!data) return [];
  const e = data.elements || data; // {offense, elements: {nodes, edges}, summary}
  if (Array.isArray(e)) return e;
  return [...(e.nodes || []), ...(e.edges || [])];
}

export function pivotExpression(d) {
  const field = PIVOT[d.kind];
  const colon = d.id.indexOf(':');
  if (!field || colon < 0) return null;
  const v = d.id.slice(colon + 1).replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  return `${field} == "${v}"`;
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
            'background-color': (n) => COLORS[n.data('kind')] || '#555', width: 22, height: 22 } },
          { selector: 'node[kind = "instance_group"]', style: { shape: 'round-rectangle', width: 40, height: 28 } },
          { selector: 'edge', style: { width: 1.2, 'line-color': '#aab', 'target-arrow-shape': 'triangle',
            'target-arrow-color': '#aab', 'curve-style': 'bezier', label: 'data(label)', 'font-size': 8 } },
        ],
        layout: { name: 'breadthfirst', directed: true, spacingFactor: 1.1, animate: false },
      });
      cy.on('tap', 'node', (ev) => {
        const d = ev.target.data();
        if (d.kind === 'instance_group') { setExpand([d.id]); return; }
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
      <ul>${info.nodes.map((d) => html`<li key=${d.id} data-kind=${d.kind}>${d.kind}: ${d.label}${d.members_count ? ` (×${d.members_count})` : ''}
        ${pivotExpression(d) && html` <a href=${'#/search?q=' + encodeURIComponent(pivotExpression(d))}>search</a>`}</li>`)}</ul></details>`}
    </div>`;
}
