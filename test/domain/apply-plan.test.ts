import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  computePlan,
  SOURCE_LABEL,
  type ApplyDoc,
  type ApplyWorld,
  type CurrentDeployment,
  type PlanInput,
} from '../../src/domain/apply-plan.ts';
import { LifelineError } from '../../src/domain/errors.ts';
import { expandSpec, type StackSpec } from '../../src/domain/stack-spec.ts';

const secrets = (plan: string) => (plan === 'db' ? ['password'] : []);

function stack(
  name: string,
  units: { key: string; plan?: string; params?: Record<string, unknown> }[],
): ApplyDoc {
  const spec: StackSpec = {
    name,
    on_failure: 'stop',
    labels: {},
    units: units.map((u) => ({
      key: u.key,
      plan: u.plan ?? 'vm',
      params: u.params ?? {},
      count: 1,
      after: [],
    })),
  };
  return { kind: 'stack', spec };
}
function dep(name: string, params: Record<string, unknown> = {}, plan = 'vm'): ApplyDoc {
  return { kind: 'deployment', deployment: { name, plan, params, labels: {} } };
}
const empty: ApplyWorld = { stacks: [], deployments: [] };
const plan = (documents: ApplyDoc[], world: ApplyWorld = empty, more: Partial<PlanInput> = {}) =>
  computePlan({ source: 'lab', documents, prune: false, world, secrets, ...more });

/** What a successful apply leaves: every named object as declared, labelled, ready, deployed. */
function applied(documents: ApplyDoc[], world: ApplyWorld, source: string, prune: boolean): ApplyWorld {
  const p = computePlan({ source, documents, prune, world, secrets });
  const gone = new Set(
    p.items.filter((i) => i.action === 'teardown' || i.action === 'delete').map((i) => i.name),
  );
  const blocked = new Set(p.items.filter((i) => i.action === 'blocked').map((i) => i.name));
  const ready = (
    d: Omit<CurrentDeployment, 'state' | 'version' | 'deployed_params'>,
    v: number,
  ): CurrentDeployment => ({
    ...d,
    state: 'ready',
    version: v + 1,
    deployed_params: d.params,
  });
  const stacks = world.stacks.filter(
    (s) =>
      !gone.has(s.name) &&
      !documents.some((d) => d.kind === 'stack' && d.spec.name === s.name && !blocked.has(s.name)),
  );
  const deployments = world.deployments.filter(
    (d) =>
      !gone.has(d.name) &&
      !documents.some((x) => x.kind === 'deployment' && x.deployment.name === d.name && !blocked.has(d.name)),
  );
  for (const d of documents) {
    if (blocked.has(d.kind === 'stack' ? d.spec.name : d.deployment.name)) continue;
    if (d.kind === 'stack') {
      const old = world.stacks.find((s) => s.name === d.spec.name);
      stacks.push({
        name: d.spec.name,
        spec: d.spec,
        labels: { ...d.spec.labels, [SOURCE_LABEL]: source },
        version: (old?.version ?? 0) + 1,
        units: expandSpec(d.spec).map((u) =>
          ready({ name: u.name, plan: u.plan, params: u.params, labels: u.labels, stack: d.spec.name }, 1),
        ),
      });
    } else {
      const x = d.deployment;
      deployments.push(ready({ ...x, labels: { ...x.labels, [SOURCE_LABEL]: source }, stack: null }, 1));
    }
  }
  return { stacks, deployments };
}

const arbDocs = fc
  .uniqueArray(fc.constantFrom('a', 'b', 'c', 'd', 'e'), { minLength: 1, maxLength: 4 })
  .chain((names) =>
    fc.tuple(
      ...names.map((n) =>
        fc.oneof(
          fc.record({ size: fc.integer({ min: 1, max: 3 }) }).map((p) => dep(`d${n}`, p)),
          fc.uniqueArray(fc.constantFrom('web', 'db'), { minLength: 1, maxLength: 2 }).chain((keys) =>
            fc.tuple(...keys.map(() => fc.integer({ min: 1, max: 3 }))).map((sizes) =>
              stack(
                `s${n}`,
                keys.map((k, i) => ({ key: k, params: { size: sizes[i] } })),
              ),
            ),
          ),
        ),
      ),
    ),
  );

