// The S3 server of the integration tests, run by s3.js as a child process
// (never required by a test): npm's s3rver behind a front on another
// loopback port that checks AWS Signature V4 the way S3 does.  The front
// exists because s3rver 3.7.1 does not check V4 signatures: its
// authentication middleware takes any V4 signature from a known key id
// ("Signature version 4 calculation is unimplemeneted", lib/middleware/
// authentication.js), and lets requests without one through.  The front
// refuses unsigned requests, unknown keys, bad signatures, unsigned
// x-amz-* headers, stale dates and bodies that do not match their
// x-amz-content-sha256, with S3's codes and XML bodies, then hands the
// request to s3rver, which stores the objects under the directory it is
// given.  It can also be told to fail chosen requests (a status and an S3
// error code, or a reset connection), and reports every request to
// s3.js over the IPC channel.  It exits when that channel closes, and
// removes its directory, so it cannot outlive the test that started it.
//
// The SigV4 code is also what s3.js signs its own requests with.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');

const SKEW_MS = 15 * 60 * 1000;
const MAX_BODY = 256 * 1024 * 1024;
const EMPTY_SHA256 = crypto.createHash('sha256').update('').digest('hex');

function sha256hex(data) {
  return crypto.createHash('sha256').update(data).digest('hex');
}

function hmac(key, data) {
  return crypto.createHmac('sha256', key).update(data).digest();
}

