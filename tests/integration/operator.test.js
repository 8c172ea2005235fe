// Operator features (issue 12): a zip pushed to the daemon (POST
// /api/v1/artifacts/{g}/{a}/{v}, streamed to PREFIX/tmp, never held in
// memory) and `nodee artifact install FILE.zip --as G:A:V`; `nodee service
// logs -f` and `nodee events -f` following the live streams; GET /metrics
// in the Prometheus text format, checked line by line; and who asked for
// what in the audit trail (detail.by).
//
// Every daemon runs on its own temporary prefix and free port (lib.js);
// every client process a test spawns is killed by pid at the end; every
// service is deleted through the API, and what is left killed by pid.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const zlib = require('node:zlib');
const { spawn } = require('node:child_process');
const parsePrometheus = require('parse-prometheus-text-format');
const {
  BIN, startNodee, stopClean, sanitizerReport, cleanEnv, tmpdir, freePort, sleep, waitFor, request,
  waitJob, waitSvc, isRunning, svcPut, killLeftovers,
} = require('./lib');
const { makeZip } = require('./zipper');
const { Depot, sha256 } = require('./depot');

// ------------------------------------------------------------------ helpers

const prefixes = new Set();
const clients = new Set(); // CLI processes spawned here
process.on('exit', () => {
  for (const p of clients) {
    try { process.kill(p.pid, 'SIGKILL'); } catch (_) { /* gone */ }
  }
  for (const p of prefixes) killLeftovers(p);
});

// Where the tests keep their zips.
const WORK = tmpdir('operator');
process.on('exit', () => fs.rmSync(WORK, { recursive: true, force: true }));

// An artifact zip with a start script, a file whose mode nodee changes,
// and random bytes, so that two calls never make the same zip.
function appZip(tag = 'x', extra = []) {
  return makeZip([
    { name: 'bin/', dir: true },
    { name: 'bin/start', data: `#!/bin/sh\necho ${tag}\n`, mode: 0o755 },
    { name: 'conf/app.properties', data: `name=${tag}\n`, mode: 0o666 },
    { name: 'lib/blob.bin', data: crypto.randomBytes(16 * 1024), deflate: true },
    ...extra,
  ]);
}

// A service artifact: bin/start prints "tick N" every 200 ms.
const TICKER = `#!/bin/sh
i=0
while :; do echo "tick $i"; i=$((i+1)); sleep 0.2; done
`;
function tickerZip() {
  return makeZip([{ name: 'bin/', dir: true }, { name: 'bin/start', data: TICKER, mode: 0o755 },
    { name: 'salt', data: crypto.randomBytes(8).toString('hex') }]);
}

// A zip of exactly `size` bytes: one stored entry padded to fit.
function zipOfSize(size) {
  const overhead = makeZip([{ name: 'pad.bin', data: '' }]).length;
  const z = makeZip([{ name: 'pad.bin', data: crypto.randomBytes(size - overhead) }]);
  assert.equal(z.length, size);
  return z;
}

// A stored zip of one entry of `size` random bytes, written to file in
// pieces (the CRC is computed on the way); resolves with its sha256.
function writeBigZip(file, size) {
  const name = Buffer.from('blob.bin');
  const pieces = [];
  let crc = 0;
  const hash = crypto.createHash('sha256');
  for (let off = 0; off < size; off += 1 << 20) {
    const c = crypto.randomBytes(Math.min(1 << 20, size - off));
    crc = zlib.crc32(c, crc);
    pieces.push(c);
  }
  const lh = Buffer.alloc(30);
  lh.writeUInt32LE(0x04034b50, 0);
  lh.writeUInt16LE(20, 4);
  lh.writeUInt16LE(0x0800, 6);
  lh.writeUInt16LE(0, 8);
  lh.writeUInt16LE(0x21, 12);
  lh.writeUInt32LE(crc >>> 0, 14);
  lh.writeUInt32LE(size, 18);
  lh.writeUInt32LE(size, 22);
  lh.writeUInt16LE(name.length, 26);
  const ch = Buffer.alloc(46);
  ch.writeUInt32LE(0x02014b50, 0);
  ch.writeUInt16LE((3 << 8) | 20, 4);
  ch.writeUInt16LE(20, 6);
  ch.writeUInt16LE(0x0800, 8);
  ch.writeUInt16LE(0x21, 14);
  ch.writeUInt32LE(crc >>> 0, 16);
  ch.writeUInt32LE(size, 20);
  ch.writeUInt32LE(size, 24);
  ch.writeUInt16LE(name.length, 28);
  ch.writeUInt32LE(((0o100644 << 16) >>> 0), 38);
  ch.writeUInt32LE(0, 42);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(1, 8);
  eocd.writeUInt16LE(1, 10);
  eocd.writeUInt32LE(ch.length + name.length, 12);
  eocd.writeUInt32LE(30 + name.length + size, 16);
  const fd = fs.openSync(file, 'w');
  for (const b of [lh, name, ...pieces, ch, name, eocd]) {
    fs.writeSync(fd, b);
    hash.update(b);
  }
  fs.closeSync(fd);
  return hash.digest('hex');
}

function gavPath(gav) {
  return `/api/v1/artifacts/${gav.split(':').join('/')}`;
}

// POST the zip to the artifact's path; opts: token (default the daemon's,
// null for none), headers, query.
function upload(d, gav, body, opts = {}) {
  const headers = { 'Content-Type': 'application/zip', 'Content-Length': body.length,
    ...(opts.headers || {}) };
  return request(d.port, { method: 'POST', path: `${gavPath(gav)}${opts.query || ''}`, body, headers,
    token: opts.token === undefined ? d.token : opts.token });
}

// Uploads and waits for the job; resolves with the ended job.
async function uploadInstall(d, gav, body, opts = {}) {
  const r = await upload(d, gav, body, opts);
  assert.equal(r.status, 202, r.text);
  return waitJob(d, r.json.id);
}

// A POST whose body goes out in `pieces` writes, `gapMs` apart (or is
// cut off after `abortAfter` pieces); resolves with the answer.
function slowPost(d, p, body, { headers = {}, pieces = 20, gapMs = 40, abortAfter } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: d.port, method: 'POST', path: p, agent: false,
      headers: { 'Content-Type': 'application/zip', 'Content-Length': body.length, ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('error', (e) => (abortAfter !== undefined ? resolve({ aborted: true, error: e }) : reject(e)));
    const size = Math.ceil(body.length / pieces);
    let i = 0;
    const next = () => {
      if (abortAfter !== undefined && i === abortAfter) {
        req.destroy();
        resolve({ aborted: true });
        return;
      }
      if (i * size >= body.length) {
        req.end();
        return;
      }
      req.write(body.subarray(i * size, (i + 1) * size));
      i++;
      setTimeout(next, gapMs);
    };
    next();
  });
}

// Every name that appears in PREFIX/tmp while it is watched (inotify and
// polling both, so that a file made and removed at once is seen too).
function watchTmp(d) {
  const dir = path.join(d.prefix, 'tmp');
  const seen = new Set();
  const w = fs.watch(dir, (ev, name) => { if (name) seen.add(name); });
  const iv = setInterval(() => { for (const f of fs.readdirSync(dir)) seen.add(f); }, 5);
  return {
    seen,
    now: () => fs.readdirSync(dir),
    stop: () => { w.close(); clearInterval(iv); return [...seen]; },
  };
}

function tmpOf(d) {
  return fs.readdirSync(path.join(d.prefix, 'tmp'));
}

// PREFIX/tmp empties (the request's end runs just after its answer).
async function tmpEmpty(d, what) {
  try {
    await waitFor(() => tmpOf(d).length === 0, what, 5000);
  } catch (e) {
    e.message += `: PREFIX/tmp still has ${JSON.stringify(tmpOf(d))}`;
    throw e;
  }
}

async function jobCount(d) {
  return (await d.req({ path: '/api/v1/jobs?limit=500' })).json.jobs.length;
}

async function events(d, query) {
  const r = await d.req({ path: `/api/v1/events?limit=1000&${query}` });
  assert.equal(r.status, 200, r.text);
  return r.json.events;
}

