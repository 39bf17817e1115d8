import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import request from 'supertest';
import type { z } from 'zod';
import Postline from '../src/client/postline-client.cjs';
import { ValidationProblem } from '../src/errors.js';
import {
  addMemberBody,
  createThreadBody,
  eventCursor,
  listMessagesQuery,
  listThreadsQuery,
  loginBody,
  parse,
  pollQuery,
  presenceQuery,
  registerBody,
  seenBody,
  sendMessageBody,
  streamQuery,
  threadParams,
  typingBody,
} from '../src/http/validate.js';
import { Deliverable } from '../src/realtime/deliverable.js';
import { bearer, createThread, register, sendMessage, type TestUser } from './support/api.js';
import { chatState } from './support/database.js';
import { useInstances } from './support/fixture.js';
import { EventStreamParser } from './support/sse.js';

/** Strings an attacker would try: any code point, control characters, lone surrogates, number look-alikes. */
const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)), maxLength: 4 }),
  fc.stringMatching(/^[-+ ]?\d{0,25}(\.\d{1,3})?(e[-+]?\d{1,3})?$/),
  fc.constantFrom('', ' ', 'NaN', 'Infinity', '-0', '0x1F', '1e308', 'null', 'true', '[]', '{}', '\r\n', '%00', '../..'),
);
/** Any JSON-ish value, hostile strings included. */
const hostileValue = fc.oneof(
  hostileString,
  fc.integer(),
  fc.double(),
  fc.bigInt().map((n) => Number(n)),
  fc.boolean(),
  fc.constant(null),
  fc.array(hostileString, { maxLength: 3 }),
  fc.dictionary(hostileString, hostileString, { maxKeys: 3 }),
);
const hostileRecord = (keys: string[]) => fc.record(Object.fromEntries(keys.map((key) => [key, hostileValue])), { requiredKeys: [] });

/** parse() either succeeds or throws a ValidationProblem: never anything else. */
function parsesOrRefuses<S extends z.ZodType>(schema: S, input: unknown): z.output<S> | undefined {
  try {
    return parse(schema, input);
  } catch (error) {
    assert.ok(error instanceof ValidationProblem, `unexpected ${String(error)}`);
    return undefined;
  }
}

const CONTROL_EXCEPT_LINE_BREAKS = /[^\P{Cc}\n\r\t]/u;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const ID = /^[1-9][0-9]{0,18}$/;

