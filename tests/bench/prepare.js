// make bench: snapshots and restores of a service's state, nodee against
// the shell tools doing the same work, on loopback in the same run:
//
//   1. snapshot: a service's data/ (100 MB half random, half text; or
//      20 000 small files in 100 dirs) from POST .../snapshot to its
//      service.snapshot job succeeded, against `zip -q -r -1` +
//      `sha256sum` + `curl --aws-sigv4 -T` to the same S3 server;
//   2. restore: a new service whose prepare step fetches that snapshot
//      from S3 and unpacks it, from PUT to the service running (and the
//      prepare job's own duration), against `curl --aws-sigv4 -o` +
//      `unzip -q`.
//
// The S3 server is npm's s3rver behind the SigV4-checking front of the
// integration tests (tests/integration/s3.js).  Prints tables with the
// median of BENCH_RUNS runs and the ratio nodee / baseline, and where the
// time goes (the snapshot job's phases, polled every 20 ms).  A
// benchmark, not a test: it reports numbers and fails only if something
// breaks.  BENCH_LOG_LEVEL=debug runs the daemon at that level and prints
// its log at the end.
'use strict';

const { execFile, execFileSync } = require('node:child_process');
const { promisify } = require('node:util');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startNodee, tmpdir, sleep } = require('../integration/lib');
const { Depot } = require('../integration/depot');
const { makeZip } = require('../integration/zipper');
const { startS3 } = require('../integration/s3');
const { writeRows } = require('./report');

const RUNS = Number(process.env.BENCH_RUNS || 3);
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL || 'warn';
const POLL_MS = 20;
const GAV = 'bench:sleeper:1';
const BUCKET = 'bench';
const AK = 'AKIABENCHPREPARE0001';
const SK = `bench/secret/${crypto.randomBytes(8).toString('hex')}`;
const REGION = 'us-east-1';
const EMPTY_SHA256 = crypto.createHash('sha256').update('').digest('hex');

const run = promisify(execFile);
const prefixes = new Set();

// ------------------------------------------------------------------ state

// dir: 10 random and 10 text files of 5 MB each.
function makeBig(dir) {
  fs.mkdirSync(path.join(dir, 'random'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'text'), { recursive: true });
  const line = 'INFO 2026-11-25T00:00:00Z service started on port 8080 with 4 workers\n';
  for (let i = 0; i < 10; i++) {
    fs.writeFileSync(path.join(dir, 'random', `r${i}.bin`), crypto.randomBytes(5 * 1024 * 1024));
    let s = '';
    while (s.length < 5 * 1024 * 1024) s += `${i} ${s.length} ${line}`;
    fs.writeFileSync(path.join(dir, 'text', `t${i}.log`), s.slice(0, 5 * 1024 * 1024));
  }
}

// dir: 20 000 small files in 100 directories.
function makeSmall(dir) {
  for (let d = 0; d < 100; d++) {
    const sub = path.join(dir, `d${d}`);
    fs.mkdirSync(sub, { recursive: true });
    for (let f = 0; f < 200; f++) {
      fs.writeFileSync(path.join(sub, `f${f}.txt`), `file ${d}/${f}\n`.repeat(20 + (f % 50)));
    }
  }
}

// Files and bytes under dir.
function census(dir) {
  let files = 0;
  let bytes = 0;
  const walk = (p) => {
    for (const e of fs.readdirSync(p, { withFileTypes: true })) {
      const q = path.join(p, e.name);
      if (e.isDirectory()) walk(q);
      else if (e.isFile()) { files++; bytes += fs.statSync(q).size; }
    }
  };
  walk(dir);
  return { files, bytes };
}

// ---------------------------------------------------------------- helpers

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function secs(t0, t1) {
  return Number(t1 - t0) / 1e9;
}

const now = () => process.hrtime.bigint();

function rundir(prefix, coord) {
  const [inst, svc, user, cell] = coord.split('.');
  return path.join(prefix, 'runtime', cell, user, svc, inst);
}

function readIf(p) {
  try { return fs.readFileSync(p, 'utf8'); } catch (_) { return null; }
}

