// The foundation: start-up, configuration, the security checks every
// request goes through, the store and a clean shutdown, against the real
// binary.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync, spawn } = require('node:child_process');
const {
  tmpdir, freePort, request, runNodee, startNodee, sanitizerReport, sqlRows,
  sql, waitFor,
} = require('./lib');

function assertProblem(r, status, detailPattern) {
  assert.equal(r.status, status, `status of ${r.text}`);
  assert.match(r.headers['content-type'], /^application\/problem\+json/);
  assert.equal(r.json.status, status);
  assert.equal(typeof r.json.title, 'string');
  assert.equal(typeof r.json.detail, 'string');
  if (detailPattern) assert.match(r.json.detail, detailPattern);
}

async function stopClean(d) {
  const r = await d.stop('SIGTERM');
  assert.equal(sanitizerReport(d.stderr), null, d.stderr);
  assert.deepEqual(r, { code: 0, signal: null }, d.stderr);
}

test('nodee --version and --help; an unknown command is named, with the nearest', async () => {
  const v = await runNodee(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^nodee \d+\.\d+\.\d+\n$/);
  const h = await runNodee(['daemon', '--help']);
  assert.equal(h.code, 0);
  for (const flag of ['--config', '--prefix', '--listen', '--log-level']) {
    assert.ok(h.stdout.includes(flag), `--help mentions ${flag}`);
  }
  const bad = await runNodee(['daemon', '--no-such-flag']);
  assert.equal(bad.code, 2);
  // An unknown command says so, with the nearest one, then the usage.
  const un = await runNodee(['daemn']);
  assert.equal(un.code, 2);
  assert.match(un.stderr, /^nodee: unknown command 'daemn'; did you mean 'daemon'\?\nusage: /);
  assert.match((await runNodee(['verson'])).stderr, /did you mean 'version'\?/);
  const none = await runNodee([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /^nodee: a command is needed\nusage: /);
});

test('a fresh prefix gets its layout, a private token and a migrated store', async () => {
  const d = await startNodee();
  try {
    for (const dir of ['software', 'runtime', 'state', 'tmp']) {
      assert.ok(fs.statSync(path.join(d.prefix, dir)).isDirectory(), dir);
    }
    const st = fs.statSync(path.join(d.prefix, 'state/token'));
    assert.equal(st.mode & 0o777, 0o600);
    assert.match(d.token, /^[0-9a-f]{64}$/);
    const db = path.join(d.prefix, 'state/nodee.db');
    const tables = sqlRows(db, "select name from sqlite_master where type='table'")
      .map((r) => r.name);
    for (const t of ['jobs', 'artifacts', 'services', 'service_runs', 'events',
      'schema_migrations']) {
      assert.ok(tables.includes(t), `table ${t}`);
    }
    assert.equal(sql(db, 'pragma journal_mode').includes('wal'), true);
    assert.ok(sqlRows(db, 'select max(version) v from schema_migrations')[0].v >= 1);
  } finally {
    await stopClean(d);
  }
});

test('/healthz is open, the API needs the token', async () => {
  const d = await startNodee();
  try {
    const h = await request(d.port, { path: '/healthz' });
    assert.equal(h.status, 200);
    assertProblem(await request(d.port, { path: '/api/v1/node' }), 401, /Bearer/);
    assert.match((await request(d.port, { path: '/api/v1/node' })).headers['www-authenticate'], /^Bearer/);
    assertProblem(await request(d.port, { path: '/api/v1/node', token: 'f'.repeat(64) }), 401);
    assertProblem(await request(d.port, { path: '/api/v1/node',
      headers: { Authorization: `Basic ${d.token}` } }), 401);
    // Unknown API paths are not revealed to strangers either.
    assertProblem(await request(d.port, { path: '/api/v1/nothing' }), 401);

    const r = await d.req({ path: '/api/v1/node' });
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^application\/json/);
    const n = r.json;
    for (const k of ['instance', 'cell', 'version', 'pid', 'uptime_s', 'prefix', 'machine']) {
      assert.ok(k in n, `node has ${k}`);
    }
    assert.equal(n.pid, d.pid);
    assert.equal(n.prefix, d.prefix);
    assert.equal(n.cell, 'cell');
    assert.ok(n.machine.cores >= 1);
    assert.ok(n.machine.memory_total_bytes > n.machine.memory_available_bytes * 0);
    assert.equal(n.machine.load.length, 3);
    assert.ok(n.machine.uptime_s > 0);
    assert.equal(n.machine.kernel.name, 'Linux');
  } finally {
    await stopClean(d);
  }
});

