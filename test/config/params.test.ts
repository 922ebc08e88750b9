import { describe, expect, it } from 'vitest';
import { compileParamsSchema, configFromObject } from '../../src/config/load.ts';
import { errorOf } from './helpers.ts';

const schema = {
  type: 'object',
  properties: {
    replicas: { type: 'integer', minimum: 1, maximum: 50, default: 2 },
    region: { type: 'string', enum: ['eu-1', 'us-1'] },
    db_password: { type: 'string', writeOnly: true },
    api_key: { type: 'string', writeOnly: true },
    public_note: { type: 'string', writeOnly: false },
    tags: { type: 'array', items: { type: 'string', maxLength: 3 } },
    limits: {
      type: 'object',
      properties: { cpu: { type: 'number' } },
      required: ['cpu'],
      additionalProperties: false,
    },
  },
  required: ['region'],
  additionalProperties: false,
};

function plan(params: unknown) {
  return configFromObject(
    { plans: { demo: { deploy: ['./d.sh'], teardown: ['./t.sh'], params } } },
    { file: 'lifeline.yaml' },
  ).plans.demo;
}

describe('plan params schema', () => {
  it('validates params and reports dotted field paths with plain reasons', () => {
    const p = plan(schema);
    expect(p.validateParams({ region: 'eu-1' })).toEqual([]);
    expect(p.validateParams({ region: 'eu-1', replicas: 0 })).toEqual([
      { field: 'params.replicas', reason: 'must be >= 1' },
    ]);
    const errs = p.validateParams({
      replicas: 'three',
      extra: 1,
      tags: ['ok', 'toolong'],
      limits: { cpu: 'x', gpu: 1 },
    });
    expect(errs).toEqual(
      expect.arrayContaining([
        { field: 'params.region', reason: 'is required' },
        { field: 'params.extra', reason: 'is not allowed' },
        { field: 'params.replicas', reason: 'must be integer' },
        { field: 'params.tags.1', reason: 'must NOT have more than 3 characters' },
        { field: 'params.limits.cpu', reason: 'must be number' },
        { field: 'params.limits.gpu', reason: 'is not allowed' },
      ]),
    );
    expect(errs).toHaveLength(6); // allErrors: every problem at once
  });

  it('requires params to be an object', () => {
    const p = plan(schema);
    for (const bad of [null, [], 'x', 3, undefined]) {
      expect(p.validateParams(bad)).toEqual([{ field: 'params', reason: 'must be an object' }]);
    }
  });

  it('a plan without params takes any object, and only an object', () => {
    const none = compileParamsSchema(undefined);
    expect(none.paramsSchema).toEqual({ type: 'object' });
    expect(none.secretParams).toEqual([]);
    for (const ok of [{}, { a: 1, b: [null], c: { d: 'e' } }, Object.create(null)])
      expect(none.validateParams(ok)).toEqual([]);
    for (const bad of [null, [], 'x', 3, undefined, new Date(0)])
      expect(none.validateParams(bad)).toEqual([{ field: 'params', reason: 'must be an object' }]);
    // Declared the same as the default, it behaves the same.
    expect(compileParamsSchema({ type: 'object' }).validateParams({ a: 1 })).toEqual([]);
  });

  it('neither coerces nor fills in defaults nor mutates the input', () => {
    const p = plan(schema);
    const input = { region: 'eu-1', replicas: '3' };
    const before = structuredClone(input);
    expect(p.validateParams(input)).toEqual([{ field: 'params.replicas', reason: 'must be integer' }]);
    expect(input).toEqual(before);
    const noReplicas = { region: 'eu-1' };
    expect(p.validateParams(noReplicas)).toEqual([]);
    expect(noReplicas).toEqual({ region: 'eu-1' }); // `default: 2` not applied
  });

  it('detects top-level writeOnly params as secret', () => {
    expect(plan(schema).secretParams).toEqual(['db_password', 'api_key']);
    expect(plan(undefined).secretParams).toEqual([]);
  });

  it('keeps its own copy of the schema', () => {
    const mine = structuredClone(schema);
    const p = plan(mine);
    expect(p.paramsSchema).toEqual(schema);
    (mine.properties.replicas as { maximum: number }).maximum = 1;
    expect(p.validateParams({ region: 'eu-1', replicas: 10 })).toEqual([]);
  });

  it('defaults to {type: object}, accepting any object', () => {
    const p = plan(undefined);
    expect(p.paramsSchema).toEqual({ type: 'object' });
    expect(p.validateParams({ anything: [1, 2] })).toEqual([]);
  });

  it.each([
    [{ type: 'array' }, 'type: object'],
    [{ properties: {} }, 'type: object'],
    [['x'], 'expected a JSON Schema'],
    [null, 'expected a JSON Schema'],
    [
      { type: 'object', properties: { a: { type: 'strin' } } },
      '#/properties/a/type must be equal to one of the allowed values',
    ],
    [{ type: 'object', properties: { a: { type: 'integer', minimun: 1 } } }, 'unknown keyword: "minimun"'],
    [{ type: 'object', properties: { a: { minimum: 1 } } }, 'missing type "number"'],
    [{ type: 'object', required: ['a'] }, 'required property "a" is not defined'],
    [
      { type: 'object', properties: { e: { type: 'string', format: 'email' } } },
      'format "email" at #/properties/e is not supported',
    ],
    [{ type: 'object', properties: { a: { $ref: '#/$defs/missing' } } }, "can't resolve reference"],
    [
      {
        type: 'object',
        properties: { a: { type: 'object', properties: { pw: { type: 'string', writeOnly: true } } } },
      },
      'writeOnly at #/properties/a/properties/pw is only supported on a top-level param',
    ],
    [{ type: 'object', writeOnly: true }, 'writeOnly at # is only supported'],
    [
      {
        type: 'object',
        properties: { pw: { $ref: '#/$defs/s' } },
        $defs: { s: { type: 'string', writeOnly: true } },
      },
      'writeOnly at #/$defs/s is only supported',
    ],
    [
      { type: 'object', properties: { pw: { type: 'string', writeOnly: true, default: 'hunter2' } } },
      'must not have default',
    ],
  ])('a bad schema is a config error naming the plan: %j', (bad, expected) => {
    const msg = errorOf(() => plan(bad));
    expect(msg).toContain('lifeline.yaml: plans.demo.params: ');
    expect(msg).toContain(expected);
    expect(msg).not.toContain('hunter2');
  });

  it('allows union types, writeOnly: false and a property named writeOnly', () => {
    const p = plan({
      type: 'object',
      properties: {
        maybe: { type: ['string', 'null'] },
        writeOnly: { type: 'boolean' },
        note: { type: 'string', writeOnly: false },
      },
    });
    expect(p.validateParams({ maybe: null, writeOnly: true })).toEqual([]);
    expect(p.secretParams).toEqual([]);
  });

  it('compiles two plans whose schemas share an $id', () => {
    const s = { $id: 'https://example.com/p', type: 'object', properties: { n: { type: 'integer' } } };
    const c = configFromObject({
      plans: {
        a: { deploy: ['x'], teardown: ['y'], params: s },
        b: { deploy: ['x'], teardown: ['y'], params: { ...s, properties: { n: { type: 'string' } } } },
      },
    });
    expect(c.plans.a.validateParams({ n: 1 })).toEqual([]);
    expect(c.plans.b.validateParams({ n: 1 })).toEqual([{ field: 'params.n', reason: 'must be string' }]);
  });

  it('reports nested field paths through arrays and escaped pointer segments', () => {
    const p = compileParamsSchema({
      type: 'object',
      properties: {
        'a/b': { type: 'integer' },
        list: {
          type: 'array',
          items: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] },
        },
      },
    });
    expect(p.validateParams({ 'a/b': 'x', list: [{ n: 1 }, {}] })).toEqual([
      { field: 'params.a/b', reason: 'must be integer' },
      { field: 'params.list.1.n', reason: 'is required' },
    ]);
  });
});
