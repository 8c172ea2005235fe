// Registry: the node in ZooKeeper and the cell view (issue 6), against
// real ZooKeeper servers from Debian's zookeeper package, started and
// stopped here by pid (zk.js), and the real daemon.  Each test uses its
// own cell, so tests never see each other's nodes.
//
// Services outlive the daemon by design: every test deletes its services
// through the API before its daemon stops, and the exit handler kills
// what is left (pid checked against the recorded process start time).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startNodee, runNodee, sanitizerReport, sqlRows, sleep, tmpdir, freePort, waitFor } = require('./lib');
const { makeZip } = require('./zipper');
const { Depot } = require('./depot');
const { startZooKeeper, startEnsemble, zkGet, zkExpire, ZkWatch, zkCliGet } = require('./zk');

const GAV = 'com.test:reg:1';
const TIMEOUT_MS = 4000; // session timeout of most daemons here
const prefixes = new Set();
const daemons = new Set(); // what a failed test left running

let zk;
let depot;

// A prefix a service's dynamic uid can traverse (mkdtemp makes it 0700).
function newPrefix() {
  const p = tmpdir('reg');
  fs.chmodSync(p, 0o755);
  prefixes.add(p);
  return p;
}

function procStart(pid) {
  try {
    const t = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = t.slice(t.lastIndexOf(')') + 2).split(' ');
    return f[0] === 'Z' ? null : Number(f[19]);
  } catch (_) { return null; }
}

function alive(pid) {
  return procStart(pid) !== null;
}

// Kills what services of prefix still run (last resort).
function killLeftovers(prefix) {
  let rows = [];
  try {
    rows = sqlRows(path.join(prefix, 'state/nodee.db'),
      'select pid, proc_start from services where pid > 0');
  } catch (_) { return; }
  for (const { pid, proc_start: ps } of rows) {
    if (procStart(pid) === ps) {
      try { process.kill(-pid, 'SIGKILL'); } catch (_) {
        try { process.kill(pid, 'SIGKILL'); } catch (__) { /* gone */ }
      }
    }
  }
}

process.on('exit', () => {
  for (const p of prefixes) killLeftovers(p);
});

// A daemon in cell, named instance, registered with hosts.
async function startReg(cell, instance, opts = {}) {
  const prefix = opts.prefix || newPrefix();
  const d = await startNodee({
    prefix,
    args: ['--depot', depot.url],
    env: {
      NODEE_ZOOKEEPER: opts.hosts || zk.hosts,
      NODEE_ZOOKEEPER_TIMEOUT_MS: String(opts.timeoutMs || TIMEOUT_MS),
      NODEE_CELL: cell,
      NODEE_INSTANCE: instance,
      NODEE_DEBUG_ZK_SESSION_FILE: path.join(prefix, 'zk-session'),
      ...(opts.env || {}),
    },
  });
  daemons.add(d);
  d.zkpath = `/meta/${cell}/nodes/${instance}`;
  d.sessionFile = path.join(prefix, 'zk-session');
  return d;
}

async function registry(d) {
  const r = await d.req({ path: '/api/v1/node' });
  assert.equal(r.status, 200, r.text);
  return r.json.registry;
}

async function waitRegistered(d, what = 'registered', timeoutMs = 15000) {
  let last;
  try {
    return await waitFor(async () => {
      last = await registry(d);
      return last.state === 'connected' && last.registered ? last : null;
    }, what, timeoutMs);
  } catch (e) {
    e.message += `\nregistry: ${JSON.stringify(last)}\n${d.stderr.split('\n').slice(-15).join('\n')}`;
    throw e;
  }
}

async function stopClean(d) {
  const r = await d.stop('SIGTERM');
  assert.equal(sanitizerReport(d.stderr), null, d.stderr);
  assert.deepEqual(r, { code: 0, signal: null }, d.stderr);
}

function svcOf(data, coord) {
  return data && data.services && data.services.find((s) => s.coordinate === coord);
}