// RFC 3986 encoding as SigV4 wants it: all but A-Z a-z 0-9 - . _ ~.
function uriEncode(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function decode(s) {
  try { return decodeURIComponent(s); } catch (_) { return s; }
}

// S3's canonical URI: each segment of the path as received, decoded and
// encoded again, so that a client that encoded differently from S3 (a
// '+' or a space left as is) fails as it would against S3.
function canonicalPath(rawPath) {
  return rawPath.split('/').map((seg) => uriEncode(decode(seg))).join('/');
}

function canonicalQuery(rawQuery) {
  if (!rawQuery) return '';
  return rawQuery.split('&').filter(Boolean).map((p) => {
    const i = p.indexOf('=');
    const k = i < 0 ? p : p.slice(0, i);
    const v = i < 0 ? '' : p.slice(i + 1);
    return [uriEncode(decode(k.replace(/\+/g, ' '))),
      uriEncode(decode(v.replace(/\+/g, ' ')))];
  }).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`).join('&');
}

// The signature of a request: headers maps lower-case names to their
// canonical values.
function signature(r) {
  const canonical = [
    r.method,
    canonicalPath(r.path),
    canonicalQuery(r.query),
    r.signedHeaders.map((h) => `${h}:${r.headers[h] ?? ''}\n`).join(''),
    r.signedHeaders.join(';'),
    r.payloadHash,
  ].join('\n');
  const scope = `${r.date}/${r.region}/${r.service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', r.amzDate, scope, sha256hex(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${r.secret}`, r.date), r.region), r.service),
    'aws4_request');
  return { signature: hmac(key, toSign).toString('hex'), canonical, toSign };
}

// Headers (host, x-amz-*, authorization) for a request s3.js sends.
function sign(o) {
  const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  const date = amzDate.slice(0, 8);
  const payloadHash = o.payloadHash || sha256hex(o.body || '');
  const headers = {
    host: o.host,
    'x-amz-content-sha256': payloadHash,
    'x-amz-date': amzDate,
    ...(o.sessionToken ? { 'x-amz-security-token': o.sessionToken } : {}),
    ...(o.headers || {}),
  };
  const lower = {};
  for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = String(v).trim();
  const signedHeaders = Object.keys(lower).sort();
  const [path, query = ''] = o.path.split('?');
  const { signature: sig } = signature({
    method: o.method, path, query, headers: lower, signedHeaders, payloadHash,
    amzDate, date, region: o.region, service: 's3', secret: o.secretAccessKey,
  });
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${o.accessKeyId}/${date}/${o.region}/s3/aws4_request, SignedHeaders=${signedHeaders.join(';')}, Signature=${sig}`;
  return headers;
}

// "20260101T000000Z" as a Date (NaN if it is not one).
function parseAmzDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
  if (!m) return new Date(NaN);
  return new Date(Date.UTC(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

// The request's headers as SigV4 reads them: lower-case names, values
// trimmed with inner runs of spaces as one, repeats joined by commas.
function canonicalHeaders(rawHeaders) {
  const h = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const k = rawHeaders[i].toLowerCase();
    const v = rawHeaders[i + 1].trim().replace(/\s+/g, ' ');
    h[k] = k in h ? `${h[k]},${v}` : v;
  }
  return h;
}

function s3error(status, code, message) {
  return { status, code, message };
}

// null if the request is signed as S3 would accept it, else the error.
function verify(req, body, cfg) {
  const [path, query = ''] = req.url.split('?');
  if (/(^|&)X-Amz-(Algorithm|Signature)=/i.test(query)) {
    return s3error(403, 'AccessDenied', 'Presigned URLs are not supported by this test server');
  }
  const auth = req.headers.authorization;
  if (!auth) return s3error(403, 'AccessDenied', 'Access Denied');
  const m = /^AWS4-HMAC-SHA256 Credential=([^,]+), ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) {
    return s3error(400, 'AuthorizationHeaderMalformed',
      'The authorization header is malformed; it must be AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...');
  }
  const [keyId, date, region, service, terminal, ...rest] = m[1].split('/');
  const cred = cfg.credentials.find((c) => c.accessKeyId === keyId);
  if (!cred) {
    return s3error(403, 'InvalidAccessKeyId',
      'The AWS Access Key Id you provided does not exist in our records.');
  }
  const headers = canonicalHeaders(req.rawHeaders);
  const payloadHash = headers['x-amz-content-sha256'];
  if (!payloadHash) {
    return s3error(400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
  }
  if (payloadHash !== 'UNSIGNED-PAYLOAD' && !/^[0-9a-f]{64}$/.test(payloadHash)) {
    return s3error(400, 'InvalidArgument',
      'x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value.');
  }
  const amzDate = headers['x-amz-date'];
  const when = parseAmzDate(amzDate);
  if (Number.isNaN(when.getTime())) {
    return s3error(403, 'AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
  }
  if (Math.abs(Date.now() - when.getTime()) > SKEW_MS) {
    return s3error(403, 'RequestTimeTooSkewed',
      'The difference between the request time and the current time is too large.');
  }
  if (date !== amzDate.slice(0, 8) || region !== cfg.region || service !== 's3'
      || terminal !== 'aws4_request' || rest.length) {
    return s3error(400, 'AuthorizationHeaderMalformed',
      `The authorization header is malformed; the credential scope ${m[1].split('/').slice(1).join('/')} is wrong; expecting ${amzDate.slice(0, 8)}/${cfg.region}/s3/aws4_request`);
  }
  const signedHeaders = m[2].split(';');
  const unsigned = Object.keys(headers).filter((h) => h.startsWith('x-amz-') && !signedHeaders.includes(h));
  if (!signedHeaders.includes('host') || unsigned.length) {
    return s3error(403, 'AccessDenied',
      `There were headers present in the request which were not signed: ${['host', ...unsigned].filter((h) => !signedHeaders.includes(h)).join(', ')}`);
  }
  const s = signature({
    method: req.method, path, query, headers, signedHeaders, payloadHash, amzDate,
    date, region, service, secret: cred.secretAccessKey,
  });
  if (s.signature !== m[3]) {
    return s3error(403, 'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
  }
  if ((cred.sessionToken || headers['x-amz-security-token'])
      && headers['x-amz-security-token'] !== cred.sessionToken) {
    return s3error(403, 'InvalidToken', 'The provided token is malformed or otherwise invalid.');
  }
  if (payloadHash !== 'UNSIGNED-PAYLOAD' && payloadHash !== sha256hex(body)) {
    return s3error(400, 'XAmzContentSHA256Mismatch',
      "The provided 'x-amz-content-sha256' header does not match what was computed.");
  }
  return null;
}

function xmlEscape(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&${{
    '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos',
  }[c]};`);
}

