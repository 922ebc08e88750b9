// `lifeline show NAME [--attempt N]`: the state, a timeline of transitions with how long each state lasted,
// the attempts, and the phases of one attempt (the current one by default).
import { InvalidArgumentError, type Command } from 'commander';
import { action } from '../client/action.ts';
import { waitingText } from '../client/gates.ts';
import { UsageError } from '../client/api.ts';
import {
  badge,
  between,
  compactJson,
  duration,
  labelsText,
  relativeTime,
  retryText,
  stateWord,
  table,
  timestamp,
} from '../client/format.ts';

export function register(program: Command): void {
  program
    .command('show')
    .description('show a deployment: state, timeline of transitions, attempts')
    .argument('<name>', 'deployment name or id')
    .option('--attempt <n>', 'show the phases of attempt N (default: the current attempt)', attemptNumber)
    .option('--json', 'print the deployment with its transitions, attempts and phases as JSON')
    .action(
      action(async ({ api, o }, name: string, opts: { json?: boolean; attempt?: number }) => {
        const dep = await api.getDeployment(name);
        const [transitions, attempts] = await Promise.all([api.transitions(dep.id), api.allAttempts(dep.id)]);
        const phased =
          opts.attempt === undefined
            ? attempts.find((a) => a.id === dep.current_attempt?.id)
            : attempts.find((a) => a.number === opts.attempt);
        if (opts.attempt !== undefined && !phased) {
          throw new UsageError(`${dep.name} has no attempt #${opts.attempt}`);
        }
        const phases = phased ? await api.phases(phased.id) : [];
        if (opts.json) return o.json({ ...dep, transitions, attempts, phases });
        const { c } = o;
        const now = Date.now();
        const numberOf = new Map(attempts.map((a) => [a.id, a.number]));

        o.print(`${c.bold(dep.name)}  ${badge(dep.state, c)}`);
        const facts: [string, string][] = [
          ['id', dep.id],
          ['plan', dep.plan],
          ['params', compactJson(dep.params)],
          ['labels', labelsText(dep.labels)],
          ['version', String(dep.version)],
          ['created', `${timestamp(dep.created_at)} (${relativeTime(dep.created_at, now)})`],
          [
            'in state',
            `${stateWord(dep.state, c)} since ${timestamp(dep.state_changed_at)} (${relativeTime(dep.state_changed_at, now)})`,
          ],
        ];
        if (dep.current_attempt) {
          const a = dep.current_attempt;
          facts.push(['attempt', `#${a.number} ${a.kind} ${stateWord(a.state, c)} ${c.dim(a.id)}`]);
          // A gate holds it (SPEC §13): say what it waits for, and since when.
          const full = attempts.find((x) => x.id === a.id);
          for (const w of full?.waiting ?? []) {
            facts.push(['waiting', `${waitingText(w)} ${c.dim(`since ${relativeTime(w.since, now)}`)}`]);
          }
        }
        if (dep.retry) facts.push(['retry', retryText(dep.retry, now).replace(/^retry /, '')]);
        const w = Math.max(...facts.map(([k]) => k.length));
        for (const [k, v] of facts) o.print(`  ${c.dim(k.padEnd(w))}  ${v}`);

        o.print();
        o.print(c.bold('Timeline'));
        if (transitions.length === 0) o.print(c.dim('  (no transitions)'));
        else {
          const rows = transitions.map((t, i) => {
            const next = transitions[i + 1];
            const lasted = next
              ? duration(between(t.at, next.at))
              : `${duration(now - Date.parse(t.at))} ${c.dim('so far')}`;
            const num = t.attempt_id ? numberOf.get(t.attempt_id) : undefined;
            return [
              timestamp(t.at),
              badge(t.to, c),
              lasted,
              t.trigger + (t.reason ? c.dim(` (${t.reason})`) : ''),
              t.actor,
              t.attempt_id ? (num !== undefined ? `#${num}` : t.attempt_id) : c.dim('-'),
            ];
          });
          for (const line of table(['AT', 'STATE', 'LASTED', 'TRIGGER', 'BY', 'ATTEMPT'], rows, c, '  '))
            o.print(line);
        }

        o.print();
        o.print(c.bold('Attempts'));
        if (attempts.length === 0) o.print(c.dim('  (none yet)'));
        else {
          const rows = attempts.map((a) => [
            `#${a.number}`,
            a.kind + (a.rollback_of ? c.dim(` (rollback to #${a.rollback_of})`) : ''),
            badge(a.state, c),
            (a.reason ?? c.dim('-')) + (a.detail ? c.dim(`: ${a.detail}`) : ''),
            a.rc === null ? c.dim('-') : String(a.rc),
            a.requested_by,
            relativeTime(a.queued_at, now),
            a.ended_at
              ? duration(between(a.started_at ?? a.queued_at, a.ended_at))
              : a.started_at
                ? `${duration(now - Date.parse(a.started_at))} ${c.dim('so far')}`
                : c.dim('-'),
            c.dim(a.id),
          ]);
          for (const line of table(
            ['#', 'KIND', 'STATE', 'REASON', 'RC', 'BY', 'QUEUED', 'TOOK', 'ID'],
            rows,
            c,
            '  ',
          ))
            o.print(line);
        }

        // Plans that report no phases get no section, unless an attempt was asked for by number.
        if (phased && (phases.length > 0 || opts.attempt !== undefined)) {
          o.print();
          o.print(c.bold(`Phases of attempt #${phased.number}`));
          if (phases.length === 0) o.print(c.dim('  (the plan reported no phases)'));
          else {
            const rows = phases.map((p) => [
              p.phase,
              timestamp(p.started_at),
              p.duration_ms === null
                ? `${duration(now - Date.parse(p.started_at))} ${c.dim('so far')}`
                : duration(p.duration_ms),
            ]);
            for (const line of table(['PHASE', 'STARTED', 'TOOK'], rows, c, '  ')) o.print(line);
          }
        }
      }),
    );
}

function attemptNumber(v: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(v)) throw new InvalidArgumentError('must be an attempt number (1, 2, …)');
  return Number(v);
}