// Process groups of live service processes of prefix.
function serviceGroups(prefix) {
  const out = new Set();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const env = readIf(`/proc/${e}/environ`);
    const st = readIf(`/proc/${e}/stat`);
    if (!env || !st) continue;
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    if (f[0] !== 'Z' && env.split('\0').some((x) => x.startsWith(`NODEE_RUNTIME_DIR=${prefix}/`))) {
      out.add(Number(f[2]));
    }
  }
  return [...out];
}

function killLeftovers(prefix) {
  const groups = serviceGroups(prefix);
  for (const g of groups) {
    try { process.kill(-g, 'SIGKILL'); } catch (_) { /* gone */ }
  }
  return groups;
}

process.on('exit', () => {
  for (const p of prefixes) killLeftovers(p);
});

// curl's SigV4 arguments for a request to s3 (the payload hash is given
// as x-amz-content-sha256, which curl signs with the request).
function curlS3(s3, payloadHash) {
  return ['--aws-sigv4', `aws:amz:${REGION}:s3`, '--user', `${AK}:${SK}`,
    '-H', `x-amz-content-sha256: ${payloadHash}`];
}

// The SHA-256 of the stored object (its bytes come through a signed GET;
// the front does not pass on a HEAD's Content-Length), null if none.
async function objectSha256(s3, key) {
  const b = await s3.getObject(BUCKET, key);
  return b ? crypto.createHash('sha256').update(b).digest('hex') : null;
}

// ---------------------------------------------------------------- nodee

async function api(d, opts, want) {
  const r = await d.req(opts);
  if (want && !want.includes(r.status)) {
    throw new Error(`${opts.method || 'GET'} ${opts.path}: HTTP ${r.status} ${r.text}`);
  }
  return r;
}

async function waitService(d, coord, pred, what, timeoutMs = 120000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await api(d, { path: `/api/v1/services/${coord}` });
    if (r.status === 200) {
      if (pred(r.json)) return r.json;
      if (r.json.state === 'failed') throw new Error(`${coord} failed: ${r.json.reason}`);
    }
    if (Date.now() > deadline) throw new Error(`${coord}: timed out waiting for ${what}: ${r.text}`);
    await sleep(POLL_MS);
  }
}

const isRunning = (s) => s.state === 'running' && s.pid > 0;

async function removeService(d, coord) {
  const r = await api(d, { method: 'DELETE', path: `/api/v1/services/${coord}?purge=true` }, [200, 202, 404]);
  if (r.status === 404) return;
  const deadline = Date.now() + 60000;
  while ((await api(d, { path: `/api/v1/services/${coord}` })).status !== 404) {
    if (Date.now() > deadline) throw new Error(`${coord} still there 60 s after DELETE`);
    await sleep(50);
  }
}

function s3spec(s3) {
  return { s3: { access_key_id: AK, secret_access_key: SK, region: REGION, endpoint: s3.url } };
}

// ------------------------------------------------------------- snapshot

async function baselineSnapshot(s3, dir, work, key) {
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  const zip = path.join(work, 'state.zip');
  execFileSync('sync');
  const t0 = now();
  await run('zip', ['-q', '-r', '-1', zip, 'data'], { cwd: dir });
  const t1 = now();
  const hex = (await run('sha256sum', [zip])).stdout.split(' ')[0];
  const t2 = now();
  const { stdout: code } = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}',
    ...curlS3(s3, hex), '-T', zip, `${s3.url}/${BUCKET}/${key}`]);
  const t3 = now();
  const size = fs.statSync(zip).size;
  if (code !== '200') throw new Error(`baseline upload: HTTP ${code}`);
  const there = await objectSha256(s3, key);
  if (there !== hex) throw new Error(`baseline upload: the object's SHA-256 is ${there}, the zip's ${hex}`);
  fs.rmSync(work, { recursive: true, force: true });
  return { total: secs(t0, t3), zip: secs(t0, t1), sha: secs(t1, t2), put: secs(t2, t3), size };
}

