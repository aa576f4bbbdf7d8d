// chart.js - a time series drawn with uPlot (risk over time). Times are seconds since the
// epoch, as uPlot wants them; the chart sizes itself to its box once, which is all a page of
// this console needs.
import { html, useEffect, useRef } from './vendor/htm-preact.mjs';
import uPlot from './vendor/uplot.mjs';

export function Series({ title, points, label = 'value' }) {
  const box = useRef(null);
  useEffect(() => {
    if (!box.current || !points || points.length === 0) return undefined;
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    const plot = new uPlot({
      title, width: Math.max(320, box.current.clientWidth || 640), height: 220,
      scales: { x: { time: true } },
      series: [{}, { label, stroke: '#c0392b', width: 2, fill: 'rgba(192,57,43,0.08)' }],
    }, [xs, ys], box.current);
    return () => plot.destroy();
  }, [points]);
  if (!points || points.length === 0) return html`<p class="muted">No ${label} recorded yet.</p>`;
  return html`<div class="chart" ref=${box} role="img" aria-label=${title}></div>`;
}
