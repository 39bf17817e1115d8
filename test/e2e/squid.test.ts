import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createPair, type TestUser } from '../support/api.js';
import { curl, startCurl } from '../support/curl.js';
import { useInstances } from '../support/fixture.js';
import { waitFor } from '../support/sse.js';
import { requireProgram } from './support/programs.js';
import { E2E_SERVER_ENV } from './support/server-env.js';
import { startSquid, type Squid } from './support/squid.js';

const squidProgram = requireProgram('squid', 'squid');
const t = useInstances({ env: E2E_SERVER_ENV });

let squid: Squid;

/** curl arguments for a call through the proxy as `user`. */
const via = (user: TestUser, ...args: string[]) => ['-s', '--fail-with-body', '-x', squid.url, '-H', `Authorization: Bearer ${user.token}`, ...args];
const api = (path: string) => `${t.app.url}/v1${path}`;
const json = async (args: string[]) => JSON.parse(await curl(args));

describe('curl through Squid (forward proxy)', { skip: squidProgram.skip }, () => {
  // Inside the describe: root-level hooks run as soon as they are declared, before the fixture's.
  before(async () => {
    squid = await startSquid(squidProgram.path, `${t.app.url}/healthz`);
  });
  after(async () => {
    await squid?.stop();
  });

  test('streams SSE: sends, typing and seen arrive live; a reconnect with Last-Event-ID resumes', async () => {
    const { alice, bob, threadId } = await createPair(t.app.url);
    const stream = startCurl([...via(bob, '-N', api('/events'))]);
    try {
      await stream.waitFor(/^retry:/m);
      const { message } = await json(via(alice, '-d', 'body=through squid', api(`/threads/${threadId}/messages`)));
      await stream.waitFor(/"body":"through squid"/);
      await curl(via(alice, '-d', 'typing=true', api(`/threads/${threadId}/typing`)));
      await stream.waitFor(/^event: ?typing\ndata: ?.*"typing":true/m);
      await curl(via(bob, '-d', `upTo=${message.id}`, api(`/threads/${threadId}/seen`)));
      await stream.waitFor(/^event: ?seen\ndata: ?.*"upTo":"\d+"/m);
      const { presence } = await json(via(alice, api(`/presence?userIds=${bob.id}`)));
      assert.deepEqual(presence, [{ userId: bob.id, online: true }]);
    } finally {
      stream.kill();
    }
    const messageEventId = /^id: ?(\d+)\nevent: ?message\.created/m.exec(stream.output())![1]!;
    const resumed = startCurl([...via(bob, '-N', '-H', `Last-Event-ID: ${Number(messageEventId) - 1}`, api('/events'))]);
    try {
      await resumed.waitFor(new RegExp(`^id: ?${messageEventId}\\nevent: ?message\\.created\\ndata: ?.*"body":"through squid"`, 'm'));
    } finally {
      resumed.kill();
    }
    await waitFor(async () => /GET http:\/\/[^ ]+\/v1\/events /.test(await squid.accessLog()), 5000, 'squid to log the streams');
  });

  test('long-polls carrying the cursor: the backlog at once, a live event while waiting, presence', async () => {
    const { alice, bob, threadId } = await createPair(t.app.url);
    const { cursor: head } = await json(via(bob, api('/poll')));
    await curl(via(alice, '-d', 'body=first', api(`/threads/${threadId}/messages`)));
    const backlog = await json(via(bob, api(`/poll?cursor=${head}&timeout=20`)));
    assert.deepEqual(backlog.events.map((event: { data: { body: string } }) => event.data.body), ['first']);

    const waiting = json(via(bob, api(`/poll?cursor=${backlog.cursor}&timeout=20`)));
    await waitFor(() => t.app.realtime.hub.count(bob.id, 'poll') === 1, 5000, 'the poll to wait');
    await curl(via(alice, '-d', 'typing=true', api(`/threads/${threadId}/typing`)));
    const live = await waiting;
    assert.deepEqual(live.events.map((event: { type: string; data: unknown }) => [event.type, event.data]), [['typing', { userId: alice.id, typing: true }]]);

    await curl(via(alice, '-d', 'body=second', api(`/threads/${threadId}/messages`)));
    const next = await json(via(bob, api(`/poll?cursor=${live.cursor}&timeout=20`)));
    assert.deepEqual(next.events.map((event: { data: { body: string } }) => event.data.body), ['second'], 'resumed from the carried cursor');
    const { presence } = await json(via(alice, api(`/presence?userIds=${bob.id}`)));
    assert.deepEqual(presence, [{ userId: bob.id, online: true }], 'a polling user is online');
    // Squid logs query strings as a bare '?' (strip_query_terms): the three polls with a cursor.
    assert.ok((await squid.accessLog()).split('\n').filter((line) => / GET http:\/\/[^ ]+\/v1\/poll\? /.test(line)).length >= 3, 'the polls went through squid');
  });
});