async function putService(d, coord) {
  const r = await d.req({ method: 'PUT', path: `/api/v1/services/${coord}`, body: { artifact: GAV } });
  assert.ok([200, 201, 202].includes(r.status), r.text);
  return waitFor(async () => {
    const s = await d.req({ path: `/api/v1/services/${coord}` });
    return s.json && s.json.state === 'running' && s.json.pid > 0 ? s.json : null;
  }, `${coord} running`);
}

async function deleteService(d, coord) {
  const r = await d.req({ method: 'DELETE', path: `/api/v1/services/${coord}` });
  assert.equal(r.status, 200, r.text);
}

async function cellNames(d) {
  const r = await d.req({ path: '/api/v1/cell/nodes' });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

test.before(async () => {
  depot = await new Depot().start();
  depot.put('com.test', 'reg', '1', makeZip([
    { name: 'bin/', dir: true },
    { name: 'bin/start', data: '#!/bin/sh\nexec sleep 1000\n', mode: 0o755 },
  ]));
  zk = await startZooKeeper();
});

test.after(async () => {
  for (const d of daemons) if (!d.exited) await d.stop('SIGKILL');
  if (zk) {
    await zk.stop();
    zk.remove();
  }
  if (depot) await depot.stop();
  for (const p of prefixes) {
    killLeftovers(p);
    fs.rmSync(p, { recursive: true, force: true });
  }
});

test('standalone: no zookeeper, registry disabled, no cell view', async () => {
  const d = await startNodee({ prefix: newPrefix() });
  const r = await registry(d);
  assert.equal(r.state, 'disabled');
  assert.equal(r.registered, false);
  const c = await d.req({ path: '/api/v1/cell/nodes' });
  assert.equal(c.status, 503, c.text);
  assert.match(c.json.detail, /zookeeper/);
  await stopClean(d);
});

test('the node appears with the right data (read with zkCli.sh) and a clean stop removes it', async () => {
  const d = await startReg('reg-a', 'n1');
  // registry_start waits for the first registration: no polling needed.
  const reg = await registry(d);
  assert.equal(reg.state, 'connected');
  assert.equal(reg.registered, true);
  assert.equal(reg.status, 'up');
  assert.equal(reg.path, '/meta/reg-a/nodes/n1');
  assert.equal(reg.zookeeper, zk.hosts);
  assert.match(reg.session, /^0x[0-9a-f]+$/);
  assert.equal(reg.session_timeout_ms, TIMEOUT_MS);

  const node = (await d.req({ path: '/api/v1/node' })).json;
  const data = zkCliGet(zk.port, '/meta/reg-a/nodes/n1');
  assert.ok(data, 'zkCli.sh found no JSON');
  assert.equal(data.instance, 'n1');
  assert.equal(data.cell, 'reg-a');
  assert.equal(data.host, os.hostname());
  assert.equal(data.version, node.version);
  assert.equal(data.status, 'up');
  assert.equal(data.port, d.port);
  assert.equal(data.console, `http://127.0.0.1:${d.port}/`);
  assert.equal(data.api, `http://127.0.0.1:${d.port}/api/v1/`);
  assert.equal(data.pid, d.pid);
  assert.equal(data.prefix, d.prefix);
  assert.equal(data.started_at, node.started_at);
  assert.match(data.machine_id, /^[0-9a-f]{32}$/);
  assert.equal(data.machine.cores, os.cpus().length);
  assert.ok(data.machine.memory_total_bytes > 0);
  assert.equal(data.machine.load.length, 3);
  assert.ok(data.machine.disk_free_bytes > 0);
  assert.ok(data.machine.disk_total_bytes >= data.machine.disk_free_bytes);
  assert.equal(data.machine.kernel.name, 'Linux');
  assert.deepEqual(data.services, []);
  assert.equal(data.services_total, 0);
  assert.equal(data.services_truncated, false);

  const z = await zkGet(zk.hosts, d.zkpath);
  assert.equal(z.owner, reg.session, 'the node is ephemeral, owned by our session');

  await stopClean(d);
  assert.equal((await zkGet(zk.hosts, d.zkpath)).exists, false, 'gone at once after a clean stop');
  assert.match(d.stderr, /closing the session/);
});

test('the data follows services: start, stop, node drain, delete', async () => {
  const d = await startReg('reg-b', 'n1');
  const coord = '1.web.ops.reg-b';
  const w = new ZkWatch(zk.hosts, d.zkpath);
  try {
    const s = await putService(d, coord);
    let e = await w.waitFor((x) => x.exists && svcOf(x.data, coord) &&
      svcOf(x.data, coord).state === 'running' && svcOf(x.data, coord).pid === s.pid, 'running');
    const entry = svcOf(e.data, coord);
    assert.equal(entry.artifact, GAV);
    assert.equal(entry.restarts, 0);
    assert.ok(entry.since > 0);
    assert.deepEqual(e.data.service_states, { running: 1 });
    assert.equal(e.data.services_total, 1);

    let r = await d.req({ method: 'POST', path: `/api/v1/services/${coord}/stop` });
    assert.equal(r.status, 200, r.text);
    e = await w.waitFor((x) => x.exists && svcOf(x.data, coord) &&
      svcOf(x.data, coord).state === 'stopped', 'stopped');
    assert.equal(svcOf(e.data, coord).pid, null);
    assert.ok(!alive(s.pid));

    const s2 = await putService(d, coord);
    await w.waitFor((x) => x.exists && svcOf(x.data, coord) &&
      svcOf(x.data, coord).pid === s2.pid && svcOf(x.data, coord).state === 'running', 'running again');

    // Node drain: "draining" reaches ZooKeeper before any service drains.
    const from = w.events.length;
    r = await d.req({ method: 'POST', path: '/api/v1/node/drain' });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.status, 'draining');
    assert.equal(r.json.zookeeper, 'written');
    assert.deepEqual(r.json.services.map((x) => [x.coordinate, x.status]), [[coord, 200]]);
    e = await w.waitFor((x) => x.exists && x.data && x.data.status === 'draining', 'node draining', 15000, from);
    assert.equal(svcOf(e.data, coord).state, 'running', 'the node was marked before its services drained');
    await w.waitFor((x) => x.exists && x.data && x.data.status === 'draining' &&
      svcOf(x.data, coord).state !== 'running', 'service drained');
    assert.equal((await registry(d)).status, 'draining');
    assert.equal((await zkGet(zk.hosts, d.zkpath)).exists, true, 'a draining node stays registered');

    await deleteService(d, coord);
    await w.waitFor((x) => x.exists && x.data && x.data.services.length === 0, 'service gone');
    await stopClean(d);
    await w.waitFor((x) => !x.exists, 'node gone');
  } finally {
    await w.close();
  }
});

