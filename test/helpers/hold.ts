// Holds the event loop for `ms`, as a long synchronous step or a descheduled process would: no timer,
// no I/O callback and no heartbeat runs meanwhile. Atomics.wait sleeps in the kernel instead of
// spinning, so the hold costs no CPU (a busy loop burnt a core the other test workers needed).
const cell = new Int32Array(new SharedArrayBuffer(4));

export function holdEventLoop(ms: number): void {
  // A NaN timeout would wait forever; a past deadline is no hold.
  if (!(ms > 0)) return;
  Atomics.wait(cell, 0, 0, ms);
}