function vmHWM(pid) {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

// The client as a process: resolves with code, stdout, stderr; fails
// on a sanitizer's report.
async function cli(d, args, opts = {}) {
  const r = await runCli(d, args, opts);
  assert.equal(sanitizerReport(r.stderr), null, `nodee ${args.join(' ')}: ${r.stderr}`);
  return r;
}

function runCli(d, args, { env = {}, cwd = WORK, timeoutMs = 60000 } = {}) {
  return new Promise((resolve) => {
    const p = spawn(BIN, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...cleanEnv(), ...(d ? { NODEE_URL: `http://127.0.0.1:${d.port}`, NODEE_PREFIX: d.prefix } : {}),
        ...env } });
    clients.add(p);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (x) => { stdout += x; });
    p.stderr.on('data', (x) => { stderr += x; });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      clients.delete(p);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// A client that keeps running (a follow): its output so far, read as it
// arrives, and its end.
function follow(d, args, env = {}) {
  const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...cleanEnv(), NODEE_URL: `http://127.0.0.1:${d.port}`, NODEE_PREFIX: d.prefix, ...env } });
  clients.add(p);
  const f = { proc: p, pid: p.pid, stdout: '', stderr: '', exited: null, chunks: [] };
  p.stdout.on('data', (x) => { f.stdout += x; f.chunks.push({ at: Date.now(), text: x.toString() }); });
  p.stderr.on('data', (x) => { f.stderr += x; });
  f.done = new Promise((resolve) => p.on('exit', (code, signal) => {
    clients.delete(p);
    f.exited = { code, signal };
    resolve(f.exited);
  }));
  f.lines = () => f.stdout.split('\n').filter((l) => l !== '');
  f.wait = async (pred, what, timeoutMs = 15000) => {
    try {
      return await waitFor(() => f.lines().find(pred), what, timeoutMs);
    } catch (e) {
      e.message += `\nexited: ${JSON.stringify(f.exited)}\nstdout: ${f.stdout.slice(-2000)}\nstderr: ${f.stderr}`;
      throw e;
    }
  };
  // No sanitizer report from the client (the sanitized build's CLI).
  f.clean = () => assert.equal(sanitizerReport(f.stderr), null, `nodee ${args.join(' ')}: ${f.stderr}`);
  f.kill = async () => {
    if (!f.exited) p.kill('SIGKILL');
    return f.done;
  };
  return f;
}

// Runs a command line in a pseudo-terminal (util-linux script).
function underTerminal(cmd, env) {
  return new Promise((resolve) => {
    const p = spawn('script', ['-qefc', cmd, '/dev/null'], { cwd: WORK, env, stdio: ['ignore', 'pipe', 'pipe'] });
    clients.add(p);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (x) => { stdout += x; });
    p.stderr.on('data', (x) => { stderr += x; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 60000);
    p.on('exit', (status) => {
      clearTimeout(timer);
      clients.delete(p);
      resolve({ status, stdout, stderr });
    });
  });
}

// The value of the console's session cookie after POST /login.
async function login(d) {
  const r = await request(d.port, { method: 'POST', path: '/login', body: { token: d.token } });
  assert.equal(r.status, 204, r.text);
  const name = `nodee_session_${d.port}`;
  const c = [].concat(r.headers['set-cookie'] || []).find((x) => x.startsWith(`${name}=`));
  assert.ok(c, JSON.stringify(r.headers['set-cookie']));
  return `${name}=${c.slice(name.length + 1).split(';')[0]}`;
}

// Deletes every service of d (purging), then kills what is left by pid.
async function removeServices(d) {
  const list = (await d.req({ path: '/api/v1/services' })).json.services;
  for (const s of list) {
    await d.req({ method: 'DELETE', path: `/api/v1/services/${s.coordinate}?purge=true` });
  }
  await waitFor(async () => (await d.req({ path: '/api/v1/services' })).json.services.length === 0,
    'every service deleted', 30000).catch(() => {});
  killLeftovers(d.prefix);
}

// ------------------------------------------- the Prometheus text format

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const VALUE = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$/;
const TYPES = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];
// A value of the format as a number ('+Inf' is not one for Number()).
const num = (v) => ({ '+Inf': Infinity, '-Inf': -Infinity })[v] ?? Number(v);

// The labels of a sample, `a="x",b="y"`, strictly: names, escapes (\\,
// \" and \n only), no repeated name, no trailing comma.
function parseLabels(s, line) {
  const out = {};
  let i = 0;
  while (i < s.length) {
    const m = /^([^=]*)="/.exec(s.slice(i));
    assert.ok(m, `label syntax at ${i}: ${line}`);
    assert.match(m[1], LABEL, `label name: ${line}`);
    assert.ok(!(m[1] in out), `label ${m[1]} twice: ${line}`);
    i += m[0].length;
    let v = '';
    for (;;) {
      assert.ok(i < s.length, `unterminated label value: ${line}`);
      const ch = s[i];
      if (ch === '"') { i++; break; }
      if (ch === '\\') {
        const e = s[i + 1];
        assert.ok(['\\', '"', 'n'].includes(e), `bad escape \\${e}: ${line}`);
        v += e === 'n' ? '\n' : e;
        i += 2;
        continue;
      }
      assert.notEqual(ch, '\n', line);
      v += ch;
      i++;
    }
    out[m[1]] = v;
    if (i < s.length) {
      assert.equal(s[i], ',', `',' between labels: ${line}`);
      i++;
      assert.ok(i < s.length, `trailing comma: ${line}`);
    }
  }
  return out;
}

