// Chaos and faults (issue 13): the real daemon (as root, as in CI) under
// the failures a machine of a cell meets:
//
//   kill -9 of the daemon at random moments during 20 concurrent
//   operations (installs from a slow depot, service preparations,
//   service restarts), 30 rounds on the same prefix, the invariants
//   checked after every restart (a seed printed below replays the
//   choices: CHAOS_SEED=<n>);
//   a full disk (a 16 MiB tmpfs prefix) during installs, preparations,
//   snapshots and service starts, then space again;
//   ZooKeeper down and back during activity, a depot that refuses, hangs
//   or trickles, an S3 endpoint that answers 500, with the API answering
//   within 1 s throughout;
//   a store that stops taking writes (EIO from pwrite/write/fsync on the
//   database's files, injected by a small LD_PRELOAD library compiled
//   here): /healthz 503 with the reason, state changes refused, and all
//   well again once the fault is gone.
//
// Every process is stopped by pid, every mount unmounted, in `finally`
// and at exit.  Test files run in parallel with others: nothing assumes
// it is alone on the machine; waits are for conditions with deadlines.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const {
  SANITIZED, startNodee, sanitizerReport, sqlRows, sleep, tmpdir, freePort, waitFor,
  readIf, procStat, stopClean, db, q, rundir, alive, killLeftovers,
  svcGet: get, svcPut: put, request,
} = require('./lib');
const { makeZip } = require('./zipper');
const { Depot, sha256 } = require('./depot');

// ------------------------------------------------------------------ seed

const SEED = process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) >>> 0
  : crypto.randomInt(0, 2 ** 31);
// In the output of every run, so that a failure can be replayed.
console.log(`# chaos seed ${SEED} (replay: CHAOS_SEED=${SEED} node --test tests/integration/chaos.test.js)`);

// mulberry32: a small seeded generator, for every random choice here.
function rng32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// The sanitized build is about twice as slow.
const SLOW = SANITIZED ? 2 : 1;

// ------------------------------------------------------------- artifacts

const SVC_GAV = 'com.chaos:svc:1';
const SVC_ENTRIES = [
  { name: 'bin/', dir: true },
  { name: 'bin/start', data: '#!/bin/sh\necho ready > ready\nexec sleep 1000\n', mode: 0o755 },
  { name: 'conf/', dir: true },
  { name: 'conf/app.properties', data: 'x=1\n' },
  { name: 'conf/sub/', dir: true },
  { name: 'conf/sub/deep.txt', data: 'deep\n' },
];

// What an artifact's tree must hold: every file with its size, every
// directory (those the zip names and those its paths imply).
function expectedTree(entries) {
  const out = new Set();
  for (const e of entries) {
    const name = e.name.replace(/\/$/, '');
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) out.add(`${parts.slice(0, i).join('/')}/`);
    if (e.dir) out.add(`${name}/`);
    else out.add(`${name} ${Buffer.byteLength(e.data || '')}`);
  }
  return [...out].sort();
}

function actualTree(dir) {
  const out = [];
  const walk = (rel) => {
    for (const n of fs.readdirSync(path.join(dir, rel))) {
      const r = rel ? `${rel}/${n}` : n;
      const st = fs.lstatSync(path.join(dir, r));
      if (st.isDirectory()) {
        out.push(`${r}/`);
        walk(r);
      } else out.push(`${r} ${st.size}`);
    }
  };
  walk('');
  return out.sort();
}

// Every software/<g>/<a>/<v> on disk.
function softwareDirs(prefix) {
  const out = [];
  const root = path.join(prefix, 'software');
  if (!fs.existsSync(root)) return out;
  for (const g of fs.readdirSync(root)) {
    for (const a of fs.readdirSync(path.join(root, g))) {
      for (const v of fs.readdirSync(path.join(root, g, a))) out.push(`${g}:${a}:${v}`);
    }
  }
  return out.sort();
}

function artifactRows(prefix) {
  return sqlRows(db(prefix), "select group_id || ':' || artifact_id || ':' || version c from artifacts")
    .map((r) => r.c).sort();
}

// The live processes of the services of prefix (found by their
// environment): coordinate -> Map(pgid -> [pid...]).
function serviceProcs(prefix) {
  const out = new Map();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const env = readIf(`/proc/${e}/environ`);
    const f = procStat(e);
    if (!env || !f || f[0] === 'Z' || f[0] === 'X') continue;
    const vars = env.split('\0');
    if (!vars.some((x) => x.startsWith(`NODEE_RUNTIME_DIR=${prefix}/`))) continue;
    const cv = vars.find((x) => x.startsWith('NODEE_COORDINATE='));
    const coord = cv ? cv.slice('NODEE_COORDINATE='.length) : '?';
    if (!out.has(coord)) out.set(coord, new Map());
    const pg = Number(f[2]);
    const m = out.get(coord);
    if (!m.has(pg)) m.set(pg, []);
    m.get(pg).push(Number(e));
  }
  return out;
}

// Problem detail or text of an answer, for messages.
const why = (r) => (r.json && r.json.detail) || r.text;

function logTail(d, n = 40) {
  return d.stderr.split('\n').slice(-n).join('\n');
}

// A prefix a dynamic uid can traverse (mkdtemp makes it 0700).
function newPrefix(parent) {
  const p = parent ? fs.mkdtempSync(path.join(parent, 'chaos-')) : tmpdir('chaos');
  fs.chmodSync(p, 0o755);
  return p;
}

const prefixes = new Set();
const mounts = new Set();

function unmount(mnt) {
  for (let i = 0; i < 50; i++) {
    try {
      execFileSync('umount', [mnt], { stdio: 'pipe' });
      mounts.delete(mnt);
      return;
    } catch (_) {
      // Busy: a process of a service that is being killed; once more.
      execFileSync('sleep', ['0.1']);
    }
  }
  execFileSync('umount', ['-l', mnt], { stdio: 'pipe' });
  mounts.delete(mnt);
}

process.on('exit', () => {
  for (const p of prefixes) killLeftovers(p);
  for (const m of mounts) {
    try { execFileSync('umount', ['-l', m], { stdio: 'pipe' }); } catch (_) { /* gone */ }
  }
});

// Deletes every service (purging it), waits until they are gone.
async function removeAll(d) {
  const r = await d.req({ path: '/api/v1/services' });
  if (r.status !== 200) return;
  await Promise.all(r.json.services.map((s) => d.req({ method: 'DELETE',
    path: `/api/v1/services/${s.coordinate}?purge=true` })));
  await waitFor(async () => (await d.req({ path: '/api/v1/services' })).json.services.length === 0,
    'every service deleted', 30000);
}

