// Helpers for the integration tests: start the real nodee binary on a
// temporary prefix and a free loopback port, talk HTTP to it, stop it by
// pid.  Every process a test starts is registered and killed at exit.
'use strict';

const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const BIN = process.env.NODEE_BIN || path.resolve(__dirname, '../../nodee');
const SANITIZED = process.env.NODEE_SANITIZED === '1';
const children = new Set();

process.on('exit', () => {
  for (const c of children) {
    try { process.kill(c.pid, 'SIGKILL'); } catch (_) { /* gone */ }
  }
});

function tmpdir(tag) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `nodee-${tag}-`));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// One HTTP request; resolves with status, headers, raw body and parsed
// JSON (when the answer is JSON).
function request(port, opts = {}) {
  const mod = opts.tls ? https : http;
  const headers = { ...(opts.headers || {}) };
  let body = opts.body;
  if (body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body)) {
    body = JSON.stringify(body);
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
      headers['Content-Type'] = 'application/json';
    }
  }
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  return new Promise((resolve, reject) => {
    const req = mod.request({
      host: '127.0.0.1',
      port,
      method: opts.method || 'GET',
      path: opts.path || '/',
      headers,
      rejectUnauthorized: false,
      agent: false,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        const type = res.headers['content-type'] || '';
        if (type.includes('json')) {
          try { json = JSON.parse(text); } catch (_) { json = undefined; }
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error('request timed out')));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// Runs nodee to completion (for start-up errors); resolves with the exit
// code and stderr.
function runNodee(args, opts = {}) {
  return new Promise((resolve) => {
    const p = spawn(BIN, args, { env: { ...cleanEnv(), ...(opts.env || {}) },
      stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(p);
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 15000);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(p);
      resolve({ code, signal, stdout: out, stderr: err });
    });
  });
}

// The environment without NODEE_* settings from the caller's shell, so a
// test sees only what it sets.
function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    // NOTIFY_SOCKET too: a daemon under test must not tell a systemd
    // that runs the tests that it is ready.
    if (!k.startsWith('NODEE_') && k !== 'NOTIFY_SOCKET') env[k] = v;
  }
  return env;
}

