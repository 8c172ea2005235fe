// The API the web console needs (issue 11): login and logout, the embedded
// static files, the audit history (/api/v1/events), a service's runs, and
// the live WebSocket streams (/api/v1/stream and a service's log follow)
// with their checks: authentication, Host and Origin, the cap on open
// streams, a slow reader that must not block anyone, clients that vanish
// mid-stream (no descriptor or memory left behind), log rotation.
//
// npm's `ws` is the well-behaved client; raw `net` sockets do the
// handshake by hand where a client must misbehave (never read, vanish).
// Every daemon a test starts is stopped with SIGTERM and must exit 0
// without a sanitizer report.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const WebSocket = require('ws');
const {
  SANITIZED, startNodee, request, sleep, tmpdir, waitFor, waitFile, stopClean, q,
  rundir, killLeftovers, sanitizerReport, svcGet: getSvc, svcPut: put, waitSvc,
  isRunning, putRunning,
  waitJob, installArtifact,
} = require('./lib');
const { makeZip } = require('./zipper');
const { Depot } = require('./depot');

const GAV = 'com.test:console:1';
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
// A daemon that does not block answers well within this; one that waits
// on a slow reader does not.
const FAST_MS = SANITIZED ? 1500 : 1000;

// ---------------------------------------------------------------- artifacts

const SCRIPTS = {
  'bin/start': '#!/bin/sh\necho "started $$"\nexec sleep 1000\n',
  // 20 stdout lines and 3 stderr lines, then (once the test creates `go`)
  // one stdout and one stderr line per tick; the stdout line is written in
  // two parts 100 ms apart: a follower must send it only once complete.
  'bin/ticker': `#!/bin/sh
i=1
while [ $i -le 20 ]; do echo "line $i"; i=$((i+1)); done
echo "eline 1" >&2; echo "eline 2" >&2; echo "eline 3" >&2
echo ready > ready
while [ ! -e go ]; do sleep 0.05; done
n=1
while :; do
  printf 'tick %d' $n; sleep 0.1; printf ' end\\n'
  echo "etick $n" >&2
  n=$((n+1))
  sleep 0.1
done
`,
  // About 2 KB a second on stdout: past a 4 KB log_max within seconds.
  'bin/chatty': `#!/bin/sh
n=1
while :; do
  echo "c $n xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
  n=$((n+1))
  sleep 0.05
done
`,
};

function svcZip() {
  return makeZip([
    { name: 'bin/', dir: true },
    ...Object.entries(SCRIPTS).map(([name, data]) => ({ name, data, mode: 0o755 })),
  ]);
}

// ------------------------------------------------------------------ helpers

const prefixes = new Set();
const sockets = new Set(); // raw sockets and ws clients still open

process.on('exit', () => {
  for (const p of prefixes) killLeftovers(p);
});

// A prefix a dynamic uid can traverse (mkdtemp makes it 0700).
function newPrefix() {
  const p = tmpdir('console');
  fs.chmodSync(p, 0o755);
  prefixes.add(p);
  return p;
}

// A daemon on a new prefix with the test depot; conf: lines of a
// configuration file passed with --config.
async function startDaemon(conf = [], extra = {}) {
  const prefix = newPrefix();
  const args = ['--depot', depot.url];
  if (conf.length) {
    const file = path.join(prefix, 'nodee.conf');
    fs.writeFileSync(file, `${conf.join('\n')}\n`);
    args.push('--config', file);
  }
  return startNodee({ prefix, args, ...extra });
}

function closeAll() {
  for (const s of sockets) {
    try { s.terminate ? s.terminate() : s.destroy(); } catch (_) { /* gone */ }
  }
  sockets.clear();
}

// Ends what a test left: its streams, its services, its daemon (clean
// exit checked), its processes.
async function finish(d) {
  closeAll();
  // A crash shows as a refused or reset request a moment before the exit.
  await Promise.race([d.exitPromise, sleep(300)]);
  try {
    if (d.exited && !d.stoppedHere) {
      throw new Error(`the daemon ended before the test stopped it (${JSON.stringify(d.exited)}):\n${
        d.stderr.split('\n').slice(-60).join('\n')}`);
    } else if (!d.exited) {
      await removeAll(d);
      await stopClean(d);
    }
  } finally {
    if (!d.exited) await d.stop('SIGKILL');
    killLeftovers(d.prefix);
  }
}

function assertProblem(r, status, detail) {
  assert.equal(r.status, status, `status of ${r.status} ${r.text}`);
  assert.match(r.headers['content-type'] || '', /^application\/problem\+json/, r.text);
  assert.equal(r.json.status, status, r.text);
  assert.equal(typeof r.json.title, 'string');
  assert.equal(typeof r.json.detail, 'string');
  if (detail) assert.match(r.json.detail, detail);
}

const enc = encodeURIComponent;


// Deletes every service, waits until they are gone, kills what is left.
async function removeAll(d) {
  const list = (await d.req({ path: '/api/v1/services' })).json.services;
  await Promise.all(list.map((s) => d.req({ method: 'DELETE',
    path: `/api/v1/services/${enc(s.coordinate)}?purge=true` })));
  await waitFor(async () => (await d.req({ path: '/api/v1/services' })).json.services.length === 0,
    'every service deleted', 30000);
  await sleep(50);
  killLeftovers(d.prefix);
}


// The value of the session cookie from a login answer's Set-Cookie.
// Its name carries the node's port: browsers share cookies across the
// ports of a host, and two nodes on one host must not log each other out.
function sessionCookie(r, port) {
  const name = `nodee_session_${port}`;
  const set = [].concat(r.headers['set-cookie'] || []);
  const c = set.find((x) => x.startsWith(`${name}=`));
  assert.ok(c, `a ${name} cookie in ${JSON.stringify(set)}`);
  return { name, header: c, value: c.slice(name.length + 1).split(';')[0] };
}

async function cookieOf(d) {
  const r = await request(d.port, { path: `/?token=${d.token}` });
  assert.equal(r.status, 303, r.text);
  const { name, value } = sessionCookie(r, d.port);
  return `${name}=${value}`;
}

// The events of the store, newest first, as the API shows them.
function dbEvents(d, where = '') {
  return q(d, `select id, time, kind, subject, detail from events ${where} order by id desc`)
    .map((e) => ({ ...e, detail: JSON.parse(e.detail) }));
}

function fdCount(pid) {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

// The daemon's descriptors as "fd:target".
function fdList(pid) {
  return fs.readdirSync(`/proc/${pid}/fd`).map((x) => {
    try { return `${x}:${fs.readlinkSync(`/proc/${pid}/fd/${x}`)}`; } catch (_) { return `${x}:?`; }
  });
}

function threadCount(pid) {
  return Number(/^Threads:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

// ---------------------------------------------------------- the WebSockets

// A `ws` client that keeps every message (parsed, with its arrival time).
class Client {
  constructor(ws) {
    this.ws = ws;
    this.msgs = [];
    this.closed = null;
    this.bad = []; // frames that were not one JSON object
    ws.on('message', (data, binary) => {
      let m;
      try { m = JSON.parse(data.toString('utf8')); } catch (_) { m = null; }
      if (binary || m === null || typeof m !== 'object' || Array.isArray(m)) {
        this.bad.push(data.toString('utf8').slice(0, 200));
        return;
      }
      Object.defineProperty(m, 'at', { value: Date.now(), enumerable: false });
      this.msgs.push(m);
    });
    ws.on('close', (code, reason) => { this.closed = { code, reason: reason.toString() }; });
    ws.on('error', () => { /* shows as close */ });
  }

  // The first message (from index `from`) that matches pred.
  async wait(pred, what, timeoutMs = 15000, from = 0) {
    try {
      return await waitFor(() => this.msgs.slice(from).find(pred), what, timeoutMs);
    } catch (e) {
      e.message += `\nclosed: ${JSON.stringify(this.closed)}; last messages: ${
        JSON.stringify(this.msgs.slice(-5)).slice(0, 3000)}`;
      throw e;
    }
  }

  of(type) {
    return this.msgs.filter((m) => m.type === type);
  }

  close() {
    sockets.delete(this.ws);
    this.ws.close();
    return waitFor(() => this.closed, 'the stream closed', 10000);
  }
}

// Opens a WebSocket; opts: auth (default: the bearer token), cookie,
// origin, headers.  Rejects with {status, json, text} when refused.
function wsOpen(d, p, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (opts.auth !== false && !opts.cookie) headers.Authorization = `Bearer ${d.token}`;
  if (opts.cookie) headers.Cookie = opts.cookie;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${d.port}${p}`, {
      headers, origin: opts.origin, perMessageDeflate: false, handshakeTimeout: 10000,
    });
    const c = new Client(ws);
    ws.once('open', () => { sockets.add(ws); resolve(c); });
    ws.once('unexpected-response', (req, res) => {
      let text = '';
      res.on('data', (x) => { text += x; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
        const e = new Error(`refused: ${res.statusCode} ${text}`);
        Object.assign(e, { status: res.statusCode, headers: res.headers, text, json });
        reject(e);
      });
    });
    ws.once('error', reject);
  });
}

// A WebSocket handshake by hand.  Resolves with {status, headers, text,
// json, socket, rest}: for a 101 the socket stays open (rest: what came
// after the headers); otherwise the body is read and the socket closed.
function rawUpgrade(port, p, extra = {}, opts = {}) {
  const key = crypto.randomBytes(16).toString('base64');
  const hdrs = {
    Host: `127.0.0.1:${port}`, Upgrade: 'websocket', Connection: 'Upgrade',
    'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13', ...extra,
  };
  for (const [k, v] of Object.entries(hdrs)) if (v === null) delete hdrs[k];
  const head = `GET ${p} HTTP/1.1\r\n${Object.entries(hdrs).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    sockets.add(s);
    let buf = Buffer.alloc(0);
    let res = null;
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`no answer to ${p}`)); }, 10000);
    const done = (r) => { clearTimeout(timer); resolve(r); };
    s.on('error', (e) => { clearTimeout(timer); if (!res) reject(e); });
    s.on('connect', () => s.write(head));
    const onData = (x) => {
      buf = Buffer.concat([buf, x]);
      if (!res) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(lines[0].split(' ')[1]);
        const headers = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        res = { status, headers, socket: s };
        buf = buf.subarray(end + 4);
        if (status === 101) {
          s.removeListener('data', onData);
          if (opts.pause) s.pause();
          res.accept = headers['sec-websocket-accept'];
          res.acceptOk = res.accept === crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
          res.rest = buf;
          done(res);
          return;
        }
      }
      const len = Number(res.headers['content-length']);
      if (Number.isFinite(len) && buf.length >= len) finishBody();
    };
    const finishBody = () => {
      if (res.text !== undefined) return;
      res.text = buf.toString('utf8');
      try { res.json = JSON.parse(res.text); } catch (_) { /* not JSON */ }
      s.destroy();
      sockets.delete(s);
      done(res);
    };
    s.on('data', onData);
    s.on('end', () => { if (res && res.status !== 101) finishBody(); });
  });
}

