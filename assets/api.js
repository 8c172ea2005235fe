// api: the console's only way to the daemon, its public REST API and
// WebSockets.  request() turns an RFC 9457 problem into an ApiError with
// the daemon's own detail; Socket keeps one WebSocket open, reconnecting
// with back-off, and says so when the connection comes and goes.

export class ApiError extends Error {
  constructor(status, title, detail, path) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = detail || '';
    this.path = path;
  }
}

// Called with the error when a request finds the session gone (401).
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

// method, path, body (an object sent as JSON); resolves with the parsed
// JSON (or text, or null for 204); rejects with an ApiError.
export async function request(method, path, body, opts = {}) {
  const init = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'No answer from the node', `${method} ${path}: ${e.message}`, path);
  }
  const type = res.headers.get('Content-Type') || '';
  const text = res.status === 204 ? '' : await res.text();
  let json = null;
  if (type.includes('json') && text) {
    try { json = JSON.parse(text); } catch (_) { json = null; }
  }
  if (!res.ok) {
    const err = json && json.title
      ? new ApiError(res.status, json.title, json.detail, path)
      : new ApiError(res.status, `HTTP ${res.status} ${res.statusText}`, text.slice(0, 300), path);
    if (res.status === 401 && !opts.quiet401) onUnauthorized(err);
    throw err;
  }
  if (res.status === 204) return null;
  return json !== null ? json : text;
}

export const get = (p, o) => request('GET', p, undefined, o);
export const post = (p, b, o) => request('POST', p, b, o);
export const put = (p, b, o) => request('PUT', p, b, o);
export const del = (p, o) => request('DELETE', p, undefined, o);

export const svcPath = (c, tail = '') => `/api/v1/services/${encodeURIComponent(c)}${tail}`;
export const artifactPath = (gav) => `/api/v1/artifacts/${gav.split(':').map(encodeURIComponent).join('/')}`;

// A WebSocket to path that comes back after it is lost: waits 1 s, 2 s,
// 4 s ... up to 30 s between tries.  handlers: message(obj), open(),
// lost(info) with {retryIn, attempt}; close() ends it for good.
export class Socket {
  constructor(path, handlers) {
    this.path = path;
    this.handlers = handlers;
    this.delay = 1000;
    this.attempt = 0;
    this.closed = false;
    this.connected = false;
    this.connect();
  }

  connect() {
    if (this.closed) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}${this.path}`);
    this.ws = ws;
    ws.onopen = () => {
      this.connected = true;
      this.attempt = 0;
      this.delay = 1000;
      if (this.handlers.open) this.handlers.open();
    };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (_) { return; }
      this.handlers.message(m);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.connected = false;
      if (this.closed) return;
      this.attempt++;
      const retryIn = this.delay;
      this.delay = Math.min(this.delay * 2, 30000);
      if (this.handlers.lost) this.handlers.lost({ retryIn, attempt: this.attempt });
      this.timer = setTimeout(() => this.connect(), retryIn);
    };
  }

  // Tries again now (the banner's "retry now").
  retryNow() {
    if (this.closed || this.connected) return;
    clearTimeout(this.timer);
    this.connect();
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
  }
}
