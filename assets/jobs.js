// jobs: how a job's progress reads (a progress bar with phase, bytes and
// rate) and a cancel button, shared by the artifacts and jobs pages.

import * as api from './api.js';
import { h, tid, bytes } from './dom.js';

export const active = (j) => j.state === 'queued' || j.state === 'running';

// Bytes a second over the job's run so far, or null.
function rate(j) {
  if (!j.started_at || !j.bytes_done) return null;
  const ms = (j.finished_at || Date.now()) - j.started_at;
  return ms > 0 ? j.bytes_done * 1000 / ms : null;
}

// A <div> with the bar and its words; the bar is full once the job
// succeeded, whatever the byte counts say.
export function progress(j) {
  const total = j.bytes_total || 0;
  const bar = tid(h('progress', {}), `job-progress-${j.id}`);
  if (j.state === 'succeeded') {
    bar.max = 1;
    bar.value = 1;
  } else if (total > 0) {
    bar.max = total;
    bar.value = Math.min(j.bytes_done || 0, total);
  } else if (j.state !== 'running') {
    bar.max = 1;
    bar.value = 0;
  } // else indeterminate: running with no size known yet
  const pct = total > 0 ? ` (${Math.floor(100 * Math.min(j.bytes_done || 0, total) / total)}%)` : '';
  const r = rate(j);
  const words = [
    j.phase ? `${j.phase}` : j.state,
    `${bytes(j.bytes_done || 0)}${total ? ` of ${bytes(total)}` : ''}${pct}`,
    r && active(j) ? `${bytes(r)}/s` : null,
  ].filter(Boolean).join(' · ');
  bar.setAttribute('aria-label', `job ${j.id}: ${words}`);
  return h('div', { class: 'progress' }, bar,
    tid(h('span', { class: 'progress-text' }, words), `job-progress-text-${j.id}`));
}

// A Cancel button for an active job; errors go to ctx.fail.
export function cancelButton(j, ctx) {
  if (!active(j) || j.cancel_requested) return j.cancel_requested ? h('span', { class: 'muted' }, 'cancelling…') : null;
  return tid(h('button', { type: 'button', class: 'small warn', onclick: async () => {
    try {
      await api.del(`/api/v1/jobs/${j.id}`);
    } catch (err) { ctx.fail(err, `cancel job ${j.id}`); }
  } }, 'Cancel'), `job-cancel-${j.id}`);
}