// Server frames (unmasked) out of buf: {msgs: [text or {close}], rest}.
function decodeFrames(buf) {
  const out = [];
  let frag = null;
  let off = 0;
  for (;;) {
    if (buf.length - off < 2) break;
    const b0 = buf[off];
    const b1 = buf[off + 1];
    let len = b1 & 0x7f;
    let hl = 2;
    if (len === 126) {
      if (buf.length - off < 4) break;
      len = buf.readUInt16BE(off + 2);
      hl = 4;
    } else if (len === 127) {
      if (buf.length - off < 10) break;
      len = Number(buf.readBigUInt64BE(off + 2));
      hl = 10;
    }
    if (b1 & 0x80) hl += 4; // a masked server frame would be a bug, still parse it
    if (buf.length - off < hl + len) break;
    const payload = buf.subarray(off + hl, off + hl + len);
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    off += hl + len;
    if (opcode === 8) {
      out.push({ close: payload.length >= 2 ? payload.readUInt16BE(0) : null });
    } else if (opcode === 1 || opcode === 0) {
      frag = frag ? Buffer.concat([frag, payload]) : payload;
      if (fin) { out.push(frag.toString('utf8')); frag = null; }
    }
    // ping (9) and pong (10) are ignored
  }
  return { msgs: out, rest: buf.subarray(off) };
}

// A masked client frame with a short payload (under 126 bytes).
function clientFrame(opcode, payload) {
  const mask = crypto.randomBytes(4);
  const data = Buffer.from(payload);
  const masked = Buffer.from(data.map((b, i) => b ^ mask[i % 4]));
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | data.length]), mask, masked]);
}

// The kernel's queues of the loopback TCP connection of a socket of ours
// to the daemon: {ours: bytes received and not read yet, theirs: bytes
// the daemon's end could not send yet, state of ours}.  Both ends are
// matched, as an old connection in TIME_WAIT may have had the same port.
function tcpQueues(sock) {
  const hex = (n) => `:${n.toString(16).toUpperCase().padStart(4, '0')}`;
  const here = hex(sock.localPort);
  const there = hex(sock.remotePort);
  const out = { ours: null, theirs: null, state: null };
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const [tx, rx] = f[4].split(':').map((x) => parseInt(x, 16));
    const st = parseInt(f[3], 16);
    if (f[1].endsWith(here) && f[2].endsWith(there) && (out.state === null || st === 1)) {
      out.ours = rx;
      out.state = st === 1 ? 'established' : `state ${st}`;
    }
    if (f[1].endsWith(there) && f[2].endsWith(here) && (st === 1 || out.theirs === null)) out.theirs = tx;
  }
  return out;
}

// Times one request.
async function timed(fn) {
  const t0 = Date.now();
  const r = await fn();
  return { r, ms: Date.now() - t0 };
}

// -------------------------------------------------------------------- setup

let depot;
let D; // the shared daemon

test.before(async () => {
  depot = await new Depot().start();
  depot.put('com.test', 'console', '1', svcZip());
  // Downloaded slowly (4 KB every 50 ms), so its job reports progress.
  const slow = depot.put('com.test', 'slow', '1', makeZip([
    { name: 'bin/start', data: '#!/bin/sh\nexec sleep 1000\n', mode: 0o755 },
    { name: 'lib/blob.bin', data: crypto.randomBytes(160 * 1024) },
  ]));
  depot.behaviour.set(slow, 'slow');
  D = await startDaemon();
  await installArtifact(D, GAV);
});

test.afterEach(async () => {
  closeAll();
  if (D && !D.exited) await removeAll(D);
});

test.after(async () => {
  try {
    if (D) await finish(D);
  } finally {
    for (const p of prefixes) killLeftovers(p);
    if (depot) await depot.stop();
    for (const p of prefixes) fs.rmSync(p, { recursive: true, force: true });
    prefixes.clear();
  }
});

// -------------------------------------------------------------------- login

