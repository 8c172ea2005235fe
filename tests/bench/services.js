// make bench: service supervision, nodee against Debian's supervisord and
// runit (runsvdir + runsv) supervising the same tiny program, in one run.
//
//   1. crash -> running again: kill -9 of the service's process until the
//      new process executes, median and p99 over BENCH_CRASHES crashes;
//   2. BENCH_SERVICES (1000) supervised services: time to start them all,
//      the supervisor's RSS (and PSS) and its CPU while idle for
//      BENCH_IDLE_S seconds;
//   3. with those services under nodee: wrk -t2 -c32 -d10s against
//      GET /api/v1/services/{one} and GET /api/v1/services.
//
// Detection is the same for all three supervisors: tiny.c (compiled here
// into a temporary directory) reads CLOCK_MONOTONIC first thing, connects
// to this script's unix socket and sends "tag pid time"; node's
// process.hrtime() reads the same clock, so kill -> exec is measured
// without any polling.  A benchmark, not a test: it prints numbers and
// the goals of issue 4 beside them, and exits non-zero only if something
// breaks (a service that does not come back, a failed request, a process
// left behind).
'use strict';

const { execFile, execFileSync, spawn } = require('node:child_process');
const { promisify } = require('node:util');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const {
  BIN, startNodee, tmpdir, sleep, sqlRows,
} = require('../integration/lib');
const { Depot } = require('../integration/depot');
const { makeZip } = require('../integration/zipper');
const { writeRows } = require('./report');

const CRASHES = Number(process.env.BENCH_CRASHES || 200);
const N = Number(process.env.BENCH_SERVICES || 1000);
const IDLE_S = Number(process.env.BENCH_IDLE_S || 30);
const WRK_S = Number(process.env.BENCH_WRK_S || 10);
// The crash test goes round-robin over a few services and kills each one
// only after it has run MIN_UP_MS: runsv waits a second before restarting a
// ./run that lived less than one, and this is about the first restart.
// Kills are at least MIN_UP_MS / CRASH_SET apart plus an exponentially
// distributed extra wait (mean KILL_EXTRA_MS), so that they do not lock
// onto the phase of a supervisor's periodic tick (supervisord polls once
// a second): Poisson arrivals see time averages.
const CRASH_SET = 16;
const MIN_UP_MS = 1100;
const KILL_EXTRA_MS = 100;
const RESTART_TIMEOUT_MS = 5000;
const PUT_CONCURRENCY = 16;
const GAV = 'bench:tiny:1.0.0';

const run = promisify(execFile);
const problems = [];
const notes = [];

function problem(msg) {
  problems.push(msg);
  console.log(`  PROBLEM: ${msg}`);
}

function ms(ns) {
  return Number(ns) / 1e6;
}

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
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

// ---------------------------------------------------------------- /proc

function procStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state): utime is field 14, stime 15, ppid 4.
    return { state: f[0], ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch (_) {
    return null;
  }
}

function alive(pid) {
  const st = procStat(pid);
  return st !== null && st.state !== 'Z' && st.state !== 'X';
}

// CPU time of every thread in ns (schedstat), and in clock ticks (stat).
function cpu(pids) {
  let ns = 0;
  let ticks = 0;
  for (const pid of pids) {
    const st = procStat(pid);
    if (st) ticks += st.ticks;
    try {
      for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
        ns += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      }
    } catch (_) { /* gone */ }
  }
  return { ns, ticks };
}

function statusKb(pid, key) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : 0;
  } catch (_) {
    return 0;
  }
}

function pssKb(pid) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+) kB/m);
    return m ? Number(m[1]) : 0;
  } catch (_) {
    return 0;
  }
}

function memMb(pids) {
  let rss = 0;
  let pss = 0;
  for (const p of pids) {
    rss += statusKb(p, 'VmRSS');
    pss += pssKb(p);
  }
  return { rss: rss / 1024, pss: pss / 1024 };
}

function childrenOf(ppid) {
  const out = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = procStat(e);
    if (st && st.ppid === ppid) out.push(Number(e));
  }
  return out;
}

function threads(pid) {
  try {
    return fs.readdirSync(`/proc/${pid}/task`).length;
  } catch (_) {
    return 0;
  }
}

// Idle CPU of pids over IDLE_S seconds, in % of one core.
async function idleCpu(pidsFn) {
  const pids0 = pidsFn();
  const a = cpu(pids0);
  const t0 = process.hrtime.bigint();
  await sleep(IDLE_S * 1000);
  const pids1 = pidsFn();
  const b = cpu(pids0);
  const wall = Number(process.hrtime.bigint() - t0);
  if (pids1.length !== pids0.length) {
    notes.push(`the set of supervisor processes changed during the idle window (${pids0.length} -> ${pids1.length})`);
  }
  const hz = 100;
  return {
    pct: (100 * (b.ns - a.ns)) / wall,
    pctTicks: (100 * ((b.ticks - a.ticks) / hz) * 1e9) / wall,
    ticks: b.ticks - a.ticks,
  };
}

// --------------------------------------------- starts reported by tiny