test('console login trades the token for an HttpOnly SameSite=Strict cookie', async () => {
  const d = await startNodee();
  try {
    assertProblem(await request(d.port, { path: `/?token=${'0'.repeat(64)}` }), 401);
    const r = await request(d.port, { path: `/?token=${d.token}` });
    assert.equal(r.status, 303);
    assert.equal(r.headers.location, '/');
    const cookie = r.headers['set-cookie'][0];
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.ok(!cookie.includes(d.token), 'the cookie is not the token itself');
    const pair = cookie.split(';')[0];
    const node = await request(d.port, { path: '/api/v1/node', headers: { Cookie: pair } });
    assert.equal(node.status, 200);
    const forged = await request(d.port, { path: '/api/v1/node',
      headers: { Cookie: 'nodee_session=' + 'a'.repeat(64) } });
    assertProblem(forged, 401);
    // A state-changing request from another site, even with the cookie.
    const csrf = await request(d.port, { method: 'POST', path: '/api/v1/node',
      headers: { Cookie: pair, Origin: 'http://evil.example' }, body: {} });
    assertProblem(csrf, 403, /Origin/);
    const page = await request(d.port, { path: '/' });
    assert.equal(page.status, 200);
    assert.match(page.headers['content-type'], /^text\/html/);
    assert.match(page.text, /nodee/);
  } finally {
    await stopClean(d);
  }
});

test('bad bodies: malformed JSON 400, forms and text 415, too large 413', async () => {
  const d = await startNodee({ env: { NODEE_MAX_BODY: '1K' } });
  try {
    assertProblem(await d.req({ method: 'POST', path: '/api/v1/node',
      headers: { 'Content-Type': 'application/json' }, body: '{"a": ' }), 400, /malformed JSON/);
    assertProblem(await d.req({ method: 'POST', path: '/api/v1/node',
      headers: { 'Content-Type': 'application/json' }, body: '{"a":1,"a":2}' }), 400);
    assertProblem(await d.req({ method: 'POST', path: '/api/v1/node',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'a=1' }), 415);
    assertProblem(await d.req({ method: 'PUT', path: '/api/v1/node',
      headers: { 'Content-Type': 'text/plain' }, body: '{}' }), 415);
    assertProblem(await d.req({ method: 'POST', path: '/api/v1/node',
      headers: { 'Content-Type': 'application/jsonx' }, body: '{}' }), 415);
    const big = JSON.stringify({ pad: 'x'.repeat(1100) });
    assertProblem(await d.req({ method: 'POST', path: '/api/v1/node',
      headers: { 'Content-Type': 'application/json' }, body: big }), 413, /1024/);
    // Exactly at the limit is not too large: it reaches routing (405).
    const exact = JSON.stringify({ p: 'y'.repeat(1024 - 8) });
    assert.equal(Buffer.byteLength(exact), 1024);
    assertProblem(await d.req({ method: 'POST', path: '/api/v1/node',
      headers: { 'Content-Type': 'application/json' }, body: exact }), 405);
    // A well-formed JSON body passes the checks and reaches routing.
    const ok = await d.req({ method: 'POST', path: '/api/v1/node',
      headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: '{}' });
    assertProblem(ok, 405);
    assert.equal(ok.headers.allow, 'GET');
  } finally {
    await stopClean(d);
  }
});