test('login: POST /login trades the token for an HttpOnly SameSite=Strict cookie; logout expires it', async (t) => {
  const self = `http://127.0.0.1:${D.port}`;
  // Not logged in: the console's probe answers 401.
  assertProblem(await request(D.port, { path: '/api/v1/node' }), 401);

  let r = await request(D.port, { method: 'POST', path: '/login', body: { token: D.token } });
  assert.equal(r.status, 204, r.text);
  assert.equal(r.text, '', '204 has no body');
  const { name, header, value } = sessionCookie(r, D.port);
  assert.match(header, /;\s*HttpOnly/i);
  assert.match(header, /;\s*SameSite=Strict/i);
  assert.match(header, /;\s*Path=\//i);
  assert.doesNotMatch(header, /;\s*Secure/i, 'no Secure flag over plain HTTP');
  assert.ok(value.length >= 32, `a session value, not empty: ${header}`);
  assert.ok(!value.includes(D.token), 'the cookie is not the token itself');
  const cookie = `${name}=${value}`;

  r = await request(D.port, { path: '/api/v1/node', headers: { Cookie: cookie } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.pid, D.pid);
  t.diagnostic(`POST /login and GET /?token= give the same cookie: ${
    cookie === await cookieOf(D)}`);

  // The console's own page (Origin is this node) may log in too.
  r = await request(D.port, { method: 'POST', path: '/login', body: { token: D.token },
    headers: { Origin: self } });
  assert.equal(r.status, 204, r.text);

  // Wrong token, malformed bodies.
  r = await request(D.port, { method: 'POST', path: '/login', body: { token: 'f'.repeat(64) } });
  assertProblem(r, 401, /the token is wrong/);
  assert.equal(r.headers['set-cookie'], undefined, 'no cookie for a wrong token');
  r = await request(D.port, { method: 'POST', path: '/login', body: { token: '' } });
  assert.ok([400, 401].includes(r.status), `an empty token: ${r.status}`);
  assertProblem(r, r.status);
  assert.equal(r.headers['set-cookie'], undefined);
  for (const body of [{}, { token: 5 }, { token: null }, [D.token]]) {
    r = await request(D.port, { method: 'POST', path: '/login', body });
    assertProblem(r, 400);
    assert.equal(r.headers['set-cookie'], undefined);
  }
  assertProblem(await request(D.port, { method: 'POST', path: '/login', body: '{"token":',
    headers: { 'Content-Type': 'application/json' } }), 400);
  // A form (what a foreign page can post without asking) is refused.
  r = await request(D.port, { method: 'POST', path: '/login', body: `token=${D.token}`,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  assert.equal(r.status, 415, r.text);
  assert.equal(r.headers['set-cookie'], undefined);

  // From a foreign page: 403, even with the right token.
  for (const origin of ['http://evil.example', `http://localhost:${D.port}`, 'null', `https://127.0.0.1:${D.port}`]) {
    r = await request(D.port, { method: 'POST', path: '/login', body: { token: D.token },
      headers: { Origin: origin } });
    assertProblem(r, 403);
    assert.equal(r.headers['set-cookie'], undefined, `no cookie for Origin ${origin}`);
  }
  // A foreign Host (DNS rebinding): 403.
  r = await request(D.port, { method: 'POST', path: '/login', body: { token: D.token },
    headers: { Host: 'evil.example' } });
  assertProblem(r, 403);
  // GET is not how one logs in.
  r = await request(D.port, { path: '/login' });
  assert.ok([404, 405].includes(r.status), `GET /login: ${r.status}`);

  // Logout: 204 and a Set-Cookie that ends the cookie.
  r = await request(D.port, { method: 'POST', path: '/logout', headers: { Cookie: cookie, Origin: self } });
  assert.equal(r.status, 204, r.text);
  const out = sessionCookie(r, D.port).header;
  const maxAge = /;\s*Max-Age=(-?\d+)/i.exec(out);
  const expires = /;\s*Expires=([^;]+)/i.exec(out);
  assert.ok((maxAge && Number(maxAge[1]) <= 0) ||
    (expires && Date.parse(expires[1]) < Date.now()), `the cookie expires: ${out}`);
  assert.match(out, /;\s*Path=\//i, 'the same Path, or the browser keeps the old cookie');
  assert.match(out, /;\s*HttpOnly/i);
  // A browser drops the cookie: the console's probe answers 401 again.
  assertProblem(await request(D.port, { path: '/api/v1/node' }), 401);
  // Logout from a foreign page is refused like every state-changing request.
  r = await request(D.port, { method: 'POST', path: '/logout',
    headers: { Cookie: cookie, Origin: 'http://evil.example' } });
  assertProblem(r, 403);
  assert.equal(r.headers['set-cookie'], undefined);
  // The cookie value is derived from the token (README): a copy kept
  // past logout still works until the token changes. Noted, not asserted.
  r = await request(D.port, { path: '/api/v1/node', headers: { Cookie: cookie } });
  t.diagnostic(`old cookie replayed after logout: ${r.status}`);
});

// ------------------------------------------------------------ static files

const TYPES = {
  '.html': /^text\/html\b/, '.js': /^text\/javascript\b/, '.css': /^text\/css\b/,
  '.svg': /^image\/svg\+xml\b/, '.json': /^application\/json\b/, '.png': /^image\/png$/,
  '.ico': /^image\/x-icon$/,
};

// The contract's policy, directive by directive.
const CSP = {
  'default-src': "'self'", 'script-src': "'self'", 'style-src': "'self'",
  'img-src': "'self' data:", 'connect-src': "'self'", 'object-src': "'none'",
  'base-uri': "'none'", 'form-action': "'self'", 'frame-ancestors': "'none'",
};

function assertPageHeaders(r, what) {
  assert.ok(r.headers.etag, `${what}: ETag`);
  assert.match(r.headers['cache-control'] || '', /\bno-cache\b/, `${what}: Cache-Control`);
  assert.equal(r.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`);
  const csp = r.headers['content-security-policy'] || '';
  assert.match(csp, /frame-ancestors 'none'/, `${what}: CSP ${csp}`);
  assert.match(csp, /default-src 'self'/, `${what}: CSP ${csp}`);
  assert.match(csp, /script-src 'self'/, `${what}: CSP ${csp}`);
  assert.match(csp, /object-src 'none'/, `${what}: CSP ${csp}`);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*|https?:/, `${what}: CSP ${csp}`);
  const got = Object.fromEntries(csp.split(';').map((x) => x.trim()).filter(Boolean)
    .map((x) => [x.split(/\s+/)[0], x.split(/\s+/).slice(1).join(' ')]));
  for (const [k, v] of Object.entries(CSP)) assert.equal(got[k], v, `${what}: CSP ${k} in ${csp}`);
}

test('static files: index and every asset it reaches, content types, ETag and 304, CSP, nosniff; nothing outside the embedded set', async (t) => {
  const r = await request(D.port, { path: '/' });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers['content-type'], TYPES['.html']);
  assertPageHeaders(r, 'GET /');
  // The page works under its own CSP: no inline script, no inline style.
  assert.doesNotMatch(r.text, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline <script>');
  assert.doesNotMatch(r.text, /<style\b/i, 'no <style> block');
  assert.doesNotMatch(r.text, /\sstyle\s*=/i, 'no style="" attribute');
  assert.doesNotMatch(r.text, /\son[a-z]+\s*=/i, 'no inline event handler');
  assert.doesNotMatch(r.text, /(src|href)\s*=\s*["']?(https?:)?\/\//i, 'nothing from another origin');
  assert.match(r.text, /<script[^>]*type="module"[^>]*src="\/assets\/app\.js"/, 'the module script');

  // Every asset reachable from the page and its modules.
  const seen = new Map();
  const queue = [];
  const find = (text, base) => {
    for (const m of text.matchAll(/(?:src|href)\s*=\s*"([^"]+)"|(?:from|import)\s*\(?\s*['"]([^'"]+)['"]|url\(\s*['"]?([^'")]+)/g)) {
      const ref = m[1] || m[2] || m[3];
      if (!ref || ref.startsWith('data:') || ref.startsWith('#')) continue;
      const u = new URL(ref, `http://x${base}`);
      if (u.host === 'x' && u.pathname.startsWith('/assets/') && !seen.has(u.pathname)) {
        seen.set(u.pathname, null);
        queue.push(u.pathname);
      }
    }
  };
  find(r.text, '/');
  while (queue.length) {
    const p = queue.shift();
    const a = await request(D.port, { path: p });
    assert.equal(a.status, 200, `${p}: ${a.status}`);
    const ext = path.extname(p);
    assert.ok(TYPES[ext], `${p}: a known extension`);
    assert.match(a.headers['content-type'] || '', TYPES[ext], `${p}: ${a.headers['content-type']}`);
    assertPageHeaders(a, p);
    assert.equal(Number(a.headers['content-length']), Buffer.byteLength(a.text), p);
    seen.set(p, a.headers.etag);
    if (['.js', '.css', '.html'].includes(ext)) find(a.text, p);
    if (ext === '.js') assert.doesNotMatch(a.text, /\beval\s*\(|new Function\s*\(/, `${p}: no eval under the CSP`);
  }
  assert.ok(seen.has('/assets/app.js'), 'app.js is reached');
  t.diagnostic(`assets reached: ${[...seen.keys()].join(' ')}`);
  assert.equal(new Set(seen.values()).size, seen.size, 'distinct files have distinct ETags');

  // Conditional requests: 304 without a body; another tag gets the file.
  for (const [p, etag] of [['/', r.headers.etag], ...seen]) {
    const c = await request(D.port, { path: p, headers: { 'If-None-Match': etag } });
    assert.equal(c.status, 304, `${p} with its ETag`);
    assert.equal(c.text, '', `${p}: 304 has no body`);
    assert.equal(c.headers.etag, etag, `${p}: the 304 repeats the ETag`);
    const list = await request(D.port, { path: p, headers: { 'If-None-Match': `"nope", ${etag}` } });
    assert.equal(list.status, 304, `${p}: a list that holds the ETag`);
    const o = await request(D.port, { path: p, headers: { 'If-None-Match': '"other"' } });
    assert.equal(o.status, 200, `${p} with another ETag`);
    assert.ok(o.text.length > 0);
  }
  const again = await request(D.port, { path: '/' });
  assert.equal(again.headers.etag, r.headers.etag, 'the ETag is stable');
  assert.equal(again.text, r.text);
  const head = await request(D.port, { method: 'HEAD', path: '/assets/app.js' });
  assert.equal(head.status, 200);
  assert.equal(head.text, '');

  // Nothing outside the embedded set.
  for (const p of ['/assets/../src/api.c', '/assets/%2e%2e/src/api.c', '/assets/%2e%2e%2fsrc%2fapi.c',
    '/assets/..%2fMakefile', '/assets/%2e%2e/x', '/assets/nope.js', '/assets/', '/assets',
    '/assets/.', '/assets/app.js/', '/assets/app.js%00.html', '/assets//etc/passwd',
    '/assets/%2fetc%2fpasswd', '/assets/sub/app.js', '/assets/APP.JS', '/index.html/../../README.md',
    '/src/api.c', '/Makefile', '/assets/../../../../etc/passwd']) {
    const x = await request(D.port, { path: p });
    assert.equal(x.status, 404, `${p}: ${x.status} ${x.text.slice(0, 200)}`);
    assert.doesNotMatch(x.text, /#include|root:x:0|^CC\b|\$\(CC\)/m, `${p}: no file from outside`);
  }
  // The problem for a missing asset carries the same protective headers.
  assertProblem(await request(D.port, { path: '/assets/nope.js' }), 404);
  // Static files are GET/HEAD only and honour the Host check.
  const post = await request(D.port, { method: 'POST', path: '/assets/app.js', body: {} });
  assert.ok([404, 405].includes(post.status), `POST an asset: ${post.status}`);
  assertProblem(await request(D.port, { path: '/', headers: { Host: 'evil.example' } }), 403);
  assertProblem(await request(D.port, { path: '/assets/app.js', headers: { Host: 'evil.example' } }), 403);
});

// ------------------------------------------------------------------- events

test('GET /api/v1/events: newest first, paged by before/next, kind exact or prefix*, subject, since; bad values 400; 401 without credentials', async (t) => {
  // Events of several kinds and subjects: two services created and deleted,
  // one failed install.
  const c1 = '1.ev-one.tst.cell';
  const c2 = '1.ev-two.tst.cell';
  await putRunning(D, c1, { artifact: GAV });
  await sleep(5);
  const mid = Date.now();
  await sleep(5);
  await putRunning(D, c2, { artifact: GAV });
  await D.req({ method: 'DELETE', path: `/api/v1/services/${enc(c1)}?purge=true` });
  const j = await D.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: 'com.test:absent:1' } });
  assert.equal(j.status, 202, j.text);
  await waitJob(D, j.json.id);
  // The job's end is saved a moment before its event.
  await waitFor(async () => (await D.req({ path: '/api/v1/events?kind=artifact.install.failed&limit=1' }))
    .json.events.length === 1, 'the artifact.install.failed event');
  await waitFor(async () => (await getSvc(D, c1)).status === 404, 'c1 gone');
  await waitFor(async () => (await D.req({ path: `/api/v1/events?kind=service.deleted&subject=${enc(c1)}` }))
    .json.events.length === 1, 'the service.deleted event');

  let r = await D.req({ path: '/api/v1/events' });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers['content-type'], /^application\/json/);
  const top = r.json.events[0].id;
  const all = dbEvents(D, `where id <= ${top}`);
  assert.ok(all.length > 12, `enough events: ${all.length}`);
  assert.deepEqual(r.json.events, all.slice(0, 100), 'the newest 100, as the store has them');
  if (all.length < 100) assert.equal(r.json.next, null);
  if (all.length > 100) assert.equal(typeof r.json.next, 'string');
  for (const e of r.json.events) {
    assert.deepEqual(Object.keys(e).sort(), ['detail', 'id', 'kind', 'subject', 'time']);
    assert.equal(typeof e.detail, 'object');
  }

  // Paging: limit, then next (which is a path to follow as it is).
  const pages = [];
  let url = '/api/v1/events?limit=5';
  let n = 0;
  while (url) {
    r = await D.req({ path: url });
    assert.equal(r.status, 200, `${url}: ${r.text}`);
    assert.ok(r.json.events.length <= 5);
    if (r.json.next !== null) {
      assert.equal(typeof r.json.next, 'string');
      assert.match(r.json.next, /^\/api\/v1\/events\?/);
      assert.match(r.json.next, new RegExp(`before=${r.json.events.at(-1).id}\\b`), r.json.next);
      assert.match(r.json.next, /limit=5\b/, 'next keeps the limit');
    }
    pages.push(...r.json.events.filter((e) => e.id <= top));
    url = r.json.next;
    assert.ok(++n < 200, 'paging ends');
  }
  assert.deepEqual(pages, all, 'the pages are every event once, newest first');
  r = await D.req({ path: `/api/v1/events?before=${all[3].id}&limit=2` });
  assert.deepEqual(r.json.events, all.slice(4, 6));
  r = await D.req({ path: `/api/v1/events?before=${all.at(-1).id}` });
  assert.deepEqual(r.json.events, []);
  assert.equal(r.json.next, null);
  r = await D.req({ path: '/api/v1/events?limit=1000' });
  assert.equal(r.status, 200, r.text);
  r = await D.req({ path: '/api/v1/events?limit=1' });
  assert.equal(r.json.events.length, 1);

  // kind: exact, or a prefix ending in '*'; subject exact; since.
  const byKind = (k) => all.filter((e) => e.kind === k);
  r = await D.req({ path: `/api/v1/events?kind=service.created&before=${top + 1}` });
  assert.deepEqual(r.json.events, byKind('service.created'));
  assert.ok(r.json.events.length >= 2);
  r = await D.req({ path: `/api/v1/events?kind=service&before=${top + 1}` });
  assert.deepEqual(r.json.events, [], 'exact: service is no kind');
  r = await D.req({ path: `/api/v1/events?kind=${enc('service.*')}&before=${top + 1}&limit=1000` });
  assert.deepEqual(r.json.events, all.filter((e) => e.kind.startsWith('service.')));
  assert.ok(new Set(r.json.events.map((e) => e.kind)).size >= 3, 'several service kinds');
  r = await D.req({ path: `/api/v1/events?kind=${enc('artifact.install.*')}&before=${top + 1}` });
  assert.deepEqual(r.json.events, all.filter((e) => e.kind.startsWith('artifact.install.')));
  assert.ok(r.json.events.some((e) => e.kind === 'artifact.install.failed'));
  r = await D.req({ path: `/api/v1/events?kind=*&before=${top + 1}&limit=1000` });
  assert.deepEqual(r.json.events, all.slice(0, 1000), 'kind=* is the empty prefix: every event');
  // The prefix is literal: no SQL LIKE wildcards.
  for (const k of ['s_rvice.*', '%', '%.*', 'service%', '_*', 'service.\\*']) {
    r = await D.req({ path: `/api/v1/events?kind=${enc(k)}` });
    assert.equal(r.status, 200, `${k}: ${r.text}`);
    assert.deepEqual(r.json.events, [], `kind=${k} matches nothing`);
  }
  r = await D.req({ path: `/api/v1/events?subject=${enc(c1)}&before=${top + 1}` });
  assert.deepEqual(r.json.events, all.filter((e) => e.subject === c1));
  assert.deepEqual(r.json.events.map((e) => e.kind).at(-1), 'service.created');
  assert.ok(r.json.events.some((e) => e.kind === 'service.deleted'));
  r = await D.req({ path: `/api/v1/events?subject=${enc('1.ev-%.tst.cell')}` });
  assert.deepEqual(r.json.events, [], 'subject is exact');
  r = await D.req({ path: `/api/v1/events?since=${mid}&before=${top + 1}` });
  assert.deepEqual(r.json.events, all.filter((e) => e.time >= mid));
  assert.ok(r.json.events.length > 0 && r.json.events.length < all.length);
  const t0 = all.find((e) => e.subject === c2).time;
  r = await D.req({ path: `/api/v1/events?since=${t0}&before=${top + 1}&limit=1000` });
  assert.ok(r.json.events.some((e) => e.time === t0), 'since is inclusive');
  r = await D.req({ path: `/api/v1/events?since=${Date.now() + 3600e3}` });
  assert.deepEqual(r.json.events, []);
  // Filters together, and kept by next.
  r = await D.req({ path: `/api/v1/events?kind=${enc('service.*')}&subject=${enc(c1)}&limit=1&before=${top + 1}` });
  const want = all.filter((e) => e.kind.startsWith('service.') && e.subject === c1);
  assert.deepEqual(r.json.events, want.slice(0, 1));
  const got = [...r.json.events];
  for (let u = r.json.next, i = 0; u; i++) {
    assert.ok(i < 100);
    const p = await D.req({ path: u });
    assert.equal(p.status, 200, `${u}: ${p.text}`);
    got.push(...p.json.events);
    u = p.json.next;
  }
  assert.deepEqual(got, want, 'next keeps kind and subject');

  // Bad values.
  for (const qs of ['limit=0', 'limit=1001', 'limit=-1', 'limit=abc', 'limit=5x', 'limit=1.5',
    'before=abc', 'before=-1', 'before=1x', 'since=abc', 'since=-5', 'since=12abc', 'since=1.5',
    'limit=99999999999999999999']) {
    r = await D.req({ path: `/api/v1/events?${qs}` });
    assertProblem(r, 400);
    t.diagnostic(`${qs}: ${r.json.detail}`);
  }
  // Credentials.
  assertProblem(await request(D.port, { path: '/api/v1/events' }), 401);
  assertProblem(await request(D.port, { path: '/api/v1/events', token: 'f'.repeat(64) }), 401);
  r = await request(D.port, { path: '/api/v1/events?limit=1', headers: { Cookie: await cookieOf(D) } });
  assert.equal(r.status, 200, r.text);
  r = await D.req({ method: 'POST', path: '/api/v1/events', body: {} });
  assert.equal(r.status, 405, r.text);
});

// --------------------------------------------------------------------- runs

test('GET /api/v1/jobs: subject and since filter it, and next keeps them', async () => {
  const t0 = Date.now();
  const ids = [];
  for (const a of ['com.test:jf-a:1', 'com.test:jf-b:1', 'com.test:jf-a:2', 'com.test:jf-a:1']) {
    const r = await D.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: a } });
    assert.equal(r.status, 202, r.text);
    await waitJob(D, r.json.id);
    ids.push(r.json.id);
  }
  let r = await D.req({ path: `/api/v1/jobs?subject=${enc('com.test:jf-a:1')}&since=${t0}` });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.jobs.map((j) => j.id), [ids[3], ids[0]]);
  assert.equal(r.json.next, null);
  r = await D.req({ path: `/api/v1/jobs?subject=${enc('com.test:jf-a:1')}&limit=1` });
  assert.deepEqual(r.json.jobs.map((j) => j.id), [ids[3]]);
  assert.match(r.json.next, /[?&]subject=com\.test%3Ajf-a%3A1(&|$)|[?&]subject=com\.test:jf-a:1(&|$)/);
  r = await D.req({ path: r.json.next });
  assert.deepEqual(r.json.jobs.map((j) => j.id), [ids[0]]);
  r = await D.req({ path: `/api/v1/jobs?since=${Date.now() + 60000}` });
  assert.deepEqual(r.json.jobs, []);
  for (const bad of ['since=x', 'since=-1', 'since=1.5']) {
    assertProblem(await D.req({ path: `/api/v1/jobs?${bad}` }), 400);
  }
});

