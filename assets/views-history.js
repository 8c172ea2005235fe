// views-history: the audit history, jobs (#/jobs) and events (#/events),
// newest first, paged with the API's "next" links, filtered by kind,
// subject, time, and state (jobs); new entries from the stream
// appear at the top of the first page without a reload.

import * as api from './api.js';
import { h, clear, tid, when } from './dom.js';
import { progress, cancelButton } from './jobs.js';

const LIMIT = 50;
const KEEP = 500; // rows the first page keeps as live entries arrive
const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

const MODES = {
  events: {
    title: 'Events',
    base: '/api/v1/events',
    key: 'events',
    columns: ['#', 'Time', 'Kind', 'Subject', 'Detail'],
    fields: [
      { name: 'kind', label: 'Kind', placeholder: 'service.* or artifact.removed' },
      { name: 'subject', label: 'Subject', placeholder: 'a coordinate or artifact' },
      { name: 'since', label: 'Since', type: 'datetime-local' },
    ],
    row: (e) => [h('td', { class: 'num' }, e.id), h('td', {}, when(e.time)),
      h('td', {}, h('code', {}, e.kind)), h('td', {}, e.subject || ''),
      h('td', { class: 'detail' }, detailText(e.detail))],
  },
  jobs: {
    title: 'Jobs',
    base: '/api/v1/jobs',
    key: 'jobs',
    columns: ['#', 'Kind', 'Subject', 'State', 'Progress', 'Created', 'Finished', 'Error', ''],
    fields: [
      { name: 'kind', label: 'Kind', placeholder: 'artifact.install' },
      { name: 'subject', label: 'Subject', placeholder: 'a coordinate or artifact' },
      { name: 'since', label: 'Since', type: 'datetime-local' },
      { name: 'state', label: 'State', options: JOB_STATES },
    ],
    row: (j, ctx) => [h('td', { class: 'num' }, j.id), h('td', {}, h('code', {}, j.kind)),
      h('td', {}, j.subject || ''), h('td', {}, h('span', { class: `state state-${j.state}` }, j.state)),
      h('td', {}, progress(j)), h('td', {}, when(j.created_at)), h('td', {}, when(j.finished_at)),
      h('td', { class: 'bad' }, j.error || ''),
      h('td', {}, cancelButton(j, ctx), j.state === 'failed' ? retryButton(j, ctx) : null)],
  },
};

function detailText(d) {
  if (d === null || d === undefined) return '';
  const t = typeof d === 'string' ? d : JSON.stringify(d);
  return t.length > 300 ? `${t.slice(0, 300)}…` : t;
}

function retryButton(j, ctx) {
  return h('button', { type: 'button', class: 'small', onclick: async () => {
    try {
      const n = await api.post(`/api/v1/jobs/${j.id}/retry`);
      ctx.note(`Job ${j.id} retried as job ${n.id}.`);
    } catch (err) { ctx.fail(err, `retry job ${j.id}`); }
  } }, 'Retry');
}

