// dom: the few helpers every view uses to build the page with DOM APIs
// (never innerHTML with data, as the CSP and safety ask), and the
// formatters for bytes, durations and times.

// h('button', {class: 'x', onclick: f, dataset: {testid: 'y'}}, 'text', child...)
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (v === false) { if (k in el) el[k] = false; continue; }
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) add(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// An element with a data-testid, the tests' handle on it.
export function tid(el, id) {
  el.dataset.testid = id;
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  add(el, children);
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  return el;
}

export function bytes(n) {
  if (n === null || n === undefined) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return `${i ? v.toFixed(v < 10 ? 1 : 0) : v} ${u[i]}`;
}

export function duration(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return '–';
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  if (d) return `${d}d ${hh}h`;
  if (hh) return `${hh}h ${mm}m`;
  if (mm) return `${mm}m ${ss}s`;
  return `${ss}s`;
}

// Epoch milliseconds as local time, with a <time> element for machines.
export function when(ms) {
  if (!ms) return '–';
  const d = new Date(ms);
  return h('time', { datetime: d.toISOString(), title: d.toISOString() },
    d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' }));
}

// How a process ended: {code, signal} or null.
export function exitText(e) {
  if (!e) return '–';
  if (e.signal) return `signal ${e.signal}`;
  if (e.code !== null && e.code !== undefined) return `code ${e.code}`;
  return 'unknown';
}

// Runs fn, which rebuilds part of box; the element that had the focus in
// box (found again by its data-testid) gets it back, so a keyboard user
// keeps their place across live updates.
export function keepFocus(box, fn) {
  const f = document.activeElement;
  const key = f && box.contains(f) ? f.dataset.testid : null;
  fn();
  if (!key) return;
  const again = box.querySelector(`[data-testid="${CSS.escape(key)}"]`);
  if (again) again.focus();
}

// Calls fn at most once per animation frame however often it is asked.
export function batched(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; fn(); });
  };
}

// #/services/<coordinate> for a service page.
export function serviceHref(c) {
  return `#/services/${encodeURIComponent(c)}`;
}