async function jobOf(d, id) {
  const r = await d.req({ path: `/api/v1/jobs/${id}` });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function waitJobEnd(d, id, timeoutMs = 30000) {
  let last;
  try {
    return await waitFor(async () => {
      last = await jobOf(d, id);
      return ['succeeded', 'failed', 'cancelled'].includes(last.state) ? last : null;
    }, `job ${id} to end`, timeoutMs);
  } catch (e) {
    e.message += `\nlast: ${JSON.stringify(last)}\n${logTail(d)}`;
    throw e;
  }
}

async function waitSvc(d, c, pred, what, timeoutMs = 30000) {
  let last;
  try {
    return await waitFor(async () => {
      const r = await get(d, c);
      last = r.text;
      return r.status === 200 && pred(r.json) ? r.json : null;
    }, `${c}: ${what}`, timeoutMs);
  } catch (e) {
    e.message += `\nlast: ${last}\n${logTail(d)}`;
    throw e;
  }
}

const isRunning = (s) => s.state === 'running' && s.pid > 0;
const ENDED_STATES = ['succeeded', 'failed', 'cancelled'];

// ============================================================ 1. kill -9

const ROUNDS = Number(process.env.CHAOS_ROUNDS || 30);
const STABLE = 4; // services never touched: the same pid for 30 rounds
const CHURN = 10; // services put and restarted at random
const INSTALLS = 8; // per round, with 6 puts and 6 restarts: 20 operations
const PUTS = 6;
const RESTARTS = 6;
// Log lines of the recovery paths, counted to show what the kills hit.
const COVERAGE = [
  ['jobs run again', /was running when nodee stopped; it runs again/g],
  ['trees without a row removed', /removing a tree that has no record/g],
  ['unrecorded processes adopted', /was never recorded; adopting it/g],
  ['processes adopted', /: adopted pid \d+/g],
  ['started', /: started pid \d+/g],
];
const SETTLED = new Set(['running', 'failed', 'stopped', 'exited']);

test('kill -9 of the daemon at random moments during 20 concurrent operations, 30 rounds: whole trees with rows, no job left running, services adopted (same pid, none doubled), store intact', { timeout: 300000 * SLOW }, async (t) => {
  const rand = rng32(SEED);
  const pick = (n) => Math.floor(rand() * n);
  t.diagnostic(`seed ${SEED}`);
  const depot = await new Depot().start();
  const prefix = newPrefix();
  prefixes.add(prefix);
  const expected = new Map(); // gav -> tree
  expected.set(SVC_GAV, expectedTree(SVC_ENTRIES));
  depot.put('com.chaos', 'svc', '1', makeZip(SVC_ENTRIES));
  // Blobs the preparations fetch (served slowly): one per round, so a
  // runtime directory shows which spec prepared it.
  const blobs = new Map(); // sha256 -> round
  const blobUrl = (round) => `${depot.url}/files/blob-${round}.bin`;
  const addBlob = (round) => {
    const b = crypto.randomBytes(12 * 1024 + pick(12 * 1024));
    depot.files.set(`/files/blob-${round}.bin`, b);
    depot.behaviour.set(`/files/blob-${round}.bin`, 'slow');
    blobs.set(sha256(b), round);
    return sha256(b);
  };
  const churnSpec = (round, sum) => ({
    artifact: SVC_GAV,
    env: { ROUND: String(round) },
    start: { min_uptime_ms: 100 },
    prepare: [
      { copy: 'conf/', to: 'conf/', overwrite: true },
      { fetch: blobUrl(round), to: 'data.bin', sha256: sum },
    ],
  });
  // An artifact of round r: slow (a padded one from the slow depot, with
  // or without a sidecar) or many small files (unpacking takes a while).
  const newArtifact = (round, i) => {
    const a = `r${round}x${i}`;
    let entries;
    const kind = pick(3);
    if (kind === 2) {
      entries = [{ name: 'bin/', dir: true }, { name: 'bin/start', data: '#!/bin/sh\n', mode: 0o755 }];
      for (let k = 0; k < 150; k++) entries.push({ name: `d${k % 6}/f${k}.txt`, data: `${a} ${k}\n`.repeat(1 + (k % 5)) });
    } else {
      entries = [
        { name: 'bin/start', data: `#!/bin/sh\necho ${a}\n`, mode: 0o755 },
        { name: 'lib/pad.bin', data: crypto.randomBytes(16 * 1024 + pick(24 * 1024)) },
        { name: 'conf/app.properties', data: `name=${a}\n` },
      ];
    }
    const p = depot.put('com.chaos', a, '1', makeZip(entries), kind === 1 ? 'sha256' : undefined);
    if (kind !== 2) depot.behaviour.set(p, 'slow');
    expected.set(`com.chaos:${a}:1`, expectedTree(entries));
    return `com.chaos:${a}:1`;
  };

  const opts = { prefix, args: ['--depot', depot.url], env: { NODEE_WORKERS: '8' } };
  let d = await startNodee(opts);
  const stable = Array.from({ length: STABLE }, (_, i) => `${i}.stable.chaos.cell`);
  const churn = Array.from({ length: CHURN }, (_, i) => `${i}.churn.chaos.cell`);
  const kills = [];
  const statuses = new Map();
  let killedLog = '';
  // What the kills exercised, from the logs of every daemon of the run.
  const seen = new Map(COVERAGE.map(([k]) => [k, 0]));
  const count = (log) => {
    for (const [k, re] of COVERAGE) seen.set(k, seen.get(k) + (log.match(re) || []).length);
  };
  const t0 = Date.now();
  try {
    // Round 0: the service artifact, the stable services, the churn
    // services, all running.
    const ir = await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: SVC_GAV } });
    assert.equal(ir.status, 202, ir.text);
    assert.equal((await waitJobEnd(d, ir.json.id)).state, 'succeeded');
    const sum0 = addBlob(0);
    for (const c of stable) {
      const r = await put(d, c, { artifact: SVC_GAV, start: { min_uptime_ms: 100 } });
      assert.equal(r.status, 201, r.text);
    }
    for (const c of churn) {
      const r = await put(d, c, churnSpec(0, sum0));
      assert.ok([200, 201].includes(r.status), r.text);
    }
    const stablePid = new Map();
    for (const c of stable) stablePid.set(c, (await waitSvc(d, c, isRunning, 'running')).pid);
    for (const c of churn) await waitSvc(d, c, isRunning, 'running');

    let before = new Map(); // coordinate -> pid before the round's operations
    for (let round = 1; round <= ROUNDS; round++) {
      const ctx = `round ${round} (seed ${SEED})`;
      // ---- the operations, all at once, and a kill at a random moment
      const list = (await d.req({ path: '/api/v1/services' })).json.services;
      before = new Map(list.map((s) => [s.coordinate, s.pid]));
      const sum = addBlob(round);
      const touched = new Set();
      const ops = [];
      for (let i = 0; i < INSTALLS; i++) {
        const gav = newArtifact(round, i);
        ops.push(['install', () => d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: gav } })]);
      }
      for (let i = 0; i < PUTS; i++) {
        const c = churn[pick(CHURN)];
        touched.add(c);
        ops.push(['put', () => put(d, c, churnSpec(round, sum))]);
      }
      for (let i = 0; i < RESTARTS; i++) {
        const c = churn[pick(CHURN)];
        touched.add(c);
        ops.push(['restart', () => d.req({ method: 'POST', path: `/api/v1/services/${c}/restart` })]);
      }
      // Shuffled, so that the order of arrival varies too.
      for (let i = ops.length - 1; i > 0; i--) {
        const j = pick(i + 1);
        [ops[i], ops[j]] = [ops[j], ops[i]];
      }
      // A third of the kills come within 100 ms (requests being
      // answered, processes being forked), the rest within 1.2 s (jobs
      // downloading, unpacking, renaming; preparations; starts).
      const delay = rand() < 0.33 ? pick(100) : 100 + pick(1100);
      kills.push(delay);
      const pending = ops.map(([kind, f]) => f().then((r) => {
        const k = `${kind} ${r.status}`;
        statuses.set(k, (statuses.get(k) || 0) + 1);
        if (r.status >= 500) throw new Error(`${ctx}: ${kind} answered ${r.status}: ${r.text}`);
      }, () => { /* the daemon died under it */ }));
      await sleep(delay);
      d.proc.kill('SIGKILL');
      const ex = await d.exitPromise;
      assert.equal(ex.signal, 'SIGKILL', ctx);
      count(d.stderr);
      killedLog = d.stderr;
      assert.equal(sanitizerReport(d.stderr), null, d.stderr);
      await Promise.all(pending);
      // What the kill left under software/: whole trees only (a rename
      // puts each in place; its row may still be missing, for the job's
      // next run to settle).
      for (const gav of softwareDirs(prefix)) {
        const [g, a, v] = gav.split(':');
        assert.deepEqual(actualTree(path.join(prefix, 'software', g, a, v)), expected.get(gav),
          `${ctx}: ${gav} is whole right after the kill`);
      }
      // What runs now, with no nodee: each must be adopted, not doubled.
      const survivors = serviceProcs(prefix);
      for (const [c, groups] of survivors) {
        assert.ok(groups.size <= 1, `${ctx}: ${c} has ${groups.size} process groups while no nodee runs: ${[...groups.keys()]}`);
      }

      // ---- the next daemon on the same prefix, once it has recovered
      d = await startNodee(opts);
      let prev = null;
      let last = null;
      let svcs;
      try {
        svcs = await waitFor(async () => {
          const running = (await d.req({ path: '/api/v1/jobs?state=running&limit=500' })).json.jobs;
          const queued = (await d.req({ path: '/api/v1/jobs?state=queued&limit=500' })).json.jobs;
          const s = (await d.req({ path: '/api/v1/services' })).json.services;
          last = { running: running.map((j) => `${j.id} ${j.kind} ${j.subject} ${j.phase}`),
            queued: queued.map((j) => `${j.id} ${j.kind} ${j.subject}`),
            services: s.filter((x) => !SETTLED.has(x.state) || (x.state === 'running' && !(x.pid > 0)))
              .map((x) => `${x.coordinate} ${x.state} ${x.pid}`) };
          if (running.length || queued.length || last.services.length) {
            prev = null;
            return null;
          }
          // Settled twice in a row, 200 ms apart, with the same pids.
          const key = JSON.stringify(s.map((x) => [x.coordinate, x.state, x.pid]));
          if (prev !== key) {
            prev = key;
            await sleep(200);
            return null;
          }
          return s;
        }, `${ctx}: recovery`, 40000 * SLOW);
      } catch (e) {
        e.message += `\nnot settled: ${JSON.stringify(last)}\n${logTail(d)}`;
        throw e;
      }

      // No partial tree: every software/g/a/v has its row, every row its
      // tree, and each tree is whole.
      const dirs = softwareDirs(prefix);
      const rows = artifactRows(prefix);
      assert.deepEqual(dirs, rows, `${ctx}: trees on disk and rows in the store`);
      for (const gav of dirs) {
        const [g, a, v] = gav.split(':');
        assert.deepEqual(actualTree(path.join(prefix, 'software', g, a, v)), expected.get(gav),
          `${ctx}: ${gav} is whole`);
      }
      assert.deepEqual(fs.readdirSync(path.join(prefix, 'tmp')), [], `${ctx}: tmp/ empty once no job runs`);
      // Every job has ended: none failed but those a depot could not
      // make fail (none here).
      const failed = q(prefix, "select id, kind, subject, error from jobs where state not in ('succeeded', 'cancelled')");
      assert.deepEqual(failed, [], `${ctx}: every job ended well`);

      // Services: all running, one process group each, the recorded pid.
      for (const s of svcs) assert.equal(s.state, 'running', `${ctx}: ${s.coordinate}: ${s.state} ${s.reason}`);
      const procs = serviceProcs(prefix);
      for (const s of svcs) {
        const groups = procs.get(s.coordinate) || new Map();
        assert.deepEqual([...groups.keys()], [s.pid],
          `${ctx}: ${s.coordinate}: one process group, the recorded pid ${s.pid} (groups ${[...groups.keys()]})`);
      }
      assert.deepEqual([...procs.keys()].filter((c) => !svcs.some((s) => s.coordinate === c)), [],
        `${ctx}: no process of an unknown service`);
      for (const [c, groups] of survivors) {
        for (const pg of groups.keys()) {
          if (alive(pg)) {
            const s = svcs.find((x) => x.coordinate === c);
            assert.equal(s && s.pid, pg, `${ctx}: ${c}: pid ${pg} outlived nodee and runs: adopted, not doubled`);
          }
        }
      }
      for (const c of stable) {
        assert.equal(svcs.find((x) => x.coordinate === c).pid, stablePid.get(c), `${ctx}: ${c} keeps its pid`);
      }
      for (const c of churn) {
        if (!touched.has(c)) {
          assert.equal(svcs.find((x) => x.coordinate === c).pid, before.get(c),
            `${ctx}: ${c} was not touched this round: adopted with the same pid`);
        }
        // A runtime directory prepared whole: data.bin is one of the blobs.
        const dataBin = path.join(rundir(prefix, c), 'data.bin');
        assert.ok(blobs.has(sha256(fs.readFileSync(dataBin))), `${ctx}: ${c}: data.bin whole`);
      }
      const ic = q(prefix, 'PRAGMA integrity_check');
      assert.deepEqual(ic, [{ integrity_check: 'ok' }], `${ctx}: integrity_check`);
    }
    t.diagnostic(`${ROUNDS} rounds in ${((Date.now() - t0) / 1000).toFixed(1)} s; kill delays (ms) ${kills.join(' ')}`);
    count(d.stderr);
    t.diagnostic(`recovery paths taken: ${[...seen].map(([k, n]) => `${k} ${n}`).join(', ')}`);
    t.diagnostic(`answers: ${[...statuses].sort().map(([k, n]) => `${k} x${n}`).join(', ')}`);
    const ev = q(prefix, "select count(*) n from events where kind = 'jobs.requeued'")[0].n;
    const adopted = q(prefix, "select count(*) n from events where kind = 'service.adopted'")[0].n;
    t.diagnostic(`${ev} restarts re-queued jobs; ${adopted} adoptions`);
    assert.ok(adopted >= ROUNDS * STABLE, 'the stable services were adopted at every restart');
    await removeAll(d);
    await stopClean(d);
  } catch (e) {
    e.message += `\n(seed ${SEED})\nthe log of the daemon killed last:\n${
      killedLog.split('\n').slice(-25).join('\n')}\nthe log of the daemon after it:\n${logTail(d, 25)}`;
    throw e;
  } finally {
    if (!d.exited) await d.stop('SIGKILL');
    killLeftovers(prefix);
    await depot.stop();
    fs.rmSync(prefix, { recursive: true, force: true });
    prefixes.delete(prefix);
  }
});

