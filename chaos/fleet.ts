// The chaos run's `lifeline serve` processes (started with test/helpers/servers.ts): each keeps its data
// dir and port across restarts, so a restarted instance is the same instance at the same URL. An
// instance that exits without being killed by the run is a crash the run did not cause: it is recorded
// (a failure) and started again.
import path from 'node:path';
import { freePort } from '../test/helpers/pg.ts';
import { serve, type Served } from '../test/helpers/servers.ts';

export interface FleetOptions {
  db: string;
  root: string;
  count: number;
  plans: Record<string, unknown>;
  extra: Record<string, unknown>;
  /** Environment of instance i (its clock offset, the webhook's secret). */
  env?: (i: number) => NodeJS.ProcessEnv;
  log: (line: string) => void;
}

export interface UnexpectedExit {
  instance: number;
  code: number | null;
  tail: string;
}

interface Slot {
  index: number;
  dataDir: string;
  port: number;
  served: Served | null;
  /** Set while the run itself stops or kills this instance. */
  stopping: boolean;
  /** Every output of every life of this instance (scanned for secrets at the end). */
  outputs: (() => string)[];
}

export class Fleet {
  private slots: Slot[] = [];
  readonly unexpected: UnexpectedExit[] = [];
  constructor(private o: FleetOptions) {}

  async start(): Promise<void> {
    for (let i = 0; i < this.o.count; i++) {
      this.slots.push({
        index: i,
        dataDir: path.join(this.o.root, `instance-${i}`),
        port: await freePort(),
        served: null,
        stopping: false,
        outputs: [],
      });
    }
    // One at a time: the first runs the migrations, and two cores are shared.
    for (const s of this.slots) await this.launch(s);
  }

  get size(): number {
    return this.slots.length;
  }

  get dataDirs(): string[] {
    return this.slots.map((s) => s.dataDir);
  }

  url(i: number): string {
    return `http://127.0.0.1:${this.slots[i].port}`;
  }

  isUp(i: number): boolean {
    return this.slots[i].served !== null;
  }

  /** Everything every instance printed so far. */
  output(): string {
    return this.slots.flatMap((s) => s.outputs.map((o) => o())).join('\n');
  }

  /** SIGKILL: nothing runs on the way out. */
  async crash(i: number): Promise<void> {
    const s = this.slots[i];
    if (!s.served) return;
    s.stopping = true;
    await s.served.crash();
    s.served = null;
    s.stopping = false;
  }

  /** SIGTERM and wait for the exit. */
  async stop(i: number): Promise<void> {
    const s = this.slots[i];
    if (!s.served) return;
    s.stopping = true;
    await s.served.stop();
    s.served = null;
    s.stopping = false;
  }

  async stopAll(): Promise<void> {
    for (let i = 0; i < this.slots.length; i++) await this.stop(i);
  }

  /** Starts a stopped instance again (a no-op when it runs). */
  async restart(i: number): Promise<void> {
    const s = this.slots[i];
    if (!s.served) await this.launch(s);
  }

  /**
   * Starts an instance, trying again for up to a minute: a start can meet the database restarting or
   * the port still held by the previous life for a moment.
   */
  private async launch(s: Slot): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (let n = 1; ; n++) {
      try {
        const served = await serve({
          db: this.o.db,
          dataDir: s.dataDir,
          port: s.port,
          plans: this.o.plans,
          extra: this.o.extra,
          env: this.o.env?.(s.index),
        });
        s.outputs.push(served.output);
        s.served = served;
        void served.exited.then((code) => {
          if (s.stopping || s.served !== served) return;
          s.served = null;
          const tail = served.output().split('\n').slice(-15).join('\n');
          this.unexpected.push({ instance: s.index, code, tail });
          this.o.log(`instance ${s.index} exited on its own (code ${code}); starting it again`);
          void this.launch(s).catch((err) => this.o.log(`instance ${s.index} did not start: ${err}`));
        });
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        this.o.log(`instance ${s.index} start ${n} failed, retrying: ${String(err).split('\n')[0]}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
}
