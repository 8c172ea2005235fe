// The console in a real browser (issue 11): Debian's chromium driven by
// playwright-core against the real daemon and a real loopback depot.  One
// daemon and one logged-in page for the whole file; the tests run in
// order: log in, install, a service's life, events, cell, a lost and
// recovered connection, a narrow window, the keyboard, log out.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { startNodee, waitFor, request, stopClean, alive } = require('../integration/lib');
const { Depot } = require('../integration/depot');
const { makeZip } = require('../integration/zipper');
const {
  launch, openPage, shot, sel, waitText, confirmWith, newPrefix, teardown,
} = require('./lib');

// Counts lines on stdout; says so on stdout and stderr when drained (USR1);
// exits 0 on TERM.
const WEB = `#!/bin/sh
trap 'echo "got USR1: draining"; echo "drain requested" >&2' USR1
trap 'echo "got TERM: bye"; exit 0' TERM
echo "web starting" >&2
i=1
while :; do
  echo "line $i"
  i=$((i+1))
  sleep 0.3 & wait $!
done
`;

const C = '1.web.tst.cell';
const SPEC = {
  artifact: 'com.test:web:1',
  command: 'bin/web',
  start: { min_uptime_ms: 300 },
  drain: { signal: 'USR1', timeout_s: 3 },
  stop: { signal: 'TERM', timeout_s: 5 },
};

// No step waits long; a hang fails the test instead of the suite.
const T = { timeout: 60000 };

let depot;
let d;
let prefix;
let browser;
let page;

test.before(async () => {
  depot = await new Depot().start();
  depot.put('com.test', 'web', '1', makeZip([
    { name: 'bin/', dir: true },
    { name: 'bin/web', data: WEB, mode: 0o755 },
  ]));
  // Stored random bytes served 4 KiB every 50 ms: an install of ~4 s
  // whose progress the page can be seen to follow.
  const big = depot.put('com.test', 'big', '1', makeZip([
    { name: 'bin/start', data: '#!/bin/sh\nexec sleep 1000\n', mode: 0o755 },
    { name: 'lib/blob.bin', data: crypto.randomBytes(320 * 1024) },
  ]));
  depot.behaviour.set(big, 'slow');
  prefix = newPrefix('browser');
  d = await startNodee({ prefix, args: ['--depot', depot.url] });
  const r = await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: 'com.test:web:1' } });
  assert.ok([200, 202].includes(r.status), r.text);
  await waitFor(async () => (await d.req({ path: '/api/v1/artifacts/com.test/web/1' })).status === 200,
    'com.test:web:1 installed');
  browser = await launch();
  page = await openPage(browser, d);
});

test.after(async () => {
  await teardown({ browser, d, depot, prefix });
});

test.afterEach(() => {
  assert.deepEqual(page.problems, [], 'no script error, no CSP violation');
});

test('login: a wrong token is refused with a message, the right one opens the node page', T, async () => {
  await page.goto(`${page.base}/`);
  await page.waitForSelector(sel('login-form'));
  await page.fill(sel('login-token'), 'not-the-token');
  await page.click(sel('login-submit'));
  await waitText(page, 'login-error', /token is wrong/i);
  assert.equal(await page.isVisible(sel('nav-services')), false, 'no console before a login');
  await shot(page, 'login-refused');

  await page.fill(sel('login-token'), d.token);
  await page.click(sel('login-submit'));
  await waitText(page, 'node-instance', /\S/);
  assert.equal(new URL(page.url()).hash, '#/node');
  await waitText(page, 'node-version', /^\d+\.\d+/);
  await waitText(page, 'node-zk-state', /disabled/);
  // Two samples make a line in each chart (one every 3 s).  A flat line
  // has no height, which Playwright calls hidden: count its points.
  for (const chart of ['chart-load', 'chart-memory']) {
    await page.waitForFunction((q) => {
      const l = document.querySelector(q);
      return l !== null && l.getAttribute('points').trim().split(/\s+/).length >= 2;
    }, `${sel(chart)} polyline`, { timeout: 15000 });
  }
  await shot(page, 'node');
});

