// The chaos run's mixed HTTP load: workers that create, deploy, tear down, cancel, check, resolve (with
// the admin token) and read, each on a seeded instance and a seeded deployment; and (chaos/gated.ts)
// run stacks, make and lift a freeze, and approve or reject as a second token. Every answer is counted by operation and by class; a 5xx other than a 503
// STORE_UNAVAILABLE is kept with its details, and no answer may carry the secret param's value.
import { GatedOps, type Send, type Tokens } from './gated.ts';
import type { Random } from './random.ts';

export const OPS = [
  'create',
  'deploy',
  'teardown',
  'cancel',
  'check',
  'resolve',
  'read',
  'stack',
  'freeze',
  'approve',
] as const;
export type Op = (typeof OPS)[number];
export type Outcome = '2xx' | '4xx' | '503' | '5xx' | 'unreachable' | 'timeout';

export interface BadAnswer {
  op: Op;
  method: string;
  path: string;
  instance: number;
  status: number;
  body: string;
}

export interface LoadTarget {
  size: number;
  url(i: number): string;
  isUp(i: number): boolean;
}

const WEIGHTS: Record<Op, number> = {
  create: 2,
  deploy: 5,
  teardown: 2,
  cancel: 2,
  check: 1,
  resolve: 1,
  read: 3,
  stack: 3,
  freeze: 0, // its own loop: a freeze made and lifted every few seconds
  approve: 2,
};
/** The plan of a new deployment: plain, behind the shared slot of limit 1, or needing an approval. */
const PLAN_WEIGHTS = { work: 5, slot: 3, appr: 2 };
const MAX_DEPLOYMENTS = 24;
const REQUEST_TIMEOUT_MS = 30_000;

export class Load {
  readonly counts: Record<Op, Record<Outcome, number>> = Object.fromEntries(
    OPS.map((op) => [op, { '2xx': 0, '4xx': 0, '503': 0, '5xx': 0, unreachable: 0, timeout: 0 }]),
  ) as Record<Op, Record<Outcome, number>>;
  /** 4xx problem codes, e.g. ATTEMPT_IN_PROGRESS: how often each refusal was met. */
  readonly refusals: Record<string, number> = {};
  /** 5xx other than 503, and 503s that are not STORE_UNAVAILABLE with Retry-After. */
  readonly bad: BadAnswer[] = [];
  /** Answers that carried the secret. */
  readonly leaks: string[] = [];
  private names: string[] = [];
  private created = 0;
  private stopped = false;
  readonly gated: GatedOps;

  constructor(
    private target: LoadTarget,
    private secret: string,
    private prefix: string,
    private tokens: Tokens,
  ) {
    this.gated = new GatedOps(prefix, secret);
  }

  /** Runs `workers` loops until stop(); resolves when every request in flight has answered. */
  run(workers: number, rng: Random): Promise<void> {
    const loops = Array.from({ length: workers }, () => this.worker(rng.fork()));
    return Promise.all([...loops, this.freezer(rng.fork())]).then(() => undefined);
  }

  stop(): void {
    this.stopped = true;
  }

  get deployments(): readonly string[] {
    return this.names;
  }

  private async worker(rng: Random): Promise<void> {
    while (!this.stopped) {
      let op = rng.weighted(WEIGHTS);
      if (op === 'create' && this.names.length >= MAX_DEPLOYMENTS) op = 'deploy';
      if (op !== 'create' && this.names.length === 0) op = 'create';
      // Every instance down (SQLite's one, being restarted): wait rather than count refused connects.
      if (!this.anyUp()) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      await this.one(op, rng);
      await new Promise((r) => setTimeout(r, rng.int(10, 80)));
    }
  }

  /** Every 2–5 s, makes the freeze when none is in force, else lifts it. */
  private async freezer(rng: Random): Promise<void> {
    while (!this.stopped) {
      await new Promise((r) => setTimeout(r, rng.int(2000, 5000)));
      if (!this.stopped && this.anyUp()) await this.one('freeze', rng);
    }
  }

