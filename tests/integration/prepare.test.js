// Runtime directory preparation and snapshots (issue 5): `prepare` steps
// (copy, template, fetch over http and s3, once, optional), `snapshot` on
// drain, stop and on demand, retries of failed uploads, and a round trip
// through S3.  A real daemon (as root, as in CI: services run as dynamic
// uids) on a temporary prefix, a real loopback HTTP depot, and npm's
// s3rver with signature checking (tests/integration/s3.js).
//
// A failed preparation must leave the service `failed` with a reason that
// names the step and the cause, and the runtime directory exactly as it
// was: every failure case compares a full listing (names, types, modes,
// owners, contents, link targets) before and after.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const zlib = require('node:zlib');
const { startNodee, sanitizerReport, sqlRows, sleep, tmpdir, waitFor, readIf, waitFile, serviceGroups } = require('./lib');
const { makeZip } = require('./zipper');
const { Depot, sha256 } = require('./depot');

let startS3 = null;
let s3LoadError = null;
try {
  ({ startS3 } = require('./s3'));
} catch (e) {
  s3LoadError = e;
}

const GAV = 'com.test:prep:1';
const NODE = 'prep-node-7';
const RAND = crypto.randomBytes(4).toString('hex');
// Every secret used anywhere in this file: none may appear in an API
// answer, a job, an event or the daemon's log.
const AK = 'AKIDPREPTEST';
const SK = `s3cr3t-SK-${RAND}`;
const WRONG_SK = `wr0ng-SK-${RAND}`;
const TOKEN = `t0ken-${RAND}`;
const URL_PW = `pw-${RAND}`;
const URL_QS = `sig-${RAND}`;
const SECRETS = [SK, WRONG_SK, TOKEN, URL_PW, URL_QS];

// ---------------------------------------------------------------- artifact

const TEMPLATE_ALL = `coordinate=\${coordinate}
instance=\${instance}
service=\${service}
user=\${user}
cell=\${cell}
runtime_dir=\${runtime_dir}
artifact_dir=\${artifact_dir}
node=\${node}
port=\${option:--port}
greeting=\${env:GREETING}
two=\${instance}-\${service}
literal=$\${coordinate}
plain=$5 and $ {x} and $
`;

const ARTIFACT = [
  { name: 'bin/', dir: true },
  { name: 'bin/start', mode: 0o755, data: '#!/bin/sh\necho ready > ready\nexec sleep 1000\n' },
  // Appends to a file that `copy` put there: the service changing its conf.
  { name: 'bin/mod', mode: 0o755, data: `#!/bin/sh
echo "changed $$" >> conf/app.properties
echo ready > ready
exec sleep 1000
` },
  // Adds files next to what a fetch unpacked, once.
  { name: 'bin/fetchsvc', mode: 0o755, data: `#!/bin/sh
if [ ! -e started-once ]; then
  echo keep > data/keep.txt
  echo old > data/db/old.txt
  echo once > started-once
fi
echo ready > ready
exec sleep 1000
` },
  // Replaces what prepare made with symlinks that lead out.
  { name: 'bin/linker', mode: 0o755, data: `#!/bin/sh
rm -rf conf single.txt data
ln -s "$EVIL/dir" conf
ln -s "$EVIL/victim.txt" single.txt
ln -s "$EVIL/dir" data
echo ready > ready
exec sleep 1000
` },
  // Writes state once (never overwrites it), with a link that stays
  // inside, one that leads out and a fifo.
  { name: 'bin/stateful', mode: 0o755, data: `#!/bin/sh
mkdir -p data/sub
if [ ! -e data/state ]; then
  echo "$NODEE_COORDINATE $(date +%s%N)" > data/state
  echo nested > data/sub/nested.txt
  ln -s state data/inlink
  ln -s /etc/passwd data/outlink
  mkfifo data/fifo
fi
echo ready > ready
exec sleep 1000
` },
  // Leaves a process of its own session behind, working inside data/.
  { name: 'bin/leaver', mode: 0o755, data: `#!/bin/sh
mkdir -p data
setsid sh -c 'cd data && echo $$ > ../leaver.pid && exec sleep 1000' </dev/null >/dev/null 2>&1 &
echo ready > ready
exec sleep 1000
` },
  // Ignores TERM (SIG_IGN survives exec): only the SIGKILL after
  // stop.timeout_s ends it.
  { name: 'bin/stubborn', mode: 0o755, data: `#!/bin/sh
trap '' TERM
mkdir -p data
echo stubborn > data/state
echo ready > ready
exec sleep 1000
` },
  { name: 'conf/', dir: true },
  { name: 'conf/app.properties', data: 'name=app\n' },
  { name: 'conf/run.sh', mode: 0o755, data: '#!/bin/sh\necho run\n' },
  { name: 'conf/sub/', dir: true },
  { name: 'conf/sub/deep.txt', data: 'deep\n' },
  { name: 'etc/', dir: true },
  { name: 'etc/single.txt', data: 'single v1\n' },
  { name: 'tpl/', dir: true },
  { name: 'tpl/all.in', data: TEMPLATE_ALL },
  { name: 'tpl/plain.in', data: 'c=${coordinate}\n' },
  { name: 'tpl/bad.in', data: 'a=1\nb=${coordinate}\nc=${colour}\n' },
  { name: 'tpl/noopt.in', data: 'a=1\nport=${option:--missing}\n' },
  { name: 'tpl/noenv.in', data: 'x\ny\nz\nv=${env:NOPE_NOT_SET}\n' },
  { name: 'tpl/unclosed.in', data: 'ok\nbroken=${coordinate\n' },
  { name: 'tpl/huge.in', data: 'a'.repeat(1024 * 1024 + 1), deflate: true },
];

// ------------------------------------------------------------------ helpers

const prefixes = new Set();

function newPrefix() {
  const p = tmpdir('prep');
  fs.chmodSync(p, 0o755); // a dynamic uid must traverse it
  prefixes.add(p);
  return p;
}

function killLeftovers(prefix) {
  const killed = [];
  for (const pgid of serviceGroups(prefix)) {
    try { process.kill(-pgid, 'SIGKILL'); } catch (_) { /* gone */ }
    killed.push(pgid);
  }
  return killed;
}

process.on('exit', () => {
  for (const p of prefixes) killLeftovers(p);
});

function rundir(prefix, coord) {
  const [inst, svc, user, cell] = coord.split('.');
  return path.join(prefix, 'runtime', cell, user, svc, inst);
}

// Every entry under dir: type, mode, owner, content digest or link
// target.  Files under log/ are listed without their contents (the
// service's output is not the preparation's business).
function listing(dir) {
  const out = [];
  const top = fs.lstatSync(dir);
  out.push(`./ ${(top.mode & 0o7777).toString(8)} ${top.uid}`);
  const walk = (rel) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const abs = path.join(dir, r);
      const st = fs.lstatSync(abs);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) {
        out.push(`${r} -> ${fs.readlinkSync(abs)}`);
      } else if (st.isDirectory()) {
        out.push(`${r}/ ${mode} ${st.uid}`);
        walk(r);
      } else if (st.isFile()) {
        out.push(`${r} ${mode} ${st.uid} ${r.startsWith('log/') ? '' : sha256(fs.readFileSync(abs))}`);
      } else {
        out.push(`${r} special ${mode}`);
      }
    }
  };
  walk('');
  return out.join('\n');
}

// Names (files and dirs, dirs with a trailing slash) under dir, sorted.
function names(dir) {
  const out = [];
  const walk = (rel) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(dir, r));
      if (st.isDirectory()) { out.push(`${r}/`); walk(r); } else out.push(r);
    }
  };
  walk('');
  return out;
}

