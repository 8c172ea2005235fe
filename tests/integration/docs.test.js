// The documentation that ships with nodee: the man page renders without
// a groff warning and has every section; the configuration keys in
// doc/nodee.8, README.md and conf/nodee.conf are exactly what
// `nodee help config` prints from the table in src/config.c (so they
// cannot drift from the code), and tools/docs.sh (`make docs`) puts them
// back; `make install` installs everything; the bash completion
// completes commands, subcommands, options and coordinates, and stays
// quiet when the daemon does not answer.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { BIN, tmpdir, cleanEnv, freePort } = require('./lib');

const ROOT = path.resolve(__dirname, '../..');
const MAN = path.join(ROOT, 'doc/nodee.8');
const COMPLETION = path.join(ROOT, 'conf/nodee.bash-completion');

// Where each generated block lives, and its markers.
const BLOCKS = [
  { file: 'doc/nodee.8', format: 'man',
    begin: '.\\" BEGIN generated: nodee help config --format man',
    end: '.\\" END generated: nodee help config' },
  { file: 'README.md', format: 'markdown',
    begin: '<!-- BEGIN generated: nodee help config --format markdown -->',
    end: '<!-- END generated: nodee help config -->' },
  { file: 'conf/nodee.conf', format: 'conf',
    begin: '# BEGIN generated: nodee help config --format conf',
    end: '# END generated: nodee help config' },
];

const SECTIONS = ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'COMMANDS',
  'CONFIGURATION', 'ENVIRONMENT', 'FILES', 'API', 'EXIT STATUS', 'EXAMPLES',
  'SEE ALSO'];

function nodee(args) {
  const r = spawnSync(BIN, args, { env: cleanEnv(), encoding: 'utf8' });
  assert.equal(r.status, 0, `nodee ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

// The keys of config_keys[] in src/config.c, read from the source so that
// a key the printer skipped would show.
function tableKeys() {
  const src = fs.readFileSync(path.join(ROOT, 'src/config.c'), 'utf8');
  const table = src.slice(src.indexOf('config_keys[] = {'));
  const body = table.slice(0, table.indexOf('\n};'));
  const keys = [...body.matchAll(/^\t\{ "([^"]+)",/mg)].map((m) => m[1]);
  assert.ok(keys.length >= 30, `found the table's keys (${keys.length})`);
  return keys;
}

// The text between a file's markers (markers excluded).
function block(text, b) {
  const i = text.indexOf(`${b.begin}\n`);
  const j = text.indexOf(`${b.end}\n`);
  assert.ok(i >= 0 && j > i, `${b.file} has both markers, in order`);
  assert.equal(text.indexOf(b.begin, i + 1), -1, `${b.file}: one BEGIN`);
  return text.slice(i + b.begin.length + 1, j);
}

// The man page rendered as man(1) shows it, at 80 columns.
function renderMan(file, warnings) {
  return spawnSync('man', [warnings, '-l', file], {
    encoding: 'utf8',
    env: { ...cleanEnv(), MANWIDTH: '80', LANG: 'C.UTF-8', MANPAGER: 'cat',
      PAGER: 'cat' },
  });
}

// The lines of `nodee --help` that show a client command, as
// { words: ['service', 'stop'], opts: ['--no-wait'] }.
function clientCommands() {
  const usage = nodee(['--help']);
  const cmds = [];
  for (const line of usage.split('\n')) {
    const m = /^ {2}nodee ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?(.*)$/.exec(line);
    if (!m || m[1] === 'daemon') continue;
    const group = ['artifact', 'service', 'job'].includes(m[1]);
    const words = group ? [m[1], m[2]] : [m[1]];
    const rest = group ? m[3] : `${m[2] ? ` ${m[2]}` : ''}${m[3]}`;
    cmds.push({ words, opts: [...rest.matchAll(/(?<![\w-])(--?[a-z][\w-]*)/g)].map((o) => o[1]) });
  }
  assert.ok(cmds.length >= 20, `nodee --help lists the commands (${cmds.length})`);
  return cmds;
}

test('man -l renders doc/nodee.8 without a warning, with every section', () => {
  // --warnings=w: every groff warning, not only the default "mac".
  for (const warnings of ['--warnings', '--warnings=w']) {
    const r = renderMan(MAN, warnings);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', `man ${warnings} says nothing on stderr`);
    for (const s of SECTIONS) {
      assert.match(r.stdout, new RegExp(`^${s}$`, 'm'), `section ${s}`);
    }
    // Options copy as they read: ASCII hyphens, nothing hyphenated.
    assert.ok(r.stdout.includes('--show-login'), 'ASCII hyphens in options');
    assert.ok(!r.stdout.includes('\u2010'), 'no word is hyphenated');
  }
  const page = renderMan(MAN, '--warnings=w').stdout;
  const at = (s) => page.indexOf(`\n${s}\n`);
  const config = page.slice(at('CONFIGURATION'), at('ENVIRONMENT'));
  for (const key of tableKeys()) {
    assert.match(config, new RegExp(`^ {7}${key.replace(/[.<>]/g, '\\$&')} \\(default: `, 'm'),
      `the rendered CONFIGURATION has ${key}`);
  }
  // Every client command of the usage, with each of its options in its
  // entries (a tag at column 7 and the indented text under it).
  const entries = page.slice(at('COMMANDS'), at('CONFIGURATION')).split(/\n(?= {7}\S)/);
  for (const c of clientCommands()) {
    const name = c.words.join(' ');
    const mine = entries.filter((e) => e.startsWith(`       ${name} `) || e.startsWith(`       ${name}\n`))
      .join('\n');
    assert.ok(mine !== '', `COMMANDS has ${name}`);
    for (const o of c.opts) {
      assert.ok(new RegExp(`(?<![\\w-])${o}(?![\\w-])`).test(mine), `COMMANDS: ${name} ${o}`);
    }
  }
  // The page's version is the binary's.
  const th = /^\.TH NODEE 8 \S+ "nodee ([^"]+)"/m.exec(fs.readFileSync(MAN, 'utf8'));
  assert.ok(th, 'a .TH line naming the version');
  assert.equal(`nodee ${th[1]}\n`, nodee(['--version']));
});