// Checks an exposition line by line and returns its families:
// name -> {type, help, samples: [{name, labels, value}]}.
function checkExposition(text) {
  assert.ok(text.endsWith('\n'), 'the text ends with a newline');
  const fams = new Map();
  const series = new Set();
  let current = null; // the family whose samples are being read
  const closed = new Set(); // families whose samples ended
  const familyOf = (name) => {
    if (fams.has(name)) return name;
    const base = name.replace(/_(bucket|sum|count)$/, '');
    if (base !== name && fams.has(base) && fams.get(base).type === 'histogram') return base;
    return name;
  };
  for (const line of text.slice(0, -1).split('\n')) {
    assert.notEqual(line, '', 'no blank lines');
    let m;
    if ((m = /^# HELP (\S+) (.*)$/.exec(line))) {
      assert.match(m[1], NAME, line);
      assert.ok(!fams.has(m[1]), `one HELP per family and before its samples: ${line}`);
      assert.ok(!/\\(?![\\n])/.test(m[2]), `HELP escapes only \\\\ and \\n: ${line}`);
      fams.set(m[1], { help: m[2], type: null, samples: [] });
      if (current) closed.add(current);
      current = m[1];
      continue;
    }
    if ((m = /^# TYPE (\S+) (\S+)$/.exec(line))) {
      assert.ok(fams.has(m[1]), `HELP before TYPE: ${line}`);
      assert.equal(current, m[1], `TYPE right after its HELP: ${line}`);
      const f = fams.get(m[1]);
      assert.equal(f.type, null, `one TYPE per family: ${line}`);
      assert.equal(f.samples.length, 0, `TYPE before the samples: ${line}`);
      assert.ok(TYPES.includes(m[2]), line);
      f.type = m[2];
      continue;
    }
    assert.ok(!line.startsWith('#'), `a comment nodee does not write: ${line}`);
    m = /^([^{\s]+)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    assert.ok(m, `sample grammar: ${JSON.stringify(line)}`);
    assert.match(m[1], NAME, line);
    assert.match(m[3], VALUE, line);
    const labels = m[2] === undefined ? {} : parseLabels(m[2], line);
    const fam = familyOf(m[1]);
    assert.ok(fams.has(fam), `HELP and TYPE before the samples of ${m[1]}`);
    const f = fams.get(fam);
    assert.ok(f.type, `TYPE before the samples of ${m[1]}`);
    assert.equal(current, fam, `the samples of ${fam} together, after its HELP and TYPE: ${line}`);
    assert.ok(!closed.has(fam), line);
    if (f.type !== 'histogram') assert.equal(m[1], fam, line);
    const key = `${m[1]}{${Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(',')}}`;
    assert.ok(!series.has(key), `series twice: ${key}`);
    series.add(key);
    f.samples.push({ name: m[1], labels, value: num(m[3]) });
  }
  for (const [name, f] of fams) {
    assert.ok(name.startsWith('nodee_'), `every name starts with nodee_: ${name}`);
    assert.ok(f.help.length > 0, `${name} has a HELP text`);
    if (f.type === 'counter') {
      assert.match(name, /_total$/, `a counter's name ends in _total: ${name}`);
      f.samples.forEach((s) => assert.ok(s.value >= 0 && Number.isInteger(s.value), `${name} ${s.value}`));
    }
    if (f.type === 'histogram') checkHistogram(name, f);
  }
  return fams;
}

// Per label set: buckets with ascending le, cumulative, +Inf last and
// equal to _count; a _sum; nothing else.
function checkHistogram(name, f) {
  const groups = new Map();
  const keyOf = (labels) => JSON.stringify(Object.keys(labels).filter((k) => k !== 'le').sort()
    .map((k) => [k, labels[k]]));
  for (const s of f.samples) {
    const k = keyOf(s.labels);
    if (!groups.has(k)) groups.set(k, { buckets: [], sum: null, count: null });
    const g = groups.get(k);
    if (s.name === `${name}_bucket`) {
      assert.ok('le' in s.labels, `${name}_bucket has le`);
      g.buckets.push([s.labels.le, s.value]);
    } else if (s.name === `${name}_sum`) {
      assert.ok(!('le' in s.labels));
      g.sum = s.value;
    } else if (s.name === `${name}_count`) {
      assert.ok(!('le' in s.labels));
      g.count = s.value;
    } else assert.fail(`${s.name} in histogram ${name}`);
  }
  assert.ok(groups.size > 0, `${name} has samples`);
  for (const [k, g] of groups) {
    assert.ok(g.buckets.length >= 2, `${name}${k}: buckets`);
    assert.equal(g.buckets[g.buckets.length - 1][0], '+Inf', `${name}${k}: +Inf last`);
    for (let i = 0; i < g.buckets.length; i++) {
      const [le, v] = g.buckets[i];
      assert.match(le, VALUE, `${name}${k}: le ${le}`);
      assert.ok(Number.isInteger(v) && v >= 0, `${name}${k}: bucket ${v}`);
      if (i > 0) {
        assert.ok(num(le) > num(g.buckets[i - 1][0]), `${name}${k}: le ascending (${g.buckets[i - 1][0]} then ${le})`);
        assert.ok(v >= g.buckets[i - 1][1], `${name}${k}: cumulative buckets (${g.buckets[i - 1][1]} then ${v})`);
      }
    }
    assert.notEqual(g.count, null, `${name}${k}: _count`);
    assert.notEqual(g.sum, null, `${name}${k}: _sum`);
    assert.equal(g.buckets[g.buckets.length - 1][1], g.count, `${name}${k}: +Inf equals _count`);
    assert.ok(g.sum >= 0);
  }
}

// One scrape: the checked families, also read by the npm parser, which
// must agree on every family and its type.
async function scrape(d) {
  const r = await d.req({ path: '/metrics' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  const fams = checkExposition(r.text);
  const parsed = parsePrometheus(r.text);
  assert.deepEqual(parsed.map((p) => p.name).sort(), [...fams.keys()].sort());
  for (const p of parsed) {
    const f = fams.get(p.name);
    assert.equal(p.type, f.type.toUpperCase(), p.name);
    if (p.type !== 'HISTOGRAM') assert.equal(p.metrics.length, f.samples.length, p.name);
  }
  return { fams, parsed, text: r.text };
}

// The value of one series (labels matched exactly), or 0 when absent.
function metric(s, name, labels = {}) {
  const base = name.replace(/_(bucket|sum|count)$/, '');
  const f = s.fams.get(name) || s.fams.get(base);
  assert.ok(f, `family ${name}`);
  const x = f.samples.find((m) => m.name === name &&
    JSON.stringify(Object.entries(m.labels).sort()) === JSON.stringify(Object.entries(labels).sort()));
  return x ? x.value : 0;
}

// ------------------------------------------------------------------ daemon

let D; // the shared daemon: archive limits as in artifacts.test.js
let depot;

test.before(async () => {
  depot = await new Depot().start();
  const prefix = tmpdir('operator');
  fs.chmodSync(prefix, 0o755); // services run as their own uids
  prefixes.add(prefix);
  D = await startNodee({ prefix, args: ['--depot', depot.url],
    env: { NODEE_ARCHIVE_MAX_ENTRIES: '50', NODEE_ARCHIVE_MAX_BYTES: '1M' } });
});

test.after(async () => {
  for (const p of clients) {
    try { process.kill(p.pid, 'SIGKILL'); } catch (_) { /* gone */ }
  }
  if (D) {
    await removeServices(D);
    await stopClean(D);
  }
  if (depot) await depot.stop();
});

// ------------------------------------------------------------------ upload

test('upload: a zip becomes a job; url "upload", its sha256, verified none or sha256-given; again 200, another zip 409', { timeout: 60000 }, async () => {
  const zip = appZip('up-a');
  const gav = 'com.up:good:1';
  const r = await upload(D, gav, zip);
  assert.equal(r.status, 202, r.text);
  assert.equal(r.json.kind, 'artifact.install');
  assert.equal(r.json.subject, gav);
  assert.equal(r.headers.location, `/api/v1/jobs/${r.json.id}`);
  assert.equal(r.json.params.url, 'upload');
  assert.equal(r.json.params.sha256, sha256(zip));
  const j = await waitJob(D, r.json.id);
  assert.equal(j.state, 'succeeded', j.error);

  const a = (await D.req({ path: gavPath(gav) })).json;
  assert.equal(a.url, 'upload');
  assert.equal(a.sha256, sha256(zip));
  assert.equal(a.verified, 'none');
  assert.equal(a.file_count, 3);
  assert.equal(a.job, r.json.id);
  const dir = path.join(D.prefix, 'software/com.up/good/1');
  assert.equal(fs.readFileSync(path.join(dir, 'bin/start'), 'utf8'), '#!/bin/sh\necho up-a\n');
  assert.equal(fs.statSync(path.join(dir, 'bin/start')).mode & 0o7777, 0o555);
  assert.equal(fs.statSync(path.join(dir, 'conf/app.properties')).mode & 0o7777, 0o444);

  // The same zip again: the artifact, 200; another zip: 409, nothing changes.
  const again = await upload(D, gav, zip);
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.sha256, sha256(zip));
  const other = await upload(D, gav, appZip('up-b'));
  assert.equal(other.status, 409, other.text);
  assert.match(other.json.detail, new RegExp(`installed with sha256 ${sha256(zip)}`));
  assert.equal((await D.req({ path: gavPath(gav) })).json.sha256, sha256(zip));

  // With the checksum: in the header (any case), or in the query.
  const z2 = appZip('up-given');
  let g = await uploadInstall(D, 'com.up:given:1', z2, { headers: { 'X-Checksum-Sha256': sha256(z2).toUpperCase() } });
  assert.equal(g.state, 'succeeded', g.error);
  assert.equal((await D.req({ path: gavPath('com.up:given:1') })).json.verified, 'sha256-given');
  const z3 = appZip('up-query');
  g = await uploadInstall(D, 'com.up:query:1', z3, { query: `?sha256=${sha256(z3)}` });
  assert.equal(g.state, 'succeeded', g.error);
  const q3 = (await D.req({ path: gavPath('com.up:query:1') })).json;
  assert.equal(q3.verified, 'sha256-given');
  assert.equal(q3.sha256, sha256(z3));

  const ev = (await events(D, `subject=${gav}`)).map((e) => e.kind).reverse();
  assert.deepEqual(ev, ['artifact.install.requested', 'artifact.install.succeeded']);
  await tmpEmpty(D, 'after the uploads');
});

test('upload: a checksum that does not match is a 400 naming both sums; nothing is installed', { timeout: 60000 }, async () => {
  const zip = appZip('mismatch');
  const jobs = await jobCount(D);
  const want = 'ab'.repeat(32);
  for (const opts of [{ headers: { 'X-Checksum-Sha256': want } }, { query: `?sha256=${want}` }]) {
    const r = await upload(D, 'com.up:mismatch:1', zip, opts);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.match(r.json.detail, /checksum mismatch/);
    assert.ok(r.json.detail.includes(want), r.json.detail);
    assert.ok(r.json.detail.includes(sha256(zip)), r.json.detail);
    assert.ok(r.json.detail.includes(String(zip.length)), r.json.detail);
  }
  const bad = await upload(D, 'com.up:mismatch:1', zip, { headers: { 'X-Checksum-Sha256': 'abc' } });
  assert.equal(bad.status, 400, bad.text);
  assert.match(bad.json.detail, /64 hex digits/);
  assert.equal((await D.req({ path: gavPath('com.up:mismatch:1') })).status, 404);
  assert.equal(await jobCount(D), jobs, 'no job');
  assert.equal(fs.existsSync(path.join(D.prefix, 'software/com.up/mismatch')), false);
  await tmpEmpty(D, 'after a mismatch');
});

test('upload: hostile zips fail the job with the same error as from a depot, and leave nothing behind', { timeout: 60000 }, async () => {
  const tag = crypto.randomBytes(4).toString('hex');
  const outside = `/tmp/nodee-evil-${tag}`;
  // The cases of artifacts.test.js, against the same limits (50 entries, 1M).
  const cases = [
    ['dotdot', [{ name: '../evil', data: 'x' }], /\.\./],
    ['dotdot-deep', [{ name: 'a/../../evil', data: 'x' }], /\.\./],
    ['backslash', [{ name: '..\\evil', data: 'x' }], /\\|backslash/],
    ['absolute', [{ name: outside, data: 'x' }], /absolute/],
    ['nul', [{ name: Buffer.from('ok\0../evil'), data: 'x' }], /NUL|control|length/i],
    ['control', [{ name: 'bad\u0001name', data: 'x' }], /control/],
    ['link-abs', [{ name: 'link', symlink: '/etc' }, { name: 'after', data: 'x' }], /link|symlink/i],
    ['link-out', [{ name: 'a/', dir: true }, { name: 'a/link', symlink: '../../evil' }], /link|symlink/i],
    ['duplicate', [{ name: 'same.txt', data: 'one' }, { name: 'same.txt', data: 'two' }], /twice|duplicate/i],
    ['overlap', [{ name: 'one.bin', data: 'A'.repeat(1000), deflate: true },
      { name: 'two.bin', data: 'A'.repeat(1000), deflate: true }], /overlap/i, { overlap: [[0, 1]] }],
    ['too-many', Array.from({ length: 60 }, (_, i) => ({ name: `f${i}`, data: 'x' })), /entries/i],
    ['too-big', [{ name: 'zeros.bin', data: Buffer.alloc(3 * 1024 * 1024), deflate: true }], /limit|bytes/i],
    ['size-lie', [{ name: 'zeros.bin', data: Buffer.alloc(3 * 1024 * 1024), deflate: true, size: 100 }], /size|length|limit|bytes|CRC/i],
    ['crc', [{ name: 'data.bin', data: 'hello world', crc: 12345 }], /CRC|checksum/i],
    ['short', [{ name: 'data.bin', data: 'hello world', size: 5 }], /size|length|CRC|declares/i],
    ['not-a-zip', null, /zip|archive/i],
  ];
  const norm = (s) => s.replace(/job-\d+/g, 'job-N');
  for (const [name, entries, re, opts] of cases) {
    const zip = entries ? makeZip(entries, opts) : crypto.randomBytes(4096);
    const up = await uploadInstall(D, `com.uphostile:${name}:1`, zip);
    assert.equal(up.state, 'failed', `${name} must fail`);
    assert.match(up.error, re, `${name}: ${up.error}`);
    depot.put('com.dephostile', name, '1', zip);
    const r = await D.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: `com.dephostile:${name}:1` } });
    assert.equal(r.status, 202, r.text);
    const dep = await waitJob(D, r.json.id);
    assert.equal(dep.state, 'failed', `${name} from the depot`);
    assert.equal(norm(up.error), norm(dep.error), `${name}: the upload fails as the depot install does`);
    assert.equal((await D.req({ path: gavPath(`com.uphostile:${name}:1`) })).status, 404);
  }
  assert.equal(fs.existsSync(path.join(D.prefix, 'software/com.uphostile')), false);
  assert.equal(fs.existsSync(outside), false);
  for (const p of ['evil', 'tmp/evil', 'software/evil', 'state/evil', 'runtime/evil']) {
    assert.equal(fs.existsSync(path.join(D.prefix, p)), false, p);
  }
  const failed = await events(D, 'kind=artifact.install.failed');
  assert.equal(failed.filter((e) => e.subject.startsWith('com.uphostile:')).length, cases.length);
  await tmpEmpty(D, 'after the hostile uploads');
});

test('upload: over download_max is a 413 naming it (exactly download_max is fine); tmp stays empty', { timeout: 60000 }, async () => {
  const d = await startNodee({ env: { NODEE_DOWNLOAD_MAX: '64K' } });
  try {
    const big = appZip('big', [{ name: 'lib/pad.bin', data: crypto.randomBytes(200 * 1024) }]);
    const r = await upload(d, 'com.up:big:1', big);
    assert.equal(r.status, 413, r.text);
    assert.match(r.json.detail, /download_max/);
    assert.match(r.json.detail, /65536/);
    await tmpEmpty(d, 'after a 413');
    assert.equal(await jobCount(d), 0);

    // The limit itself is allowed; one byte more is not.
    const over = await upload(d, 'com.up:edge:1', zipOfSize(64 * 1024 + 1));
    assert.equal(over.status, 413, over.text);
    const j = await uploadInstall(d, 'com.up:edge:1', zipOfSize(64 * 1024));
    assert.equal(j.state, 'succeeded', j.error);
    await tmpEmpty(d, 'after the uploads');
  } finally {
    await stopClean(d);
  }
});

test('upload: without credentials nothing reaches PREFIX/tmp; with them tmp/upload-* grows while the body arrives and goes after', { timeout: 60000 }, async () => {
  const zip = appZip('slow', [{ name: 'lib/pad.bin', data: crypto.randomBytes(256 * 1024) }]);
  const p = gavPath('com.up:slow:1');
  for (const [what, headers, status] of [
    ['no token', {}, 401],
    ['a wrong token', { Authorization: `Bearer ${'0'.repeat(64)}` }, 401],
    ['a wrong cookie', { Cookie: `nodee_session_${D.port}=${'0'.repeat(64)}` }, 401],
    ['the token from a foreign Origin', { Authorization: `Bearer ${D.token}`, Origin: 'http://evil.example' }, 403],
    ['the token with a foreign Host', { Authorization: `Bearer ${D.token}`, Host: 'evil.example' }, 403],
  ]) {
    const w = watchTmp(D);
    const r = await slowPost(D, p, zip, { headers, pieces: 16, gapMs: 40 });
    await sleep(50);
    const seen = w.stop();
    assert.equal(r.status, status, `${what}: ${r.text}`);
    if (status === 401) assert.match(r.headers['www-authenticate'], /^Bearer/);
    assert.deepEqual(seen, [], `${what}: no file was ever made in PREFIX/tmp`);
  }
  assert.equal((await D.req({ path: p })).status, 404);

  // With the token: the body is on disk while it arrives.
  const w = watchTmp(D);
  const sizes = [];
  const pending = slowPost(D, p, zip, { headers: { Authorization: `Bearer ${D.token}` }, pieces: 16, gapMs: 60 });
  const name = await waitFor(() => w.now().find((f) => /^upload-/.test(f)), 'tmp/upload-* during the upload', 5000);
  for (let i = 0; i < 5; i++) {
    try { sizes.push(fs.statSync(path.join(D.prefix, 'tmp', name)).size); } catch (_) { /* renamed */ }
    await sleep(60);
  }
  const r = await pending;
  assert.equal(r.status, 202, r.text);
  assert.ok(sizes.length >= 2 && sizes[0] < zip.length && sizes[sizes.length - 1] > sizes[0],
    `the file grows as the body arrives: ${sizes}`);
  const mode = fs.statSync(path.join(D.prefix, 'tmp')).mode & 0o777;
  assert.equal(mode, 0o700);
  assert.equal((await waitJob(D, r.json.id)).state, 'succeeded');
  w.stop();
  await tmpEmpty(D, 'after the slow upload');

  // A client that goes away halfway: its file goes too, and no job is made.
  const jobs = await jobCount(D);
  const w2 = watchTmp(D);
  const cut = await slowPost(D, gavPath('com.up:cut:1'), zip,
    { headers: { Authorization: `Bearer ${D.token}` }, pieces: 16, gapMs: 40, abortAfter: 6 });
  assert.ok(cut.aborted);
  const seen = w2.stop();
  assert.ok(seen.some((f) => /^upload-/.test(f)), `the body went to a file: ${seen}`);
  await tmpEmpty(D, 'after an upload cut off');
  assert.equal(await jobCount(D), jobs);
});

test('upload: wrong Content-Type 415, empty body 400, bad coordinate 400, other paths are no upload; tmp stays empty', { timeout: 60000 }, async () => {
  const zip = appZip('types');
  const jobs = await jobCount(D);
  for (const type of ['application/json', 'text/plain', 'application/zipx', 'application/x-www-form-urlencoded', undefined]) {
    const headers = { 'Content-Length': zip.length, Authorization: `Bearer ${D.token}` };
    if (type) headers['Content-Type'] = type;
    const r = await request(D.port, { method: 'POST', path: gavPath('com.up:types:1'), body: zip, headers });
    assert.equal(r.status, 415, `${type}: ${r.text}`);
    assert.match(r.json.detail, /application\/zip/);
  }
  const empty = await upload(D, 'com.up:types:1', Buffer.alloc(0));
  assert.equal(empty.status, 400, empty.text);
  assert.match(empty.json.detail, /empty/);
  for (const p of ['/api/v1/artifacts/com.up/a..b/1', '/api/v1/artifacts/.hidden/a/1',
    '/api/v1/artifacts/com.up/a%01b/1', `/api/v1/artifacts/com.up/${'a'.repeat(129)}/1`]) {
    const r = await request(D.port, { method: 'POST', path: p, body: zip, token: D.token,
      headers: { 'Content-Type': 'application/zip', 'Content-Length': zip.length } });
    assert.equal(r.status, 400, `${p}: ${r.text}`);
  }
  // Not the upload route (four segments): no such path, and no upload
  // file made for it; another method on the route: 405.
  let r = await request(D.port, { method: 'POST', path: '/api/v1/artifacts/com.up/a/1/x', body: Buffer.alloc(10),
    token: D.token, headers: { 'Content-Type': 'application/zip' } });
  assert.equal(r.status, 404, r.text);
  r = await request(D.port, { method: 'POST', path: '/api/v1/artifacts/com.up/a/1/x', token: D.token });
  assert.equal(r.status, 404, r.text);
  r = await request(D.port, { method: 'PUT', path: gavPath('com.up:types:1'), token: D.token });
  assert.equal(r.status, 405, r.text);
  assert.match(r.headers.allow, /POST/);
  assert.equal(await jobCount(D), jobs, 'no job');
  assert.equal((await D.req({ path: gavPath('com.up:types:1') })).status, 404);
  await tmpEmpty(D, 'after the refused uploads');
});

test('upload: a coordinate with an encoded slash is a 400 (a bad coordinate), as for GET, and the body is not buffered', { timeout: 60000 }, async () => {
  // The router decodes a segment after matching (..%2F..%2Fetc is one
  // segment, a bad artifactId); which requests stream their body must be
  // decided on the same path, or such a request is buffered by Ulfius
  // and refused as "not JSON".
  const zip = appZip('slash');
  for (const p of ['/api/v1/artifacts/com.up/..%2F..%2Fetc/1', '/api/v1/artifacts/com.up/a/1%2Fx']) {
    assert.equal((await D.req({ path: p })).status, 400, `GET ${p}`);
    const r = await request(D.port, { method: 'POST', path: p, body: zip, token: D.token,
      headers: { 'Content-Type': 'application/zip', 'Content-Length': zip.length } });
    assert.equal(r.status, 400, `POST ${p}: ${r.text}`);
    assert.doesNotMatch(r.json.detail, /JSON/, `POST ${p}: ${r.text}`);
  }
  await tmpEmpty(D, 'after the encoded slashes');
});

test('upload: the body is never held in memory (a 100 MB zip, VmHWM)', { timeout: 120000 }, async (t) => {
  const d = await startNodee({ env: { NODEE_ARCHIVE_MAX_BYTES: '1G' } });
  const file = path.join(WORK, 'big.zip');
  try {
    const size = 100 * 1024 * 1024;
    const sum = writeBigZip(file, size);
    const zsize = fs.statSync(file).size;
    // Warm up every path of an upload first.
    assert.equal((await uploadInstall(d, 'com.mem:warm:1', appZip('warm'))).state, 'succeeded');
    const before = vmHWM(d.pid);
    const r = await new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: d.port, method: 'POST', agent: false,
        path: gavPath('com.mem:big:1'), headers: { 'Content-Type': 'application/zip', 'Content-Length': zsize,
          Authorization: `Bearer ${d.token}`, 'X-Checksum-Sha256': sum } }, (res) => {
        let text = '';
        res.on('data', (x) => { text += x; });
        res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(text), text }));
      });
      req.on('error', reject);
      fs.createReadStream(file).pipe(req);
    });
    assert.equal(r.status, 202, r.text);
    const j = await waitJob(d, r.json.id, 90000);
    assert.equal(j.state, 'succeeded', j.error);
    const grew = vmHWM(d.pid) - before;
    t.diagnostic(`VmHWM grew by ${(grew / 1048576).toFixed(1)} MB (from ${(before / 1048576).toFixed(1)} MB)`);
    const a = (await d.req({ path: gavPath('com.mem:big:1') })).json;
    assert.equal(a.sha256, sum);
    assert.equal(a.verified, 'sha256-given');
    assert.equal(a.size_bytes, size);
    assert.equal(fs.statSync(path.join(d.prefix, 'software/com.mem/big/1/blob.bin')).size, size);
    assert.ok(grew < 40 * 1024 * 1024, `VmHWM grew by ${(grew / 1048576).toFixed(1)} MB for a ${zsize} byte body`);
    await tmpEmpty(d, 'after the big upload');
  } finally {
    fs.rmSync(file, { force: true });
    try {
      await stopClean(d);
    } finally {
      // Its prefix holds the 100 MB artifact: not left in /tmp.
      fs.rmSync(d.prefix, { recursive: true, force: true });
    }
  }
});