class Starts {
  constructor(sockPath) {
    this.sockPath = sockPath;
    this.latest = new Map(); // tag -> { tag, pid, t, recv, seq }
    this.seq = 0;
    this.pids = new Set();
    this.waiters = new Set();
    this.server = net.createServer((c) => {
      let buf = '';
      c.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          this.line(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
      c.on('error', () => {});
    });
  }

  listen() {
    return new Promise((resolve, reject) => {
      this.server.on('error', reject);
      this.server.listen(this.sockPath, () => {
        fs.chmodSync(this.sockPath, 0o777);
        resolve();
      });
    });
  }

  line(l) {
    const recv = process.hrtime.bigint();
    const [tag, pid, t] = l.split(' ');
    if (!t) return;
    const [s, frac] = t.split('.');
    const e = {
      tag, pid: Number(pid), t: BigInt(s) * 1000000000n + BigInt(frac), recv, seq: ++this.seq,
    };
    this.latest.set(tag, e);
    this.pids.add(e.pid);
    for (const w of this.waiters) w();
  }

  // Resolves with true when pred() holds, false after timeoutMs.
  until(pred, timeoutMs) {
    if (pred()) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer = null;
      const w = () => {
        if (!pred()) return;
        clearTimeout(timer);
        this.waiters.delete(w);
        resolve(true);
      };
      timer = setTimeout(() => {
        this.waiters.delete(w);
        resolve(pred());
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  count(prefix) {
    let n = 0;
    for (const k of this.latest.keys()) if (k.startsWith(prefix)) n++;
    return n;
  }

  pidsOf(prefix) {
    const out = [];
    for (const [k, e] of this.latest) if (k.startsWith(prefix)) out.push(e.pid);
    return out;
  }

  close() {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

// ------------------------------------------------------ the crash test

// Kills the process of tags[i % n] CRASHES times and measures the time
// to the next process's first instruction (t in tiny) and to the bench
// hearing of it.  A service is killed again only after its restart was
// seen and it has run MIN_UP_MS; kills are spaced as said above.
// The bench does not wait for one restart before the next service's kill,
// so a slow supervisor (supervisord) may have a few restarts pending at
// once; for a fast one each restart is long over before the next kill.
async function crashTest(name, starts, tags) {
  const exec = [];
  const heard = [];
  const pending = new Map();
  const gap = BigInt(Math.round((MIN_UP_MS / tags.length) * 1e6));
  let lastKill = 0n;
  let missing = 0;
  let maxPending = 0;
  for (let i = 0; i < CRASHES; i++) {
    const tag = tags[i % tags.length];
    if (pending.has(tag)) await pending.get(tag);
    const cur = starts.latest.get(tag);
    const up = ms(process.hrtime.bigint() - cur.t);
    const since = ms(process.hrtime.bigint() - lastKill);
    const spacing = ms(gap) - KILL_EXTRA_MS * Math.log(1 - Math.random());
    const wait = Math.max(MIN_UP_MS - up, spacing - since);
    if (wait > 0) await sleep(wait);
    const t0 = process.hrtime.bigint();
    lastKill = t0;
    try {
      process.kill(cur.pid, 'SIGKILL');
    } catch (e) {
      problem(`${name}: ${tag} pid ${cur.pid} was already gone before crash ${i} (${e.code})`);
      await starts.until(() => starts.latest.get(tag).seq > cur.seq, RESTART_TIMEOUT_MS);
      continue;
    }
    const p = starts.until(() => starts.latest.get(tag).seq > cur.seq, RESTART_TIMEOUT_MS).then(async (ok) => {
      if (!ok) {
        missing++;
        problem(`${name}: ${tag} did not come back within ${RESTART_TIMEOUT_MS} ms after kill -9 of pid ${cur.pid} (crash ${i})`);
        if (!await starts.until(() => starts.latest.get(tag).seq > cur.seq, 30000)) {
          throw new Error(`${name}: ${tag} never came back`);
        }
      } else {
        const next = starts.latest.get(tag);
        exec.push(ms(next.t - t0));
        heard.push(ms(next.recv - t0));
      }
      pending.delete(tag);
    });
    pending.set(tag, p);
    maxPending = Math.max(maxPending, pending.size);
  }
  await Promise.all(pending.values());
  return {
    median: pct(exec, 50), p99: pct(exec, 99), max: Math.max(...exec),
    heardMedian: pct(heard, 50), heardP99: pct(heard, 99), n: exec.length, missing, maxPending,
  };
}

// ------------------------------------------------------------- nodee

function nodeeSpec(sock, tag, restart) {
  return {
    artifact: GAV, command: 'bin/tiny', args: [sock, tag], restart,
  };
}

async function nodeeDeleteAll(d, coords) {
  const st = await pool(coords.length, PUT_CONCURRENCY, async (k) => {
    const r = await d.req({ method: 'DELETE', path: `/api/v1/services/${coords[k]}?purge=true` });
    return r.status;
  });
  const bad = st.filter((s) => s !== 200);
  if (bad.length) problem(`nodee: ${bad.length} DELETEs answered ${[...new Set(bad)].join(', ')}`);
}

async function waitGone(pids, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = pids.filter(alive);
    if (left.length === 0 || Date.now() > deadline) return left;
    await sleep(50);
  }
}

async function waitJob(d, id) {
  for (;;) {
    const j = (await d.req({ path: `/api/v1/jobs/${id}` })).json;
    if (j.state === 'succeeded') return;
    if (j.state === 'failed' || j.state === 'cancelled') throw new Error(`install: ${j.error}`);
    await sleep(20);
  }
}

// Runs wrk and returns { rps, p99, non2xx, errors, timeouts, requests }.
// --timeout 10s: wrk leaves requests slower than its default 2 s out of
// the latency figures (counting them as socket timeouts), which would hide
// the tail of a slow endpoint.
async function wrk(url, token) {
  const { stdout } = await run('wrk', ['-t2', '-c32', `-d${WRK_S}s`, '--latency', '--timeout', '10s',
    '-H', `Authorization: Bearer ${token}`, url], { maxBuffer: 1 << 20 });
  const unit = (v, u) => Number(v) * ({ us: 0.001, ms: 1, s: 1000 }[u] ?? NaN);
  const p99 = stdout.match(/^\s*99%\s+([\d.]+)(us|ms|s)\s*$/m);
  const rps = stdout.match(/^Requests\/sec:\s+([\d.]+)/m);
  const non2xx = stdout.match(/Non-2xx or 3xx responses:\s+(\d+)/);
  const sockErr = stdout.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const reqs = stdout.match(/^\s*(\d+) requests in/m);
  return {
    rps: rps ? Number(rps[1]) : NaN,
    p99: p99 ? unit(p99[1], p99[2]) : NaN,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    errors: sockErr ? sockErr.slice(1, 4).map(Number).reduce((a, b) => a + b, 0) : 0,
    timeouts: sockErr ? Number(sockErr[4]) : 0,
    requests: reqs ? Number(reqs[1]) : 0,
    raw: stdout,
  };
}

// ------------------------------------------------------- supervisord

// minfds: supervisord refuses to start unless RLIMIT_NOFILE allows that
// many descriptors, and its child closes every descriptor below it one by
// one before exec, so it is the default (1024) unless the programs need
// more: about five each (three pipes, two log files).
function supervisordConf(dir, programs) {
  const minfds = Math.max(1024, 6 * programs.length + 256);
  fs.mkdirSync(path.join(dir, 'childlog'), { recursive: true });
  let s = `[supervisord]
nodaemon=true
logfile=${dir}/supervisord.log
pidfile=${dir}/supervisord.pid
childlogdir=${dir}/childlog
loglevel=warn
minfds=${minfds}
`;
  for (const [name, cmd] of programs) {
    s += `
[program:${name}]
command=${cmd}
autostart=true
autorestart=true
startsecs=0
stopsignal=TERM
stopwaitsecs=5
`;
  }
  const conf = path.join(dir, 'supervisord.conf');
  fs.writeFileSync(conf, s);
  return conf;
}

function spawnLogged(cmd, args, opts, tag) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  p.out = '';
  p.stdout.on('data', (x) => { p.out += x; });
  p.stderr.on('data', (x) => { p.out += x; });
  p.exitPromise = new Promise((resolve) => p.on('exit', (code, signal) => {
    p.exited = { code, signal };
    resolve(p.exited);
  }));
  p.tag = tag;
  return p;
}

async function stopProc(p, sig, timeoutMs) {
  if (!p || p.exited) return;
  try { p.kill(sig); } catch (_) { /* gone */ }
  const t = setTimeout(() => { try { p.kill('SIGKILL'); } catch (_) { /* gone */ } }, timeoutMs);
  await p.exitPromise;
  clearTimeout(t);
}

// ------------------------------------------------------------- runit

function runitDir(dir, tiny, names) {
  fs.mkdirSync(dir, { recursive: true });
  for (const n of names) {
    fs.mkdirSync(path.join(dir, n));
    // ./run is the tiny binary itself: no shell between runsv and it.
    fs.copyFileSync(tiny, path.join(dir, n, 'run'));
    fs.chmodSync(path.join(dir, n, 'run'), 0o755);
  }
}

// ------------------------------------------------------------- main

async function main() {
  const tStart = Date.now();
  const work = tmpdir('bench-svc');
  fs.chmodSync(work, 0o755); // services running as a dynamic uid connect here
  const sock = path.join(work, 's.sock');
  const tiny = path.join(work, 'tiny');
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', tiny, path.join(__dirname, 'tiny.c')]);
  const zip = makeZip([
    { name: 'bin/', dir: true },
    { name: 'bin/tiny', data: fs.readFileSync(tiny), mode: 0o755, deflate: true },
  ]);
  const depot = await new Depot().start();
  depot.put('bench', 'tiny', '1.0.0', zip, 'sha256');
  const starts = new Starts(sock);
  await starts.listen();

  const prefix = tmpdir('bench-prefix');
  fs.chmodSync(prefix, 0o755);
  let d = null;
  let sup = null;
  let rsd = null;
  let runsvPids = [];
  const res = {
    nodee: {}, supervisord: {}, runit: {},
  };
  const rss = [];
  const loads = [['start', os.loadavg()]];
  const version = {};

  try {
    version.supervisord = execFileSync('supervisord', ['--version'], { encoding: 'utf8' }).trim();
    version.runit = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'runit'], { encoding: 'utf8' }).trim();
    version.wrk = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'wrk'], { encoding: 'utf8' }).trim();
    try {
      version.nodee = `${execFileSync(BIN, ['--version'], { encoding: 'utf8' }).trim()}, tree `
        + execFileSync('git', ['-C', path.join(__dirname, '../..'), 'describe', '--always', '--dirty'], { encoding: 'utf8' }).trim();
    } catch (_) {
      version.nodee = '?';
    }

    d = await startNodee({
      prefix,
      args: ['--depot', depot.url, '--log-level', 'info'],
      // The default range (70000-79999) holds the 1 000 services and the
      // crash set; the uids are shared machine-wide with other daemons.
    });
    rss.push(['nodee started, no services', statusKb(d.pid, 'VmRSS') / 1024]);

    // ---------------------------------------------------- 1. crashes
    console.log(`1. crash -> running again, ${CRASHES} kill -9 round-robin over ${CRASH_SET} services each`);
    {
      // nodee: the first PUT installs the artifact from the depot (202).
      const coords = Array.from({ length: CRASH_SET }, (_, i) => `c${i}.crash.bench.cell`);
      const tags = coords.map((_, i) => `n-c${i}`);
      const restart = {
        policy: 'always', delay_ms: 0, max_restarts: 1000000, period_s: 60,
      };
      const sts = [];
      let job = null;
      for (let i = 0; i < CRASH_SET; i++) {
        const r = await d.req({ method: 'PUT', path: `/api/v1/services/${coords[i]}`, body: nodeeSpec(sock, tags[i], restart) });
        sts.push(r.status);
        if (r.status === 202 && r.json && r.json.install_job) job = r.json.install_job.id;
        if (r.status >= 300) throw new Error(`PUT ${coords[i]}: ${r.status} ${r.text}`);
      }
      if (job) await waitJob(d, job);
      else notes.push(`nodee: no PUT answered 202 with install_job although the artifact was not installed (${sts.join(',')})`);
      if (!await starts.until(() => starts.count('n-c') === CRASH_SET, 15000)) {
        throw new Error(`nodee: only ${starts.count('n-c')} of ${CRASH_SET} crash services reported`);
      }
      const cpu0 = cpu([d.pid]);
      res.nodee.crash = await crashTest('nodee', starts, tags);
      res.nodee.crashCpuMs = (cpu([d.pid]).ns - cpu0.ns) / 1e6;
      // The store is written after the new process runs: let it settle.
      let restarts = 0;
      let states = [];
      for (let k = 0; k < 20; k++) {
        restarts = 0;
        states = [];
        for (const c of coords) {
          const r = await d.req({ path: `/api/v1/services/${c}` });
          restarts += r.json.restarts;
          if (r.json.state !== 'running') states.push(`${c} is ${r.json.state}`);
        }
        if (restarts === res.nodee.crash.n + res.nodee.crash.missing && states.length === 0) break;
        await sleep(100);
      }
      if (states.length) problem(`nodee: after the crash test ${states.join(', ')}`);
      if (restarts !== res.nodee.crash.n + res.nodee.crash.missing) {
        problem(`nodee: the services' restart counts add up to ${restarts}, the bench saw ${res.nodee.crash.n} restarts`);
      }
      // nodee's own view of exit -> start, from its log (ms resolution).
      res.nodee.crashLog = logGaps(d.stderr, coords);
      rss.push([`nodee after ${CRASHES} restarts`, statusKb(d.pid, 'VmRSS') / 1024]);
      const pids = starts.pidsOf('n-c');
      await nodeeDeleteAll(d, coords);
      const left = await waitGone(pids, 15000);
      if (left.length) problem(`nodee: pids ${left.join(' ')} still alive 15 s after DELETE`);
      console.log(`  nodee       median ${res.nodee.crash.median.toFixed(2)} ms, p99 ${res.nodee.crash.p99.toFixed(2)} ms`);

      // supervisord
      const sdir = path.join(work, 'sup-crash');
      fs.mkdirSync(sdir);
      const conf = supervisordConf(sdir, Array.from({ length: CRASH_SET }, (_, i) => [`s-c${i}`, `${tiny} ${sock} s-c${i}`]));
      sup = spawnLogged('supervisord', ['-n', '-c', conf], {}, 'supervisord');
      if (!await starts.until(() => starts.count('s-c') === CRASH_SET, 15000)) {
        throw new Error(`supervisord: only ${starts.count('s-c')} of ${CRASH_SET} started:\n${sup.out}`);
      }
      res.supervisord.crash = await crashTest('supervisord', starts, Array.from({ length: CRASH_SET }, (_, i) => `s-c${i}`));
      const spids = starts.pidsOf('s-c');
      await stopProc(sup, 'SIGTERM', 20000);
      sup = null;
      let l2 = await waitGone(spids, 5000);
      if (l2.length) problem(`supervisord: pids ${l2.join(' ')} alive after it stopped`);
      console.log(`  supervisord median ${res.supervisord.crash.median.toFixed(2)} ms, p99 ${res.supervisord.crash.p99.toFixed(2)} ms`);

      // runit
      const rdir = path.join(work, 'runit-crash');
      const rnames = Array.from({ length: CRASH_SET }, (_, i) => `r-c${i}`);
      runitDir(rdir, tiny, rnames);
      rsd = spawnLogged('runsvdir', [rdir], { env: { ...process.env, BENCH_SOCK: sock } }, 'runsvdir');
      if (!await starts.until(() => starts.count('r-c') === CRASH_SET, 15000)) {
        throw new Error(`runit: only ${starts.count('r-c')} of ${CRASH_SET} started:\n${rsd.out}`);
      }
      runsvPids = childrenOf(rsd.pid);
      res.runit.crash = await crashTest('runit', starts, rnames);
      const rpids = starts.pidsOf('r-c');
      await stopProc(rsd, 'SIGHUP', 20000);
      rsd = null;
      l2 = await waitGone([...rpids, ...runsvPids], 15000);
      if (l2.length) problem(`runit: pids ${l2.join(' ')} alive after runsvdir stopped`);
      runsvPids = [];
      console.log(`  runit       median ${res.runit.crash.median.toFixed(2)} ms, p99 ${res.runit.crash.p99.toFixed(2)} ms`);
    }
    loads.push(['after the crash tests', os.loadavg()]);

    // ------------------------------------------- 2 and 3. N services
    console.log(`2. ${N} supervised services: start all, RSS, idle CPU over ${IDLE_S} s`);
    {
      const coords = Array.from({ length: N }, (_, i) => `${i}.tiny.bench.cell`);
      const restart = { policy: 'always' };
      const putMs = [];
      // Meanwhile, how long does GET /healthz take (the HTTP pool is
      // shared with the PUTs, which wait for the supervisor thread)?
      const probeMs = [];
      let probing = true;
      const probe = (async () => {
        while (probing) {
          const a = process.hrtime.bigint();
          try {
            await d.req({ path: '/healthz' });
            probeMs.push(ms(process.hrtime.bigint() - a));
          } catch (e) {
            probeMs.push(Infinity);
          }
          await sleep(20);
        }
      })();
      const t0 = process.hrtime.bigint();
      const sts = await pool(N, PUT_CONCURRENCY, async (i) => {
        const a = process.hrtime.bigint();
        const r = await d.req({ method: 'PUT', path: `/api/v1/services/${coords[i]}`, body: nodeeSpec(sock, `n-${i}`, restart) });
        putMs.push(ms(process.hrtime.bigint() - a));
        if (r.status !== 201) return `${r.status} ${r.text.slice(0, 200)}`;
        return 201;
      });
      const tPut = process.hrtime.bigint();
      probing = false;
      await probe;
      res.nodee.probe = { n: probeMs.length, median: pct(probeMs, 50), max: Math.max(...probeMs) };
      const bad = sts.filter((s) => s !== 201);
      if (bad.length) problem(`nodee: ${bad.length} of ${N} PUTs did not answer 201, e.g. ${bad[0]}`);
      const okAll = await starts.until(() => starts.count('n-') - starts.count('n-c') >= N, 120000);
      const tAll = process.hrtime.bigint();
      if (!okAll) problem(`nodee: only ${starts.count('n-') - starts.count('n-c')} of ${N} services started within 120 s`);
      res.nodee.startAll = ms(tAll - t0) / 1000;
      res.nodee.putAll = ms(tPut - t0) / 1000;
      res.nodee.putMedian = pct(putMs, 50);
      res.nodee.putP99 = pct(putMs, 99);
      res.nodee.putMax = Math.max(...putMs);
      console.log(`  nodee: ${N} PUTs in ${res.nodee.putAll.toFixed(2)} s, all running after ${res.nodee.startAll.toFixed(2)} s`);
      await sleep(2000);
      const list = await d.req({ path: '/api/v1/services' });
      const running = list.json.services.filter((s) => s.state === 'running').length;
      res.nodee.listBytes = list.text.length;
      if (running !== N) problem(`nodee: the list shows ${running} of ${N} services running`);
      res.nodee.mem = memMb([d.pid]);
      res.nodee.threads = threads(d.pid);
      rss.push([`nodee with ${N} services`, res.nodee.mem.rss]);
      res.nodee.idle = await idleCpu(() => [d.pid]);
      rss.push([`nodee after ${IDLE_S} s idle`, statusKb(d.pid, 'VmRSS') / 1024]);
      console.log(`  nodee: RSS ${res.nodee.mem.rss.toFixed(1)} MB, idle ${res.nodee.idle.pct.toFixed(3)} % of a core`);

      console.log(`3. wrk -t2 -c32 -d${WRK_S}s --latency against nodee with ${N} services`);
      const base = `http://127.0.0.1:${d.port}/api/v1/services`;
      const one = coords[Math.floor(N / 2)];
      res.nodee.wrkOne = await wrk(`${base}/${one}`, d.token);
      rss.push(['nodee after wrk GET one', statusKb(d.pid, 'VmRSS') / 1024]);
      res.nodee.wrkList = await wrk(base, d.token);
      rss.push(['nodee after wrk GET list', statusKb(d.pid, 'VmRSS') / 1024]);
      for (const [k, w] of [['GET one', res.nodee.wrkOne], ['GET list', res.nodee.wrkList]]) {
        console.log(`  ${k}: ${w.rps.toFixed(0)} req/s, p99 ${w.p99.toFixed(2)} ms (${w.requests} requests)`);
        if (w.non2xx || w.errors) problem(`nodee: wrk ${k}: ${w.non2xx} non-2xx answers, ${w.errors} connect/read/write errors`);
        if (w.timeouts) notes.push(`wrk ${k}: ${w.timeouts} requests took longer than wrk's 10 s timeout`);
      }
      // All still there and still the same processes?
      const after = await d.req({ path: '/api/v1/services' });
      const stillRunning = after.json.services.filter((s) => s.state === 'running' && s.coordinate.endsWith('.tiny.bench.cell')).length;
      if (stillRunning !== N) problem(`nodee: after wrk ${stillRunning} of ${N} services are running`);
      loads.push(['after nodee', os.loadavg()]);

      const pids = starts.pidsOf('n-').filter((p) => alive(p));
      const td = process.hrtime.bigint();
      await nodeeDeleteAll(d, coords);
      const left = await waitGone(pids, 30000);
      res.nodee.deleteAll = ms(process.hrtime.bigint() - td) / 1000;
      if (left.length) problem(`nodee: ${left.length} service processes alive 30 s after DELETE (e.g. pid ${left[0]})`);
      rss.push([`nodee after deleting ${N} services`, statusKb(d.pid, 'VmRSS') / 1024]);
      rss.push(['nodee peak (VmHWM)', statusKb(d.pid, 'VmHWM') / 1024]);
      const listLeft = (await d.req({ path: '/api/v1/services' })).json.services.length;
      if (listLeft) problem(`nodee: ${listLeft} services still listed after DELETE`);
      res.nodee.events = sqlRows(path.join(prefix, 'state/nodee.db'), 'select count(*) as n from events')[0].n;
      res.nodee.dbMb = fs.statSync(path.join(prefix, 'state/nodee.db')).size / 1048576;

      // supervisord
      const sdir = path.join(work, 'sup-many');
      fs.mkdirSync(sdir);
      const conf = supervisordConf(sdir, Array.from({ length: N }, (_, i) => [`s-${i}`, `${tiny} ${sock} s-${i}`]));
      const ts0 = process.hrtime.bigint();
      sup = spawnLogged('supervisord', ['-n', '-c', conf], {}, 'supervisord');
      const okS = await starts.until(() => starts.count('s-') - starts.count('s-c') >= N, 180000);
      res.supervisord.startAll = ms(process.hrtime.bigint() - ts0) / 1000;
      if (!okS) problem(`supervisord: only ${starts.count('s-') - starts.count('s-c')} of ${N} started within 180 s`);
      console.log(`  supervisord: all running after ${res.supervisord.startAll.toFixed(2)} s`);
      await sleep(2000);
      res.supervisord.mem = memMb([sup.pid]);
      res.supervisord.idle = await idleCpu(() => [sup.pid]);
      console.log(`  supervisord: RSS ${res.supervisord.mem.rss.toFixed(1)} MB, idle ${res.supervisord.idle.pct.toFixed(3)} % of a core`);
      loads.push(['after supervisord idle', os.loadavg()]);
      const spids = starts.pidsOf('s-');
      const tsd = process.hrtime.bigint();
      await stopProc(sup, 'SIGTERM', 60000);
      sup = null;
      let l2 = await waitGone(spids, 10000);
      res.supervisord.stopAll = ms(process.hrtime.bigint() - tsd) / 1000;
      if (l2.length) problem(`supervisord: ${l2.length} processes alive after it stopped`);

      // runit
      const rdir = path.join(work, 'runit-many');
      const rnames = Array.from({ length: N }, (_, i) => `r-${i}`);
      runitDir(rdir, tiny, rnames);
      const tr0 = process.hrtime.bigint();
      rsd = spawnLogged('runsvdir', [rdir], { env: { ...process.env, BENCH_SOCK: sock } }, 'runsvdir');
      const okR = await starts.until(() => starts.count('r-') - starts.count('r-c') >= N, 180000);
      res.runit.startAll = ms(process.hrtime.bigint() - tr0) / 1000;
      if (!okR) problem(`runit: only ${starts.count('r-') - starts.count('r-c')} of ${N} started within 180 s`);
      console.log(`  runit: all running after ${res.runit.startAll.toFixed(2)} s`);
      await sleep(2000);
      runsvPids = childrenOf(rsd.pid);
      if (runsvPids.length !== N) notes.push(`runit: runsvdir has ${runsvPids.length} children, expected ${N} runsv`);
      const rAll = [rsd.pid, ...runsvPids];
      res.runit.mem = memMb(rAll);
      res.runit.idle = await idleCpu(() => [rsd.pid, ...childrenOf(rsd.pid)]);
      console.log(`  runit: RSS ${res.runit.mem.rss.toFixed(1)} MB (runsvdir + ${runsvPids.length} runsv), idle ${res.runit.idle.pct.toFixed(3)} % of a core`);
      const rpids = starts.pidsOf('r-');
      const trd = process.hrtime.bigint();
      await stopProc(rsd, 'SIGHUP', 20000);
      rsd = null;
      l2 = await waitGone([...rpids, ...runsvPids], 30000);
      res.runit.stopAll = ms(process.hrtime.bigint() - trd) / 1000;
      if (l2.length) problem(`runit: ${l2.length} processes alive 30 s after runsvdir's SIGHUP`);
      runsvPids = [];
    }
    loads.push(['end', os.loadavg()]);
  } finally {
    await cleanup({
      d, sup, rsd, runsvPids, starts, prefix, work,
    });
    await depot.stop();
    await starts.close();
  }

