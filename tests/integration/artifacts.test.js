// Artifacts: install, verify, remove and list, as jobs, against a real
// HTTP depot on loopback; hostile archives; a crash in the middle.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { startNodee, sanitizerReport, sqlRows, sleep, tmpdir } = require('./lib');
const { makeZip } = require('./zipper');
const { Depot, sha256 } = require('./depot');

const FINAL = ['succeeded', 'failed', 'cancelled'];

async function waitJob(d, id, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await d.req({ path: `/api/v1/jobs/${id}` });
    assert.equal(r.status, 200, r.text);
    if (FINAL.includes(r.json.state)) return r.json;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${r.json.state}`);
    await sleep(30);
  }
}

function appZip(tag = 'x', extra = []) {
  return makeZip([
    { name: 'bin/', dir: true },
    { name: 'bin/start', data: `#!/bin/sh\necho ${tag}\n`, mode: 0o4755 },
    { name: 'conf/app.properties', data: `name=${tag}\n`, mode: 0o666 },
    { name: 'lib/blob.bin', data: crypto.randomBytes(64 * 1024), deflate: true },
    ...extra,
  ]);
}

async function stopClean(d) {
  const r = await d.stop('SIGTERM');
  assert.equal(sanitizerReport(d.stderr), null, d.stderr);
  assert.deepEqual(r, { code: 0, signal: null }, d.stderr);
}

function softwareEntries(prefix) {
  const out = [];
  const root = path.join(prefix, 'software');
  for (const g of fs.readdirSync(root)) {
    for (const a of fs.readdirSync(path.join(root, g))) {
      for (const v of fs.readdirSync(path.join(root, g, a))) out.push(`${g}:${a}:${v}`);
    }
  }
  return out.sort();
}

async function install(d, body) {
  const r = await d.req({ method: 'POST', path: '/api/v1/artifacts', body });
  return r;
}

let depot;
let d;

test.before(async () => {
  depot = await new Depot().start();
  d = await startNodee({ args: ['--depot', depot.url],
    env: { NODEE_ARCHIVE_MAX_ENTRIES: '50', NODEE_ARCHIVE_MAX_BYTES: '1M' } });
});

test.after(async () => {
  if (d) await stopClean(d);
  if (depot) await depot.stop();
});

test('install from the depot: a job, then a whole read-only tree', async () => {
  const zip = appZip('one');
  depot.put('com.example', 'hello', '1.0.0', zip);
  const r = await install(d, { artifact: 'com.example:hello:1.0.0' });
  assert.equal(r.status, 202, r.text);
  assert.ok(Number.isInteger(r.json.id));
  assert.ok(['queued', 'running'].includes(r.json.state));
  assert.equal(r.headers.location, `/api/v1/jobs/${r.json.id}`);
  const job = await waitJob(d, r.json.id);
  assert.equal(job.state, 'succeeded', job.error);
  assert.equal(job.bytes_done > 0, true);

  const a = (await d.req({ path: '/api/v1/artifacts/com.example/hello/1.0.0' })).json;
  assert.equal(a.group, 'com.example');
  assert.equal(a.artifact, 'hello');
  assert.equal(a.version, '1.0.0');
  assert.equal(a.sha256, sha256(zip));
  assert.equal(a.verified, 'none');
  assert.equal(a.file_count, 3);
  assert.equal(a.size_bytes, 64 * 1024 + 'name=one\n'.length + '#!/bin/sh\necho one\n'.length);
  assert.deepEqual(a.services, []);
  assert.equal(a.path, path.join(d.prefix, 'software/com.example/hello/1.0.0'));
  assert.ok(a.installed_at > 0);

  const dir = a.path;
  assert.equal(fs.readFileSync(path.join(dir, 'bin/start'), 'utf8'), '#!/bin/sh\necho one\n');
  const mode = (p) => fs.statSync(path.join(dir, p)).mode & 0o7777;
  assert.equal(mode('bin/start'), 0o555, 'setuid stripped, executable kept, read-only');
  assert.equal(mode('conf/app.properties'), 0o444, 'world write stripped');
  assert.equal(mode('bin'), 0o555);
  assert.equal(mode('.'), 0o555);

  const list = (await d.req({ path: '/api/v1/artifacts' })).json.artifacts;
  assert.ok(list.some((x) => x.coordinate === 'com.example:hello:1.0.0'));

  // Idempotent: installed already answers 200 with the artifact.
  const again = await install(d, { artifact: 'com.example:hello:1.0.0' });
  assert.equal(again.status, 200);
  assert.equal(again.json.sha256, sha256(zip));
  assert.equal(depot.count(Depot.zipPath('com.example', 'hello', '1.0.0')), 1);

  const ev = sqlRows(path.join(d.prefix, 'state/nodee.db'),
    "select kind from events where subject = 'com.example:hello:1.0.0' order by id").map((x) => x.kind);
  assert.deepEqual(ev, ['artifact.install.requested', 'artifact.install.succeeded']);
});