test('upload: a second upload of a queued zip, or one whose job is cancelled while queued, leaves no file in tmp', { timeout: 60000 }, async () => {
  // One worker, held by an install whose checksum sidecar never answers:
  // every upload job waits in the queue.
  const dep = await new Depot().start();
  const d = await startNodee({ args: ['--depot', dep.url], env: { NODEE_WORKERS: '1' } });
  const uploads = () => tmpOf(d).filter((f) => /^upload-/.test(f));
  try {
    const p = dep.put('com.block', 'busy', '1', appZip('busy'));
    dep.behaviour.set(`${p}.sha256`, 'hang');
    const busy = (await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: 'com.block:busy:1' } })).json;
    await waitFor(() => dep.count(`${p}.sha256`) > 0, 'the blocker running');

    // The same zip twice while its job is queued: one job, one file.
    const zip = appZip('twice');
    const a = await upload(d, 'com.twice:a:1', zip);
    assert.equal(a.status, 202, a.text);
    assert.equal(a.json.state, 'queued');
    const b = await upload(d, 'com.twice:a:1', zip);
    assert.equal(b.status, 202, b.text);
    assert.equal(b.json.id, a.json.id, 'the same job');
    await sleep(100); // the request's end, where an unkept file is removed
    const afterTwice = uploads();

    // Cancelled while queued: its upload is a temporary file of the job.
    const c = await upload(d, 'com.cancel:c:1', appZip('cancelled'));
    assert.equal(c.status, 202, c.text);
    assert.equal((await d.req({ method: 'DELETE', path: `/api/v1/jobs/${c.json.id}` })).status, 202);
    assert.equal((await waitJob(d, c.json.id)).state, 'cancelled');
    await sleep(100);
    const afterCancel = uploads();

    await d.req({ method: 'DELETE', path: `/api/v1/jobs/${busy.id}` });
    await waitJob(d, busy.id);
    assert.equal((await waitJob(d, a.json.id)).state, 'succeeded');
    const atEnd = tmpOf(d);
    // tmp/upload-* files: one for the queued job after the second upload
    // of its zip, still one after the other job was cancelled, none once
    // every job has ended.
    assert.deepEqual({ afterTwice: afterTwice.length, afterCancel: afterCancel.length, atEnd },
      { afterTwice: 1, afterCancel: 1, atEnd: [] },
      `PREFIX/tmp/upload-* files: after the second upload ${afterTwice}; after the cancel ${afterCancel}`);
  } finally {
    await stopClean(d);
    await dep.stop();
  }
});