// Starts the daemon and waits until /healthz answers.  opts.wrap, a
// command that ends by exec'ing its arguments (prlimit, setpriv, env),
// is put before nodee's: the pid tracked is still the daemon's.
async function startNodee(opts = {}) {
  const prefix = opts.prefix || tmpdir('prefix');
  const port = opts.port || await freePort();
  const args = ['daemon', '--prefix', prefix,
    '--listen', `127.0.0.1:${port}`, ...(opts.args || [])];
  const wrap = opts.wrap || [];
  const p = spawn(wrap.length ? wrap[0] : BIN, [...wrap.slice(1), ...(wrap.length ? [BIN] : []), ...args],
    { env: { ...cleanEnv(), ...(opts.env || {}) }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(p);
  const d = {
    proc: p, pid: p.pid, prefix, port, stderr: '', exited: null,
  };
  p.stdout.on('data', (x) => { d.stderr += x; });
  p.stderr.on('data', (x) => { d.stderr += x; });
  d.exitPromise = new Promise((resolve) => {
    p.on('exit', (code, signal) => {
      children.delete(p);
      d.exited = { code, signal };
      resolve(d.exited);
    });
  });
  const deadline = Date.now() + 15000;
  for (;;) {
    if (d.exited) {
      throw new Error(`nodee exited during start-up (${JSON.stringify(d.exited)}):\n${d.stderr}`);
    }
    try {
      const r = await request(port, { path: '/healthz', tls: opts.tls });
      if (r.status === 200) break;
    } catch (_) { /* not yet */ }
    if (Date.now() > deadline) {
      p.kill('SIGKILL');
      throw new Error(`nodee did not answer within 15 s:\n${d.stderr}`);
    }
    await sleep(50);
  }
  d.token = fs.readFileSync(path.join(prefix, 'state/token'), 'utf8').trim();
  d.req = (o = {}) => request(port, { token: d.token, tls: opts.tls, ...o });
  // Stops it with sig and resolves with {code, signal}; fails the caller
  // if a sanitizer reported anything.
  d.stop = async (sig = 'SIGTERM') => {
    if (!d.exited) p.kill(sig);
    const timer = setTimeout(() => p.kill('SIGKILL'), 20000);
    const r = await d.exitPromise;
    clearTimeout(timer);
    return r;
  };
  return d;
}

// A sanitizer's report in the daemon's output is a failure whatever the
// exit code says.
function sanitizerReport(text) {
  const m = text.match(/(ERROR: (Address|Leak)Sanitizer.*|runtime error:.*)/);
  return m ? m[0] : null;
}

// Polls fn (sync or async) until it returns something truthy.
async function waitFor(fn, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function sql(dbPath, query) {
  // The daemon writes the same database: wait for its lock, as its own
  // connections do, instead of failing with "database is locked".
  return execFileSync('sqlite3', ['-json', '-cmd', '.timeout 10000', dbPath, query],
    { encoding: 'utf8' });
}

function sqlRows(dbPath, query) {
  const out = sql(dbPath, query).trim();
  return out ? JSON.parse(out) : [];
}

function readIf(p) {
  try { return fs.readFileSync(p, 'utf8'); } catch (_) { return null; }
}

// Waits until the file at p exists and matches pattern; its text.
async function waitFile(p, pattern = /./, timeoutMs = 15000) {
  return waitFor(() => {
    const t = readIf(p);
    return t !== null && pattern.test(t) ? t : null;
  }, `${p} to match ${pattern}`, timeoutMs);
}

// /proc/<pid>/stat after the command name: state is fields[0].
function procStat(pid) {
  const t = readIf(`/proc/${pid}/stat`);
  if (t === null) return null;
  return t.slice(t.lastIndexOf(')') + 2).split(' ');
}

// The process groups of the live processes that services of this prefix
// started (found by their environment), sorted.
function serviceGroups(prefix) {
  const out = new Set();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const env = readIf(`/proc/${e}/environ`);
    const f = procStat(e);
    if (env && f && f[0] !== 'Z' &&
      env.split('\0').some((x) => x.startsWith(`NODEE_RUNTIME_DIR=${prefix}/`))) out.add(Number(f[2]));
  }
  return [...out].sort((a, b) => a - b);
}

// Stops the daemon with SIGTERM and asserts a clean exit, no sanitizer
// report.
async function stopClean(d) {
  const r = await d.stop('SIGTERM');
  assert.equal(sanitizerReport(d.stderr), null, d.stderr);
  assert.deepEqual(r, { code: 0, signal: null }, d.stderr);
}

// The store of a daemon (or of a prefix), and a query of it.
function db(d) {
  return path.join(typeof d === 'string' ? d : d.prefix, 'state/nodee.db');
}

function q(d, query) {
  return sqlRows(db(d), query);
}

// A string for an SQL literal.
function esc(s) {
  return s.replace(/'/g, "''");
}

// PREFIX/runtime/<cell>/<user>/<service>/<instance> of a coordinate.
function rundir(prefix, coord) {
  const [inst, svc, user, cell] = coord.split('.');
  return path.join(prefix, 'runtime', cell, user, svc, inst);
}

// A process is alive (not a zombie); its start time (field 22).
function alive(pid) {
  const f = procStat(pid);
  return f !== null && f[0] !== 'Z' && f[0] !== 'X';
}

function procStart(pid) {
  const f = procStat(pid);
  return f && f[0] !== 'Z' ? Number(f[19]) : null;
}


// Kills (SIGKILL, whole group) every recorded service process of the
// prefix that still runs with its recorded start time, and any process
// group whose environment says it belongs to a service of the prefix;
// returns what it killed.
function killLeftovers(prefix) {
  let rows = [];
  if (fs.existsSync(db(prefix))) {
    try {
      rows = sqlRows(db(prefix), 'select pid, proc_start from service_runs where pid > 0 ' +
        'union select pid, proc_start from services where pid > 0');
    } catch (_) { /* no store */ }
  }
  const killed = new Set();
  const kill = (pid) => {
    try { process.kill(-pid, 'SIGKILL'); } catch (_) {
      try { process.kill(pid, 'SIGKILL'); } catch (__) { /* gone */ }
    }
    killed.add(pid);
  };
  for (const { pid, proc_start: ps } of rows) {
    if (procStart(pid) !== null && procStart(pid) === ps) kill(pid);
  }
  for (const pgid of serviceGroups(prefix)) kill(pgid);
  return [...killed].sort((a, b) => a - b);
}

// Services through the API.  The coordinate goes into the path as it is
// (tests of path tricks depend on it): encode it if it needs encoding.
function svcGet(d, coord) {
  return d.req({ path: `/api/v1/services/${coord}` });
}

function svcPut(d, coord, spec) {
  return d.req({ method: 'PUT', path: `/api/v1/services/${coord}`, body: spec });
}

// Waits until the service matches pred; resolves with it.
async function waitSvc(d, coord, pred, what, timeoutMs = 20000) {
  let last;
  try {
    return await waitFor(async () => {
      const r = await svcGet(d, coord);
      last = r.text;
      return r.status === 200 && pred(r.json) ? r.json : null;
    }, `${coord}: ${what}`, timeoutMs);
  } catch (e) {
    e.message += `\nlast: ${last}\ndaemon log:\n${d.stderr.split('\n').slice(-30).join('\n')}`;
    throw e;
  }
}

const isRunning = (s) => s.state === 'running' && s.pid > 0;

async function putRunning(d, coord, spec) {
  const r = await svcPut(d, coord, spec);
  assert.ok([200, 201, 202].includes(r.status), r.text);
  return waitSvc(d, coord, isRunning, 'running');
}

// Waits until job id has ended; resolves with it.
async function waitJob(d, id, timeoutMs = 30000) {
  return waitFor(async () => {
    const r = await d.req({ path: `/api/v1/jobs/${id}` });
    return ['succeeded', 'failed', 'cancelled'].includes(r.json.state) ? r.json : null;
  }, `job ${id}`, timeoutMs);
}

// Installs gav from the daemon's depot, failing the test if it fails.
async function installArtifact(d, gav) {
  const r = await d.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: gav } });
  if (r.status === 200) return;
  assert.equal(r.status, 202, r.text);
  const j = await waitJob(d, r.json.id);
  assert.equal(j.state, 'succeeded', j.error);
}

module.exports = {
  BIN, SANITIZED, tmpdir, freePort, sleep, request, runNodee, startNodee,
  sanitizerReport, sql, sqlRows, cleanEnv, waitFor, readIf, waitFile, procStat,
  serviceGroups, stopClean, db, q, esc, rundir, alive, procStart, killLeftovers,
  svcGet, svcPut, waitSvc, isRunning, putRunning, waitJob, installArtifact,
};