test('GET /api/v1/services/{c}/runs: every incarnation newest first (pid, reason, times, exit); 404 unknown; kept after delete', async (t) => {
  const c = '1.runs.tst.cell';
  const p = `/api/v1/services/${enc(c)}/runs`;
  assertProblem(await D.req({ path: p }), 404);

  const s1 = await putRunning(D, c, { artifact: GAV });
  let r = await D.req({ method: 'POST', path: `/api/v1/services/${enc(c)}/restart` });
  assert.ok([200, 202].includes(r.status), r.text);
  const s2 = await waitSvc(D, c, (s) => isRunning(s) && s.pid !== s1.pid, 'restarted');
  process.kill(s2.pid, 'SIGKILL');
  const s3 = await waitSvc(D, c, (s) => isRunning(s) && s.pid !== s2.pid, 'running after the kill');

  r = await D.req({ path: p });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.coordinate, c);
  const runs = r.json.runs;
  assert.equal(runs.length, 3, r.text);
  assert.deepEqual(runs.map((x) => x.pid), [s3.pid, s2.pid, s1.pid], 'newest first');
  const rows = q(D, `select id, pid, reason, started_at, ended_at, exit_code, exit_signal, artifact
    from service_runs where coordinate = '${c}' order by id desc`);
  for (const [i, x] of runs.entries()) {
    for (const k of ['id', 'pid', 'reason', 'started_at', 'ended_at', 'exit_code', 'exit_signal', 'artifact']) {
      assert.ok(k in x, `run ${i} has ${k}: ${JSON.stringify(x)}`);
      assert.equal(x[k], rows[i][k], `run ${i}.${k}`);
    }
  }
  assert.equal(runs[2].reason, 'api');
  assert.equal(runs[0].reason, 'restart', 'the start after a crash');
  assert.equal(runs[0].ended_at, null, 'the newest still runs');
  assert.equal(runs[0].exit_code, null);
  assert.equal(runs[1].exit_signal, 9, 'the killed one');
  assert.ok(runs[1].ended_at >= runs[1].started_at);
  assert.ok(runs[2].ended_at !== null);
  assert.ok(runs[0].started_at >= runs[1].ended_at);
  for (const x of runs) assert.equal(x.artifact, GAV);

  r = await D.req({ path: `${p}?limit=1` });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.runs, runs.slice(0, 1));
  // Paged one by one (next, as README documents it), every run once.
  const paged = [];
  for (let u = `${p}?limit=1`, i = 0; u; i++) {
    assert.ok(i < 10);
    const x = await D.req({ path: u });
    assert.equal(x.status, 200, `${u}: ${x.text}`);
    paged.push(...x.json.runs);
    u = x.json.next;
  }
  assert.deepEqual(paged, runs);
  for (const bad of ['limit=0', 'limit=abc', 'limit=-2']) {
    assertProblem(await D.req({ path: `${p}?${bad}` }), 400);
  }
  assertProblem(await request(D.port, { path: p }), 401);
  assertProblem(await D.req({ path: `/api/v1/services/${enc('1.never.tst.cell')}/runs` }), 404);
  r = await D.req({ path: `/api/v1/services/${enc('not a coordinate')}/runs` });
  assert.ok([400, 404].includes(r.status), `bad coordinate: ${r.status}`);

  // Deleted: the history stays, every run ended.
  r = await D.req({ method: 'DELETE', path: `/api/v1/services/${enc(c)}?purge=true` });
  assert.ok([200, 202, 204].includes(r.status), r.text);
  await waitFor(async () => (await getSvc(D, c)).status === 404, 'deleted');
  r = await D.req({ path: p });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.runs.map((x) => x.id), runs.map((x) => x.id));
  assert.ok(r.json.runs.every((x) => x.ended_at !== null), 'every run ended');
});

// ------------------------------------------------------------- the stream