test('checksums: given, .sha256 sidecar, .sha1 sidecar, and mismatches', async () => {
  const z1 = appZip('given');
  depot.put('com.example', 'given', '1', z1);
  let j = await waitJob(d, (await install(d, { artifact: 'com.example:given:1', sha256: sha256(z1).toUpperCase() })).json.id);
  assert.equal(j.state, 'succeeded', j.error);
  assert.equal((await d.req({ path: '/api/v1/artifacts/com.example/given/1' })).json.verified, 'sha256-given');

  const z2 = appZip('side256');
  depot.put('com.example', 'side256', '1', z2, 'sha256');
  j = await waitJob(d, (await install(d, { artifact: 'com.example:side256:1' })).json.id);
  assert.equal(j.state, 'succeeded', j.error);
  assert.equal((await d.req({ path: '/api/v1/artifacts/com.example/side256/1' })).json.verified, 'sha256-sidecar');

  const z3 = appZip('side1');
  depot.put('com.example', 'side1', '1', z3, 'sha1');
  j = await waitJob(d, (await install(d, { artifact: 'com.example:side1:1' })).json.id);
  assert.equal(j.state, 'succeeded', j.error);
  assert.equal((await d.req({ path: '/api/v1/artifacts/com.example/side1/1' })).json.verified, 'sha1-sidecar');

  const z4 = appZip('bad');
  depot.put('com.example', 'bad', '1', z4);
  j = await waitJob(d, (await install(d, { artifact: 'com.example:bad:1', sha256: '0'.repeat(64) })).json.id);
  assert.equal(j.state, 'failed');
  assert.match(j.error, /checksum mismatch \(sha256-given\): expected 0{64}/);

  // A sidecar that does not match the zip.
  const p = depot.put('com.example', 'badside', '1', appZip('badside'));
  depot.files.set(`${p}.sha256`, Buffer.from(`${'a'.repeat(64)}\n`));
  j = await waitJob(d, (await install(d, { artifact: 'com.example:badside:1' })).json.id);
  assert.equal(j.state, 'failed');
  assert.match(j.error, /checksum mismatch \(sha256-sidecar\)/);
  assert.equal(fs.existsSync(path.join(d.prefix, 'software/com.example/bad')), false);
  assert.equal(fs.existsSync(path.join(d.prefix, 'software/com.example/badside')), false);
  const hist = sqlRows(path.join(d.prefix, 'state/nodee.db'),
    "select * from install_history where artifact = 'com.example:bad:1'");
  assert.equal(hist.length, 1);
  assert.equal(hist[0].result, 'failed');
  assert.match(hist[0].reason, /checksum mismatch/);
  assert.equal(hist[0].action, 'install');
});