export function mount(main, ctx, which) {
  const mode = MODES[which];
  let gone = false;
  let path = null;        // the page shown
  const back = [];        // the pages before it
  let next = null;
  let filters = {};
  const missed = new Set(); // new live entries not shown (not on the first page)
  const rows = new Map(); // id -> <tr>

  const inputs = {};
  const form = tid(h('form', { class: 'toolbar', onsubmit: (e) => { e.preventDefault(); apply(); } },
    mode.fields.map((f) => {
      const id = `${which}-filter-${f.name}`;
      inputs[f.name] = f.options
        ? h('select', { id }, h('option', { value: '' }, 'any'), f.options.map((o) => h('option', { value: o }, o)))
        : h('input', { id, type: f.type || 'text', placeholder: f.placeholder || '', spellcheck: false });
      tid(inputs[f.name], id);
      return h('span', { class: 'field-inline' }, h('label', { for: id }, f.label), inputs[f.name]);
    }),
    tid(h('button', { type: 'submit', class: 'primary' }, 'Apply'), `${which}-apply`),
    h('button', { type: 'button', class: 'secondary', onclick: () => { form.reset(); apply(); } }, 'Clear')), `${which}-filters`);
  const info = tid(h('p', { class: 'count', 'aria-live': 'polite' }), `${which}-info`);
  const body = tid(h('tbody'), `${which}-rows`);
  const pager = h('div', { class: 'pager' });
  main.append(h('h1', {}, mode.title), form, info,
    h('div', { class: 'table-wrap' }, h('table', { class: which },
      h('thead', {}, h('tr', {}, mode.columns.map((t) => h('th', { scope: 'col' }, t)))), body)), pager);

  function apply() {
    filters = {};
    for (const [k, el] of Object.entries(inputs)) {
      if (!el.value) continue;
      filters[k] = k === 'since' ? String(new Date(el.value).getTime()) : el.value.trim();
    }
    const q = new URLSearchParams({ ...filters, limit: String(LIMIT) });
    back.length = 0;
    load(`${mode.base}?${q}`);
  }

  async function load(p) {
    try {
      const r = await api.get(p);
      if (gone) return;
      path = p;
      next = r.next;
      missed.clear();
      rows.clear();
      body.replaceChildren(...r[mode.key].map((x) => makeRow(x)));
      if (!r[mode.key].length) body.append(h('tr', {}, h('td', { colspan: mode.columns.length, class: 'muted' }, 'Nothing matches.')));
      renderPager();
    } catch (err) {
      if (!gone) ctx.fail(err, mode.title.toLowerCase());
    }
  }

  function makeRow(x, fresh) {
    const tr = tid(h('tr', { class: fresh ? 'new' : '' }, mode.row(x, ctx)), `${which}-row-${x.id}`);
    rows.set(x.id, tr);
    return tr;
  }

  function renderPager() {
    info.textContent = `${back.length ? `Page ${back.length + 1}` : 'Newest first'}${
      missed.size ? ` · ${missed.size} new since: go to the newest` : ''}`;
    clear(pager,
      tid(h('button', { type: 'button', disabled: !back.length && !missed.size, onclick: () => { back.length = 0; apply(); } }, '⇤ Newest'), `${which}-newest`),
      tid(h('button', { type: 'button', disabled: !back.length, onclick: () => load(back.pop()) }, '← Newer'), `${which}-newer`),
      tid(h('button', { type: 'button', disabled: !next, onclick: () => { back.push(path); load(next); } }, 'Older →'), `${which}-older`));
  }

  // The filters would let a live entry through.
  function matches(x) {
    if (filters.kind) {
      const k = filters.kind;
      if (k.endsWith('*') ? !x.kind.startsWith(k.slice(0, -1)) : x.kind !== k) return false;
    }
    if (filters.subject && x.subject !== filters.subject) return false;
    if (filters.state && x.state !== filters.state) return false;
    if (filters.since && (x.time || x.created_at) < Number(filters.since)) return false;
    return true;
  }

  // A live entry: a row shown is updated; a new one goes on top of the
  // first page (which keeps at most KEEP rows: the oldest make way, and
  // "Older" starts below what is shown) or is counted on the others.
  function live(x) {
    const old = rows.get(x.id);
    if (old) {
      const tr = makeRow(x);
      tr.className = old.className;
      old.replaceWith(tr);
      return;
    }
    if (rows.size && x.id < Math.max(...rows.keys())) return; // an old one not on this page
    if (!matches(x)) return;
    if (back.length) {
      missed.add(x.id);
      renderPager();
      return;
    }
    const empty = body.querySelector('td[colspan]');
    if (empty) empty.parentElement.remove();
    body.prepend(makeRow(x, true));
    if (rows.size > KEEP) {
      while (rows.size > KEEP) {
        const last = body.lastElementChild;
        rows.delete(Number(last.dataset.testid.split('-').pop()));
        last.remove();
      }
      const lastId = Math.min(...rows.keys());
      next = `${mode.base}?${new URLSearchParams({ ...filters, limit: String(LIMIT), before: String(lastId) })}`;
      renderPager();
    }
  }

  apply();
  return {
    unmount() { gone = true; },
    refetch() { if (path) load(path); },
    message(m) {
      if (which === 'events' && m.type === 'event') live(m.event);
      if (which === 'jobs' && m.type === 'job') live(m.job);
    },
  };
}