test('Host and Origin checks: DNS rebinding and cross-site requests get 403', async () => {
  const d = await startNodee({ env: { NODEE_ALLOWED_HOSTS: 'node1.example, node1' } });
  try {
    assertProblem(await d.req({ path: '/api/v1/node', headers: { Host: 'evil.example' } }), 403, /Host/);
    assertProblem(await d.req({ path: '/healthz', headers: { Host: `attacker.test:${d.port}` } }), 403);
    assertProblem(await d.req({ path: '/api/v1/node', headers: { Host: `127.0.0.1.evil.example:${d.port}` } }), 403);
    assert.equal((await d.req({ path: '/api/v1/node', headers: { Host: `localhost:${d.port}` } })).status, 200);
    assert.equal((await d.req({ path: '/api/v1/node', headers: { Host: `node1.example:${d.port}` } })).status, 200);
    assert.equal((await d.req({ path: '/api/v1/node', headers: { Host: 'NODE1' } })).status, 200);

    const host = `127.0.0.1:${d.port}`;
    assertProblem(await d.req({ method: 'POST', path: '/api/v1/node',
      headers: { Origin: 'http://evil.example' }, body: {} }), 403, /Origin/);
    assertProblem(await d.req({ method: 'DELETE', path: '/api/v1/node',
      headers: { Origin: `http://127.0.0.1:${d.port + 1}` } }), 403);
    assertProblem(await d.req({ method: 'POST', path: '/api/v1/node',
      headers: { Origin: 'null' }, body: {} }), 403);
    // The console's own origin passes, and so does a request without one.
    assertProblem(await d.req({ method: 'POST', path: '/api/v1/node',
      headers: { Origin: `http://${host}` }, body: {} }), 405);
    assertProblem(await d.req({ method: 'POST', path: '/api/v1/node', body: {} }), 405);
    // A GET with a foreign Origin changes nothing and is answered.
    assert.equal((await d.req({ path: '/api/v1/node', headers: { Origin: 'http://evil.example' } })).status, 200);
  } finally {
    await stopClean(d);
  }
});

test('unknown paths are 404 and wrong methods 405, as problem+json', async () => {
  const d = await startNodee();
  try {
    assertProblem(await d.req({ path: '/api/v1/nope' }), 404, /no such path/);
    assertProblem(await d.req({ path: '/nothing/here' }), 404);
    const r = await d.req({ method: 'DELETE', path: '/api/v1/node' });
    assertProblem(r, 405);
    assert.equal(r.headers.allow, 'GET');
  } finally {
    await stopClean(d);
  }
});