// ============================================================ 2. full disk

// Writes to file until the file system is full to its last byte, then
// gives `leave` bytes back.
function fill(file, leave = 0) {
  const fd = fs.openSync(file, 'a');
  try {
    for (const size of [1 << 20, 4096, 1]) {
      const buf = Buffer.alloc(size, 0x78);
      for (;;) {
        try { fs.writeSync(fd, buf); } catch (e) {
          if (e.code !== 'ENOSPC') throw e;
          break;
        }
      }
    }
    if (leave > 0) fs.ftruncateSync(fd, Math.max(0, fs.fstatSync(fd).size - leave));
  } finally {
    fs.closeSync(fd);
  }
}

// A loopback HTTP server that keeps what is PUT to it (a snapshot's
// destination).
async function startSink() {
  const got = new Map();
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'PUT') {
        got.set(req.url, Buffer.concat(chunks));
        res.writeHead(200);
      } else res.writeHead(404);
      res.end();
    });
  });
  const sockets = new Set();
  srv.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    got,
    url: `http://127.0.0.1:${srv.address().port}`,
    stop: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => srv.close(r));
    },
  };
}

const NOSPACE = /no space left|database or disk is full/i;

// An operation on a full disk: refused at once with the reason (the
// store could not record it), or accepted as a job that fails with it.
// Resolves with the ended job, or null if it was refused.
async function failsForSpace(d, r, what) {
  if (r.status >= 400) {
    assert.match(why(r), NOSPACE, `${what}: refused, but with another reason: ${r.status} ${r.text}`);
    return null;
  }
  assert.equal(r.status, 202, `${what}: ${r.status} ${r.text}`);
  const id = r.json.id || (r.json.install_job && r.json.install_job.id) || r.json.job;
  const j = await waitJobEnd(d, id);
  assert.equal(j.state, 'failed', `${what}: ${JSON.stringify(j)}`);
  assert.match(j.error, NOSPACE, `${what}: ${j.error}`);
  return j;
}