  // ------------------------------------------------ the daemon's log
  const logLines = d.stderr.split('\n');
  const warn = logLines.filter((l) => /^\S+Z (warn|error)\s/.test(l));
  if (warn.length) {
    notes.push(`nodee logged ${warn.length} warn/error lines, first: ${warn.slice(0, 5).join(' | ')}`);
  }

  print(res, rss, loads, version, tStart);
  if (problems.length) {
    console.log(`\n${problems.length} problem(s):`);
    for (const p of problems) console.log(`  - ${p}`);
    process.exitCode = 1;
  }
}

// From nodee's info log: for every "pid N exited" of the crash services,
// the time to its next "started pid M (restart)" (ms resolution).
function logGaps(text, coords) {
  const want = new Set(coords);
  const last = new Map();
  const gaps = [];
  for (const l of text.split('\n')) {
    const m = l.match(/^(\S+Z) \S+\s+sup: (\S+): (pid \d+ exited|started pid \d+ \(restart\))/);
    if (!m || !want.has(m[2])) continue;
    const t = Date.parse(m[1]);
    if (m[3].startsWith('pid')) last.set(m[2], t);
    else if (last.has(m[2])) {
      gaps.push(t - last.get(m[2]));
      last.delete(m[2]);
    }
  }
  return { n: gaps.length, median: pct(gaps, 50), p99: pct(gaps, 99), max: gaps.length ? Math.max(...gaps) : NaN };
}

