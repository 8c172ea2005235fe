// make bench: the HTTP server during a slow-loris flood.
//
// A daemon with the default connection limits (http_max_connections 1000,
// http_max_per_ip 64, http_header_timeout_s 5).  A legitimate client on
// 127.0.0.1 sends GET /api/v1/node one after the other, a new connection
// each, for BENCH_FLOOD_S (20) seconds: first alone (the baseline), then
// while a flooder (this script again, in its own process so that its
// work does not delay the client's event loop) holds FLOOD (1000)
// connections from 127.0.0.2..127.0.0.21, 50 from each (under the
// per-address limit), each sending a partial request and then one byte a
// second.  A flood connection the server closes is opened again a second
// later, as an attacker's tool does.  The client's p50, p99 and max
// latency (of the requests answered 200) and its errors; the flood
// connections the daemon held (accepted sockets in its descriptor table,
// sampled every second) and those waiting in the kernel's accept queue.
//
// A benchmark, not a test: it prints numbers with the goal beside them
// (p99 under flood <= 2 x the baseline p99 + 10 ms, no errors) and exits
// non-zero only if something breaks.
'use strict';

const { fork } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const { startNodee, sleep } = require('../integration/lib');
const { writeRows } = require('./report');

const FLOOD = Number(process.env.BENCH_FLOOD || 1000);
const ADDRS = 20; // 127.0.0.2 .. 127.0.0.21
const DURATION_S = Number(process.env.BENCH_FLOOD_S || 20);
const TIMEOUT_MS = 10000;

let flooderProc = null;
process.on('exit', () => {
  if (flooderProc) {
    try { flooderProc.kill('SIGKILL'); } catch (_) { /* gone */ }
  }
});

// ------------------------------------------------------------ flooder

// Runs in the child: keeps n trickling connections to port open and
// reports its counts to the parent every second.
function flooder(port, n) {
  const socks = new Set();
  const st = {
    opened: 0, connected: 0, open: 0, closed: 0, errors: 0, bytes: 0,
  };
  let stopping = false;
  const head = `GET /api/v1/node HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Trickle: `;
  const one = (i) => {
    if (stopping) return;
    const s = net.connect({ host: '127.0.0.1', port, localAddress: `127.0.0.${2 + (i % ADDRS)}` });
    st.opened++;
    socks.add(s);
    s.setNoDelay(true);
    let timer = null;
    let up = false;
    s.on('connect', () => {
      up = true;
      st.connected++;
      st.open++;
      s.write(head);
      // A byte a second, each connection at its own phase.
      timer = setTimeout(function tick() {
        if (s.destroyed) return;
        s.write('x');
        st.bytes++;
        timer = setTimeout(tick, 1000);
      }, Math.random() * 1000);
    });
    s.on('data', () => {}); // an answer (a refusal): read and ignored
    s.on('error', () => { st.errors++; });
    s.on('close', () => {
      clearTimeout(timer);
      socks.delete(s);
      if (up) st.open--;
      st.closed++;
      if (!stopping) setTimeout(() => one(i), 1000);
    });
  };
  // Not all at once: 100 every 50 ms.
  for (let i = 0; i < n; i++) setTimeout(() => one(i), Math.floor(i / 100) * 50);
  const report = setInterval(() => process.send({ type: 'stats', st }), 1000);
  process.on('message', (m) => {
    if (m !== 'stop') return;
    stopping = true;
    clearInterval(report);
    for (const s of socks) s.destroy();
    process.send({ type: 'stats', st }, () => process.exit(0));
  });
  process.on('disconnect', () => process.exit(0));
}

// --------------------------------------------------------- the parent

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

function statusKb(pid, key) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : NaN;
  } catch (_) {
    return NaN;
  }
}

// Established TCP connections to port from 127.0.0.2..21 (the kernel's
// view, the accept queue included), and those of them the daemon holds
// (their sockets in its descriptor table).
function floodSockets(pid, port) {
  const inodes = new Map();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const lines = fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1);
  for (const l of lines) {
    const f = l.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== '01') continue;
    const [, lport] = f[1].split(':');
    const [raddr] = f[2].split(':');
    if (lport !== hexPort) continue;
    // 127.0.0.x is 0x7F00000x, written little-endian: xx00007F.
    const last = parseInt(raddr.slice(0, 2), 16);
    if (raddr.slice(2) === '00007F' && last >= 2 && last < 2 + ADDRS) inodes.set(f[9], true);
  }
  let held = 0;
  let fds = 0;
  try {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      fds++;
      let t = '';
      try { t = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch (_) { continue; }
      const m = t.match(/^socket:\[(\d+)\]$/);
      if (m && inodes.has(m[1])) held++;
    }
  } catch (_) { /* gone */ }
  return { established: inodes.size, held, fds };
}