test('a missing artifact fails at once with the status; a broken server after 3 tries', async () => {
  let r = await install(d, { artifact: 'com.example:missing:1' });
  let j = await waitJob(d, r.json.id);
  assert.equal(j.state, 'failed');
  assert.match(j.error, /404/);
  assert.equal(depot.count(Depot.zipPath('com.example', 'missing', '1')), 1);

  const p = depot.put('com.example', 'halfway', '1', appZip('halfway'));
  depot.behaviour.set(p, 'close-halfway');
  r = await install(d, { artifact: 'com.example:halfway:1' });
  j = await waitJob(d, r.json.id);
  assert.equal(j.state, 'failed');
  assert.ok(j.error.length > 10, j.error);
  assert.equal(depot.count(p), 3, 'three tries');
  assert.equal(fs.existsSync(path.join(d.prefix, 'software/com.example/halfway')), false);
  assert.deepEqual(fs.readdirSync(path.join(d.prefix, 'tmp')), []);
});

test('URL credentials and signatures are never shown or recorded; sidecars keep the query', async () => {
  const zip = appZip('secret');
  const p = depot.put('com.example', 'secret', '1', zip, 'sha256');
  const url = `http://deploy:s3cret@127.0.0.1:${depot.port}${p}?sig=t0ps3cret`;
  const r = await install(d, { artifact: 'com.example:secret:1', url });
  assert.equal(r.status, 202, r.text);
  assert.ok(!r.text.includes('s3cret'), r.text);
  const j = await waitJob(d, r.json.id);
  assert.equal(j.state, 'succeeded', j.error);
  assert.equal(depot.count(`${p}.sha256`), 1, 'the sidecar suffix goes on the path, before the query');
  const a = await d.req({ path: '/api/v1/artifacts/com.example/secret/1' });
  assert.equal(a.json.verified, 'sha256-sidecar');
  for (const text of [a.text, (await d.req({ path: `/api/v1/jobs/${r.json.id}` })).text,
    (await d.req({ path: '/api/v1/jobs?limit=500' })).text,
    (await d.req({ path: '/api/v1/artifacts' })).text]) {
    assert.ok(!text.includes('s3cret'), text);
  }
  const db = path.join(d.prefix, 'state/nodee.db');
  const events = sqlRows(db, "select detail from events where subject = 'com.example:secret:1'");
  assert.ok(events.length >= 2);
  events.forEach((e) => assert.ok(!e.detail.includes('s3cret'), e.detail));
  assert.ok(!d.stderr.includes('s3cret'), 'not in the log either');
});

test('an install request that conflicts with what exists is a 409, not a silent 200', async () => {
  const zip = appZip('pinned');
  depot.put('com.example', 'pinned', '1', zip);
  await waitJob(d, (await install(d, { artifact: 'com.example:pinned:1' })).json.id);
  const bad = await install(d, { artifact: 'com.example:pinned:1', sha256: 'b'.repeat(64) });
  assert.equal(bad.status, 409, bad.text);
  assert.match(bad.json.detail, /installed with sha256/);
  const good = await install(d, { artifact: 'com.example:pinned:1', sha256: sha256(zip) });
  assert.equal(good.status, 200, good.text);
});

test('cancel reaches a job stuck on a checksum sidecar that never answers', async () => {
  const p = depot.put('com.example', 'stuck', '1', appZip('stuck'));
  depot.behaviour.set(`${p}.sha256`, 'hang');
  const r = await install(d, { artifact: 'com.example:stuck:1' });
  for (let i = 0; i < 100 && depot.count(`${p}.sha256`) === 0; i++) await sleep(20);
  await sleep(100);
  const t0 = Date.now();
  assert.equal((await d.req({ method: 'DELETE', path: `/api/v1/jobs/${r.json.id}` })).status, 202);
  const j = await waitJob(d, r.json.id, 10000);
  assert.equal(j.state, 'cancelled');
  assert.ok(Date.now() - t0 < 5000, `cancelled in ${Date.now() - t0} ms`);
});