// Leaves nothing behind: every nodee service deleted through the API,
// then any pid the store still lists killed, supervisord and runsvdir
// stopped by pid, and any process tiny reported that still lives.
async function cleanup(o) {
  const { d, starts, prefix, work } = o;
  if (d && !d.exited) {
    try {
      const r = await d.req({ path: '/api/v1/services' });
      const coords = (r.json && r.json.services ? r.json.services : []).map((s) => s.coordinate);
      if (coords.length) await nodeeDeleteAll(d, coords);
      const pids = starts.pidsOf('n-').filter(alive);
      await waitGone(pids, 15000);
    } catch (e) {
      problem(`cleanup: nodee: ${e.message}`);
    }
    await d.stop('SIGTERM');
  }
  try {
    const rows = sqlRows(path.join(prefix, 'state/nodee.db'), 'select coordinate, pid from services where pid is not null');
    for (const row of rows) {
      if (alive(row.pid) && ours(row.pid, [prefix, work])) {
        problem(`cleanup: ${row.coordinate} pid ${row.pid} still ran; killed`);
        try { process.kill(row.pid, 'SIGKILL'); } catch (_) { /* gone */ }
      }
    }
  } catch (_) { /* no store */ }
  await stopProc(o.sup, 'SIGTERM', 20000);
  await stopProc(o.rsd, 'SIGHUP', 20000);
  for (const p of o.runsvPids || []) {
    if (alive(p)) try { process.kill(p, 'SIGTERM'); } catch (_) { /* gone */ }
  }
  await waitGone(o.runsvPids || [], 5000);
  const left = [...starts.pids].filter((p) => alive(p) && ours(p, [prefix, work]));
  for (const p of left) {
    try { process.kill(p, 'SIGKILL'); } catch (_) { /* gone */ }
  }
  if (left.length) problem(`cleanup: killed ${left.length} leftover service processes`);
  for (const p of o.runsvPids || []) {
    if (alive(p)) try { process.kill(p, 'SIGKILL'); } catch (_) { /* gone */ }
  }
  fs.rmSync(work, { recursive: true, force: true });
  fs.rmSync(prefix, { recursive: true, force: true });
}

