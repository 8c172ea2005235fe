// Helpers for the browser tests: Debian's chromium driven by
// playwright-core against the real daemon (started with
// ../integration/lib.js), waits on what the page shows, screenshots in
// tests/browser/screenshots/, and the clean-up the services tests do
// (delete every service before the daemon stops, then killLeftovers).
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');
const {
  tmpdir, waitFor, sleep, killLeftovers, stopClean,
} = require('../integration/lib');

const SHOTS = path.join(__dirname, 'screenshots');
fs.mkdirSync(SHOTS, { recursive: true });

// Prefixes not yet torn down: a test process that dies anyway still
// kills their services' processes (services outlive their daemon).
const prefixes = new Set();
process.on('exit', () => {
  for (const p of prefixes) killLeftovers(p);
});

function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

// A page on daemon d's console that records what must never happen: a
// script error or a Content-Security-Policy violation (page.problems).
async function openPage(browser, d, opts = {}) {
  const context = await browser.newContext({ viewport: opts.viewport || { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.base = `http://127.0.0.1:${d.port}`;
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) {
      page.problems.push(`console: ${m.text()}`);
    }
  });
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

const sel = (id) => `[data-testid="${id}"]`;

// Waits until the element with data-testid id has text matching re;
// resolves with the text.  The last text seen is in the error.
async function waitText(page, id, re, timeoutMs = 15000) {
  let last = null;
  try {
    return await waitFor(async () => {
      const el = await page.$(sel(id));
      last = el ? await el.textContent() : '(absent)';
      return el && re.test(last) ? last : null;
    }, `${id} to match ${re}`, timeoutMs);
  } catch (e) {
    e.message += `; last text: ${JSON.stringify(last)}`;
    throw e;
  }
}

// Logs in through the form with d's token; the node page follows.
async function login(page, d) {
  await page.goto(`${page.base}/#/node`);
  await page.waitForSelector(sel('login-form'));
  await page.fill(sel('login-token'), d.token);
  await page.click(sel('login-submit'));
  await page.waitForSelector(sel('node-facts'));
}

// Clicks the button of the confirmation dialog with this value.
async function confirmWith(page, value) {
  await page.waitForSelector(`dialog[open] ${sel(`confirm-${value}`)}`);
  await page.click(`dialog[open] ${sel(`confirm-${value}`)}`);
  await page.waitForSelector('dialog[open]', { state: 'detached', timeout: 5000 })
    .catch(() => page.waitForFunction(() => !document.querySelector('dialog[open]')));
}

// A prefix a dynamic uid can traverse (mkdtemp makes it 0700).
function newPrefix(tag) {
  const p = tmpdir(tag);
  fs.chmodSync(p, 0o755);
  prefixes.add(p);
  return p;
}

// n at a time over items.
async function pool(items, n, fn) {
  const out = [];
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (i < items.length) {
      const k = i++;
      out[k] = await fn(items[k], k);
    }
  }));
  return out;
}

// Deletes every service of d through the API (purge), waits until none is
// left, and checks that none of their processes outlives it.
async function removeAll(d, concurrency = 8) {
  const list = (await d.req({ path: '/api/v1/services' })).json.services;
  await pool(list, concurrency, (s) => d.req({ method: 'DELETE',
    path: `/api/v1/services/${encodeURIComponent(s.coordinate)}?purge=true` }));
  await waitFor(async () => (await d.req({ path: '/api/v1/services' })).json.services.length === 0,
    'every service deleted', 60000);
  await sleep(50);
  assert.deepEqual(killLeftovers(d.prefix), [], 'no service process outlives its DELETE');
}

// The end of a suite: browser closed, services deleted, daemon stopped
// cleanly, leftovers killed, prefix removed.
async function teardown({ browser, d, depot, prefix }) {
  try {
    if (browser) await browser.close();
    if (d && !d.exited) {
      await removeAll(d);
      await stopClean(d);
    }
  } finally {
    if (prefix) {
      killLeftovers(prefix);
      fs.rmSync(prefix, { recursive: true, force: true });
      prefixes.delete(prefix);
    }
    if (depot) await depot.stop();
  }
}

module.exports = {
  launch, openPage, shot, sel, waitText, login, confirmWith, newPrefix, pool, removeAll, teardown,
};