test('systemd: READY=1 with a STATUS line once it serves, STOPPING=1 at SIGTERM (Type=notify)', async () => {
  const dir = tmpdir('notify');
  const bin = path.join(dir, 'notifyd');
  execFileSync('cc', ['-O2', '-Wall', '-o', bin, path.join(__dirname, 'notifyd.c')]);
  const sock = path.join(dir, 'notify.sock');
  const rx = spawn(bin, [sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  let got = '';
  rx.stdout.on('data', (x) => { got += x; });
  try {
    await waitFor(() => got.includes('listening\n'), 'the notify socket');
    const d = await startNodee({ env: { NOTIFY_SOCKET: sock } });
    try {
      await waitFor(() => /READY=1/.test(got), 'READY=1');
      assert.match(got, /^READY=1\|STATUS=serving on 127\.0\.0\.1:\d+; 0 services$/m);
      // Ready means the API answers.
      assert.equal((await d.req({ path: '/api/v1/node' })).status, 200);
    } finally {
      await stopClean(d);
    }
    await waitFor(() => /STOPPING=1/.test(got), 'STOPPING=1');
    // And the unit that goes with it.
    const unit = fs.readFileSync(path.join(__dirname, '../../conf/nodee.service'), 'utf8');
    for (const line of ['Type=notify', 'KillMode=process', 'Restart=on-failure']) {
      assert.ok(unit.split('\n').includes(line), `conf/nodee.service has ${line}`);
    }
  } finally {
    rx.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGTERM: exit 0 and a stop event; a restart keeps the token and the store is intact', async () => {
  const prefix = tmpdir('restart');
  const d1 = await startNodee({ prefix });
  const token = d1.token;
  await stopClean(d1);
  const db = path.join(prefix, 'state/nodee.db');
  let kinds = sqlRows(db, 'select kind from events order by id').map((r) => r.kind);
  assert.deepEqual(kinds, ['daemon.started', 'daemon.stopped']);
  const stop = sqlRows(db, "select detail from events where kind = 'daemon.stopped'")[0];
  assert.equal(JSON.parse(stop.detail).signal, 'TERM');

  const d2 = await startNodee({ prefix });
  try {
    assert.equal(d2.token, token);
    assert.equal((await d2.req({ path: '/api/v1/node' })).status, 200);
  } finally {
    // SIGINT stops it the same way.
    const r = await d2.stop('SIGINT');
    assert.deepEqual(r, { code: 0, signal: null }, d2.stderr);
    assert.equal(sanitizerReport(d2.stderr), null, d2.stderr);
  }
  kinds = sqlRows(db, 'select kind from events order by id').map((r) => r.kind);
  assert.deepEqual(kinds, ['daemon.started', 'daemon.stopped', 'daemon.started', 'daemon.stopped']);
  assert.equal(sql(db, 'pragma integrity_check').includes('"ok"'), true);
  assert.equal(sqlRows(db, 'select count(*) n from schema_migrations')[0].n,
    sqlRows(db, 'select max(version) n from schema_migrations')[0].n);
});

test('a second daemon on the same prefix is refused, naming the pid', async () => {
  const d = await startNodee();
  try {
    const port = await freePort();
    const r = await runNodee(['daemon', '--prefix', d.prefix, '--listen', `127.0.0.1:${port}`]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`in use by another nodee \\(pid ${d.pid}`));
    // The first one is untouched.
    assert.equal((await d.req({ path: '/api/v1/node' })).status, 200);
  } finally {
    await stopClean(d);
  }
});

test('after kill -9 the lock is free and the store is intact', async () => {
  const d1 = await startNodee();
  const r = await d1.stop('SIGKILL');
  assert.equal(r.signal, 'SIGKILL');
  const d2 = await startNodee({ prefix: d1.prefix });
  try {
    const db = path.join(d1.prefix, 'state/nodee.db');
    assert.equal(sql(db, 'pragma integrity_check').includes('"ok"'), true);
  } finally {
    await stopClean(d2);
  }
});

test('configuration: file < environment < flags', async () => {
  const dir = tmpdir('conf');
  const [pFile, pEnv, pFlag] = [await freePort(), await freePort(), await freePort()];
  const conf = path.join(dir, 'nodee.conf');
  fs.writeFileSync(conf, [
    '# a comment', '', `listen = 127.0.0.1:${pFile}`, 'cell = filecell',
    'instance = from-file', `prefix = ${path.join(dir, 'p')}`, 'log_level = debug', '',
  ].join('\n'));
  // File alone.
  let d = await startNodee({ prefix: path.join(dir, 'p'), port: pFile, args: ['--config', conf] });
  let n = (await d.req({ path: '/api/v1/node' })).json;
  assert.equal(n.cell, 'filecell');
  assert.equal(n.instance, 'from-file');
  await stopClean(d);
  // The environment overrides the file; the --listen flag overrides both.
  d = await startNodee({ prefix: path.join(dir, 'p'), port: pFlag,
    args: ['--config', conf], env: { NODEE_CELL: 'envcell', NODEE_LISTEN: `127.0.0.1:${pEnv}` } });
  n = (await d.req({ path: '/api/v1/node' })).json;
  assert.equal(n.cell, 'envcell');
  assert.equal(n.instance, 'from-file');
  assert.equal(n.listen, `127.0.0.1:${pFlag}`);
  await stopClean(d);
  // NODEE_CONFIG names the file when --config is absent.
  d = await startNodee({ prefix: path.join(dir, 'p'), port: pFlag, env: { NODEE_CONFIG: conf } });
  assert.equal((await d.req({ path: '/api/v1/node' })).json.cell, 'filecell');
  await stopClean(d);
});

test('configuration errors stop start-up with file, line and key', async () => {
  const dir = tmpdir('badconf');
  const conf = path.join(dir, 'nodee.conf');
  const port = await freePort();
  const base = ['daemon', '--config', conf, '--prefix', path.join(dir, 'p'), '--listen', `127.0.0.1:${port}`];

  fs.writeFileSync(conf, 'cell = a\n\nbogus_key = 1\n');
  let r = await runNodee(base);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`${conf}:3: unknown key 'bogus_key'`));

  fs.writeFileSync(conf, '# ok\nhttp_threads = lots\n');
  r = await runNodee(base);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`${conf}:2: key 'http_threads': 'lots' is not a number`));

  fs.writeFileSync(conf, 'cell = Not_A_Label\n');
  r = await runNodee(base);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /:1: key 'cell'/);

  fs.writeFileSync(conf, 'just words\n');
  r = await runNodee(base);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /:1: expected 'key = value'/);

  fs.writeFileSync(conf, '\n');
  r = await runNodee(base, { env: { NODEE_MAX_BODY: 'huge' } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /environment NODEE_MAX_BODY: key 'max_body'/);

  r = await runNodee(['daemon', '--config', path.join(dir, 'missing.conf')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /missing\.conf: cannot open configuration/);

  r = await runNodee(['daemon', '--prefix', path.join(dir, 'p'), '--listen', 'nowhere']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /listen.*is not ADDR:PORT/);
  // Nothing was created for a configuration that was refused.
  assert.equal(fs.existsSync(path.join(dir, 'p')), false);
});

