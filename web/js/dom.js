// Tiny DOM helpers. Text from the API only ever becomes text nodes or attribute values: never HTML.

/**
 * Creates an element. props: attributes; `class`; `dataset`; `style` (an object, applied through the CSSOM
 * so the Content-Security-Policy allows it); `onX` listeners; `true` for a boolean attribute, and
 * null/undefined/false for none. Children: nodes, strings, numbers, arrays; null/false are skipped.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'style') Object.assign(el.style, v);
      else if (k.startsWith('on') && typeof v === 'function')
        el.addEventListener(k.slice(2).toLowerCase(), v);
      else if (k === 'value' && 'value' in el) el.value = String(v);
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/** A document-unique id for label/aria wiring. */
export function nextId(prefix = 'id') {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** Says something to screen readers through the page's polite live region. */
export function announce(text) {
  const region = document.getElementById('announcer');
  if (!region) return;
  // A change of text is what gets read; clear first so the same message twice is read twice.
  region.textContent = '';
  setTimeout(() => {
    region.textContent = text;
  }, 30);
}

/**
 * A short message in the corner; errors stay until dismissed. It belongs to a page (`page`: a route's
 * hash, default the current one) and goes when another page is shown (clearToasts): an action that
 * moves to another page (delete → the list) names that page.
 */
export function toast(text, { kind = 'info', timeout = 5000, page = location.hash } = {}) {
  const box = document.getElementById('toasts');
  if (!box) return;
  const close = h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss' }, '×');
  const el = h(
    'div',
    {
      class: `toast toast-${kind}`,
      role: kind === 'error' ? 'alert' : 'status',
      dataset: { page: pageOf(page) },
    },
    h('span', null, text),
    close,
  );
  close.addEventListener('click', () => el.remove());
  box.appendChild(el);
  if (kind !== 'error' && timeout > 0) setTimeout(() => el.remove(), timeout);
}

/** Removes the toasts of every page but `page` (a route's hash; called when the route changes). */
export function clearToasts(page) {
  const box = document.getElementById('toasts');
  if (!box) return;
  for (const el of [...box.children]) if (el.dataset.page !== pageOf(page)) el.remove();
}

/** The page a hash shows: the list's filters (`#/?state=failed`) are the same page. */
function pageOf(hash) {
  return (hash || '#/').split('?')[0].replace(/(.)\/$/, '$1');
}