test('artifacts: a bad coordinate is refused beside the form; an install shows its progress to the end', T, async () => {
  await page.click(sel('nav-artifacts'));
  await page.waitForSelector(sel('install-form'));
  await page.fill(sel('install-artifact'), 'not a coordinate');
  await page.click(sel('install-submit'));
  await waitText(page, 'install-error', /is not groupId:artifactId:version/);
  await shot(page, 'install-validation');

  await page.fill(sel('install-artifact'), 'com.test:big:1');
  await page.click(sel('install-submit'));
  const card = await page.waitForSelector('[data-testid^="job-"].job-card');
  const id = (await card.getAttribute('data-testid')).slice(4);
  // Samples of the bar while it moves: it must be seen part-way, then full.
  const seen = [];
  let midShot = false;
  await waitFor(async () => {
    const s = await page.$eval(sel(`job-progress-${id}`), (p) => ({
      value: p.value, max: p.max, determinate: p.hasAttribute('value') }));
    const state = await page.textContent(sel(`job-state-${id}`));
    seen.push({ ...s, state });
    if (!midShot && s.determinate && s.value > s.max / 3 && s.value < s.max) {
      midShot = true;
      await shot(page, 'install-progress');
    }
    return state === 'succeeded' && s.value === s.max;
  }, 'the install to reach the end', 30000);
  assert.ok(seen.some((s) => s.determinate && s.value > 0 && s.value < s.max),
    `the bar was seen part-way: ${JSON.stringify(seen.slice(0, 5))} … ${seen.length} samples`);
  const text = await page.textContent(sel(`job-progress-text-${id}`));
  assert.match(text, /100%/);
  await page.waitForSelector(sel('artifact-com.test:big:1'));
  await shot(page, 'artifacts');
});

test('services: create from the editor (a bad coordinate first), running, live logs, a kill restarts it without a reload', T, async () => {
  await page.click(sel('nav-services'));
  await page.click(sel('services-new'));
  await page.fill(sel('spec-coordinate'), 'not-a-coordinate');
  await page.fill(sel('spec-text'), JSON.stringify(SPEC, null, 2));
  await page.click(sel('spec-save'));
  await waitText(page, 'spec-error', /four labels/);
  // A bad field of the spec: the API's message, beside the editor.
  await page.fill(sel('spec-coordinate'), C);
  await page.fill(sel('spec-text'), JSON.stringify({ ...SPEC, colour: 'blue' }));
  await page.click(sel('spec-save'));
  await waitText(page, 'spec-error', /colour: unknown field/);
  await shot(page, 'spec-validation');

  await page.fill(sel('spec-text'), JSON.stringify(SPEC, null, 2));
  await page.click(sel('spec-save'));
  await page.waitForFunction((c) => location.hash === `#/services/${encodeURIComponent(c)}`, C);
  await waitText(page, 'service-state', /^running$/);
  const pid = Number(await waitText(page, 'service-pid', /^\d+$/));
  assert.ok(alive(pid), `pid ${pid} runs`);

  // Log lines arrive while the page is open.
  const first = await waitText(page, 'log-stdout', /line \d+/);
  const top = (t) => Math.max(...[...t.matchAll(/line (\d+)/g)].map((m) => Number(m[1])));
  await waitFor(async () => top(await page.textContent(sel('log-stdout'))) >= top(first) + 3,
    'new stdout lines to appear live');
  await waitText(page, 'log-stderr', /web starting/);
  await waitFor(async () => (await page.$$(`${sel('service-runs')} tbody tr`)).length === 1, 'one run');
  await shot(page, 'service-running');

  // A kill from outside: the restart count rises on the same page.
  await page.evaluate(() => { window.notReloaded = true; });
  process.kill(pid, 'SIGKILL');
  await waitText(page, 'service-restarts', /^1$/);
  await waitText(page, 'service-state', /^running$/);
  const pid2 = Number(await waitText(page, 'service-pid', /^\d+$/));
  assert.notEqual(pid2, pid);
  assert.equal(await page.evaluate(() => window.notReloaded), true, 'the page was not reloaded');
  await waitFor(async () => (await page.$$(`${sel('service-runs')} tbody tr`)).length === 2, 'two runs');
  await shot(page, 'service-restarted');

  // The list shows it too.
  await page.click(sel('nav-services'));
  await waitText(page, `svc-state-${C}`, /^running$/);
  await waitText(page, `svc-restarts-${C}`, /^1$/);
  await waitText(page, `svc-pid-${C}`, new RegExp(`^${pid2}$`));
  await shot(page, 'services');
});