function errorBody(e, resource) {
  return '<?xml version="1.0" encoding="UTF-8"?>\n'
    + `<Error><Code>${xmlEscape(e.code)}</Code><Message>${xmlEscape(e.message)}</Message>`
    + `<Resource>${xmlEscape(resource)}</Resource><RequestId>nodee-test</RequestId></Error>`;
}

// bucket and key (decoded) of a path-style request path.
function objectOf(rawPath) {
  const parts = rawPath.split('/').slice(1);
  return { bucket: decode(parts[0] || ''), key: parts.slice(1).map(decode).join('/') };
}

async function main() {
  // Required here so that s3.js can require this file for sign() alone.
  // eslint-disable-next-line global-require
  const S3rver = require('s3rver');
  const cfg = await new Promise((resolve) => process.once('message', resolve));
  const faults = [];
  const inner = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: cfg.dir,
    vhostBuckets: false,
    configureBuckets: cfg.buckets.map((name) => ({ name })),
  });
  const innerAddr = await inner.run();

  const report = (entry) => { if (process.connected) process.send({ type: 'request', entry }); };

  const handle = (req, res, body) => {
    const { bucket, key } = objectOf(req.url.split('?')[0]);
    const entry = {
      method: req.method, path: req.url, bucket, key, status: 0, code: null,
      bytes: body.length, userAgent: req.headers['user-agent'] || '',
      accessKeyId: (/Credential=([^/]+)\//.exec(req.headers.authorization || '') || [])[1] || null,
    };
    const answer = (status, headers, data) => {
      entry.status = status;
      if (status >= 300) entry.code = (/<Code>([^<]*)<\/Code>/.exec(String(data)) || [])[1] || null;
      report(entry);
      res.writeHead(status, { 'Content-Length': Buffer.byteLength(data), ...headers });
      res.end(data);
    };
    const e = verify(req, body, cfg);
    if (e) {
      answer(e.status, { 'Content-Type': 'application/xml' }, errorBody(e, req.url.split('?')[0]));
      return;
    }
    const f = faults.find((x) => (!x.method || x.method === req.method) && x.bucket === bucket
      && (x.key === undefined || x.key === key));
    if (f) {
      if (f.times && --f.times === 0) faults.splice(faults.indexOf(f), 1);
      if (f.reset) {
        entry.code = 'reset';
        report(entry);
        req.socket.destroy();
        return;
      }
      answer(f.status, { 'Content-Type': 'application/xml' }, errorBody(f, req.url.split('?')[0]));
      return;
    }
    const headers = { ...req.headers, 'content-length': String(body.length) };
    for (const h of ['authorization', 'connection', 'expect', 'transfer-encoding', 'keep-alive']) delete headers[h];
    const fwd = http.request({
      host: '127.0.0.1', port: innerAddr.port, method: req.method, path: req.url, headers, agent: false,
    }, (ir) => {
      const chunks = [];
      ir.on('data', (c) => chunks.push(c));
      ir.on('end', () => {
        const h = { ...ir.headers };
        for (const x of ['connection', 'keep-alive', 'transfer-encoding', 'content-length']) delete h[x];
        answer(ir.statusCode, h, Buffer.concat(chunks));
      });
    });
    fwd.on('error', (err) => answer(500, { 'Content-Type': 'application/xml' },
      errorBody({ code: 'InternalError', message: err.message }, req.url)));
    fwd.end(body);
  };

  const front = http.createServer((req, res) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => handle(req, res, Buffer.concat(chunks)));
  });
  await new Promise((resolve) => front.listen(0, '127.0.0.1', resolve));

  process.on('message', (msg) => {
    if (msg.type === 'fault') faults.push(msg.fault);
    else if (msg.type === 'clearFaults') faults.length = 0;
    process.send({ type: 'ok', id: msg.id });
  });
  // The test process is gone (even by SIGKILL): so is everything here.
  process.on('disconnect', () => {
    fs.rmSync(cfg.root, { recursive: true, force: true });
    process.exit(0);
  });
  process.send({ type: 'ready', port: front.address().port });
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  });
}

module.exports = { sign, verify, sha256hex, uriEncode, EMPTY_SHA256 };