test('20 different artifacts at once, and one artifact asked for 10 times at once', async () => {
  for (let i = 0; i < 20; i++) depot.put('com.many', `a${i}`, '1', appZip(`m${i}`));
  const posts = await Promise.all(Array.from({ length: 20 }, (_, i) => install(d, { artifact: `com.many:a${i}:1` })));
  posts.forEach((r) => assert.equal(r.status, 202, r.text));
  const jobs = await Promise.all(posts.map((r) => waitJob(d, r.json.id, 60000)));
  jobs.forEach((j) => assert.equal(j.state, 'succeeded', j.error));
  assert.equal(softwareEntries(d.prefix).filter((x) => x.startsWith('com.many:')).length, 20);

  const p = depot.put('com.example', 'popular', '1', appZip('popular'));
  depot.behaviour.set(p, 'slow');
  const same = await Promise.all(Array.from({ length: 10 }, () => install(d, { artifact: 'com.example:popular:1' })));
  const ids = new Set(same.map((r) => r.json.id));
  same.forEach((r) => assert.equal(r.status, 202, r.text));
  assert.equal(ids.size, 1, 'one job for ten requests');
  const j = await waitJob(d, [...ids][0], 60000);
  assert.equal(j.state, 'succeeded', j.error);
  assert.equal(depot.count(p), 1, 'one download');
});

test('cancel a running install: nothing left behind', async () => {
  const p = depot.put('com.example', 'slowone', '1', appZip('slow', [
    { name: 'lib/more.bin', data: crypto.randomBytes(400 * 1024) }]));
  depot.behaviour.set(p, 'slow');
  const r = await install(d, { artifact: 'com.example:slowone:1' });
  for (let i = 0; i < 100; i++) {
    const s = (await d.req({ path: `/api/v1/jobs/${r.json.id}` })).json;
    if (s.state === 'running' && s.bytes_done > 0) break;
    await sleep(20);
  }
  const c = await d.req({ method: 'DELETE', path: `/api/v1/jobs/${r.json.id}` });
  assert.equal(c.status, 202, c.text);
  const j = await waitJob(d, r.json.id);
  assert.equal(j.state, 'cancelled');
  assert.equal(fs.existsSync(path.join(d.prefix, 'software/com.example/slowone')), false);
  assert.equal(fs.existsSync(path.join(d.prefix, `tmp/job-${r.json.id}`)), false);
  // Cancelling again: the job has ended.
  assert.equal((await d.req({ method: 'DELETE', path: `/api/v1/jobs/${r.json.id}` })).status, 409);
  assert.equal((await d.req({ method: 'DELETE', path: '/api/v1/jobs/999999' })).status, 404);
});

test('cancel a queued job: it never runs, and the cancel is an event', async () => {
  // One worker, busy with a slow install: the next job waits in the queue.
  const dep = await new Depot().start();
  const d1 = await startNodee({ args: ['--depot', dep.url], env: { NODEE_WORKERS: '1' } });
  try {
    const p = dep.put('com.q', 'busy', '1', appZip('busy', [
      { name: 'lib/pad.bin', data: crypto.randomBytes(200 * 1024) }]));
    dep.behaviour.set(p, 'slow');
    dep.put('com.q', 'waiting', '1', appZip('waiting'));
    const busy = (await install(d1, { artifact: 'com.q:busy:1' })).json;
    const waiting = (await install(d1, { artifact: 'com.q:waiting:1' })).json;
    assert.equal((await d1.req({ path: `/api/v1/jobs/${waiting.id}` })).json.state, 'queued');
    const c = await d1.req({ method: 'DELETE', path: `/api/v1/jobs/${waiting.id}` });
    assert.equal(c.status, 202, c.text);
    assert.equal(c.json.state, 'cancelled');
    await d1.req({ method: 'DELETE', path: `/api/v1/jobs/${busy.id}` });
    await waitJob(d1, busy.id);
    assert.equal(dep.count(Depot.zipPath('com.q', 'waiting', '1')), 0, 'never downloaded');
    const ev = sqlRows(path.join(d1.prefix, 'state/nodee.db'),
      "select kind from events where subject = 'com.q:waiting:1' order by id").map((x) => x.kind);
    assert.deepEqual(ev, ['artifact.install.requested', 'artifact.install.cancelled']);
    // HEAD is GET without a body, for health checks.
    const h = await d1.req({ method: 'HEAD', path: '/healthz' });
    assert.equal(h.status, 200);
    assert.equal(h.text, '');
  } finally {
    await stopClean(d1);
    await dep.stop();
  }
});

