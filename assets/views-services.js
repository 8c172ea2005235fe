// views-services: every service of this node (#/services) in a table
// paged 100 rows at a time (so 1 000 services stay quick), narrowed by a
// filter box and a state choice, kept current by the stream's service
// messages; lifecycle buttons on each row and a "new service" editor.

import * as api from './api.js';
import { h, clear, tid, duration, exitText, serviceHref, keepFocus } from './dom.js';
import { stateBadge, serviceActions, specEditor } from './service-ui.js';

const PAGE = 100;
const byName = new Intl.Collator('en', { numeric: true }); // 2.x before 10.x
const STATES = ['running', 'starting', 'preparing', 'backoff', 'draining', 'stopping', 'stopped', 'exited', 'failed'];

export function mount(main, ctx) {
  const services = new Map(); // coordinate -> service
  let sorted = [];            // coordinates, sorted; rebuilt when the set changes
  let page = 0;
  let gone = false;
  let loaded = false;

  const filter = tid(h('input', { type: 'search', id: 'services-filter', placeholder: 'coordinate, artifact, state…',
    autocomplete: 'off', spellcheck: false, oninput: () => { page = 0; render(); } }), 'services-filter');
  const stateSel = tid(h('select', { id: 'services-state', onchange: () => { page = 0; render(); } },
    h('option', { value: '' }, 'any state'), STATES.map((s) => h('option', { value: s }, s))), 'services-state');
  const count = tid(h('p', { class: 'count', 'aria-live': 'polite' }, 'Loading…'), 'services-count');
  const editorSlot = h('div');
  const body = tid(h('tbody'), 'services-rows');
  const pager = h('div', { class: 'pager' });
  const newBtn = tid(h('button', { type: 'button', class: 'primary', onclick: openEditor }, 'New service…'), 'services-new');

  main.append(h('div', { class: 'title-row' }, h('h1', {}, 'Services'), newBtn), editorSlot,
    h('div', { class: 'toolbar' },
      h('span', { class: 'field-inline grow' }, h('label', { for: 'services-filter' }, 'Filter'), filter),
      h('span', { class: 'field-inline' }, h('label', { for: 'services-state' }, 'State'), stateSel), count),
    h('div', { class: 'table-wrap' }, tid(h('table', { class: 'services' },
      h('thead', {}, h('tr', {}, ['Coordinate', 'State', 'PID', 'Uptime', 'Restarts', 'Last exit', 'Reason', 'Actions']
        .map((t) => h('th', { scope: 'col' }, t)))), body), 'services-table')),
    pager);

  function openEditor() {
    newBtn.disabled = true;
    clear(editorSlot, specEditor({
      saved(s) {
        clear(editorSlot);
        newBtn.disabled = false;
        put(s);
        location.hash = serviceHref(s.coordinate);
      },
      cancel() { clear(editorSlot); newBtn.disabled = false; newBtn.focus(); },
    }));
  }

  function put(s) {
    if (!services.has(s.coordinate)) sorted = null;
    services.set(s.coordinate, s);
    schedule();
  }

  function matches() {
    const q = filter.value.trim().toLowerCase();
    const st = stateSel.value;
    if (!sorted) sorted = [...services.keys()].sort(byName.compare);
    const out = [];
    for (const c of sorted) {
      const s = services.get(c);
      if (st && s.state !== st) continue;
      if (q && !c.includes(q) && !(s.artifact || '').toLowerCase().includes(q) && s.state !== q) continue;
      out.push(s);
    }
    return out;
  }

  function row(s) {
    const c = s.coordinate;
    const up = s.started_at && ['running', 'starting', 'draining', 'stopping'].includes(s.state)
      ? duration((Date.now() - s.started_at) / 1000) : '–';
    // data-label: the column's name, shown beside each cell on a narrow screen.
    return tid(h('tr', {},
      h('th', { scope: 'row' }, tid(h('a', { href: serviceHref(c) }, c), `svc-link-${c}`)),
      h('td', { 'data-label': 'state' }, stateBadge(s, `svc-state-${c}`)),
      tid(h('td', { class: 'num', 'data-label': 'pid' }, s.pid || '–'), `svc-pid-${c}`),
      h('td', { class: 'num', 'data-label': 'uptime' }, up),
      tid(h('td', { class: 'num', 'data-label': 'restarts' }, s.restarts), `svc-restarts-${c}`),
      h('td', { 'data-label': 'last exit' }, exitText(s.last_exit)),
      h('td', { class: 'reason', 'data-label': 'reason', title: s.reason || '' }, s.reason ? s.reason.split('\n')[0] : ''),
      h('td', { class: 'row-actions' }, serviceActions(s, ctx, (n) => (n ? put(n) : drop(c))))), `svc-row-${c}`);
  }

  function drop(c) {
    services.delete(c);
    sorted = null;
    schedule();
  }

  function render() {
    if (gone || !loaded) return;
    const list = matches();
    const pages = Math.max(1, Math.ceil(list.length / PAGE));
    page = Math.min(page, pages - 1);
    const from = page * PAGE;
    const shown = list.slice(from, from + PAGE);
    keepFocus(body, () => body.replaceChildren(...shown.map(row)));
    if (!shown.length) {
      body.append(h('tr', {}, h('td', { colspan: 8, class: 'muted' },
        services.size ? 'No service matches the filter.' : 'No service yet: create one with "New service".')));
    }
    count.textContent = list.length === services.size
      ? `${services.size} service${services.size === 1 ? '' : 's'}`
      : `${list.length} of ${services.size} services match`;
    count.dataset.matching = String(list.length);
    clear(pager, pages > 1 && [
      tid(h('button', { type: 'button', disabled: page === 0, onclick: () => { page--; render(); } }, '← Previous'), 'services-prev'),
      tid(h('span', {}, `rows ${from + 1}–${from + shown.length} of ${list.length} · page ${page + 1} of ${pages}`), 'services-page'),
      tid(h('button', { type: 'button', disabled: page >= pages - 1, onclick: () => { page++; render(); } }, 'Next →'), 'services-next'),
    ]);
  }

  // Stream bursts (1 000 services changing) render at most 4 times a second.
  let pending = null;
  function schedule() {
    if (pending) return;
    pending = setTimeout(() => { pending = null; render(); }, 250);
  }

  async function refetch() {
    try {
      const r = await api.get('/api/v1/services');
      if (gone) return;
      services.clear();
      for (const s of r.services) services.set(s.coordinate, s);
      sorted = null;
      loaded = true;
      render();
    } catch (err) {
      if (!gone) { count.textContent = 'Could not load the services.'; ctx.fail(err, 'services'); }
    }
  }

  const ticker = setInterval(render, 5000); // uptimes
  refetch();
  return {
    unmount() { gone = true; clearInterval(ticker); clearTimeout(pending); },
    refetch,
    message(m) {
      if (m.type !== 'service' || !loaded) return;
      if (m.service) put(m.service); else drop(m.coordinate);
    },
  };
}