test('listening beyond loopback needs TLS or insecure_listen', async () => {
  const dir = tmpdir('listen');
  const port = await freePort();
  const r = await runNodee(['daemon', '--prefix', path.join(dir, 'p'), '--listen', `0.0.0.0:${port}`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not loopback and no TLS is configured.*insecure_listen = yes/);
  assert.equal(fs.existsSync(path.join(dir, 'p')), false);
});

test('a prefix that cannot be written is refused with a clear message', async () => {
  const dir = tmpdir('ro');
  const file = path.join(dir, 'not-a-dir');
  fs.writeFileSync(file, 'x');
  const port = await freePort();
  const r = await runNodee(['daemon', '--prefix', file, '--listen', `127.0.0.1:${port}`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot create prefix .*not-a-dir: Not a directory/);
});

test('TLS: the API is served over HTTPS with the configured certificate', async (t) => {
  const dir = tmpdir('tls');
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')],
    { stdio: 'ignore' });
  } catch (e) {
    assert.fail(`openssl could not make a test certificate: ${e.message}`);
  }
  const d = await startNodee({ tls: true, env: {
    NODEE_TLS_CERT: path.join(dir, 'cert.pem'), NODEE_TLS_KEY: path.join(dir, 'key.pem') } });
  try {
    const r = await d.req({ path: '/api/v1/node' });
    assert.equal(r.status, 200);
    const login = await request(d.port, { tls: true, path: `/?token=${d.token}` });
    assert.match(login.headers['set-cookie'][0], /Secure/);
    await assert.rejects(request(d.port, { path: '/healthz' }));
  } finally {
    await stopClean(d);
  }
  t.diagnostic('served HTTPS on loopback');
});
