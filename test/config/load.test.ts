import { createHash } from 'node:crypto';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, configFromObject, DEFAULTS, findPlan, loadConfig } from '../../src/config/load.ts';
import { errorOf, tempDir } from './helpers.ts';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const ALICE_SHA = sha256('alice-token');

// SPEC §4, verbatim apart from a full-length token_sha256 (upper-case, to check it is stored lower-case).
const SPEC_FILE = `server: { host: 127.0.0.1, port: 7400 }
db: sqlite:./data/lifeline.db          # or postgres://user@host/db
data_dir: ./data
auth:                                  # absent = no auth, allowed only on a loopback host
  tokens:
    - { name: ci, role: operator, token_env: LIFELINE_TOKEN_CI }
    - { name: alice, role: admin, token_sha256: "${ALICE_SHA.toUpperCase()}" }
plans:
  demo:
    description: Deploys the demo service
    deploy: ["./plans/demo/deploy.sh"]
    teardown: ["./plans/demo/teardown.sh"]
    check: ["./plans/demo/check.sh"]   # optional: exit 0 = up, 3 = absent, other = failed
    timeout: 10m
    cancel_grace: 10s
    env: { REGION: eu-1 }
    params:                            # JSON Schema for the deployment's params
      type: object
      properties: { replicas: { type: integer, minimum: 1, maximum: 50 } }
      additionalProperties: false
`;

const MINIMAL = { plans: { demo: { deploy: ['./deploy.sh'], teardown: ['./teardown.sh'] } } };

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => {
  tmp.cleanup();
});

describe('loadConfig: every problem in the file names its line', () => {
  it('the line of the key at fault, of a list item, or of the mapping a required key is missing from', () => {
    const file = tmp.write(
      'lines.yaml',
      [
        'server:',
        '  port: 7400',
        '  hots: 127.0.0.1',
        'plans:',
        '  demo:',
        '    deploy: ["./d.sh"]',
        '    teardown: ["./t.sh"]',
        '    timeout: soon',
        '  other:',
        '    deploy:',
        '      - ./d.sh',
        '      - 3',
        '    teardown: ["./t.sh"]',
        '  third:',
        '    deploy: ["./d.sh"]',
        '',
      ].join('\n'),
    );
    expect(errorOf(() => loadConfig({ file, env: {} })).split('\n')).toEqual([
      `${file}:3: server.hots: unknown key (did you mean host?)`,
      `${file}:8: plans.demo.timeout: expected a duration like 30s, 10m or 1h`,
      `${file}:12: plans.other.deploy[1]: expected a string (argv elements are strings: quote numbers)`,
      `${file}:14: plans.third.teardown: is required`,
    ]);
  });
});

