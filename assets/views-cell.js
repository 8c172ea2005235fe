// views-cell: every node of this node's cell (#/cell) from
// /api/v1/cell/nodes (ZooKeeper's view, refreshed every 5 s): status,
// version, service counts by state and a link to each node's console,
// with a warning while the view is stale.

import * as api from './api.js';
import { h, clear, tid, when } from './dom.js';

export function mount(main, ctx) {
  let gone = false;
  let timer = null;
  const status = tid(h('div', { class: 'cell-status' }, 'Loading…'), 'cell-status');
  const table = tid(h('div', { class: 'table-wrap' }), 'cell-table');
  main.append(h('h1', {}, 'Cell'), status, table);

  async function load() {
    clearTimeout(timer);
    try {
      const c = await api.get('/api/v1/cell/nodes');
      if (gone) return;
      render(c);
    } catch (err) {
      if (gone) return;
      // Standalone (503) is a state of the node, not a failure of the page.
      clear(status, tid(h('p', { class: err.status === 503 ? 'notice' : 'bad' }, err.detail || err.message), 'cell-error'));
      clear(table);
      if (err.status !== 503) ctx.fail(err, 'cell');
    }
    if (!gone) timer = setTimeout(load, 5000);
  }

  function render(c) {
    clear(status,
      h('p', {}, `Cell `, h('strong', {}, c.cell), `: ${c.nodes.length} node(s); ZooKeeper `,
        h('span', { class: `state state-${c.registry}` }, c.registry), ', as of ', when(c.as_of)),
      c.stale ? tid(h('p', { class: 'stale' }, 'Stale: this node is not connected to ZooKeeper, '
        + 'so this is the last known view and may be out of date.'), 'cell-stale') : null);
    if (!c.nodes.length) { clear(table, h('p', { class: 'muted' }, 'No node is registered.')); return; }
    clear(table, h('table', {},
      h('thead', {}, h('tr', {}, ['Instance', 'Status', 'Version', 'Services', 'By state', 'Updated', 'Console']
        .map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, c.nodes.map((n) => {
        const d = n.data || {};
        const states = Object.entries(d.service_states || {}).filter(([, v]) => v);
        return tid(h('tr', { class: n.self ? 'self' : '' },
          h('th', { scope: 'row' }, n.instance, n.self ? h('span', { class: 'muted' }, ' (this node)') : null),
          h('td', {}, h('span', { class: `state state-${d.status}` }, d.status || '?')),
          h('td', { title: `ZooKeeper data version ${n.version}` }, d.version || '?'),
          h('td', { class: 'num' }, d.services_total ?? ''),
          h('td', {}, states.length ? states.map(([k, v]) => h('span', { class: `state state-${k} chip` }, `${k} ${v}`)) : '–'),
          h('td', {}, when(d.updated_at || n.modified_at)),
          h('td', {}, /^https?:\/\//.test(d.console || '') ? h('a', { href: d.console, rel: 'noopener' }, d.console) : '–')),
        `cell-node-${n.instance}`);
      }))));
  }

  load();
  return { unmount() { gone = true; clearTimeout(timer); }, refetch: load };
}
