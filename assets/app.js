// app: the console's shell.  It logs in (a session cookie from POST
// /login), routes #/... hashes to views, shows every error in one visible
// area, and keeps the live stream (/api/v1/stream) open: a lost stream is
// shown in a banner, retried with back-off, and the view refetched once
// it is back.  A view is mount(main, ctx, arg) -> {unmount, message, refetch}.

import * as api from './api.js';
import { h, clear, tid } from './dom.js';
import * as nodeView from './views-node.js';
import * as artifactsView from './views-artifacts.js';
import * as servicesView from './views-services.js';
import * as serviceView from './views-service.js';
import * as historyView from './views-history.js';
import * as cellView from './views-cell.js';

const $ = (id) => document.getElementById(id);
const main = $('main');

let view = null;     // the mounted view
let stream = null;   // the api.Socket of /api/v1/stream
let lostSince = 0;   // when the stream was lost, 0 while connected
let loggedIn = false;

// ------------------------------------------------------------- errors

// Shows an error to the user; the same text again only counts up.  note()
// shows news (a done action) the same way, without the alarm.
function fail(err, where, kind = 'error') {
  const text = `${where ? `${where}: ` : ''}${err instanceof Error ? err.message : String(err)}`;
  const box = $('errors');
  for (const item of box.children) {
    if (item.dataset.text === text) {
      item.dataset.count = String(Number(item.dataset.count) + 1);
      item.querySelector('.count').textContent = `×${item.dataset.count}`;
      return;
    }
  }
  const item = tid(h('div', { class: kind },
    h('span', { class: 'msg' }, text), ' ', h('span', { class: 'count' }),
    h('button', { type: 'button', class: 'small', 'aria-label': 'Dismiss',
      onclick: () => item.remove() }, 'Dismiss')), kind);
  item.dataset.text = text;
  item.dataset.count = '1';
  box.append(item);
  while (box.children.length > 6) box.firstElementChild.remove();
}

window.addEventListener('unhandledrejection', (e) => fail(e.reason, 'unexpected'));
window.addEventListener('error', (e) => fail(e.message, 'script error'));

const note = (text) => fail(text, '', 'note');

// ------------------------------------------------------------ dialogs

// Asks the user; choices [{label, value, danger}]; resolves with the
// value chosen, or null for Cancel (and Escape).
function confirm({ title, text, choices }) {
  const dlg = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text || '';
  const buttons = choices.map((c) => tid(h('button', {
    value: c.value, class: c.danger ? 'danger' : 'primary' }, c.label), `confirm-${c.value}`));
  const cancel = tid(h('button', { value: '', class: 'secondary' }, 'Cancel'), 'confirm-cancel');
  clear($('confirm-buttons'), cancel, buttons);
  dlg.returnValue = '';
  dlg.showModal();
  cancel.focus();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue || null), { once: true });
  });
}

// -------------------------------------------------------------- login

function showLogin(message) {
  loggedIn = false;
  lostSince = 0;
  if (view) { view.unmount(); view = null; }
  if (stream) { stream.close(); stream = null; }
  clear(main);
  $('top').hidden = true;
  $('banner').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('login-token').focus();
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const token = $('login-token').value.trim();
  $('login-error').textContent = '';
  try {
    await api.post('/login', { token }, { quiet401: true });
  } catch (err) {
    const d = err.detail;
    $('login-error').textContent = err.status === 401
      ? (d ? `${d[0].toUpperCase()}${d.slice(1)}` : 'The token is wrong.')
      : `Cannot log in: ${err.message}`;
    $('login-token').select();
    return;
  }
  $('login-token').value = '';
  start();
});

$('logout').addEventListener('click', async () => {
  try {
    await api.post('/logout', undefined, { quiet401: true });
  } catch (err) {
    fail(err, 'log out');
    return;
  }
  showLogin('Logged out.');
});

api.setUnauthorizedHandler(() => {
  if (loggedIn) showLogin('The session has ended (the node answered 401): log in again.');
});

// ---------------------------------------------------------- the shell

async function start() {
  let node;
  try {
    node = await api.get('/api/v1/node', { quiet401: true });
  } catch (err) {
    if (err.status === 401) { showLogin(); return; }
    $('login').hidden = true;
    clear(main, h('p', { class: 'notice' }, 'The node did not answer: ', err.message, ' '),
      h('button', { type: 'button', onclick: start }, 'Try again'));
    fail(err, 'start');
    return;
  }
  loggedIn = true;
  $('login').hidden = true;
  $('top').hidden = false;
  $('node-name').textContent = `${node.instance} · ${node.cell}`;
  document.title = `nodee · ${node.instance}`;
  openStream();
  route();
}

function openStream() {
  const dot = $('live-dot');
  stream = new api.Socket('/api/v1/stream', {
    open() {
      dot.classList.add('on');
      dot.title = 'live updates: connected';
    },
    message(m) {
      if (m.type === 'hello') {
        if (lostSince) {
          lostSince = 0;
          $('banner').hidden = true;
          if (view && view.refetch) view.refetch();
        }
        return;
      }
      if (m.type === 'dropped') {
        fail(`${m.count} live updates were dropped (${m.detail || 'too slow'}); the page was reloaded from the API`, 'live');
        if (view && view.refetch) view.refetch();
        return;
      }
      if (view && view.message) view.message(m);
    },
    lost({ retryIn, attempt }) {
      dot.classList.remove('on');
      dot.title = 'live updates: lost';
      if (!lostSince) lostSince = Date.now();
      $('banner-text').textContent = `Live updates lost${attempt > 1 ? ` (${attempt} tries)` : ''}: `
        + `what you see may be out of date. Reconnecting in ${Math.round(retryIn / 1000)} s…`;
      $('banner').hidden = false;
      // A stream refused for a session that ended: back to the login form.
      api.get('/api/v1/node').catch(() => {});
    },
  });
}

$('banner-retry').addEventListener('click', () => { if (stream) stream.retryNow(); });

const routes = [
  [/^#\/node$/, nodeView.mount],
  [/^#\/artifacts$/, artifactsView.mount],
  [/^#\/services$/, servicesView.mount],
  [/^#\/services\/([^/]+)$/, (m, c, arg) => serviceView.mount(m, c, decodeURIComponent(arg))],
  [/^#\/jobs$/, (m, c) => historyView.mount(m, c, 'jobs')],
  [/^#\/events$/, (m, c) => historyView.mount(m, c, 'events')],
  [/^#\/cell$/, cellView.mount],
];

function route() {
  if (!loggedIn) return;
  const hash = location.hash || '#/node';
  if (!location.hash || hash === '#/') { location.replace('#/node'); return; }
  if (view) { view.unmount(); view = null; }
  clear(main);
  for (const a of document.querySelectorAll('#nav a')) {
    const on = hash === a.getAttribute('href') || hash.startsWith(`${a.getAttribute('href')}/`);
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const ctx = { fail, note, confirm, live: () => !!(stream && stream.connected) };
  for (const [re, mount] of routes) {
    const m = hash.match(re);
    if (m) {
      view = mount(main, ctx, m[1]);
      return;
    }
  }
  main.append(h('h1', {}, 'Not found'), h('p', {}, `Nothing is at ${hash}. `),
    h('a', { href: '#/node' }, 'Go to the node'));
}

window.addEventListener('hashchange', () => {
  route();
  main.focus({ preventScroll: true });
});

start();
