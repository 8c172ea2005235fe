// views-service: one service's page (#/services/<coordinate>): its state
// and lifecycle buttons, its start spec (secrets as the API hides them)
// with an editor, its run history (/runs) and a live tail of stdout and
// stderr over the logs/follow WebSocket.

import * as api from './api.js';
import { h, clear, tid, duration, exitText, when, keepFocus } from './dom.js';
import { stateBadge, serviceActions, specEditor } from './service-ui.js';

const KEEP_LINES = 5000; // per pane

export function mount(main, ctx, coordinate) {
  let svc = null;
  let gone = false;
  const head = h('div', { class: 'title-row' }, h('h1', {}, coordinate));
  const facts = tid(h('div', { class: 'card' }, 'Loading…'), 'service-facts');
  const editorSlot = h('div');
  const spec = tid(h('pre', { class: 'spec' }), 'service-spec');
  const runs = tid(h('div', { class: 'table-wrap' }), 'service-runs');
  const panes = { stdout: logPane('stdout'), stderr: logPane('stderr') };
  main.append(h('p', {}, h('a', { href: '#/services' }, '← All services')), head, facts, editorSlot,
    h('section', {}, h('h2', {}, 'Logs'), h('div', { class: 'logs' }, panes.stdout.el, panes.stderr.el)),
    h('section', {}, h('h2', {}, 'Runs'), runs),
    h('section', {}, h('div', { class: 'title-row' }, h('h2', {}, 'Start spec'),
      tid(h('button', { type: 'button', onclick: edit }, 'Edit spec…'), 'service-edit')), spec));

  function edit() {
    if (!svc) return;
    clear(editorSlot, specEditor({ coordinate, spec: svc.spec,
      saved(s) { clear(editorSlot); show(s); loadRuns(); },
      cancel() { clear(editorSlot); } }));
  }

  const uptime = (s) => (s.started_at && s.pid ? duration((Date.now() - s.started_at) / 1000) : '–');

  function show(s) {
    svc = s;
    const row = (k, v, id) => [h('dt', {}, k), id ? tid(h('dd', {}, v), id) : h('dd', {}, v)];
    keepFocus(facts, () => clear(facts,
      h('div', { class: 'title-row' }, stateBadge(s, 'service-state'),
        serviceActions(s, ctx, (n) => {
          if (n) show(n); else { ctx.note(`${coordinate} was deleted.`); location.hash = '#/services'; }
        }, false)),
      h('dl', {},
        row('desired', s.desired_state, 'service-desired'),
        row('pid', s.pid || '–', 'service-pid'),
        row('uptime', uptime(s), 'service-uptime'),
        row('restarts', s.restarts, 'service-restarts'),
        row('artifact', s.artifact),
        row('uid', s.uid === null || s.uid === undefined ? '–' : `${s.uid}:${s.gid}`),
        row('last exit', s.last_exit ? [exitText(s.last_exit), ' at ', when(s.last_exit.at)] : '–'),
        s.job && row('job', h('a', { href: '#/jobs' }, `#${s.job}`)),
        row('created', when(s.created_at)), row('updated', when(s.updated_at))),
      s.reason ? tid(h('pre', { class: 'reason bad' }, s.reason), 'service-reason') : null));
    spec.textContent = JSON.stringify(s.spec, null, 2);
  }

  async function load() {
    try {
      const s = await api.get(api.svcPath(coordinate));
      if (!gone) show(s);
    } catch (err) {
      if (gone) return;
      clear(facts, h('p', { class: 'bad' }, err.status === 404 ? `There is no service ${coordinate}.` : err.message));
      ctx.fail(err, coordinate);
    }
  }

  async function loadRuns() {
    try {
      const r = await api.get(api.svcPath(coordinate, '/runs?limit=50'));
      if (gone) return;
      if (!r.runs.length) { clear(runs, h('p', { class: 'muted' }, 'No run yet.')); return; }
      clear(runs, h('table', {},
        h('thead', {}, h('tr', {}, ['Started', 'Ended', 'PID', 'Why', 'Exit', 'Artifact'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, r.runs.map((x) => tid(h('tr', {},
          h('td', {}, when(x.started_at)), h('td', {}, x.ended_at ? when(x.ended_at) : h('span', { class: 'good' }, 'running')),
          h('td', { class: 'num' }, x.pid), h('td', {}, x.reason),
          h('td', {}, x.ended_at ? exitText({ code: x.exit_code, signal: x.exit_signal }) : ''),
          h('td', {}, x.artifact || '')), `run-${x.id}`)))));
    } catch (err) {
      if (gone) return;
      clear(runs, h('p', { class: 'bad' }, err.message));
      if (err.status !== 404) ctx.fail(err, `${coordinate} runs`);
    }
  }

  // A pane that follows one log over its own WebSocket.
  function logPane(stream) {
    const status = tid(h('span', { class: 'muted' }, 'connecting…'), `log-status-${stream}`);
    const pre = tid(h('pre', { class: 'log', tabindex: 0, 'aria-label': `${stream} of ${coordinate}` }), `log-${stream}`);
    let lines = 0;
    const follow = new api.Socket(api.svcPath(coordinate, `/logs/follow?stream=${stream}&tail=200`), {
      open() {
        pre.replaceChildren();
        lines = 0;
        status.textContent = 'following';
        status.className = 'good';
      },
      message(m) {
        if (m.type === 'lines') append(m.text);
        else if (m.type === 'rotated') append('--- the log was rotated ---\n', 'marker');
        else if (m.type === 'error') {
          append(`--- ${m.detail} ---\n`, 'marker');
          ctx.fail(m.detail, `${coordinate} ${stream}`);
        }
      },
      lost({ retryIn }) {
        status.textContent = `connection lost: retrying in ${Math.round(retryIn / 1000)} s`;
        status.className = 'bad';
      },
    });
    function append(text, cls) {
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(cls ? h('span', { class: cls }, text) : document.createTextNode(text));
      lines += (text.match(/\n/g) || []).length;
      while (lines > KEEP_LINES && pre.firstChild) {
        lines -= (pre.firstChild.textContent.match(/\n/g) || []).length;
        pre.firstChild.remove();
      }
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    }
    const el = h('div', { class: 'log-pane' }, h('h3', {}, stream, ' ', status), pre);
    return { el, close: () => follow.close() };
  }

  load();
  loadRuns();
  const ticker = setInterval(() => {
    const el = facts.querySelector('[data-testid="service-uptime"]');
    if (svc && el) el.textContent = uptime(svc);
  }, 5000);
  return {
    unmount() { gone = true; clearInterval(ticker); panes.stdout.close(); panes.stderr.close(); },
    refetch() { load(); loadRuns(); },
    message(m) {
      if (m.type !== 'service' || m.coordinate !== coordinate) return;
      if (!m.service) {
        clear(facts, h('p', { class: 'bad' }, `${coordinate} was deleted.`));
        return;
      }
      const newRun = !svc || m.service.pid !== svc.pid || m.service.state !== svc.state;
      show(m.service);
      if (newRun) loadRuns();
    },
  };
}