// One GET /api/v1/node on a new connection: { ms, ok, err }.
function getNode(d) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const done = (ok, err) => resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, ok, err });
    const req = http.request({
      host: '127.0.0.1', port: d.port, path: '/api/v1/node', agent: false,
      headers: { Authorization: `Bearer ${d.token}` },
    }, (res) => {
      res.resume();
      res.on('end', () => done(res.statusCode === 200, res.statusCode === 200 ? null : `HTTP ${res.statusCode}`));
      res.on('error', (e) => done(false, e.code || e.message));
    });
    req.on('error', (e) => done(false, e.code || e.message));
    req.setTimeout(TIMEOUT_MS, () => req.destroy(Object.assign(new Error('timeout'), { code: `timeout ${TIMEOUT_MS} ms` })));
    req.end();
  });
}

const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');

// Sequential requests for DURATION_S; sample() is called every second.
async function client(d, sample) {
  const lat = [];
  const errors = new Map();
  let n = 0;
  const timer = setInterval(sample, 1000);
  const end = Date.now() + DURATION_S * 1000;
  while (Date.now() < end) {
    const r = await getNode(d);
    n++;
    if (r.ok) lat.push(r.ms);
    else errors.set(r.err, (errors.get(r.err) || 0) + 1);
  }
  clearInterval(timer);
  const nerr = [...errors.values()].reduce((a, b) => a + b, 0);
  return {
    n, ok: lat.length, p50: pct(lat, 50), p99: pct(lat, 99), max: lat.length ? Math.max(...lat) : NaN,
    errors: nerr, kinds: [...errors].map(([k, v]) => `${v} x ${k}`).join(', '),
  };
}

