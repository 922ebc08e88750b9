// The deployment page's header card: name, state badge, the facts (plan, current attempt, times, id), and
// the callouts that explain a deleted or unknown deployment. The actions row is given to it to hold.
import { can } from '../../api.js';
import { attemptSummary, driftBadge, stateBadge, updateBadge } from '../../badges.js';
import { h, setChildren } from '../../dom.js';
import { relTime } from '../../format.js';
import { retryCountdown } from '../../retry.js';
import { currentAttempt, attemptOf } from './reducer.js';

const REASON_TEXT = {
  exit_nonzero: 'the plan exited with a non-zero code',
  timeout: 'the plan ran past its timeout',
  cancelled: 'it was cancelled',
  runner_error: 'the plan could not be started',
  exit_unobserved: 'its process is gone and no exit record was found',
  runner_lost: 'the instance running it stopped renewing its lease',
  start_interrupted: 'it never started before its deadline',
  late_result: 'its exit record turned up late',
};

export function deploymentHead({ ref, titleId, actionsRow }) {
  const nameEl = h('h1', { id: titleId, class: 'dep-name' }, ref);
  const badgeBox = h('span', { class: 'dep-badge' });
  const driftBox = h('span', { class: 'dep-drift' });
  const meta = h('dl', { class: 'meta' });
  const callouts = h('div', { class: 'callouts' });
  // The waiting retry's countdown: re-rendered with the callouts, its text ticked every second.
  const retryText = h('strong', { 'data-testid': 'retry-countdown' });
  let shownRetry = null;
  const el = h(
    'header',
    { class: 'dep-head card' },
    h('div', { class: 'dep-title-row' }, nameEl, badgeBox, driftBox),
    meta,
    callouts,
    actionsRow,
  );

  function render(model, plan) {
    const { dep } = model;
    nameEl.textContent = dep.name;
    const badge = badgeBox.querySelector('.badge');
    if (badge) updateBadge(badge, dep.state);
    else setChildren(badgeBox, stateBadge(dep.state, { large: true }));
    setChildren(driftBox, model.deleted ? null : driftBadge(dep.drift));
    const cur = currentAttempt(model);
    const item = (term, ...desc) =>
      h('div', { class: 'meta-item' }, h('dt', null, term), h('dd', null, ...desc));
    setChildren(
      meta,
      item(
        'Plan',
        h('span', { class: 'plan-name' }, dep.plan),
        plan?.description ? h('span', { class: 'muted' }, ` — ${plan.description}`) : null,
      ),
      item('Current attempt', cur ? attemptSummary(cur) : h('span', { class: 'muted' }, 'none')),
      item('In this state since', relTime(dep.state_changed_at)),
      item('Created', relTime(dep.created_at)),
      item('Id', h('code', { class: 'id' }, dep.id)),
    );
    renderCallouts(model, plan);
  }

  function renderCallouts(model, plan) {
    const items = [];
    if (model.deleted) {
      items.push(
        h(
          'div',
          { class: 'callout' },
          h('strong', null, 'Deleted. '),
          'This deployment was deleted; its history stays readable here.',
        ),
      );
    } else if (model.dep.state === 'unknown') {
      const cur = currentAttempt(model);
      const a = cur ? attemptOf(model, cur.id) : null;
      const why = a?.reason ? (REASON_TEXT[a.reason] ?? a.reason) : 'its outcome was lost';
      items.push(
        h(
          'div',
          { class: 'callout callout-warn', 'data-testid': 'unknown-callout' },
          h('strong', null, 'Outcome unknown. '),
          `Attempt ${cur?.number ? `#${cur.number} ` : ''}(${cur?.kind ?? 'deploy'}) ended without a known result: ${why}. `,
          'Lifeline refuses teardown and new deploys until someone says what happened: ',
          can('admin') ? 'resolve it' : 'an admin resolves it',
          plan?.has_check ? ', or run the plan’s check' : '',
          '.',
        ),
      );
    }
    const drift = model.deleted ? null : model.dep.drift;
    if (drift) {
      items.push(
        h(
          'div',
          { class: 'callout callout-warn', 'data-testid': 'drift-callout' },
          h('strong', null, 'Drifted. '),
          `The plan’s check says ${drift.verdict} since ${new Date(drift.since).toLocaleString()}, though the deploy succeeded. `,
          drift.heal_at
            ? `A self-heal deploy starts at ${new Date(drift.heal_at).toLocaleTimeString()}.`
            : 'Deploy again to fix it, or wait for a check to say up.',
        ),
      );
    }
    shownRetry = model.deleted ? null : (model.dep.retry ?? null);
    if (shownRetry) {
      tickRetry();
      items.push(
        h(
          'div',
          { class: 'callout', 'data-testid': 'retry-callout' },
          'Automatic ',
          retryText,
          ` (at ${new Date(shownRetry.at).toLocaleTimeString()}). `,
          'The deployment stays failed until it starts; any action here, or Cancel retry, stops it.',
        ),
      );
    }
    setChildren(callouts, items);
  }

  /** The countdown's text for now: called on render and by the page's one-second ticker. */
  function tickRetry() {
    const c = retryCountdown(shownRetry);
    if (c && retryText.textContent !== c.text) retryText.textContent = c.text;
  }

  return { el, render, renderCallouts, tickRetry };
}