test('after kill -9 the node stays until the session times out, then goes', async () => {
  const d = await startReg('reg-c', 'n1');
  const reg = await registry(d);
  await d.stop('SIGKILL');
  const t0 = Date.now();
  const z = await zkGet(zk.hosts, d.zkpath);
  assert.equal(z.exists, true, 'still there right after the kill');
  assert.equal(z.owner, reg.session);
  await waitFor(async () => !(await zkGet(zk.hosts, d.zkpath)).exists, 'the node to go', TIMEOUT_MS + 6000);
  const took = Date.now() - t0;
  assert.ok(took >= TIMEOUT_MS / 2, `gone after ${took} ms: too soon for a session timeout`);
  assert.ok(took <= TIMEOUT_MS + 3000, `gone after ${took} ms`);
});

test('a fast restart finds the old session\'s node and replaces it', async () => {
  const prefix = newPrefix();
  let d = await startReg('reg-d', 'n1', { prefix });
  const old = await registry(d);
  await d.stop('SIGKILL');
  d = await startReg('reg-d', 'n1', { prefix });
  const reg = await registry(d);
  assert.equal(reg.registered, true, d.stderr);
  assert.notEqual(reg.session, old.session);
  assert.match(d.stderr, new RegExp(`still held by session ${old.session} of this node's previous run`));
  let z = await zkGet(zk.hosts, d.zkpath);
  assert.equal(z.owner, reg.session);
  assert.equal(z.data.pid, d.pid);
  // The old session's end must not take the new node with it.
  await sleep(TIMEOUT_MS + 1500);
  z = await zkGet(zk.hosts, d.zkpath);
  assert.equal(z.exists, true);
  assert.equal(z.owner, reg.session);
  await stopClean(d);
});

