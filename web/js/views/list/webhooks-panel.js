// Webhook health for admins (SPEC §10): delivered up to, pending, last error, next retry. Hidden for
// other roles and when no webhook is configured; refreshed every 10 s while the list is shown.
import { can, request } from '../../api.js';
import { h, setChildren } from '../../dom.js';

const EVERY_MS = 10_000;
/** Column captions: the table's head, and each cell's label where a narrow screen stacks the cells. */
const COLUMNS = ['Name', 'Status', 'Delivered up to', 'Pending', 'Last error', 'Next try'];

export function mountWebhooksPanel() {
  const body = h('tbody');
  const panel = h(
    'section',
    {
      class: 'card table-card webhooks',
      'aria-labelledby': 'webhooks-title',
      'data-testid': 'webhooks',
      hidden: true,
    },
    h('h2', { id: 'webhooks-title' }, 'Webhooks'),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'dtable' },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            COLUMNS.map((t) => h('th', { scope: 'col' }, t)),
          ),
        ),
        body,
      ),
    ),
  );
  let timer = null;
  let stopped = false;

  const row = (w) => {
    const cells = [
      w.name,
      !w.enabled ? 'disabled' : w.last_error ? 'failing' : 'ok',
      `seq ${w.delivered_seq}`,
      String(w.pending),
      w.last_error ? `${w.last_error}${w.last_status ? ` (${w.last_status})` : ''}` : '—',
      w.next_attempt_at ? new Date(w.next_attempt_at).toLocaleTimeString() : '—',
    ];
    return h(
      'tr',
      { dataset: { webhook: w.name } },
      cells.map((text, i) => h('td', { dataset: { label: COLUMNS[i] } }, text)),
    );
  };

  async function refresh() {
    if (stopped) return;
    clearTimeout(timer);
    if (can('admin')) {
      try {
        const { items } = await request('GET', '/v1/webhooks');
        if (stopped) return;
        setChildren(body, items.map(row));
        panel.hidden = items.length === 0;
      } catch {
        panel.hidden = true; // not an admin after all, or the server is away: the list says so
      }
    } else panel.hidden = true;
    timer = setTimeout(refresh, EVERY_MS);
  }
  // The list calls onRole once at mount (and on every role change): that is the first read.
  return {
    el: panel,
    onRole: refresh,
    destroy() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
