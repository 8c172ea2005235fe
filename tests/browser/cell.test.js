// The cell page (issue 11) against a real ZooKeeper (Debian's package,
// ../integration/zk.js): two daemons of one cell, one with a service, seen
// from the first one's console with their status, counts by state and a
// link to the other's console; with ZooKeeper gone, the page says its view
// is stale.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startNodee, waitFor } = require('../integration/lib');
const { startZooKeeper } = require('../integration/zk');
const { Depot } = require('../integration/depot');
const { makeZip } = require('../integration/zipper');
const {
  launch, openPage, shot, sel, waitText, login, newPrefix, teardown,
} = require('./lib');

const CELL = 'browser-cell';
let zk;
let depot;
const nodes = []; // {d, prefix}
let browser;

async function startNode(instance) {
  const prefix = newPrefix(`cell-${instance}`);
  const d = await startNodee({
    prefix,
    args: ['--depot', depot.url],
    env: { NODEE_ZOOKEEPER: zk.hosts, NODEE_ZOOKEEPER_TIMEOUT_MS: '4000', NODEE_CELL: CELL, NODEE_INSTANCE: instance },
  });
  nodes.push({ d, prefix });
  return d;
}

test.before(async () => {
  depot = await new Depot().start();
  depot.put('com.test', 'cellsvc', '1', makeZip([
    { name: 'bin/start', data: '#!/bin/sh\nexec sleep 1000\n', mode: 0o755 },
  ]));
  zk = await startZooKeeper();
});

test.after(async () => {
  if (browser) await browser.close();
  for (const n of nodes) await teardown({ d: n.d, prefix: n.prefix });
  if (zk) { await zk.stop(); zk.remove(); }
  if (depot) await depot.stop();
});

test('cell: every node with its status, counts by state and console link; stale when ZooKeeper is gone', { timeout: 90000 }, async () => {
  const a = await startNode('node-a');
  const b = await startNode('node-b');
  const i = await b.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: 'com.test:cellsvc:1' } });
  assert.ok([200, 202].includes(i.status), i.text);
  await waitFor(async () => (await b.req({ path: '/api/v1/artifacts/com.test/cellsvc/1' })).status === 200, 'installed');
  const p = await b.req({ method: 'PUT', path: '/api/v1/services/1.cellsvc.tst.browser-cell',
    body: { artifact: 'com.test:cellsvc:1', start: { min_uptime_ms: 0 } } });
  assert.ok([200, 201].includes(p.status), p.text);

  browser = await launch();
  const page = await openPage(browser, a);
  await login(page, a);
  await page.click(sel('nav-cell'));
  await page.waitForSelector(sel('cell-node-node-a'));
  await page.waitForSelector(sel('cell-node-node-b'));
  await waitText(page, 'cell-node-node-a', /this node/);
  await waitText(page, 'cell-node-node-b', /running 1/, 20000); // refreshed every 5 s
  const version = (await b.req({ path: '/api/v1/node' })).json.version;
  await waitText(page, 'cell-node-node-b', new RegExp(`up${version.replace(/\./g, '\\.')}`));
  const href = await page.getAttribute(`${sel('cell-node-node-b')} a`, 'href');
  assert.match(href, new RegExp(`127\\.0\\.0\\.1:${b.port}`));
  assert.equal(await page.$(sel('cell-stale')), null, 'not stale while connected');
  await shot(page, 'cell');

  await zk.stop();
  await page.waitForSelector(sel('cell-stale'), { timeout: 30000 });
  await waitText(page, 'cell-stale', /Stale/);
  await shot(page, 'cell-stale');
  assert.deepEqual(page.problems, []);
});
