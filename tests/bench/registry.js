// make bench: the registry against a real ZooKeeper on loopback.
//
// 1. A service state change until the node's data in ZooKeeper shows it,
//    as a watching client sees it (zkcli watch): from the service's
//    "since" (the time the supervisor saved the change) to the moment the
//    watcher has read the new data.  The service is stopped and started
//    again every PACE_MS, slower than the registry's sustained write rate
//    (5 a second), so the figure is the latency of a change, not of a
//    queue; p50 and p99 over CHANGES observed changes.
// 2. A forced session expiry until the node exists again: from the new
//    session being up to the node's creation (the daemon's own figures),
//    and from the close that ended the old session to the watcher seeing
//    the new node.
//
// A benchmark, not a test: it prints numbers and fails only if something
// breaks.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startNodee, tmpdir, sleep } = require('../integration/lib');
const { makeZip } = require('../integration/zipper');
const { Depot } = require('../integration/depot');
const { startZooKeeper, zkExpire, ZkWatch } = require('../integration/zk');
const { writeRows } = require('./report');

const CHANGES = Number(process.env.BENCH_CHANGES || 200);
const EXPIRIES = Number(process.env.BENCH_EXPIRIES || 20);
const PACE_MS = 500;
const TIMEOUT_MS = 4000;
const COORD = '1.bench.ops.bench';

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

async function waitFor(fn, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function main() {
  const zk = await startZooKeeper();
  const depot = await new Depot().start();
  depot.put('com.bench', 'reg', '1', makeZip([
    { name: 'bin/', dir: true },
    { name: 'bin/start', data: '#!/bin/sh\nexec sleep 1000\n', mode: 0o755 },
  ]));
  const prefix = tmpdir('bench-reg');
  fs.chmodSync(prefix, 0o755);
  const d = await startNodee({
    prefix,
    args: ['--depot', depot.url, '--log-level', 'warn'],
    env: {
      NODEE_ZOOKEEPER: zk.hosts,
      NODEE_ZOOKEEPER_TIMEOUT_MS: String(TIMEOUT_MS),
      NODEE_CELL: 'bench',
      NODEE_INSTANCE: 'b1',
      NODEE_DEBUG_ZK_SESSION_FILE: path.join(prefix, 'zk-session'),
    },
  });
  const zpath = '/meta/bench/nodes/b1';
  const w = new ZkWatch(zk.hosts, zpath);
  const svc = async () => (await d.req({ path: `/api/v1/services/${COORD}` })).json;
  const reg = async () => (await d.req({ path: '/api/v1/node' })).json.registry;
  try {
    // ------------------------------------------------ change -> ZooKeeper
    let r = await d.req({ method: 'PUT', path: `/api/v1/services/${COORD}`,
      body: { artifact: 'com.bench:reg:1' } });
    if (r.status >= 300) throw new Error(r.text);
    await waitFor(async () => (await svc()).state === 'running', 'running');
    await sleep(1000);

    const seen = new Set();
    const lat = [];
    let from = w.events.length;
    const collect = () => {
      for (; from < w.events.length; from++) {
        const e = w.events[from];
        const s = e.exists && e.data && e.data.services.find((x) => x.coordinate === COORD);
        if (!s) continue;
        const key = `${s.state}@${s.since}`;
        if (seen.has(key)) continue;
        seen.add(key);
        lat.push(e.t - s.since);
      }
    };
    collect();
    lat.length = 0;
    let ops = 0;
    while (lat.length < CHANGES) {
      const op = ops++ % 2 === 0 ? 'stop' : 'start';
      r = await d.req({ method: 'POST', path: `/api/v1/services/${COORD}/${op}` });
      if (r.status >= 300) throw new Error(r.text);
      const want = op === 'stop' ? 'stopped' : 'running';
      await w.waitFor((e) => e.exists && e.data &&
        e.data.services.some((x) => x.coordinate === COORD && x.state === want), want, 20000, from);
      await sleep(PACE_MS);
      collect();
    }
    lat.length = CHANGES;

    // ------------------------------------------------ forced expiry
    const sessionUp = [];
    const closeToNode = [];
    for (let i = 0; i < EXPIRIES; i++) {
      const before = await reg();
      from = w.events.length;
      const ex = await zkExpire(zk.hosts, path.join(prefix, 'zk-session'), zpath);
      const e = await w.waitFor((x) => x.exists && x.owner !== before.session, 'node back', 20000, from);
      const after = await waitFor(async () => {
        const x = await reg();
        return x.registered && x.session !== before.session ? x : null;
      }, 'registered');
      sessionUp.push(after.registered_at - after.session_since);
      closeToNode.push(e.t - ex.t);
      await sleep(300);
    }

    console.log('');
    console.log(`registry, ZooKeeper 3.8 on loopback, session timeout ${TIMEOUT_MS} ms`);
    console.log(`service state change -> node data seen by a watcher (${CHANGES} changes, one every ${PACE_MS} ms or more):`);
    console.log(`  p50 ${pct(lat, 50)} ms   p99 ${pct(lat, 99)} ms   max ${Math.max(...lat)} ms   (goal: p99 <= 50 ms)`);
    console.log(`forced session expiry, ${EXPIRIES} times:`);
    console.log(`  new session up -> node created: p50 ${pct(sessionUp, 50)} ms   max ${Math.max(...sessionUp)} ms   (goal: <= 1000 ms)`);
    console.log(`  old session closed -> node seen again: p50 ${pct(closeToNode, 50)} ms   max ${Math.max(...closeToNode)} ms`);
    console.log('  (the second includes the daemon noticing the expiry: at once when the server drops its');
    console.log(`   connection, or after its ping times out, 2/3 of the session timeout, when it does not)`);
    console.log(`cores: ${os.cpus().length}; 1-min load at the end: ${os.loadavg()[0].toFixed(2)}`);
    const chg = `state change -> node data seen by a watcher (${CHANGES})`;
    const exp = `forced expiry (${EXPIRIES}): new session up -> node created`;
    const back = `forced expiry (${EXPIRIES}): old session closed -> node seen again`;
    writeRows('registry', [
      { measure: `${chg}, p50`, value: pct(lat, 50), unit: 'ms' },
      { measure: `${chg}, p99`, value: pct(lat, 99), unit: 'ms', goal: '<= 50' },
      { measure: `${chg}, max`, value: Math.max(...lat), unit: 'ms' },
      { measure: `${exp}, p50`, value: pct(sessionUp, 50), unit: 'ms', goal: '<= 1000' },
      { measure: `${exp}, max`, value: Math.max(...sessionUp), unit: 'ms', goal: '<= 1000' },
      { measure: `${back}, p50`, value: pct(closeToNode, 50), unit: 'ms' },
      { measure: `${back}, max`, value: Math.max(...closeToNode), unit: 'ms' },
    ]);

    r = await d.req({ method: 'DELETE', path: `/api/v1/services/${COORD}` });
    if (r.status >= 300) throw new Error(r.text);
  } finally {
    await w.close();
    await d.stop();
    await depot.stop();
    await zk.stop();
    zk.remove();
    fs.rmSync(prefix, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