// Reads a zip (no ZIP64): Map name -> { mode, data, link }.
function readZip(buf) {
  let eocd = -1;
  for (let i = buf.length - 22; i >= 0; i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  assert.ok(eocd >= 0, 'a zip: end of central directory found');
  const count = buf.readUInt16LE(eocd + 10);
  let off = buf.readUInt32LE(eocd + 16);
  const out = new Map();
  for (let i = 0; i < count; i++) {
    assert.equal(buf.readUInt32LE(off), 0x02014b50, 'central directory entry');
    const method = buf.readUInt16LE(off + 10);
    const csize = buf.readUInt32LE(off + 20);
    const nlen = buf.readUInt16LE(off + 28);
    const elen = buf.readUInt16LE(off + 30);
    const clen = buf.readUInt16LE(off + 32);
    const ext = buf.readUInt32LE(off + 38);
    const loff = buf.readUInt32LE(off + 42);
    const name = buf.subarray(off + 46, off + 46 + nlen).toString('utf8');
    const lnlen = buf.readUInt16LE(loff + 26);
    const lelen = buf.readUInt16LE(loff + 28);
    const start = loff + 30 + lnlen + lelen;
    const raw = buf.subarray(start, start + csize);
    const data = method === 8 ? zlib.inflateRawSync(raw) : Buffer.from(raw);
    const mode = ext >>> 16;
    const link = (mode & 0o170000) === 0o120000 ? data.toString('utf8') : null;
    out.set(name, { mode, data, link });
    off += 46 + nlen + elen + clen;
  }
  return out;
}

let depot;
let s3;
let D;

function db(d = D) {
  return path.join(d.prefix, 'state/nodee.db');
}

function q(query, d = D) {
  return sqlRows(db(d), query);
}

const get = (c) => D.req({ path: `/api/v1/services/${c}` });
const put = (c, spec) => D.req({ method: 'PUT', path: `/api/v1/services/${c}`, body: spec });
const post = (c, op) => D.req({ method: 'POST', path: `/api/v1/services/${c}/${op}` });
const del = (c, purge = true) => D.req({ method: 'DELETE',
  path: `/api/v1/services/${c}${purge ? '?purge=true' : ''}` });
const isRunning = (s) => s.state === 'running' && s.pid > 0;
const ENDED = ['succeeded', 'failed', 'cancelled'];

function logTail() {
  return D.stderr.split('\n').slice(-40).join('\n');
}

async function waitSvc(c, pred, what, timeoutMs = 15000) {
  let last;
  try {
    return await waitFor(async () => {
      const r = await get(c);
      last = r.text;
      return r.status === 200 && pred(r.json) ? r.json : null;
    }, `${c}: ${what}`, timeoutMs);
  } catch (e) {
    e.message += `\nlast: ${last}\ndaemon log:\n${logTail()}`;
    throw e;
  }
}

async function jobsOf(kind, subject) {
  const r = await D.req({ path: `/api/v1/jobs?kind=${kind}&limit=500` });
  assert.equal(r.status, 200, `GET /api/v1/jobs?kind=${kind}: ${r.text}`);
  return r.json.jobs.filter((j) => j.subject === subject);
}

async function job(id) {
  const r = await D.req({ path: `/api/v1/jobs/${id}` });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function waitJob(id, timeoutMs = 20000) {
  try {
    return await waitFor(async () => {
      const j = await job(id);
      return ENDED.includes(j.state) ? j : null;
    }, `job ${id}`, timeoutMs);
  } catch (e) {
    e.message += `\ndaemon log:\n${logTail()}`;
    throw e;
  }
}

// Waits for a job of kind for subject with an id above `after` to end.
async function waitNewJob(kind, subject, after, timeoutMs = 20000) {
  try {
    return await waitFor(async () => {
      const j = (await jobsOf(kind, subject)).find((x) => x.id > after);
      return j && ENDED.includes(j.state) ? j : null;
    }, `a new ${kind} job for ${subject}`, timeoutMs);
  } catch (e) {
    e.message += `\ndaemon log:\n${logTail()}`;
    throw e;
  }
}

async function lastJobId(kind, subject) {
  const js = await jobsOf(kind, subject);
  return js.length ? Math.max(...js.map((j) => j.id)) : 0;
}

// Does act() (a PUT, a restart, a start), waits for the prepare job it
// causes to end, then for the service to be running (a new pid) or failed,
// as the job went.  Resolves with { s, job }.
async function settle(c, act) {
  const after = await lastJobId('service.prepare', c);
  const prev = await get(c);
  const prevPid = prev.status === 200 ? prev.json.pid : null;
  const r = await act();
  assert.ok([200, 201, 202].includes(r.status), `${r.status} ${r.text}`);
  const j = await waitNewJob('service.prepare', c, after);
  const s = j.state === 'succeeded'
    ? await waitSvc(c, (x) => isRunning(x) && x.pid !== prevPid, 'running after a successful prepare')
    : await waitSvc(c, (x) => x.state === 'failed', `failed after a failed prepare (${j.error})`);
  return { s, job: j };
}

const putSettle = (c, spec) => settle(c, () => put(c, spec));

// Running, its `ready` written: the runtime dir no longer changes.
async function putReady(c, spec) {
  const { s, job: j } = await putSettle(c, spec);
  assert.equal(j.state, 'succeeded', `prepare of ${c}: ${j.error}\n${logTail()}`);
  assert.equal(s.state, 'running');
  await waitFile(path.join(rundir(D.prefix, c), 'ready'));
  return s;
}

// A service without prepare steps: no prepare job.
async function putPlain(c, spec) {
  const r = await put(c, spec);
  assert.ok([200, 201, 202].includes(r.status), r.text);
  assert.equal(spec.prepare, undefined);
  return waitSvc(c, isRunning, 'running');
}

function assertFailed(s, j, re) {
  assert.equal(s.state, 'failed', JSON.stringify(s));
  assert.equal(s.pid, null);
  assert.equal(j.state, 'failed');
  for (const r of [].concat(re)) {
    assert.match(s.reason || '', r, `service reason: ${s.reason}`);
  }
}

function assertProblem(r, status, detail) {
  assert.equal(r.status, status, `status of ${r.text}`);
  assert.match(r.headers['content-type'] || '', /^application\/problem\+json/);
  if (detail) assert.match(r.json.detail, detail);
}

async function tmpEmpty() {
  await waitFor(() => fs.readdirSync(path.join(D.prefix, 'tmp')).length === 0,
    `${D.prefix}/tmp empty: ${fs.readdirSync(path.join(D.prefix, 'tmp'))}`, 5000);
}

async function removeService(c) {
  const r = await del(c);
  if (r.status === 404) return;
  assert.equal(r.status, 200, r.text);
  await waitFor(async () => (await get(c)).status === 404, `${c} deleted`, 15000);
}

async function removeAll() {
  const list = (await D.req({ path: '/api/v1/services' })).json.services;
  for (const s of list) await removeService(s.coordinate);
  await sleep(50);
  assert.deepEqual(killLeftovers(D.prefix), [], 'no service process outlives its DELETE');
}

// A daemon of a test's own (one it kills or restarts), on a new prefix.
async function ownDaemonPrefix() {
  const prefix = newPrefix();
  return { prefix, opts: { prefix, args: ['--depot', depot.url], env: { NODEE_INSTANCE: NODE } } };
}

async function installOn(d) {
  const r = await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: GAV } });
  assert.equal(r.status, 202, r.text);
  await waitFor(async () => (await d.req({ path: '/api/v1/artifacts/com.test/prep/1' })).status === 200,
    'the artifact installed');
}

// Deletes service c (purging it) and stops d cleanly, sanitizers quiet.
async function ownDaemonEnd(d, c) {
  await d.req({ method: 'DELETE', path: `/api/v1/services/${c}?purge=true` }).catch(() => {});
  await waitFor(async () => (await d.req({ path: `/api/v1/services/${c}` })).status === 404,
    'deleted', 15000).catch(() => {});
  const st = await d.stop('SIGTERM');
  assert.equal(sanitizerReport(d.stderr), null, d.stderr);
  assert.deepEqual(st, { code: 0, signal: null }, d.stderr);
}

function s3creds(secret = SK, endpoint) {
  return { access_key_id: AK, secret_access_key: secret, region: 'us-east-1',
    endpoint: endpoint || s3.url };
}

function needS3() {
  if (!startS3) assert.fail(`tests/integration/s3.js could not be loaded: ${s3LoadError && s3LoadError.message}`);
}

async function s3Get(bucket, key) {
  const b = await s3.getObject(bucket, key);
  return b === null || b === undefined ? null : Buffer.from(b);
}

// Creates a bucket on the s3rver (a signed PUT of the bucket).
async function createBucket(name) {
  const r = await s3.request({ method: 'PUT', bucket: name });
  assert.equal(r.status, 200, `create bucket ${name}: ${r.status} ${r.body}`);
}

function events(kind, subject) {
  return q(`select kind, subject, detail from events where kind = '${kind}'${
    subject ? ` and subject = '${subject}'` : ''} order by id`);
}

// ------------------------------------------------------------------- setup

test.before(async () => {
  depot = await new Depot().start();
  depot.put('com.test', 'prep', '1', makeZip(ARTIFACT));
  // Low limits, so that a fetch can exceed them cheaply.
  const env = { NODEE_INSTANCE: NODE, NODEE_DOWNLOAD_MAX: '1M',
    NODEE_ARCHIVE_MAX_ENTRIES: '50', NODEE_ARCHIVE_MAX_BYTES: '2M' };
  if (startS3) {
    s3 = await startS3({ accessKeyId: AK, secretAccessKey: SK, buckets: ['prep', 'snap'] });
    Object.assign(env, {
      NODEE_S3_ENDPOINT: s3.url, NODEE_S3_REGION: 'us-east-1',
      NODEE_S3_ACCESS_KEY_ID: AK, NODEE_S3_SECRET_ACCESS_KEY: SK,
    });
  }
  D = await startNodee({ prefix: newPrefix(), args: ['--depot', depot.url], env });
  const r = await D.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: GAV } });
  assert.equal(r.status, 202, r.text);
  const j = await waitJob(r.json.id);
  assert.equal(j.state, 'succeeded', j.error);
});

