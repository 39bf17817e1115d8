import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import request from 'supertest';
import { openApiDocument } from '../src/http/openapi.js';
import { operations } from '../src/http/operations.js';
import { bearer, register } from './support/api.js';
import { recordedAnswers } from './support/answers.js';
import { checkAnswers } from './support/conformance.js';
import { useInstances } from './support/fixture.js';
import { openStream, waitFor } from './support/sse.js';

const t = useInstances();

test('GET /v1/openapi.json serves the generated document, without a token, and it is valid OpenAPI 3.1', async () => {
  const res = await request(t.app.url).get('/v1/openapi.json').expect(200).expect('Content-Type', /application\/json/);
  assert.deepEqual(res.body, JSON.parse(JSON.stringify(openApiDocument())));
  const validator = new Validator();
  const result = await validator.validate(res.body);
  assert.equal(validator.version, '3.1');
  assert.deepEqual(result.errors, undefined);
  assert.equal(result.valid, true);
});

test('the document describes every declared route with its inputs, and the contract objects as components', () => {
  const document = openApiDocument() as {
    paths: Record<string, Record<string, { operationId: string; parameters: Array<{ name: string; in: string }>; requestBody?: unknown }>>;
    components: { schemas: Record<string, unknown> };
  };
  const declared = Object.entries(operations).map(([name, operation]) => `${operation.method} /v1${operation.path.replace(/:(\w+)/g, '{$1}')} ${name}`);
  const documented = Object.entries(document.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => `${method} ${path} ${op.operationId}`));
  assert.deepEqual(documented.sort(), declared.sort());
  assert.deepEqual(Object.keys(document.components.schemas).sort(), ['Event', 'Message', 'Problem', 'Receipt', 'SearchResult', 'Session', 'Thread', 'User']);
  const send = document.paths['/v1/threads/{threadId}/messages']!.post!;
  assert.deepEqual(send.parameters.map((p) => `${p.in}:${p.name}`), ['path:threadId', 'header:Idempotency-Key']);
  assert.ok(send.requestBody);
  const events = document.paths['/v1/events']!.get!;
  assert.deepEqual(events.parameters.map((p) => `${p.in}:${p.name}`), ['query:format', 'query:lastEventId', 'query:last_event_id', 'query:since', 'header:Last-Event-ID']);
});

test('every operation of the document is served at its path (no "No such route" for any of them)', async () => {
  const user = await register(t.app.url);
  for (const operation of Object.values(operations)) {
    const path = `/v1${operation.path.replace(/:\w+/g, '1')}`;
    const res = await request(t.app.url)[operation.method](operation.method === 'get' && operation.path === '/poll' ? `${path}?timeout=0&cursor=0` : path)
      .set(bearer(user))
      .timeout(5000)
      .buffer(operation.path !== '/events')
      .catch((error: { timeout?: number }) => (error.timeout ? { status: 200, body: {} } : Promise.reject(error)));
    assert.notEqual((res.body as { detail?: string }).detail, 'No such route.', `${operation.method} ${path}`);
  }
});

test('/docs is Swagger UI on /v1/openapi.json, every file from our own origin', async () => {
  const page = await request(t.app.url).get('/docs').expect(200).expect('Content-Type', /text\/html/);
  const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!);
  assert.deepEqual(assets.sort(), ['/docs/docs.js', '/docs/swagger-ui-bundle.js', '/docs/swagger-ui.css']);
  for (const asset of assets) await request(t.app.url).get(asset).expect(200).expect('Content-Type', /javascript|css/);
  const script = await request(t.app.url).get('/docs/docs.js').expect(200);
  assert.match(script.text, /url: '\/v1\/openapi\.json'/);
  assert.doesNotMatch(page.text + script.text, /https?:\/\//, 'no CDN');
});

test('the conformance check fails an undocumented route, status, media type or shape', () => {
  const document = openApiDocument();
  const user = '{"user":{"id":"1","username":"ada","displayName":"Ada"}}';
  const ok = checkAnswers(document, [{ method: 'GET', url: '/v1/me', status: 200, contentType: 'application/json; charset=utf-8', body: user }]);
  assert.equal(ok.violations.size, 0);
  const report = checkAnswers(document, [
    { method: 'POST', url: '/v1/threads/1/messages/2/pin', status: 200, contentType: 'application/json', body: '{}' },
    { method: 'GET', url: '/v1/me', status: 202, contentType: 'application/json', body: user },
    { method: 'GET', url: '/v1/me', status: 200, contentType: 'text/html', body: undefined },
    { method: 'GET', url: '/v1/me', status: 200, contentType: 'application/json', body: '{"user":{"id":"1","username":"ada","displayName":"Ada","editedAt":null}}' },
    { method: 'GET', url: '/v1/nope', status: 404, contentType: 'application/problem+json', body: '{"type":"urn:postline:problem:not-found","title":"Not found","status":404,"detail":"No such route."}' },
  ]);
  assert.deepEqual([...report.violations.keys()], [
    'POST /v1/threads/:id/messages/:id/pin answered 200 but is not in the document',
    'me (GET /v1/me): status 202 is not in the document',
    'me 200: media type text/html is not in the document (application/json)',
    "me 200: data/user must NOT have additional properties",
  ]);
});

test('the answers of the lean delivery path (polls and streams, served before Express) are recorded for the check too', async () => {
  assert.ok(process.env.POSTLINE_TEST_ANSWERS_DIR, 'test/run.ts records the answers');
  const user = await register(t.app.url);
  const from = recordedAnswers().length;
  await request(t.app.url).get('/v1/poll?cursor=0&timeout=0').set(bearer(user)).expect(200);
  const stream = await openStream(t.app.url, user.token);
  stream.close();
  const answered = (path: string) => recordedAnswers().slice(from).find((answer) => answer.url.startsWith(path));
  await waitFor(() => answered('/v1/poll') !== undefined && answered('/v1/events') !== undefined, 5000, 'both answers recorded');
  const polled = answered('/v1/poll')!;
  assert.equal(polled.status, 200);
  assert.match(polled.contentType!, /^application\/json/);
  assert.ok(Array.isArray((JSON.parse(polled.body!) as { events: unknown }).events), 'with its body, to check against the schema');
  assert.match(answered('/v1/events')!.contentType!, /^text\/event-stream/);
});