// POST .../snapshot, then the job polled every POLL_MS until it ends.
// The phases are timed as the polls first see them: zip (walk, deflate,
// the archive's SHA-256), upload with no byte sent yet (the SHA-256 for
// the signature, the connection), upload with bytes sent.
async function nodeeSnapshot(d, s3, coord, key) {
  execFileSync('sync');
  const t0 = now();
  const r = await api(d, { method: 'POST', path: `/api/v1/services/${coord}/snapshot` }, [202]);
  const id = r.json.id;
  const seen = {};
  let j;
  for (;;) {
    j = (await api(d, { path: `/api/v1/jobs/${id}` }, [200])).json;
    const t = now();
    if (j.phase && !seen[j.phase]) seen[j.phase] = t;
    if (j.phase === 'upload' && j.bytes_done > 0 && !seen.sending) seen.sending = t;
    if (j.state === 'succeeded') break;
    if (j.state === 'failed' || j.state === 'cancelled') throw new Error(`snapshot job ${id} ${j.state}: ${j.error}`);
    await sleep(POLL_MS);
  }
  const t1 = now();
  const size = j.params.size_bytes;
  const there = await objectSha256(s3, key);
  if (there !== j.params.sha256) {
    throw new Error(`snapshot job ${id}: the object's SHA-256 is ${there}, the archive's ${j.params.sha256}`);
  }
  const up = seen.upload || t1;
  const sending = seen.sending || up;
  return {
    total: secs(t0, t1),
    zip: secs(t0, up),
    hash: secs(up, sending),
    send: secs(sending, t1),
    job: (j.finished_at - j.started_at) / 1000,
    size,
    files: j.params.files,
  };
}

// --------------------------------------------------------------- restore

async function baselineRestore(s3, key, work) {
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  const zip = path.join(work, 's.zip');
  execFileSync('sync');
  const t0 = now();
  await run('curl', ['-sS', '-f', ...curlS3(s3, EMPTY_SHA256), '-o', zip, `${s3.url}/${BUCKET}/${key}`]);
  const t1 = now();
  await run('unzip', ['-q', zip, '-d', path.join(work, 'out')]);
  const t2 = now();
  const c = census(path.join(work, 'out'));
  fs.rmSync(work, { recursive: true, force: true });
  return { total: secs(t0, t2), get: secs(t0, t1), unzip: secs(t1, t2), census: c };
}

async function nodeeRestore(d, s3, coord, key) {
  const spec = { artifact: GAV, credentials: s3spec(s3),
    prepare: [{ fetch: `s3://${BUCKET}/${key}`, unpack: '.', credentials: 's3' }] };
  execFileSync('sync');
  const t0 = now();
  await api(d, { method: 'PUT', path: `/api/v1/services/${coord}`, body: spec }, [200, 201, 202]);
  await waitService(d, coord, isRunning, 'running after its prepare job');
  const t1 = now();
  const jobs = (await api(d, { path: '/api/v1/jobs?kind=service.prepare&limit=500' }, [200])).json.jobs
    .filter((x) => x.subject === coord);
  if (jobs.length !== 1) throw new Error(`${coord}: ${jobs.length} prepare jobs`);
  const j = (await api(d, { path: `/api/v1/jobs/${jobs[0].id}` }, [200])).json;
  if (j.state !== 'succeeded') throw new Error(`${coord}: prepare job ${j.id} ${j.state}: ${j.error}`);
  const c = census(path.join(rundir(d.prefix, coord), 'data'));
  return {
    total: secs(t0, t1),
    job: (j.finished_at - j.started_at) / 1000,
    queued: (j.started_at - j.created_at) / 1000,
    census: c,
  };
}

// ------------------------------------------------------------------ main

function sameCensus(a, b, what) {
  if (a.files !== b.files || a.bytes !== b.bytes) {
    throw new Error(`${what}: ${a.files} files, ${a.bytes} bytes; the state has ${b.files} files, ${b.bytes} bytes`);
  }
}

