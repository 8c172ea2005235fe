// A real S3-compatible server for tests on a free loopback port: npm's
// s3rver (installed by `make test` into tests/node_modules) behind a
// front that checks AWS Signature V4, since s3rver 3.7.1 does not (see
// s3-server.js, the child process this starts).  A wrong secret gets
// 403 SignatureDoesNotMatch as from S3.  Every request is logged for
// assertions; chosen requests can be made to fail.  The server is
// stopped by pid, and killed at exit; it also exits by itself when this
// process goes, however it goes.
//
//   const s3 = await startS3({ buckets: ['b1'] });
//   s3.url, s3.region, s3.accessKeyId, s3.secretAccessKey
//   await s3.putObject('b1', 'a/state.zip', buf); await s3.getObject('b1', 'a/state.zip')
//   await s3.fault({ method: 'GET', bucket: 'b1', key: 'x', status: 403, code: 'AccessDenied' })
//   await s3.sync(); s3.requests  // [{ method, path, bucket, key, status, code, bytes, userAgent, accessKeyId }]
//   await s3.stop()
'use strict';

const { fork } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { tmpdir } = require('./lib');
const { sign, uriEncode } = require('./s3-server');

const RUNNER = path.join(__dirname, 's3-server.js');
const servers = new Set();

process.on('exit', () => {
  for (const s of servers) s.killNow();
});

class S3Server {
  constructor(opts) {
    this.dir = tmpdir('s3');
    this.region = opts.region || 'us-east-1';
    this.accessKeyId = opts.accessKeyId || 'AKIANODEETEST0000001';
    this.secretAccessKey = opts.secretAccessKey || 'nodee/test/secret+key0000000000000000000';
    this.sessionToken = opts.sessionToken || null;
    this.buckets = opts.buckets || ['b1'];
    this.requests = [];
    this.proc = null;
    this.pending = new Map();
    this.nextId = 1;
  }

