// views-node: this node at a glance (#/node): instance, cell, version,
// uptime, ZooKeeper state and machine facts, with live charts of load and
// memory sampled from /api/v1/node every 3 s while the page is open and
// kept in the browser for the last 10 minutes.

import * as api from './api.js';
import { h, clear, tid, bytes, duration, when } from './dom.js';
import { lineChart } from './chart.js';

const EVERY_MS = 3000;
const KEEP_MS = 10 * 60 * 1000;
const load = [];   // {t, v}: 1-minute load average
const memory = []; // {t, v}: bytes in use

export function mount(main, ctx) {
  const facts = tid(h('div', { class: 'facts' }), 'node-facts');
  const charts = h('div', { class: 'charts' });
  const actions = h('div', { class: 'actions' },
    tid(h('button', { type: 'button', class: 'warn', onclick: drainNode }, 'Drain this node…'), 'node-drain'));
  main.append(h('h1', {}, 'Node'), facts, h('h2', {}, 'Load and memory'), charts, actions);
  let timer = null;
  let gone = false;

  async function drainNode() {
    const ok = await ctx.confirm({ title: 'Drain this node?',
      text: 'The node is marked draining in ZooKeeper and every running service is drained.',
      choices: [{ label: 'Drain the node', value: 'drain', danger: true }] });
    if (!ok) return;
    try {
      const r = await api.post('/api/v1/node/drain');
      ctx.note(`Node draining: ZooKeeper ${r.zookeeper}, ${r.services.length} service(s) drained.`);
    } catch (err) { ctx.fail(err, 'drain node'); }
  }

  async function sample() {
    timer = null;
    try {
      const n = await api.get('/api/v1/node');
      if (gone) return;
      const t = Date.now();
      const m = n.machine || {};
      if (m.load) load.push({ t, v: m.load[0] });
      if (m.memory_total_bytes) memory.push({ t, v: m.memory_total_bytes - m.memory_available_bytes });
      for (const a of [load, memory]) while (a.length && a[0].t < t - KEEP_MS) a.shift();
      render(n);
    } catch (err) {
      if (!gone) ctx.fail(err, 'node');
    }
    if (!gone) timer = setTimeout(sample, EVERY_MS);
  }

  function render(n) {
    const m = n.machine || {};
    const r = n.registry || {};
    const row = (k, v, id) => [h('dt', {}, k), id ? tid(h('dd', {}, v), id) : h('dd', {}, v)];
    clear(facts,
      h('section', { class: 'card' }, h('h2', {}, 'Daemon'), h('dl', {},
        row('instance', n.instance, 'node-instance'), row('cell', n.cell, 'node-cell'),
        row('version', n.version, 'node-version'), row('uptime', duration(n.uptime_s), 'node-uptime'),
        row('started', when(n.started_at)), row('pid', n.pid),
        row('listen', n.listen), row('prefix', n.prefix))),
      h('section', { class: 'card' }, h('h2', {}, 'ZooKeeper'), h('dl', {},
        row('state', h('span', { class: `state state-${r.state}` }, r.state), 'node-zk-state'),
        row('status', r.status), row('registered', r.registered ? 'yes' : 'no'),
        r.zookeeper && row('ensemble', r.zookeeper), r.path && row('path', r.path),
        r.session && row('session', r.session),
        r.session_timeout_ms && row('session timeout', `${r.session_timeout_ms} ms`),
        r.session_since && row('session since', when(r.session_since)),
        r.registered_at && row('registered at', when(r.registered_at)),
        r.writes !== undefined && row('writes', r.writes),
        r.last_write_at && row('last write', when(r.last_write_at)),
        r.error && row('error', h('span', { class: 'bad' }, r.error)))),
      h('section', { class: 'card' }, h('h2', {}, 'Machine'), h('dl', {},
        row('cores', m.cores),
        row('memory', `${bytes(m.memory_available_bytes)} free of ${bytes(m.memory_total_bytes)}`),
        row('load', (m.load || []).map((x) => x.toFixed(2)).join(' / ')),
        row('machine uptime', duration(m.uptime_s)),
        m.kernel && row('kernel', `${m.kernel.name} ${m.kernel.release} ${m.kernel.machine}`))));
    clear(charts,
      lineChart(load, { label: 'load (1 min)', max: m.cores || 1, format: (v) => v.toFixed(2), testid: 'chart-load' }),
      lineChart(memory, { label: 'memory in use', max: m.memory_total_bytes, format: bytes, testid: 'chart-memory' }));
  }

  sample();
  return {
    unmount() { gone = true; clearTimeout(timer); },
    refetch() { if (!timer) return; clearTimeout(timer); sample(); },
  };
}
