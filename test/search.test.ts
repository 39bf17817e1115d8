import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import request from 'supertest';
import { SEARCH_MESSAGES } from '../src/store/search.js';
import { bearer, createPair, createThread, PASSWORD, register, sendMessage, uniqueUsername, type TestUser } from './support/api.js';
import { useInstances } from './support/fixture.js';

// Full-text search of messages (Postgres tsvector, GIN, websearch_to_tsquery, ts_headline,
// unaccent) and the people search, over two instances.
const t = useInstances({ count: 2 });

interface Hit {
  message: { id: string; threadId: string; body: string };
  snippet: string;
}

async function search(app: { url: string }, user: TestUser, query: Record<string, string>): Promise<{ results: Hit[]; hasMore: boolean }> {
  const res = await request(app.url).get('/v1/search').query(query).set(bearer(user)).expect(200);
  return res.body;
}
const bodies = (answer: { results: Hit[] }) => answer.results.map((hit) => hit.message.body);

describe('message search', () => {
  test('accent-insensitive over the caller’s threads, newest first, with marked snippets; edits re-indexed, deletions gone', async () => {
    const { alice, bob, threadId } = await createPair(t.a.url);
    const [carol, dave] = [await register(t.a.url), await register(t.a.url)];
    const group = await createThread(t.a.url, alice, [bob, carol], 'team');
    const foreign = await createThread(t.a.url, carol, [dave]);
    await sendMessage(t.a.url, alice, threadId, 'Mình đang học tiếng Việt');
    await sendMessage(t.a.url, bob, group, 'TIENG VIET is fun');
    await sendMessage(t.a.url, carol, foreign, 'tiếng Việt secret of others');
    await sendMessage(t.a.url, alice, threadId, 'English only, no match');
    const html = await sendMessage(t.a.url, alice, threadId, '<b>tiếng</b> & viet <script>x</script>');

    const found = await search(t.b, bob, { q: 'tieng viet' });
    assert.deepEqual(bodies(found), [html.body, 'TIENG VIET is fun', 'Mình đang học tiếng Việt']);
    assert.equal(found.hasMore, false);
    assert.equal(found.results[2]!.snippet, 'Mình đang học <mark>tiếng</mark> <mark>Việt</mark>');
    assert.equal(found.results[0]!.snippet, '&lt;b&gt;<mark>tiếng</mark>&lt;/b&gt; &amp; <mark>viet</mark> &lt;script&gt;x&lt;/script&gt;', 'escaped: <mark> is the only markup');
    assert.deepEqual(bodies(await search(t.a, bob, { q: 'Tiếng Việt', threadId: group })), ['TIENG VIET is fun']);
    assert.deepEqual(bodies(await search(t.a, bob, { q: '"viet is fun"' })), ['TIENG VIET is fun'], 'a quoted phrase');
    assert.deepEqual(bodies(await search(t.a, bob, { q: 'tieng -fun' })), [html.body, 'Mình đang học tiếng Việt'], 'a word left out');
    assert.deepEqual(bodies(await search(t.a, dave, { q: 'tieng' })), ['tiếng Việt secret of others'], 'only the caller’s threads');

    // Pages: limit and before (the id of the last result so far).
    const first = await search(t.a, bob, { q: 'viet', limit: '2' });
    assert.equal(first.hasMore, true);
    const second = await search(t.b, bob, { q: 'viet', limit: '2', before: first.results[1]!.message.id });
    assert.deepEqual([...bodies(first), ...bodies(second)], bodies(found));
    assert.equal(second.hasMore, false);

    // An edit is found by its new words only; a deleted message is not found at all.
    await request(t.a.url).patch(`/v1/threads/${threadId}/messages/${html.id}`).set(bearer(alice)).send({ body: 'now about bananas' }).expect(200);
    assert.deepEqual(bodies(await search(t.b, bob, { q: 'bananas' })), ['now about bananas']);
    assert.deepEqual(bodies(await search(t.b, bob, { q: 'banana' })), [], 'whole words: no stemming');
    assert.deepEqual(bodies(await search(t.b, bob, { q: 'script' })), []);
    await request(t.a.url).delete(`/v1/threads/${threadId}/messages/${html.id}`).set(bearer(alice)).expect(204);
    assert.deepEqual(bodies(await search(t.b, bob, { q: 'bananas' })), []);
  });

  test('the search expression is the GIN index’s', async () => {
    // Tiny tables are scanned anyway; with scans ruled out, the planner must find the index.
    const client = new pg.Client({ connectionString: t.db.url });
    await client.connect();
    try {
      await client.query('SET enable_seqscan = off');
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${SEARCH_MESSAGES}`, ['x', '1', null, null, 21]);
      assert.match(rows.map((row) => row['QUERY PLAN']).join('\n'), /Bitmap Index Scan on messages_search/);
    } finally {
      await client.end();
    }
  });

  test('empty, word-less, oversized queries and others’ threads are refused', async () => {
    const { alice, threadId } = await createPair(t.a.url);
    const { threadId: foreign } = await createPair(t.a.url);
    for (const [query, status, path] of [
      [{}, 400, 'q'],
      [{ q: '' }, 400, 'q'],
      [{ q: '   ' }, 400, 'q'],
      [{ q: '!!! ---' }, 400, 'q'],
      [{ q: 'x'.repeat(201) }, 400, 'q'],
      [{ q: 'a\u0000b' }, 400, 'q'],
      [{ q: 'hi', limit: '51' }, 400, 'limit'],
      [{ q: 'hi', before: 'last' }, 400, 'before'],
      [{ q: 'hi', threadId: 'abc' }, 400, 'threadId'],
      [{ q: 'hi', threadId: foreign }, 404, undefined],
      [{ q: 'hi', threadId: '987654321' }, 404, undefined],
    ] as const) {
      const res = await request(t.b.url).get('/v1/search').query(query).set(bearer(alice));
      assert.equal(res.status, status, JSON.stringify(query));
      if (path) assert.equal(res.body.errors[0].path, path, JSON.stringify(query));
    }
    assert.deepEqual((await search(t.a, alice, { q: 'hi', threadId })).results, []);
  });
});

describe('people search', () => {
  async function named(displayName: string, prefix = 'p'): Promise<TestUser & { displayName: string }> {
    const username = uniqueUsername(prefix);
    const res = await request(t.a.url).post('/v1/users').send({ username, password: PASSWORD, displayName }).expect(201);
    return { id: res.body.user.id, username, token: res.body.token, displayName };
  }
  const people = async (app: { url: string }, viewer: TestUser, q: string) =>
    (await request(app.url).get('/v1/users').query({ q }).set(bearer(viewer)).expect(200)).body.users as Array<{ id: string; username: string; displayName: string }>;

  test('by username prefix or word prefixes of the display name, case- and accent-insensitive; the exact username first', async () => {
    const tag = `z${Math.random().toString(36).slice(2, 8)}`;
    const an = await named(`Nguyễn Văn ${tag}an`);
    const anna = await named(`${tag}anna Bell`);
    const viewer = await register(t.a.url);
    const ids = async (q: string) => (await people(t.b, viewer, q)).map((user) => user.id);
    assert.deepEqual(new Set(await ids(`${tag}an`)), new Set([an.id, anna.id]));
    assert.deepEqual(await ids(`nguyen ${tag.toUpperCase()}`), [an.id]);
    assert.deepEqual(await ids(`VĂN ${tag}`), [an.id]);
    assert.deepEqual(await ids(`${tag}anna bel`), [anna.id]);
    assert.deepEqual(await ids(an.username.slice(0, -3).toUpperCase()), [an.id], 'a username prefix, any case');
    const exact = await people(t.a, viewer, an.username);
    assert.deepEqual(exact[0], { id: an.id, username: an.username, displayName: an.displayName });
    // LIKE's wildcards are plain characters.
    assert.deepEqual(await ids('p%'), []);
    assert.deepEqual(await ids(`p${'_'.repeat(11)}`), []);
  });

  test('at most 20; the exact lookup still works; bad queries are 400', async () => {
    const prefix = `many${Math.random().toString(36).slice(2, 6)}`;
    const users = [];
    for (let i = 0; i < 22; i++) users.push(await register(t.a.url, `${prefix}_${String(i).padStart(2, '0')}`));
    const viewer = users[0]!;
    const found = await people(t.a, viewer, prefix);
    assert.deepEqual(found.map((user) => user.username), users.slice(0, 20).map((user) => user.username));
    const exact = await request(t.b.url).get('/v1/users').query({ username: users[21]!.username }).set(bearer(viewer)).expect(200);
    assert.deepEqual(exact.body.users.map((user: { id: string }) => user.id), [users[21]!.id]);
    for (const query of [{ q: '' }, { q: 'x'.repeat(65) }, { q: 'a\u0007' }, { q: 'a', username: 'abc' }]) {
      const res = await request(t.b.url).get('/v1/users').query(query).set(bearer(viewer));
      assert.equal(res.status, 400, JSON.stringify(query));
    }
  });
});