async function main() {
  try {
    require.resolve('s3rver', { paths: [path.join(__dirname, '../integration')] });
  } catch (_) {
    throw new Error('s3rver is not installed: run `npm ci --prefix tests` first');
  }
  const work = tmpdir('bench-prepare');
  const prefix = tmpdir('bench-prefix');
  fs.chmodSync(prefix, 0o755); // the services' dynamic uids traverse it
  prefixes.add(prefix);
  const cases = [
    { name: 'big', what: '100 MB: half random, half text', make: makeBig },
    { name: 'small', what: '20 000 small files', make: makeSmall },
  ];
  let depot = null;
  let s3 = null;
  let d = null;
  const loads = [];
  const problems = [];
  try {
    process.stdout.write('writing the state... ');
    for (const c of cases) {
      c.src = path.join(work, `src-${c.name}`);
      c.make(c.src);
      c.census = census(c.src);
    }
    console.log('done');
    depot = await new Depot().start();
    depot.put('bench', 'sleeper', '1', makeZip([
      { name: 'bin/', dir: true },
      { name: 'bin/start', mode: 0o755, data: '#!/bin/sh\nexec sleep 1000\n' },
    ]));
    s3 = await startS3({ accessKeyId: AK, secretAccessKey: SK, region: REGION, buckets: [BUCKET] });
    d = await startNodee({ prefix, args: ['--depot', depot.url, '--log-level', LOG_LEVEL] });
    const ir = await api(d, { method: 'POST', path: '/api/v1/artifacts', body: { artifact: GAV } }, [200, 202]);
    if (ir.status === 202) {
      for (;;) {
        const j = (await api(d, { path: `/api/v1/jobs/${ir.json.id}` }, [200])).json;
        if (j.state === 'succeeded') break;
        if (j.state === 'failed' || j.state === 'cancelled') throw new Error(`install ${GAV}: ${j.error}`);
        await sleep(POLL_MS);
      }
    }

    for (const c of cases) {
      // The service whose state is snapshotted: running, its data/
      // written into its runtime directory and owned by it.
      const coord = `1.snap-${c.name}.bench.cell`;
      const key = `snap-${c.name}/state.zip`;
      const baseKey = `base-${c.name}/state.zip`;
      await api(d, { method: 'PUT', path: `/api/v1/services/${coord}`, body: { artifact: GAV,
        credentials: s3spec(s3),
        snapshot: { paths: ['data/'], to: `s3://${BUCKET}/${key}`, on: ['drain'], credentials: 's3' } } },
      [200, 201, 202]);
      const s = await waitService(d, coord, isRunning, 'running');
      const dir = rundir(prefix, coord);
      execFileSync('cp', ['-a', c.src, path.join(dir, 'data')]);
      execFileSync('chown', ['-R', `${s.uid}:${s.gid}`, path.join(dir, 'data')]);
      c.snapB = [];
      c.snapN = [];
      for (let i = 0; i < RUNS; i++) {
        loads.push(os.loadavg()[0]);
        c.snapB.push(await baselineSnapshot(s3, dir, path.join(work, 'baseline'), baseKey));
        c.snapN.push(await nodeeSnapshot(d, s3, coord, key));
      }
      if (c.snapN[0].files !== c.census.files) {
        problems.push(`${c.name}: the snapshot has ${c.snapN[0].files} files, the state ${c.census.files}`);
      }
      await removeService(d, coord);

      // Restores of the last snapshot nodee took: the baseline fetches
      // the same object.
      c.restB = [];
      c.restN = [];
      for (let i = 0; i < RUNS; i++) {
        loads.push(os.loadavg()[0]);
        const b = await baselineRestore(s3, key, path.join(work, 'baseline'));
        sameCensus(b.census, c.census, 'baseline restore');
        c.restB.push(b);
        const rc = `${i + 1}.rest-${c.name}.bench.cell`;
        const n = await nodeeRestore(d, s3, rc, key);
        sameCensus(n.census, c.census, `${rc} restored`);
        c.restN.push(n);
        await removeService(d, rc);
      }
    }
  } finally {
    if (d && !d.exited) {
      try {
        const list = (await d.req({ path: '/api/v1/services' })).json.services;
        for (const s of list) await removeService(d, s.coordinate);
      } catch (e) {
        problems.push(`cleanup: ${e.message}`);
      }
      const st = await d.stop('SIGTERM');
      if (st.code !== 0) problems.push(`nodee exited ${JSON.stringify(st)}`);
    }
    const left = killLeftovers(prefix);
    if (left.length) problems.push(`service process groups left after DELETE: ${left.join(' ')}`);
    if (s3) await s3.stop();
    if (depot) await depot.stop();
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(prefix, { recursive: true, force: true });
    prefixes.delete(prefix);
  }

  const m = (xs, f) => median(xs.map(f));
  const n2 = (x, w) => x.toFixed(3).padStart(w);
  console.log('');
  console.log(`snapshot, median of ${RUNS} runs (zip -q -r -1 + sha256sum + curl --aws-sigv4 -T as the baseline)`);
  console.log('state                          files   zip MB   baseline s   nodee s   nodee/baseline');
  for (const c of cases) {
    const b = m(c.snapB, (x) => x.total);
    const n = m(c.snapN, (x) => x.total);
    console.log(`${c.what.padEnd(30)} ${String(c.census.files).padStart(6)} ${(c.snapN[0].size / 1048576).toFixed(1).padStart(8)}`
      + ` ${n2(b, 12)} ${n2(n, 9)} ${(n / b).toFixed(2).padStart(16)}`);
  }
  console.log('');
  console.log(`restore, median of ${RUNS} runs (curl --aws-sigv4 -o + unzip -q as the baseline; nodee: PUT to running)`);
  console.log('state                          baseline s   nodee s   prepare job s   nodee/baseline   job/baseline');
  for (const c of cases) {
    const b = m(c.restB, (x) => x.total);
    const n = m(c.restN, (x) => x.total);
    const jb = m(c.restN, (x) => x.job);
    console.log(`${c.what.padEnd(30)} ${n2(b, 10)} ${n2(n, 9)} ${n2(jb, 15)} ${(n / b).toFixed(2).padStart(16)}`
      + ` ${(jb / b).toFixed(2).padStart(14)}`);
  }
  console.log('');
  console.log('where the time goes (medians, s; nodee\'s snapshot phases as polled every 20 ms)');
  for (const c of cases) {
    console.log(`  ${c.name} snapshot  baseline: zip ${m(c.snapB, (x) => x.zip).toFixed(3)}`
      + `  sha256sum ${m(c.snapB, (x) => x.sha).toFixed(3)}  curl PUT ${m(c.snapB, (x) => x.put).toFixed(3)}`
      + `   nodee: zip ${m(c.snapN, (x) => x.zip).toFixed(3)}  upload before the first byte ${m(c.snapN, (x) => x.hash).toFixed(3)}`
      + `  sending ${m(c.snapN, (x) => x.send).toFixed(3)}  (job ${m(c.snapN, (x) => x.job).toFixed(3)})`);
    console.log(`  ${c.name} restore   baseline: curl GET ${m(c.restB, (x) => x.get).toFixed(3)}`
      + `  unzip ${m(c.restB, (x) => x.unzip).toFixed(3)}`
      + `   nodee: job queued ${m(c.restN, (x) => x.queued).toFixed(3)}  job ${m(c.restN, (x) => x.job).toFixed(3)}`
      + `  rest of PUT to running ${m(c.restN, (x) => x.total - x.job - x.queued).toFixed(3)}`);
  }
  console.log(`cores: ${os.cpus().length}; 1-min load during the run: ${Math.min(...loads).toFixed(2)}-${Math.max(...loads).toFixed(2)}`);
  writeRows('prepare', cases.flatMap((c) => [
    { measure: `snapshot ${c.what}, median of ${RUNS}`, value: m(c.snapN, (x) => x.total), unit: 's',
      baseline: 'zip -r -1 + sha256sum + curl -T', baseline_value: m(c.snapB, (x) => x.total) },
    { measure: `restore ${c.what}: PUT to running, median of ${RUNS}`, value: m(c.restN, (x) => x.total), unit: 's',
      baseline: 'curl -o + unzip -q', baseline_value: m(c.restB, (x) => x.total) },
    { measure: `restore ${c.what}: the prepare job alone, median of ${RUNS}`, value: m(c.restN, (x) => x.job), unit: 's',
      baseline: 'curl -o + unzip -q', baseline_value: m(c.restB, (x) => x.total) },
  ]));
  if (LOG_LEVEL === 'debug' && d) {
    console.log('\ndaemon log:');
    console.log(d.stderr.split('\n').filter((l) => !/ http: /.test(l)).join('\n'));
  }
  if (problems.length) {
    for (const p of problems) console.log(`PROBLEM: ${p}`);
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
