// Runs a plan's check (no shell) and records its verdict; on an `unknown` deployment the verdict
// resolves the state in the same transaction as the check_result event.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { PlanConfig } from '../config/types.ts';
import { checkVerdict, decideCheckResult } from '../domain/transitions.ts';
import type { Actor, DeploymentState } from '../domain/types.ts';
import { selectDeploymentById } from '../store/deployments.ts';
import type { DeploymentsTable } from '../store/schema.ts';
import { applyTransition } from '../store/transition.ts';
import { buildPlanEnv, ensureWorkspace } from '../runner/env.ts';
import { findPerl } from '../runner/runner-client.ts';
import type { Ctx } from './context.ts';
import { nowIso } from './ids.ts';
import { transact } from './tx.ts';
import { releaseResolved } from './gates/release.ts';

/** coreutils `timeout`, where it is (Linux: always; elsewhere the in-memory timer alone). */
const TIMEOUT_BIN = ['/usr/bin/timeout', '/bin/timeout'].find((f) => fs.existsSync(f));
/** util-linux `setpriv` (Essential on Debian) sets the parent-death signal that perl cannot. */
const SETPRIV_BIN = ['/usr/bin/setpriv', '/bin/setpriv'].find((f) => fs.existsSync(f));
const PERL_BIN = findPerl();

/**
 * Leads the check's process group and dies with the engine: the parent-death signal (TERM, set by
 * setpriv before this exec) or a parent already gone kills the whole group, so a check orphaned by a
 * SIGKILLed engine does not run on beside the re-check the next engine starts. Its deadline (whole
 * seconds, rounded up) kills the group too. Otherwise it waits for the check and ends as the check
 * did (its exit code, or the same signal).
 */
const GUARD = `
use POSIX qw(_exit);
my ($owner, $secs) = splice(@ARGV, 0, 2);
my $kill = sub { $SIG{TERM} = 'IGNORE'; kill 'KILL', -$$; _exit(137) };
$SIG{TERM} = $kill;
$SIG{ALRM} = $kill;
$kill->() if getppid() != $owner;
alarm($secs);
my $pid = fork() // _exit(125);
if ($pid == 0) { $SIG{TERM} = 'DEFAULT'; exec { $ARGV[0] } @ARGV; _exit(127) }
while (waitpid($pid, 0) == -1) { $kill->() unless $!{EINTR} }
my $st = $?;
if ($st & 127) { $SIG{TERM} = 'DEFAULT'; kill $st & 127, $$; }
_exit($st >> 8);
`;

/**
 * The check's argv with its deadline inside its own process tree, so a check the engine lost still
 * ends (SPEC §4: every operation has a deadline): the guard above (at once when the engine dies), or
 * where setpriv or perl is missing, `timeout`, which leads the group and SIGKILLs it at the deadline.
 */
function withDeadline(argv: string[], timeoutMs: number): string[] {
  if (SETPRIV_BIN && PERL_BIN) {
    const secs = String(Math.max(1, Math.ceil(timeoutMs / 1000)));
    return [
      SETPRIV_BIN,
      '--pdeathsig',
      'TERM',
      '--',
      PERL_BIN,
      '-e',
      GUARD,
      String(process.pid),
      secs,
      ...argv,
    ];
  }
  if (!TIMEOUT_BIN) return argv;
  return [TIMEOUT_BIN, '-s', 'KILL', `${Math.max(1, timeoutMs) / 1000}s`, ...argv];
}

function runArgv(
  argv: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  timeoutMs: number,
): Promise<number | null> {
  return new Promise((resolve) => {
    const [cmd, ...args] = withDeadline(argv, timeoutMs);
    const child = spawn(cmd, args, { env, cwd, stdio: 'ignore', detached: true });
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Lines kept from a verifying check's output: enough to say why, bounded so a flood costs nothing. */
const CAPTURE_LINES = 200;

export interface CapturedCheck {
  rc: number | null;
  lines: string[];
}

/**
 * Runs a check (no shell) and keeps its output lines, stdout and stderr interleaved as they came.
 * `stop` kills it (the engine is closing: recovery runs the check again).
 */
export function runArgvCaptured(
  argv: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  timeoutMs: number,
): { done: Promise<CapturedCheck>; stop: () => void } {
  let child: ReturnType<typeof spawn> | null = null;
  const kill = () => {
    try {
      if (child?.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const done = new Promise<CapturedCheck>((resolve) => {
    const lines: string[] = [];
    const partial = { stdout: '', stderr: '' };
    const feed = (stream: 'stdout' | 'stderr', chunk: Buffer | null) => {
      const text = partial[stream] + (chunk ? chunk.toString('utf8') : '');
      const parts = text.split('\n');
      partial[stream] = chunk ? parts.pop()! : '';
      for (const l of parts) if (lines.length < CAPTURE_LINES && (chunk || l !== '')) lines.push(l);
    };
    const [cmd, ...args] = withDeadline(argv, timeoutMs);
    child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child.stdout!.on('data', (c: Buffer) => feed('stdout', c));
    child.stderr!.on('data', (c: Buffer) => feed('stderr', c));
    const timer = setTimeout(kill, timeoutMs);
    child.on('error', () => {
      clearTimeout(timer);
      resolve({ rc: null, lines });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      child = null; // its group is gone: stop() must never signal a reused id
      feed('stdout', null);
      feed('stderr', null);
      resolve({ rc: code, lines });
    });
  });
  return { done, stop: kill };
}

export async function runCheck(
  ctx: Ctx,
  dep: DeploymentsTable,
  plan: PlanConfig,
  actor: Actor,
): Promise<void> {
  const workspace = ensureWorkspace(ctx.config.dataDir, dep.id);
  const env = buildPlanEnv(plan, {
    kind: 'check',
    params: dep.params,
    deploymentId: dep.id,
    deploymentName: dep.name,
    workspace,
  });
  const rc = await runArgv(plan.check!, env, workspace, plan.timeoutMs);
  const verdict = checkVerdict(rc);
  await transact(ctx.store, ctx.bus, async (trx) => {
    const fresh = await selectDeploymentById(trx, dep.id);
    if (!fresh || fresh.deleted_at) return { result: undefined, events: [] };
    const writes = decideCheckResult(fresh.state as DeploymentState, verdict);
    if (writes.deployment) await releaseResolved(trx, fresh);
    const events = await applyTransition(trx, {
      at: nowIso(),
      actor: actor.name,
      deployment: {
        id: fresh.id,
        expectState: fresh.state,
        expectVersion: Number(fresh.version),
        change: writes.deployment,
      },
      eventsBefore: [
        {
          type: 'check_result',
          deployment_id: fresh.id,
          attempt_id: null,
          data: { rc, verdict, actor: actor.name },
        },
      ],
    });
    return { result: undefined, events };
  });
}