test('another live nodee under the same instance name stops start-up, naming both', async () => {
  const a = await startReg('reg-e', 'twin');
  const before = await zkGet(zk.hosts, a.zkpath);
  const pb = newPrefix();
  const b = await runNodee(['daemon', '--prefix', pb, '--listen', `127.0.0.1:${await freePort()}`], {
    env: { NODEE_ZOOKEEPER: zk.hosts, NODEE_CELL: 'reg-e', NODEE_INSTANCE: 'twin' },
  });
  assert.equal(b.code, 1, b.stderr);
  assert.match(b.stderr, /instance 'twin' of cell 'reg-e' is already registered/);
  assert.ok(b.stderr.includes(`prefix ${a.prefix}, pid ${a.pid}`), b.stderr);
  assert.ok(b.stderr.includes(`prefix ${pb}`), b.stderr);
  assert.ok(b.stderr.includes(`console http://127.0.0.1:${a.port}/`), b.stderr);
  assert.equal(sanitizerReport(b.stderr), null, b.stderr);
  const after = await zkGet(zk.hosts, a.zkpath);
  assert.equal(after.owner, before.owner, 'the first one keeps its node');
  assert.equal(after.data.pid, a.pid);
  await stopClean(a);
});

test('forced session expiry: a new session, the node is back, services untouched', async (t) => {
  const d = await startReg('reg-f', 'n1');
  const coord = '1.web.ops.reg-f';
  const s = await putService(d, coord);
  const old = await waitRegistered(d);
  const w = new ZkWatch(zk.hosts, d.zkpath);
  try {
    await w.waitFor((x) => x.exists && x.owner === old.session, 'our node');
    const ex = await zkExpire(zk.hosts, d.sessionFile, d.zkpath);
    assert.equal(ex.expired, old.session);
    t.diagnostic(`expired after ${ex.tries} takeover(s)`);
    const e = await w.waitFor((x) => x.exists && x.owner !== old.session, 'the node under a new session', 10000);
    const reg = await waitRegistered(d);
    assert.equal(e.owner, reg.session);
    assert.notEqual(reg.session, old.session);
    assert.equal(svcOf(e.data, coord).pid, s.pid);
    assert.match(d.stderr, /expired: opening a new one/);
    const now = (await d.req({ path: `/api/v1/services/${coord}` })).json;
    assert.equal(now.pid, s.pid, 'the service was not touched');
    assert.ok(alive(s.pid));
  } finally {
    await w.close();
  }
  await deleteService(d, coord);
  await stopClean(d);
});

