import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { contractComponents } from '../contract.js';
import { API_BASE, operations, type Operation } from './operations.js';

/**
 * The OpenAPI 3.1 document of `/v1`, generated from the route declarations (http/operations.ts)
 * and the contract's schemas (contract.ts) with zod's own JSON Schema conversion: request schemas
 * as they are sent (zod's input side), answers as they come back (its output side).
 */

const componentUri = (id: string) => `#/components/schemas/${id}`;
const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

type JsonSchema = Record<string, unknown> & { properties?: Record<string, JsonSchema>; required?: string[] };

/** Methods whose bodies the body parser reads (http/body.ts), whether or not the operation takes one. */
const BODY_METHODS = new Set<Operation['method']>(['post', 'put', 'patch']);

/** Statuses every operation of a kind can get from the middleware (body parsing, authentication, limits). */
function commonProblems(operation: Operation): Record<number, string> {
  const problems: Record<number, string> = {};
  if (operation.params || operation.query || operation.body || operation.headers) {
    problems[400] = 'Invalid input (`errors` names each field) or a malformed request.';
  }
  if (operation.auth !== 'none') {
    problems[401] = 'No valid token (a postline token or, when configured, a host JWT); `WWW-Authenticate: Bearer`.';
    problems[429] = 'Rate limited; see `Retry-After`.';
  }
  // Bodies are parsed before routing: a PUT without a body of its own still gets 413/415 for one sent anyway.
  if (operation.body || BODY_METHODS.has(operation.method)) {
    problems[413] = 'The body is over 64 KiB.';
    problems[415] = 'Not JSON, form-encoded, or text/plain holding JSON; or not UTF-8.';
  }
  problems[503] = 'The database, or the host’s signing keys, cannot be reached right now; see `Retry-After`.';
  return problems;
}

const SECURITY: Record<Operation['auth'], Array<Record<string, string[]>>> = {
  none: [],
  token: [{ bearer: [] }, { sessionCookie: [], cookieSessionHeader: [] }],
  stream: [{ bearer: [] }, { accessToken: [] }, { sessionCookie: [] }],
};

/**
 * zod converts a registry in one go, with cross-references as `$ref`s to each schema's id. Each
 * side (input, output) gets a registry of the schemas it uses; the output side starts with the
 * contract's objects, which the answers refer to.
 */
class SchemaSet {
  private readonly registry = z.registry<{ id: string; description?: string }>();
  private readonly ids = new Map<z.ZodType, string>();
  private converted: Record<string, JsonSchema> | undefined;

  constructor(
    private readonly io: 'input' | 'output',
    components: Record<string, { schema: z.ZodType; description: string }> = {},
  ) {
    for (const [id, { schema, description }] of Object.entries(components)) {
      this.ids.set(schema, id);
      this.registry.add(schema, { id, description });
    }
  }

  /** Register `schema` (once, under the first id asked for); returns the id to look it up by. */
  add(schema: z.ZodType, id: string): string {
    const known = this.ids.get(schema);
    if (known) return known;
    this.ids.set(schema, id);
    this.registry.add(schema, { id });
    return id;
  }

  get(id: string): JsonSchema {
    this.converted ??= this.convert();
    return this.converted[id]!;
  }

  private convert(): Record<string, JsonSchema> {
    const { schemas } = z.toJSONSchema(this.registry, { target: 'draft-2020-12', io: this.io, unrepresentable: 'any', uri: componentUri });
    return Object.fromEntries(
      Object.entries(schemas).map(([id, schema]) => {
        const { $schema: _schema, $id: _id, ...rest } = schema as JsonSchema;
        return [id, rest];
      }),
    );
  }
}

const toOpenApiPath = (path: string) => API_BASE + path.replace(/:(\w+)/g, '{$1}');

function parametersOf(schema: JsonSchema, location: 'path' | 'query') {
  return Object.entries(schema.properties ?? {}).map(([name, property]) => ({
    name,
    in: location,
    required: location === 'path' || (schema.required ?? []).includes(name),
    schema: property,
  }));
}