describe('computePlan', () => {
  it('plans create and deploy for new objects, with the source label and secrets masked', () => {
    const p = plan([dep('db1', { password: 'hunter2', size: 1 }, 'db'), stack('lab', [{ key: 'web' }])]);
    expect(p.items.map((i) => [i.name, i.action, i.deploy])).toEqual([
      ['db1', 'create', ['db1']],
      ['lab', 'create', ['lab-web']],
    ]);
    expect(p.items[0].changes).toContainEqual({ path: 'params.password', to: '***' });
    expect(p.items[0].changes).toContainEqual({ path: `labels.${SOURCE_LABEL}`, to: 'lab' });
    expect(JSON.stringify(p)).not.toContain('hunter2');
    expect(p.changes).toBe(true);
  });

  it('re-planning after applying gives every object unchanged', () => {
    fc.assert(
      fc.property(arbDocs, arbDocs, (first, second) => {
        const w1 = applied(first, empty, 'lab', false);
        expect(plan(first, w1).items.every((i) => i.action === 'unchanged')).toBe(true);
        const w2 = applied(second, w1, 'lab', true);
        const again = computePlan({
          source: 'lab',
          documents: second,
          prune: true,
          world: w2,
          secrets,
          max_delete: 100,
        });
        expect(again.items.map((i) => i.action).every((a) => a === 'unchanged')).toBe(true);
        expect(again.changes).toBe(false);
      }),
    );
  });

  it('the digest changes when any read version changes, absence included', () => {
    fc.assert(
      fc.property(arbDocs, fc.nat(), (docs, pick) => {
        const world = applied(docs, empty, 'lab', false);
        const before = plan(docs, world).digest;
        const all = [...world.stacks, ...world.stacks.flatMap((s) => s.units), ...world.deployments];
        const target = all[pick % all.length];
        target.version += 1;
        expect(plan(docs, world).digest).not.toBe(before);
        target.version -= 1;
        expect(plan(docs, world).digest).toBe(before);
      }),
    );
    expect(plan([dep('x')]).digest).not.toBe(
      plan([dep('x')], {
        stacks: [],
        deployments: [
          {
            name: 'x',
            plan: 'vm',
            params: {},
            labels: { [SOURCE_LABEL]: 'lab' },
            state: 'pending',
            version: 1,
            deployed_params: null,
            stack: null,
          },
        ],
      }).digest,
    );
  });

  it('a field-level update diff, and a deploy when params changed', () => {
    const world = applied([stack('lab', [{ key: 'web', params: { size: 1 } }])], empty, 'lab', false);
    const p = plan([stack('lab', [{ key: 'web', params: { size: 2 } }])], world);
    expect(p.items[0]).toMatchObject({
      action: 'update',
      changes: [{ path: 'spec.units[0].params.size', from: 1, to: 2 }],
      deploy: ['lab-web'],
    });
  });

  it('a unit added with a secret param is listed field by field, masked', () => {
    const world = applied([stack('lab', [{ key: 'web' }])], empty, 'lab', false);
    const p = plan(
      [stack('lab', [{ key: 'web' }, { key: 'db', plan: 'db', params: { password: 's3cret' } }])],
      world,
    );
    expect(p.items[0].changes).toContainEqual({ path: 'spec.units[1].params.password', to: '***' });
    expect(JSON.stringify(p)).not.toContain('s3cret');
  });

  it('a unit not ready is deployed without a spec change', () => {
    const world = applied([stack('lab', [{ key: 'web' }])], empty, 'lab', false);
    world.stacks[0].units[0].state = 'failed';
    expect(plan([stack('lab', [{ key: 'web' }])], world).items[0]).toMatchObject({
      action: 'deploy',
      deploy: ['lab-web'],
    });
  });

  it('an unknown object is blocked, never forced', () => {
    const world = applied([dep('x'), stack('lab', [{ key: 'web' }])], empty, 'lab', false);
    world.deployments[0].state = 'unknown';
    world.stacks[0].units[0].state = 'unknown';
    const p = plan([dep('x', { size: 9 }), stack('lab', [{ key: 'web', params: { a: 1 } }])], world);
    expect(p.items.map((i) => i.action)).toEqual(['blocked', 'blocked']);
    expect(p.changes).toBe(false);
  });

  it('prune touches only this source, tears down what stands, deletes what does not', () => {
    const mine = applied([dep('x'), dep('y'), stack('s', [{ key: 'web' }])], empty, 'lab', false);
    const other = applied([dep('z')], empty, 'other', false);
    const world: ApplyWorld = {
      stacks: mine.stacks,
      deployments: [
        ...mine.deployments,
        ...other.deployments,
        { ...other.deployments[0], name: 'hand', labels: {} },
      ],
    };
    world.deployments[1].state = 'torn_down';
    const p = computePlan({ source: 'lab', documents: [dep('x')], prune: true, world, secrets });
    expect(p.items.map((i) => [i.name, i.action])).toEqual([
      ['x', 'unchanged'],
      ['s', 'teardown'],
      ['y', 'delete'],
    ]);
    expect(plan([dep('x')], world).items).toHaveLength(1); // no prune flag: nothing removed
  });

  it('prune is capped by max_delete and refuses an empty file', () => {
    const world = applied([dep('a1'), dep('a2'), dep('a3')], empty, 'lab', false);
    const run = (max: number) => () =>
      computePlan({ source: 'lab', documents: [dep('keep')], prune: true, world, secrets, max_delete: max });
    expect(run(2)).toThrow(expect.objectContaining({ code: 'PRUNE_LIMIT' }));
    expect(run(3)().items.filter((i) => i.action === 'teardown')).toHaveLength(3);
    expect(() => computePlan({ source: 'lab', documents: [], prune: true, world, secrets })).toThrow(
      expect.objectContaining({ code: 'VALIDATION', message: expect.stringContaining('declares nothing') }),
    );
  });

  it('refuses documents naming the same object twice, and objects of another source', () => {
    expect(() => plan([dep('x'), dep('x')])).toThrow(/same object twice: x/);
    expect(() => plan([dep('lab-web'), stack('lab', [{ key: 'web' }])])).toThrow(/lab-web/);
    const world = applied([dep('x')], empty, 'other', false);
    let err: unknown;
    try {
      plan([dep('x')], world);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LifelineError);
    expect((err as LifelineError).errors?.[0].field).toBe('source');
  });
});