test('the keys in the man page, README and nodee.conf are what nodee help config prints', () => {
  const keys = tableKeys();
  for (const b of BLOCKS) {
    const want = nodee(['help', 'config', '--format', b.format]);
    const have = block(fs.readFileSync(path.join(ROOT, b.file), 'utf8'), b);
    assert.equal(have, want, `${b.file} is up to date: run make docs`);
    for (const key of keys) {
      const line = { man: `.TP\n\\fB${key}\\fR (default: `,
        markdown: `\n| \`${key}\` | `, conf: `\n#${key} =` }[b.format];
      assert.ok(`\n${want}`.includes(line), `${b.format} has ${key}`);
    }
  }
  // The markdown table is a table: every row has three cells.
  const md = nodee(['help', 'config', '--format', 'markdown']).trimEnd().split('\n');
  assert.equal(md.length, keys.length + 2);
  for (const row of md) {
    assert.equal(row.replace(/\\\|/g, '').split('|').length, 5, row);
  }
  // The default format is conf; a bad format or topic is bad usage.
  assert.equal(nodee(['help', 'config']), nodee(['help', 'config', '--format=conf']));
  for (const args of [['help', 'config', '--format', 'html'], ['help', 'confg'],
    ['help', 'config', 'extra']]) {
    const r = spawnSync(BIN, args, { env: cleanEnv(), encoding: 'utf8' });
    assert.equal(r.status, 2, `nodee ${args.join(' ')}`);
    assert.equal(r.stdout, '');
  }
  const r = spawnSync(BIN, ['help', 'confg'], { env: cleanEnv(), encoding: 'utf8' });
  assert.match(r.stderr, /unknown topic 'confg'; did you mean 'config'\?/);
  // nodee help alone is still the usage.
  assert.match(nodee(['help']), /^usage: nodee daemon \[options\]\n/);
  // The generated file is a configuration the daemon reads: every line a
  // comment, so it changes nothing.
  const conf = fs.readFileSync(path.join(ROOT, 'conf/nodee.conf'), 'utf8');
  for (const line of conf.split('\n')) {
    assert.ok(line === '' || line.startsWith('#'), `conf/nodee.conf: ${line}`);
  }
});