test('/api/v1/stream: auth, Host and Origin checks before the upgrade; hello, events, services and jobs live; 400 without Upgrade', async (t) => {
  const base = '/api/v1/stream';
  const self = `http://127.0.0.1:${D.port}`;
  const bearer = { Authorization: `Bearer ${D.token}` };
  // Refused before the upgrade, with a problem.
  let r = await rawUpgrade(D.port, base);
  assertProblem(r, 401);
  r = await rawUpgrade(D.port, base, { Authorization: `Bearer ${'f'.repeat(64)}` });
  assertProblem(r, 401);
  r = await rawUpgrade(D.port, base, { Cookie: `nodee_session_${D.port}=forged` });
  assertProblem(r, 401);
  r = await rawUpgrade(D.port, base, { ...bearer, Origin: 'http://evil.example' });
  assertProblem(r, 403);
  r = await rawUpgrade(D.port, base, { ...bearer, Origin: `http://localhost:${D.port}` });
  assertProblem(r, 403, /Origin/);
  r = await rawUpgrade(D.port, base, { ...bearer, Origin: 'null' });
  assertProblem(r, 403);
  r = await rawUpgrade(D.port, base, { Cookie: await cookieOf(D), Origin: 'http://evil.example' });
  assertProblem(r, 403, /Origin/);
  r = await rawUpgrade(D.port, base, { ...bearer, Host: 'evil.example' });
  assertProblem(r, 403, /Host/);
  r = await rawUpgrade(D.port, base, { ...bearer, Host: `evil.example:${D.port}`, Origin: `http://evil.example:${D.port}` });
  assertProblem(r, 403, /Host/);
  await assert.rejects(wsOpen(D, base, { auth: false }), (e) => e.status === 401);
  await assert.rejects(wsOpen(D, base, { origin: 'http://evil.example' }), (e) => e.status === 403);
  // Not a WebSocket request at all.
  r = await D.req({ path: base });
  assertProblem(r, 400, /WebSocket endpoint/);
  r = await rawUpgrade(D.port, base, { ...bearer, 'Sec-WebSocket-Version': '8' });
  assert.ok(r.status >= 400 && r.status < 500 && r.status !== 404, `version 8: ${r.status}`);
  r = await rawUpgrade(D.port, base, { ...bearer, 'Sec-WebSocket-Key': null });
  assert.ok(r.status >= 400 && r.status < 500 && r.status !== 404, `no key: ${r.status}`);

  // Accepted: with the bearer token, with the cookie from this node's
  // page (as a browser sends it), and by hand (the accept key is right).
  const newest = () => q(D, 'select max(id) as m from events')[0].m;
  const before = newest();
  const a = await wsOpen(D, base);
  const b = await wsOpen(D, base, { cookie: await cookieOf(D), origin: self });
  const raw = await rawUpgrade(D.port, base, { ...bearer, Origin: self });
  assert.equal(raw.status, 101);
  assert.equal(raw.acceptOk, true, `Sec-WebSocket-Accept ${raw.accept}`);
  raw.socket.destroy();
  const lh = await rawUpgrade(D.port, base, { ...bearer, Host: `localhost:${D.port}`, Origin: `http://localhost:${D.port}` });
  assert.equal(lh.status, 101, 'Host localhost with its own Origin');
  lh.socket.destroy();
  for (const c of [a, b]) {
    const h = await c.wait(() => true, 'a first message');
    assert.equal(h.type, 'hello', JSON.stringify(h));
    assert.ok(h.event_id >= before && h.event_id <= newest(), `hello.event_id ${h.event_id}, newest ${before}`);
  }

  // A new event, a service's changes, a deletion.
  const c = '1.live.tst.cell';
  const from = a.msgs.length;
  r = await put(D, c, { artifact: GAV });
  assert.equal(r.status, 201, r.text);
  const ev = await a.wait((m) => m.type === 'event' && m.event.subject === c && m.event.kind === 'service.created',
    'the service.created event', 15000, from);
  assert.ok(ev.event.id > a.msgs[0].event_id);
  const stored = await D.req({ path: `/api/v1/events?subject=${enc(c)}&kind=service.created` });
  assert.deepEqual(ev.event, stored.json.events[0], 'the event as /api/v1/events has it');
  const run = await a.wait((m) => m.type === 'service' && m.coordinate === c && m.service &&
    m.service.state === 'running', 'the service running', 20000, from);
  const cur = await waitSvc(D, c, isRunning, 'running');
  assert.equal(run.service.pid, cur.pid);
  assert.equal(run.service.coordinate, c);
  assert.deepEqual(Object.keys(run.service).sort(), Object.keys(cur).sort(), 'the same shape as GET');
  await b.wait((m) => m.type === 'service' && m.coordinate === c && m.service && m.service.state === 'running',
    'the cookie stream sees it too');
  const events = a.of('event').map((m) => m.event.id);
  assert.deepEqual(events, [...events].sort((x, y) => x - y), 'events in order');
  assert.equal(new Set(events).size, events.length, 'each event once');
  // A crash: the service's restarts rise.
  process.kill(cur.pid, 'SIGKILL');
  await a.wait((m) => m.type === 'service' && m.coordinate === c && m.service && m.service.restarts > 0 &&
    m.service.state === 'running', 'the restart', 20000, from);
  await a.wait((m) => m.type === 'event' && m.event.subject === c && m.event.kind === 'service.exited',
    'service.exited', 15000, from);
  r = await D.req({ method: 'DELETE', path: `/api/v1/services/${enc(c)}?purge=true` });
  await a.wait((m) => m.type === 'service' && m.coordinate === c && m.service === null, 'service: null', 20000, from);
  await a.wait((m) => m.type === 'event' && m.event.subject === c && m.event.kind === 'service.deleted',
    'service.deleted', 15000, from);

  // A job's progress, throttled, ending in succeeded.
  const jfrom = a.msgs.length;
  const t0 = Date.now();
  r = await D.req({ method: 'POST', path: '/api/v1/artifacts', body: { artifact: 'com.test:slow:1' } });
  assert.equal(r.status, 202, r.text);
  const id = r.json.id;
  const done = await a.wait((m) => m.type === 'job' && m.job.id === id && m.job.state === 'succeeded',
    'the job succeeded', 60000, jfrom);
  const secs = (Date.now() - t0) / 1000;
  const jobs = a.msgs.slice(jfrom).filter((m) => m.type === 'job' && m.job.id === id);
  const final = (await D.req({ path: `/api/v1/jobs/${id}` })).json;
  assert.deepEqual(done.job, final, 'the last message is the job as GET has it');
  assert.equal(jobs.at(-1), done, 'succeeded is the last message of the job');
  const bytes = jobs.map((m) => m.job.bytes_done);
  assert.deepEqual(bytes, [...bytes].sort((x, y) => x - y), `bytes_done never goes back: ${bytes}`);
  assert.ok(new Set(bytes.filter((x) => x > 0 && x < final.bytes_done)).size >= 2,
    `progress in between: ${bytes}`);
  assert.ok(jobs.some((m) => m.job.phase === 'download'), 'the download phase is shown');
  // At most ~4 a second; a burst at the state changes allowed.
  assert.ok(jobs.length <= Math.ceil(secs * 4) + 4, `${jobs.length} job messages in ${secs} s`);
  t.diagnostic(`${jobs.length} job messages in ${secs.toFixed(1)} s`);
  await a.wait((m) => m.type === 'event' && m.event.kind === 'artifact.install.succeeded' &&
    m.event.subject === 'com.test:slow:1', 'the install event', 15000, jfrom);
  assert.ok(!a.of('dropped').length && !b.of('dropped').length, 'a reader that keeps up loses nothing');
  assert.deepEqual([...a.bad, ...b.bad], [], 'every message is one JSON object in a text frame');
  // Every event after hello, once, in order, as the store has it.
  const hello = a.msgs[0].event_id;
  const lastSeen = a.of('event').at(-1).event.id;
  assert.deepEqual(a.of('event').map((m) => m.event),
    dbEvents(D, `where id > ${hello} and id <= ${lastSeen}`).reverse(), 'no event missed');
  assert.equal(a.closed, null);

  // A close from the client is answered.
  await a.close();
  await b.close();
  r = await D.req({ method: 'DELETE', path: '/api/v1/artifacts/com.test/slow/1' });
  if (r.status === 202) await waitJob(D, r.json.id);
});

// ------------------------------------------------------------------ the cap

test('max_streams: past the cap the upgrade is refused with 503 naming the limit; a closed stream frees its place', async (t) => {
  const d = await startDaemon(['# the cap under test', 'max_streams = 2']);
  try {
    // Refusals before the upgrade take no place.
    for (let i = 0; i < 10; i++) assertProblem(await rawUpgrade(d.port, '/api/v1/stream'), 401);
    // Eight at once: the cap holds under a race.
    const race = await Promise.allSettled(Array.from({ length: 8 }, () => wsOpen(d, '/api/v1/stream')));
    const won = race.filter((x) => x.status === 'fulfilled').map((x) => x.value);
    assert.equal(won.length, 2, `accepted at once: ${won.length}`);
    for (const x of race.filter((y) => y.status === 'rejected')) assert.equal(x.reason.status, 503, x.reason.message);
    for (const w of won) await w.wait((m) => m.type === 'hello', 'hello');
    await Promise.all(won.map((w) => w.close()));
    const s1 = await waitFor(() => wsOpen(d, '/api/v1/stream').catch((e) => {
      if (e.status !== 503) throw e;
      return null;
    }), 'the places of the closed streams free again', 10000);
    const s2 = await waitFor(() => wsOpen(d, '/api/v1/stream').catch((e) => {
      if (e.status !== 503) throw e;
      return null;
    }), 'the places of the closed streams free again', 10000);
    await s1.wait((m) => m.type === 'hello', 'hello 1');
    await s2.wait((m) => m.type === 'hello', 'hello 2');
    let r = await rawUpgrade(d.port, '/api/v1/stream', { Authorization: `Bearer ${d.token}` });
    assertProblem(r, 503, /max_streams|\b2\b/);
    assert.ok(r.headers['retry-after'] === undefined || /^\d+$/.test(r.headers['retry-after']),
      `Retry-After: ${r.headers['retry-after']}`);
    t.diagnostic(`503 Retry-After: ${r.headers['retry-after']}`);
    t.diagnostic(`503 detail: ${r.json.detail}`);
    await assert.rejects(wsOpen(d, '/api/v1/stream'), (e) => e.status === 503);
    // Log follows count too.
    r = await rawUpgrade(d.port, `/api/v1/services/${enc('1.any.tst.cell')}/logs/follow?stream=stdout`,
      { Authorization: `Bearer ${d.token}` });
    assert.ok([503, 404].includes(r.status), `a log follow past the cap: ${r.status}`);
    // Still 401/403 first for those who may not open one at all.
    assertProblem(await rawUpgrade(d.port, '/api/v1/stream'), 401);
    // The plain API is not capped.
    assert.equal((await d.req({ path: '/api/v1/node' })).status, 200);

    // A clean close frees a place.
    await s1.close();
    const s3 = await waitFor(() => wsOpen(d, '/api/v1/stream').catch((e) => {
      if (e.status !== 503) throw e;
      return null;
    }), 'a place after a close', 10000);
    await s3.wait((m) => m.type === 'hello', 'hello 3');
    await assert.rejects(wsOpen(d, '/api/v1/stream'), (e) => e.status === 503);
    // So does a client that vanishes without a close frame.
    s2.ws.terminate();
    const s4 = await waitFor(() => wsOpen(d, '/api/v1/stream').catch((e) => {
      if (e.status !== 503) throw e;
      return null;
    }), 'a place after a vanished client', 15000);
    await s4.wait((m) => m.type === 'hello', 'hello 4');
    // The streams still work.
    r = await put(d, '1.cap.tst.cell', { artifact: GAV });
    for (const s of [s3, s4]) {
      await s.wait((m) => m.type === 'event' && m.event.subject === '1.cap.tst.cell', 'an event on a stream');
    }
  } finally {
    await finish(d);
  }
});