test('a full disk (16 MiB tmpfs prefix): installs, preparations, snapshots and starts fail with "no space left", leave nothing behind; the daemon, the store and running services stay up; all works again once there is space', { timeout: 180000 * SLOW }, async (t) => {
  const mnt = tmpdir('full');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0755', 'tmpfs', mnt]);
  mounts.add(mnt);
  const prefix = newPrefix(mnt);
  prefixes.add(prefix);
  const filler = path.join(mnt, 'filler');
  const depot = await new Depot().start();
  const sink = await startSink();
  let d = null;
  // Failures found in the middle are collected, so that the checks after
  // them (space again: all works) still run; they fail the test at the end.
  const found = [];
  const soft = async (fn) => {
    try { await fn(); } catch (e) { found.push(e.message); }
  };
  try {
    depot.put('com.chaos', 'svc', '1', makeZip(SVC_ENTRIES));
    const bigEntries = [{ name: 'bin/start', data: '#!/bin/sh\n', mode: 0o755 },
      { name: 'lib/big.bin', data: crypto.randomBytes(3 << 20) }];
    depot.put('com.chaos', 'big', '1', makeZip(bigEntries));
    depot.put('com.chaos', 'small', '1', makeZip(SVC_ENTRIES));
    const blob = crypto.randomBytes(3 << 20);
    depot.files.set('/files/big.bin', blob);
    d = await startNodee({ prefix, args: ['--depot', depot.url] });
    const ir = await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: SVC_GAV } });
    assert.equal((await waitJobEnd(d, ir.json.id)).state, 'succeeded');
    const keep = '1.keep.full.cell';
    assert.equal((await put(d, keep, { artifact: SVC_GAV, start: { min_uptime_ms: 100 } })).status, 201);
    const keepPid = (await waitSvc(d, keep, isRunning, 'running')).pid;
    const snap = '1.snap.full.cell';
    const snapSpec = { artifact: SVC_GAV, start: { min_uptime_ms: 100 },
      snapshot: { paths: ['data/'], to: `${sink.url}/\${coordinate}.zip`, on: ['stop'] } };
    assert.equal((await put(d, snap, snapSpec)).status, 201);
    await waitSvc(d, snap, isRunning, 'running');
    fs.mkdirSync(path.join(rundir(prefix, snap), 'data'));
    fs.writeFileSync(path.join(rundir(prefix, snap), 'data/big.bin'), crypto.randomBytes(3 << 20));
    const rs = '1.restart.full.cell';
    assert.equal((await put(d, rs, { artifact: SVC_GAV, start: { min_uptime_ms: 100 } })).status, 201);
    const rsPid = (await waitSvc(d, rs, isRunning, 'running')).pid;
    const prep = '1.prep.full.cell';
    const prepSpec = { artifact: SVC_GAV, start: { min_uptime_ms: 100 },
      prepare: [{ fetch: `${depot.url}/files/big.bin`, to: 'big.bin', sha256: sha256(blob) }] };
    const nothingLeft = async (what) => {
      await waitFor(() => fs.readdirSync(path.join(prefix, 'tmp')).length === 0,
        `${what}: ${prefix}/tmp empty (${fs.readdirSync(path.join(prefix, 'tmp'))})`, 5000);
      assert.deepEqual(softwareDirs(prefix), artifactRows(prefix), `${what}: no tree without its row`);
      const snaps = path.join(prefix, 'state/snapshots');
      assert.deepEqual(fs.existsSync(snaps) ? fs.readdirSync(snaps) : [], [], `${what}: no archive left`);
      assert.equal(fs.existsSync(rundir(prefix, prep)), false, `${what}: no half-made runtime directory`);
    };
    const upAndRunning = async (what) => {
      assert.equal(d.exited, null, `${what}: nodee exited:\n${logTail(d)}`);
      const n = await d.req({ path: '/api/v1/node' });
      assert.equal(n.status, 200, `${what}: ${n.text}`);
      const s = await get(d, keep);
      assert.equal(s.status, 200, `${what}: the store answers: ${s.text}`);
      assert.equal(s.json.state, 'running', what);
      assert.equal(s.json.pid, keepPid, what);
      assert.ok(alive(keepPid), `${what}: the running service runs on`);
    };

    // ---- a little space left (1 MiB): the store writes its rows, the
    // work itself runs out of space.
    fill(filler, 1 << 20);
    t.diagnostic(`free: ${fs.statfsSync(mnt).bavail * fs.statfsSync(mnt).bsize} bytes`);
    const inst = await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: 'com.chaos:big:1' } });
    const ij = await failsForSpace(d, inst, 'install of 3 MiB');
    t.diagnostic(`install: ${ij ? ij.error : why(inst)}`);
    await nothingLeft('install');
    await upAndRunning('install');

    const pr = await put(d, prep, prepSpec);
    if (pr.status >= 400) {
      assert.match(why(pr), NOSPACE, pr.text);
    } else {
      assert.equal(pr.status, 201, pr.text);
      const s = await waitSvc(d, prep, (x) => x.state === 'failed', 'failed preparation');
      assert.match(s.reason, /prepare step 1/, s.reason);
      assert.match(s.reason, NOSPACE, s.reason);
      const pj = (await d.req({ path: `/api/v1/jobs?kind=service.prepare&subject=${prep}` })).json.jobs[0];
      assert.equal(pj.state, 'failed');
      assert.match(pj.error, NOSPACE, pj.error);
      t.diagnostic(`preparation: ${s.reason}`);
    }
    await nothingLeft('preparation');
    await upAndRunning('preparation');

    const sr = await d.req({ method: 'POST', path: `/api/v1/services/${snap}/snapshot` });
    const sj = await failsForSpace(d, sr, 'snapshot of 3 MiB');
    t.diagnostic(`snapshot: ${sj ? sj.error : why(sr)}`);
    await nothingLeft('snapshot');
    await upAndRunning('snapshot');

    t.diagnostic(`free after the failed install, preparation and snapshot: ${
      fs.statfsSync(mnt).bavail * fs.statfsSync(mnt).bsize} bytes`);
    // ---- no space at all: whatever the store must record is refused
    // with its reason, and nothing runs that it did not record.
    fill(filler);
    const fresh = '1.fresh.full.cell';
    const fr = await put(d, fresh, { artifact: SVC_GAV, start: { min_uptime_ms: 100 } });
    assert.ok(fr.status >= 400, `a start that could not be recorded must be refused: ${fr.status} ${fr.text}`);
    assert.match(why(fr), NOSPACE, fr.text);
    assert.equal((await get(d, fresh)).status, 404, 'not recorded');
    assert.equal(serviceProcs(prefix).has(fresh), false, 'and not running');
    const start = await d.req({ method: 'POST', path: `/api/v1/services/${prep}/start` });
    if (start.status < 400) {
      // Recorded (the store had a page to spare): its preparation fails.
      const s = await waitSvc(d, prep, (x) => x.state === 'failed' && x.pid === null, 'failed again');
      assert.match(s.reason, NOSPACE, s.reason);
    } else assert.match(why(start), NOSPACE, start.text);
    // A restart the store cannot record is refused, and changes nothing:
    // the service runs on with its pid.
    const rr = await d.req({ method: 'POST', path: `/api/v1/services/${rs}/restart` });
    if (rr.status >= 400) {
      assert.match(why(rr), NOSPACE, rr.text);
      await sleep(500);
      await soft(async () => {
        const g = (await get(d, rs)).json;
        assert.ok(alive(rsPid) && g.state === 'running' && g.pid === rsPid,
          `a restart refused with ${rr.status} "${why(rr)}" must leave the service as it was (running, pid ${rsPid}): ` +
          `pid ${rsPid} ${alive(rsPid) ? 'alive' : 'gone'}, service ${g.state} pid ${g.pid} reason ${g.reason}\n${logTail(d, 8)}`);
      });
    }
    const small = await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: 'com.chaos:small:1' } });
    await failsForSpace(d, small, 'install on a full disk');
    const sr2 = await d.req({ method: 'POST', path: `/api/v1/services/${snap}/snapshot` });
    await failsForSpace(d, sr2, 'snapshot on a full disk');
    // /healthz writes to the store (at most every 2 s): 503 with the reason.
    const h = await waitFor(async () => {
      const x = await request(d.port, { path: '/healthz' });
      return x.status !== 200 ? x : null;
    }, '/healthz to notice the full disk', 5000);
    assert.equal(h.status, 503, h.text);
    assert.match(h.text, NOSPACE);
    t.diagnostic(`healthz on a full disk: ${h.status} ${h.text.trim()}`);
    await nothingLeft('full disk');
    await upAndRunning('full disk');

    // ---- space again: everything works.  First, at once, the start of
    // the service whose preparation failed: it is prepared again (steps
    // run before every start), whatever the refused start before left.
    fs.rmSync(filler);
    const ps0 = await d.req({ method: 'POST', path: `/api/v1/services/${prep}/start` });
    assert.equal(ps0.status, 200, ps0.text);
    const ps = await waitSvc(d, prep, (x) => x.state === 'running' || x.state === 'failed', 'prepared once there is space');
    const pjobs = (await d.req({ path: `/api/v1/jobs?kind=service.prepare&subject=${prep}` })).json.jobs;
    await soft(() => {
      assert.ok(pjobs.length >= 2 && pjobs[0].state === 'succeeded' && ps.state === 'running' &&
        fs.existsSync(path.join(rundir(prefix, prep), 'big.bin')),
      `a start once space came back must run the preparation again (steps run before every start): service ${
        ps.state} pid ${ps.pid}, prepare jobs ${JSON.stringify(pjobs.map((j) => [j.id, j.state]))}, runtime dir ${
        fs.readdirSync(rundir(prefix, prep))}\n${logTail(d, 12)}`);
      assert.ok(fs.readFileSync(path.join(rundir(prefix, prep), 'big.bin')).equals(blob));
    });
    await waitFor(async () => (await request(d.port, { path: '/healthz' })).status === 200, 'healthz 200', 5000);
    const ok = await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: 'com.chaos:big:1' } });
    assert.equal(ok.status, 202, ok.text);
    assert.equal((await waitJobEnd(d, ok.json.id)).state, 'succeeded');
    assert.deepEqual(actualTree(path.join(prefix, 'software/com.chaos/big/1')), expectedTree(bigEntries));
    const fr2 = await put(d, fresh, { artifact: SVC_GAV, start: { min_uptime_ms: 100 } });
    assert.equal(fr2.status, 201, fr2.text);
    await waitSvc(d, fresh, isRunning, 'running once there is space');
    const sr3 = await d.req({ method: 'POST', path: `/api/v1/services/${snap}/snapshot` });
    assert.equal(sr3.status, 202, sr3.text);
    const sj3 = await waitJobEnd(d, sr3.json.id);
    assert.equal(sj3.state, 'succeeded', sj3.error);
    assert.ok(sink.got.get(`/${snap}.zip`).length > 3 << 20, 'the snapshot arrived');
    await upAndRunning('space again');
    assert.deepEqual(fs.readdirSync(path.join(prefix, 'tmp')), []);
    await removeAll(d);
    await stopClean(d);
    if (found.length) assert.fail(found.join('\n----\n'));
  } catch (e) {
    if (found.length && e.message !== found.join('\n----\n')) e.message += `\n---- found before:\n${found.join('\n----\n')}`;
    throw e;
  } finally {
    if (d && !d.exited) await d.stop('SIGKILL');
    killLeftovers(prefix);
    prefixes.delete(prefix);
    await depot.stop();
    await sink.stop();
    fs.rmSync(filler, { force: true });
    unmount(mnt);
    fs.rmSync(mnt, { recursive: true, force: true });
  }
});