test('tools/docs.sh (make docs) rewrites only the blocks, and leaves current files alone', () => {
  const dir = tmpdir('docs');
  for (const b of BLOCKS) {
    fs.mkdirSync(path.join(dir, path.dirname(b.file)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, b.file), path.join(dir, b.file));
  }
  const run = () => execFileSync('sh', [path.join(ROOT, 'tools/docs.sh'), BIN],
    { cwd: dir, env: cleanEnv(), encoding: 'utf8' });
  assert.equal(run(), '', 'nothing to do on current files');
  // A stale block and a stale version come back; the rest is untouched.
  for (const b of BLOCKS) {
    const p = path.join(dir, b.file);
    const text = fs.readFileSync(p, 'utf8');
    fs.writeFileSync(p, text.replace(`${b.begin}\n`, `${b.begin}\nstale line\n`)
      .replace(/^(\.TH NODEE 8 \S+ )"nodee [^"]*"/m, '$1"nodee 0.0.0"'));
  }
  assert.match(run(), /docs: doc\/nodee.8\ndocs: README.md\ndocs: conf\/nodee.conf\n/);
  for (const b of BLOCKS) {
    assert.equal(fs.readFileSync(path.join(dir, b.file), 'utf8'),
      fs.readFileSync(path.join(ROOT, b.file), 'utf8'), b.file);
  }
  // A file without its markers is an error, not a silent no-op.
  fs.writeFileSync(path.join(dir, 'README.md'), '# nodee\n');
  const r = spawnSync('sh', [path.join(ROOT, 'tools/docs.sh'), BIN],
    { cwd: dir, env: cleanEnv(), encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /README.md: want one BEGIN and one END marker/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('make install DESTDIR= PREFIX=/usr installs the binary, conf, unit, man page and completion', () => {
  const dest = tmpdir('install');
  // -o nodee: install the binary make test built, never relink it while
  // the other test files run it (node --test runs files in parallel).
  assert.ok(fs.existsSync(path.join(ROOT, 'nodee')), 'make nodee first');
  const env = cleanEnv();
  for (const k of ['MAKEFLAGS', 'MFLAGS', 'MAKELEVEL']) delete env[k];
  execFileSync('make', ['--no-print-directory', '-C', ROOT, '-o', 'nodee', 'install',
    `DESTDIR=${dest}`, 'PREFIX=/usr'], { env, stdio: 'pipe', timeout: 120000 });
  const files = {
    'usr/bin/nodee': 0o755,
    'etc/nodee/nodee.conf': 0o644,
    'lib/systemd/system/nodee.service': 0o644,
    'usr/share/man/man8/nodee.8': 0o644,
    'usr/share/bash-completion/completions/nodee': 0o644,
  };
  for (const [f, mode] of Object.entries(files)) {
    const st = fs.statSync(path.join(dest, f));
    assert.equal(st.mode & 0o777, mode, `${f} mode`);
  }
  const same = (a, b) => assert.equal(fs.readFileSync(path.join(dest, a), 'utf8'),
    fs.readFileSync(path.join(ROOT, b), 'utf8'), a);
  same('etc/nodee/nodee.conf', 'conf/nodee.conf');
  same('usr/share/man/man8/nodee.8', 'doc/nodee.8');
  same('usr/share/bash-completion/completions/nodee', 'conf/nodee.bash-completion');
  assert.match(fs.readFileSync(path.join(dest, 'lib/systemd/system/nodee.service'), 'utf8'),
    /^ExecStart=\/usr\/bin\/nodee daemon /m);
  const v = execFileSync(path.join(dest, 'usr/bin/nodee'), ['--version'], { encoding: 'utf8' });
  assert.match(v, /^nodee \d+\.\d+\.\d+\n$/);
  // The installed page is one man(1) finds by name under that tree.
  const r = spawnSync('man', ['-M', path.join(dest, 'usr/share/man'), '8', 'nodee'], {
    encoding: 'utf8', env: { ...cleanEnv(), MANWIDTH: '80', MANPAGER: 'cat', PAGER: 'cat' } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^NAME\n {7}nodee - /m);
  fs.rmSync(dest, { recursive: true, force: true });
});

// Sources the completion in bash and calls _nodee with COMP_WORDS and
// COMP_CWORD as bash would set them (the last word is the one being
// completed); the replies, sorted, and what bash printed.
function complete(words, env = {}) {
  const script = 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); '
    + '_nodee; printf "%s\\n" "${COMPREPLY[@]}"';
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', script, 'bash', COMPLETION, ...words],
    { encoding: 'utf8', env: { ...cleanEnv(), ...env }, timeout: 20000 });
  assert.equal(r.status, 0, r.stderr);
  return { words: r.stdout.split('\n').filter((w) => w !== '').sort(), stderr: r.stderr };
}

test('bash completion: commands, subcommands, options, values, files, coordinates', async () => {
  const c = (...words) => complete(['nodee', ...words]).words;
  assert.deepEqual(c('ser'), ['service']);
  assert.deepEqual(c('service', 'st'), ['start', 'stop']);
  assert.deepEqual(c('job', ''), ['--help', 'cancel', 'ls', 'show', 'wait']);
  assert.deepEqual(c('service', 'logs', 'x', '-'),
    ['--help', '--json', '--prefix', '--stderr', '--token', '--url', '-f', '-n']);
  assert.deepEqual(c('daemon', '--log-level', ''), ['debug', 'error', 'info', 'warn']);
  assert.deepEqual(c('help', 'config', '--format', 'm'), ['man', 'markdown']);
  assert.deepEqual(c('--url', 'http://x', 'service', 'dr'), ['drain'], 'global options skipped');
  assert.ok(c('daemon', '--').includes('--show-login'));

  // Every top-level word, subcommand and option of the usage is offered.
  const top = c('');
  for (const cmd of clientCommands()) {
    assert.ok(top.includes(cmd.words[0]), `top level offers ${cmd.words[0]}`);
    if (cmd.words.length === 2) {
      assert.ok(c(cmd.words[0], '').includes(cmd.words[1]), `${cmd.words.join(' ')}`);
    }
    const opts = c(...cmd.words, '-');
    for (const o of cmd.opts) assert.ok(opts.includes(o), `${cmd.words.join(' ')} offers ${o}`);
  }

  // Files: zips and directories for artifact install, any file for put.
  const dir = tmpdir('compl');
  fs.mkdirSync(path.join(dir, 'sub'));
  for (const f of ['a.zip', 'spec.json']) fs.writeFileSync(path.join(dir, f), '');
  assert.deepEqual(c('artifact', 'install', `${dir}/`), [`${dir}/a.zip`, `${dir}/sub`]);
  assert.deepEqual(c('service', 'put', '1.a.b.c', `${dir}/s`), [`${dir}/spec.json`, `${dir}/sub`]);

  // Coordinates come from `nodee service ls --json` when a token is
  // readable (a stand-in binary answers, and records how it was asked).
  const fake = path.join(dir, 'nodee');
  fs.writeFileSync(fake, `#!/bin/sh\necho "$@" > "${dir}/args"\n`
    + 'case $1 in\n'
    + 'service) printf \'{\\n  "services": [\\n    {\\n      "coordinate": "1.web.ops.prod"\\n    },\\n'
    + '    {\\n      "coordinate": "2.web.ops.prod"\\n    }\\n  ]\\n}\\n\' ;;\n'
    + 'artifact) printf \'{"artifacts": [{"coordinate": "com.example:hello:1.0", "services": ["1.web.ops.prod"]}]}\\n\' ;;\n'
    + 'esac\n', { mode: 0o755 });
  const withToken = { NODEE_TOKEN: 'secret' };
  assert.deepEqual(complete([fake, 'service', 'stop', ''], withToken).words,
    ['1.web.ops.prod', '2.web.ops.prod']);
  assert.match(fs.readFileSync(path.join(dir, 'args'), 'utf8'), /^service ls --json /);
  assert.deepEqual(complete([fake, '--url', 'http://n:1', 'service', 'logs', '2'], withToken).words,
    ['2.web.ops.prod']);
  assert.match(fs.readFileSync(path.join(dir, 'args'), 'utf8'), /--url http:\/\/n:1/);
  assert.deepEqual(complete([fake, 'artifact', 'rm', ''], withToken).words, ['com.example:hello:1.0']);
  // No token anywhere: the daemon is not asked.
  fs.rmSync(path.join(dir, 'args'));
  assert.deepEqual(complete([fake, 'service', 'stop', ''],
    { NODEE_PREFIX: path.join(dir, 'none') }).words, []);
  assert.ok(!fs.existsSync(path.join(dir, 'args')), 'not asked without a token');
  // A token file in the prefix is enough.
  fs.mkdirSync(path.join(dir, 'p/state'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'p/state/token'), 'secret\n');
  assert.deepEqual(complete([fake, '--prefix', path.join(dir, 'p'), 'service', 'start', '1'], {}).words,
    ['1.web.ops.prod']);

  // The real client against a port where nothing listens: no
  // coordinates, and not a word on the terminal.
  const port = await freePort();
  const down = complete([BIN, 'service', 'stop', ''],
    { NODEE_TOKEN: 'secret', NODEE_URL: `http://127.0.0.1:${port}` });
  assert.deepEqual(down.words, []);
  assert.equal(down.stderr, '');
  fs.rmSync(dir, { recursive: true, force: true });
});
