// The chaos run's faults, one every few seconds (seeded): SIGKILL an instance and start it again (in
// the background, so other faults go on while it starts); SIGKILL a plan's process group (its
// supervisor then writes an exit record), the supervisor and the plan together (no exit record: the
// outcome is lost), or the supervisor alone (the plan runs on unsupervised); and, on a cluster the run
// owns, restart Postgres (pg_ctl stop -m fast, then start). Plans are found through the instances' run
// dirs, and nothing is signalled whose identity (pid + start time + boot id, src/runner/identity.ts)
// does not match.
import fs from 'node:fs';
import path from 'node:path';
import { isAlive, signalGroup, type ProcessIdentity } from '../src/runner/identity.ts';
import { readExit, readProcess, readSupervisor } from '../src/runner/rundir.ts';
import type { Fleet } from './fleet.ts';
import type { Random } from './random.ts';

export const FAULTS = [
  'kill_instance',
  'kill_plan',
  'kill_plan_and_supervisor',
  'kill_supervisor',
  'db_restart',
] as const;
export type Fault = (typeof FAULTS)[number];

export interface Database {
  stop(): Promise<void>;
  start(): Promise<void>;
}

export class Faults {
  readonly done: Record<Fault, number> = Object.fromEntries(FAULTS.map((f) => [f, 0])) as Record<
    Fault,
    number
  >;
  /** Faults chosen when there was nothing to hit (no plan running). */
  skipped = 0;
  private stopped = false;
  private restarts: Promise<void>[] = [];
  private wake: (() => void) | null = null;

  constructor(
    private fleet: Fleet,
    private db: Database | null,
    private log: (line: string) => void,
  ) {}

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  async run(rng: Random): Promise<void> {
    const weights: Record<Fault, number> = {
      kill_instance: 2,
      kill_plan: 3,
      kill_plan_and_supervisor: 2,
      kill_supervisor: 1,
      db_restart: this.db ? 1 : 0,
    };
    await this.pause(rng.int(1500, 3000));
    while (!this.stopped) {
      const fault = rng.weighted(weights);
      if (await this.inject(fault, rng)) this.done[fault]++;
      else this.skipped++;
      await this.pause(rng.int(2000, 6000));
    }
    await Promise.all(this.restarts);
  }

  private pause(ms: number): Promise<void> {
    return new Promise((r) => {
      const t = setTimeout(r, ms);
      this.wake = () => {
        clearTimeout(t);
        r();
      };
    });
  }

  private async inject(fault: Fault, rng: Random): Promise<boolean> {
    switch (fault) {
      case 'kill_instance': {
        // Among the instances up, and never the last one on Postgres (peers must be there to adopt).
        const up = Array.from({ length: this.fleet.size }, (_, i) => i).filter((i) => this.fleet.isUp(i));
        if (up.length === 0 || (this.fleet.size > 1 && up.length === 1)) return false;
        const i = rng.pick(up);
        const after = rng.int(300, 2000);
        this.log(`fault: SIGKILL instance ${i}`);
        await this.fleet.crash(i);
        // Started again in the background: a restart takes seconds, and other faults go on meanwhile.
        this.restarts.push(
          (async () => {
            await new Promise((r) => setTimeout(r, after));
            await this.fleet.restart(i);
            this.log(`fault: instance ${i} is back`);
          })().catch((err: unknown) => {
            // Its starts kept meeting the database down (a slow start on a loaded machine, then a
            // restart): it stays down, faults pass it by, and the settle starts it again.
            this.log(
              `fault: instance ${i} did not come back (${String(err).split('\n')[0]}); the settle starts it`,
            );
          }),
        );
        return true;
      }
      case 'db_restart': {
        const down = rng.int(1000, 5000);
        this.log(`fault: database down for ${down} ms`);
        await this.db!.stop();
        await new Promise((r) => setTimeout(r, down));
        await this.db!.start();
        this.log('fault: database is back');
        return true;
      }
      default: {
        // Plans are short: wait a little for one to be running rather than miss.
        let plans = runningPlans(this.fleet.dataDirs);
        for (let n = 0; plans.length === 0 && n < 25 && !this.stopped; n++) {
          await new Promise((r) => setTimeout(r, 200));
          plans = runningPlans(this.fleet.dataDirs);
        }
        if (plans.length === 0) return false;
        const p = rng.pick(plans);
        this.log(`fault: ${fault} of attempt ${p.attempt}`);
        if (fault === 'kill_plan') return signalGroup(p.process, 'SIGKILL');
        const sup = killOne(p.supervisor);
        if (fault === 'kill_supervisor') return sup;
        return signalGroup(p.process, 'SIGKILL') || sup;
      }
    }
  }
}

export interface RunningPlan {
  attempt: string;
  dir: string;
  process: ProcessIdentity;
  supervisor: ProcessIdentity;
}

/** Attempts with a live plan process and a live supervisor, in a stable order. */
export function runningPlans(dataDirs: string[]): RunningPlan[] {
  const found: RunningPlan[] = [];
  for (const dir of attemptDirs(dataDirs)) {
    const proc = readProcess(dir);
    const sup = readSupervisor(dir);
    if (proc && sup && readExit(dir) === null && isAlive(proc) && isAlive(sup))
      found.push({ attempt: path.basename(dir), dir, process: proc, supervisor: sup });
  }
  return found;
}

/** Every attempt run dir under the instances' data dirs, sorted. */
export function attemptDirs(dataDirs: string[]): string[] {
  const dirs: string[] = [];
  for (const d of dataDirs) {
    const root = path.join(d, 'attempts');
    if (!fs.existsSync(root)) continue;
    for (const name of fs.readdirSync(root).sort()) dirs.push(path.join(root, name));
  }
  return dirs;
}

/** SIGKILL one verified process (not its group). */
function killOne(id: ProcessIdentity): boolean {
  if (!isAlive(id)) return false;
  try {
    process.kill(id.pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

/** After the run: SIGKILL every plan still alive (and its supervisor), so nothing outlives it. */
export function killLeftovers(dataDirs: string[]): number {
  let n = 0;
  for (const dir of attemptDirs(dataDirs)) {
    const sup = readSupervisor(dir);
    const proc = readProcess(dir);
    if (sup && killOne(sup)) n++;
    if (proc && signalGroup(proc, 'SIGKILL')) n++;
  }
  return n;
}