// ==================================== 3. ZooKeeper, depots and S3 failing

// Asks GET /api/v1/node every 100 ms until stopped; records how long
// each answer took.  Nothing here blocks the test's event loop meanwhile
// (no execFileSync), so the times are the daemon's.
function apiMonitor(d) {
  const m = { max: 0, n: 0, slow: [], errors: [], running: true };
  m.done = (async () => {
    while (m.running) {
      const t0 = Date.now();
      try {
        const r = await d.req({ path: '/api/v1/node' });
        if (r.status !== 200) m.errors.push(`${new Date(t0).toISOString()} ${r.status} ${r.text}`);
      } catch (e) {
        m.errors.push(`${new Date(t0).toISOString()} ${e.message}`);
      }
      const dt = Date.now() - t0;
      m.n++;
      m.max = Math.max(m.max, dt);
      if (dt >= 1000) m.slow.push(`${new Date(t0).toISOString()} ${dt} ms`);
      await sleep(100);
    }
  })();
  m.stop = async () => {
    m.running = false;
    await m.done;
    return m;
  };
  return m;
}

test('ZooKeeper down and back during activity, a depot that refuses, hangs or trickles, S3 answering 500: clear job errors, the API answers within 1 s throughout, a clean stop', { timeout: 180000 * SLOW }, async (t) => {
  const { startZooKeeper, zkGet } = require('./zk');
  const { startS3 } = require('./s3');
  const zk = await startZooKeeper();
  const s3 = await startS3({ buckets: ['snap'] });
  const depot = await new Depot().start();
  const prefix = newPrefix();
  prefixes.add(prefix);
  let d = null;
  let mon = null;
  const registry = async () => (await d.req({ path: '/api/v1/node' })).json.registry;
  const svcOf = (data, c) => data && data.services && data.services.find((x) => x.coordinate === c);
  try {
    depot.put('com.chaos', 'svc', '1', makeZip(SVC_ENTRIES));
    depot.put('com.chaos', 'during', '1', makeZip(SVC_ENTRIES));
    const hangP = depot.put('com.chaos', 'hang', '1', makeZip(SVC_ENTRIES));
    depot.behaviour.set(hangP, 'hang');
    const hang2P = depot.put('com.chaos', 'hang2', '1', makeZip(SVC_ENTRIES));
    depot.behaviour.set(hang2P, 'hang');
    const trickleEntries = [{ name: 'bin/start', data: '#!/bin/sh\n', mode: 0o755 },
      { name: 'lib/pad.bin', data: crypto.randomBytes(160 * 1024) }];
    const trickleP = depot.put('com.chaos', 'trickle', '1', makeZip(trickleEntries));
    depot.behaviour.set(trickleP, 'slow');
    d = await startNodee({ prefix, args: ['--depot', depot.url], env: {
      NODEE_ZOOKEEPER: zk.hosts, NODEE_ZOOKEEPER_TIMEOUT_MS: '4000',
      NODEE_CELL: 'chaos', NODEE_INSTANCE: 'n1',
      NODEE_S3_ENDPOINT: s3.url, NODEE_S3_REGION: s3.region,
      NODEE_S3_ACCESS_KEY_ID: s3.accessKeyId, NODEE_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    } });
    mon = apiMonitor(d);
    const zkpath = '/meta/chaos/nodes/n1';
    await waitFor(async () => { const r = await registry(); return r.state === 'connected' && r.registered; }, 'registered');
    const ir = await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: SVC_GAV } });
    assert.equal((await waitJobEnd(d, ir.json.id)).state, 'succeeded');
    const a = '1.a.zk.chaos';
    assert.equal((await put(d, a, { artifact: SVC_GAV, start: { min_uptime_ms: 100 } })).status, 201);
    const a1 = await waitSvc(d, a, isRunning, 'running');

    // ---- ZooKeeper killed; activity goes on; ZooKeeper back.
    const down = Date.now();
    await zk.stop('SIGKILL');
    const reg = await waitFor(async () => { const r = await registry(); return r.state !== 'connected' ? r : null; },
      'the registry to notice ZooKeeper is gone', 20000);
    t.diagnostic(`ZooKeeper down: registry ${reg.state} after ${Date.now() - down} ms`);
    const b = '1.b.zk.chaos';
    const [pb, pi, pr] = await Promise.all([
      put(d, b, { artifact: SVC_GAV, start: { min_uptime_ms: 100 } }),
      d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: 'com.chaos:during:1' } }),
      d.req({ method: 'POST', path: `/api/v1/services/${a}/restart` }),
    ]);
    assert.equal(pb.status, 201, pb.text);
    assert.equal(pi.status, 202, pi.text);
    assert.equal(pr.status, 200, pr.text);
    assert.equal((await waitJobEnd(d, pi.json.id)).state, 'succeeded', 'an install while ZooKeeper is down');
    const b1 = await waitSvc(d, b, isRunning, 'running while ZooKeeper is down');
    const a2 = await waitSvc(d, a, (x) => isRunning(x) && x.pid !== a1.pid, 'restarted while ZooKeeper is down');
    const cell = await d.req({ path: '/api/v1/cell/nodes' });
    assert.equal(cell.status, 200, cell.text);
    assert.equal(cell.json.stale, true, 'the cell view says it is stale');
    // Down longer than the session timeout.
    await sleep(Math.max(0, 6000 - (Date.now() - down)));
    await zk.start();
    const back = Date.now();
    await waitFor(async () => { const r = await registry(); return r.state === 'connected' && r.registered; },
      'registered again once ZooKeeper is back', 30000);
    const z = await waitFor(async () => {
      const x = await zkGet(zk.hosts, zkpath);
      return x.exists && svcOf(x.data, a) && svcOf(x.data, a).pid === a2.pid &&
        svcOf(x.data, b) && svcOf(x.data, b).pid === b1.pid ? x : null;
    }, 'the node in ZooKeeper with what changed while it was down', 20000);
    assert.equal(z.data.pid, d.pid);
    t.diagnostic(`ZooKeeper back: registered with the current services ${Date.now() - back} ms after it was started`);

    // ---- a depot that refuses connections.
    const closed = await freePort();
    let t0 = Date.now();
    const rf = await d.req({ method: 'POST', path: '/api/v1/artifacts',
      body: { artifact: 'com.chaos:refused:1', url: `http://127.0.0.1:${closed}/refused-1.zip` } });
    assert.equal(rf.status, 202, rf.text);
    const jf = await waitJobEnd(d, rf.json.id);
    assert.equal(jf.state, 'failed');
    assert.match(jf.error, /refused|connect/i, jf.error);
    assert.match(jf.error, new RegExp(`127\\.0\\.0\\.1:${closed}`), 'the error names the depot');
    t.diagnostic(`refused: "${jf.error}" after ${Date.now() - t0} ms`);

    // ---- a depot that accepts and never answers: the job waits (the
    // low-speed timeout is 30 s), a cancel ends it at once, and another
    // one is left hanging for the stop at the end.
    const rh = await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: 'com.chaos:hang:1' } });
    const rh2 = await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: 'com.chaos:hang2:1' } });
    assert.equal(rh.status, 202, rh.text);
    assert.equal(rh2.status, 202, rh2.text);
    await waitFor(() => depot.count(hangP) > 0 && depot.count(hang2P) > 0, 'both downloads asked for');
    await sleep(1500);
    const jh = await jobOf(d, rh.json.id);
    assert.equal(jh.state, 'running', JSON.stringify(jh));
    assert.equal(jh.bytes_done, 0);
    t0 = Date.now();
    const c = await d.req({ method: 'DELETE', path: `/api/v1/jobs/${rh.json.id}` });
    assert.equal(c.status, 202, c.text);
    const jc = await waitJobEnd(d, rh.json.id, 5000);
    assert.equal(jc.state, 'cancelled');
    t.diagnostic(`hanging download cancelled in ${Date.now() - t0} ms`);
    assert.equal(fs.existsSync(path.join(prefix, `tmp/job-${rh.json.id}`)), false);

    // ---- a depot that trickles (4 KiB every 50 ms): progress shows, the
    // install succeeds, the other workers are not held up.
    const rt = await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: 'com.chaos:trickle:1' } });
    assert.equal(rt.status, 202, rt.text);
    const seenBytes = new Set();
    const jt = await waitFor(async () => {
      const j = await jobOf(d, rt.json.id);
      if (j.state === 'running') seenBytes.add(j.bytes_done);
      return ENDED_STATES.includes(j.state) ? j : null;
    }, 'the trickling install', 30000 * SLOW);
    assert.equal(jt.state, 'succeeded', jt.error);
    assert.ok(seenBytes.size >= 3, `progress while it trickles: ${[...seenBytes]}`);
    assert.deepEqual(actualTree(path.join(prefix, 'software/com.chaos/trickle/1')), expectedTree(trickleEntries));

    // ---- S3 answering 500: the snapshot job fails with the server's
    // answer; once S3 is well, a retry uploads the kept archive.  A
    // fetch step from S3 fails its preparation with the answer too.
    const sn = '1.snap.zk.chaos';
    assert.equal((await put(d, sn, { artifact: SVC_GAV, start: { min_uptime_ms: 100 },
      snapshot: { paths: ['conf/'], to: 's3://snap/${coordinate}/state.zip', on: ['drain'] },
      prepare: [{ copy: 'conf/', to: 'conf/' }] })).status, 201);
    await waitSvc(d, sn, isRunning, 'running');
    await s3.fault({ bucket: 'snap', status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' });
    const rs = await d.req({ method: 'POST', path: `/api/v1/services/${sn}/snapshot` });
    assert.equal(rs.status, 202, rs.text);
    const js = await waitJobEnd(d, rs.json.id);
    assert.equal(js.state, 'failed');
    assert.match(js.error, /500/, js.error);
    assert.match(js.error, /InternalError/, js.error);
    t.diagnostic(`S3 500 on upload: "${js.error}"`);
    const pf = '1.s3fetch.zk.chaos';
    assert.equal((await put(d, pf, { artifact: SVC_GAV, start: { min_uptime_ms: 100 },
      prepare: [{ fetch: 's3://snap/some/state.zip', unpack: 'data/' }] })).status, 201);
    const sf = await waitSvc(d, pf, (x) => x.state === 'failed', 'failed preparation');
    assert.match(sf.reason, /prepare step 1/, sf.reason);
    assert.match(sf.reason, /500/, sf.reason);
    t.diagnostic(`S3 500 on fetch: "${sf.reason}"`);
    await s3.clearFaults();
    const rr = await d.req({ method: 'POST', path: `/api/v1/jobs/${rs.json.id}/retry` });
    assert.equal(rr.status, 202, rr.text);
    assert.equal((await waitJobEnd(d, rr.json.id)).state, 'succeeded');
    assert.ok(await s3.getObject('snap', `${sn}/state.zip`), 'the snapshot is in S3 once it answers');

    // ---- the API answered within 1 s throughout.
    await mon.stop();
    t.diagnostic(`GET /api/v1/node: ${mon.n} requests, slowest ${mon.max} ms`);
    assert.deepEqual(mon.errors, [], 'every GET /api/v1/node answered 200');
    assert.deepEqual(mon.slow, [], 'no answer took 1 s or more');
    const still = await jobOf(d, rh2.json.id);
    assert.equal(still.state, 'running', 'the second hanging download is still waiting');

    await removeAll(d);
    t0 = Date.now();
    await stopClean(d);
    t.diagnostic(`clean stop with a hanging download in ${Date.now() - t0} ms`);
    assert.ok(Date.now() - t0 < 10000 * SLOW, 'the stop is not held up by the hanging download');
    assert.equal((await zkGet(zk.hosts, zkpath)).exists, false, 'gone from ZooKeeper at once');
    assert.equal(q(prefix, `select state from jobs where id = ${rh2.json.id}`)[0].state, 'queued',
      'the interrupted download is queued for the next start');
  } finally {
    if (mon) await mon.stop();
    if (d && !d.exited) await d.stop('SIGKILL');
    killLeftovers(prefix);
    fs.rmSync(prefix, { recursive: true, force: true });
    prefixes.delete(prefix);
    await zk.stop();
    zk.remove();
    await s3.stop();
    await depot.stop();
  }
});

