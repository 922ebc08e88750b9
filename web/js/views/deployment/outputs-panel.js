// The deployment page's Outputs card (SPEC §12.1): what its last succeeded deploy published, masked by the
// server. Each key with its value: a string as text (an http(s) address as a link), anything else as JSON.
import { h, setChildren } from '../../dom.js';

/** An address worth a link: http or https only, so a plan cannot make the page run a javascript: URL. */
function linkable(v) {
  if (typeof v !== 'string' || !/^https?:\/\//i.test(v)) return false;
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

function valueEl(v) {
  if (linkable(v)) return h('a', { href: v, target: '_blank', rel: 'noopener noreferrer' }, v);
  if (typeof v === 'string') return h('span', { class: 'output-text' }, v);
  return h('code', { class: 'json' }, JSON.stringify(v));
}

export function outputsPanel() {
  const body = h('div', { class: 'outputs-box', 'data-testid': 'outputs' });
  const el = h(
    'section',
    { class: 'card', 'aria-labelledby': 'outputs-title' },
    h('div', { class: 'card-head' }, h('h2', { id: 'outputs-title' }, 'Outputs')),
    body,
  );

  function render(dep) {
    const entries = Object.entries(dep?.outputs ?? {});
    if (entries.length === 0) {
      setChildren(
        body,
        h(
          'p',
          { class: 'muted' },
          dep?.state === 'torn_down' ? 'none (torn down)' : 'none: the last succeeded deploy published none',
        ),
      );
      return;
    }
    setChildren(
      body,
      h(
        'dl',
        { class: 'meta outputs' },
        entries.map(([k, v]) =>
          h('div', { class: 'meta-item', 'data-key': k }, h('dt', null, k), h('dd', null, valueEl(v))),
        ),
      ),
    );
  }

  return { el, render };
}
