// make bench: the API under load with 1 000 services.
//
// A daemon on a temporary prefix supervises BENCH_SERVICES (1000) services
// of a tiny sleeping artifact (tiny.c, compiled here, served from a
// loopback depot), then wrk -t2 -c32 -d10s --latency runs against
//
//   GET /healthz                          the ceiling: no store, no JSON
//   GET /api/v1/services/{coordinate}     one service
//   GET /api/v1/services                  the full list
//
// BENCH_API_ROUNDS (3) rounds of the three in turn; the median round's
// req/s and p99 of each.  Also the daemon's RSS idle with the services and
// after the wrk rounds.  wrk runs on the same 2 cores as the daemon.  A
// benchmark, not a test: it reports numbers and the goals of the
// performance issue beside them, and exits non-zero only if something
// breaks (a failed request, a service that does not run, a process left
// behind).
'use strict';

const { execFile, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const {
  startNodee, tmpdir, sleep, serviceGroups, killLeftovers,
} = require('../integration/lib');
const { Depot } = require('../integration/depot');
const { makeZip } = require('../integration/zipper');
const { writeRows } = require('./report');

const N = Number(process.env.BENCH_SERVICES || 1000);
const ROUNDS = Number(process.env.BENCH_API_ROUNDS || 3);
const WRK_S = Number(process.env.BENCH_WRK_S || 10);
const IDLE_S = 10;
const PUT_CONCURRENCY = 16;
const GAV = 'bench:tiny:1.0.0';

const problems = [];
const prefixes = new Set();
const wrks = new Set();

process.on('exit', () => {
  for (const p of wrks) {
    try { p.kill('SIGKILL'); } catch (_) { /* gone */ }
  }
  for (const p of prefixes) killLeftovers(p);
});

function problem(msg) {
  problems.push(msg);
  console.log(`  PROBLEM: ${msg}`);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function statusKb(pid, key) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : NaN;
  } catch (_) {
    return NaN;
  }
}

async function pool(n, conc, fn) {
  const out = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(conc, n) }, async () => {
    while (next < n) {
      const k = next++;
      out[k] = await fn(k);
    }
  }));
  return out;
}

// One wrk run: { rps, p99 (ms), requests, non2xx, errors }.  --timeout
// 10s: wrk leaves slower requests out of its latencies (as timeouts),
// which would hide the tail of a slow endpoint.
function wrk(url, token) {
  return new Promise((resolve, reject) => {
    const p = execFile('wrk', ['-t2', '-c32', `-d${WRK_S}s`, '--latency', '--timeout', '10s',
      '-H', `Authorization: Bearer ${token}`, url], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      wrks.delete(p);
      if (err) {
        reject(new Error(`wrk ${url}: ${err.message} ${stderr}`));
        return;
      }
      const unit = (v, u) => Number(v) * ({ us: 0.001, ms: 1, s: 1000 }[u] ?? NaN);
      const p99 = stdout.match(/^\s*99%\s+([\d.]+)(us|ms|s)\s*$/m);
      const rps = stdout.match(/^Requests\/sec:\s+([\d.]+)/m);
      const non2xx = stdout.match(/Non-2xx or 3xx responses:\s+(\d+)/);
      const sockErr = stdout.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
      const reqs = stdout.match(/^\s*(\d+) requests in/m);
      resolve({
        rps: rps ? Number(rps[1]) : NaN,
        p99: p99 ? unit(p99[1], p99[2]) : NaN,
        requests: reqs ? Number(reqs[1]) : 0,
        non2xx: non2xx ? Number(non2xx[1]) : 0,
        errors: sockErr ? sockErr.slice(1).map(Number).reduce((a, b) => a + b, 0) : 0,
      });
    });
    wrks.add(p);
  });
}

async function waitJob(d, id) {
  for (;;) {
    const j = (await d.req({ path: `/api/v1/jobs/${id}` })).json;
    if (j.state === 'succeeded') return;
    if (j.state === 'failed' || j.state === 'cancelled') throw new Error(`install: ${j.error}`);
    await sleep(50);
  }
}

// Running services, from /metrics: the full list while waiting would
// leave its garbage in the idle RSS.
async function running(d) {
  const r = await d.req({ path: '/metrics' });
  const m = r.text.match(/^nodee_services\{state="running"\} (\d+)$/m);
  if (r.status !== 200 || !m) throw new Error(`GET /metrics: ${r.status} ${r.text.slice(0, 200)}`);
  return Number(m[1]);
}

async function listServices(d) {
  const r = await d.req({ path: '/api/v1/services' });
  if (r.status !== 200) throw new Error(`GET /api/v1/services: ${r.status} ${r.text.slice(0, 200)}`);
  return { n: r.json.services.filter((s) => s.state === 'running').length, bytes: r.text.length };
}

