// 10 000 malformed and hostile requests against one daemon (the sanitized
// build under make test-asan): no crash, no hang, every answer a 4xx
// problem, nothing changed, and descriptors (and, unsanitized, memory)
// back where they started.  Then every place a secret could leak to — API
// answers, the log, the events, the node's data in ZooKeeper — is searched
// for the token, the S3 keys and a service's secret_env value.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const {
  SANITIZED, startNodee, stopClean, request, sleep, tmpdir, sqlRows, db, waitFor,
  killLeftovers, installArtifact,
} = require('./lib');
const { Depot } = require('./depot');
const { makeZip } = require('./zipper');
const { startZooKeeper, zkGet } = require('./zk');

const SECRET_S3 = 'S3SECRETfromTheConfig0123456789';
const SECRET_CRED = 'CREDSECRETinTheSpec9876543210';
const SECRET_ENV = 'hunter2-secret-env-value';
const GAV = 'com.abuse:svc:1';
const COORD = 'web-1.abuse.tst.cell';

let D;
let zk;
let depot;
let prefix;
const answers = [];	// every body the daemon sent, for the secret search

test.before(async () => {
  depot = await new Depot().start();
  depot.put('com.abuse', 'svc', '1', makeZip([
    { name: 'bin/', dir: true },
    { name: 'bin/start', data: '#!/bin/sh\nexec sleep 1000\n', mode: 0o755 },
  ]));
  zk = await startZooKeeper();
  prefix = tmpdir('abuse');
  fs.chmodSync(prefix, 0o711);
  D = await startNodee({
    prefix,
    args: ['--depot', depot.url],
    env: {
      NODEE_ZOOKEEPER: zk.hosts,
      NODEE_CELL: 'abuse',
      NODEE_INSTANCE: 'victim',
      NODEE_S3_ACCESS_KEY_ID: 'AKIAABUSETEST',
      NODEE_S3_SECRET_ACCESS_KEY: SECRET_S3,
    },
  });
});

test.after(async () => {
  try {
    if (D && !D.exited) await D.stop('SIGKILL');
  } finally {
    if (prefix) killLeftovers(prefix);
    if (zk) { await zk.stop(); zk.remove(); }
    if (depot) await depot.stop();
    if (prefix) fs.rmSync(prefix, { recursive: true, force: true });
  }
});