// ===================================== 4. a store that takes no writes

// An LD_PRELOAD library: while the file named by CHAOS_EIO_TRIGGER
// exists, write, pwrite, pwrite64, fsync and fdatasync on the store's
// files (a path ending in nodee.db, nodee.db-wal or nodee.db-journal)
// fail with EIO.  A descriptor's path is read from /proc/self/fd once
// and kept with its device and inode, so a number reused for another
// file is looked at again.
const EIO_C = `#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAXFD 65536

struct ent { dev_t dev; ino_t ino; int known, match; };
static struct ent cache[MAXFD];
static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;

static int
ends(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

static int
is_store(int fd)
{
	struct stat st;
	char link[64], target[4096];
	ssize_t n;
	int m;

	if (fd < 0 || fd >= MAXFD || fstat(fd, &st) != 0)
		return 0;
	pthread_mutex_lock(&mtx);
	if (!cache[fd].known || cache[fd].dev != st.st_dev || cache[fd].ino != st.st_ino) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\\0';
		cache[fd].match = n > 0 && (ends(target, "/nodee.db") ||
		    ends(target, "/nodee.db-wal") || ends(target, "/nodee.db-journal"));
		cache[fd].dev = st.st_dev;
		cache[fd].ino = st.st_ino;
		cache[fd].known = 1;
	}
	m = cache[fd].match;
	pthread_mutex_unlock(&mtx);
	return m;
}

static int
fault(int fd)
{
	static const char *trigger;

	if (trigger == NULL && (trigger = getenv("CHAOS_EIO_TRIGGER")) == NULL)
		return 0;
	if (access(trigger, F_OK) != 0 || !is_store(fd))
		return 0;
	errno = EIO;
	return 1;
}

#define REAL(name) static __typeof__(name) *real; \\
	if (real == NULL) real = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

ssize_t
write(int fd, const void *buf, size_t n)
{
	REAL(write);
	return fault(fd) ? -1 : real(fd, buf, n);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REAL(pwrite);
	return fault(fd) ? -1 : real(fd, buf, n, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	REAL(pwrite64);
	return fault(fd) ? -1 : real(fd, buf, n, off);
}

int
fsync(int fd)
{
	REAL(fsync);
	return fault(fd) ? -1 : real(fd);
}

int
fdatasync(int fd)
{
	REAL(fdatasync);
	return fault(fd) ? -1 : real(fd);
}
`;