test.after(async () => {
  try {
    if (D && !D.exited) {
      await removeAll();
      const r = await D.stop('SIGTERM');
      assert.equal(sanitizerReport(D.stderr), null, D.stderr);
      assert.deepEqual(r, { code: 0, signal: null }, D.stderr);
    }
  } finally {
    for (const p of prefixes) killLeftovers(p);
    if (depot) await depot.stop();
    if (s3) await s3.stop();
    for (const p of prefixes) fs.rmSync(p, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------- tests

test('copy: a directory and a file, 0644/0755 owned by the service; overwrite false keeps the service\'s change, true replaces it; a missing source fails', async () => {
  const c = '1.copy.tst.cell';
  const dir = rundir(D.prefix, c);
  const spec = (overwrite) => ({ artifact: GAV, command: 'bin/mod', prepare: [
    { copy: 'conf/', to: 'conf/', ...(overwrite === undefined ? {} : { overwrite }) },
    { copy: 'etc/single.txt', to: 'single.txt' },
  ] });
  const s1 = await putReady(c, spec());
  assert.deepEqual(names(path.join(dir, 'conf')), ['app.properties', 'run.sh', 'sub/', 'sub/deep.txt']);
  await waitFile(path.join(dir, 'conf/app.properties'), new RegExp(`changed ${s1.pid}`));
  assert.equal(readIf(path.join(dir, 'conf/app.properties')), `name=app\nchanged ${s1.pid}\n`);
  assert.equal(readIf(path.join(dir, 'conf/sub/deep.txt')), 'deep\n');
  assert.equal(readIf(path.join(dir, 'single.txt')), 'single v1\n');
  const mode = (p) => fs.statSync(path.join(dir, p)).mode & 0o7777;
  const uid = (p) => fs.statSync(path.join(dir, p)).uid;
  assert.equal(mode('conf/app.properties'), 0o644);
  assert.equal(mode('conf/sub/deep.txt'), 0o644);
  assert.equal(mode('single.txt'), 0o644);
  assert.equal(mode('conf/run.sh'), 0o755, 'executable in the artifact: 0755');
  assert.equal(mode('conf'), 0o755);
  assert.equal(mode('conf/sub'), 0o755);
  for (const p of ['conf', 'conf/sub', 'conf/app.properties', 'conf/run.sh', 'single.txt']) {
    assert.equal(uid(p), s1.uid, `${p} owned by the service's uid`);
  }
  const pj = (await jobsOf('service.prepare', c))[0];
  assert.equal(pj.kind, 'service.prepare');
  assert.equal(pj.state, 'succeeded');

  // overwrite false (the default): a restart keeps what the service changed.
  fs.writeFileSync(path.join(dir, 'single.txt'), 'edited\n');
  const { s: s2 } = await settle(c, () => post(c, 'restart'));
  await waitFile(path.join(dir, 'conf/app.properties'), new RegExp(`changed ${s2.pid}`));
  assert.equal(readIf(path.join(dir, 'conf/app.properties')),
    `name=app\nchanged ${s1.pid}\nchanged ${s2.pid}\n`, 'the service\'s change is kept');
  assert.equal(readIf(path.join(dir, 'single.txt')), 'edited\n');

  // overwrite true: replaced from the artifact before the service appends.
  const { s: s3x, job: j3 } = await putSettle(c, spec(true));
  assert.equal(j3.state, 'succeeded', j3.error);
  await waitFile(path.join(dir, 'conf/app.properties'), new RegExp(`changed ${s3x.pid}`));
  assert.equal(readIf(path.join(dir, 'conf/app.properties')), `name=app\nchanged ${s3x.pid}\n`);
  assert.equal(readIf(path.join(dir, 'single.txt')), 'edited\n', 'overwrite false on that step still keeps it');
  assert.equal(mode('conf/app.properties'), 0o644);

  // A missing source fails the step; nothing changes.
  await waitFile(path.join(dir, 'ready'));
  const before = listing(dir);
  const { s: f, job: fj } = await putSettle(c, { artifact: GAV, command: 'bin/mod', prepare: [
    { copy: 'conf/', to: 'conf2/' }, { copy: 'etc/missing.txt', to: 'missing.txt' }] });
  assertFailed(f, fj, [/prepare step 2/, /etc\/missing\.txt/]);
  assert.equal(listing(dir), before, 'runtime dir unchanged (not even conf2/ from step 1)');
  await tmpEmpty();
  await removeService(c);
});

test('template: every name substituted, $${ literal; the output is replaced by rename after a spec change', async () => {
  const c = 'web-3.tplsvc.alice.cell';
  const dir = rundir(D.prefix, c);
  const spec = (greeting) => ({ artifact: GAV, options: { '--port': '8081' }, env: { GREETING: greeting },
    prepare: [{ template: 'tpl/all.in', to: 'conf/app.properties' }] });
  await putReady(c, spec('hello world'));
  const node = (await D.req({ path: '/api/v1/node' })).json.instance;
  assert.equal(node, NODE);
  const want = (g) => `coordinate=${c}
instance=web-3
service=tplsvc
user=alice
cell=cell
runtime_dir=${dir}
artifact_dir=${path.join(D.prefix, 'software/com.test/prep/1')}
node=${NODE}
port=8081
greeting=${g}
two=web-3-tplsvc
literal=\${coordinate}
plain=$5 and $ {x} and $
`;
  const out = path.join(dir, 'conf/app.properties');
  assert.equal(readIf(out), want('hello world'));
  const ino1 = fs.statSync(out).ino;

  const { job: j } = await putSettle(c, spec('bye'));
  assert.equal(j.state, 'succeeded', j.error);
  assert.equal(readIf(out), want('bye'));
  assert.notEqual(fs.statSync(out).ino, ino1, 'a new file renamed into place, not rewritten in place');
  await tmpEmpty();
  await removeService(c);
});

test('template failures: unknown name, missing option, missing variable, unclosed ${ -> failed naming step, file and line; runtime dir unchanged', async () => {
  const c = '1.tplbad.tst.cell';
  const dir = rundir(D.prefix, c);
  const good = { artifact: GAV, options: { '--port': '1' }, env: { GREETING: 'hi' },
    prepare: [{ copy: 'conf/', to: 'conf/' }, { template: 'tpl/all.in', to: 'out.txt' }] };
  await putReady(c, good);
  const before = listing(dir);
  const cases = [
    ['tpl/bad.in', [/prepare step 2 \(template tpl\/bad\.in\)/, /line 3/, /\$\{colour\}|colour/]],
    ['tpl/noopt.in', [/prepare step 2/, /tpl\/noopt\.in/, /line 2/, /--missing/]],
    ['tpl/noenv.in', [/prepare step 2/, /tpl\/noenv\.in/, /line 4/, /NOPE_NOT_SET/]],
    ['tpl/unclosed.in', [/prepare step 2/, /tpl\/unclosed\.in/, /line 2/]],
    ['tpl/huge.in', [/prepare step 2/, /tpl\/huge\.in/, /MiB|large|big|size|limit/i]],
  ];
  for (const [tpl, res] of cases) {
    const { s, job: j } = await putSettle(c, { ...good,
      prepare: [{ copy: 'conf/', to: 'conf/', overwrite: true }, { template: tpl, to: 'out.txt' }] });
    assertFailed(s, j, res);
    assert.match(j.error || '', /prepare step 2|step 2/, `job error: ${j.error}`);
    assert.equal(listing(dir), before, `${tpl}: runtime dir unchanged`);
    await sleep(200);
    assert.equal((await get(c)).json.state, 'failed', 'not retried until started again');
    assert.equal(await lastJobId('service.prepare', c), j.id, 'no other prepare job');
  }
  assert.equal(readIf(path.join(dir, 'out.txt')).split('\n')[0], `coordinate=${c}`);
  await tmpEmpty();
  await removeService(c);
});

test('a prepare job: the service shows preparing with the job id; phase step N/M; bytes of the download', async () => {
  const c = '1.prepjob.tst.cell';
  const blob = crypto.randomBytes(120 * 1024);
  depot.files.set('/files/slow.bin', blob);
  depot.behaviour.set('/files/slow.bin', 'slow'); // ~1.5 s
  const r = await put(c, { artifact: GAV, prepare: [
    { copy: 'conf/', to: 'conf/' },
    { fetch: `${depot.url}/files/slow.bin`, to: 'slow.bin', sha256: sha256(blob) }] });
  assert.ok([201, 202].includes(r.status), r.text);
  const mid = await waitSvc(c, (x) => x.state === 'preparing' && x.job, 'preparing with a job', 5000);
  assert.equal(mid.pid, null);
  assert.equal(fs.existsSync(rundir(D.prefix, c)), false, 'a new runtime dir appears whole, when every step is done');
  const j = await job(mid.job);
  assert.equal(j.kind, 'service.prepare');
  assert.equal(j.subject, c);
  assert.ok(['queued', 'running'].includes(j.state), j.state);
  const during = await waitFor(async () => {
    const x = await job(mid.job);
    return x.phase === 'step 2/2' && x.bytes_done > 0 ? x : null;
  }, 'phase step 2/2 with bytes', 5000);
  assert.ok(during.bytes_done <= blob.length);
  assert.equal(during.bytes_total, blob.length, 'the download\'s length');
  const done = await waitJob(mid.job);
  assert.equal(done.state, 'succeeded', done.error);
  const s = await waitSvc(c, isRunning, 'running');
  assert.equal(s.job, null, 'no job once running');
  assert.ok(fs.readFileSync(path.join(rundir(D.prefix, c), 'slow.bin')).equals(blob));
  depot.behaviour.delete('/files/slow.bin');
  await removeService(c);
});

test('fetch http: unpack replaces top-level entries and keeps the rest; to stores a file; sha256 checked', async () => {
  const c = '1.fetch.tst.cell';
  const dir = rundir(D.prefix, c);
  const zip = makeZip([
    { name: 'db/', dir: true },
    { name: 'db/a.txt', data: 'A\n' },
    { name: 'top.txt', data: 'top\n', deflate: true },
    { name: 'bin.sh', data: '#!/bin/sh\n', mode: 0o755 },
  ]);
  const blob = crypto.randomBytes(10000);
  depot.files.set('/files/state.zip', zip);
  depot.files.set('/files/blob.bin', blob);
  const s = await putReady(c, { artifact: GAV, command: 'bin/fetchsvc', prepare: [
    { fetch: `${depot.url}/files/state.zip`, sha256: sha256(zip), unpack: 'data/' },
    { fetch: `${depot.url}/files/blob.bin`, to: 'blob.bin', sha256: sha256(blob) }] });
  assert.deepEqual(names(path.join(dir, 'data')), ['bin.sh', 'db/', 'db/a.txt', 'db/old.txt', 'keep.txt', 'top.txt']);
  assert.equal(readIf(path.join(dir, 'data/db/a.txt')), 'A\n');
  assert.equal(readIf(path.join(dir, 'data/top.txt')), 'top\n');
  assert.equal(fs.statSync(path.join(dir, 'data/bin.sh')).mode & 0o777, 0o755);
  assert.equal(fs.statSync(path.join(dir, 'data/top.txt')).mode & 0o777, 0o644);
  assert.equal(fs.statSync(path.join(dir, 'data')).uid, s.uid, 'data/ is the service\'s (it wrote keep.txt)');
  assert.ok(fs.readFileSync(path.join(dir, 'blob.bin')).equals(blob));
  const n = depot.count('/files/state.zip');

  // A restart fetches again: db/ is replaced whole (old.txt gone), the
  // rest of data/ stays.
  const { job: j } = await settle(c, () => post(c, 'restart'));
  assert.equal(j.state, 'succeeded', j.error);
  await waitFile(path.join(dir, 'ready'));
  assert.equal(depot.count('/files/state.zip'), n + 1);
  assert.deepEqual(names(path.join(dir, 'data')), ['bin.sh', 'db/', 'db/a.txt', 'keep.txt', 'top.txt']);
  assert.equal(readIf(path.join(dir, 'data/keep.txt')), 'keep\n');

  // unpack ".": into the runtime dir itself.
  const z2 = makeZip([{ name: 'rootfile.txt', data: 'r\n' }, { name: 'data/', dir: true }, { name: 'data/only.txt', data: 'o\n' }]);
  depot.files.set('/files/root.zip', z2);
  const { job: j2 } = await putSettle(c, { artifact: GAV, command: 'bin/fetchsvc', prepare: [
    { fetch: `${depot.url}/files/root.zip`, unpack: '.' }] });
  assert.equal(j2.state, 'succeeded', j2.error);
  assert.equal(readIf(path.join(dir, 'rootfile.txt')), 'r\n');
  assert.deepEqual(names(path.join(dir, 'data')), ['only.txt'], 'data/ replaced by the archive\'s data/');
  assert.ok(fs.readFileSync(path.join(dir, 'blob.bin')).equals(blob), 'other entries stay');
  await tmpEmpty();
  await removeService(c);
});

test('fetch failures: checksum mismatch, 404, 500, hostile zips -> failed, runtime dir unchanged, nothing outside; optional 404 starts', async () => {
  const c = '1.fetchbad.tst.cell';
  const dir = rundir(D.prefix, c);
  const tag = crypto.randomBytes(4).toString('hex');
  const outside = `/tmp/nodee-evil-${tag}`;
  const good = makeZip([{ name: 'a.txt', data: 'a\n' }]);
  depot.files.set('/bad/good.zip', good);
  await putReady(c, { artifact: GAV, prepare: [{ fetch: `${depot.url}/bad/good.zip`, unpack: 'data/' }] });
  const before = listing(dir);
  const hostile = {
    dotdot: [{ name: 'ok.txt', data: 'fine' }, { name: `../evil-${tag}`, data: 'x' }],
    deep: [{ name: 'ok.txt', data: 'fine' }, { name: `a/../../../evil-${tag}`, data: 'x' }],
    absolute: [{ name: 'ok.txt', data: 'fine' }, { name: `${outside}/abs`, data: 'x' }],
    link: [{ name: 'link', symlink: outside }, { name: 'link/x', data: 'x' }],
    linkup: [{ name: 'l2', symlink: '../../../../../../../../../../tmp' }, { name: 'after.txt', data: 'x' }],
    duplicate: [{ name: 'same.txt', data: 'one' }, { name: 'same.txt', data: 'two' }],
    overlap: [{ name: 'one.bin', data: 'A'.repeat(1000), deflate: true },
      { name: 'two.bin', data: 'A'.repeat(1000), deflate: true }],
    crc: [{ name: 'data.bin', data: 'hello world', crc: 12345 }],
    'too-many': Array.from({ length: 60 }, (_, i) => ({ name: `f${i}`, data: 'x' })),
    'too-big': [{ name: 'zeros.bin', data: Buffer.alloc(3 * 1024 * 1024), deflate: true }],
  };
  const cases = [
    ['checksum', { fetch: `${depot.url}/bad/good.zip`, sha256: '0'.repeat(64), unpack: 'data/' }, [/sha256|checksum/i]],
    ['checksum-to', { fetch: `${depot.url}/bad/good.zip`, sha256: 'f'.repeat(64), to: 'data/a.txt' }, [/sha256|checksum/i]],
    ['404', { fetch: `${depot.url}/bad/missing.zip`, unpack: 'data/' }, [/404/]],
    ['500', { fetch: `${depot.url}/bad/broken.zip`, to: 'x.bin' }, [/500/]],
    ['not-a-zip', { fetch: `${depot.url}/bad/notzip.zip`, unpack: 'data/' }, [/zip|archive/i]],
  ];
  depot.files.set('/bad/broken.zip', Buffer.from('x'));
  depot.behaviour.set('/bad/broken.zip', 500);
  depot.files.set('/bad/notzip.zip', Buffer.from('this is not a zip file at all'));
  depot.files.set('/bad/huge.bin', crypto.randomBytes(1536 * 1024));
  cases.push(['download_max', { fetch: `${depot.url}/bad/huge.bin`, to: 'huge.bin' }, [/download_max|limit|large|bytes/i]]);
  for (const [name, entries] of Object.entries(hostile)) {
    const opts = name === 'overlap' ? { overlap: [[0, 1]] } : {};
    depot.files.set(`/bad/${name}.zip`, makeZip(entries, opts));
    cases.push([`hostile ${name}`, { fetch: `${depot.url}/bad/${name}.zip`, unpack: 'data/' }, []]);
  }
  for (const [name, step, res] of cases) {
    const { s, job: j } = await putSettle(c, { artifact: GAV, prepare: [
      { copy: 'etc/single.txt', to: 'single-new.txt' }, step] });
    assertFailed(s, j, [/prepare step 2/, ...res]);
    assert.equal(listing(dir), before, `${name}: runtime dir unchanged`);
    assert.equal(fs.existsSync(outside), false, `${name}: nothing at ${outside}`);
    for (const p of [`evil-${tag}`, `runtime/evil-${tag}`, `runtime/cell/evil-${tag}`,
      `runtime/cell/tst/evil-${tag}`, `runtime/cell/tst/fetchbad/evil-${tag}`, `tmp/evil-${tag}`]) {
      assert.equal(fs.existsSync(path.join(D.prefix, p)), false, `${name}: ${p}`);
    }
    await tmpEmpty();
  }
  assert.equal(fs.existsSync(`/tmp/evil-${tag}`), false);

  // optional: a 404 skips the step; anything else still fails.
  const { s: ok, job: oj } = await putSettle(c, { artifact: GAV, prepare: [
    { fetch: `${depot.url}/bad/missing.zip`, unpack: 'data/', optional: true },
    { copy: 'etc/single.txt', to: 'single-new.txt' }] });
  assert.equal(oj.state, 'succeeded', oj.error);
  assert.equal(ok.state, 'running');
  assert.equal(readIf(path.join(dir, 'single-new.txt')), 'single v1\n');
  assert.equal(readIf(path.join(dir, 'data/a.txt')), 'a\n', 'the skipped step changed nothing');
  // The skip is noted in the job and its event.
  const full = await job(oj.id);
  assert.match(JSON.stringify(full.params), /skipped/, JSON.stringify(full.params));
  const pev = events('service.prepare.succeeded', c).map((e) => JSON.parse(e.detail)).find((e) => e.job === oj.id);
  assert.ok(pev, 'a service.prepare.succeeded event for the job');
  assert.match(JSON.stringify(pev), /skipped/);
  const fev = events('service.prepare.failed', c);
  assert.equal(fev.length, cases.length, 'one service.prepare.failed event per failure');
  assert.match(JSON.parse(fev[0].detail).reason, /step 2/);
  const { s: f, job: fj } = await putSettle(c, { artifact: GAV, prepare: [
    { fetch: `${depot.url}/bad/good.zip`, sha256: '1'.repeat(64), unpack: 'data/', optional: true }] });
  assertFailed(f, fj, [/prepare step 1/, /sha256|checksum/i]);
  depot.behaviour.delete('/bad/broken.zip');
  await removeService(c);
});

test('once: runs only when the runtime dir is new; restart and stop/start keep live state; again after DELETE ?purge=true', async () => {
  const c = '1.once.tst.cell';
  const dir = rundir(D.prefix, c);
  depot.files.set('/once/once.txt', Buffer.from('v1\n'));
  depot.files.set('/once/every.txt', Buffer.from('v1\n'));
  const spec = { artifact: GAV, prepare: [
    { fetch: `${depot.url}/once/once.txt`, to: 'once.txt', once: true },
    { fetch: `${depot.url}/once/every.txt`, to: 'every.txt' }] };
  await putReady(c, spec);
  assert.equal(readIf(path.join(dir, 'once.txt')), 'v1\n');
  assert.equal(depot.count('/once/once.txt'), 1);
  depot.files.set('/once/once.txt', Buffer.from('v2\n'));
  depot.files.set('/once/every.txt', Buffer.from('v2\n'));

  const { job: j1 } = await settle(c, () => post(c, 'restart'));
  assert.equal(j1.state, 'succeeded', j1.error);
  assert.equal(readIf(path.join(dir, 'every.txt')), 'v2\n', 'the other step ran');
  assert.equal(readIf(path.join(dir, 'once.txt')), 'v1\n', 'a restart does not run a once step');

  assert.equal((await post(c, 'stop')).status, 200);
  await waitSvc(c, (x) => x.state === 'stopped', 'stopped');
  depot.files.set('/once/every.txt', Buffer.from('v3\n'));
  const { job: j2 } = await settle(c, () => post(c, 'start'));
  assert.equal(j2.state, 'succeeded', j2.error);
  assert.equal(readIf(path.join(dir, 'every.txt')), 'v3\n');
  assert.equal(readIf(path.join(dir, 'once.txt')), 'v1\n', 'nor does a stop and start');

  // A restart after a crash prepares too (without the once step).
  const pid = (await get(c)).json.pid;
  depot.files.set('/once/every.txt', Buffer.from('v4\n'));
  const { s: sc, job: jc } = await settle(c, async () => {
    process.kill(pid, 'SIGKILL');
    return { status: 200 };
  });
  assert.equal(jc.state, 'succeeded', jc.error);
  assert.equal(sc.restarts, 1);
  assert.equal(readIf(path.join(dir, 'every.txt')), 'v4\n', 'prepared again after the crash');
  assert.equal(readIf(path.join(dir, 'once.txt')), 'v1\n');

  // A spec change is not a new runtime dir either.
  const { job: j3 } = await putSettle(c, { ...spec, env: { X: '1' } });
  assert.equal(j3.state, 'succeeded', j3.error);
  assert.equal(readIf(path.join(dir, 'once.txt')), 'v1\n', 'nor does a new spec');
  assert.equal(depot.count('/once/once.txt'), 1, 'not even downloaded');

  await removeService(c);
  assert.equal(fs.existsSync(dir), false, 'purged');
  await putReady(c, spec);
  assert.equal(readIf(path.join(dir, 'once.txt')), 'v2\n', 'a new runtime dir: the once step runs');
  assert.equal(depot.count('/once/once.txt'), 2);
  await removeService(c);
});

test('symlinks the service placed in its runtime dir are never written through', async () => {
  const c = '1.linker.tst.cell';
  const dir = rundir(D.prefix, c);
  const evil = fs.mkdtempSync('/tmp/nodee-outside-');
  fs.mkdirSync(path.join(evil, 'dir'));
  fs.chmodSync(evil, 0o777);
  fs.chmodSync(path.join(evil, 'dir'), 0o777);
  fs.writeFileSync(path.join(evil, 'victim.txt'), 'victim\n');
  const outsideState = () => listing(evil);
  try {
    const o0 = outsideState();
    const zip = makeZip([{ name: 'z.txt', data: 'z\n' }]);
    depot.files.set('/link/z.zip', zip);
    const base = { artifact: GAV, command: 'bin/linker', env: { EVIL: evil } };
    await putReady(c, { ...base, prepare: [{ copy: 'etc/single.txt', to: 'first.txt' }] });
    assert.equal(fs.readlinkSync(path.join(dir, 'conf')), path.join(evil, 'dir'));
    const before = listing(dir);
    const cases = [
      ['copy dir to conf/', { copy: 'conf/', to: 'conf/' }],
      ['copy dir to conf/ overwrite', { copy: 'conf/', to: 'conf/', overwrite: true }],
      ['copy file into conf/', { copy: 'etc/single.txt', to: 'conf/single.txt', overwrite: true }],
      ['template into conf/', { template: 'tpl/plain.in', to: 'conf/x.properties' }],
      ['fetch to into conf/', { fetch: `${depot.url}/link/z.zip`, to: 'conf/z.zip' }],
      ['unpack into conf/', { fetch: `${depot.url}/link/z.zip`, unpack: 'conf/' }],
      ['unpack into data/', { fetch: `${depot.url}/link/z.zip`, unpack: 'data/' }],
      ['unpack into conf/sub', { fetch: `${depot.url}/link/z.zip`, unpack: 'conf/sub/' }],
    ];
    for (const [name, step] of cases) {
      const { s, job: j } = await putSettle(c, { ...base, prepare: [step] });
      assert.equal(outsideState(), o0, `${name}: nothing written outside`);
      assertFailed(s, j, [/prepare step 1/]);
      assert.equal(listing(dir), before, `${name}: runtime dir unchanged`);
      await tmpEmpty();
    }
    // A link to a file: the step may replace the link, never write through it.
    for (const overwrite of [false, true]) {
      const { s } = await putSettle(c, { ...base, prepare: [{ copy: 'etc/single.txt', to: 'single.txt', overwrite }] });
      assert.equal(outsideState(), o0, `single.txt overwrite ${overwrite}: the link's target untouched`);
      assert.equal(readIf(path.join(evil, 'victim.txt')), 'victim\n');
      if (s.state === 'failed') assert.match(s.reason, /prepare step 1/);
      await waitSvc(c, (x) => ['running', 'failed'].includes(x.state), 'settled');
    }
    await removeService(c);
    assert.equal(outsideState(), o0, 'a purge does not follow the links either');
  } finally {
    fs.rmSync(evil, { recursive: true, force: true });
  }
});

test('spec validation: bad prepare steps and snapshot rules are 400 naming the field; nothing is created', async () => {
  const c = '1.valid.tst.cell';
  const u = `${depot.url}/files/x.zip`;
  const snap = { paths: ['data/'], to: 's3://snap/${coordinate}/s.zip', on: ['drain'] };
  const bad = [
    [{ prepare: {} }, /prepare/],
    [{ prepare: [{ copy: '../x', to: 'a' }] }, /prepare/],
    [{ prepare: [{ copy: 'conf/../../x', to: 'a' }] }, /prepare/],
    [{ prepare: [{ copy: 'conf/', to: '../a' }] }, /prepare/],
    [{ prepare: [{ copy: 'conf/', to: 'a/../../b' }] }, /prepare/],
    [{ prepare: [{ copy: '/etc/passwd', to: 'a' }] }, /prepare/],
    [{ prepare: [{ copy: 'conf/', to: '/tmp/x' }] }, /prepare/],
    [{ prepare: [{ copy: 'conf/./sub', to: 'a' }] }, /prepare/],
    [{ prepare: [{ copy: 'conf//sub', to: 'a' }] }, /prepare/],
    [{ prepare: [{ template: 'conf/app.in', to: '.' }] }, /prepare\[0\]\.to/],
    [{ prepare: [{ copy: '', to: 'a' }] }, /prepare/],
    [{ prepare: [{ template: 'tpl/all.in', to: '..' }] }, /prepare/],
    [{ prepare: [{ template: '../tpl', to: 'x' }] }, /prepare/],
    [{ prepare: [{ fetch: u, unpack: '../x' }] }, /prepare/],
    [{ prepare: [{ fetch: u, unpack: '/' }] }, /prepare/],
    [{ prepare: [{ fetch: u, to: '/etc/x' }] }, /prepare/],
    [{ prepare: [{ copy: 'conf/', to: 'conf/', bogus: 1 }] }, /bogus/],
    [{ prepare: [{ copy: 'conf/', template: 'tpl/all.in', to: 'x' }] }, /prepare/],
    [{ prepare: [{ copy: 'conf/', fetch: u, to: 'x' }] }, /prepare/],
    [{ prepare: [{ to: 'x' }] }, /prepare/],
    [{ prepare: ['copy'] }, /prepare/],
    [{ prepare: [{ copy: 'conf/', to: 'conf/', once: 'yes' }] }, /once/],
    [{ prepare: [{ copy: 'conf/', to: 'conf/', overwrite: 1 }] }, /overwrite/],
    [{ prepare: [{ fetch: u, to: 'x', optional: 'true' }] }, /optional/],
    [{ prepare: [{ fetch: 's3://snap/k', to: 'x', credentials: 'nope' }] }, /credentials|nope/],
    [{ prepare: [{ fetch: u }] }, /prepare|unpack|to/],
    [{ prepare: [{ fetch: 'snapshot', unpack: '.' }] }, /snapshot/],
    [{ prepare: [{ fetch: 'ftp://127.0.0.1/x', to: 'x' }] }, /prepare|fetch/],
    [{ prepare: [{ fetch: 'file:///etc/passwd', to: 'x' }] }, /prepare|fetch/],
    [{ prepare: [{ fetch: u, to: 'x', sha256: 'abc' }] }, /sha256/],
    [{ snapshot: { ...snap, on: ['reboot'] } }, /snapshot/],
    [{ snapshot: { ...snap, on: ['drain', 'crash'] } }, /snapshot/],
    [{ snapshot: { ...snap, paths: ['../data'] } }, /snapshot/],
    [{ snapshot: { ...snap, paths: ['/data'] } }, /snapshot/],
    [{ snapshot: { ...snap, credentials: 'nope' } }, /credentials|nope/],
    [{ snapshot: { ...snap, bogus: true } }, /bogus/],
    [{ credentials: { x: { access_key_id: AK } } }, /credentials\.x: access_key_id and secret_access_key are required/],
    [{ credentials: { x: { access_key_id: AK, secret_access_key: SK, colour: 'red' } } }, /colour|credentials/],
  ];
  // Every case is tried; the failures are listed together.
  const wrong = [];
  for (const [extra, detail] of bad) {
    const r = await put(c, { artifact: GAV, ...extra });
    const what = JSON.stringify(extra);
    if (r.status !== 400) {
      wrong.push(`${what}: ${r.status} instead of 400`);
      if (r.status === 200 || r.status === 201 || r.status === 202) await removeService(c);
    } else if (!/^application\/problem\+json/.test(r.headers['content-type'] || '')) {
      wrong.push(`${what}: not problem+json`);
    } else if (!detail.test(r.json.detail)) {
      wrong.push(`${what}: detail ${JSON.stringify(r.json.detail)} does not match ${detail}`);
    }
    assert.equal(SECRETS.some((x) => r.text.includes(x)), false, `no secret in the 400: ${r.text}`);
  }
  assert.deepEqual(wrong, [], 'every bad spec is a 400 naming the field');
  assert.equal((await get(c)).status, 404);
  assert.equal(fs.existsSync(rundir(D.prefix, c)), false);
  assert.deepEqual(await jobsOf('service.prepare', c), []);

  // The same rules hold for a running service's replacement: it stays as it was.
  const s = await putPlain(c, { artifact: GAV });
  assertProblem(await put(c, { artifact: GAV, prepare: [{ copy: '../x', to: 'a' }] }), 400, /prepare/);
  await sleep(200);
  const s2 = (await get(c)).json;
  assert.equal(s2.pid, s.pid);
  assert.equal(s2.state, 'running');
  await removeService(c);
});

test('secrets are hidden: (hidden) for secret_access_key and session_token, URLs without user info or query; a presigned URL still works', async () => {
  const c = '1.secret.tst.cell';
  const dir = rundir(D.prefix, c);
  depot.files.set('/hidden/x.txt', Buffer.from('presigned body\n'));
  const url = `http://user:${URL_PW}@127.0.0.1:${depot.port}/hidden/x.txt?X-Amz-Signature=${URL_QS}`;
  const spec = {
    artifact: GAV,
    credentials: { backup: { access_key_id: AK, secret_access_key: SK, session_token: TOKEN,
      region: 'eu-north-1', endpoint: 'http://127.0.0.1:9' } },
    prepare: [{ fetch: url, to: 'x.txt' }],
    snapshot: { paths: ['data/'], to: 's3://bucket/${coordinate}/state.zip', on: ['drain'], credentials: 'backup' },
  };
  const r = await put(c, spec);
  assert.ok([200, 201, 202].includes(r.status), r.text);
  for (const x of SECRETS) assert.equal(r.text.includes(x), false, `PUT answer has no ${x}`);
  await waitSvc(c, isRunning, 'running');
  assert.equal(readIf(path.join(dir, 'x.txt')), 'presigned body\n', 'the URL worked, secrets and all');
  const g = await get(c);
  for (const x of SECRETS) assert.equal(g.text.includes(x), false, `GET has no ${x}: ${g.text}`);
  const cr = g.json.spec.credentials.backup;
  assert.equal(cr.secret_access_key, '(hidden)');
  assert.equal(cr.session_token, '(hidden)');
  assert.equal(cr.access_key_id, AK);
  assert.equal(cr.region, 'eu-north-1');
  assert.equal(g.json.spec.prepare[0].fetch, `http://127.0.0.1:${depot.port}/hidden/x.txt`);
  assert.equal(g.json.spec.snapshot.credentials, 'backup');
  const list = await D.req({ path: '/api/v1/services' });
  for (const x of SECRETS) assert.equal(list.text.includes(x), false, `service list has no ${x}`);
  const js = await jobsOf('service.prepare', c);
  assert.equal(js.length, 1);
  const full = await D.req({ path: `/api/v1/jobs/${js[0].id}` });
  for (const x of SECRETS) assert.equal(full.text.includes(x), false, `prepare job has no ${x}: ${full.text}`);

  // Replacing the spec with the hidden values read back would destroy
  // the secret: the stored secret must be the one given, and a GET still
  // hides it.
  const r2 = await put(c, { ...spec, env: { A: '1' } });
  assert.ok([200, 201, 202].includes(r2.status), r2.text);
  await waitSvc(c, (x) => isRunning(x) && x.spec.env && x.spec.env.A === '1', 'running with the new spec');
  assert.equal((await get(c)).json.spec.credentials.backup.secret_access_key, '(hidden)');

  // A failure names the URL without its secrets.
  const { s: f, job: fj } = await putSettle(c, { ...spec,
    prepare: [{ fetch: url.replace('/hidden/x.txt', '/hidden/missing.txt'), to: 'x.txt' }] });
  assertFailed(f, fj, [/prepare step 1/, /404/, new RegExp(`http://127\\.0\\.0\\.1:${depot.port}/hidden/missing\\.txt`)]);
  for (const x of SECRETS) {
    assert.equal(f.reason.includes(x), false, `no ${x} in the reason: ${f.reason}`);
    assert.equal(JSON.stringify(await job(fj.id)).includes(x), false, `no ${x} in the job`);
  }
  await removeService(c);
});

test('s3 fetch: spec credentials work; a wrong secret or key is refused by the server and reported; config credentials work', async () => {
  needS3();
  const zip = makeZip([{ name: 'db/', dir: true }, { name: 'db/s3.txt', data: 'from s3\n' }]);
  await s3.putObject('prep', 'state/s.zip', zip);
  const c = '1.s3fetch.tst.cell';
  const dir = rundir(D.prefix, c);
  const spec = (cred) => ({ artifact: GAV, credentials: { s3: cred },
    prepare: [{ fetch: 's3://prep/state/s.zip', unpack: 'data/', sha256: sha256(zip), credentials: 's3' }] });
  await putReady(c, spec(s3creds()));
  assert.equal(readIf(path.join(dir, 'data/db/s3.txt')), 'from s3\n');

  const before = listing(dir);
  const { s, job: j } = await putSettle(c, spec(s3creds(WRONG_SK)));
  assertFailed(s, j, [/prepare step 1/, /403/, /SignatureDoesNotMatch/]);
  assert.equal(listing(dir), before, 'runtime dir unchanged');
  for (const x of SECRETS) assert.equal(s.reason.includes(x), false, `no secret in the reason: ${s.reason}`);

  const { s: s2, job: j2 } = await putSettle(c, spec({ ...s3creds(), access_key_id: 'AKIDNOSUCHKEY' }));
  assertFailed(s2, j2, [/prepare step 1/, /403/, /InvalidAccessKeyId/]);
  assert.equal(listing(dir), before);

  const { s: s3x, job: j3 } = await putSettle(c, { artifact: GAV, credentials: { s3: s3creds() },
    prepare: [{ fetch: 's3://prep/state/nothere.zip', unpack: 'data/', credentials: 's3' }] });
  assertFailed(s3x, j3, [/prepare step 1/, /404|NoSuchKey/]);
  assert.equal(listing(dir), before);

  // Without credentials on the step: the configuration's (NODEE_S3_*).
  const c2 = '1.s3conf.tst.cell';
  await putReady(c2, { artifact: GAV, prepare: [{ fetch: 's3://prep/state/s.zip', to: 'state.zip' }] });
  assert.ok(fs.readFileSync(path.join(rundir(D.prefix, c2), 'state.zip')).equals(zip));
  await tmpEmpty();
  await removeService(c);
  await removeService(c2);
});

test('snapshot on drain: a service.snapshot job uploads a zip of data/ (links inside kept, others skipped), event with size and sha256; on demand; stop and restart take none', async () => {
  needS3();
  const c = '1.snap.tst.cell';
  const dir = rundir(D.prefix, c);
  const key = `${c}/state.zip`;
  const spec = { artifact: GAV, command: 'bin/stateful', credentials: { s3: s3creds() },
    snapshot: { paths: ['data/'], to: 's3://snap/${coordinate}/state.zip', on: ['drain'], credentials: 's3' } };
  const r = await put(c, spec);
  assert.ok([201, 202].includes(r.status), r.text);
  await waitSvc(c, isRunning, 'running');
  await waitFile(path.join(dir, 'ready'));
  const state = readIf(path.join(dir, 'data/state'));
  assert.match(state, new RegExp(`^${c.replace(/\./g, '\\.')} \\d+\\n$`));

  // restart and stop are not drains: no snapshot.
  const pid0 = (await get(c)).json.pid;
  assert.equal((await post(c, 'restart')).status, 200);
  await waitSvc(c, (x) => isRunning(x) && x.pid !== pid0, 'running again');
  assert.equal((await post(c, 'stop')).status, 200);
  await waitSvc(c, (x) => x.state === 'stopped', 'stopped');
  assert.equal((await post(c, 'start')).status, 200);
  await waitSvc(c, isRunning, 'running again');
  await sleep(300);
  assert.deepEqual(await jobsOf('service.snapshot', c), [], 'no snapshot on restart or stop with on: [drain]');
  assert.equal(await s3Get('snap', key), null);

  const dr = await post(c, 'drain');
  assert.equal(dr.status, 200, dr.text);
  await waitSvc(c, (x) => x.state === 'stopped', 'stopped after the drain');
  const j = await waitNewJob('service.snapshot', c, 0);
  assert.equal(j.state, 'succeeded', `${j.error}\n${logTail()}`);
  assert.equal(j.kind, 'service.snapshot');
  const obj = await s3Get('snap', key);
  assert.ok(obj, 'the object exists');
  const z = readZip(obj);
  const entryNames = [...z.keys()].filter((n) => !n.endsWith('/')).sort();
  assert.deepEqual(entryNames, ['data/inlink', 'data/state', 'data/sub/nested.txt'],
    `links inside kept, the link out and the fifo skipped: ${[...z.keys()]}`);
  for (const n of z.keys()) assert.match(n, /^data\//);
  assert.equal(z.get('data/state').data.toString(), state);
  assert.equal(z.get('data/inlink').link, 'state', 'kept as a link');
  const ev = events('service.snapshot', c);
  assert.equal(ev.length, 1, JSON.stringify(ev));
  const d = JSON.parse(ev[0].detail);
  assert.equal(d.size_bytes, obj.length);
  assert.equal(d.sha256, sha256(obj));
  assert.match(JSON.stringify(d.url || d), /snap\/1\.snap\.tst\.cell\/state\.zip/);
  const snaps = path.join(D.prefix, 'state/snapshots');
  assert.deepEqual(fs.existsSync(snaps) ? fs.readdirSync(snaps) : [], [], 'archive deleted after the upload');

  // On demand (the service is stopped): 202 with the job.
  fs.writeFileSync(path.join(dir, 'data/extra.txt'), 'extra\n');
  const od = await post(c, 'snapshot');
  assert.equal(od.status, 202, od.text);
  const id = od.json.id || (od.json.job && od.json.job.id) || od.json.job;
  assert.ok(Number.isInteger(id), `a job id in ${od.text}`);
  const j2 = await waitJob(id);
  assert.equal(j2.kind, 'service.snapshot');
  assert.equal(j2.state, 'succeeded', j2.error);
  const obj2 = await s3Get('snap', key);
  assert.equal(readZip(obj2).get('data/extra.txt').data.toString(), 'extra\n');
  const ev2 = events('service.snapshot', c);
  assert.equal(ev2.length, 2);
  assert.equal(JSON.parse(ev2[1].detail).sha256, sha256(obj2));
  assertProblem(await post('1.nope.tst.cell', 'snapshot'), 404);
  // A delete is neither a drain nor a stop: no snapshot.
  const c3 = '1.snapdel.tst.cell';
  await putPlain(c3, { ...spec, snapshot: { ...spec.snapshot, on: ['drain', 'stop'] } });
  await removeService(c3);
  await sleep(300);
  assert.deepEqual(await jobsOf('service.snapshot', c3), [], 'no snapshot on DELETE');
  // A service without a snapshot rule has nothing to take.
  const c2 = '1.nosnap.tst.cell';
  await putPlain(c2, { artifact: GAV });
  const ns = await post(c2, 'snapshot');
  assert.ok([400, 409].includes(ns.status), `${ns.status} ${ns.text}`);
  await removeService(c);
  await removeService(c2);
});

test('a failed upload fails the job with the server\'s answer and keeps the archive; retry uploads that archive', async () => {
  needS3();
  // A wrong secret: 403 SignatureDoesNotMatch.
  const c = '1.snapbad.tst.cell';
  await putReady(c, { artifact: GAV, command: 'bin/stateful', credentials: { s3: s3creds(WRONG_SK) },
    snapshot: { paths: ['data/'], to: 's3://snap/${coordinate}/state.zip', on: ['stop'], credentials: 's3' } });
  assert.equal((await post(c, 'stop')).status, 200);
  await waitSvc(c, (x) => x.state === 'stopped', 'stopped');
  const j = await waitNewJob('service.snapshot', c, 0);
  assert.equal(j.state, 'failed');
  assert.match(j.error || '', /403/);
  assert.match(j.error || '', /SignatureDoesNotMatch/);
  assert.equal(await s3Get('snap', `${c}/state.zip`), null);
  assert.ok(fs.existsSync(path.join(D.prefix, `state/snapshots/job-${j.id}.zip`)), 'archive kept');
  const fe = events('service.snapshot.failed', c);
  assert.equal(fe.length, 1);
  assert.match(fe[0].detail, /SignatureDoesNotMatch|403/);
  await removeService(c);

  // A bucket that does not exist yet: the retry after it is made succeeds
  // with the same archive.
  const c2 = '1.snaplate.tst.cell';
  const key = `${c2}/state.zip`;
  await putReady(c2, { artifact: GAV, command: 'bin/stateful', credentials: { s3: s3creds() },
    snapshot: { paths: ['data/'], to: 's3://late/${coordinate}/state.zip', on: ['stop'], credentials: 's3' } });
  assert.equal((await post(c2, 'stop')).status, 200);
  await waitSvc(c2, (x) => x.state === 'stopped', 'stopped');
  const f = await waitNewJob('service.snapshot', c2, 0);
  assert.equal(f.state, 'failed');
  assert.match(f.error || '', /404|NoSuchBucket/);
  const kept = path.join(D.prefix, `state/snapshots/job-${f.id}.zip`);
  assert.ok(fs.existsSync(kept), 'archive kept');
  const archive = fs.readFileSync(kept);
  assert.ok(readZip(archive).has('data/state'));
  await createBucket('late');
  // The service's files change after the failure: the retry sends the
  // archive that was kept, not a new one.
  fs.writeFileSync(path.join(rundir(D.prefix, c2), 'data/after.txt'), 'after\n');
  const rr = await D.req({ method: 'POST', path: `/api/v1/jobs/${f.id}/retry` });
  assert.equal(rr.status, 202, rr.text);
  assert.notEqual(rr.json.id, f.id, 'a new job');
  const j2 = await waitJob(rr.json.id);
  assert.equal(j2.kind, 'service.snapshot');
  assert.equal(j2.state, 'succeeded', j2.error);
  const obj = await s3Get('late', key);
  assert.ok(obj && obj.equals(archive), 'the same archive uploaded');
  assert.equal(fs.existsSync(kept), false, 'deleted after the upload');
  const ev = events('service.snapshot', c2);
  assert.equal(JSON.parse(ev.at(-1).detail).sha256, sha256(archive));
  const again = await D.req({ method: 'POST', path: `/api/v1/jobs/${j2.id}/retry` });
  assert.ok([400, 409].includes(again.status), `retry of a succeeded job: ${again.status} ${again.text}`);
  await removeService(c2);
});

test('while a snapshot job runs: DELETE is 409 and a start waits for it', async () => {
  // An S3 endpoint that holds requests until told to answer.
  const held = [];
  const srv = http.createServer((req, res) => {
    req.resume();
    held.push(res);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const ep = `http://127.0.0.1:${srv.address().port}`;
  const c = '1.snaphang.tst.cell';
  try {
    await putReady(c, { artifact: GAV, command: 'bin/stateful', credentials: { h: s3creds(SK, ep) },
      snapshot: { paths: ['data/'], to: 's3://b/${coordinate}/s.zip', on: ['drain'], credentials: 'h' } });
    assert.equal((await post(c, 'drain')).status, 200);
    await waitSvc(c, (x) => x.state === 'stopped', 'stopped');
    await waitFor(() => held.length > 0, 'the upload reached the endpoint', 10000);
    const running = (await jobsOf('service.snapshot', c))[0];
    assert.equal(running.state, 'running');
    const dr = await del(c);
    assertProblem(dr, 409);
    assert.equal((await get(c)).status, 200, 'still there');
    const st = await post(c, 'start');
    assert.ok([200, 202].includes(st.status), st.text);
    await sleep(500);
    const mid = (await get(c)).json;
    assert.equal(mid.pid, null, `does not start while its snapshot runs: ${JSON.stringify(mid)}`);
    assert.notEqual(mid.state, 'running');
    for (const res of held.splice(0)) {
      res.writeHead(403, { 'Content-Type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
    }
    const j = await waitJob(running.id);
    assert.equal(j.state, 'failed');
    assert.match(j.error, /403/);
    assert.match(j.error, /AccessDenied/);
    await waitSvc(c, isRunning, 'started once the snapshot ended');
    await removeService(c);
  } finally {
    for (const res of held.splice(0)) res.destroy();
    srv.close();
  }
});

test('round trip: state written, drained with a snapshot, purged, created again with a fetch of the snapshot: the state is back', async () => {
  needS3();
  const c = '1.roundtrip.tst.cell';
  const dir = rundir(D.prefix, c);
  const spec = { artifact: GAV, command: 'bin/stateful', credentials: { s3: s3creds() },
    prepare: [{ fetch: 'snapshot', unpack: '.', once: true, optional: true }],
    snapshot: { paths: ['data/'], to: 's3://snap/${coordinate}/state.zip', on: ['drain'], credentials: 's3' } };
  // No snapshot yet: the optional step is skipped.
  await putReady(c, spec);
  const state = readIf(path.join(dir, 'data/state'));
  assert.match(state, /^1\.roundtrip\.tst\.cell \d+\n$/);
  assert.equal((await post(c, 'drain')).status, 200);
  await waitSvc(c, (x) => x.state === 'stopped', 'stopped');
  const j = await waitNewJob('service.snapshot', c, 0);
  assert.equal(j.state, 'succeeded', j.error);
  await removeService(c);
  assert.equal(fs.existsSync(dir), false, 'purged');

  await putReady(c, spec);
  assert.equal(readIf(path.join(dir, 'data/state')), state, 'the state is back');
  assert.equal(readIf(path.join(dir, 'data/sub/nested.txt')), 'nested\n');
  assert.equal(fs.readlinkSync(path.join(dir, 'data/inlink')), 'state');
  const s = (await get(c)).json;
  assert.equal(fs.statSync(path.join(dir, 'data/state')).uid, s.uid, 'owned by the service');
  await removeService(c);
});

test('no secret in any job, event or the daemon log', async () => {
  const all = await D.req({ path: '/api/v1/jobs?limit=500' });
  assert.equal(all.status, 200);
  const texts = [all.text];
  for (const jb of all.json.jobs) texts.push((await D.req({ path: `/api/v1/jobs/${jb.id}` })).text);
  texts.push(JSON.stringify(q('select * from events')));
  texts.push(JSON.stringify(q('select id, kind, subject, params, error from jobs')));
  const blob = texts.join('\n');
  for (const x of SECRETS) {
    assert.equal(blob.includes(x), false, `secret ${x} in jobs or events`);
    assert.equal(D.stderr.includes(x), false, `secret ${x} in the daemon log`);
  }
  assert.ok(all.json.jobs.some((jb) => jb.kind === 'service.prepare'));
});

test('a daemon killed (-9) during a prepare job: the next one runs the job again and starts the service; no half runtime dir', async () => {
  const c = '1.crashprep.tst.cell';
  const blob = crypto.randomBytes(120 * 1024);
  depot.files.set('/files/crash.bin', blob);
  depot.behaviour.set('/files/crash.bin', 'slow');
  const { prefix, opts } = await ownDaemonPrefix();
  let d = await startNodee(opts);
  const svc = async () => (await d.req({ path: `/api/v1/services/${c}` })).json;
  try {
    await installOn(d);
    let r = await d.req({ method: 'PUT', path: `/api/v1/services/${c}`, body: { artifact: GAV,
      prepare: [{ fetch: `${depot.url}/files/crash.bin`, to: 'crash.bin', sha256: sha256(blob) }] } });
    assert.ok([200, 201].includes(r.status), r.text);
    const mid = await waitFor(async () => {
      const x = await svc();
      return x.state === 'preparing' && x.job ? x : null;
    }, 'preparing', 5000);
    await waitFor(async () => {
      const j = (await d.req({ path: `/api/v1/jobs/${mid.job}` })).json;
      return j.state === 'running' && j.bytes_done > 0;
    }, 'the download under way', 5000);
    d.proc.kill('SIGKILL');
    await d.exitPromise;
    assert.equal(fs.existsSync(rundir(prefix, c)), false, 'no half-made runtime directory');
    depot.behaviour.delete('/files/crash.bin');

    d = await startNodee(opts);
    const s = await waitFor(async () => {
      const x = await svc();
      return x.state === 'running' ? x : null;
    }, 'running after the restart', 15000);
    assert.ok(s.pid > 0);
    assert.ok(fs.readFileSync(path.join(rundir(prefix, c), 'crash.bin')).equals(blob));
    const j = (await d.req({ path: `/api/v1/jobs/${mid.job}` })).json;
    assert.equal(j.state, 'succeeded', j.error);
    assert.equal(j.runs, 2, 'the interrupted job ran again');
    assert.equal(fs.readdirSync(path.join(prefix, 'tmp')).length, 0, 'tmp/ is empty');
  } finally {
    await ownDaemonEnd(d, c);
  }
});

test('a retry takes the secret the spec has now: a failed upload fixed by a PUT', async () => {
  needS3();
  const c = '1.snapfix.tst.cell';
  const spec = (secret) => ({ artifact: GAV, command: 'bin/stateful', credentials: { s3: s3creds(secret) },
    snapshot: { paths: ['data/'], to: 's3://snap/${coordinate}/fixed.zip', on: ['drain'], credentials: 's3' } });
  await putReady(c, spec(WRONG_SK));
  assert.equal((await post(c, 'drain')).status, 200);
  const f = await waitNewJob('service.snapshot', c, 0);
  assert.equal(f.state, 'failed');
  assert.match(f.error || '', /SignatureDoesNotMatch/);
  const kept = fs.readFileSync(path.join(D.prefix, `state/snapshots/job-${f.id}.zip`));
  await putReady(c, spec(SK));
  const rr = await D.req({ method: 'POST', path: `/api/v1/jobs/${f.id}/retry` });
  assert.equal(rr.status, 202, rr.text);
  const j = await waitJob(rr.json.id);
  assert.equal(j.state, 'succeeded', j.error);
  const obj = await s3Get('snap', `${c}/fixed.zip`);
  assert.ok(obj && obj.equals(kept), 'the kept archive, signed with the new secret');
  await removeService(c);
});

test('DELETE during a prepare job, then PUT of the same coordinate: the new service waits for the old job and starts', async () => {
  const c = '1.delput.tst.cell';
  const blob = crypto.randomBytes(120 * 1024);
  depot.files.set('/files/delput.bin', blob);
  depot.behaviour.set('/files/delput.bin', 'slow');
  const spec = { artifact: GAV, prepare: [{ fetch: `${depot.url}/files/delput.bin`, to: 'x.bin' }] };
  const r = await put(c, spec);
  assert.ok([200, 201].includes(r.status), r.text);
  const mid = await waitSvc(c, (x) => x.state === 'preparing' && x.job, 'preparing', 5000);
  assert.equal((await D.req({ method: 'DELETE', path: `/api/v1/services/${c}?purge=true` })).status, 200);
  depot.behaviour.delete('/files/delput.bin');
  const r2 = await put(c, spec);
  assert.ok([200, 201].includes(r2.status), r2.text);
  const s = await waitSvc(c, isRunning, 'running with the new spec', 20000);
  assert.ok(s.pid > 0);
  const old = await waitJob(mid.job);
  assert.equal(old.state, 'cancelled', 'the deleted service\'s job was cancelled');
  assert.ok(fs.readFileSync(path.join(rundir(D.prefix, c), 'x.bin')).equals(blob));
  await removeService(c);
});

test('a stop under way when nodee restarts: the next nodee finishes it and takes the snapshot it asked for', async () => {
  needS3();
  const c = '1.stubborn.tst.cell';
  const { prefix, opts } = await ownDaemonPrefix();
  let d = await startNodee(opts);
  const svc = async () => (await d.req({ path: `/api/v1/services/${c}` })).json;
  try {
    await installOn(d);
    let r = await d.req({ method: 'PUT', path: `/api/v1/services/${c}`, body: { artifact: GAV,
      command: 'bin/stubborn', stop: { signal: 'TERM', timeout_s: 3 }, credentials: { s3: s3creds() },
      snapshot: { paths: ['data/'], to: 's3://snap/${coordinate}/stubborn.zip', on: ['stop'], credentials: 's3' } } });
    assert.ok([200, 201].includes(r.status), r.text);
    await waitFor(async () => (await svc()).state === 'running', 'running', 15000);
    await waitFor(() => fs.existsSync(path.join(rundir(prefix, c), 'ready')), 'ready', 10000);
    assert.equal((await d.req({ method: 'POST', path: `/api/v1/services/${c}/stop` })).status, 200);
    assert.equal((await svc()).state, 'stopping');
    assert.deepEqual(await d.stop('SIGTERM'), { code: 0, signal: null }, d.stderr);

    d = await startNodee(opts);
    await waitFor(async () => (await svc()).state === 'stopped', 'stopped by the next nodee', 15000);
    const j = await waitFor(async () => {
      const js = (await d.req({ path: '/api/v1/jobs?kind=service.snapshot' })).json.jobs;
      return js.length && ['succeeded', 'failed'].includes(js[0].state) ? js[0] : null;
    }, 'the snapshot job', 15000);
    assert.equal(j.state, 'succeeded', j.error);
    assert.equal(j.params.why, 'stop');
    const obj = await s3Get('snap', `${c}/stubborn.zip`);
    assert.ok(obj && readZip(obj).has('data/state'), 'the snapshot was uploaded');
  } finally {
    await ownDaemonEnd(d, c);
  }
});

test('DELETE ?purge=true ends what the service left running (its own session) before the tree goes', async () => {
  const c = '1.leaver.tst.cell';
  await putPlain(c, { artifact: GAV, command: 'bin/leaver' });
  const rd = rundir(D.prefix, c);
  await waitFile(path.join(rd, 'ready'));
  const pidText = await waitFile(path.join(rd, 'leaver.pid'), /^\d+/);
  const pid = Number(String(pidText).trim());
  assert.ok(pid > 0);
  assert.doesNotThrow(() => process.kill(pid, 0), 'the left-behind process runs');
  const r = await D.req({ method: 'DELETE', path: `/api/v1/services/${c}?purge=true` });
  assert.equal(r.status, 200, r.text);
  await waitFor(async () => (await get(c)).status === 404, 'deleted', 15000);
  await waitFor(() => {
    try { process.kill(pid, 0); return false; } catch (_) { return true; }
  }, 'the left-behind process is gone', 5000);
  assert.equal(fs.existsSync(rd), false, 'the runtime directory is gone');
});