test('upload: a job queued when the daemon stopped fails after the restart, saying to upload again', { timeout: 60000 }, async () => {
  const dep = await new Depot().start();
  const prefix = tmpdir('restart');
  let d = await startNodee({ prefix, args: ['--depot', dep.url], env: { NODEE_WORKERS: '1' } });
  try {
    const p = dep.put('com.block', 'busy', '1', appZip('busy'));
    dep.behaviour.set(`${p}.sha256`, 'hang');
    await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: 'com.block:busy:1' } });
    await waitFor(() => dep.count(`${p}.sha256`) > 0, 'the blocker running');
    const r = await upload(d, 'com.restart:r:1', appZip('restart'));
    assert.equal(r.status, 202, r.text);
    await stopClean(d);
    dep.behaviour.clear();
    d = await startNodee({ prefix, args: ['--depot', dep.url] });
    const j = await waitJob(d, r.json.id);
    assert.equal(j.state, 'failed');
    assert.match(j.error, /upload it again/);
    assert.equal((await d.req({ path: gavPath('com.restart:r:1') })).status, 404);
    await tmpEmpty(d, 'after the restart');
  } finally {
    await stopClean(d);
    await dep.stop();
  }
});

// --------------------------------------------------------------------- CLI

test('cli: artifact install FILE.zip --as G:A:V uploads it and waits; --json, --sha256, usage, errors', { timeout: 90000 }, async () => {
  const zip = appZip('cli', [{ name: 'lib/pad.bin', data: crypto.randomBytes(900 * 1024) }]);
  fs.writeFileSync(path.join(WORK, 'x.zip'), zip);

  // Off a terminal: a line per quarter of the upload, then the job.
  let r = await cli(D, ['artifact', 'install', './x.zip', '--as', 'com.cli:x:1']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /^job \d+ succeeded$/m);
  const ups = r.stdout.split('\n').filter((l) => l.startsWith('upload '));
  assert.ok(ups.length === 4, `four upload lines:\n${r.stdout}`);
  ups.forEach((l) => assert.match(l, /^upload \.\/x\.zip \d.* of \d.*\((\d+)%\)/, l));
  const pcts = ups.map((l) => Number(/\((\d+)%\)/.exec(l)[1]));
  assert.deepEqual(pcts.map((x) => Math.floor(x / 25)), [1, 2, 3, 4], `quarters: ${pcts}`);
  assert.equal(pcts[3], 100);
  assert.doesNotMatch(r.stdout, /\r|\x1b/, 'no terminal codes off a terminal');
  let a = (await D.req({ path: gavPath('com.cli:x:1') })).json;
  assert.equal(a.url, 'upload');
  assert.equal(a.sha256, sha256(zip));
  assert.equal(a.verified, 'none');

  // Installed already: said so, exit 0.
  r = await cli(D, ['artifact', 'install', './x.zip', '--as', 'com.cli:x:1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /com\.cli:x:1 is installed/);

  // --json: the job as a document, nothing else on stdout.
  r = await cli(D, ['artifact', 'install', path.join(WORK, 'x.zip'), '--as', 'com.cli:x:2', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const job = JSON.parse(r.stdout);
  assert.equal(job.kind, 'artifact.install');
  assert.equal(job.subject, 'com.cli:x:2');
  assert.equal(job.state, 'succeeded');

  // --sha256: the right one is recorded as given; a wrong one is refused.
  r = await cli(D, ['artifact', 'install', './x.zip', '--as', 'com.cli:x:3', '--sha256', sha256(zip)]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await D.req({ path: gavPath('com.cli:x:3') })).json.verified, 'sha256-given');
  r = await cli(D, ['artifact', 'install', './x.zip', '--as', 'com.cli:x:4', '--sha256', 'c'.repeat(64)]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /checksum mismatch/);
  assert.ok(r.stderr.includes('c'.repeat(64)) && r.stderr.includes(sha256(zip)), r.stderr);
  assert.match(r.stderr, /HTTP 400/);
  assert.equal((await D.req({ path: gavPath('com.cli:x:4') })).status, 404);

  // Usage: no --as, --as with a coordinate, a bad --as, a file that is not there.
  r = await cli(D, ['artifact', 'install', './x.zip']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--as/);
  r = await cli(D, ['artifact', 'install', 'com.cli:x:5', '--as', 'com.cli:x:5']);
  assert.equal(r.code, 2, r.stderr);
  r = await cli(D, ['artifact', 'install', './x.zip', '--as', 'com.cli:x']);
  assert.equal(r.code, 2, r.stderr);
  r = await cli(D, ['artifact', 'install', './missing.zip', '--as', 'com.cli:x:5']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /missing\.zip/);

  // A wrong token: the API's 401, exit 1; a daemon that is not there: exit 3.
  r = await cli(D, ['artifact', 'install', './x.zip', '--as', 'com.cli:x:5', '--token', 'f'.repeat(64)]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /HTTP 401/);
  const port = await freePort();
  r = await cli(null, ['artifact', 'install', './x.zip', '--as', 'com.cli:x:5', '--token', D.token],
    { env: { NODEE_URL: `http://127.0.0.1:${port}` } });
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, new RegExp(`cannot reach the nodee daemon at http://127\\.0\\.0\\.1:${port}`));
  assert.equal((await D.req({ path: gavPath('com.cli:x:5') })).status, 404);

  // On a terminal: a bar and a percentage, redrawn in place.
  const tty = await underTerminal(`${BIN} artifact install ./x.zip --as com.cli:x:6`,
    { ...cleanEnv(), NODEE_URL: `http://127.0.0.1:${D.port}`, NODEE_PREFIX: D.prefix });
  assert.equal(tty.status, 0, tty.stdout + tty.stderr);
  assert.equal(sanitizerReport(tty.stdout + tty.stderr), null, tty.stdout);
  assert.match(tty.stdout, /\r\x1b\[Kupload \.\/x\.zip \[#+\.*\] .*\(\d+%\)/);
  assert.match(tty.stdout, /\[#{20}\] .*\(100%\)/);
  assert.match(tty.stdout, /job \d+ succeeded/);
  a = (await D.req({ path: gavPath('com.cli:x:6') })).json;
  assert.equal(a.sha256, sha256(zip));
  await tmpEmpty(D, 'after the CLI uploads');
});

test('cli: service logs -f shows lines as the service writes them; --json a message a line; a delete ends it', { timeout: 90000 }, async () => {
  const coord = '1.ticker.op.test';
  assert.equal((await uploadInstall(D, 'com.op:ticker:1', tickerZip())).state, 'succeeded');
  await svcPut(D, coord, { artifact: 'com.op:ticker:1', command: 'bin/start', start: { min_uptime_ms: 200 } });
  await waitSvc(D, coord, isRunning, 'running');

  const plain = follow(D, ['service', 'logs', coord, '-f']);
  const json = follow(D, ['service', 'logs', coord, '-f', '--json', '-n', '3']);
  try {
    const ticks = (f) => f.lines().map((l) => /^tick (\d+)$/.exec(l)).filter(Boolean).map((m) => Number(m[1]));
    await plain.wait((l) => /^tick \d+$/.test(l), 'a first tick');
    const first = Math.max(...ticks(plain));
    const t0 = Date.now();
    await plain.wait((l) => l === `tick ${first + 4}`, 'four more ticks');
    assert.ok(Date.now() - t0 >= 500, 'the lines came while the service ran, not all at once');
    assert.equal(plain.exited, null, 'the client is still following');
    // The live lines arrived in pieces, over time.
    const later = plain.chunks.filter((c) => c.at >= t0);
    assert.ok(later.length >= 3, `arrived in ${later.length} pieces`);
    // In order, none twice, none missing across the tail and the live part.
    const seq = ticks(plain);
    seq.forEach((n, i) => { if (i > 0) assert.equal(n, seq[i - 1] + 1, `ticks: ${seq}`); });
    assert.ok(seq.length >= 5);

    await json.wait(() => json.lines().length >= 4, 'JSON messages');
    for (const l of json.lines()) {
      const m = JSON.parse(l);
      assert.equal(m.type, 'lines', l);
      assert.equal(m.stream, 'stdout');
      assert.match(m.text, /^(tick \d+\n)+$/, l);
    }

    // The service goes: both clients end, non-zero, saying why.
    const del = await D.req({ method: 'DELETE', path: `/api/v1/services/${coord}?purge=true` });
    assert.ok([200, 202, 204].includes(del.status), del.text);
    const [e1, e2] = await Promise.all([
      Promise.race([plain.done, sleep(15000).then(() => 'still running')]),
      Promise.race([json.done, sleep(15000).then(() => 'still running')]),
    ]);
    assert.notEqual(e1, 'still running', 'logs -f ends when the service is deleted');
    assert.notEqual(e2, 'still running');
    assert.notEqual(e1.code, 0, JSON.stringify(e1));
    assert.notEqual(e2.code, 0, JSON.stringify(e2));
    assert.match(plain.stderr, /deleted/);
    assert.match(json.stderr, /deleted/);
    plain.clean();
    json.clean();
    const last = JSON.parse(json.lines()[json.lines().length - 1]);
    assert.equal(last.type, 'error');
    assert.match(last.detail, /deleted/);

    // A service that does not exist: the API's 404, exit 1.
    const none = await cli(D, ['service', 'logs', '9.none.op.test', '-f']);
    assert.equal(none.code, 1, none.stderr);
    assert.match(none.stderr, /HTTP 404/);
  } finally {
    await plain.kill();
    await json.kill();
    await removeServices(D);
  }
});

test('cli: events -f prints new events as they happen; --kind filters; --json an event a line', { timeout: 90000 }, async () => {
  // An artifact event for the filtered history.
  assert.equal((await uploadInstall(D, 'com.ev:first:1', appZip('first'))).state, 'succeeded');
  const all = follow(D, ['events', '-f']);
  const arts = follow(D, ['events', '-f', '--kind', 'artifact.*', '--json']);
  try {
    await all.wait((l) => /daemon\.started|artifact\./.test(l), 'the history');
    await arts.wait((l) => l.includes('com.ev:first:1'), 'the filtered history');
    // Until both streams are open: an event nobody else makes, repeated.
    for (let i = 0; ; i++) {
      const gav = `com.probe:p${i}:1`;
      await D.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: gav } });
      await sleep(200);
      if (all.stdout.includes(gav) && arts.stdout.includes(gav)) break;
      assert.ok(i < 50, `the streams never opened:\n${all.stdout}\n${all.stderr}\n${arts.stderr}`);
    }

    const zip = appZip('events');
    const j = await uploadInstall(D, 'com.ev:live:1', zip);
    assert.equal(j.state, 'succeeded');
    const req = await all.wait((l) => /\bartifact\.install\.requested\s+com\.ev:live:1\b/.test(l), 'requested');
    await all.wait((l) => /\bartifact\.install\.succeeded\s+com\.ev:live:1\b/.test(l), 'succeeded');
    assert.match(req, /^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\s+artifact\.install\.requested\s+com\.ev:live:1\s+\S/);
    await arts.wait((l) => l.includes('"com.ev:live:1"') && l.includes('artifact.install.succeeded'), 'succeeded (json)');

    // Service events: the unfiltered client has them, the filtered one not.
    const coord = '1.evsvc.op.test';
    assert.equal((await uploadInstall(D, 'com.op:evsvc:1', tickerZip())).state, 'succeeded');
    await svcPut(D, coord, { artifact: 'com.op:evsvc:1', command: 'bin/start', start: { min_uptime_ms: 0 } });
    await all.wait((l) => new RegExp(`service\\.created\\s+${coord.replace(/\./g, '\\.')}`).test(l), 'service.created');
    await D.req({ method: 'DELETE', path: `/api/v1/services/${coord}?purge=true` });
    await all.wait((l) => /service\.deleted/.test(l), 'service.deleted');
    // One more artifact event after them, so the filtered client has seen past them.
    assert.equal((await uploadInstall(D, 'com.ev:after:1', appZip('after'))).state, 'succeeded');
    await arts.wait((l) => l.includes('"com.ev:after:1"') && l.includes('succeeded'), 'the last event');

    const evs = arts.lines().map((l) => JSON.parse(l));
    for (const e of evs) {
      assert.deepEqual(Object.keys(e).sort(), ['detail', 'id', 'kind', 'subject', 'time']);
      assert.ok(Number.isInteger(e.id) && e.time > 1e12, JSON.stringify(e));
      assert.match(e.kind, /^artifact\./, JSON.stringify(e));
      assert.equal(typeof e.detail, 'object');
    }
    for (let i = 1; i < evs.length; i++) assert.ok(evs[i].id > evs[i - 1].id, 'oldest first, none twice');
    const live = evs.filter((e) => e.subject === 'com.ev:live:1').map((e) => e.kind);
    assert.deepEqual(live, ['artifact.install.requested', 'artifact.install.succeeded']);
    assert.deepEqual(evs.find((e) => e.subject === 'com.ev:live:1').detail.by, { addr: '127.0.0.1', via: 'token' });
    assert.equal(all.exited, null);
    assert.equal(arts.exited, null);
    all.clean();
    arts.clean();
  } finally {
    await all.kill();
    await arts.kill();
    await removeServices(D);
  }
});

// A TCP proxy to port that lets the first connection through and holds
// every later one (its bytes wait in the socket) until release().
async function holdingProxy(port) {
  const sockets = new Set();
  let n = 0;
  let onHeld;
  let release;
  const held = new Promise((r) => { onHeld = r; });
  const released = new Promise((r) => { release = r; });
  const srv = net.createServer((c) => {
    const first = n++ === 0;
    c.pause();
    sockets.add(c);
    const go = () => {
      const up = net.connect(port, '127.0.0.1', () => { c.pipe(up); up.pipe(c); c.resume(); });
      sockets.add(up);
      for (const [a, b] of [[c, up], [up, c]]) {
        a.on('error', () => b.destroy());
        a.on('close', () => b.destroy());
      }
    };
    if (first) go();
    else {
      onHeld();
      released.then(go);
    }
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    held,
    release,
    close: () => {
      for (const x of sockets) x.destroy();
      return new Promise((r) => srv.close(r));
    },
  };
}

test('cli: events -f misses no event between its history and its stream', { timeout: 60000 }, async () => {
  // The client's second connection is held while an event happens: that
  // event falls after the history it read first (or before the stream
  // it opens first), and must be printed all the same.
  const proxy = await holdingProxy(D.port);
  const f = follow(D, ['events', '-f', '--json', '-n', '1'], { NODEE_URL: proxy.url });
  try {
    await Promise.race([proxy.held, f.done.then(() => assert.fail(`the client ended: ${f.stderr}`))]);
    const r = await D.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: 'com.gap:held:1' } });
    assert.equal(r.status, 202, r.text);
    // Long enough for the daemon's hub (a look every 250 ms) to have sent
    // it to any stream already open.
    await sleep(700);
    proxy.release();
    // Events after the stream opened reach it...
    for (let i = 0; !f.stdout.includes(`com.gap:after${i - 1}:1`); i++) {
      assert.ok(i < 50, `the stream never opened: ${f.stderr}`);
      await D.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: `com.gap:after${i}:1` } });
      await sleep(200);
    }
    // ...and so do those in between (the held install's two events):
    // from the history's last on, every event id, none missing, none twice.
    const ids = f.lines().map((l) => JSON.parse(l).id);
    const gaps = [];
    for (let i = 1; i < ids.length; i++) if (ids[i] !== ids[i - 1] + 1) gaps.push(`${ids[i - 1]}->${ids[i]}`);
    assert.deepEqual(gaps, [], `events missing between the history and the stream; printed:\n${f.stdout}`);
    f.clean();
  } finally {
    await f.kill();
    await proxy.close();
  }
});