describe('loadConfig: the SPEC §4 file', () => {
  it('loads every field', () => {
    const file = tmp.write('lifeline.yaml', SPEC_FILE);
    const c = loadConfig({ file, env: { LIFELINE_TOKEN_CI: 'ci-secret-token' } });
    const d = tmp.dir;
    expect(c.file).toBe(file);
    expect(c.server).toEqual({ host: '127.0.0.1', port: 7400 });
    expect(c.db).toBe(`sqlite:${d}/data/lifeline.db`);
    expect(c.dataDir).toBe(`${d}/data`);
    expect(c.auth).toEqual({
      tokens: [
        { name: 'ci', role: 'operator', sha256: sha256('ci-secret-token') },
        { name: 'alice', role: 'admin', sha256: ALICE_SHA },
      ],
    });
    expect(Object.keys(c.plans)).toEqual(['demo']);
    const demo = c.plans.demo;
    expect(demo).toMatchObject({
      name: 'demo',
      description: 'Deploys the demo service',
      deploy: [`${d}/plans/demo/deploy.sh`],
      teardown: [`${d}/plans/demo/teardown.sh`],
      check: [`${d}/plans/demo/check.sh`],
      timeoutMs: 600_000,
      cancelGraceMs: 10_000,
      env: { REGION: 'eu-1' },
      paramsSchema: {
        type: 'object',
        properties: { replicas: { type: 'integer', minimum: 1, maximum: 50 } },
        additionalProperties: false,
      },
      secretParams: [],
    });
    expect(demo.validateParams({ replicas: 3 })).toEqual([]);
    expect(demo.validateParams({ replicas: 51 })).toEqual([
      { field: 'params.replicas', reason: 'must be <= 50' },
    ]);
    expect(c.leaseTtlMs).toBe(15_000);
    expect(c.reapIntervalMs).toBe(10_000);
    expect(c.startDeadlineMs).toBe(90_000);
    expect(c.durableCommits).toBe(true);
    expect(c.supervisor).toBe('perl');
    expect(findPlan(c, 'demo')).toBe(demo);
  });

  it('reads the file from opts.file, else LIFELINE_CONFIG, else ./lifeline.yaml', () => {
    const a = tmp.write('a.yaml', 'plans: { a: { deploy: [x], teardown: [y] } }\n');
    const b = tmp.write('b.yaml', 'plans: { b: { deploy: [x], teardown: [y] } }\n');
    tmp.write('lifeline.yaml', 'plans: { dflt: { deploy: [x], teardown: [y] } }\n');
    expect(Object.keys(loadConfig({ file: a, env: { LIFELINE_CONFIG: b } }).plans)).toEqual(['a']);
    expect(Object.keys(loadConfig({ env: { LIFELINE_CONFIG: b } }).plans)).toEqual(['b']);
    const cwd = process.cwd();
    try {
      process.chdir(tmp.dir);
      const c = loadConfig({ env: {} });
      expect(Object.keys(c.plans)).toEqual(['dflt']);
      expect(c.file).toBe(path.join(tmp.dir, 'lifeline.yaml'));
      expect(Object.keys(loadConfig({ env: { LIFELINE_CONFIG: 'b.yaml' } }).plans)).toEqual(['b']);
      // Messages name the file as the operator would type it, relative to the working directory.
      tmp.write('bad.yaml', 'plans: { demo: { deploy: [x], teardown: [y], timeout: soon } }\n');
      expect(errorOf(() => loadConfig({ file: 'bad.yaml', env: {} }))).toBe(
        'bad.yaml:1: plans.demo.timeout: expected a duration like 30s, 10m or 1h',
      );
    } finally {
      process.chdir(cwd);
    }
  });

  it('a missing file is an error naming it', () => {
    const file = path.join(tmp.dir, 'nope.yaml');
    const err = (() => {
      try {
        loadConfig({ file, env: {} });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(
      `${file} does not exist (pass --config FILE or set LIFELINE_CONFIG)`,
    );
    expect(errorOf(() => loadConfig({ file: tmp.dir, env: {} }))).toContain('is a directory');
  });

  it('reports YAML syntax errors with file, line and column', () => {
    const file = tmp.write('lifeline.yaml', 'plans:\n  demo:\n    deploy: [./x.sh\n    teardown: [y]\n');
    const msg = errorOf(() => loadConfig({ file, env: {} }));
    expect(msg).toMatch(new RegExp(`^${escapeRe(file)}:\\d+:\\d+: YAML syntax error: `));
    const dup = tmp.write('dup.yaml', 'db: sqlite:a.db\nplans: {}\ndb: sqlite:b.db\n');
    expect(errorOf(() => loadConfig({ file: dup, env: {} }))).toBe(
      `${dup}:3:1: YAML syntax error: Map keys must be unique`,
    );
    const two = tmp.write('two.yaml', 'plans: {}\n---\nplans: {}\n');
    expect(errorOf(() => loadConfig({ file: two, env: {} }))).toMatch(
      new RegExp(`^${escapeRe(two)}:2:1: YAML syntax error: Source contains multiple documents`),
    );
  });

  it('an empty file or a non-mapping is an error', () => {
    const empty = tmp.write('empty.yaml', '# nothing yet\n');
    expect(errorOf(() => loadConfig({ file: empty, env: {} }))).toBe(
      `${empty}: the file is empty; expected settings such as plans (SPEC §4)`,
    );
    const list = tmp.write('list.yaml', '- a\n- b\n');
    expect(errorOf(() => loadConfig({ file: list, env: {} }))).toBe(
      `${list}: expected a mapping of settings at the top level (SPEC §4)`,
    );
  });

  it('keeps plan env values as written in YAML', () => {
    const file = tmp.write(
      'lifeline.yaml',
      `plans:
  demo:
    deploy: [x]
    teardown: [y]
    env: { VERSION: 1.10, HEX: 0x1F, FLAG: True, N: 7, S: "quoted", E: "" }
`,
    );
    expect(loadConfig({ file, env: {} }).plans.demo.env).toEqual({
      VERSION: '1.10',
      HEX: '0x1F',
      FLAG: 'True',
      N: '7',
      S: 'quoted',
      E: '',
    });
  });

  it('supports YAML anchors and merge keys', () => {
    const file = tmp.write(
      'lifeline.yaml',
      `plans:
  a: &base
    deploy: [./run.sh, deploy]
    teardown: [./run.sh, teardown]
    env: { REGION: eu-1 }
  b:
    <<: *base
    description: like a
`,
    );
    const c = loadConfig({ file, env: {} });
    expect(c.plans.b.deploy).toEqual([`${tmp.dir}/run.sh`, 'deploy']);
    expect(c.plans.b.env).toEqual({ REGION: 'eu-1' });
    expect(c.plans.b.description).toBe('like a');
  });
});

describe('defaults', () => {
  it('fills every default', () => {
    const file = tmp.write('lifeline.yaml', 'plans: { demo: { deploy: [./d.sh], teardown: [./t.sh] } }\n');
    const c = loadConfig({ file, env: {} });
    expect(c).toMatchObject({
      file,
      server: { host: '127.0.0.1', port: 7400 },
      db: `sqlite:${tmp.dir}/data/lifeline.db`,
      dataDir: `${tmp.dir}/data`,
      auth: null,
      leaseTtlMs: 15_000,
      reapIntervalMs: 10_000,
      startDeadlineMs: 90_000,
      durableCommits: true,
    });
    expect(c.plans.demo).toMatchObject({
      description: '',
      check: null,
      timeoutMs: 3_600_000,
      cancelGraceMs: 10_000,
      env: {},
      paramsSchema: { type: 'object' },
      secretParams: [],
    });
    expect(DEFAULTS).toMatchObject({ host: '127.0.0.1', port: 7400, leaseTtlMs: 15_000 });
  });

  it('the default db follows data_dir', () => {
    const c = configFromObject({ ...MINIMAL, data_dir: 'state' }, { baseDir: '/srv/ll' });
    expect(c.dataDir).toBe('/srv/ll/state');
    expect(c.db).toBe('sqlite:/srv/ll/state/lifeline.db');
  });

  it('reads the remaining top-level settings', () => {
    const c = configFromObject(
      {
        ...MINIMAL,
        server: { host: '0.0.0.0', port: 0 },
        lease_ttl: '30s',
        reap_interval: 5000,
        start_deadline: '2m',
        durable_commits: false,
        supervisor: 'sh',
        plans: { demo: { ...MINIMAL.plans.demo, timeout: '1d', cancel_grace: 0, check: null } },
      },
      { baseDir: '/x' },
    );
    expect(c.server).toEqual({ host: '0.0.0.0', port: 0 });
    expect(c.supervisor).toBe('sh');
    expect([c.leaseTtlMs, c.reapIntervalMs, c.startDeadlineMs, c.durableCommits]).toEqual([
      30_000,
      5000,
      120_000,
      false,
    ]);
    expect([c.plans.demo.timeoutMs, c.plans.demo.cancelGraceMs, c.plans.demo.check]).toEqual([
      86_400_000,
      0,
      null,
    ]);
  });

  it('configFromObject: no file, cwd as base, and a hermetic environment by default', () => {
    const saved = process.env.LIFELINE_PORT;
    process.env.LIFELINE_PORT = '9999';
    try {
      const c = configFromObject(MINIMAL);
      expect(c.file).toBeNull();
      expect(c.server.port).toBe(7400);
      expect(c.dataDir).toBe(path.resolve('data'));
    } finally {
      if (saved === undefined) delete process.env.LIFELINE_PORT;
      else process.env.LIFELINE_PORT = saved;
    }
    expect(errorOf(() => configFromObject({ plans: { x: {} } }))).toContain(
      '(config object): plans.x.deploy: is required',
    );
    const withFile = configFromObject(MINIMAL, { file: '/etc/lifeline/lifeline.yaml' });
    expect(withFile.file).toBe('/etc/lifeline/lifeline.yaml');
    expect(withFile.plans.demo.deploy).toEqual(['/etc/lifeline/deploy.sh']);
  });
});

describe('environment and flag overrides', () => {
  const file = () =>
    tmp.write(
      'lifeline.yaml',
      'server: { host: 127.0.0.1, port: 7400 }\ndb: sqlite:./x.db\ndata_dir: ./d\nlease_ttl: 20s\nreap_interval: 3s\nplans: {}\n',
    );

  it('env variables override the file', () => {
    const c = loadConfig({
      file: file(),
      env: {
        LIFELINE_DB: 'postgres://lifeline@db.internal:5432/lifeline',
        LIFELINE_HOST: '0.0.0.0',
        LIFELINE_PORT: '8080',
        LIFELINE_DATA_DIR: '/var/lib/lifeline',
        LIFELINE_LEASE_TTL: '1m',
        LIFELINE_REAP_INTERVAL: '2500',
      },
    });
    expect(c.db).toBe('postgres://lifeline@db.internal:5432/lifeline');
    expect(c.server).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(c.dataDir).toBe('/var/lib/lifeline');
    expect(c.leaseTtlMs).toBe(60_000);
    expect(c.reapIntervalMs).toBe(2500);
  });

  it('relative env paths resolve against the working directory; the default db follows LIFELINE_DATA_DIR', () => {
    const c = configFromObject(MINIMAL, {
      baseDir: '/etc/lifeline',
      env: { LIFELINE_DATA_DIR: 'state', LIFELINE_DB: '' },
    });
    expect(c.dataDir).toBe(path.resolve('state'));
    expect(c.db).toBe(`sqlite:${path.resolve('state')}/lifeline.db`);
    expect(configFromObject(MINIMAL, { env: { LIFELINE_DB: 'sqlite:rel.db' } }).db).toBe(
      `sqlite:${path.resolve('rel.db')}`,
    );
  });

  it('empty variables count as unset', () => {
    const c = loadConfig({ file: file(), env: { LIFELINE_PORT: '', LIFELINE_HOST: '', LIFELINE_DB: '' } });
    expect(c.server.port).toBe(7400);
    expect(c.db).toBe(`sqlite:${tmp.dir}/x.db`);
  });

  it('flags override env variables', () => {
    const c = loadConfig({
      file: file(),
      env: { LIFELINE_PORT: '8080', LIFELINE_HOST: '0.0.0.0', LIFELINE_DB: 'sqlite:/a.db' },
      overrides: { port: 9090, host: '::1', db: 'postgresql://u@h/db' },
    });
    expect(c.server).toEqual({ host: '::1', port: 9090 });
    expect(c.db).toBe('postgresql://u@h/db');
  });

  it.each([
    ['LIFELINE_PORT', 'eighty', 'LIFELINE_PORT (environment): expected a port number from 0 to 65535'],
    ['LIFELINE_PORT', '65536', 'LIFELINE_PORT (environment): expected a port number from 0 to 65535'],
    ['LIFELINE_PORT', '-1', 'LIFELINE_PORT (environment): expected a port number from 0 to 65535'],
    ['LIFELINE_HOST', 'a host', 'LIFELINE_HOST (environment): expected a host name or IP address'],
    ['LIFELINE_DB', 'mysql://x', 'LIFELINE_DB (environment): expected sqlite:<path>'],
    [
      'LIFELINE_DB',
      'sqlite::memory:',
      'LIFELINE_DB (environment): an in-memory SQLite database is not supported',
    ],
    ['LIFELINE_DATA_DIR', 'a\0b', 'LIFELINE_DATA_DIR (environment): must not contain a NUL character'],
    [
      'LIFELINE_LEASE_TTL',
      'soon',
      'LIFELINE_LEASE_TTL (environment): expected a duration like 30s, 10m or 1h',
    ],
    ['LIFELINE_LEASE_TTL', '0s', 'LIFELINE_LEASE_TTL (environment): must be longer than 0'],
    ['LIFELINE_REAP_INTERVAL', '1.5s', 'LIFELINE_REAP_INTERVAL (environment): expected a duration like 30s'],
  ])('a bad %s=%j is an error naming the variable', (name, value, expected) => {
    expect(errorOf(() => loadConfig({ file: file(), env: { [name]: value } }))).toContain(expected);
  });

  it.each([
    [{ port: 70000 }, '--port: expected a port number from 0 to 65535'],
    [{ port: Number.NaN }, '--port: expected a port number from 0 to 65535'],
    [{ host: '' }, '--host: expected a host name or IP address'],
    [{ db: 'redis://x' }, '--db: expected sqlite:<path>'],
  ])('a bad flag %j is an error naming the flag', (overrides, expected) => {
    expect(errorOf(() => configFromObject(MINIMAL, { overrides }))).toContain(expected);
  });

  it('never echoes a database URL, which may hold a password', () => {
    const msg = errorOf(() =>
      configFromObject(
        { ...MINIMAL, db: 'postgres://u:pa55word@[bad/db' },
        { env: { LIFELINE_DB: 'mysql://u:pa55word@h/db' } },
      ),
    );
    expect(msg).toContain('db: is not a valid postgres:// URL');
    expect(msg).toContain('LIFELINE_DB (environment)');
    expect(msg).not.toContain('pa55word');
  });
});

describe('db', () => {
  it.each([
    ['sqlite:./data/x.db', 'sqlite:/etc/ll/data/x.db'],
    ['sqlite:x.db', 'sqlite:/etc/ll/x.db'],
    ['sqlite:/var/lib/x.db', 'sqlite:/var/lib/x.db'],
    ['postgres://user@host/db', 'postgres://user@host/db'],
    [
      'postgresql://user:pw@host:5433/db?sslmode=require',
      'postgresql://user:pw@host:5433/db?sslmode=require',
    ],
  ])('%s → %s', (db, expected) => {
    expect(configFromObject({ ...MINIMAL, db }, { baseDir: '/etc/ll' }).db).toBe(expected);
  });

  it.each([
    ['sqlite::memory:', 'an in-memory SQLite database is not supported'],
    ['sqlite:', 'expected sqlite:<path>'],
    [
      'sqlite:///var/x.db',
      'expected sqlite:<path> (e.g. sqlite:./data/lifeline.db) or a postgres:// URL; write sqlite:/abs/path, not a sqlite:// URL',
    ],
    ['mysql://h/db', 'expected sqlite:<path> (e.g. sqlite:./data/lifeline.db) or a postgres:// URL'],
    ['./lifeline.db', 'expected sqlite:<path>'],
  ])('rejects %s', (db, expected) => {
    expect(errorOf(() => configFromObject({ ...MINIMAL, db }, { file: 'lifeline.yaml' }))).toContain(
      `lifeline.yaml: db: ${expected}`,
    );
  });
});

describe('every error names the file and the field', () => {
  const demo = { deploy: ['./d.sh'], teardown: ['./t.sh'] };
  const cases: [string, Record<string, unknown>, string][] = [
    ['unknown top-level key', { ...MINIMAL, sever: {} }, 'sever: unknown key (did you mean server?)'],
    [
      'unknown top-level key, no near match',
      { ...MINIMAL, colour: 1 },
      'colour: unknown key (expected one of: server, db,',
    ],
    [
      'unknown plan key',
      { plans: { demo: { ...demo, timout: '1m' } } },
      'plans.demo.timout: unknown key (did you mean timeout?)',
    ],
    [
      'unknown server key',
      { ...MINIMAL, server: { hots: 'x' } },
      'server.hots: unknown key (did you mean host?)',
    ],
    [
      'bad duration',
      { plans: { demo: { ...demo, timeout: '10 minutes' } } },
      'plans.demo.timeout: expected a duration like 30s, 10m or 1h',
    ],
    [
      'zero timeout',
      { plans: { demo: { ...demo, timeout: 0 } } },
      'plans.demo.timeout: must be longer than 0',
    ],
    [
      'bad cancel_grace',
      { plans: { demo: { ...demo, cancel_grace: -1 } } },
      'plans.demo.cancel_grace: expected a duration',
    ],
    ['bad lease_ttl', { ...MINIMAL, lease_ttl: '0' }, 'lease_ttl: must be longer than 0'],
    ['bad reap_interval', { ...MINIMAL, reap_interval: true }, 'reap_interval: expected a duration'],
    ['bad start_deadline', { ...MINIMAL, start_deadline: '1y' }, 'start_deadline: expected a duration'],
    [
      'bad durable_commits',
      { ...MINIMAL, durable_commits: 'yes' },
      'durable_commits: expected true or false, got a string',
    ],
    [
      'bad supervisor',
      { ...MINIMAL, supervisor: 'bash' },
      'supervisor: Invalid option: expected one of "perl"|"sh"',
    ],
    [
      'bad port',
      { ...MINIMAL, server: { port: 'http' } },
      'server.port: expected a port number from 0 to 65535',
    ],
    ['bad host', { ...MINIMAL, server: { host: 7 } }, 'server.host: expected a host name or IP address'],
    ['bad data_dir', { ...MINIMAL, data_dir: '' }, 'data_dir: must not be empty'],
    [
      'plans not a mapping',
      { plans: ['demo'] },
      'plans: expected a mapping of plan names to plans, got a list',
    ],
    [
      'plan not a mapping',
      { plans: { demo: null } },
      'plans.demo: expected a plan (a mapping), got an empty value',
    ],
    ['bad plan name', { plans: { Demo: demo } }, 'plans.Demo: invalid plan name'],
    [
      'plan name too long',
      { plans: { ['a'.repeat(64)]: demo } },
      `plans.${'a'.repeat(64)}: invalid plan name`,
    ],
    ['missing deploy', { plans: { demo: { teardown: ['t'] } } }, 'plans.demo.deploy: is required'],
    ['missing teardown', { plans: { demo: { deploy: ['d'] } } }, 'plans.demo.teardown: is required'],
    [
      'argv as a string',
      { plans: { demo: { ...demo, deploy: './d.sh --now' } } },
      'plans.demo.deploy: expected a list of strings (argv), not a string: Lifeline never runs plans through a shell',
    ],
    ['empty argv', { plans: { demo: { ...demo, teardown: [] } } }, 'plans.demo.teardown: must not be empty'],
    [
      'non-string argv element',
      { plans: { demo: { ...demo, check: ['./c.sh', 3] } } },
      'plans.demo.check[1]: expected a string',
    ],
    [
      'empty program',
      { plans: { demo: { ...demo, deploy: [''] } } },
      'plans.demo.deploy[0]: the program to run must not be empty',
    ],
    [
      'NUL in argv',
      { plans: { demo: { ...demo, deploy: ['x', 'a\0b'] } } },
      'plans.demo.deploy[1]: must not contain a NUL character',
    ],
    [
      'bad description',
      { plans: { demo: { ...demo, description: 5 } } },
      'plans.demo.description: expected a string, got a number',
    ],
    [
      'env not a mapping',
      { plans: { demo: { ...demo, env: ['A=1'] } } },
      'plans.demo.env: expected a mapping of variable names to values, got a list',
    ],
    [
      'env object value',
      { plans: { demo: { ...demo, env: { A: { b: 1 } } } } },
      'plans.demo.env.A: expected a string, got a mapping',
    ],
    [
      'env null value',
      { plans: { demo: { ...demo, env: { A: null } } } },
      'plans.demo.env.A: expected a string, got an empty value',
    ],
    [
      'env bad name',
      { plans: { demo: { ...demo, env: { 'MY-VAR': 'x' } } } },
      'plans.demo.env.MY-VAR: invalid variable name',
    ],
    [
      'env reserved name',
      { plans: { demo: { ...demo, env: { LIFELINE_PARAMS: '{}' } } } },
      'plans.demo.env.LIFELINE_PARAMS: is set by the runner',
    ],
    [
      'bad params',
      { plans: { demo: { ...demo, params: { type: 'string' } } } },
      'plans.demo.params: the schema must have type: object',
    ],
    [
      'auth null',
      { ...MINIMAL, auth: null },
      'auth: is empty: list tokens under it, or remove auth to disable it',
    ],
    ['auth without tokens', { ...MINIMAL, auth: {} }, 'auth.tokens: is required'],
    [
      'auth tokens empty',
      { ...MINIMAL, auth: { tokens: [] } },
      'auth.tokens: is empty: list at least one token, or remove auth to disable it',
    ],
    [
      'bad role',
      { ...MINIMAL, auth: { tokens: [{ name: 'a', role: 'root', token_sha256: 'a'.repeat(64) }] } },
      'auth.tokens[0].role: expected one of viewer, operator, admin',
    ],
    [
      'bad token name',
      { ...MINIMAL, auth: { tokens: [{ name: 'a b', role: 'admin', token_sha256: 'a'.repeat(64) }] } },
      'auth.tokens[0].name: expected letters',
    ],
    ...['system', 'runner', 'recovery', 'anonymous'].map(
      (name): [string, Record<string, unknown>, string] => [
        `reserved token name ${name}`,
        { ...MINIMAL, auth: { tokens: [{ name, role: 'admin', token_sha256: 'a'.repeat(64) }] } },
        'auth.tokens[0].name: the names system, runner, recovery, anonymous are reserved',
      ],
    ),
    [
      'unknown token key',
      { ...MINIMAL, auth: { tokens: [{ name: 'a', role: 'admin', token_sha: 'a'.repeat(64) }] } },
      'auth.tokens[0].token_sha: unknown key (did you mean token_sha256?)',
    ],
    [
      'bad token_env name',
      { ...MINIMAL, auth: { tokens: [{ name: 'a', role: 'admin', token_env: '$TOKEN' }] } },
      'auth.tokens[0].token_env: expected the name of an environment variable',
    ],
  ];
  it.each(cases)('%s', (_what, obj, expected) => {
    const err = (() => {
      try {
        configFromObject(obj, { file: 'lifeline.yaml' });
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(`lifeline.yaml: ${expected}`);
    expect(err.file).toBe('lifeline.yaml');
    for (const line of err.message.split('\n')) expect(line.startsWith('lifeline.yaml: ')).toBe(true);
  });

  it('reports every problem at once', () => {
    const err = (() => {
      try {
        configFromObject(
          { sever: 1, plans: { demo: { deploy: 'x', teardown: ['y'], timeout: 'x' }, Bad: {} } },
          { file: 'lifeline.yaml', env: { LIFELINE_PORT: 'x' } },
        );
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(err.issues.map((i) => `${i.source}|${i.path}`).sort()).toEqual(
      [
        'lifeline.yaml|sever',
        'lifeline.yaml|plans.demo.deploy',
        'lifeline.yaml|plans.demo.timeout',
        'lifeline.yaml|plans.Bad',
        'LIFELINE_PORT (environment)|',
      ].sort(),
    );
    expect(err.message.split('\n')).toHaveLength(5);
  });
});

describe('plans', () => {
  it('resolves argv against the config folder', () => {
    const file = tmp.write(
      'conf/lifeline.yaml',
      `plans:
  demo:
    deploy: ["./plans/deploy.sh", "--dir", "./work/", "../shared/vars.tfvars", "plain", "sub/dir", "/abs/x", "--opt=./x"]
    teardown: ["plans/teardown.sh"]
    check: ["bash", "-c", "exit 0", "./check.sh"]
`,
    );
    const c = loadConfig({ file, env: {} });
    const d = path.join(tmp.dir, 'conf');
    expect(c.plans.demo.deploy).toEqual([
      `${d}/plans/deploy.sh`,
      '--dir',
      `${d}/work/`,
      `${tmp.dir}/shared/vars.tfvars`,
      'plain',
      'sub/dir',
      '/abs/x',
      '--opt=./x',
    ]);
    expect(c.plans.demo.teardown).toEqual([`${d}/plans/teardown.sh`]); // argv[0] with a slash: a path
    expect(c.plans.demo.check).toEqual(['bash', '-c', 'exit 0', `${d}/check.sh`]); // bare name: PATH lookup
  });

  it('accepts valid plan names and finds plans by own name only', () => {
    const names = ['a', '0', 'web-1', 'my_plan', 'a'.repeat(63), 'constructor'];
    const c = configFromObject({ plans: Object.fromEntries(names.map((n) => [n, MINIMAL.plans.demo])) });
    expect(Object.keys(c.plans).sort()).toEqual([...names].sort());
    expect(findPlan(c, 'web-1')?.name).toBe('web-1');
    expect(findPlan(c, 'nope')).toBeUndefined();
    const empty = configFromObject({ plans: {} });
    expect(findPlan(empty, 'constructor')).toBeUndefined();
    expect(findPlan(empty, 'toString')).toBeUndefined();
    expect(findPlan(empty, '__proto__')).toBeUndefined();
  });

  it('converts numbers and booleans in env to strings', () => {
    const c = configFromObject({
      plans: { demo: { ...MINIMAL.plans.demo, env: { A: 1, B: false, C: 'x', D: 2.5 } } },
    });
    expect(c.plans.demo.env).toEqual({ A: '1', B: 'false', C: 'x', D: '2.5' });
  });

  it('a config may declare no plans', () => {
    expect(configFromObject({}).plans).toEqual({});
  });
});

describe('auth tokens', () => {
  const tokens = (list: unknown[]) => ({ ...MINIMAL, auth: { tokens: list } });

  it('hashes token_env values at load and stores token_sha256 lower-case', () => {
    const c = configFromObject(
      tokens([
        { name: 'ci', role: 'operator', token_env: 'TOK_CI' },
        { name: 'viewer-bot', role: 'viewer', token_sha256: ALICE_SHA.toUpperCase() },
      ]),
      { env: { TOK_CI: 's3cr3t-ci' } },
    );
    expect(c.auth?.tokens).toEqual([
      { name: 'ci', role: 'operator', sha256: sha256('s3cr3t-ci') },
      { name: 'viewer-bot', role: 'viewer', sha256: ALICE_SHA },
    ]);
    expect(JSON.stringify(c)).not.toContain('s3cr3t-ci');
  });

  it.each([
    [{}, 'auth.tokens[0].token_env: token "ci": environment variable TOK_CI is not set'],
    [{ TOK_CI: '' }, 'auth.tokens[0].token_env: token "ci": environment variable TOK_CI is empty'],
    [
      { TOK_CI: ' tok ' },
      'auth.tokens[0].token_env: token "ci": environment variable TOK_CI has leading or trailing whitespace',
    ],
  ])('token_env with env %j is an error naming the token and the variable', (env, expected) => {
    expect(
      errorOf(() =>
        configFromObject(tokens([{ name: 'ci', role: 'operator', token_env: 'TOK_CI' }]), {
          file: 'lifeline.yaml',
          env,
        }),
      ),
    ).toBe(`lifeline.yaml: ${expected}`);
  });

  it('loadConfig reads token_env from process.env by default', () => {
    const file = tmp.write('lifeline.yaml', SPEC_FILE);
    const saved = process.env.LIFELINE_TOKEN_CI;
    process.env.LIFELINE_TOKEN_CI = 'from-process-env';
    try {
      expect(loadConfig({ file }).auth?.tokens[0].sha256).toBe(sha256('from-process-env'));
    } finally {
      if (saved === undefined) delete process.env.LIFELINE_TOKEN_CI;
      else process.env.LIFELINE_TOKEN_CI = saved;
    }
    expect(errorOf(() => loadConfig({ file, env: {} }))).toBe(
      `${file}:6: auth.tokens[0].token_env: token "ci": environment variable LIFELINE_TOKEN_CI is not set`,
    );
  });

  it.each([
    [{ name: 'a', role: 'admin' }, 'auth.tokens[0]: token "a": set one of token_env'],
    [
      { name: 'a', role: 'admin', token_env: 'T', token_sha256: ALICE_SHA },
      'auth.tokens[0]: token "a": set exactly one of token_env or token_sha256, not both',
    ],
    [
      { name: 'a', role: 'admin', token_sha256: 'abc' },
      'auth.tokens[0].token_sha256: expected 64 hex characters',
    ],
    [
      { name: 'a', role: 'admin', token_sha256: 'g'.repeat(64) },
      'auth.tokens[0].token_sha256: expected 64 hex characters',
    ],
  ])('%j is an error', (token, expected) => {
    expect(
      errorOf(() => configFromObject(tokens([token]), { file: 'lifeline.yaml', env: { T: 'x' } })),
    ).toContain(`lifeline.yaml: ${expected}`);
  });

  it('token names and token values must be unique', () => {
    const msg = errorOf(() =>
      configFromObject(
        tokens([
          { name: 'ci', role: 'operator', token_env: 'A' },
          { name: 'ci', role: 'viewer', token_sha256: sha256('other') },
          { name: 'bob', role: 'admin', token_env: 'B' },
        ]),
        { file: 'lifeline.yaml', env: { A: 'same-value', B: 'same-value' } },
      ),
    );
    expect(msg).toContain(
      'lifeline.yaml: auth.tokens[1].name: duplicate token name "ci" (also auth.tokens[0])',
    );
    expect(msg).toContain(
      'lifeline.yaml: auth.tokens[2]: token "bob" is the same token as auth.tokens[0] ("ci")',
    );
    expect(msg).not.toContain('same-value');
  });

  it('names the original entries when an earlier token failed to load', () => {
    const msg = errorOf(() =>
      configFromObject(
        tokens([
          { name: 'gone', role: 'viewer', token_env: 'MISSING' },
          { name: 'a', role: 'admin', token_env: 'A' },
          { name: 'b', role: 'admin', token_env: 'B' },
        ]),
        { file: 'lifeline.yaml', env: { A: 'dup', B: 'dup' } },
      ),
    );
    expect(msg).toContain(
      'lifeline.yaml: auth.tokens[0].token_env: token "gone": environment variable MISSING is not set',
    );
    expect(msg).toContain(
      'lifeline.yaml: auth.tokens[2]: token "b" is the same token as auth.tokens[1] ("a")',
    );
  });

  it('no error message ever contains a token value', () => {
    const SECRET = 'tok_9d1f5e0c7a2b4e8f';
    const attempts: [unknown, NodeJS.ProcessEnv][] = [
      [tokens([{ name: 'a', role: 'admin', token_sha256: SECRET }]), {}], // token pasted instead of its hash
      [tokens([{ name: 'a', role: 'admin', token: SECRET }]), {}], // token put in the file
      [tokens([{ name: 'a', role: 'admin', token_env: 'T' }]), { T: ` ${SECRET}\n` }],
      [tokens([{ name: 'a', role: 'admin', token_env: 'T', token_sha256: SECRET }]), { T: SECRET }],
      [tokens([{ name: 'a', role: 'root', token_env: 'T' }]), { T: SECRET }],
      [
        tokens([
          { name: 'a', role: 'admin', token_env: 'T' },
          { name: 'b', role: 'admin', token_env: 'U' },
        ]),
        { T: SECRET, U: SECRET },
      ],
      [tokens([{ name: 'a', role: 'admin', token_sha256: [SECRET] }]), {}],
      [{ ...MINIMAL, db: `postgres://u:${SECRET}@[x` }, {}],
      [
        MINIMAL,
        { LIFELINE_DB: `mysql://u:${SECRET}@h/db`, LIFELINE_PORT: SECRET, LIFELINE_LEASE_TTL: SECRET },
      ],
    ];
    for (const [obj, env] of attempts) {
      const msg = errorOf(() => configFromObject(obj, { file: 'lifeline.yaml', env }));
      expect(msg).not.toContain(SECRET);
      expect(msg).not.toContain(sha256(SECRET));
    }
    const file = tmp.write(
      'lifeline.yaml',
      `auth:\n  tokens:\n    - { name: a, role: admin, token_sha256: ${SECRET} }\nplans: {}\n`,
    );
    expect(errorOf(() => loadConfig({ file, env: {} }))).not.toContain(SECRET);
  });
});

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
