// README's "Five minutes with nodee": every command between the
// <!-- walkthrough --> markers, in order, as it is written there, against a
// real daemon, each with its own expectation of what it shows.
//
// The commands run with `sh -c` in a temporary directory laid out like the
// checkout after `make run`: `nodee` (a link to the binary under test), a
// copy of `examples/` (the walk-through writes the zip next to it) and `var/`,
// the daemon's prefix.  The daemon listens on a free port given as NODEE_URL
// (the README relies on the default URL of `make run`).  One substitution:
// the example's port, 8081, is replaced by a free port in the commands and in
// the copy of examples/hello.json, so that tests running at the same time
// never meet.  An `export` line is run like the others and stays in effect
// for the commands after it, as in a terminal.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const {
  BIN, startNodee, stopClean, cleanEnv, tmpdir, freePort, killLeftovers, waitSvc,
  isRunning, alive, svcGet,
} = require('./lib');

const ROOT = path.resolve(__dirname, '../..');
const PORT = '8081';		// the example's port in README.md and examples/hello.json
const GAV = 'example:hello:1.0.0';
const COORD = '1.hello.example.cell';

const prefixes = new Set();
const running = new Set();	// shells of commands still running
process.on('exit', () => {
  for (const p of running) {
    try { process.kill(-p.pid, 'SIGKILL'); } catch (_) { /* gone */ }
  }
  for (const p of prefixes) killLeftovers(p);
});