test('remove: the tree goes, the record goes, an event and a history row stay', async () => {
  depot.put('com.example', 'gone', '2', appZip('gone'));
  await waitJob(d, (await install(d, { artifact: 'com.example:gone:2' })).json.id);
  const dir = path.join(d.prefix, 'software/com.example/gone/2');
  assert.ok(fs.existsSync(dir));
  const r = await d.req({ method: 'DELETE', path: '/api/v1/artifacts/com.example/gone/2' });
  assert.equal(r.status, 202, r.text);
  assert.equal(r.json.kind, 'artifact.remove');
  const j = await waitJob(d, r.json.id);
  assert.equal(j.state, 'succeeded', j.error);
  assert.equal(fs.existsSync(dir), false);
  assert.equal(fs.existsSync(path.join(d.prefix, 'software/com.example/gone')), false);
  assert.equal((await d.req({ path: '/api/v1/artifacts/com.example/gone/2' })).status, 404);
  assert.equal((await d.req({ method: 'DELETE', path: '/api/v1/artifacts/com.example/gone/2' })).status, 404);
  const db = path.join(d.prefix, 'state/nodee.db');
  const hist = sqlRows(db, "select action, result from install_history where artifact = 'com.example:gone:2' order by job");
  assert.deepEqual(hist, [{ action: 'install', result: 'succeeded' }, { action: 'remove', result: 'succeeded' }]);
  assert.equal(sqlRows(db, "select count(*) n from events where kind = 'artifact.removed' and subject = 'com.example:gone:2'")[0].n, 1);
});

test('remove while a service uses the artifact is refused with its name', async () => {
  depot.put('com.example', 'used', '1', appZip('used'));
  await waitJob(d, (await install(d, { artifact: 'com.example:used:1' })).json.id);
  const db = path.join(d.prefix, 'state/nodee.db');
  // Services arrive with a later issue; their spec row is what the check reads.
  sqlRows(db, `insert into services (coordinate, spec, created_at, updated_at) values
    ('1.web.ops.cell', '{"artifact":"com.example:used:1"}', 0, 0)`);
  const r = await d.req({ method: 'DELETE', path: '/api/v1/artifacts/com.example/used/1' });
  assert.equal(r.status, 409, r.text);
  assert.match(r.json.detail, /1\.web\.ops\.cell/);
  const a = (await d.req({ path: '/api/v1/artifacts/com.example/used/1' })).json;
  assert.deepEqual(a.services, ['1.web.ops.cell']);
  sqlRows(db, "delete from services where coordinate = '1.web.ops.cell'");
  assert.ok(fs.existsSync(path.join(d.prefix, 'software/com.example/used/1/bin/start')));
});

test('a per-group depot and an explicit url', async () => {
  const other = await new Depot().start();
  const d2 = await startNodee({ args: ['--depot', depot.url, '--depot', `org.other=${other.url}`] });
  try {
    other.put('org.other', 'thing', '3', appZip('other'));
    let j = await waitJob(d2, (await install(d2, { artifact: 'org.other:thing:3' })).json.id);
    assert.equal(j.state, 'succeeded', j.error);
    assert.equal(other.count(Depot.zipPath('org.other', 'thing', '3')), 1);
    assert.equal(depot.count(Depot.zipPath('org.other', 'thing', '3')), 0);

    const p = other.put('x', 'y', '1', appZip('url'));
    j = await waitJob(d2, (await install(d2, { artifact: 'com.example:byurl:1', url: `${other.url}${p}` })).json.id);
    assert.equal(j.state, 'succeeded', j.error);
    assert.equal((await d2.req({ path: '/api/v1/artifacts/com.example/byurl/1' })).json.url, `${other.url}${p}`);
  } finally {
    await stopClean(d2);
    await other.stop();
  }
});

