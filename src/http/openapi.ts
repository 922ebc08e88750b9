// The OpenAPI document's frame: info, license, servers and security, and a last pass over the generated
// document. The paths and schemas themselves come from the route schemas (schemas.ts, routes/*.ts).
import type { SwaggerOptions } from '@fastify/swagger';
import { jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { VERSION } from '../version.ts';

export const OPENAPI_INFO: NonNullable<Extract<SwaggerOptions, { openapi?: unknown }>['openapi']> = {
  openapi: '3.1.0',
  info: {
    title: 'Lifeline',
    version: VERSION,
    description:
      'Deployment lifecycle control plane: one truthful state per deployment. ' +
      'Errors are application/problem+json with a stable `code`. ' +
      'Writes accept `If-Match: "<version>"`; POSTs and DELETE accept `Idempotency-Key`. ' +
      'The reference is docs/reference/http-api.md in the repository.',
    license: { name: 'MIT', identifier: 'MIT' },
  },
  // Relative to where the document was fetched from: the server that serves it is the one it describes.
  servers: [{ url: '/', description: 'the server that serves this document' }],
  components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
  security: [{ bearer: [] }],
};

type Doc = { components?: { schemas?: Record<string, unknown> } } & Record<string, unknown>;

/** Names of the component schemas the document references, following refs inside components too. */
function usedSchemas(doc: Doc): Set<string> {
  const prefix = '#/components/schemas/';
  const schemas = doc.components?.schemas ?? {};
  const used = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (node === null || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string' && v.startsWith(prefix)) {
        const name = v.slice(prefix.length);
        if (!used.has(name)) {
          used.add(name);
          walk(schemas[name]);
        }
      } else walk(v);
    }
  };
  walk({ ...doc, components: { ...doc.components, schemas: undefined } });
  return used;
}

/**
 * The type provider registers an input and an output copy of every schema with an id; requests never
 * use the ids, so the input copies would be unused components. Keep only what the paths reference.
 */
export const transformObject: typeof jsonSchemaTransformObject = (input) => {
  const doc = jsonSchemaTransformObject(input) as Doc;
  const schemas = doc.components?.schemas;
  if (!schemas) return doc as ReturnType<typeof jsonSchemaTransformObject>;
  const used = usedSchemas(doc);
  const kept = Object.fromEntries(Object.entries(schemas).filter(([name]) => used.has(name)));
  return { ...doc, components: { ...doc.components, schemas: kept } } as ReturnType<
    typeof jsonSchemaTransformObject
  >;
};