function fds(pid) {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

function rss(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

// A raw request: resolves with { status, type, text } or { closed: true }.
function raw(method, p, headers = {}, body) {
  return new Promise((resolve) => {
    const req = http.request({
      host: '127.0.0.1', port: D.port, method, path: p, agent: false,
      headers: { Authorization: `Bearer ${D.token}`, ...headers },
      insecureHTTPParser: true,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode, type: res.headers['content-type'] || '',
        text: Buffer.concat(chunks).toString('utf8'),
      }));
      res.on('error', () => resolve({ closed: true }));
    });
    req.setTimeout(10000, () => { req.destroy(); resolve({ hung: true }); });
    req.on('error', () => resolve({ closed: true }));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// The hostile requests, built deterministically: [method, path, headers, body].
function* hostile() {
  const params = ['..', '%2e%2e', '%2F', 'a%2F..%2Fb', '%00', 'a%00b', '.', '%20',
    'x'.repeat(3000), '%C0%AE%C0%AE', '%FF', '~root', 'a:b', '$(id)', '%0d%0aSet-Cookie:x=1',
    '..%5C..', '*', '%25', '%'];	// none of them a valid part
  const json = [
    '{', '{"artifact":', '[', '"x"', '{"artifact": "a:b:c"}x', '{"a":1,"a":2}', 'null', '1e400',
    '{"artifact": "\\u0000:a:1"}', '{"artifact": "a:b:1", "url": "file:///etc/passwd"}',
    '{"artifact": "a:b:1", "url": "gopher://127.0.0.1/"}', '{"artifact": 12345678901234567890123}',
    '{"artifact": "g:a:1", "sha256": "zz"}', '{"artifact": "../../etc:a:1"}',
    '{"artifact": "g:a:' + 'v'.repeat(5000) + '"}', '[1,2,3]', '{"artifact": ["a"]}', '\xff\xfe',
    '{"x":' + '['.repeat(5000) + ']'.repeat(5000) + '}', '"\\ud800"',
  ];
  const specs = [
    '{}', '{"artifact": "g:a:1", "user": "root; rm -rf /"}', '{"artifact": "g:a:1", "command": "../../../bin/sh"}',
    '{"artifact": "g:a:1", "command": "/bin/sh"}', '{"artifact": "g:a:1", "limits": {"nofile": -1}}',
    '{"artifact": "g:a:1", "env": {"A=B": "c"}}', '{"artifact": "g:a:1", "options": {"--x": {}}}',
    '{"artifact": "g:a:1", "restart": {"policy": "sometimes"}}', '{"artifact": "g:a:1", "capabilities": ["SYS_ADMIN2"]}',
    '{"artifact": "g:a:1", "prepare": [{"template": "../x", "to": "y"}]}',
    '{"artifact": "g:a:1", "prepare": [{"link": "/etc/shadow", "to": "x"}]}',
    '{"artifact": "g:a:1", "snapshot": {"paths": ["/etc"], "to": "s3://b/k"}}',
    '{"artifact": "g:a:1", "stop": {"signal": "KILLALL"}}', '{"artifact": "g:a:1", "secret_env": {"": "x"}}',
  ];
  const coords = ['a', 'a.b.c', 'a.b.c.d.e', '..b.c.d', 'A.B.C.D', 'a.b.c.' + 'd'.repeat(300),
    'a.b..d', 'a%2Fb.c.d.e', '%2e%2e.b.c.d'];
  for (;;) {
    for (const p of params) {
      yield ['GET', `/api/v1/artifacts/${p}/a/1`];
      yield ['DELETE', `/api/v1/artifacts/g/${p}/1`];
      yield ['GET', `/api/v1/jobs/${p}`];
      yield ['DELETE', `/api/v1/jobs/${p}`];
      yield ['POST', `/api/v1/jobs/${p}/retry`];
      yield ['GET', `/api/v1/services/${p}`];
      yield ['POST', `/api/v1/services/${p}/start`];
      yield ['GET', `/api/v1/services/${p}/logs?stream=${p}&tail=${p}`];
      yield ['GET', `/api/v1/services/${p}/runs?limit=${p}`];
      yield ['GET', `/assets/${p}`];
      yield ['GET', `/api/v1/events?kind=${p}&since=${p}&limit=${p}`];
      yield ['GET', `/api/v1/jobs?state=${p}&before=${p}`];
      yield ['POST', `/api/v1/artifacts/g/a/${p}`, { 'Content-Type': 'application/zip' }, 'PK\x03\x04junk'];
    }
    for (const b of json) {
      yield ['POST', '/api/v1/artifacts', { 'Content-Type': 'application/json' }, b];
      yield ['PUT', `/api/v1/services/${COORD.replace('web-1', 'x')}`, { 'Content-Type': 'application/json' }, b];
    }
    for (const s of specs) {
      yield ['PUT', '/api/v1/services/bad-1.abuse.tst.cell', { 'Content-Type': 'application/json' }, s];
    }
    for (const c of coords) {
      yield ['PUT', `/api/v1/services/${c}`, { 'Content-Type': 'application/json' }, '{"artifact": "g:a:1"}'];
      yield ['POST', `/api/v1/services/${c}/frobnicate`];
    }
    for (const m of ['PATCH', 'TRACE', 'OPTIONS', 'PUT', 'DELETE', 'FOO']) {
      yield [m, '/api/v1/node'];
      yield [m, '/api/v1/artifacts'];
      yield [m, '/api/v1/events'];
    }
    yield ['POST', '/api/v1/artifacts', { 'Content-Type': 'text/plain' }, '{"artifact": "g:a:1"}'];
    yield ['POST', '/api/v1/artifacts', { 'Content-Type': 'application/x-www-form-urlencoded' }, 'artifact=g:a:1'];
    yield ['POST', '/api/v1/artifacts', { 'Content-Type': 'application/json', Origin: 'http://evil.example' }, '{"artifact": "g:a:1"}'];
    yield ['GET', '/api/v1/node', { Host: 'evil.example' }];
    yield ['GET', '/api/v1/node', { Authorization: 'Bearer wrong' }];
    yield ['GET', '/api/v1/node', { Authorization: `Bearer ${D.token}x` }];
    yield ['GET', '/api/v1/node', { 'X-Big': 'y'.repeat(200000) }];
    yield ['POST', '/api/v1/node/drain', { 'Content-Type': 'application/json' }, '{'];
    yield ['POST', '/api/v1/artifacts', { 'Content-Type': 'application/json' }, ' '.repeat(2 * 1024 * 1024)];
  }
}

test('10 000 hostile requests: every answer a 4xx problem, nothing changed, descriptors and memory back', async () => {
  // Warm up before the baseline: every HTTP thread opens its store
  // connection (three descriptors) on its first read.
  for (let i = 0; i < 20; i++) {
    await Promise.all(['/api/v1/node', '/api/v1/jobs', '/api/v1/events', '/api/v1/services', '/api/v1/artifacts']
      .map((p) => request(D.port, { path: p, token: D.token })));
  }
  await sleep(300);
  const fd0 = fds(D.pid);
  const rss0 = rss(D.pid);

  const gen = hostile();
  const N = 10000;
  const bad = [];
  let closed = 0;
  let next = 0;
  async function worker() {
    while (next < N) {
      next++;
      const [m, p, h, b] = gen.next().value;
      const r = await raw(m, p, h, b);
      if (r.hung) bad.push(`${m} ${p.slice(0, 80)}: no answer in 10 s`);
      else if (r.closed) closed++;
      else {
        answers.push(r.text);
        if (r.status < 400 || r.status >= 500) bad.push(`${m} ${p.slice(0, 80)}: ${r.status} ${r.text.slice(0, 200)}`);
        // libmicrohttpd answers a request too big for its memory itself.
        else if (!/problem\+json/.test(r.type) && ![413, 414, 431].includes(r.status)) {
          bad.push(`${m} ${p.slice(0, 80)}: ${r.status} as ${r.type}`);
        }
      }
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker));
  assert.deepEqual(bad.slice(0, 20), [], `${bad.length} bad answers`);
  // Only requests libmicrohttpd itself refuses (a 60 KB header) may be closed.
  assert.ok(closed <= N / 50, `${closed} connections closed without an answer`);

  // Nothing changed: no service, no artifact, no job.
  const svcs = await request(D.port, { path: '/api/v1/services', token: D.token });
  assert.deepEqual(svcs.json.services, []);
  const arts = await request(D.port, { path: '/api/v1/artifacts', token: D.token });
  assert.deepEqual(arts.json.artifacts, []);
  const jobs = await request(D.port, { path: '/api/v1/jobs', token: D.token });
  assert.deepEqual(jobs.json.jobs, []);

  // Still serving, and everything handed back.
  assert.equal((await request(D.port, { path: '/healthz' })).status, 200);
  try {
    await waitFor(() => fds(D.pid) <= fd0 + 2, 'descriptors back', 15000);
  } catch (e) {
    const now = fs.readdirSync(`/proc/${D.pid}/fd`).map((f) => {
      try { return fs.readlinkSync(`/proc/${D.pid}/fd/${f}`); } catch (_) { return '?'; }
    });
    assert.fail(`${now.length} descriptors, ${fd0} before: ${now.join(' ')}`);
  }
  if (!SANITIZED) {
    const grown = rss(D.pid) - rss0;
    assert.ok(grown < 32 * 1024 * 1024, `RSS grew by ${grown} bytes`);
  }
});

test('slow and aborted connections in the middle of it: no hang', async () => {
  const socks = [];
  for (let i = 0; i < 50; i++) {
    const s = net.connect({ host: '127.0.0.1', port: D.port });
    s.on('error', () => {});
    s.on('connect', () => s.write('POST /api/v1/artifacts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n{'));
    socks.push(s);
  }
  await sleep(200);
  for (const s of socks.slice(0, 25)) s.destroy();
  const r = await request(D.port, { path: '/api/v1/node', token: D.token });
  assert.equal(r.status, 200);
  for (const s of socks) s.destroy();
});

test('no secret in any answer, log line, event or the node\'s ZooKeeper data', async () => {
  await installArtifact(D, GAV);
  const spec = {
    artifact: GAV,
    env: { PLAIN: 'visible' },
    secret_env: { DB_PASSWORD: SECRET_ENV },
    credentials: { backup: { access_key_id: 'AKIACRED', secret_access_key: SECRET_CRED } },
  };
  const put = await request(D.port, { method: 'PUT', path: `/api/v1/services/${COORD}`, token: D.token, body: spec });
  assert.ok([200, 201].includes(put.status), put.text);
  answers.push(put.text);
  await waitFor(async () => {
    const s = await request(D.port, { path: `/api/v1/services/${COORD}`, token: D.token });
    return s.json && s.json.state === 'running' ? s : null;
  }, 'the service running');
  // The process has the secret: it is hidden, not lost.
  const pid = (await request(D.port, { path: `/api/v1/services/${COORD}`, token: D.token })).json.pid;
  assert.match(fs.readFileSync(`/proc/${pid}/environ`, 'utf8'), new RegExp(`DB_PASSWORD=${SECRET_ENV}`));

  for (const p of ['/api/v1/node', '/api/v1/services', `/api/v1/services/${COORD}`, '/api/v1/artifacts',
    '/api/v1/jobs', '/api/v1/events?limit=1000', `/api/v1/services/${COORD}/runs`, '/api/v1/cell/nodes', '/metrics']) {
    const r = await request(D.port, { path: p, token: D.token });
    assert.equal(r.status, 200, `${p}: ${r.text}`);
    answers.push(r.text);
  }
  const shown = (await request(D.port, { path: `/api/v1/services/${COORD}`, token: D.token })).json;
  assert.equal(shown.spec.secret_env.DB_PASSWORD, '(hidden)');
  assert.equal(shown.spec.env.PLAIN, 'visible');

  const zkData = await waitFor(async () => {
    const z = await zkGet(zk.hosts, '/meta/abuse/nodes/victim');
    return z.exists && /abuse\.tst/.test(z.raw) ? z.raw : null;
  }, 'the node and its service in ZooKeeper');
  const events = sqlRows(db(D), 'select detail from events').map((r) => r.detail || JSON.stringify(r)).join('\n');
  const places = {
    answers: answers.join('\n'), log: D.stderr, events, zookeeper: zkData,
  };
  for (const [where, text] of Object.entries(places)) {
    for (const [what, secret] of Object.entries({
      token: D.token, s3: SECRET_S3, credentials: SECRET_CRED, secret_env: SECRET_ENV,
    })) {
      assert.equal(text.includes(secret), false, `the ${what} secret is in the ${where}`);
    }
  }
  const del = await request(D.port, { method: 'DELETE', path: `/api/v1/services/${COORD}`, token: D.token });
  assert.equal(del.status, 200);
  await stopClean(D);
});
