import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import type { RecordedAnswer } from './answers.js';

/**
 * The OpenAPI conformance check: every answer the test instances gave to a `/v1` request must be
 * an operation, status and media type of the document, and its JSON body must match the schema
 * the document gives for it. An answer for a route the document lacks fails the check, unless it
 * is one the middleware gives before any route is chosen (a 404 for no such route, 401, 415 …).
 */

type PathItem = Record<string, { operationId: string; responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>;
interface OpenApi {
  paths: Record<string, PathItem>;
}

/** Answers the middleware gives before routing (body parsing, authentication, limits, no such route or method). */
const BEFORE_ROUTING = new Set([400, 401, 404, 405, 408, 413, 415, 429, 431, 503]);
const HTTP_METHODS = new Set(['get', 'post', 'put', 'patch', 'delete']);

export interface ConformanceReport {
  checked: number;
  /** Each distinct violation, with how often it happened and an example answer. */
  violations: Map<string, { count: number; example: string }>;
  /** Document operations no test answer exercised. */
  unexercised: string[];
}

const pointer = (...segments: string[]) => segments.map((segment) => encodeURIComponent(segment.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');

export function checkAnswers(openApi: object, answers: RecordedAnswer[]): ConformanceReport {
  const document = openApi as OpenApi;
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: false });
  ajv.addSchema(document as object, 'openapi');
  const validators = new Map<string, ValidateFunction>();
  const validatorFor = (ref: string) => {
    let validate = validators.get(ref);
    if (!validate) validators.set(ref, (validate = ajv.compile({ $ref: `openapi#/${ref}` })));
    return validate;
  };
  const routes = Object.entries(document.paths).map(([template, item]) => ({
    template,
    item,
    pattern: new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+')}/?$`),
  }));
  const problemRef = pointer('components', 'schemas', 'Problem');
  const violations: ConformanceReport['violations'] = new Map();
  const exercised = new Set<string>();
  let checked = 0;

  for (const answer of answers) {
    const violate = (message: string) => {
      const seen = violations.get(message);
      if (seen) seen.count++;
      else violations.set(message, { count: 1, example: `${answer.method} ${answer.url} → ${answer.status} ${(answer.body ?? '').slice(0, 300)}` });
    };
    const pathname = answer.url.split('?')[0]!;
    const method = answer.method.toLowerCase() === 'head' ? 'get' : answer.method.toLowerCase();
    if (!pathname.startsWith('/v1/') || !HTTP_METHODS.has(method)) continue;
    checked++;
    const mediaType = answer.contentType?.split(';')[0]!.trim();
    const body = answer.body === undefined ? undefined : (JSON.parse(answer.body) as unknown);
    // A 405 is the answer of no operation: the path does not serve that method (a HEAD of a delivery endpoint, say).
    const route = answer.status === 405 ? undefined : routes.find(({ pattern, item }) => pattern.test(pathname) && item[method]);
    if (!route) {
      if (!BEFORE_ROUTING.has(answer.status)) violate(`${method.toUpperCase()} ${pathname.replace(/\/\d+(?=\/|$)/g, '/:id')} answered ${answer.status} but is not in the document`);
      else if (body !== undefined && !validatorFor(problemRef)(body)) violate(`a ${answer.status} for an unknown route is not a Problem`);
      continue;
    }
    const operation = route.item[method]!;
    exercised.add(operation.operationId);
    const response = operation.responses[String(answer.status)];
    if (!response) {
      violate(`${operation.operationId} (${method.toUpperCase()} ${route.template}): status ${answer.status} is not in the document`);
      continue;
    }
    if (!response.content) {
      if (mediaType !== undefined && body !== undefined) violate(`${operation.operationId} ${answer.status}: a body where the document has none`);
      continue;
    }
    if (mediaType === undefined || !response.content[mediaType]) {
      violate(`${operation.operationId} ${answer.status}: media type ${mediaType} is not in the document (${Object.keys(response.content).join(', ')})`);
      continue;
    }
    if (body === undefined) continue; // a stream, or too large to keep
    const validate = validatorFor(pointer('paths', route.template, method, 'responses', String(answer.status), 'content', mediaType, 'schema'));
    if (!validate(body)) {
      violate(`${operation.operationId} ${answer.status}: ${ajv.errorsText(validate.errors)}`);
    }
  }
  const all = Object.values(document.paths).flatMap((item) => Object.values(item).map((operation) => operation.operationId));
  return { checked, violations, unexercised: all.filter((id) => !exercised.has(id)) };
}

/** Read every answer recorded under `folder` (one file per test process). */
export async function readRecordedAnswers(folder: string): Promise<RecordedAnswer[]> {
  const files = (await readdir(folder)).filter((name) => name.endsWith('.ndjson'));
  const texts = await Promise.all(files.map((name) => readFile(path.join(folder, name), 'utf8')));
  return texts.flatMap((text) => text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as RecordedAnswer));
}