test('services: stop, start and drain from the buttons, with confirmation; the drain is seen in the log', T, async () => {
  await page.goto(`${page.base}/#/services/${encodeURIComponent(C)}`);
  await waitText(page, 'service-state', /^running$/);

  await page.click(sel(`stop-${C}`));
  await shot(page, 'confirm-stop');
  await confirmWith(page, 'stop');
  await waitText(page, 'service-state', /^stopped$/);
  await waitText(page, 'log-stdout', /got TERM: bye/);
  assert.equal((await d.req({ path: `/api/v1/services/${C}` })).json.state, 'stopped');

  await page.click(sel(`start-${C}`));
  await waitText(page, 'service-state', /^running$/);

  await page.click(sel(`drain-${C}`));
  await confirmWith(page, 'drain');
  await waitText(page, 'service-state', /^draining$/);
  await waitText(page, 'log-stdout', /got USR1: draining/);
  await waitText(page, 'log-stderr', /drain requested/);
  await shot(page, 'service-draining');
  // drain.timeout_s 3: then it is stopped.
  await waitText(page, 'service-state', /^stopped$/, 15000);
  await shot(page, 'service-drained');

  // Edit its spec: the API's message for a bad value, then a good one.
  await page.click(sel('service-edit'));
  const spec = JSON.parse(await page.inputValue(sel('spec-text')));
  assert.equal(spec.drain.signal, 'USR1');
  await page.fill(sel('spec-text'), JSON.stringify({ ...spec, restart: { ...spec.restart, policy: 'sometimes' } }));
  await page.click(sel('spec-save'));
  await waitText(page, 'spec-error', /policy/);
  await page.fill(sel('spec-text'), JSON.stringify({ ...spec, env: { GREETING: 'hello' } }, null, 2));
  await page.click(sel('spec-save'));
  await page.waitForSelector(sel('spec-editor'), { state: 'detached' });
  await waitText(page, 'service-spec', /"GREETING": "hello"/);
  await waitText(page, 'service-state', /^running$/);
});

test('events: new events appear live at the top, and the kind filter narrows them', T, async () => {
  await page.click(sel('nav-events'));
  await page.waitForSelector(`${sel('events-rows')} tr`);
  const before = await page.$$eval(`${sel('events-rows')} tr`, (r) => r.length);
  await page.evaluate(() => { window.notReloaded = true; });
  // Something happens elsewhere (a script, not the page).
  const r = await d.req({ method: 'POST', path: `/api/v1/services/${C}/restart` });
  assert.equal(r.status, 200, r.text);
  await waitFor(async () => {
    const rows = await page.$$eval(`${sel('events-rows')} tr`, (t) => t.map((x) => x.textContent));
    return rows.length > before && /service\.started/.test(rows.slice(0, 3).join('\n'));
  }, 'service.started to appear at the top');
  await waitFor(async () => /service\.running/.test(await page.textContent(sel('events-rows'))), 'service.running');
  assert.equal(await page.evaluate(() => window.notReloaded), true);
  await shot(page, 'events-live');

  await page.fill(sel('events-filter-kind'), 'artifact.*');
  await page.click(sel('events-apply'));
  await waitFor(async () => {
    const kinds = await page.$$eval(`${sel('events-rows')} tr td:nth-child(3)`, (t) => t.map((x) => x.textContent));
    return kinds.length > 0 && kinds.every((k) => k.startsWith('artifact.'));
  }, 'only artifact.* events');
  await shot(page, 'events-filtered');

  await page.click(sel('nav-jobs'));
  await page.waitForSelector(`${sel('jobs-rows')} tr`);
  await waitFor(async () => /artifact\.install/.test(await page.textContent(sel('jobs-rows'))), 'the installs');
  await shot(page, 'jobs');
});

test('cell: a standalone node says it has no cell view', T, async () => {
  await page.click(sel('nav-cell'));
  await waitText(page, 'cell-error', /no ZooKeeper is configured/);
  await shot(page, 'cell-standalone');
});