// ----------------------------------------------------------- a slow reader

test('clients that reset before the 101 leave no place taken, no gate held, and a prompt SIGTERM', async (t) => {
  // libmicrohttpd never starts an upgrade whose client reset before the
  // answer, and Ulfius 2.7 never tells: nodee must not count on it.
  const d = await startDaemon(['max_streams = 2']);
  const head = `GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\n` +
    `Authorization: Bearer ${d.token}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
  try {
    for (let i = 0; i < 60; i++) {
      await new Promise((resolve) => {
        const s = net.connect(d.port, '127.0.0.1', () => {
          s.write(head);
          // Gone at once, with a reset, at several moments around the handler.
          setTimeout(() => { s.resetAndDestroy(); resolve(); }, i % 4);
        });
        s.on('error', () => resolve());
      });
    }
    // Both places can be taken (at once, or after nodee gave back those
    // of upgrades that never started), and the streams work.
    const t0 = Date.now();
    const open = [];
    while (open.length < 2) {
      const w = await wsOpen(d, '/api/v1/stream').catch((e) => {
        if (e.status !== 503) throw e;
        return null;
      });
      if (w) open.push(w);
      else if (Date.now() - t0 > 20000) assert.fail('places still taken 20 s after the resets');
      else await sleep(250);
    }
    for (const w of open) await w.wait((m) => m.type === 'hello', 'hello');
    t.diagnostic(`both places free ${Date.now() - t0} ms after the resets`);
    // The plain API answers at once (no HTTP thread waits on the gate).
    const t1 = Date.now();
    assert.equal((await d.req({ path: '/api/v1/node' })).status, 200);
    assert.ok(Date.now() - t1 < 1500, `GET /api/v1/node took ${Date.now() - t1} ms`);
    for (const w of open) await w.close();
    // SIGTERM ends it within the grace (10 s) and cleanly.
    const t2 = Date.now();
    d.stoppedHere = true;
    const ex = await d.stop();
    assert.deepEqual(ex, { code: 0, signal: null }, d.stderr.split('\n').slice(-20).join('\n'));
    assert.ok(Date.now() - t2 < 15000, `SIGTERM took ${Date.now() - t2} ms`);
    assert.equal(sanitizerReport(d.stderr), null);
    t.diagnostic(`SIGTERM after the resets: ${Date.now() - t2} ms`);
  } finally {
    if (!d.exited) await finish(d);
  }
});

test('a slow reader never blocks the daemon or other readers: it gets a dropped notice or is disconnected', async (t) => {
  const d = await startDaemon();
  try {
    await installArtifact(d, GAV);
    const fast = await wsOpen(d, '/api/v1/stream');
    await fast.wait((m) => m.type === 'hello', 'hello');
    // The slow one: handshake by hand, then never read.
    const slow = await rawUpgrade(d.port, '/api/v1/stream', { Authorization: `Bearer ${d.token}` }, { pause: true });
    assert.equal(slow.status, 101);

    // Watch the daemon while it is flooded.
    const lat = { healthz: [], node: [], jobs: [], services: [] };
    let watching = true;
    const label = (what, p) => p.catch((e) => {
      e.message = `${what} at ${new Date().toISOString()}: ${e.message}`;
      throw e;
    });
    const watcher = (async () => {
      while (watching) {
        lat.healthz.push((await timed(() => label('GET /healthz', request(d.port, { path: '/healthz' })))).ms);
        lat.node.push((await timed(() => label('GET /api/v1/node', d.req({ path: '/api/v1/node' })))).ms);
        lat.jobs.push((await timed(() => label('GET /api/v1/jobs', d.req({ path: '/api/v1/jobs?limit=5' })))).ms);
        lat.services.push((await timed(() => label('GET /api/v1/services', d.req({ path: '/api/v1/services' })))).ms);
        await sleep(50);
      }
    })();
    watcher.catch(() => {}); // awaited below

    // Large messages first (a spec of ~240 KB travels in every service
    // message) to fill the socket, then many small ones (a failed install
    // is two events and a few job messages) to fill the daemon's queue.
    const big = {};
    for (let i = 0; i < 4; i++) big[`PAD${i}`] = crypto.randomBytes(45000).toString('base64');
    const putDone = new Map();
    const writes = [];
    let maxQ = 0; // the most the slow reader's receive queue held
    const t0 = Date.now();
    const write = async (what, fn, ok) => {
      const w = await timed(() => label(what, fn()));
      assert.ok(ok.includes(w.r.status), `${what}: ${w.r.status} ${w.r.text.slice(0, 300)}`);
      writes.push(w.ms);
      const qs = tcpQueues(slow.socket);
      maxQ = Math.max(maxQ, qs.ours || 0);
      return w.r;
    };
    for (let i = 0; i < 6; i++) {
      const c = `${i}.flood.tst.cell`;
      await write(`PUT ${c}`, () => put(d, c, { artifact: GAV, env: big }), [201]);
      putDone.set(c, Date.now());
    }
    for (let i = 0; i < 40; i++) {
      const c = `${i}.churn.tst.cell`;
      await write(`PUT ${c}`, () => put(d, c, { artifact: GAV }), [201]);
      putDone.set(c, Date.now());
      await write(`DELETE ${c}`, () => d.req({ method: 'DELETE', path: `/api/v1/services/${enc(c)}?purge=true` }),
        [200, 202, 204]);
    }
    const failed = [];
    for (let i = 0; i < 450; i++) {
      const r = await write('POST /api/v1/artifacts', () => d.req({ method: 'POST', path: '/api/v1/artifacts',
        body: { artifact: `com.test:absent:${i}` } }), [202]);
      failed.push(r.json.id);
    }
    await waitJob(d, failed.at(-1));
    const q1 = tcpQueues(slow.socket);
    t.diagnostic(`flood took ${Date.now() - t0} ms, ${fast.msgs.length} messages; slow reader's queue held at most ${maxQ} B; now ${JSON.stringify(q1)}`);
    assert.ok(maxQ > 5e4, 'the slow reader really was behind (its receive queue full)');

    // The fast reader saw every creation, promptly, and lost nothing.
    const late = [];
    for (const [c, at] of putDone) {
      const m = await fast.wait((x) => x.type === 'event' && x.event.kind === 'service.created' && x.event.subject === c,
        `the fast reader sees ${c}`, 20000);
      late.push(m.at - at);
    }
    watching = false;
    await watcher;
    const max = (a) => Math.max(...a);
    t.diagnostic(`max latency: healthz ${max(lat.healthz)} ms, node ${max(lat.node)} ms, jobs ${max(lat.jobs)} ms, services ${
      max(lat.services)} ms, writes ${max(writes)} ms, event delivery ${max(late)} ms`);
    assert.ok(lat.healthz.length > 5);
    assert.ok(max(lat.healthz) < FAST_MS, `healthz ${max(lat.healthz)} ms`);
    assert.ok(max(lat.node) < FAST_MS, `GET node ${max(lat.node)} ms`);
    assert.ok(max(lat.jobs) < FAST_MS, `GET jobs ${max(lat.jobs)} ms`);
    // (GET /api/v1/services carries 6 specs of 240 KB: timed, not judged.)
    // A write starts or stops a process: slower on a loaded machine, but
    // one held up by a stream would wait for its 30 s.
    assert.ok(max(writes) < 5 * FAST_MS, `PUT/DELETE/POST ${max(writes)} ms`);
    assert.ok(max(late) < 2 * FAST_MS, `events reach the fast reader within ${max(late)} ms`);
    assert.deepEqual(fast.of('dropped'), [], 'the fast reader lost nothing');
    assert.equal(fast.closed, null);
    // The supervisor was not held up: the big services run.
    const list = (await d.req({ path: '/api/v1/services' })).json.services;
    await waitFor(async () => (await d.req({ path: '/api/v1/services' })).json.services.every(isRunning),
      'the flood services running', 30000);
    assert.ok(list.length >= 6);

    // Now the slow reader reads: a dropped notice, or the daemon has
    // closed the connection.
    let buf = slow.rest;
    let ended = null;
    slow.socket.on('data', (x) => { buf = Buffer.concat([buf, x]); });
    slow.socket.on('end', () => { ended = ended || 'end'; });
    slow.socket.on('close', () => { ended = ended || 'close'; });
    slow.socket.on('error', (e) => { ended = `error ${e.code}`; });
    slow.socket.resume();
    const outcome = await waitFor(() => {
      const { msgs } = decodeFrames(buf);
      const dropped = msgs.find((m) => typeof m === 'string' && JSON.parse(m).type === 'dropped');
      if (dropped) return { dropped: JSON.parse(dropped), msgs };
      if (msgs.some((m) => typeof m === 'object')) return { closeFrame: msgs.find((m) => typeof m === 'object') };
      if (ended) return { ended };
      return null;
    }, 'a dropped notice or a disconnection', 30000);
    t.diagnostic(`slow reader: ${JSON.stringify(outcome.dropped || outcome.closeFrame || outcome.ended)}`);
    if (outcome.dropped) {
      assert.ok(outcome.dropped.count > 0, JSON.stringify(outcome.dropped));
      assert.equal(typeof outcome.dropped.detail, 'string');
      const parsed = outcome.msgs.filter((m) => typeof m === 'string').map((m) => JSON.parse(m));
      assert.equal(parsed[0].type, 'hello');
      // Still a stream: what happens next arrives.
      const c = '1.after.tst.cell';
      await put(d, c, { artifact: GAV });
      await waitFor(() => decodeFrames(buf).msgs.some((m) => typeof m === 'string' &&
        m.includes('"service.created"') && m.includes(c)), 'the slow reader is current again', 20000);
    }
    slow.socket.destroy();
    await fast.close();
  } finally {
    await finish(d);
  }
});