// The commands of the README's walk-through: the fenced block between the
// markers, without blank and comment lines, a trailing `\` joining lines.
function walkthrough() {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const open = '<!-- walkthrough -->';
  const close = '<!-- /walkthrough -->';
  assert.equal(readme.split(open).length, 2, `README.md must have one ${open}`);
  assert.equal(readme.split(close).length, 2, `README.md must have one ${close}`);
  const part = readme.slice(readme.indexOf(open) + open.length, readme.indexOf(close));
  const m = part.match(/^```sh\n([\s\S]*?)^```\s*$/m);
  assert.ok(m, 'a ```sh block between the walk-through markers');
  return m[1].replace(/\\\n/g, ' ').split('\n').map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

// Runs one command line in its own process group, killed (by its pid) if it
// takes more than a minute; resolves with its exit status and output.
function sh(script, cwd, env) {
  return new Promise((resolve) => {
    const p = spawn('/bin/sh', ['-c', script], {
      cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(p);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (x) => { stdout += x; });
    p.stderr.on('data', (x) => { stderr += x; });
    const timer = setTimeout(() => {
      try { process.kill(-p.pid, 'SIGKILL'); } catch (_) { /* gone */ }
    }, 60000);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(p);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// What each command of the walk-through must show.  `before` waits for what
// a person waits for between two commands; `check` gets the output (and the
// daemon).  Every command must match exactly one of these, so a command
// added to the README without an expectation fails the test.
const EXPECT = [
  {
    what: 'export NODEE_PREFIX',
    match: /^export NODEE_PREFIX=\$PWD\/var\b/,
    check: ({ r }) => assert.equal(r.stdout, ''),
  },
  {
    what: 'the zip of examples/hello',
    match: /\bzip\b.*hello-1\.0\.0\.zip/,
    check: ({ work }) => {
      const names = execFileSync('unzip', ['-Z1', path.join(work, 'hello-1.0.0.zip')],
        { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
      assert.deepEqual(names, ['bin/', 'bin/start', 'www/', 'www/index.html.in']);
    },
  },
  {
    what: 'artifact install of the zip',
    match: /^\.\/nodee artifact install \.\/hello-1\.0\.0\.zip --as example:hello:1\.0\.0$/,
    check: async ({ r, d }) => {
      assert.match(r.stdout, /^job \d+ succeeded$/m);
      const a = await d.req({ path: `/api/v1/artifacts/${GAV.replace(/:/g, '/')}` });
      assert.equal(a.status, 200, a.text);
      assert.equal(a.json.file_count, 2);
      const start = path.join(d.prefix, 'software/example/hello/1.0.0/bin/start');
      assert.equal(fs.statSync(start).mode & 0o777, 0o555);
    },
  },
  {
    what: 'service put of examples/hello.json',
    match: /^\.\/nodee service put 1\.hello\.example\.cell examples\/hello\.json$/,
    check: ({ r }) => assert.match(r.stdout, /^1\.hello\.example\.cell: (preparing|starting|running)$/m),
  },
  {
    what: 'service ls',
    match: /^\.\/nodee service ls$/,
    // `running` after start.min_uptime_ms (1 s): the reader takes that long.
    before: ({ d }) => waitSvc(d, COORD, isRunning, 'running'),
    check: async ({ r, d }) => {
      const lines = r.stdout.trim().split('\n');
      assert.match(lines[0], /^COORDINATE +STATE +PID +RESTARTS +UPTIME +REASON$/);
      const s = (await svcGet(d, COORD)).json;
      assert.equal(lines.length, 2, r.stdout);
      assert.match(lines[1], new RegExp(`^1\\.hello\\.example\\.cell +running +${s.pid} +0 +`));
      // An unprivileged uid of its own, in its runtime directory.
      if (process.getuid() === 0) assert.ok(s.uid >= 70000 && s.uid <= 79999, `uid ${s.uid}`);
      const rt = path.join(d.prefix, 'runtime/cell/example/hello/1');
      assert.equal(fs.realpathSync(`/proc/${s.pid}/cwd`), fs.realpathSync(rt));
      assert.equal(fs.statSync(`/proc/${s.pid}`).uid, s.uid);
    },
  },
  {
    what: 'curl of the page',
    match: /^curl (-\S+ )*http:\/\/127\.0\.0\.1:\d+\/$/,
    check: ({ r }) => {
      assert.match(r.stdout, /<h1>Hello from nodee!<\/h1>/);
      assert.match(r.stdout, /<code>1\.hello\.example\.cell<\/code>/);
      assert.doesNotMatch(r.stdout, /\$\{/);
    },
  },
  {
    what: 'service logs',
    match: /^\.\/nodee service logs 1\.hello\.example\.cell$/,
    check: ({ r, d }) => {
      const rt = fs.realpathSync(path.join(d.prefix, 'runtime/cell/example/hello/1'));
      assert.match(r.stdout, /^1\.hello\.example\.cell: serving \S+\/www on http:\/\/127\.0\.0\.1:\d+\//m);
      assert.ok(r.stdout.includes(`serving ${rt}/www`) ||
        r.stdout.includes(`serving ${path.join(d.prefix, 'runtime/cell/example/hello/1')}/www`), r.stdout);
      assert.match(r.stdout, /^127\.0\.0\.1 - - \[[^\]]+\] "GET \/ HTTP\/1\.1" 200 -$/m);
    },
  },
  {
    what: 'service stop',
    match: /^\.\/nodee service stop 1\.hello\.example\.cell$/,
    check: async ({ r, d, pid }) => {
      assert.equal(r.stdout, '1.hello.example.cell: stopped\n');
      const s = (await svcGet(d, COORD)).json;
      assert.equal(s.state, 'stopped');
      // SIGTERM ends the server cleanly: exit status 0, no signal.
      assert.equal(s.last_exit.code, 0, JSON.stringify(s.last_exit));
      assert.equal(alive(pid), false);
      const out = fs.readFileSync(path.join(d.prefix, 'runtime/cell/example/hello/1/log/stdout'), 'utf8');
      assert.match(out, /^SIGTERM: stopping\nstopped\n$/m);
    },
  },
];

test('README: five minutes with nodee, every command as written', { timeout: 180000 }, async () => {
  const cmds = walkthrough();
  const port = String(await freePort());

  // The checkout as `make run` leaves it: ./nodee, ./examples, ./var.
  const work = tmpdir('walk');
  fs.chmodSync(work, 0o755);	// the service's uid passes through it
  fs.symlinkSync(BIN, path.join(work, 'nodee'));
  fs.cpSync(path.join(ROOT, 'examples'), path.join(work, 'examples'), { recursive: true });
  assert.equal(fs.statSync(path.join(work, 'examples/hello/bin/start')).mode & 0o111, 0o111);
  const spec = path.join(work, 'examples/hello.json');
  const text = fs.readFileSync(spec, 'utf8');
  assert.equal(text.split(`"${PORT}"`).length, 2, `examples/hello.json names port ${PORT} once`);
  fs.writeFileSync(spec, text.replace(`"${PORT}"`, `"${port}"`));
  assert.ok(cmds.some((c) => c.includes(`:${PORT}/`)), `a command uses port ${PORT}`);

  const prefix = path.join(work, 'var');
  prefixes.add(prefix);
  const d = await startNodee({ prefix });
  const env = { ...cleanEnv(), NODEE_URL: `http://127.0.0.1:${d.port}`, PWD: work, NO_COLOR: '1' };
  const exports = [];
  let pid = 0;
  try {
    for (const cmd of cmds) {
      const e = EXPECT.filter((x) => x.match.test(cmd));
      assert.equal(e.length, 1, `README command without exactly one expectation here: ${cmd}`);
      const ctx = { d, work, pid };
      if (e[0].before) await e[0].before(ctx);
      const run = cmd.replaceAll(`:${PORT}/`, `:${port}/`);
      const r = await sh([...exports, run].join('\n'), work, env);
      if (/^export /.test(cmd)) exports.push(cmd);
      const detail = `${cmd}\nexit ${r.code} ${r.signal || ''}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}` +
        `\ndaemon log:\n${d.stderr.split('\n').slice(-20).join('\n')}`;
      assert.equal(r.code, 0, detail);
      ctx.r = r;
      try {
        await e[0].check(ctx);
      } catch (err) {
        err.message += `\n(${e[0].what}) ${detail}`;
        throw err;
      }
      const s = await svcGet(d, COORD);
      if (s.status === 200 && s.json.pid > 0) ({ pid } = s.json);
    }
    // Every expectation was met by one command.
    for (const x of EXPECT) {
      assert.ok(cmds.some((c) => x.match.test(c)), `README's walk-through lacks: ${x.what}`);
    }
    await stopClean(d);
  } finally {
    await d.stop('SIGKILL');
    killLeftovers(prefix);
  }
  fs.rmSync(work, { recursive: true, force: true });
});