test('bad input is a 400 naming the field, and changes nothing', async () => {
  const cases = [
    [{ artifact: 'com.example:hello' }, /artifact: .* is not groupId:artifactId:version/],
    [{ artifact: 'a:b:c:d' }, /not groupId:artifactId:version/],
    [{ artifact: 'com/example:hello:1' }, /groupId: .*slash/],
    [{ artifact: 'com.example:..:1' }, /artifactId: .*'\.\.'/],
    [{ artifact: 'com.example:hello:1..2' }, /version: .*'\.\.'/],
    [{ artifact: 'com.example:he\u0001llo:1' }, /artifactId: contains a control character/],
    [{ artifact: `com.example:${'a'.repeat(129)}:1` }, /at most 128 bytes/],
    [{ artifact: 'com.example::1' }, /artifactId: must not be empty/],
    [{ artifact: 'com.example:hello:1', url: 'ftp://127.0.0.1/x.zip' }, /^url: /],
    [{ artifact: 'com.example:hello:1', url: 'file:///etc/passwd' }, /^url: /],
    [{ artifact: 'com.example:hello:1', sha256: 'abc' }, /^sha256: /],
    [{ artifact: 'com.example:hello:1', extra: 1 }, /^extra: unknown field/],
    [{ artifact: 7 }, /^artifact: required/],
    [[1, 2], /JSON object/],
  ];
  const before = (await d.req({ path: '/api/v1/jobs?limit=500' })).json.jobs.length;
  for (const [body, re] of cases) {
    const r = await install(d, body);
    assert.equal(r.status, 400, `${JSON.stringify(body)} -> ${r.text}`);
    assert.match(r.json.detail, re, JSON.stringify(body));
  }
  const nul = await d.req({ method: 'POST', path: '/api/v1/artifacts',
    headers: { 'Content-Type': 'application/json' }, body: '{"artifact":"com.example:a\\u0000b:1"}' });
  assert.equal(nul.status, 400);
  assert.equal((await d.req({ path: '/api/v1/artifacts/com.example/..%2F..%2Fetc/1' })).status, 400);
  assert.equal((await d.req({ path: '/api/v1/artifacts/com.example/a%00b/1' })).status, 404);
  assert.equal((await d.req({ path: '/api/v1/jobs/abc' })).status, 400);
  assert.equal((await d.req({ path: '/api/v1/jobs?state=bogus' })).status, 400);
  assert.equal((await d.req({ path: '/api/v1/jobs?limit=0' })).status, 400);
  assert.equal((await d.req({ path: '/api/v1/jobs?limit=500' })).json.jobs.length, before);
});

test('jobs: newest first, filtered by state and kind, paged', async () => {
  const all = (await d.req({ path: '/api/v1/jobs?limit=500' })).json.jobs;
  assert.ok(all.length >= 5);
  for (let i = 1; i < all.length; i++) assert.ok(all[i - 1].id > all[i].id);
  const failed = (await d.req({ path: '/api/v1/jobs?state=failed' })).json.jobs;
  assert.ok(failed.length >= 1);
  failed.forEach((j) => assert.equal(j.state, 'failed'));
  const removes = (await d.req({ path: '/api/v1/jobs?kind=artifact.remove' })).json.jobs;
  removes.forEach((j) => assert.equal(j.kind, 'artifact.remove'));
  const page1 = (await d.req({ path: '/api/v1/jobs?limit=2' })).json;
  assert.equal(page1.jobs.length, 2);
  assert.match(page1.next, /before=/);
  const page2 = (await d.req({ path: page1.next })).json;
  assert.equal(page2.jobs[0].id, all[2].id);
  const one = all[all.length - 1];
  for (const k of ['id', 'kind', 'subject', 'state', 'phase', 'bytes_done', 'bytes_total', 'error',
    'created_at', 'started_at', 'finished_at']) {
    assert.ok(k in one, k);
  }
});