async function deleteAll(d, coords) {
  const st = await pool(coords.length, PUT_CONCURRENCY, async (k) => {
    const r = await d.req({ method: 'DELETE', path: `/api/v1/services/${coords[k]}?purge=true` });
    return r.status;
  });
  const bad = st.filter((s) => s !== 200 && s !== 404);
  if (bad.length) problem(`${bad.length} DELETEs answered ${[...new Set(bad)].join(', ')}`);
}

async function main() {
  const tStart = Date.now();
  const loads = [os.loadavg()[0]];
  const work = tmpdir('bench-api');
  const prefix = tmpdir('bench-api-prefix');
  fs.chmodSync(prefix, 0o755); // the services' dynamic uids traverse it
  prefixes.add(prefix);
  const tiny = path.join(work, 'tiny');
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', tiny, path.join(__dirname, 'tiny.c')]);
  const depot = await new Depot().start();
  // Run with no arguments and no BENCH_SOCK, tiny just sleeps.
  depot.put('bench', 'tiny', '1.0.0', makeZip([
    { name: 'bin/', dir: true },
    { name: 'bin/tiny', data: fs.readFileSync(tiny), mode: 0o755, deflate: true },
  ]), 'sha256');
  const version = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'wrk'], { encoding: 'utf8' }).trim();
  const coords = Array.from({ length: N }, (_, i) => `${i}.tiny.api.cell`);
  const spec = { artifact: GAV, command: 'bin/tiny', restart: { policy: 'always' } };
  const res = {};
  let d = null;
  try {
    d = await startNodee({ prefix, args: ['--depot', depot.url, '--log-level', 'warn'] });
    res.rssEmpty = statusKb(d.pid, 'VmRSS') / 1024;

    console.log(`api: ${N} services of a sleeping tiny program`);
    const first = await d.req({ method: 'PUT', path: `/api/v1/services/${coords[0]}`, body: spec });
    if (first.status >= 300) throw new Error(`PUT ${coords[0]}: ${first.status} ${first.text}`);
    if (first.json && first.json.install_job) await waitJob(d, first.json.install_job.id);
    const t0 = Date.now();
    const sts = await pool(N - 1, PUT_CONCURRENCY, async (k) => {
      const r = await d.req({ method: 'PUT', path: `/api/v1/services/${coords[k + 1]}`, body: spec });
      return r.status < 300 ? 'ok' : `${r.status} ${r.text.slice(0, 200)}`;
    });
    const bad = sts.filter((s) => s !== 'ok');
    if (bad.length) throw new Error(`${bad.length} of ${N} PUTs failed, e.g. ${bad[0]}`);
    let n = 0;
    const deadline = Date.now() + 180000;
    while ((n = await running(d)) < N) {
      if (Date.now() > deadline) throw new Error(`only ${n} of ${N} services running after 180 s`);
      await sleep(1000);
    }
    console.log(`  ${N} services running after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await sleep(IDLE_S * 1000);
    res.rssIdle = statusKb(d.pid, 'VmRSS') / 1024;
    loads.push(os.loadavg()[0]);
    console.log(`  RSS idle with ${N} services after ${IDLE_S} s: ${res.rssIdle.toFixed(1)} MB `
      + `(${res.rssEmpty.toFixed(1)} MB with none)`);
    let run = await listServices(d);
    if (run.n !== N) throw new Error(`the list shows ${run.n} of ${N} services running`);
    res.listBytes = run.bytes;
    console.log(`  the list is ${(run.bytes / 1024).toFixed(0)} KB`);

    const base = `http://127.0.0.1:${d.port}`;
    const targets = [
      ['healthz', 'GET /healthz', `${base}/healthz`],
      ['one', 'GET /api/v1/services/{coordinate}', `${base}/api/v1/services/${coords[Math.floor(N / 2)]}`],
      ['list', 'GET /api/v1/services', `${base}/api/v1/services`],
    ];
    const runs = { healthz: [], one: [], list: [] };
    console.log(`  wrk ${version} -t2 -c32 -d${WRK_S}s --latency, ${ROUNDS} rounds`);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [k, label, url] of targets) {
        const w = await wrk(url, d.token);
        runs[k].push(w);
        console.log(`  round ${round} ${label.padEnd(34)} ${w.rps.toFixed(0).padStart(8)} req/s   p99 ${w.p99.toFixed(2).padStart(8)} ms`
          + `   ${w.requests} requests`);
        if (w.non2xx || w.errors) problem(`wrk ${label}: ${w.non2xx} non-2xx answers, ${w.errors} socket errors or timeouts`);
      }
      loads.push(os.loadavg()[0]);
    }
    res.rssAfter = statusKb(d.pid, 'VmRSS') / 1024;
    res.hwm = statusKb(d.pid, 'VmHWM') / 1024;
    for (const [k] of targets) {
      res[k] = { rps: median(runs[k].map((w) => w.rps)), p99: median(runs[k].map((w) => w.p99)) };
    }
    run = await listServices(d);
    if (run.n !== N) problem(`after the wrk rounds ${run.n} of ${N} services are running`);
  } finally {
    if (d && !d.exited) {
      try {
        await deleteAll(d, coords);
        const deadline = Date.now() + 30000;
        while (serviceGroups(prefix).length && Date.now() < deadline) await sleep(200);
      } catch (e) {
        problem(`cleanup: ${e.message}`);
      }
      const st = await d.stop('SIGTERM');
      if (st.code !== 0) problem(`nodee exited ${JSON.stringify(st)}`);
    }
    const left = killLeftovers(prefix);
    if (left.length) problem(`service process groups left after DELETE: ${left.join(' ')}`);
    await depot.stop();
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(prefix, { recursive: true, force: true });
    prefixes.delete(prefix);
  }

  const f = (x, dp) => (Number.isFinite(x) ? x.toFixed(dp) : '-');
  console.log('');
  console.log(`nodee API with ${N} services, wrk -t2 -c32 -d${WRK_S}s, median of ${ROUNDS} rounds (wrk on the same cores)`);
  console.log(`${'request'.padEnd(42)}${'req/s'.padStart(9)}${'p99 ms'.padStart(9)}${'/healthz'.padStart(10)}   goal`);
  const list = `GET /api/v1/services (${(res.listBytes / 1024).toFixed(0)} KB)`;
  for (const [label, w, goal] of [
    ['GET /healthz (the ceiling)', res.healthz, ''],
    ['GET /api/v1/services/{coordinate}', res.one, '>= 20000/s, p99 <= 5 ms, >= 0.6 x healthz'],
    [list, res.list, '>= 300/s, p99 <= 100 ms'],
  ]) {
    console.log(`${label.padEnd(42)}${f(w.rps, 0).padStart(9)}${f(w.p99, 2).padStart(9)}`
      + `${f(w.rps / res.healthz.rps, 2).padStart(10)}   ${goal}`);
  }
  console.log(`RSS: ${f(res.rssEmpty, 1)} MB with no services, ${f(res.rssIdle, 1)} MB idle with ${N} (goal <= 20), `
    + `${f(res.rssAfter, 1)} MB after the wrk rounds (goal < 25), peak ${f(res.hwm, 1)} MB`);
  console.log(`cores: ${os.cpus().length}; 1-min load during the run: ${Math.min(...loads).toFixed(2)}-${Math.max(...loads).toFixed(2)}; `
    + `run took ${((Date.now() - tStart) / 1000).toFixed(0)} s`);

  const hz = 'GET /healthz';
  writeRows('api', [
    { measure: `GET /healthz (the ceiling), req/s`, value: res.healthz.rps, unit: 'req/s' },
    { measure: `GET /healthz (the ceiling), p99`, value: res.healthz.p99, unit: 'ms' },
    { measure: `GET one service of ${N}, req/s`, value: res.one.rps, unit: 'req/s',
      baseline: hz, baseline_value: res.healthz.rps, goal: '>= 20000 and ratio >= 0.6' },
    { measure: `GET one service of ${N}, p99`, value: res.one.p99, unit: 'ms',
      baseline: hz, baseline_value: res.healthz.p99, goal: '<= 5' },
    { measure: `GET the list of ${N} (${(res.listBytes / 1024).toFixed(0)} KB), req/s`, value: res.list.rps, unit: 'req/s',
      baseline: hz, baseline_value: res.healthz.rps, goal: '>= 300' },
    { measure: `GET the list of ${N}, p99`, value: res.list.p99, unit: 'ms',
      baseline: hz, baseline_value: res.healthz.p99, goal: '<= 100' },
    { measure: `RSS idle with ${N} services`, value: res.rssIdle, unit: 'MB',
      baseline: 'no services', baseline_value: res.rssEmpty, goal: '<= 20' },
    { measure: `RSS after the ${3 * ROUNDS} wrk runs`, value: res.rssAfter, unit: 'MB',
      baseline: 'idle before them', baseline_value: res.rssIdle, goal: '< 25' },
  ]);
  if (problems.length) {
    console.log(`\n${problems.length} problem(s):`);
    for (const p of problems) console.log(`  - ${p}`);
    process.exitCode = 1;
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
