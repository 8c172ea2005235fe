// chart: a small line chart as inline SVG built with DOM APIs, for the
// node's load and memory samples kept in the browser.

import { svg, h } from './dom.js';

const W = 300;
const H = 80;

// samples: [{t, v}] oldest first; opts: {max, label, format, testid}.
// Returns a <figure> with the SVG and the latest value as its caption.
export function lineChart(samples, opts) {
  const fig = h('figure', { class: 'chart', dataset: { testid: opts.testid } });
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', preserveAspectRatio: 'none',
    'aria-label': opts.label });
  const max = Math.max(opts.max || 0, ...samples.map((p) => p.v), 1e-9);
  for (const f of [0.25, 0.5, 0.75]) {
    s.append(svg('line', { x1: 0, x2: W, y1: H * f, y2: H * f, class: 'grid' }));
  }
  if (samples.length > 1) {
    const t0 = samples[0].t;
    const span = Math.max(samples[samples.length - 1].t - t0, 1);
    const pts = samples.map((p) => `${((p.t - t0) / span * W).toFixed(1)},${(H - p.v / max * (H - 2) - 1).toFixed(1)}`);
    s.append(svg('polygon', { points: `0,${H} ${pts.join(' ')} ${W},${H}`, class: 'area' }));
    s.append(svg('polyline', { points: pts.join(' '), class: 'line' }));
  }
  const last = samples.length ? samples[samples.length - 1].v : null;
  fig.append(s, h('figcaption', {}, h('span', {}, opts.label), ' ',
    h('strong', {}, last === null ? '–' : opts.format(last)),
    h('span', { class: 'muted' }, ` (scale ${opts.format(max)}, ${samples.length} samples)`)));
  return fig;
}