// A pid is one of ours if its executable or command line is in our trees
// (a pid reused by something else is left alone).
function ours(pid, dirs) {
  let s = '';
  try { s += fs.readlinkSync(`/proc/${pid}/exe`); } catch (_) { /* */ }
  try { s += fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch (_) { /* */ }
  return dirs.some((dir) => s.includes(dir));
}

function print(res, rss, loads, version, tStart) {
  const f = (x, dp = 2) => (Number.isFinite(x) ? x.toFixed(dp) : '-');
  const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : '-');
  const { nodee: n, supervisord: s, runit: r } = res;
  const rows = [
    [`crash -> exec, median ms (${CRASHES})`, n.crash?.median, s.crash?.median, r.crash?.median, '<= 5', 2],
    ['crash -> exec, p99 ms', n.crash?.p99, s.crash?.p99, r.crash?.p99, '<= 20', 2],
    ['crash -> exec, max ms', n.crash?.max, s.crash?.max, r.crash?.max, '', 2],
    ['crash -> bench heard it, median ms', n.crash?.heardMedian, s.crash?.heardMedian, r.crash?.heardMedian, '', 2],
    [`start ${N} services, s`, n.startAll, s.startAll, r.startAll, '', 2],
    ['supervisor RSS, MB', n.mem?.rss, s.mem?.rss, r.mem?.rss, '<= 20', 1],
    ['supervisor PSS, MB', n.mem?.pss, s.mem?.pss, r.mem?.pss, '', 1],
    [`idle CPU over ${IDLE_S} s, % of a core`, n.idle?.pct, s.idle?.pct, r.idle?.pct, '<= 0.1', 3],
    ['  same from utime+stime ticks, %', n.idle?.pctTicks, s.idle?.pctTicks, r.idle?.pctTicks, '', 3],
    [`stop/delete ${N} services, s`, n.deleteAll, s.stopAll, r.stopAll, '', 2],
  ];
  // One row per measure and baseline; the label without its unit.
  const json = [];
  for (const [label, a, b, c, goal] of rows) {
    const m = label.trim().match(/^(.*?),? (ms|s|MB|% of a core|%)( \(\d+\))?$/);
    const measure = m[1].replace(/^same from/, `idle CPU over ${IDLE_S} s, from`) + (m[3] || '');
    const unit = m[2] === '%' ? '% of a core' : m[2];
    json.push({ measure, value: a, unit, baseline: 'supervisord', baseline_value: b, goal });
    json.push({ measure, value: a, unit, baseline: 'runit', baseline_value: c, goal });
  }
  for (const [label, w, goals] of [
    ['GET /api/v1/services/{coordinate}', n.wrkOne, ['>= 20000', '<= 5']],
    ['GET /api/v1/services', n.wrkList, ['>= 300', '']],
  ]) {
    if (!w) continue;
    json.push({ measure: `${label}, wrk -c32, req/s`, value: w.rps, unit: 'req/s', goal: goals[0] });
    json.push({ measure: `${label}, wrk -c32, p99`, value: w.p99, unit: 'ms', goal: goals[1] });
  }
  writeRows('services', json);
  console.log('');
  console.log(`services: nodee (${version.nodee}) against supervisord (${version.supervisord}) and runit (${version.runit}: `
    + 'runsvdir + one runsv per service)');
  console.log(`${'measure'.padEnd(40)}${'nodee'.padStart(10)}${'supervisord'.padStart(13)}${'runit'.padStart(10)}`
    + `${'n/superv.'.padStart(11)}${'n/runit'.padStart(9)}${'goal'.padStart(10)}`);
  for (const [label, a, b, c, goal, dp] of rows) {
    console.log(`${label.padEnd(40)}${f(a, dp).padStart(10)}${f(b, dp).padStart(13)}${f(c, dp).padStart(10)}`
      + `${ratio(a, b).padStart(11)}${ratio(a, c).padStart(9)}${goal.padStart(10)}`);
  }
  console.log('');
  console.log(`nodee API with ${N} services, wrk ${version.wrk} -t2 -c32 -d${WRK_S}s --latency --timeout 10s (on the same 2 cores as nodee)`);
  console.log(`${'request'.padEnd(40)}${'req/s'.padStart(10)}${'p99 ms'.padStart(10)}${'requests'.padStart(10)}${'errors'.padStart(9)}${'goal'.padStart(26)}`);
  for (const [label, w, goal] of [
    ['GET /api/v1/services/{coordinate}', n.wrkOne, '>= 20000/s, p99 <= 5 ms'],
    [`GET /api/v1/services (${((n.listBytes || 0) / 1024).toFixed(0)} KB)`, n.wrkList, '>= 300/s'],
  ]) {
    if (!w) continue;
    console.log(`${label.padEnd(40)}${f(w.rps, 0).padStart(10)}${f(w.p99, 2).padStart(10)}${String(w.requests).padStart(10)}`
      + `${String(w.non2xx + w.errors + w.timeouts).padStart(9)}${goal.padStart(26)}`);
  }
  console.log('');
  console.log('details');
  if (n.crashLog) {
    console.log(`  nodee's log, "pid exited" -> "started pid (restart)": median ${f(n.crashLog.median, 0)} ms, `
      + `p99 ${f(n.crashLog.p99, 0)} ms, max ${f(n.crashLog.max, 0)} ms over ${n.crashLog.n} restarts`);
  }
  if (n.crashCpuMs !== undefined) console.log(`  nodee CPU during the crash test: ${f(n.crashCpuMs, 0)} ms for ${CRASHES} restarts (${f(n.crashCpuMs / CRASHES, 2)} ms each)`);
  if (n.putAll !== undefined) {
    console.log(`  nodee: ${N} PUTs (${PUT_CONCURRENCY} in flight) took ${f(n.putAll)} s; one PUT median ${f(n.putMedian)} ms, `
      + `p99 ${f(n.putP99)} ms, max ${f(n.putMax)} ms`);
  }
  if (n.probe) {
    console.log(`  nodee: GET /healthz while the PUTs ran (every 20 ms): median ${f(n.probe.median)} ms, max ${f(n.probe.max)} ms `
      + `over ${n.probe.n} requests`);
  }
  for (const [k, v] of [['nodee', n], ['supervisord', s], ['runit', r]]) {
    if (v.crash) console.log(`  ${k} crash test: ${v.crash.n} restarts seen, ${v.crash.missing} missing, at most ${v.crash.maxPending} pending at once`);
  }
  if (n.threads) console.log(`  nodee threads with ${N} services: ${n.threads}; events in the store: ${n.events}; nodee.db ${f(n.dbMb, 1)} MB`);
  console.log(`  nodee RSS over the run: ${rss.map(([k, v]) => `${k} ${f(v, 1)} MB`).join('; ')}`);
  for (const x of notes) console.log(`  note: ${x}`);
  console.log(`  crash test: ${CRASH_SET} services per supervisor, each killed only after it had run ${MIN_UP_MS} ms (runsv delays a restart `
    + `by 1 s after a shorter run), kills ${Math.round(MIN_UP_MS / CRASH_SET)} ms + Exp(${KILL_EXTRA_MS} ms) apart`);
  console.log('  nodee runs each service as its own uid in a private mount namespace; supervisord and runit here run them as root '
    + `without one; supervisord minfds ${Math.max(1024, 6 * N + 256)} for ${N} programs (1024 for the crash test)`);
  const l = loads.map(([k, x]) => `${k} ${x.map((v) => v.toFixed(2)).join(' ')}`).join('; ');
  console.log(`cores: ${os.cpus().length} (${os.cpus()[0].model}); load average (1 5 15 min): ${l}; `
    + `run took ${((Date.now() - tStart) / 1000).toFixed(0)} s`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