  async start() {
    const log = fs.openSync(path.join(this.dir, 'server.log'), 'a');
    fs.mkdirSync(path.join(this.dir, 'data'));
    // execArgv: none of the test runner's flags; the runner finds s3rver
    // in tests/node_modules from its own path.
    this.proc = fork(RUNNER, [], { stdio: ['ignore', log, log, 'ipc'], execArgv: [] });
    fs.closeSync(log);
    servers.add(this);
    const p = this.proc;
    this.exited = new Promise((resolve) => p.on('exit', (code, signal) => {
      this.proc = null;
      for (const { reject } of this.pending.values()) reject(new Error(`the S3 server exited (${code ?? signal})`));
      this.pending.clear();
      resolve();
    }));
    p.on('message', (m) => this.onMessage(m));
    // Unreferenced, so that a test that forgets stop() still ends (the
    // exit handler kills it); call() holds a reference while it waits.
    p.unref();
    p.channel.unref();
    const ready = new Promise((resolve, reject) => {
      this.pending.set('ready', { resolve, reject });
    });
    p.channel.ref();
    p.send({
      root: this.dir,
      dir: path.join(this.dir, 'data'),
      region: this.region,
      buckets: this.buckets,
      credentials: [{
        accessKeyId: this.accessKeyId,
        secretAccessKey: this.secretAccessKey,
        sessionToken: this.sessionToken,
      }],
    });
    const timer = setTimeout(() => {
      const w = this.pending.get('ready');
      if (w) w.reject(new Error(`the S3 server did not start within 15 s:\n${this.log()}`));
    }, 15000);
    try {
      this.port = await ready;
    } catch (err) {
      await this.stop();
      throw err;
    } finally {
      clearTimeout(timer);
      if (this.proc) this.proc.channel.unref();
    }
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  onMessage(m) {
    if (m.type === 'request') {
      this.requests.push(m.entry);
    } else if (m.type === 'ready') {
      const w = this.pending.get('ready');
      this.pending.delete('ready');
      if (w) w.resolve(m.port);
    } else if (m.type === 'ok') {
      const w = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (w) w.resolve();
      if (this.pending.size === 0 && this.proc) this.proc.channel.unref();
    }
  }

  // A message to the server, answered once it has been applied.
  call(msg) {
    if (!this.proc) return Promise.reject(new Error('the S3 server is not running'));
    const id = this.nextId++;
    const p = new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.proc.channel.ref();
    this.proc.send({ ...msg, id });
    return p;
  }

  // Resolves once every request the server answered so far is in
  // this.requests (the log and the answers travel in order).
  sync() {
    return this.call({ type: 'ping' });
  }

  // Makes requests for bucket (and key, if given; and method, if given)
  // fail after their signature was checked: with status and an S3 error
  // code and message, or with reset: true a closed connection.  times:
  // how many requests it takes (default: all until clearFaults).
  fault({ method, bucket, key, status = 403, code = 'AccessDenied', message = 'Access Denied', times = 0, reset = false }) {
    return this.call({ type: 'fault', fault: { method, bucket, key, status, code, message, times, reset } });
  }

  clearFaults() {
    return this.call({ type: 'clearFaults' });
  }

  // How many requests matched (after sync()).
  count({ method, bucket, key } = {}) {
    return this.requests.filter((r) => (!method || r.method === method)
      && (!bucket || r.bucket === bucket) && (key === undefined || r.key === key)).length;
  }

  // A request signed with this server's credentials (or those given);
  // resolves with status, headers, body (Buffer) and the S3 error code.
  request({ method = 'GET', bucket, key = '', body, accessKeyId, secretAccessKey, unsigned = false }) {
    const p = `/${bucket}${key ? `/${key.split('/').map(uriEncode).join('/')}` : ''}`;
    const host = `127.0.0.1:${this.port}`;
    const headers = unsigned ? { host } : sign({
      method,
      path: p,
      host,
      body: body || '',
      region: this.region,
      accessKeyId: accessKeyId || this.accessKeyId,
      secretAccessKey: secretAccessKey || this.secretAccessKey,
      sessionToken: this.sessionToken,
    });
    headers['user-agent'] = 'nodee-test-s3';
    if (body) headers['content-length'] = Buffer.byteLength(body);
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port: this.port, method, path: p, headers, agent: false,
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const b = Buffer.concat(chunks);
          const code = res.statusCode >= 300
            ? ((/<Code>([^<]*)<\/Code>/.exec(b.toString()) || [])[1] || null) : null;
          resolve({ status: res.statusCode, headers: res.headers, body: b, code });
        });
      });
      req.on('error', reject);
      req.setTimeout(10000, () => req.destroy(new Error('S3 request timed out')));
      req.end(body);
    });
  }

  // The object's bytes, or null if there is no such object.
  async getObject(bucket, key) {
    const r = await this.request({ method: 'GET', bucket, key });
    if (r.status === 404) return null;
    if (r.status !== 200) throw new Error(`GET ${bucket}/${key}: HTTP ${r.status} ${r.body}`);
    return r.body;
  }

  async putObject(bucket, key, buf) {
    const r = await this.request({ method: 'PUT', bucket, key, body: Buffer.from(buf) });
    if (r.status !== 200) throw new Error(`PUT ${bucket}/${key}: HTTP ${r.status} ${r.body}`);
  }

  log() {
    try {
      return fs.readFileSync(path.join(this.dir, 'server.log'), 'utf8').split('\n').slice(-20).join('\n');
    } catch (_) { return ''; }
  }

  // SIGTERM, then SIGKILL after 5 s; resolves when it is gone and its
  // directory removed.
  async stop() {
    if (this.proc) {
      const p = this.proc;
      p.kill('SIGTERM');
      const t = setTimeout(() => { try { p.kill('SIGKILL'); } catch (_) { /* gone */ } }, 5000);
      await this.exited;
      clearTimeout(t);
    }
    servers.delete(this);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  killNow() {
    if (this.proc) {
      try { this.proc.kill('SIGKILL'); } catch (_) { /* gone */ }
    }
    try { fs.rmSync(this.dir, { recursive: true, force: true }); } catch (_) { /* best effort */ }
  }
}

// Starts a server with buckets (default ['b1']) and one key pair
// (accessKeyId, secretAccessKey, optional sessionToken; defaults made
// up); resolves with the running server (see the top of this file).
async function startS3(opts = {}) {
  return new S3Server(opts).start();
}

module.exports = { startS3 };
