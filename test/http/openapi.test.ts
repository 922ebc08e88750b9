// /openapi.json is an OpenAPI 3.1 document of every SPEC §6 route, generated from the route schemas;
// /docs serves the UI from local assets.
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { harness, json, type Harness } from './helpers.ts';
import { DIALECTS } from '../helpers/engine.ts';

let h: Harness;
let doc: any;
describe.each(DIALECTS)('on %s', (dialect) => {
  beforeAll(async () => {
    h = await harness({ auth: true, dialect });
    const res = await h.app.inject({ url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    doc = json(res);
  });
  afterAll(async () => {
    await h?.close();
  });

  // SPEC §6, method and path as OpenAPI writes them.
  const SPEC_OPERATIONS = [
    'get /v1/health',
    'get /v1/health/ready',
    'get /v1/plans',
    'post /v1/deployments',
    'get /v1/deployments',
    'get /v1/deployments/{ref}',
    'delete /v1/deployments/{ref}',
    'post /v1/deployments/{ref}/attempts',
    'get /v1/deployments/{ref}/attempts',
    'get /v1/attempts',
    'get /v1/attempts/{id}',
    'get /v1/attempts/{id}/log',
    'get /v1/attempts/{id}/phases',
    'post /v1/deployments/{ref}/cancel',
    'post /v1/deployments/{ref}/teardown',
    'post /v1/deployments/{ref}/rollback',
    'post /v1/deployments/{ref}/resolve',
    'post /v1/deployments/{ref}/check',
    'get /v1/deployments/{ref}/transitions',
    'get /v1/events',
    'get /v1/events/stream',
    'get /v1/deployments/{ref}/events',
    'get /v1/deployments/{ref}/events/stream',
    'get /v1/instances',
    'get /v1/webhooks',
    'post /v1/webhooks/{name}/redeliver',
    // SPEC §12.5
    'post /v1/stacks',
    'get /v1/stacks',
    'get /v1/stacks/{name}',
    'put /v1/stacks/{name}',
    'delete /v1/stacks/{name}',
    // SPEC §12.5: stack runs.
    'post /v1/stacks/{name}/deploy',
    'post /v1/stacks/{name}/teardown',
    'post /v1/stacks/{name}/cancel',
    'get /v1/stacks/{name}/runs',
    'get /v1/runs/{id}',
    // SPEC §14.1: apply.
    'post /v1/apply/plan',
    'post /v1/apply',
    'post /v1/attempts/{id}/approve',
    'post /v1/attempts/{id}/reject',
    'get /v1/freezes',
    'post /v1/freezes',
    'delete /v1/freezes/{name}',
  ];

  const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

  function operations(d: any): [string, string, any][] {
    const out: [string, string, any][] = [];
    for (const [p, item] of Object.entries<any>(d.paths)) {
      for (const m of METHODS) if (item[m]) out.push([m, p, item[m]]);
    }
    return out;
  }

  /** Every `$ref` in the document, with where it was found. */
  function refs(node: unknown, at = '#', out: [string, string][] = []): [string, string][] {
    if (Array.isArray(node)) node.forEach((n, i) => refs(n, `${at}/${i}`, out));
    else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === '$ref' && typeof v === 'string') out.push([v, at]);
        else refs(v, `${at}/${k}`, out);
      }
    }
    return out;
  }

  function resolvePointer(d: any, ref: string): unknown {
    if (!ref.startsWith('#/')) return undefined;
    return ref
      .slice(2)
      .split('/')
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce<any>((n, k) => (n === undefined ? undefined : n[k]), d);
  }

  describe('/openapi.json', () => {
    it('is OpenAPI 3.1 with info, paths and a bearer scheme', () => {
      expect(doc.openapi).toBe('3.1.0');
      expect(doc.info).toMatchObject({ title: 'Lifeline', version: expect.any(String) });
      expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });
      expect(doc.security).toEqual([{ bearer: [] }]);
    });

    it('lists every SPEC §6 operation, and nothing else under /v1', () => {
      const ops = operations(doc).map(([m, p]) => `${m} ${p}`);
      for (const op of SPEC_OPERATIONS) expect(ops).toContain(op);
      expect(ops.filter((o) => o.includes(' /v1/')).sort()).toEqual([...SPEC_OPERATIONS].sort());
      expect(ops.some((o) => o.includes('/docs') || o.includes('/openapi.json'))).toBe(false);
    });

    it('is structurally valid: responses on every operation, declared path params, unique ids, refs resolve', () => {
      const ids = new Set<string>();
      for (const [m, p, op] of operations(doc)) {
        expect(Object.keys(op.responses ?? {}).length, `${m} ${p}`).toBeGreaterThan(0);
        for (const [code, r] of Object.entries<any>(op.responses)) {
          expect(code).toMatch(/^([1-5][0-9]{2}|default)$/);
          expect(typeof r.description, `${m} ${p} ${code}`).toBe('string');
        }
        const declared = (op.parameters ?? []).filter((x: any) => x.in === 'path').map((x: any) => x.name);
        const inPath = [...p.matchAll(/\{([^}]+)\}/g)].map((x) => x[1]);
        expect(declared.sort()).toEqual(inPath.sort());
        for (const param of op.parameters ?? []) {
          expect(['path', 'query', 'header', 'cookie']).toContain(param.in);
          if (param.in === 'path') expect(param.required).toBe(true);
        }
        if (op.operationId) {
          expect(ids.has(op.operationId), op.operationId).toBe(false);
          ids.add(op.operationId);
        }
      }
      for (const [ref, at] of refs(doc)) expect(resolvePointer(doc, ref), `${ref} at ${at}`).toBeDefined();
    });

    it('every schema compiles as JSON Schema 2020-12 (the 3.1 dialect)', () => {
      const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
      // components first, so that refs into them resolve
      ajv.addSchema({ $id: 'doc', components: doc.components });
      const rewrite = (node: unknown): unknown =>
        JSON.parse(JSON.stringify(node).replace(/"\$ref":"#\/components/g, '"$ref":"doc#/components'));
      const schemas: unknown[] = [];
      for (const [, , op] of operations(doc)) {
        for (const p of op.parameters ?? []) if (p.schema) schemas.push(p.schema);
        for (const c of Object.values<any>(op.requestBody?.content ?? {})) schemas.push(c.schema);
        for (const r of Object.values<any>(op.responses)) {
          for (const c of Object.values<any>(r.content ?? {})) if (c.schema) schemas.push(c.schema);
        }
      }
      expect(schemas.length).toBeGreaterThan(40);
      for (const s of schemas) expect(() => ajv.compile(rewrite(s) as object)).not.toThrow();
    });

    it('documents bodies, problems, the ETag-bearing Deployment and the plain-text log', () => {
      const create = doc.paths['/v1/deployments'].post;
      expect(create.requestBody.content['application/json'].schema).toBeDefined();
      expect(Object.keys(create.responses)).toEqual(
        expect.arrayContaining(['201', '401', '403', '404', '409', '422']),
      );
      expect(create.responses['409'].content['application/problem+json'].schema).toBeDefined();
      expect(doc.paths['/v1/deployments/{ref}/attempts'].post.responses['202']).toBeDefined();
      expect(doc.paths['/v1/deployments/{ref}'].delete.responses['204']).toBeDefined();
      expect(doc.paths['/v1/health/ready'].get.responses['503']).toBeDefined();
      expect(doc.paths['/v1/attempts/{id}/log'].get.responses['200'].content['text/plain']).toBeDefined();
      expect(doc.paths['/v1/health'].get.security).toEqual([]);
      const limit = doc.paths['/v1/deployments'].get.parameters.find((p: any) => p.name === 'limit');
      expect(limit.in).toBe('query');
    });
  });

  describe('/docs', () => {
    it('serves the UI and its assets from this server (public, no CDN)', async () => {
      const page = await h.app.inject({ url: '/docs' });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(page.body).toContain('swagger-ui');
      const external = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)]
        .map((m) => m[1])
        .filter((u) => /^(https?:)?\/\//.test(u));
      expect(external).toEqual([]);
      const css = await h.app.inject({ url: '/docs/static/swagger-ui.css' });
      expect(css.statusCode).toBe(200);
      const bundle = await h.app.inject({ url: '/docs/static/swagger-ui-bundle.js' });
      expect(bundle.statusCode).toBe(200);
      const spec = await h.app.inject({ url: '/docs/json' });
      expect(json(spec).openapi).toBe('3.1.0');
    });
  });
});