test('hostile archives are refused and write nothing outside staging', async () => {
  const tag = crypto.randomBytes(4).toString('hex');
  const outside = `/tmp/nodee-evil-${tag}`;
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
  ];
  for (const [name, entries, re, opts] of cases) {
    depot.put('com.hostile', name, '1', makeZip(entries, opts));
    const r = await install(d, { artifact: `com.hostile:${name}:1` });
    assert.equal(r.status, 202, r.text);
    const j = await waitJob(d, r.json.id);
    assert.equal(j.state, 'failed', `${name} must fail`);
    assert.match(j.error, re, `${name}: ${j.error}`);
  }
  assert.equal(fs.existsSync(path.join(d.prefix, 'software/com.hostile')), false);
  assert.equal(fs.existsSync(outside), false);
  for (const p of ['evil', 'tmp/evil', 'software/evil', 'state/evil']) {
    assert.equal(fs.existsSync(path.join(d.prefix, p)), false, p);
  }
  assert.deepEqual(fs.readdirSync(path.join(d.prefix, 'tmp')), []);
  const db = path.join(d.prefix, 'state/nodee.db');
  assert.equal(sqlRows(db, "select count(*) n from events where kind = 'artifact.install.failed' and subject like 'com.hostile:%'")[0].n, cases.length);
});

test('kill -9 during installs: after a restart every job ends and no partial tree exists', async () => {
  const dep = await new Depot().start();
  const prefix = tmpdir('crash');
  let n1 = await startNodee({ prefix, args: ['--depot', dep.url] });
  const names = [];
  for (let i = 0; i < 6; i++) {
    const p = dep.put('com.crash', `c${i}`, '1', appZip(`c${i}`, [
      { name: 'lib/pad.bin', data: crypto.randomBytes(300 * 1024) }]));
    dep.behaviour.set(p, 'slow');
    names.push(`com.crash:c${i}:1`);
  }
  const ids = [];
  for (const a of names) ids.push((await install(n1, { artifact: a })).json.id);
  for (let i = 0; i < 200; i++) {
    const running = (await n1.req({ path: '/api/v1/jobs?state=running' })).json.jobs;
    if (running.some((j) => j.bytes_done > 0)) break;
    await sleep(20);
  }
  const k = await n1.stop('SIGKILL');
  assert.equal(k.signal, 'SIGKILL');
  dep.behaviour.clear();

  const n2 = await startNodee({ prefix, args: ['--depot', dep.url] });
  try {
    const jobs = await Promise.all(ids.map((id) => waitJob(n2, id, 60000)));
    for (const j of jobs) {
      assert.ok(j.state === 'succeeded' || (j.state === 'failed' && j.error), JSON.stringify(j));
    }
    const installed = (await n2.req({ path: '/api/v1/artifacts' })).json.artifacts
      .map((a) => a.coordinate).filter((c) => c.startsWith('com.crash:')).sort();
    const onDisk = softwareEntries(prefix).filter((c) => c.startsWith('com.crash:'));
    assert.deepEqual(onDisk, installed, 'every tree has its record and no other tree exists');
    for (const c of installed) {
      const [g, a, v] = c.split(':');
      const dir = path.join(prefix, 'software', g, a, v);
      assert.ok(fs.existsSync(path.join(dir, 'lib/pad.bin')), `${c} is whole`);
      assert.equal(fs.statSync(path.join(dir, 'lib/pad.bin')).size, 300 * 1024);
    }
    const requeued = sqlRows(path.join(prefix, 'state/nodee.db'), "select count(*) n from events where kind = 'jobs.requeued'")[0].n;
    assert.equal(requeued, 1);
  } finally {
    await stopClean(n2);
    await dep.stop();
  }
  n1 = null;
});
