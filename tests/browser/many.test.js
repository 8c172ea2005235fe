// The console with 1 000 services (issue 11): the services page renders
// and its filter narrows the list quickly, pages through them, and takes
// a burst of live updates (200 services created while it is open) without
// a reload.  The figures are printed; the bounds are generous.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startNodee, waitFor } = require('../integration/lib');
const { Depot } = require('../integration/depot');
const { makeZip } = require('../integration/zipper');
const {
  launch, openPage, shot, sel, waitText, login, newPrefix, pool, teardown,
} = require('./lib');

const N = 1000;
const BOUND_MS = 5000;
const coords = Array.from({ length: N }, (_, i) => `${i + 1}.many.tst.cell`);
const SPEC = { artifact: 'com.test:many:1', start: { min_uptime_ms: 0 } };

let depot;
let d;
let prefix;
let browser;
let page;

function create(list) {
  return pool(list, 8, async (c) => {
    const r = await d.req({ method: 'PUT', path: `/api/v1/services/${c}`, body: SPEC });
    assert.ok([200, 201].includes(r.status), `${c}: ${r.text}`);
  });
}

// In the page: sets location.hash or the filter box's text (the CSP
// forbids eval, so no code travels as text), then resolves with the
// milliseconds until the count of matching services reads want and the
// table has its rows, checked at every frame.
function timed(what, value, want) {
  return page.evaluate(([w, v, n]) => new Promise((resolve, reject) => {
    const t0 = performance.now();
    const check = () => {
      const c = document.querySelector('[data-testid="services-count"]');
      const rows = document.querySelectorAll('[data-testid="services-rows"] tr').length;
      if (c && c.dataset.matching === String(n) && rows === Math.min(n, 100)) resolve(performance.now() - t0);
      else requestAnimationFrame(check);
    };
    if (w === 'hash') {
      location.hash = v;
    } else {
      const f = document.querySelector('[data-testid="services-filter"]');
      f.value = v;
      f.dispatchEvent(new Event('input'));
    }
    requestAnimationFrame(check);
    setTimeout(() => reject(new Error(`not ${n} matching within 30 s`)), 30000);
  }), [what, value, want]);
}

test.before(async () => {
  depot = await new Depot().start();
  depot.put('com.test', 'many', '1', makeZip([
    { name: 'bin/start', data: '#!/bin/sh\nexec sleep 1000\n', mode: 0o755 },
  ]));
  prefix = newPrefix('browser-many');
  d = await startNodee({ prefix, args: ['--depot', depot.url] });
  const r = await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: 'com.test:many:1' } });
  assert.ok([200, 202].includes(r.status), r.text);
  await waitFor(async () => (await d.req({ path: '/api/v1/artifacts/com.test/many/1' })).status === 200,
    'the artifact installed');
  browser = await launch();
  page = await openPage(browser, d);
});

test.after(async () => {
  await teardown({ browser, d, depot, prefix });
});

test('1 000 services: rendered, filtered and paged quickly; live updates of 200 more without a reload', { timeout: 150000 }, async () => {
  const t0 = Date.now();
  await create(coords.slice(0, N - 200));
  await login(page, d);
  await page.click(sel('nav-services'));
  await waitText(page, 'services-count', new RegExp(`^${N - 200} services$`));
  await page.evaluate(() => { window.notReloaded = true; });
  await create(coords.slice(N - 200));
  console.log(`created ${N} services in ${Date.now() - t0} ms (8 clients)`);
  await waitText(page, 'services-count', new RegExp(`^${N} services$`), 30000);
  assert.equal(await page.evaluate(() => window.notReloaded), true, 'no reload');

  // A fresh render of the page, from another page.
  await page.click(sel('nav-node'));
  await page.waitForSelector(sel('node-facts'));
  const render = await timed('hash', '#/services', N);
  await shot(page, 'many-services');

  const q = '99';
  const expect = coords.filter((c) => c.includes(q)).length;
  const filter = await timed('filter', q, expect);
  const rows = await page.$$eval(`${sel('services-rows')} tr th`, (t) => t.map((x) => x.textContent));
  assert.equal(rows.length, Math.min(expect, 100));
  assert.ok(rows.every((c) => c.includes(q)), rows.join(' '));
  await shot(page, 'many-services-filtered');

  console.log(`services page: ${N} rows rendered in ${render.toFixed(0)} ms, filter in ${filter.toFixed(0)} ms`
    + ` (${expect} match; pages of 100 rows)`);
  assert.ok(render < BOUND_MS, `rendered in ${render} ms`);
  assert.ok(filter < BOUND_MS, `filtered in ${filter} ms`);

  // The second page, then a state filter.
  await page.fill(sel('services-filter'), '');
  await waitText(page, 'services-page', new RegExp(`rows 1–100 of ${N}`));
  await page.click(sel('services-next'));
  await waitText(page, 'services-page', new RegExp(`rows 101–200 of ${N} · page 2 of ${N / 100}`));
  await page.selectOption(sel('services-state'), 'failed');
  await waitText(page, 'services-count', new RegExp(`^0 of ${N} services match$`));
  assert.deepEqual(page.problems, []);
});