test('a store that takes no writes (EIO injected on nodee.db, -wal, -journal): /healthz 503 with the reason, state changes refused with it; once writes work, 200 and all works', { timeout: 120000 * SLOW }, async (t) => {
  const dir = tmpdir('eio');
  const so = path.join(dir, 'eio.so');
  fs.writeFileSync(path.join(dir, 'eio.c'), EIO_C);
  execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-Wall', '-Werror', '-o', so, path.join(dir, 'eio.c'), '-ldl']);
  const trigger = path.join(dir, 'trigger');
  const depot = await new Depot().start();
  const prefix = newPrefix();
  prefixes.add(prefix);
  const env = { LD_PRELOAD: so, CHAOS_EIO_TRIGGER: trigger };
  const found = []; // checked at the end, after everything else
  // The library comes before ASan's runtime: tell ASan that is meant.
  if (SANITIZED) env.ASAN_OPTIONS = [process.env.ASAN_OPTIONS, 'verify_asan_link_order=0'].filter(Boolean).join(':');
  let d = null;
  try {
    depot.put('com.chaos', 'svc', '1', makeZip(SVC_ENTRIES));
    depot.put('com.chaos', 'later', '1', makeZip(SVC_ENTRIES));
    d = await startNodee({ prefix, args: ['--depot', depot.url], env });
    assert.ok(readIf(`/proc/${d.pid}/maps`).includes(so), 'the fault library is loaded');
    const ir = await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: SVC_GAV } });
    assert.equal((await waitJobEnd(d, ir.json.id)).state, 'succeeded');
    const a = '1.a.eio.cell';
    assert.equal((await put(d, a, { artifact: SVC_GAV, start: { min_uptime_ms: 100 } })).status, 201);
    const sa = await waitSvc(d, a, isRunning, 'running');
    assert.equal((await request(d.port, { path: '/healthz' })).status, 200);

    // ---- the store's writes fail.
    fs.writeFileSync(trigger, '');
    const t0 = Date.now();
    const h = await waitFor(async () => {
      const x = await request(d.port, { path: '/healthz' });
      return x.status !== 200 ? x : null;
    }, '/healthz to notice', 5000);
    t.diagnostic(`healthz after ${Date.now() - t0} ms: ${h.status} ${h.text.trim()}`);
    assert.equal(h.status, 503, h.text);
    assert.match(h.text, /^store: cannot write to .*nodee\.db: disk I\/O error/, h.text);
    assert.equal(h.headers['retry-after'], '5');

    const b = '1.b.eio.cell';
    const pb = await put(d, b, { artifact: SVC_GAV, start: { min_uptime_ms: 100 } });
    assert.ok(pb.status >= 400 && pb.status < 600, `a PUT the store cannot record is refused: ${pb.status} ${pb.text}`);
    assert.match(why(pb), /I\/O error/i, pb.text);
    const pi = await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: 'com.chaos:later:1' } });
    assert.ok(pi.status >= 400 && pi.status < 600, `an install the store cannot record is refused: ${pi.status} ${pi.text}`);
    assert.match(why(pi), /I\/O error|store/i, pi.text);
    t.diagnostic(`PUT: ${pb.status} ${why(pb)}; install: ${pi.status} ${why(pi)}`);
    // The README's contract for both: "503 the store could not save a
    // change (nothing was changed; the detail gives the store's reason)".
    for (const [what, r] of [['PUT of a service', pb], ['POST of an install', pi]]) {
      if (r.status !== 503) found.push(`${what} refused by the store answers ${r.status}, not 503 as documented: ${r.text}`);
    }
    await sleep(300);
    // Reads still work; nothing was recorded or started.
    assert.equal((await get(d, b)).status, 404, 'the service was not recorded');
    assert.equal(serviceProcs(prefix).has(b), false, 'and does not run');
    const jobs = (await d.req({ path: '/api/v1/jobs?subject=com.chaos:later:1' })).json.jobs;
    assert.deepEqual(jobs, [], 'no install job');
    assert.equal(depot.count(Depot.zipPath('com.chaos', 'later', '1')), 0, 'nothing downloaded');
    const ga = await get(d, a);
    assert.equal(ga.json.state, 'running');
    assert.equal(ga.json.pid, sa.pid);
    assert.ok(alive(sa.pid), 'the running service runs on');
    assert.equal(d.exited, null);

    // ---- writes work again.
    fs.rmSync(trigger);
    const t1 = Date.now();
    await waitFor(async () => (await request(d.port, { path: '/healthz' })).status === 200, '/healthz 200 again', 5000);
    t.diagnostic(`healthz 200 again after ${Date.now() - t1} ms`);
    const pb2 = await put(d, b, { artifact: SVC_GAV, start: { min_uptime_ms: 100 } });
    assert.equal(pb2.status, 201, pb2.text);
    await waitSvc(d, b, isRunning, 'running');
    const pi2 = await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: 'com.chaos:later:1' } });
    assert.equal(pi2.status, 202, pi2.text);
    assert.equal((await waitJobEnd(d, pi2.json.id)).state, 'succeeded');
    assert.deepEqual(q(prefix, 'PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
    await removeAll(d);
    await stopClean(d);
    assert.match(d.stderr, /disk I\/O error/, 'the store\'s errors are in the log');
    assert.deepEqual(found, [], found.join('\n'));
  } finally {
    if (d && !d.exited) await d.stop('SIGKILL');
    killLeftovers(prefix);
    fs.rmSync(prefix, { recursive: true, force: true });
    prefixes.delete(prefix);
    await depot.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
