import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { createPair, sendMessage, type TestUser } from '../support/api.js';
import { poll, type PollAnswer } from '../support/poll.js';
import { useServers } from '../support/process.js';
import { openStream, StreamReader, waitFor } from '../support/sse.js';

// Two server processes that keep no recent events in memory, so every backlog is read from
// Postgres, where a test can hold it up (a table lock) or make it fail (killing its backend).
const t = useServers(2, { env: () => ({ POSTLINE_RECENT_EVENTS_KB: '0' }) });

/** A transaction holding an exclusive lock on the events table: every read of it waits. */
async function lockEvents(databaseUrl: string) {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on('error', () => {}); // the database is dropped at the end, maybe under a test that failed
  await client.connect();
  let released = false;
  await client.query('BEGIN');
  await client.query('LOCK TABLE events IN ACCESS EXCLUSIVE MODE');
  return {
    /** Backends waiting on the lock to read a user's backlog. */
    async blockedBacklogReads(): Promise<number[]> {
      // Inside a transaction pg_stat_activity is a snapshot taken once: take a fresh one each time.
      await client.query('SELECT pg_stat_clear_snapshot()');
      const { rows } = await client.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%audience @>%'`,
      );
      return rows.map((row) => row.pid);
    },
    async terminate(pid: number): Promise<void> {
      await client.query('SELECT pg_terminate_backend($1)', [pid]);
    },
    async release(): Promise<void> {
      if (released) return;
      released = true;
      await client.query('ROLLBACK');
      await client.end();
    },
  };
}

/** A long-poll client from `cursor` on `url` until it holds `count` messages; returns their ids. */
async function pollMessages(url: string, user: TestUser, cursor: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let turn = 0; ids.length < count; turn++) {
    assert.ok(turn < 50, `only ${ids.length} of ${count} messages arrived`);
    const answer: PollAnswer = await poll(url, user.token, { cursor, timeout: 5 });
    assert.equal(answer.status, 200);
    for (const event of answer.events) if (event.type === 'message.created') ids.push((event.data as { id: string }).id);
    cursor = answer.cursor;
  }
  return ids;
}

test('answers given before a poll or stream has read its backlog never move the client past it: read failed; read blocked, then SIGTERM', async () => {
  const [a, b] = t.urls as [string, string];
  const { alice, bob, threadId } = await createPair(a);
  const { cursor: start } = await poll(a, bob.token);
  // Five messages the client has not received, which both instances' feeds have dispatched
  // (streams on both got the last one): their cursors are past them.
  const streams = [await openStream(a, bob.token), await openStream(b, bob.token)];
  const sent: string[] = [];
  for (let i = 0; i < 5; i++) sent.push((await sendMessage(a, alice, threadId, `missed ${i}`)).id);
  for (const stream of streams) {
    while ((await stream.nextOfType('message.created')).data.id !== sent.at(-1));
    stream.close();
  }

  // 1. The backlog read fails (its backend is killed): 503, so the client polls again from where it was.
  let lock = await lockEvents(t.db.url);
  try {
    const failing = poll(a, bob.token, { cursor: start, timeout: 20 });
    let blocked: number[] = [];
    await waitFor(async () => (blocked = await lock.blockedBacklogReads()).length === 1, 5000, 'the backlog read to wait on the lock');
    await lock.terminate(blocked[0]!);
    await lock.release();
    const failed = await failing;
    assert.equal(failed.status, 503, `the failed poll: ${JSON.stringify(failed)}`);
    assert.ok(failed.headers['retry-after']);

    // 2. The backlog reads of a poll and of a stream wait on the lock, and the instance gets SIGTERM.
    lock = await lockEvents(t.db.url);
    const waiting = poll(b, bob.token, { cursor: start, timeout: 20 });
    const opening = StreamReader.open(`${b}/v1/events`, { Authorization: `Bearer ${bob.token}`, 'Last-Event-ID': start });
    await waitFor(async () => (await lock.blockedBacklogReads()).length === 2, 5000, 'both backlog reads to wait on the lock');
    t.servers[1]!.child.kill('SIGTERM');
    const answer = await waiting;
    assert.equal(answer.status, 200);
    assert.deepEqual({ events: answer.events, cursor: answer.cursor }, { events: [], cursor: start }, 'the poll keeps its own cursor');
    const stream = await opening;
    await stream.closed();
    assert.equal(stream.status, 200, 'EventSource is told to come back, not to give up');
    assert.match(stream.response.headers['content-type'] ?? '', /^text\/event-stream/);
    assert.match(stream.raw, /^retry: ?\d+$/m);
    assert.doesNotMatch(stream.raw, /^(id|data):/m, 'no event and no id: the client keeps its Last-Event-ID');
    await lock.release();
    assert.equal(await t.servers[1]!.exited, 0);

    // The client carries on, on the instance that is left, from the cursor it was given.
    assert.deepEqual(await pollMessages(a, bob, answer.cursor, 5), sent, 'every message exactly once, in order');
  } finally {
    await lock.release(); // a lock left behind would hold up the servers' drain at the end
  }
});