/** Build the document. */
export function openApiDocument(): Record<string, unknown> {
  const inputs = new SchemaSet('input');
  const outputs = new SchemaSet('output', contractComponents);
  const entries = Object.entries(operations) as Array<[string, Operation]>;
  // Register first, convert once, then assemble.
  const registered = entries.map(([name, operation]) => ({
    name,
    operation,
    params: operation.params && inputs.add(operation.params, `${name}.params`),
    query: operation.query && inputs.add(operation.query, `${name}.query`),
    body: operation.body && inputs.add(operation.body, `${name}.body`),
    // Each header in an object of its own: its schema may appear inside others (a body field, a query parameter).
    headers: Object.entries(operation.headers ?? {}).map(([header, { schema, description }]) => ({
      header,
      description,
      id: inputs.add(z.object({ [header]: schema }), `${name}.header.${header}`),
    })),
    answers: Object.entries(operation.answers).map(([status, answer]) => ({
      status,
      description: answer.description,
      content: Object.entries({ ...(answer.schema && { 'application/json': answer.schema }), ...answer.content }).map(
        ([type, schema], index) => [type, outputs.add(schema, `${name}.${status}.${index}`)] as const,
      ),
    })),
  }));

  const paths: Record<string, Record<string, unknown>> = {};
  for (const { name, operation, params, query, body, headers, answers } of registered) {
    const responses: Record<string, unknown> = {};
    for (const answer of answers) {
      responses[answer.status] = {
        description: answer.description,
        ...(answer.content.length > 0 && { content: Object.fromEntries(answer.content.map(([type, id]) => [type, { schema: outputs.get(id) }])) }),
      };
    }
    for (const [status, description] of Object.entries({ ...commonProblems(operation), ...operation.problems })) {
      responses[status] = { description, content: { 'application/problem+json': { schema: { $ref: componentUri('Problem') } } } };
    }
    const bodySchema = body && inputs.get(body);
    (paths[toOpenApiPath(operation.path)] ??= {})[operation.method] = {
      operationId: name,
      summary: operation.summary,
      ...(operation.description && { description: operation.description }),
      tags: [operation.tag],
      security: SECURITY[operation.auth],
      parameters: [
        ...(params ? parametersOf(inputs.get(params), 'path') : []),
        ...(query ? parametersOf(inputs.get(query), 'query') : []),
        ...headers.map(({ header, description, id }) => ({
          name: header,
          in: 'header',
          required: false,
          description,
          schema: inputs.get(id).properties![header],
        })),
      ],
      ...(bodySchema && {
        requestBody: {
          required: true,
          content: {
            'application/json': { schema: bodySchema },
            'application/x-www-form-urlencoded': { schema: bodySchema },
            'text/plain': { schema: { type: 'string', description: 'The JSON body as text (old IE’s XDomainRequest).' } },
          },
        },
      }),
      responses,
    };
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'postline',
      version: PACKAGE.version,
      description:
        'Real-time chat over plain HTTP. The complete contract, with delivery semantics, is docs/api.md; ' +
        'this document is generated from the schemas the server validates with.',
    },
    tags: [...new Set(entries.map(([, operation]) => operation.tag))].map((tag) => ({ name: tag })),
    security: SECURITY.token,
    paths,
    components: {
      schemas: Object.fromEntries(Object.keys(contractComponents).map((id) => [id, outputs.get(id)])),
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'A postline session token (`pl_…`) or, when configured, a host JWT.' },
        accessToken: { type: 'apiKey', in: 'query', name: 'access_token', description: 'The token as a query parameter (stream endpoints only).' },
        sessionCookie: {
          type: 'apiKey',
          in: 'cookie',
          name: 'postline_session',
          description: 'The HttpOnly cookie a sign-in with `Postline-Session: cookie` sets: alone on the stream endpoints, else with that header.',
        },
        cookieSessionHeader: {
          type: 'apiKey',
          in: 'header',
          name: 'Postline-Session',
          description: '`cookie`: this request uses the session cookie (pages of other sites cannot send it: no CSRF).',
        },
      },
    },
  };
}