test('a lost connection is shown, then recovered when the daemon is back', T, async () => {
  await page.click(sel('nav-services'));
  await waitText(page, `svc-state-${C}`, /^running$/);
  await stopClean(d);
  await page.waitForSelector(`${sel('conn-banner')}:not([hidden])`, { timeout: 10000 });
  await waitText(page, 'conn-banner', /Live updates lost/);
  await shot(page, 'connection-lost');
  // The same prefix and port: the token, so the session cookie, stays.
  const port = d.port;
  d = await startNodee({ prefix, port, args: ['--depot', depot.url] });
  assert.equal(d.port, port);
  // Something changed while the page was away: it is there after the reconnect.
  const r = await d.req({ method: 'POST', path: `/api/v1/services/${C}/stop` });
  assert.equal(r.status, 200, r.text);
  // Back-off (1, 2, 4 … s) brings it back by itself, no click needed.
  await page.waitForSelector(`${sel('conn-banner')}[hidden]`, { state: 'attached', timeout: 40000 });
  await waitText(page, `svc-state-${C}`, /^(stopping|stopped)$/);
  await waitText(page, `svc-state-${C}`, /^stopped$/);
  await shot(page, 'connection-recovered');
});

test('a narrow window: nothing wider than the screen, the services still usable', T, async () => {
  const p = await openPage(browser, d, { viewport: { width: 390, height: 844 } });
  // The login URL that make run prints: the cookie, then the console.
  await p.goto(`${p.base}/?token=${d.token}`);
  await p.waitForSelector(sel('node-facts'));
  assert.equal(new URL(p.url()).search, '', 'the token is not left in the address bar');
  await p.goto(`${p.base}/#/services`);
  await waitText(p, `svc-state-${C}`, /stopped/);
  const w = await p.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  assert.ok(w[0] <= w[1], `page ${w[0]} px wide in a ${w[1]} px window`);
  await shot(p, 'narrow-services');
  await p.goto(`${p.base}/#/services/${encodeURIComponent(C)}`);
  await waitText(p, 'service-state', /stopped/);
  await shot(p, 'narrow-service');
  assert.deepEqual(p.problems, []);
  await p.context().close();
});

test('the keyboard: links and buttons are reached with Tab and work with Enter; Escape cancels a dialog', T, async () => {
  await page.goto(`${page.base}/#/node`);
  await page.waitForSelector(sel('node-facts'));
  await page.focus(sel('nav-node'));
  await page.keyboard.press('Tab'); // artifacts
  await page.keyboard.press('Tab'); // services
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'nav-services');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => location.hash === '#/services');
  await page.waitForSelector(sel(`delete-${C}`));
  await page.focus(sel(`delete-${C}`));
  await page.keyboard.press('Enter');
  await page.waitForSelector('dialog[open]');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'confirm-cancel',
    'the safe choice has the focus');
  await shot(page, 'confirm-delete');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.querySelector('dialog[open]'));
  assert.equal((await d.req({ path: `/api/v1/services/${C}` })).status, 200, 'not deleted');

  // Delete and purge, the separate choice.
  await page.click(sel(`delete-${C}`));
  await confirmWith(page, 'purge');
  await page.waitForSelector(sel(`svc-row-${C}`), { state: 'detached' });
  await waitFor(async () => (await d.req({ path: `/api/v1/services/${C}` })).status === 404, 'deleted');
});

test('an API error is shown: removing an artifact in use is refused with the reason', T, async () => {
  const r = await d.req({ method: 'PUT', path: '/api/v1/services/2.web.tst.cell', body: SPEC });
  assert.ok([200, 201].includes(r.status), r.text);
  await page.click(sel('nav-artifacts'));
  await page.click(sel('remove-com.test:web:1'));
  await confirmWith(page, 'remove');
  await waitText(page, 'error-area', /used by services \["2\.web\.tst\.cell"\]/);
  await shot(page, 'remove-refused');
});

test('log out: the login form comes back and the API answers 401', T, async () => {
  await page.click(sel('logout'));
  await page.waitForSelector(`${sel('login-form')}`, { state: 'visible' });
  await waitText(page, 'login-error', /Logged out/);
  const status = await page.evaluate(async () => (await fetch('/api/v1/node')).status);
  assert.equal(status, 401);
  await page.reload();
  await page.waitForSelector(sel('login-form'), { state: 'visible' });
  assert.equal(await page.isVisible(sel('nav-node')), false);
  // The cookie is gone from the browser, the token still works for scripts.
  assert.equal((await request(d.port, { path: '/api/v1/node' })).status, 401);
  assert.equal((await d.req({ path: '/api/v1/node' })).status, 200);
  await shot(page, 'logged-out');
});