// ----------------------------------------------------------------- metrics

test('metrics: the token (or a session) is needed; the text format holds line by line; the npm parser agrees', { timeout: 60000 }, async () => {
  let r = await request(D.port, { path: '/metrics' });
  assert.equal(r.status, 401, r.text);
  assert.match(r.headers['www-authenticate'], /^Bearer/);
  assert.doesNotMatch(r.text, /nodee_/);
  r = await request(D.port, { path: '/metrics', token: 'f'.repeat(64) });
  assert.equal(r.status, 401);
  r = await request(D.port, { path: '/metrics', headers: { Cookie: await login(D) } });
  assert.equal(r.status, 200, r.text);

  // Requests the label set must not grow with: ids, unknown paths, methods.
  for (const id of [999991, 999992]) await D.req({ path: `/api/v1/jobs/${id}` });
  await D.req({ path: '/no/such/path/123' });
  await D.req({ method: 'BREW', path: '/api/v1/node' });
  const s = await scrape(D);
  for (const name of ['nodee_build_info', 'nodee_start_time_seconds', 'nodee_resident_memory_bytes', 'nodee_open_fds',
    'nodee_service_restarts_total', 'nodee_download_bytes_total', 'nodee_upload_bytes_total', 'nodee_jobs',
    'nodee_services', 'nodee_zookeeper_state', 'nodee_artifact_install_duration_seconds',
    'nodee_http_requests_total', 'nodee_http_request_duration_seconds']) {
    assert.ok(s.fams.has(name), name);
  }
  assert.equal(s.fams.get('nodee_http_request_duration_seconds').type, 'histogram');
  const routes = new Set(s.fams.get('nodee_http_requests_total').samples.map((x) => x.labels.route));
  assert.ok(routes.has('/api/v1/jobs/:id'), [...routes].join(' '));
  for (const route of routes) {
    assert.ok(/^\/[a-z0-9/:._-]*$/.test(route) || route === '(none)' || route === '(other)', route);
    assert.doesNotMatch(route, /\/\d+(\/|$)|no\/such/, `a path, not a pattern: ${route}`);
  }
  const methods = new Set(s.fams.get('nodee_http_requests_total').samples.map((x) => x.labels.method));
  assert.ok(!methods.has('BREW'), [...methods].join(' '));
  for (const x of s.fams.get('nodee_http_requests_total').samples) {
    assert.match(x.labels.code, /^[1-5]\d\d$|^other$/, JSON.stringify(x));
    assert.deepEqual(Object.keys(x.labels).sort(), ['code', 'method', 'route']);
  }
  assert.ok(metric(s, 'nodee_http_requests_total', { method: 'GET', route: '/api/v1/jobs/:id', code: '404' }) >= 2);
  assert.ok(metric(s, 'nodee_http_requests_total', { method: 'GET', route: '(none)', code: '404' }) >= 1);
  assert.ok(metric(s, 'nodee_http_requests_total', { method: 'GET', route: '/metrics', code: '401' }) >= 2);
  assert.equal(metric(s, 'nodee_build_info', { version: (await D.req({ path: '/api/v1/node' })).json.version }), 1);
  assert.equal(metric(s, 'nodee_zookeeper_state', { state: 'disabled' }), 1);
  const started = (await D.req({ path: '/api/v1/node' })).json.started_at;
  assert.ok(Math.abs(metric(s, 'nodee_start_time_seconds') - started / 1000) < 1);
});