test('a slow log follower: a service writing fast does not block the daemon', async (t) => {
  const d = await startDaemon();
  try {
    await installArtifact(d, GAV);
    const c = '1.loud.tst.cell';
    const fast = await wsOpen(d, '/api/v1/stream');
    // ~5 MB/s of log: a follower that never reads falls behind at once.
    const s = await putRunning(d, c, { artifact: GAV, command: 'bin/start' });
    const slow = await rawUpgrade(d.port, `/api/v1/services/${enc(c)}/logs/follow?stream=stdout&tail=1`,
      { Authorization: `Bearer ${d.token}` }, { pause: true });
    assert.equal(slow.status, 101);
    const log = path.join(rundir(d.prefix, c), 'log/stdout');
    const line = `${'y'.repeat(199)}\n`;
    const chunk = line.repeat(5000); // 1 MB
    const lat = [];
    for (let i = 0; i < 20; i++) {
      fs.appendFileSync(log, chunk);
      lat.push((await timed(() => request(d.port, { path: '/healthz' }))).ms);
      lat.push((await timed(() => d.req({ path: `/api/v1/services/${enc(c)}` }))).ms);
    }
    let q1;
    await waitFor(() => {
      q1 = tcpQueues(slow.socket);
      return q1.ours > 5e4;
    }, 'the follower\'s socket full', 10000).catch(() => {});
    t.diagnostic(`slow follower queues: ours ${q1.ours}, daemon's ${q1.theirs}; max latency ${Math.max(...lat)} ms`);
    assert.ok(q1.ours > 5e4, `the follower really is behind: ${JSON.stringify(q1)}`);
    assert.ok(Math.max(...lat) < FAST_MS, `the API answers within ${Math.max(...lat)} ms`);
    // Another stream still gets news.
    await d.req({ method: 'POST', path: `/api/v1/services/${enc(c)}/restart` });
    await fast.wait((m) => m.type === 'service' && m.coordinate === c && m.service &&
      m.service.pid !== s.pid && m.service.state === 'running', 'the restart on the other stream', 20000);
    slow.socket.destroy();
    await fast.close();
  } finally {
    await finish(d);
  }
});

test('stuck readers do not hold up a stop: SIGTERM with full streams ends promptly and cleanly', async (t) => {
  const d = await startDaemon();
  try {
    await installArtifact(d, GAV);
    const auth = { Authorization: `Bearer ${d.token}` };
    const c = '1.stuck.tst.cell';
    await putRunning(d, c, { artifact: GAV, command: 'bin/start' });
    const stuck = await rawUpgrade(d.port, '/api/v1/stream', auth, { pause: true });
    const follow = await rawUpgrade(d.port, `/api/v1/services/${enc(c)}/logs/follow?stream=stdout`, auth, { pause: true });
    // A connection that never finishes its request head.
    const half = net.connect(d.port, '127.0.0.1');
    sockets.add(half);
    half.on('error', () => {});
    half.write(`GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\n`);
    const big = {};
    for (let i = 0; i < 4; i++) big[`PAD${i}`] = crypto.randomBytes(45000).toString('base64');
    for (let i = 0; i < 6; i++) assert.equal((await put(d, `${i}.big.tst.cell`, { artifact: GAV, env: big })).status, 201);
    fs.appendFileSync(path.join(rundir(d.prefix, c), 'log/stdout'), `${'z'.repeat(199)}\n`.repeat(25000));
    const behind = () => [tcpQueues(stuck.socket), tcpQueues(follow.socket)];
    await waitFor(() => behind().every((x) => x.ours > 5e4), 'both readers behind', 30000).catch((e) => {
      e.message += `: ${JSON.stringify(behind())}`;
      throw e;
    });
    await removeAll(d);
    const t0 = Date.now();
    d.stoppedHere = true;
    await stopClean(d);
    const ms = Date.now() - t0;
    t.diagnostic(`stopped in ${ms} ms with two stuck readers`);
    assert.ok(ms < 12000, `a stop waits at most 10 s for requests in flight: ${ms} ms`);
    assert.match(d.stderr, /stopped|stopping/i);
  } finally {
    await finish(d);
  }
});

// ------------------------------------------------- clients that vanish

test('clients that vanish mid-stream (and mid-handshake, and mid-follow) leave no descriptor, thread or memory behind', async (t) => {
  const d = await startDaemon();
  try {
    await installArtifact(d, GAV);
    const c = '1.vanish.tst.cell';
    await putRunning(d, c, { artifact: GAV, command: 'bin/chatty' });
    const follow = `/api/v1/services/${enc(c)}/logs/follow?stream=stdout&tail=5`;
    const auth = { Authorization: `Bearer ${d.token}` };
    // One of each first, so lazily made things exist before the baseline.
    (await wsOpen(d, '/api/v1/stream')).ws.terminate();
    (await wsOpen(d, follow)).ws.terminate();
    await sleep(500);
    const fd0 = fdCount(d.pid);
    const fdl0 = fdList(d.pid);
    const th0 = threadCount(d.pid);

    // Events flow meanwhile, so the daemon writes to sockets that die.
    let churning = true;
    const churn = (async () => {
      for (let i = 0; churning; i++) {
        const x = `${i}.ch.tst.cell`;
        await put(d, x, { artifact: GAV });
        await d.req({ method: 'DELETE', path: `/api/v1/services/${enc(x)}?purge=true` });
      }
    })();

    for (let i = 0; i < 50; i++) {
      // Accepted, then the socket is destroyed (no close frame).
      const s = await rawUpgrade(d.port, '/api/v1/stream', auth);
      assert.equal(s.status, 101);
      if (i % 3 === 0) await sleep(20);
      s.socket.destroy();
      // Half a frame, then gone.
      const h = await rawUpgrade(d.port, '/api/v1/stream', auth);
      h.socket.write(clientFrame(1, 'hello there').subarray(0, 5));
      h.socket.destroy();
      // A close frame, then gone without waiting for the answer.
      const k = await rawUpgrade(d.port, '/api/v1/stream', auth);
      k.socket.write(clientFrame(8, Buffer.from([0x03, 0xe8])));
      k.socket.destroy();
      // Gone during the handshake.
      const half = net.connect(d.port, '127.0.0.1');
      half.on('error', () => {});
      half.write(`GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\nUpgrade: websocket\r\n`);
      await sleep(2);
      half.destroy();
      // A log follow that reads a little, then vanishes.
      const f = await rawUpgrade(d.port, follow, auth);
      assert.equal(f.status, 101);
      if (i % 2 === 0) {
        await new Promise((resolve) => {
          if (f.rest.length) { resolve(); return; }
          f.socket.once('data', resolve);
          setTimeout(resolve, 500);
        });
      }
      f.socket.destroy();
      // And a ws client terminated at once.
      const w = await wsOpen(d, i % 2 ? '/api/v1/stream' : follow);
      w.ws.terminate();
    }
    churning = false;
    await churn;

    // Healthy: it answers, and a new stream works.
    assert.equal((await request(d.port, { path: '/healthz' })).status, 200);
    const s = await wsOpen(d, '/api/v1/stream');
    await s.wait((m) => m.type === 'hello', 'hello after the churn');
    await put(d, '1.after.tst.cell', { artifact: GAV });
    await s.wait((m) => m.type === 'event' && m.event.subject === '1.after.tst.cell', 'an event after the churn');
    await s.close();
    // The descriptors and threads go back to where they were (a
    // connection closed in the middle of its request head may wait for
    // the 30 s connection timeout).
    const tf = Date.now();
    let fd1;
    let th1;
    await waitFor(() => {
      fd1 = fdCount(d.pid);
      th1 = threadCount(d.pid);
      return fd1 <= fd0 + 3 && th1 <= th0 + 2;
    }, 'descriptors and threads back to the baseline', 45000).catch(() => {});
    t.diagnostic(`fds ${fd0} -> ${fd1}, threads ${th0} -> ${th1}, after ${Date.now() - tf} ms`);
    assert.ok(fd1 <= fd0 + 3, `fds ${fd0} -> ${fd1}; new: ${fdList(d.pid).filter((x) => !fdl0.includes(x)).join(' ')}`);
    assert.ok(th1 <= th0 + 2, `threads ${th0} -> ${th1}`);
  } finally {
    await finish(d); // the sanitized build reports leaks at this exit
  }
});

test('many streams opened and closed at once, and clients that send what they should not: the daemon stays up', async (t) => {
  const d = await startDaemon();
  try {
    const auth = { Authorization: `Bearer ${d.token}` };
    // Upgrades and closes at the same time (Ulfius keeps a list of them).
    for (let round = 0; round < 3; round++) {
      const all = await Promise.all(Array.from({ length: 30 }, () => wsOpen(d, '/api/v1/stream')));
      for (const c of all) await c.wait((m) => m.type === 'hello', 'hello');
      await Promise.all(all.map((c, i) => (i % 2 ? c.close() : c.ws.terminate())));
    }
    // Frames a client should not send: the stream may close, the daemon
    // goes on.
    const frames = {
      'a text message': clientFrame(1, '{"type":"hello"}'),
      'a ping': clientFrame(9, 'are you there'),
      'an unmasked frame': Buffer.from([0x81, 5, 104, 101, 108, 108, 111]),
      'a reserved opcode': (() => { const f = clientFrame(1, 'x'); f[0] = 0x83; return f; })(),
      'reserved bits': (() => { const f = clientFrame(1, 'x'); f[0] = 0xf1; return f; })(),
      'a binary frame': clientFrame(2, 'bin'),
      'a lone continuation': (() => { const f = clientFrame(1, 'x'); f[0] = 0x80; return f; })(),
    };
    // A length of 2^62 bytes: Ulfius mallocs the length it is told, which
    // fails (the stream closes); under ASan that failed malloc is itself
    // fatal (allocation-size-too-big), so the sanitized run leaves it out.
    if (!SANITIZED) {
      const b = Buffer.alloc(14);
      b[0] = 0x81;
      b[1] = 0x80 | 127;
      b.writeBigUInt64BE(1n << 62n, 2);
      frames['a length of 2^62'] = b;
    } else {
      t.diagnostic('sanitized: the 2^62-byte frame header is not sent (ASan aborts on Ulfius\'s malloc of it)');
    }
    for (const [what, frame] of Object.entries(frames)) {
      const s = await rawUpgrade(d.port, '/api/v1/stream', auth);
      assert.equal(s.status, 101);
      s.socket.on('error', () => {});
      s.socket.write(frame);
      await sleep(200);
      s.socket.destroy();
      const h = await request(d.port, { path: '/healthz' }).catch((e) => ({ status: e.message }));
      assert.equal(h.status, 200, `after ${what}`);
    }
    const c = await wsOpen(d, '/api/v1/stream');
    await c.wait((m) => m.type === 'hello', 'hello at the end');
    await c.close();
  } finally {
    await finish(d);
  }
});

// --------------------------------------------------------------- log follow