async function main() {
  const tStart = Date.now();
  const loads = [os.loadavg()[0]];
  let d = null;
  let child = null;
  const problems = [];
  const res = {};
  try {
    d = await startNodee({ args: ['--log-level', 'warn'] });
    await sleep(1000);
    res.rssBefore = statusKb(d.pid, 'VmRSS') / 1024;

    console.log(`flood: the client alone for ${DURATION_S} s`);
    res.base = await client(d, () => {});
    console.log(`  ${res.base.ok} requests, p50 ${f2(res.base.p50)} ms, p99 ${f2(res.base.p99)} ms, `
      + `max ${f2(res.base.max)} ms, ${res.base.errors} errors`);
    loads.push(os.loadavg()[0]);

    console.log(`flood: ${FLOOD} trickling connections from 127.0.0.2-${1 + ADDRS}`);
    child = fork(__filename, ['--flooder', String(d.port), String(FLOOD)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    flooderProc = child;
    let st = null;
    child.on('message', (m) => { if (m.type === 'stats') st = m.st; });
    const deadline = Date.now() + 20000;
    while (!st || st.connected < FLOOD) {
      if (Date.now() > deadline) break;
      await sleep(200);
    }
    await sleep(2000);
    const before = floodSockets(d.pid, d.port);
    console.log(`  flooder: ${st ? st.connected : 0} connected; the daemon holds ${before.held}, `
      + `${before.established - before.held} wait in the accept queue`);
    const samples = [];
    res.flood = await client(d, () => samples.push(floodSockets(d.pid, d.port)));
    res.rssFlood = statusKb(d.pid, 'VmRSS') / 1024;
    samples.push(floodSockets(d.pid, d.port));
    loads.push(os.loadavg()[0]);
    res.held = { min: Math.min(...samples.map((x) => x.held)), max: Math.max(...samples.map((x) => x.held)) };
    res.queued = Math.max(...samples.map((x) => x.established - x.held));
    res.fdsMax = Math.max(...samples.map((x) => x.fds));
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('the flooder died');
    const stats = await new Promise((resolve) => {
      child.once('message', (m) => resolve(m.st));
      child.once('exit', () => resolve(st));
      child.send('stop');
    });
    await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
    child = null;
    flooderProc = null;
    res.stats = stats;
    console.log(`  ${res.flood.ok} requests, p50 ${f2(res.flood.p50)} ms, p99 ${f2(res.flood.p99)} ms, `
      + `max ${f2(res.flood.max)} ms, ${res.flood.errors} errors${res.flood.kinds ? ` (${res.flood.kinds})` : ''}`);

    // After the flood: how soon is the client answered again?
    const t0 = Date.now();
    let after = null;
    while (Date.now() - t0 < 30000) {
      after = await getNode(d);
      if (after.ok) break;
    }
    res.recover = after && after.ok ? Date.now() - t0 : NaN;
  } finally {
    if (child) {
      try { child.kill('SIGKILL'); } catch (_) { /* gone */ }
    }
    if (d && !d.exited) {
      const st = await d.stop('SIGTERM');
      if (st.code !== 0) problems.push(`nodee exited ${JSON.stringify(st)}`);
      fs.rmSync(d.prefix, { recursive: true, force: true });
    }
  }

  const f = (x, dp = 2) => (Number.isFinite(x) ? x.toFixed(dp) : '-');
  const goal = 2 * res.base.p99 + 10;
  const { base: b, flood: fl, stats: s } = res;
  console.log('');
  console.log(`slow-loris flood: ${FLOOD} connections from ${ADDRS} addresses trickling a byte a second; `
    + `a client on 127.0.0.1 sends GET /api/v1/node, a new connection each, for ${DURATION_S} s`);
  console.log(`${''.padEnd(28)}${'alone'.padStart(10)}${'flood'.padStart(10)}   goal`);
  for (const [k, a, z, g] of [
    ['requests answered 200', b.ok, fl.ok, ''],
    ['p50 ms', b.p50, fl.p50, ''],
    ['p99 ms', b.p99, fl.p99, `<= ${f(goal)} (2 x alone + 10)`],
    ['max ms', b.max, fl.max, ''],
    ['errors', b.errors, fl.errors, '0'],
  ]) {
    console.log(`${k.padEnd(28)}${(Number.isInteger(a) ? String(a) : f(a)).padStart(10)}`
      + `${(Number.isInteger(z) ? String(z) : f(z)).padStart(10)}   ${g}`);
  }
  if (fl.kinds) console.log(`  errors under the flood: ${fl.kinds}`);
  console.log(`flood connections the daemon held: ${res.held.min}-${res.held.max} of ${FLOOD} `
    + `(at most ${res.queued} more waited in the kernel's accept queue); the flooder connected ${s.connected} times, `
    + `${s.closed} closed (${s.errors} with an error), ${s.bytes} bytes trickled`);
  console.log(`daemon: RSS ${f(res.rssBefore, 1)} MB before, ${f(res.rssFlood, 1)} MB under the flood, at most ${res.fdsMax} descriptors; `
    + `after the flood the client was answered again within ${f(res.recover, 0)} ms`);
  console.log(`cores: ${os.cpus().length}; 1-min load during the run: ${Math.min(...loads).toFixed(2)}-${Math.max(...loads).toFixed(2)}; `
    + `run took ${((Date.now() - tStart) / 1000).toFixed(0)} s`);

  writeRows('flood', [
    { measure: `client requests answered 200 in ${DURATION_S} s`, value: fl.ok, unit: '', baseline: 'no flood', baseline_value: b.ok },
    { measure: 'client p50', value: fl.p50, unit: 'ms', baseline: 'no flood', baseline_value: b.p50 },
    { measure: 'client p99', value: fl.p99, unit: 'ms', baseline: 'no flood', baseline_value: b.p99,
      goal: `<= ${f(goal)} (2 x no flood + 10 ms)` },
    { measure: 'client max', value: fl.max, unit: 'ms', baseline: 'no flood', baseline_value: b.max },
    { measure: 'client errors', value: fl.errors, unit: '', baseline: 'no flood', baseline_value: b.errors, goal: '= 0' },
    { measure: 'flood connections the daemon held (max of 1 s samples; default limits 1000 in all, 64 per address)', value: res.held.max, unit: '',
      baseline: 'opened', baseline_value: FLOOD },
    { measure: 'flood connections in the kernel\'s accept queue (max)', value: res.queued, unit: '' },
    { measure: 'daemon RSS under the flood', value: res.rssFlood, unit: 'MB', baseline: 'before', baseline_value: res.rssBefore },
    { measure: 'after the flood, client answered again within', value: res.recover, unit: 'ms' },
  ]);
  if (problems.length) {
    for (const p of problems) console.log(`PROBLEM: ${p}`);
    process.exitCode = 1;
  }
}

if (process.argv[2] === '--flooder') {
  flooder(Number(process.argv[3]), Number(process.argv[4]));
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