test('metrics: values move with uploads, jobs, requests, running services and restarts', { timeout: 90000 }, async () => {
  const zip = appZip('metrics', [{ name: 'lib/pad.bin', data: crypto.randomBytes(100 * 1024) }]);
  const s0 = await scrape(D);
  const r = await upload(D, 'com.metrics:m:1', zip);
  assert.equal(r.status, 202, r.text);
  assert.equal((await waitJob(D, r.json.id)).state, 'succeeded');
  const s1 = await scrape(D);
  const delta = (name, labels) => metric(s1, name, labels) - metric(s0, name, labels);
  assert.equal(delta('nodee_upload_bytes_total'), zip.length, 'nodee_upload_bytes_total grew by the zip');
  assert.equal(delta('nodee_jobs', { kind: 'artifact.install', state: 'succeeded' }), 1);
  assert.equal(delta('nodee_artifact_install_duration_seconds_count'), 1);
  assert.equal(delta('nodee_http_requests_total', { method: 'POST', route: '/api/v1/artifacts/:g/:a/:v', code: '202' }), 1);
  assert.ok(delta('nodee_http_requests_total', { method: 'GET', route: '/api/v1/jobs/:id', code: '200' }) >= 1);
  assert.ok(delta('nodee_http_request_duration_seconds_count', { method: 'GET', route: '/metrics' }) >= 1);
  assert.equal(delta('nodee_download_bytes_total'), 0);

  // A refused upload counts no bytes but counts its request.
  const bad = await upload(D, 'com.metrics:m:2', zip, { headers: { 'X-Checksum-Sha256': '0'.repeat(64) } });
  assert.equal(bad.status, 400);
  const s2 = await scrape(D);
  assert.equal(metric(s2, 'nodee_upload_bytes_total'), metric(s1, 'nodee_upload_bytes_total'));
  assert.equal(metric(s2, 'nodee_http_requests_total', { method: 'POST', route: '/api/v1/artifacts/:g/:a/:v', code: '400' }) -
    metric(s1, 'nodee_http_requests_total', { method: 'POST', route: '/api/v1/artifacts/:g/:a/:v', code: '400' }), 1);

  // A running service, then a crash and its restart.
  const coord = '1.msvc.op.test';
  assert.equal((await uploadInstall(D, 'com.op:msvc:1', tickerZip())).state, 'succeeded');
  await svcPut(D, coord, { artifact: 'com.op:msvc:1', command: 'bin/start', start: { min_uptime_ms: 200 } });
  try {
    const svc = await waitSvc(D, coord, isRunning, 'running');
    const s3 = await scrape(D);
    const running = (await D.req({ path: '/api/v1/services' })).json.services.filter((x) => x.state === 'running').length;
    assert.ok(running >= 1);
    assert.equal(metric(s3, 'nodee_services', { state: 'running' }), running);
    const states = s3.fams.get('nodee_services').samples;
    const total = (await D.req({ path: '/api/v1/services' })).json.services.length;
    assert.equal(states.reduce((n, x) => n + x.value, 0), total, 'every service counted in one state');

    process.kill(svc.pid, 'SIGKILL');
    const again = await waitSvc(D, coord, (x) => isRunning(x) && x.pid !== svc.pid && x.restarts >= 1, 'restarted');
    const s4 = await scrape(D);
    assert.equal(metric(s4, 'nodee_service_restarts_total') - metric(s3, 'nodee_service_restarts_total'),
      again.restarts - svc.restarts, 'nodee_service_restarts_total grew with the restart');
    assert.ok(metric(s4, 'nodee_service_restarts_total') >= 1);
  } finally {
    await removeServices(D);
  }
});