describe('validators (property-based)', () => {
  test('every schema answers any input with a value or a 400, never an exception of another kind', () => {
    const schemas: Array<[z.ZodType, string[]]> = [
      [sendMessageBody, ['body', 'clientId']],
      [createThreadBody, ['members', 'title']],
      [registerBody, ['username', 'password', 'displayName']],
      [loginBody, ['username', 'password']],
      [addMemberBody, ['userId']],
      [seenBody, ['upTo']],
      [typingBody, ['typing']],
      [threadParams, ['threadId']],
      [listThreadsQuery, ['limit', 'before']],
      [listMessagesQuery, ['limit', 'before', 'after']],
      [pollQuery, ['cursor', 'timeout']],
      [streamQuery, ['format']],
      [presenceQuery, ['userIds']],
    ];
    for (const [schema, keys] of schemas) {
      fc.assert(fc.property(fc.oneof(hostileRecord(keys), fc.anything()), (input) => void parsesOrRefuses(schema, input)), { numRuns: 300 });
    }
  });

  test('an accepted message body is trimmed, 1-4000 code points, free of control characters and lone surrogates', () => {
    fc.assert(
      fc.property(fc.oneof(hostileString, fc.string({ unit: 'binary', minLength: 3990, maxLength: 4010 })), (body) => {
        const parsed = parsesOrRefuses(sendMessageBody, { body });
        if (!parsed) return;
        const length = [...parsed.body].length;
        assert.ok(length >= 1 && length <= 4000);
        assert.equal(parsed.body, parsed.body.trim());
        assert.ok(!CONTROL_EXCEPT_LINE_BREAKS.test(parsed.body));
        assert.ok(!LONE_SURROGATE.test(parsed.body));
      }),
      { numRuns: 500 },
    );
  });

  test('accepted ids, cursors and limits are what was sent, within bounds: never clamped', () => {
    fc.assert(
      fc.property(hostileString, (value) => {
        const thread = parsesOrRefuses(threadParams, { threadId: value });
        if (thread) assert.ok(ID.test(thread.threadId) && thread.threadId === value);
        // Query numbers are plain digits (leading zeros allowed) and within bounds, else refused.
        const page = parsesOrRefuses(listMessagesQuery, { limit: value });
        if (page) assert.ok(/^\d+$/.test(value) && page.limit === Number(value) && page.limit >= 1 && page.limit <= 200);
        const poll = parsesOrRefuses(pollQuery, { cursor: value, timeout: value });
        if (poll) assert.ok(String(poll.cursor) === value && Number.isSafeInteger(poll.cursor) && poll.timeout === Number(value) && poll.timeout <= 55);
        try {
          const cursor = parse(eventCursor, value);
          assert.ok(Number.isSafeInteger(cursor) && String(cursor) === value);
        } catch (error) {
          assert.ok(error instanceof ValidationProblem);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('SSE and NDJSON framing (property-based)', () => {
  const envelope = fc.record({
    type: fc.constantFrom(...Postline.EVENT_TYPES),
    threadId: fc.option(fc.stringMatching(/^[1-9]\d{0,5}$/), { nil: undefined }),
    at: fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
    data: fc.dictionary(fc.string({ unit: 'binary' }), fc.oneof(fc.string({ unit: 'binary' }), hostileString, fc.jsonValue())),
  });

  test('whatever the payload holds (line breaks, "data:", "id:", U+2028, NUL), each event is one frame that parses back to itself', () => {
    fc.assert(
      fc.property(envelope, fc.option(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), { nil: undefined }), (fields, id) => {
        const json = JSON.stringify({ ...(id !== undefined && { id: String(id) }), ...fields });
        const event = new Deliverable(id, fields.type, json, []);
        const { frames } = EventStreamParser.parse(event.sse.toString());
        assert.equal(frames.length, 1);
        assert.equal(frames[0]!.id, id === undefined ? undefined : String(id));
        assert.equal(frames[0]!.event, fields.type);
        assert.equal(frames[0]!.retry, undefined);
        assert.deepEqual(JSON.parse(frames[0]!.data!), JSON.parse(json));
        const lines = event.ndjson.toString().split('\n');
        assert.deepEqual(lines.slice(1), [''], 'one NDJSON line');
        assert.deepEqual(JSON.parse(lines[0]!), JSON.parse(json));
      }),
      { numRuns: 1000 },
    );
  });

  test('an ephemeral event built from hostile data frames the same way', () => {
    fc.assert(
      fc.property(hostileString, hostileValue, (threadId, data) => {
        const event = Deliverable.ephemeral('typing', { threadId, at: new Date(0).toISOString(), data }, []);
        const { frames } = EventStreamParser.parse(event.sse.toString());
        assert.equal(frames.length, 1);
        assert.equal(frames[0]!.id, undefined);
        assert.deepEqual(JSON.parse(frames[0]!.data!), JSON.parse(event.json));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('every route fuzzed over HTTP', () => {
  const t = useInstances();
  const RUNS = 60;
  let tried = 0;
  let serverErrors = 0;

  /** Send, then check: below 500, and a 4xx is problem+json. */
  async function check(req: request.Test): Promise<void> {
    const res = await req;
    tried++;
    if (res.status >= 500) serverErrors++;
    assert.ok(res.status < 500, `${res.status} ${res.text}`);
    if (res.status >= 400) assert.match(res.headers['content-type'] ?? '', /^application\/problem\+json/, res.text);
  }
  /** Percent-encode every byte of the UTF-8 text (a lone surrogate goes as U+FFFD, as any client sends it). */
  const q = (value: unknown) =>
    [...Buffer.from(typeof value === 'string' ? value : JSON.stringify(value) ?? '')].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');

  test('hostile bodies, query values, path ids and headers: no 5xx, 4xx as problem+json, the database unchanged', async () => {
    const [owner, other] = [await register(t.app.url), await register(t.app.url)];
    const mallory: TestUser = await register(t.app.url);
    // Everything aims at a thread mallory is not in, or is refused by validation: nothing may change.
    const foreign = await createThread(t.app.url, owner, [other]);
    const message = (await sendMessage(t.app.url, owner, foreign, 'not for mallory')).id;
    const before = await chatState(t.db);
    const api = () => request(t.app.url);
    const as = bearer(mallory);
    const property = (arbitrary: fc.Arbitrary<unknown>, send: (value: never) => Promise<void>) =>
      fc.assert(fc.asyncProperty(arbitrary, async (value) => send(value as never)), { numRuns: RUNS });

    await property(hostileRecord(['body', 'clientId', 'access_token']), (body) => check(api().post(`/v1/threads/${foreign}/messages`).set(as).send(body)));
    await property(hostileValue, (value) => check(api().post(`/v1/threads/${foreign}/messages`).set(as).type('form').send(`body=${q(value)}&clientId=${q(value)}`)));
    await property(hostileString.filter((key) => /^[\x20-\x7e]*$/.test(key)), (key) =>
      check(api().post(`/v1/threads/${foreign}/messages`).set(as).set('Idempotency-Key', key).send({ body: 'hi' })),
    );
    await property(hostileRecord(['typing']), (body) => check(api().post(`/v1/threads/${foreign}/typing`).set(as).send(body)));
    await property(hostileRecord(['upTo']), (body) => check(api().post(`/v1/threads/${foreign}/seen`).set(as).send(body)));
    await property(hostileRecord(['upTo']), (body) => check(api().post(`/v1/threads/${foreign}/delivered`).set(as).send(body)));
    await property(hostileRecord(['body']), (body) => check(api().patch(`/v1/threads/${foreign}/messages/${message}`).set(as).send(body)));
    await property(hostileString, (id) => check(api().delete(`/v1/threads/${foreign}/messages/${q(id)}`).set(as)));
    await property(hostileString, (emoji) => check(api().put(`/v1/threads/${foreign}/messages/${message}/reactions/${q(emoji)}`).set(as)));
    await property(hostileRecord(['body', 'replyTo']), (body) => check(api().post(`/v1/threads/${foreign}/messages`).set(as).send(body)));
    await property(hostileRecord(['q', 'threadId', 'limit', 'before']), (query) =>
      check(api().get(`/v1/search?${Object.entries(query).map(([k, v]) => `${k}=${q(v)}`).join('&')}`).set(as)),
    );
    await property(hostileString, (name) => check(api().get(`/v1/users?q=${q(name)}`).set(as)));
    await property(hostileRecord(['userId']), (body) => check(api().post(`/v1/threads/${foreign}/members`).set(as).send(body)));
    await property(hostileString, (id) => check(api().delete(`/v1/threads/${foreign}/members/${q(id)}`).set(as)));
    await property(hostileString, (id) => check(api().get(`/v1/threads/${q(id)}`).set(as)));
    await property(hostileString, (id) => check(api().post(`/v1/threads/${q(id)}/messages`).set(as).send({ body: 'hi' })));
    await property(hostileRecord(['limit', 'before', 'after']), (query) =>
      check(api().get(`/v1/threads/${foreign}/messages?${Object.entries(query).map(([k, v]) => `${k}=${q(v)}`).join('&')}`).set(as)),
    );
    await property(hostileRecord(['limit', 'before']), (query) => check(api().get(`/v1/threads?${Object.entries(query).map(([k, v]) => `${k}=${q(v)}`).join('&')}`).set(as)));
    await property(hostileString, (name) => check(api().get(`/v1/users?username=${q(name)}`).set(as)));
    await property(hostileString, (ids) => check(api().get(`/v1/presence?userIds=${q(ids)}`).set(as)));
    // Delivery endpoints: values that would open a stream or make a poll wait are left out.
    await property(hostileString.filter((value) => !/^(0|[1-9]\d{0,15})$/.test(value)), (cursor) =>
      check(api().get(`/v1/poll?cursor=${q(cursor)}&timeout=0`).set(as)),
    );
    await property(hostileString.filter((value) => !/^\d{1,2}$/.test(value)), (timeout) => check(api().get(`/v1/poll?cursor=0&timeout=${q(timeout)}`).set(as)));
    await property(hostileString.filter((value) => !/^(0|[1-9]\d{0,15})$/.test(value)), (since) => check(api().get(`/v1/events?since=${q(since)}`).set(as)));
    await property(hostileString.filter((value) => value !== 'sse' && value !== 'ndjson'), (format) => check(api().get(`/v1/events?format=${q(format)}`).set(as)));
    await property(hostileString, (token) => check(api().get(`/v1/poll?access_token=${q(token)}`)));
    // Accounts: bodies the validators accept would create users or sessions, so they are left out.
    await property(hostileRecord(['username', 'password', 'displayName']).filter((body) => !registerBody.safeParse(body).success), (body) =>
      check(api().post('/v1/users').send(body)),
    );
    await property(hostileRecord(['username', 'password']), (body) => check(api().post('/v1/sessions').send(body)));
    await property(hostileRecord(['members', 'title']).filter((body) => !createThreadBody.safeParse(body).success), (body) =>
      check(api().post('/v1/threads').set(as).send(body)),
    );

    assert.deepEqual(await chatState(t.db), before, 'the database is unchanged');
    assert.equal(serverErrors, 0);
    console.log(`# figures fuzz-http: ${JSON.stringify({ tried, serverErrors })}`);
  });
});
