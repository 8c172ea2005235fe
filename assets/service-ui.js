// service-ui: the pieces the services list and a service's page share:
// the coloured state, the lifecycle buttons (start, stop, drain, restart,
// delete with a separate purge choice, each asked first but start) and
// the JSON start-spec editor that shows the API's validation message
// beside it.

import * as api from './api.js';
import { h, tid } from './dom.js';

export function stateBadge(s, id) {
  const el = h('span', { class: `state state-${s.state}`, title: `desired: ${s.desired_state}` }, s.state);
  return id ? tid(el, id) : el;
}

const UP = ['running', 'starting', 'preparing', 'draining', 'stopping'];
const DOWN = ['stopped', 'exited', 'failed'];

const ASK = {
  stop: ['Stop', 'It gets its stop signal, then SIGKILL after the stop timeout; it stays stopped.'],
  drain: ['Drain', 'It gets its drain signal (or drain command) and is stopped after the drain timeout or when it exits.'],
  restart: ['Restart', 'It is stopped and started again.'],
};

// Buttons for service s; done(service|null) is called with the API's
// answer (null after a delete); errors go to ctx.fail.
export function serviceActions(s, ctx, done, small = true) {
  const c = s.coordinate;
  const cls = small ? 'small' : '';
  const act = async (op) => {
    if (ASK[op]) {
      const ok = await ctx.confirm({ title: `${ASK[op][0]} ${c}?`, text: ASK[op][1],
        choices: [{ label: ASK[op][0], value: op, danger: op !== 'restart' }] });
      if (!ok) return;
    }
    try {
      done(await api.post(api.svcPath(c, `/${op}`)));
    } catch (err) { ctx.fail(err, `${op} ${c}`); }
  };
  const remove = async () => {
    const how = await ctx.confirm({ title: `Delete ${c}?`,
      text: 'It is stopped and forgotten. Purge also deletes its runtime directory '
        + '(its data and logs) and ends every process left under its uid: that cannot be undone.',
      choices: [{ label: 'Delete, keep its files', value: 'delete', danger: true },
        { label: 'Delete and PURGE its files', value: 'purge', danger: true }] });
    if (!how) return;
    try {
      await api.del(api.svcPath(c, how === 'purge' ? '?purge=true' : ''));
      done(null);
    } catch (err) { ctx.fail(err, `delete ${c}`); }
  };
  const b = (op, label, disabled, onclick, extra = '') => tid(h('button', {
    type: 'button', class: `${cls} ${extra}`.trim(), disabled, onclick: onclick || (() => act(op)),
    'aria-label': `${label} ${c}` }, label), `${op}-${c}`);
  return h('span', { class: 'buttons' },
    b('start', 'Start', ['running', 'starting', 'preparing'].includes(s.state)),
    b('stop', 'Stop', DOWN.includes(s.state) && s.desired_state !== 'running'),
    b('drain', 'Drain', !UP.includes(s.state) || s.state === 'stopping'),
    b('restart', 'Restart', false),
    b('delete', 'Delete…', false, remove, 'danger'));
}

const TEMPLATE = `{
  "artifact": "com.example:hello:1.0.0",
  "command": "bin/start",
  "restart": {"policy": "on-failure"},
  "drain": {"signal": "TERM", "timeout_s": 30}
}`;

// The start-spec editor: a coordinate field (for a new service) and the
// spec as JSON.  saved(service) after a PUT the API accepted; cancel().
export function specEditor({ coordinate, spec, saved, cancel }) {
  const errBox = tid(h('p', { class: 'form-error', id: 'spec-error', role: 'alert' }), 'spec-error');
  const coord = coordinate ? null : tid(h('input', { id: 'spec-coordinate', required: true,
    placeholder: 'instance.service.user.cell', autocomplete: 'off', spellcheck: false,
    'aria-describedby': 'spec-error' }), 'spec-coordinate');
  const text = tid(h('textarea', { id: 'spec-text', rows: 16, spellcheck: false,
    'aria-describedby': 'spec-error spec-hint' }), 'spec-text');
  text.value = spec ? JSON.stringify(spec, null, 2) : TEMPLATE;
  const hidden = text.value.includes('"(hidden)"');
  const urls = spec && (spec.prepare || spec.snapshot);
  const form = tid(h('form', { class: 'spec-editor', onsubmit: submit },
    h('h2', {}, coordinate ? `Edit the start spec of ${coordinate}` : 'New service'),
    coord && h('div', { class: 'field' }, h('label', { for: 'spec-coordinate' }, 'Coordinate'), coord),
    h('div', { class: 'editor-row' },
      h('div', { class: 'field grow' }, h('label', { for: 'spec-text' }, 'Start spec (JSON)'), text),
      h('div', { class: 'editor-side' }, errBox,
        h('p', { class: 'hint', id: 'spec-hint' }, 'Saving replaces the spec and (re)starts the service. ',
          hidden ? 'Values reading "(hidden)" are secrets the API does not show: type them again before saving. ' : '',
          urls ? 'URLs are shown without user information or query string: give them whole again.' : ''))),
    h('div', { class: 'buttons' },
      tid(h('button', { type: 'submit', class: 'primary' }, coordinate ? 'Save and restart' : 'Create and start'), 'spec-save'),
      h('button', { type: 'button', class: 'secondary', onclick: cancel }, 'Cancel'))), 'spec-editor');

  async function submit(e) {
    e.preventDefault();
    errBox.textContent = '';
    const c = coordinate || coord.value.trim();
    let body;
    try {
      body = JSON.parse(text.value);
    } catch (err) {
      errBox.textContent = `The spec is not JSON: ${err.message}`;
      text.focus();
      return;
    }
    try {
      saved(await api.put(api.svcPath(c), body));
    } catch (err) {
      errBox.textContent = err.detail || err.message;
      (coord && /coordinate/.test(errBox.textContent) ? coord : text).focus();
    }
  }
  setTimeout(() => (coord || text).focus(), 0);
  return form;
}