test('metrics: metrics_public = yes answers /metrics without the token, and only /metrics', { timeout: 60000 }, async () => {
  const d = await startNodee({ env: { NODEE_METRICS_PUBLIC: 'yes' } });
  try {
    const r = await request(d.port, { path: '/metrics' });
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
    checkExposition(r.text);
    assert.equal(parsePrometheus(r.text).length > 5, true);
    assert.equal((await request(d.port, { path: '/api/v1/node' })).status, 401);
    assert.equal((await request(d.port, { path: '/metrics', headers: { Host: 'evil.example' } })).status, 403);
  } finally {
    await stopClean(d);
  }
});

// ------------------------------------------------------------------- audit

test('audit: detail.by names the client and how it proved itself; events nobody asked for have none', { timeout: 90000 }, async () => {
  const self = `http://127.0.0.1:${D.port}`;
  // A token request.
  const r = await upload(D, 'com.audit:tok:1', appZip('audit'));
  assert.equal(r.status, 202);
  const req = (await events(D, 'kind=artifact.install.requested&subject=com.audit:tok:1'))[0];
  assert.deepEqual(req.detail.by, { addr: '127.0.0.1', via: 'token' });
  assert.equal(req.detail.job, r.json.id);
  await waitJob(D, r.json.id);

  // The console's session: POST /login, then the cookie (and the Origin a
  // browser sends).
  const cookie = await login(D);
  const z = appZip('cookie');
  const up = await upload(D, 'com.audit:cookie:1', z, { token: null, headers: { Cookie: cookie, Origin: self } });
  assert.equal(up.status, 202, up.text);
  await waitJob(D, up.json.id);
  const creq = (await events(D, 'kind=artifact.install.requested&subject=com.audit:cookie:1'))[0];
  assert.deepEqual(creq.detail.by, { addr: '127.0.0.1', via: 'cookie' });

  const coord = '1.audsvc.op.test';
  assert.equal((await uploadInstall(D, 'com.op:audsvc:1', tickerZip())).state, 'succeeded');
  const spec = { artifact: 'com.op:audsvc:1', command: 'bin/start', start: { min_uptime_ms: 200 } };
  // A foreign Origin with the cookie: 403, nothing created.
  const foreign = await request(D.port, { method: 'PUT', path: `/api/v1/services/${coord}`, body: spec,
    headers: { Cookie: cookie, Origin: 'http://evil.example' } });
  assert.equal(foreign.status, 403, foreign.text);
  assert.equal((await events(D, `subject=${coord}`)).length, 0);
  const put = await request(D.port, { method: 'PUT', path: `/api/v1/services/${coord}`, body: spec,
    headers: { Cookie: cookie, Origin: self } });
  assert.equal(put.status, 201, put.text);
  try {
    const svc = await waitSvc(D, coord, isRunning, 'running');
    const created = (await events(D, `kind=service.created&subject=${coord}`));
    assert.equal(created.length, 1);
    assert.deepEqual(created[0].detail.by, { addr: '127.0.0.1', via: 'cookie' });

    // A crash and the restart that follows: nobody asked.
    const last = (await events(D, `subject=${coord}`))[0].id;
    process.kill(svc.pid, 'SIGKILL');
    await waitSvc(D, coord, (x) => isRunning(x) && x.pid !== svc.pid, 'restarted');
    const after = (await events(D, `subject=${coord}`)).filter((e) => e.id > last);
    const restart = after.find((e) => e.kind === 'service.started');
    assert.ok(restart, JSON.stringify(after));
    assert.equal(restart.detail.reason, 'restart');
    for (const e of after) assert.equal(e.detail.by, undefined, `${e.kind} was nobody's request: ${JSON.stringify(e)}`);

    // A stop asked for with the token is the token's.
    const stop = await D.req({ method: 'POST', path: `/api/v1/services/${coord}/stop` });
    assert.equal(stop.status, 200, stop.text);
    const stopping = (await events(D, `kind=service.stopping&subject=${coord}`))[0];
    assert.deepEqual(stopping.detail.by, { addr: '127.0.0.1', via: 'token' });
  } finally {
    await removeServices(D);
  }
  const started = await events(D, 'kind=daemon.started');
  assert.equal(started.length, 1);
  assert.equal(started[0].detail.by, undefined, JSON.stringify(started[0]));
  // The job's own outcome is the worker's, not the client's.
  const done = (await events(D, 'kind=artifact.install.succeeded&subject=com.audit:tok:1'))[0];
  assert.equal(done.detail.by, undefined, JSON.stringify(done));
});

test('cli: follow clients that go away never stop the daemon answering', { timeout: 60000 }, async () => {
  // More clients than HTTP threads (4), each killed while events stream
  // to it: after each, the daemon answers at once.  (A daemon of its
  // own: one that stops answering must not take the other tests along.)
  const dep = await new Depot().start();
  const d = await startNodee({ args: ['--depot', dep.url] });
  const answers = () => Promise.race([request(d.port, { path: '/healthz' }).then((r) => r.status, (e) => e.message),
    sleep(3000).then(() => 'no answer in 3 s')]);
  let stop = false;
  let n = 0;
  const load = async () => {
    while (!stop) {
      await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: `com.gone:g${n++}:1` } })
        .catch(() => sleep(100));
    }
  };
  const loader = load();
  const cleanup = async () => { stop = true; await loader; await d.stop('SIGKILL'); await dep.stop(); };
  try {
    for (let i = 0; i < 6; i++) {
      const f = follow(d, ['events', '-f', '--json', '-n', '1']);
      try {
        await f.wait(() => f.lines().length >= 20, `events streaming to client ${i + 1}`, 10000);
        f.clean();
      } finally {
        await f.kill();
      }
      await sleep(100);
      assert.equal(await answers(), 200, `after the close of follow client ${i + 1}`);
    }
  } catch (e) {
    await cleanup();
    throw e;
  }
  stop = true;
  await loader;
  const l = follow(d, ['service', 'logs', '9.none.op.test', '-f']);
  assert.notEqual((await l.done).code, 0);
  l.clean();
  assert.match(l.stderr, /HTTP 404/);
  assert.equal(await answers(), 200);
  await stopClean(d);
  await dep.stop();
});