  private async one(op: Op, rng: Random): Promise<void> {
    const at = this.route(rng.int(0, this.target.size - 1));
    const name = rng.pick(this.names.length ? this.names : ['none']);
    switch (op) {
      case 'create': {
        const fresh = `${this.prefix}-${this.created++}`;
        const r = await this.send(op, at, 'POST', '/v1/deployments', {
          name: fresh,
          plan: rng.weighted(PLAN_WEIGHTS),
          params: { token: this.secret },
          labels: { chaos: 'yes' },
        });
        // A create whose answer was lost (503, timeout) may have committed; it stays out of the pool
        // (its row is still checked at the end).
        if (r.status === 201 || r.status === 409) this.names.push(fresh);
        return;
      }
      case 'deploy':
        await this.send(op, at, 'POST', `/v1/deployments/${name}/attempts`, {
          params: this.params(rng),
          ...(rng.chance(0.15) ? { force: true } : {}),
        });
        return;
      case 'teardown':
        await this.send(op, at, 'POST', `/v1/deployments/${name}/teardown`, {
          confirm: name,
          ...(rng.chance(0.15) ? { force: true } : {}),
        });
        return;
      case 'cancel':
        await this.send(op, at, 'POST', `/v1/deployments/${name}/cancel`);
        return;
      case 'check':
        await this.send(op, at, 'POST', `/v1/deployments/${name}/check`);
        return;
      case 'resolve': {
        // Mostly a deployment that is `unknown` right now, so that resolves do something.
        const found = await this.send('read', at, 'GET', '/v1/deployments?state=unknown&limit=20');
        const items = (found.body as { items?: { name: string }[] } | null)?.items ?? [];
        const which = items.length > 0 && rng.chance(0.8) ? rng.pick(items).name : name;
        await this.send(op, at, 'POST', `/v1/deployments/${which}/resolve`, {
          state: rng.pick(['ready', 'failed', 'torn_down']),
          reason: 'chaos: operator resolves',
        });
        return;
      }
      case 'read': {
        const kind = rng.int(0, 3);
        if (kind === 0) await this.send(op, at, 'GET', `/v1/deployments/${name}`);
        else if (kind === 1) await this.send(op, at, 'GET', '/v1/deployments?limit=20');
        else if (kind === 2) await this.send(op, at, 'GET', `/v1/deployments/${name}/events?limit=50`);
        else {
          const list = await this.send(op, at, 'GET', `/v1/deployments/${name}/attempts?limit=1`);
          const id = (list.body as { items?: { id: string }[] } | null)?.items?.[0]?.id;
          if (id) await this.send(op, at, 'GET', `/v1/attempts/${id}/log`);
        }
        return;
      }
      case 'stack':
      case 'freeze':
      case 'approve': {
        const send: Send = (token, method, path, body) => this.send(op, at, method, path, body, token);
        await this.gated[op](send, rng);
        return;
      }
    }
  }

  private anyUp(): boolean {
    for (let i = 0; i < this.target.size; i++) if (this.target.isUp(i)) return true;
    return false;
  }

  /** Like a load balancer: the chosen instance, or the next one up while it is down (a kill still races). */
  private route(i: number): number {
    for (let k = 0; k < this.target.size; k++) {
      const j = (i + k) % this.target.size;
      if (this.target.isUp(j)) return j;
    }
    return i;
  }

  /**
   * Deploy params: mostly quick successes, some failures, some slower than the plan's timeout, and
   * some stubborn (a child that ignores SIGTERM: they end only by cancel or timeout).
   */
  private params(rng: Random): Record<string, unknown> {
    const slow = rng.chance(0.05);
    return {
      sleep: slow ? 7 : Math.round(rng.between(0.1, 2.5) * 10) / 10,
      lines: rng.int(0, 20),
      fail: rng.chance(0.15),
      token: this.secret,
      ...(rng.chance(0.1) ? { stubborn: true } : {}),
    };
  }

  /** One request; status 0 when the instance could not be reached or did not answer in time. */
  private async send(
    op: Op,
    instance: number,
    method: string,
    path: string,
    body?: unknown,
    token: keyof Tokens = 'admin',
  ): Promise<{ status: number; body: unknown }> {
    const c = this.counts[op];
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.target.url(instance) + path, {
        method,
        headers: {
          authorization: `Bearer ${this.tokens[token]}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      text = await res.text();
    } catch (err) {
      const name = (err as Error).name;
      c[name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'unreachable']++;
      return { status: 0, body: null };
    }
    if (text.includes(this.secret)) this.leaks.push(`${method} ${path} → ${res.status}`);
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // a log is plain text
    }
    const code = (parsed as { code?: string } | null)?.code;
    const s = res.status;
    if (s >= 200 && s < 300) c['2xx']++;
    else if (s >= 400 && s < 500) {
      c['4xx']++;
      const key = `${s} ${code ?? '?'}`;
      this.refusals[key] = (this.refusals[key] ?? 0) + 1;
    } else if (s === 503 && code === 'STORE_UNAVAILABLE' && res.headers.get('retry-after') !== null)
      c['503']++;
    else {
      c['5xx']++;
      this.bad.push({ op, method, path, instance, status: s, body: text.slice(0, 500) });
    }
    return { status: s, body: parsed };
  }
}
