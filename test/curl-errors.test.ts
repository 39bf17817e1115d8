import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import request from 'supertest';
import { bearer, createPair, register } from './support/api.js';
import { curl } from './support/curl.js';
import { useInstances } from './support/fixture.js';

/** Errors a curl user can act on: what is wrong and what to do, in `detail`, which is all curl shows. */
const t = useInstances({ env: { POSTLINE_RATE_LIMIT_PER_MIN: '3' } });

/** curl as people type it: `-s`, the body, the status after it. */
async function curlProblem(path: string, args: string[]): Promise<{ status: number; problem: { detail: string; errors?: unknown[] }; headers: string }> {
  const output = await curl(['-s', '-i', ...args, `${t.app.url}${path}`]);
  const [head, body] = output.split('\r\n\r\n') as [string, string];
  return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)![1]), problem: JSON.parse(body), headers: head };
}

describe('errors for curl users', () => {
  test('a validation detail names the first invalid field and why; errors[] has all of them', async () => {
    const { status, problem } = await curlProblem('/v1/users', ['-d', 'username=Alice', '-d', 'password=short']);
    assert.equal(status, 400);
    assert.equal(problem.detail, 'username: must be 3-32 characters of a-z, 0-9, "_", "." or "-" (and 1 more, see errors).');
    assert.equal(problem.errors?.length, 2);
    const { alice, threadId } = await createPair(t.app.url);
    const long = await request(t.app.url).post(`/v1/threads/${threadId}/messages`).set(bearer(alice)).send({ body: 'x'.repeat(4001) }).expect(400);
    assert.equal(long.body.detail, 'body: must be at most 4000 characters.');
  });

  test('JSON sent as a form (curl -d without a content type) is told to set Content-Type: application/json', async () => {
    const { alice, threadId } = await createPair(t.app.url);
    const { status, problem } = await curlProblem(`/v1/threads/${threadId}/messages`, ['-H', `Authorization: Bearer ${alice.token}`, '-d', '{"body":"hi"}']);
    assert.equal(status, 415);
    assert.match(problem.detail, /looks like JSON.*-H "Content-Type: application\/json"/);
    await request(t.app.url).post(`/v1/threads/${threadId}/messages`).set(bearer(alice)).type('form').send('body=hi').expect(201);
  });

  test('a token without the "Bearer " scheme is told so', async () => {
    const user = await register(t.app.url);
    const bare = await curlProblem('/v1/me', ['-H', `Authorization: ${user.token}`]);
    assert.equal(bare.status, 401);
    assert.equal(bare.problem.detail, 'The Authorization header must be "Bearer <token>": the "Bearer " scheme is missing.');
    const basic = await curlProblem('/v1/me', ['-H', 'Authorization: Basic YWxpY2U6d29uZGVybGFuZA==']);
    assert.equal(basic.problem.detail, 'The Authorization header must be "Bearer <token>".');
  });

  test('a known path with a method it does not serve is 405 with Allow, before the token is asked for', async () => {
    for (const [method, path, allow] of [
      ['GET', '/v1/threads/1/typing', 'POST'],
      ['PUT', '/v1/sessions', 'POST, GET, HEAD'],
      ['POST', '/v1/poll', 'GET'],
      ['DELETE', '/v1/threads/1', 'GET, HEAD'],
      ['PUT', '/v1/users', 'POST, GET, HEAD'],
    ] as const) {
      const res = await request(t.app.url)[method === 'GET' ? 'get' : method === 'POST' ? 'post' : method === 'PUT' ? 'put' : 'delete'](path);
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.allow, allow);
      assert.equal(res.body.type, 'urn:postline:problem:method-not-allowed');
      assert.match(res.body.detail, new RegExp(`^${method} is not served here; this path takes ${allow}\\.$`));
    }
    // The delivery endpoints take GET alone: a HEAD would open a stream or a poll with no body to carry it.
    for (const path of ['/v1/poll', '/v1/events']) {
      const head = await request(t.app.url).head(path);
      assert.equal(head.status, 405, `HEAD ${path}`);
      assert.equal(head.headers.allow, 'GET');
    }
    const user = await register(t.app.url);
    await request(t.app.url).get('/v1/nowhere').set(bearer(user)).expect(404);
  });

  test('a 429 says in its detail when to retry, as Retry-After does', async () => {
    const user = await register(t.app.url);
    for (let i = 0; i < 3; i++) await request(t.app.url).get('/v1/me').set(bearer(user)).expect(200);
    const { status, problem, headers } = await curlProblem('/v1/me', ['-H', `Authorization: Bearer ${user.token}`]);
    assert.equal(status, 429);
    const retryAfter = /^retry-after: (\d+)$/im.exec(headers)![1];
    assert.equal(problem.detail, `Too many requests for this user; retry in ${retryAfter} s.`);
  });
});
