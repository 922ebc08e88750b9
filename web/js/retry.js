// The waiting automatic retry (SPEC §9.1) as the dashboard says it: "retry 2/3 in 28s", counting down
// every second, and "retry 2/3 starting…" once it is due (the server starts it; the page then shows it).
// Pure: no DOM, so Node tests it.

/** Time left, rounded up to the second: 28s, 3m 05s, 2h 07m, 3d 04h. */
export function timeLeft(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const two = (n) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${two(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d ${two(Math.floor((s % 86400) / 3600))}h`;
}

/** The countdown of a deployment's `retry` ({number, of, at} or null): its text, or null when none waits. */
export function retryCountdown(retry, now = Date.now()) {
  if (!retry) return null;
  const at = Date.parse(retry.at);
  if (!Number.isFinite(at)) return null;
  const left = at - now;
  const which = `retry ${retry.number}/${retry.of}`;
  return left > 0
    ? { text: `${which} in ${timeLeft(left)}`, due: false }
    : { text: `${which} starting…`, due: true };
}