test('log follow: the last N lines, then new complete lines as written; stdout and stderr apart; a truncation is a rotated message', async (t) => {
  const c = '1.tail.tst.cell';
  const follow = (qs) => `/api/v1/services/${enc(c)}/logs/follow?${qs}`;
  const auth = { Authorization: `Bearer ${D.token}` };
  // Before there is such a service.
  assertProblem(await rawUpgrade(D.port, follow('stream=stdout'), auth), 404);
  await putRunning(D, c, { artifact: GAV, command: 'bin/ticker' });
  const dir = rundir(D.prefix, c);
  await waitFile(path.join(dir, 'ready'));
  await waitFile(path.join(dir, 'log/stderr'), /eline 3\n/);

  // Refusals.
  assertProblem(await rawUpgrade(D.port, follow('stream=stdin'), auth), 400);
  assertProblem(await rawUpgrade(D.port, follow('stream='), auth), 400);
  assertProblem(await rawUpgrade(D.port, follow('stream=stdout&tail=abc'), auth), 400);
  assertProblem(await rawUpgrade(D.port, follow('stream=stdout&tail=-1'), auth), 400);
  assertProblem(await rawUpgrade(D.port,
    `/api/v1/services/${enc('1.nope.tst.cell')}/logs/follow?stream=stdout`, auth), 404);
  assertProblem(await rawUpgrade(D.port, follow('stream=stdout')), 401);
  assertProblem(await rawUpgrade(D.port, follow('stream=stdout'), { ...auth, Origin: 'http://evil.example' }), 403);
  assertProblem(await rawUpgrade(D.port, follow('stream=stdout'), { ...auth, Host: 'evil.example' }), 403);
  assertProblem(await D.req({ path: follow('stream=stdout') }), 400, /WebSocket endpoint/);

  const text = (cl) => cl.of('lines').map((m) => m.text).join('');
  const out = await wsOpen(D, follow('stream=stdout&tail=5'));
  const all = await wsOpen(D, follow('stream=stdout'));
  const err = await wsOpen(D, follow('stream=stderr&tail=2'), { cookie: await cookieOf(D),
    origin: `http://127.0.0.1:${D.port}` });
  const first = await out.wait(() => true, 'the first message');
  assert.deepEqual(Object.keys(first).sort(), ['stream', 'text', 'type'], JSON.stringify(first));
  assert.equal(first.type, 'lines');
  assert.equal(first.stream, 'stdout');
  const tail5 = 'line 16\nline 17\nline 18\nline 19\nline 20\n';
  await waitFor(() => text(out) === tail5, 'the last 5 lines', 5000).catch(() => {});
  assert.equal(text(out), tail5, 'the last 5 lines, nothing else yet');
  await all.wait((m) => m.type === 'lines', 'the default tail');
  const want = Array.from({ length: 20 }, (_, i) => `line ${i + 1}\n`).join('');
  await waitFor(() => text(all) === want, 'all 20 lines (the default tail is 100)', 5000).catch(() => {});
  assert.equal(text(all), want);
  await waitFor(() => text(err) === 'eline 2\neline 3\n', 'the last 2 stderr lines', 5000).catch(() => {});
  assert.equal(text(err), 'eline 2\neline 3\n');
  assert.ok(err.of('lines').every((m) => m.stream === 'stderr'));

  const none = await wsOpen(D, follow('stream=stdout&tail=0'));
  // New lines, each whole (a tick is written in two parts 100 ms apart).
  fs.writeFileSync(path.join(dir, 'go'), '');
  await none.wait((m) => m.type === 'lines', 'tail=0: new lines only', 20000);
  assert.match(text(none), /^tick \d+ end\n/, `tail=0 sends no old line: ${text(none).slice(0, 100)}`);
  await none.close();
  await out.wait((m) => m.type === 'lines' && m.text.includes('tick 8 end\n'), 'tick 8', 20000);
  const ticks = Array.from({ length: 8 }, (_, i) => `tick ${i + 1} end\n`).join('');
  assert.ok(text(out).startsWith(`line 16\nline 17\nline 18\nline 19\nline 20\n${ticks}`), text(out));
  for (const m of out.of('lines')) {
    assert.equal(m.stream, 'stdout');
    assert.match(m.text, /\n$/, `complete lines only: ${JSON.stringify(m.text)}`);
  }
  assert.ok(out.of('lines').length > 1, 'new data arrives as it is written, not at the end');
  await err.wait((m) => m.type === 'lines' && m.text.includes('etick 5\n'), 'etick 5', 20000);
  assert.ok(text(err).startsWith('eline 2\neline 3\netick 1\netick 2\n'), text(err));
  assert.doesNotMatch(text(err), /tick \d+ end/, 'stdout stays out of stderr');
  assert.match(text(all), /^line 1\n[^]*tick 3 end\n/);

  // The log is truncated under the follower (what copy-truncate does):
  // a rotated message, then the lines go on.
  const n0 = out.msgs.length;
  fs.truncateSync(path.join(dir, 'log/stdout'), 0);
  await out.wait((m) => m.type === 'rotated', 'rotated after a truncation', 15000, n0);
  assert.deepEqual(out.msgs.slice(n0).find((m) => m.type === 'rotated'), { type: 'rotated', stream: 'stdout' });
  const r0 = out.msgs.findIndex((m, i) => i >= n0 && m.type === 'rotated');
  const last = Number(/tick (\d+) end\n$/.exec(out.msgs.slice(0, r0).filter((m) => m.type === 'lines').at(-1).text)[1]);
  await out.wait((m) => m.type === 'lines' && new RegExp(`tick ${last + 3} end`).test(m.text),
    'lines after the truncation', 20000, r0);
  const after = out.msgs.slice(r0 + 1).filter((m) => m.type === 'lines').map((m) => m.text).join('');
  // The first may be the end of a tick cut by the truncation.
  const lines = after.split('\n').filter(Boolean);
  if (lines[0] === ' end') lines.shift();
  for (const l of lines) assert.match(l, /^tick \d+ end$/, 'whole lines after it');
  assert.equal(err.of('rotated').length, 0, 'stderr was not rotated');

  // The service goes away: each follower is told so and closed, not left
  // holding a place under max_streams.
  await D.req({ method: 'DELETE', path: `/api/v1/services/${enc(c)}?purge=true` });
  await waitFor(async () => (await getSvc(D, c)).status === 404, 'deleted');
  for (const cl of [out, all, err]) {
    await cl.wait((m) => m.type === 'error' && /deleted/.test(m.detail), 'the deleted notice', 5000);
    await waitFor(() => cl.closed, 'the follower closed by the daemon', 5000);
  }
});

test('log follow across rotations by nodee (log_max): rotated, then the lines go on, none twice', async (t) => {
  const d = await startDaemon(['log_max = 4096', 'log_keep = 2', 'log_check_s = 1']);
  try {
    await installArtifact(d, GAV);
    const c = '1.rot.tst.cell';
    await putRunning(d, c, { artifact: GAV, command: 'bin/chatty' });
    const f = await wsOpen(d, `/api/v1/services/${enc(c)}/logs/follow?stream=stdout&tail=1`);
    await f.wait((m) => m.type === 'rotated', 'a rotation by nodee', 20000);
    const i = f.msgs.findIndex((m) => m.type === 'rotated');
    assert.deepEqual(f.msgs[i], { type: 'rotated', stream: 'stdout' });
    const numsOf = (msgs) => msgs.filter((m) => m.type === 'lines').map((m) => m.text).join('')
      .split('\n').filter(Boolean).map((l) => {
        const m = /^c (\d+) x+$/.exec(l);
        assert.ok(m, `a whole line: ${JSON.stringify(l)}`);
        return Number(m[1]);
      });
    const nums = () => numsOf(f.msgs);
    const atRot = Math.max(0, ...numsOf(f.msgs.slice(0, i)));
    await waitFor(() => nums().some((n) => n > atRot + 20), 'lines after the rotation', 20000);
    const seq = nums();
    assert.deepEqual(seq, [...seq].sort((a, b) => a - b), 'in order');
    assert.equal(new Set(seq).size, seq.length, 'no line twice');
    assert.ok(fs.existsSync(path.join(rundir(d.prefix, c), 'log/stdout.1')), 'nodee rotated the file');
    await waitFor(() => f.of('rotated').length >= 2, 'a second rotation', 20000);
    await f.close();
  } finally {
    await finish(d);
  }
});

test('log follow never reads through a link planted in the log directory: an error, not the file', async (t) => {
  const c = '1.planted.tst.cell';
  await putRunning(D, c, { artifact: GAV, command: 'bin/ticker' });
  const dir = rundir(D.prefix, c);
  await waitFile(path.join(dir, 'ready'));
  const secret = path.join(tmpdir('secret'), 'secret');
  fs.writeFileSync(secret, 'TOP-SECRET line\n'.repeat(3));
  const f = await wsOpen(D, `/api/v1/services/${enc(c)}/logs/follow?stream=stdout&tail=5`);
  await f.wait((m) => m.type === 'lines' && m.text.includes('line 20\n'), 'the tail');
  // What a service could do to its own log directory (done here as root).
  const log = path.join(dir, 'log/stdout');
  fs.renameSync(log, `${log}.moved`);
  fs.symlinkSync(secret, log);
  fs.writeFileSync(path.join(dir, 'go'), '');
  await f.wait((m) => m.type === 'error' || m.type === 'rotated', 'the follower notices', 15000).catch(() => {});
  await sleep(1000);
  // A new follower of the planted log.
  let g = null;
  try {
    g = await wsOpen(D, `/api/v1/services/${enc(c)}/logs/follow?stream=stdout&tail=5`);
    await g.wait((m) => m.type === 'error', 'an error message', 10000);
    const e = g.of('error')[0];
    assert.equal(typeof e.detail, 'string');
    t.diagnostic(`planted link: ${e.detail}`);
    await waitFor(() => g.closed, 'closed after the error', 10000);
  } catch (e) {
    if (e.status === undefined) throw e;
    assert.ok(e.status >= 400 && e.status !== 401 && e.status !== 503, `refused: ${e.status} ${e.text}`);
    t.diagnostic(`planted link refused before the upgrade: ${e.status}`);
  }
  const seen = JSON.stringify([...f.msgs, ...(g ? g.msgs : [])]);
  assert.doesNotMatch(seen, /TOP-SECRET/, 'nothing of the link\'s target is sent');
  t.diagnostic(`first follower: ${JSON.stringify(f.msgs.slice(1).map((m) => m.type))}, closed ${JSON.stringify(f.closed)}`);
  fs.unlinkSync(log);
  fs.rmSync(path.dirname(secret), { recursive: true, force: true });
});