test('ZooKeeper unreachable at start, then down longer than the session timeout: services run on, the node comes back', async (t) => {
  const zk2 = await startZooKeeper({ start: false });
  try {
    const t0 = Date.now();
    const d = await startReg('reg-g', 'n1', { hosts: zk2.hosts });
    assert.ok(Date.now() - t0 < 10000);
    let reg = await registry(d);
    assert.equal(reg.state, 'connecting');
    assert.equal(reg.registered, false);
    assert.match(d.stderr, /has not answered within/);
    const coord = '1.web.ops.reg-g';
    const s = await putService(d, coord);

    let t1 = Date.now();
    await zk2.start();
    reg = await waitRegistered(d, 'registration once ZooKeeper answers');
    t.diagnostic(`registered ${Date.now() - t1} ms after ZooKeeper was started`);
    let z = await waitFor(async () => {
      const x = await zkGet(zk2.hosts, d.zkpath);
      return x.exists && svcOf(x.data, coord) ? x : null;
    }, 'node with the service');
    assert.equal(svcOf(z.data, coord).pid, s.pid);

    await zk2.stop();
    await waitFor(async () => (await registry(d)).state === 'connecting', 'state connecting');
    await sleep(TIMEOUT_MS + 1500);
    assert.ok(alive(s.pid), 'the service runs on without ZooKeeper');
    assert.equal((await d.req({ path: `/api/v1/services/${coord}` })).json.pid, s.pid);
    assert.equal(d.exited, null);

    t1 = Date.now();
    await zk2.start();
    reg = await waitRegistered(d, 'registration after ZooKeeper is back');
    t.diagnostic(`registered ${Date.now() - t1} ms after ZooKeeper was started again`);
    z = await waitFor(async () => {
      const x = await zkGet(zk2.hosts, d.zkpath);
      return x.exists && x.owner === reg.session ? x : null;
    }, 'node back');
    assert.equal(svcOf(z.data, coord).pid, s.pid);
    assert.ok(alive(s.pid));
    await deleteService(d, coord);
    await stopClean(d);
  } finally {
    await zk2.stop();
    zk2.remove();
  }
});

test('three-server ensemble: killing the leader keeps the node or brings it back within the session timeout', async (t) => {
  const ens = await startEnsemble(3);
  const timeoutMs = 8000;
  try {
    const d = await startReg('reg-h', 'n1', { hosts: ens.hosts, timeoutMs });
    const before = await waitRegistered(d);
    const leader = await ens.leader();
    assert.ok(leader, 'a leader');
    await leader.stop('SIGKILL');
    const t0 = Date.now();
    const rest = ens.members.filter((m) => m !== leader).map((m) => m.hosts).join(',');
    const z = await waitFor(async () => {
      try {
        const x = await zkGet(rest, d.zkpath);
        const r = await registry(d);
        return x.exists && r.state === 'connected' && x.owner === r.session ? x : null;
      } catch (_) { return null; } // no quorum yet
    }, 'the node on the surviving servers', timeoutMs + 5000);
    const took = Date.now() - t0;
    assert.ok(took <= timeoutMs, `node back after ${took} ms`);
    t.diagnostic(`leader killed: node ${z.owner === before.session ? 'kept its session' : 'came back under a new session'} after ${took} ms`);
    // And the node is still written to.
    const r = await d.req({ method: 'POST', path: '/api/v1/node/drain' });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.zookeeper, 'written');
    assert.equal((await zkGet(rest, d.zkpath)).data.status, 'draining');
    await stopClean(d);
  } finally {
    await ens.stop();
  }
});

test('a cell of four: each sees all four, a stopped one drops out', async (t) => {
  const names = ['n1', 'n2', 'n3', 'n4'];
  const ds = await Promise.all(names.map((n) => startReg('reg-four', n)));
  try {
    for (const d of ds) {
      const mine = names[ds.indexOf(d)];
      const c = await waitFor(async () => {
        const x = await cellNames(d);
        return x.nodes.map((n) => n.instance).join() === names.join() ? x : null;
      }, `${mine} to see four`);
      assert.equal(c.cell, 'reg-four');
      assert.equal(c.self, mine);
      assert.equal(c.registry, 'connected');
      assert.equal(c.stale, false);
      assert.deepEqual(c.nodes.filter((n) => n.self).map((n) => n.instance), [mine]);
      for (const n of c.nodes) {
        assert.equal(n.data.port, ds[names.indexOf(n.instance)].port);
        assert.equal(n.data.status, 'up');
      }
    }
    const t0 = Date.now();
    await stopClean(ds[3]);
    for (const d of ds.slice(0, 3)) {
      await waitFor(async () => (await cellNames(d)).nodes.map((n) => n.instance).join() === 'n1,n2,n3',
        'three left', 5000);
    }
    t.diagnostic(`a stopped node left every cell view within ${Date.now() - t0} ms`);
  } finally {
    for (const d of ds) if (!d.exited) await stopClean(d);
  }
});
