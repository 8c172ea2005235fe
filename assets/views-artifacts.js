// views-artifacts: installed artifacts (#/artifacts) with size, files,
// verification and the services using them; an install form; every
// queued or running job of this node with a live progress bar (from the
// stream's job messages) and cancel; removal after a confirmation, with
// the API's reason when it refuses (409: in use).

import * as api from './api.js';
import { h, clear, tid, bytes, when, batched, serviceHref } from './dom.js';
import { progress, cancelButton, active } from './jobs.js';

export function mount(main, ctx) {
  // Every job heard of, newest state; shown: the finished ones started or
  // watched from this page (active ones are always shown).
  const jobs = new Map();
  const shown = new Set();
  let artifacts = [];
  let gone = false;

  const coord = tid(h('input', { id: 'install-artifact', name: 'artifact', required: true,
    placeholder: 'com.example:hello:1.0.0', autocomplete: 'off', spellcheck: false }), 'install-artifact');
  const url = tid(h('input', { id: 'install-url', name: 'url', type: 'url',
    placeholder: 'default: the depot' }), 'install-url');
  const sha = tid(h('input', { id: 'install-sha256', name: 'sha256', pattern: '[0-9a-fA-F]{64}',
    placeholder: 'optional', spellcheck: false }), 'install-sha256');
  const formError = tid(h('p', { class: 'form-error', role: 'alert', id: 'install-error' }), 'install-error');
  const form = tid(h('form', { class: 'inline-form', onsubmit: install },
    h('div', { class: 'field' }, h('label', { for: 'install-artifact' }, 'Artifact (group:artifact:version)'), coord),
    h('div', { class: 'field' }, h('label', { for: 'install-url' }, 'URL'), url),
    h('div', { class: 'field' }, h('label', { for: 'install-sha256' }, 'SHA-256'), sha),
    h('div', { class: 'field' }, tid(h('button', { type: 'submit', class: 'primary' }, 'Install'), 'install-submit')),
    formError), 'install-form');
  const jobList = tid(h('div', { class: 'job-list' }), 'artifact-jobs');
  const table = tid(h('div', { class: 'table-wrap' }), 'artifact-table');
  main.append(h('h1', {}, 'Artifacts'),
    h('section', { class: 'card' }, h('h2', {}, 'Install'), form),
    h('section', {}, h('h2', {}, 'Jobs'), jobList),
    h('section', {}, h('h2', {}, 'Installed'), table));

  async function install(e) {
    e.preventDefault();
    formError.textContent = '';
    const body = { artifact: coord.value.trim() };
    if (url.value.trim()) body.url = url.value.trim();
    if (sha.value.trim()) body.sha256 = sha.value.trim().toLowerCase();
    try {
      const r = await api.post('/api/v1/artifacts', body);
      if (r && r.kind) { // 202: a job; a stream message may have told of it already
        if (!jobs.has(r.id)) jobs.set(r.id, r);
        shown.add(r.id);
        renderJobs();
      } else {
        ctx.note(`${body.artifact} is installed already.`);
      }
      form.reset();
    } catch (err) {
      formError.textContent = err.detail || err.message;
      coord.focus();
    }
  }

  async function remove(a) {
    const ok = await ctx.confirm({ title: `Remove ${a.coordinate}?`,
      text: `Its files under ${a.path} are deleted. Services using it cannot start afterwards.`,
      choices: [{ label: 'Remove', value: 'remove', danger: true }] });
    if (!ok) return;
    try {
      const j = await api.del(api.artifactPath(a.coordinate));
      if (j && j.id) {
        if (!jobs.has(j.id)) jobs.set(j.id, j);
        shown.add(j.id);
        renderJobs();
      }
    } catch (err) {
      ctx.fail(err, `remove ${a.coordinate}`);
    }
  }

  const renderJobs = batched(() => {
    if (gone) return;
    const list = [...jobs.values()].filter((j) => active(j) || shown.has(j.id))
      .sort((x, y) => y.id - x.id);
    if (!list.length) { clear(jobList, h('p', { class: 'muted' }, 'No job is queued or running.')); return; }
    clear(jobList, list.map((j) => tid(h('div', { class: `job-card job-${j.state}` },
      h('div', { class: 'job-head' },
        h('strong', {}, `#${j.id} ${j.kind}`), ' ', h('span', {}, j.subject), ' ',
        tid(h('span', { class: `state state-${j.state}` }, j.state), `job-state-${j.id}`), ' ',
        cancelButton(j, ctx)),
      progress(j),
      j.error ? h('p', { class: 'bad' }, j.error) : null), `job-${j.id}`)));
  });

  function renderTable() {
    if (!artifacts.length) { clear(table, h('p', { class: 'muted' }, 'No artifact is installed.')); return; }
    clear(table, h('table', {},
      h('thead', {}, h('tr', {}, ['Artifact', 'Size', 'Files', 'Verified', 'Installed', 'Used by', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, artifacts.map((a) => tid(h('tr', {},
        h('td', {}, h('code', {}, a.coordinate)),
        h('td', { class: 'num' }, bytes(a.size_bytes)),
        h('td', { class: 'num' }, a.file_count),
        h('td', {}, h('span', { class: a.verified === 'none' ? 'muted' : 'good', title: a.sha256 || '' }, a.verified)),
        h('td', {}, when(a.installed_at)),
        h('td', {}, (a.services || []).length
          ? (a.services).map((c, i) => [i ? ', ' : '', h('a', { href: serviceHref(c) }, c)])
          : h('span', { class: 'muted' }, 'none')),
        h('td', {}, tid(h('button', { type: 'button', class: 'small danger', onclick: () => remove(a) },
          'Remove…'), `remove-${a.coordinate}`))), `artifact-${a.coordinate}`)))));
  }

  async function refetch() {
    try {
      const [list, running, queued] = await Promise.all([api.get('/api/v1/artifacts'),
        api.get('/api/v1/jobs?state=running&limit=100'), api.get('/api/v1/jobs?state=queued&limit=100')]);
      if (gone) return;
      artifacts = list.artifacts.sort((x, y) => x.coordinate.localeCompare(y.coordinate));
      const now = new Set();
      for (const j of [...running.jobs, ...queued.jobs]) { jobs.set(j.id, j); shown.add(j.id); now.add(j.id); }
      // Those that ended while we did not listen: how they ended.
      const ended = [...jobs.values()].filter((j) => active(j) && !now.has(j.id));
      for (const j of await Promise.all(ended.map((x) => api.get(`/api/v1/jobs/${x.id}`)))) jobs.set(j.id, j);
      renderTable();
      renderJobs();
    } catch (err) {
      if (!gone) ctx.fail(err, 'artifacts');
    }
  }

  const refetchSoon = (() => {
    let t = null;
    return () => { clearTimeout(t); t = setTimeout(refetch, 150); };
  })();

  refetch();
  return {
    unmount() { gone = true; },
    refetch,
    message(m) {
      if (m.type !== 'job') return;
      const j = m.job;
      jobs.set(j.id, j);
      if (active(j)) shown.add(j.id);
      if (!shown.has(j.id)) return;
      renderJobs();
      if (!active(j) && j.kind.startsWith('artifact.')) refetchSoon();
    },
  };
}
