// Times and durations as people read them.
import { h } from './dom.js';

/**
 * 0.3s, 12.4s, 3m 05s, 2h 07m, 3d 04h: rounded to the nearest of the last unit shown (3,995 ms is 4.0s).
 * The CLI's duration() (src/cli/client/format.ts) is the same rule; test/web/duration.test.ts holds them
 * together.
 */
export function duration(ms) {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  const two = (n) => String(n).padStart(2, '0');
  const tenths = Math.round(ms / 100);
  if (tenths < 600) return `${(tenths / 10).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${two(s % 60)}s`;
  const m = Math.round(ms / 60_000);
  if (m < 1440) return `${Math.floor(m / 60)}h ${two(m % 60)}m`;
  const hr = Math.round(ms / 3_600_000);
  return `${Math.floor(hr / 24)}d ${two(hr % 24)}h`;
}

/** "just now", "12 s ago", "5 min ago", "3 h ago", "2 d ago", else a date. */
export function relative(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '—';
  const diff = now - t;
  if (diff < 5000) return 'just now';
  const s = Math.floor(diff / 1000);
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const hr = Math.floor(m / 60);
  if (hr < 24) return `${hr} h ago`;
  const d = Math.floor(hr / 24);
  if (d < 30) return `${d} d ago`;
  return new Date(t).toLocaleDateString();
}

/** Local date and time, to the second. */
export function absolute(iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '';
  return new Date(t).toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

/** Local time of day (to the second). */
export function clock(iso) {
  const t = typeof iso === 'number' ? iso : Date.parse(iso);
  if (!Number.isFinite(t)) return '';
  return new Date(t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** A <time> that keeps saying how long ago it was (see refreshRelativeTimes). */
export function relTime(iso) {
  return h(
    'time',
    { datetime: iso, title: absolute(iso), class: 'rel-time', dataset: { rel: '1' } },
    relative(iso),
  );
}

/** Updates every relTime() in the document. */
export function refreshRelativeTimes(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll('time[data-rel]')) {
    const text = relative(el.getAttribute('datetime'), now);
    if (el.textContent !== text) el.textContent = text;
  }
}
