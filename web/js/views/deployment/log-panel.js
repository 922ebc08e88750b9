// The deployment page's log card: one attempt's output at a time, read once from the API and then kept up
// from the stream's log_line events, capped at MAX_LOG_LINES, following the bottom unless the reader
// scrolled away, and pinned to an older attempt when the reader asked for one.
import { ansiLine } from '../../ansi.js';
import { api, explain } from '../../api.js';
import { h, nextId } from '../../dom.js';
import { attemptOf, currentAttempt } from './reducer.js';

const MAX_LOG_LINES = 5000;

/** mode 'events': lines come from the stream; 'fetch': the stream only says "there is more". */
const blank = (attemptId, mode) => ({
  attemptId,
  mode,
  ready: false,
  skip: 0,
  queue: [],
  nextOffset: 0,
  fetching: false,
  dirty: false,
  dropped: 0,
});

const splitLines = (text) => (text === '' ? [] : text.replace(/\n$/, '').split('\n'));

/**
 * get(): the page's current model (for the title and "the current attempt").
 * onShownChange(): the attempt shown changed by the reader's hand (the attempts table marks it).
 */
export function logPanel({ get, onShownChange }) {
  let closed = false;
  // What is known of the attempt shown; `pinned` (the reader chose it) outlives a change of attempt.
  const log = { ...blank(null, 'events'), pinned: false };

  const logTitle = h('span', { class: 'log-attempt muted' });
  const follow = h('input', { type: 'checkbox', id: nextId('follow'), checked: true });
  const backToCurrent = h(
    'button',
    { type: 'button', class: 'btn btn-link btn-sm', hidden: true },
    'Show current attempt',
  );
  const logNote = h('p', { class: 'log-note muted', hidden: true });
  const pre = h('pre', {
    class: 'log',
    role: 'log',
    'aria-live': 'polite',
    'aria-relevant': 'additions',
    'aria-label': 'Attempt output',
    tabindex: '0',
    'data-testid': 'log',
  });
  const logEmpty = h('p', { class: 'log-empty muted' }, 'No output yet.');
  const el = h(
    'section',
    { class: 'card log-card', 'aria-labelledby': 'log-title' },
    h(
      'div',
      { class: 'card-head' },
      h('h2', { id: 'log-title' }, 'Log ', logTitle),
      h(
        'div',
        { class: 'card-tools' },
        backToCurrent,
        h('span', { class: 'check-inline' }, follow, h('label', { for: follow.id }, 'Follow')),
      ),
    ),
    logNote,
    h('div', { class: 'log-wrap' }, pre, logEmpty),
  );

  function renderTitle() {
    const model = get();
    const a = attemptOf(model, log.attemptId);
    const cur = currentAttempt(model);
    const number = a?.number ?? (cur?.id === log.attemptId ? cur.number : null);
    const kind = a?.kind ?? (cur?.id === log.attemptId ? cur.kind : null);
    const state = a?.state ?? (cur?.id === log.attemptId ? cur.state : null);
    logTitle.textContent = log.attemptId
      ? `· attempt ${number ? `#${number}` : ''} ${kind ?? ''}${state ? ` · ${state}` : ''}`
      : '';
    pre.setAttribute(
      'aria-label',
      log.attemptId ? `Output of attempt ${number ? `#${number}` : ''}` : 'Attempt output',
    );
    backToCurrent.hidden = !(log.pinned && cur && cur.id !== log.attemptId);
    logEmpty.textContent = log.attemptId
      ? 'No output yet.'
      : 'No attempts yet. Deploy to see the output here.';
  }

  function reset(attemptId, mode) {
    Object.assign(log, blank(attemptId, mode));
    pre.replaceChildren();
    logEmpty.hidden = false;
    logNote.hidden = true;
    renderTitle();
  }

  let pendingLines = [];
  let flushTimer = null;
  function appendLines(lines) {
    if (lines.length === 0) return;
    pendingLines.push(...lines);
    if (!flushTimer) flushTimer = setTimeout(flushLines, 40);
  }
  function flushLines() {
    flushTimer = null;
    if (closed || pendingLines.length === 0) return;
    const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 32;
    const frag = document.createDocumentFragment();
    for (const line of pendingLines) frag.appendChild(ansiLine(line));
    pendingLines = [];
    pre.appendChild(frag);
    const extra = pre.childNodes.length - MAX_LOG_LINES;
    if (extra > 0) {
      for (let i = 0; i < extra; i++) pre.firstChild.remove();
      log.dropped += extra;
      logNote.hidden = false;
      logNote.textContent = `Showing the last ${MAX_LOG_LINES} lines; ${log.dropped} earlier lines are not shown (lifeline logs NAME has them all).`;
    }
    logEmpty.hidden = pre.childNodes.length > 0;
    if (follow.checked && atBottom) pre.scrollTop = pre.scrollHeight;
  }

  /**
   * Shows an attempt's output. GET /v1/attempts/{id}/log first. In 'events' mode the stream replays every
   * log_line of the attempt (it started before the attempt's first line), and the log text is exactly the
   * first N of them, so the first N from the stream are skipped. In 'fetch' mode a log_line only says that
   * there is more, which is read from the byte offset the last read ended at.
   */
  async function show(attemptId, mode) {
    reset(attemptId, mode);
    if (!attemptId) return;
    log.fetching = true;
    try {
      const { text, nextOffset } = await api.attemptLog(attemptId, 0);
      if (closed || log.attemptId !== attemptId) return;
      const lines = splitLines(text);
      appendLines(lines);
      log.nextOffset = nextOffset;
      if (mode === 'events') {
        log.skip = lines.length;
        const queued = log.queue;
        log.queue = [];
        for (const t of queued) takeLine(t);
      }
      log.ready = true;
    } catch (err) {
      if (log.attemptId === attemptId) {
        logNote.hidden = false;
        logNote.textContent = `Could not read the output: ${explain(err)}`;
      }
    } finally {
      if (log.attemptId === attemptId) {
        log.fetching = false;
        if (log.dirty) void readMore();
      }
    }
  }

  function takeLine(text) {
    if (log.skip > 0) log.skip -= 1;
    else appendLines([text]);
  }

  async function readMore() {
    if (log.fetching) {
      log.dirty = true;
      return;
    }
    const id = log.attemptId;
    log.fetching = true;
    log.dirty = false;
    try {
      const { text, nextOffset } = await api.attemptLog(id, log.nextOffset);
      if (log.attemptId !== id || closed) return;
      appendLines(splitLines(text));
      log.nextOffset = nextOffset;
    } catch {
      /* the next line tries again */
    } finally {
      if (log.attemptId === id) {
        log.fetching = false;
        if (log.dirty) setTimeout(readMore, 100);
      }
    }
  }

  /** A log_line event of the page's stream. */
  function onLine(ev) {
    if (ev.attempt_id !== log.attemptId) return;
    const text = String(ev.data?.text ?? '');
    if (log.mode === 'events') {
      if (!log.ready) log.queue.push(text);
      else takeLine(text);
    } else if (log.ready && !log.fetching) void readMore();
    else log.dirty = true;
  }

  /** A new attempt began while the page is open: every one of its lines is still ahead in the stream. */
  function followNew(attemptId) {
    if (log.pinned) return;
    reset(attemptId, 'events');
    log.ready = true;
  }

  /** The reader chose an attempt in the table; choosing the current one unpins. */
  function pin(a) {
    const cur = currentAttempt(get());
    log.pinned = !(cur && cur.id === a.id);
    void show(a.id, 'fetch');
    onShownChange();
  }
  backToCurrent.addEventListener('click', () => {
    log.pinned = false;
    const cur = currentAttempt(get());
    if (cur) void show(cur.id, 'fetch');
    onShownChange();
  });

  return {
    el,
    show,
    onLine,
    followNew,
    pin,
    renderTitle,
    shownAttempt: () => log.attemptId,
    close() {
      closed = true;
      clearTimeout(flushTimer);
    },
  };
}
