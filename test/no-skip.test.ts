import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createThread, register, sendMessage, type TestUser } from './support/api.js';
import { useInstances } from './support/fixture.js';
import { poll } from './support/poll.js';
import { openStream, type StreamReader } from './support/sse.js';

// The contract's no-skip rule under load: two instances, 8 concurrent writers, and readers that
// disconnect and resume at random moments on alternating instances.
const t = useInstances({ count: 2 });

const WRITERS = 8;
const MESSAGES = 2000;

test(`${WRITERS} writers, ${MESSAGES} messages, resuming SSE and long-poll readers: every event exactly once, in id order`, async () => {
  const reader = await register(t.apps[0]!.url);
  const writers = await Promise.all(Array.from({ length: WRITERS }, () => register(t.apps[1]!.url)));
  // Each writer has a direct thread with the reader; all share one group thread as well.
  const direct = await Promise.all(writers.map((writer) => createThread(t.apps[0]!.url, writer, [reader])));
  const group = await createThread(t.apps[0]!.url, reader, writers, 'everyone');
  const [{ start }] = (await t.db.query<{ start: string }>('SELECT coalesce(max(id), 0) AS start FROM events')) as [{ start: string }];

  let writing = true;
  const write = async (writer: TestUser, index: number) => {
    for (let i = 0; i < MESSAGES / WRITERS; i++) {
      const threadId = i % 3 === 0 ? group : direct[index]!;
      await sendMessage(t.apps[(index + i) % 2]!.url, writer, threadId, `w${index}-${i}`);
    }
  };
  const writes = Promise.all(writers.map(write)).finally(() => (writing = false));

  const expected = async () =>
    (await t.db.query<{ id: string }>('SELECT id FROM events WHERE id > $1 AND audience @> ARRAY[$2::bigint] ORDER BY id', [start, reader.id])).map(
      (row) => row.id,
    );
  const random = (max: number) => 1 + Math.floor(Math.random() * max);

  // SSE: read a random number of events, drop the connection, resume on the other instance.
  const sseReceived: string[] = [];
  const sseReads = (async () => {
    let lastId = start;
    let reconnects = 0;
    for (let turn = 0; ; turn++) {
      const stream: StreamReader = await openStream(t.apps[turn % 2]!.url, reader.token, { headers: { 'Last-Event-ID': lastId } });
      try {
        const quota = random(120);
        for (let n = 0; n < quota; n++) {
          const envelope = await stream.nextEnvelope(writing ? 10_000 : 1500).catch(() => undefined);
          if (!envelope) break;
          if (envelope.id === undefined) continue; // presence
          sseReceived.push(envelope.id);
          lastId = envelope.id;
        }
      } finally {
        stream.close();
      }
      reconnects++;
      if (!writing && sseReceived.length === (await expected()).length) return reconnects;
    }
  })();

  // Long-poll: carry the cursor from answer to answer, alternating instances.
  const pollReceived: string[] = [];
  const pollReads = (async () => {
    let cursor = start;
    for (let turn = 0; ; turn++) {
      const answer = await poll(t.apps[turn % 2]!.url, reader.token, { cursor, timeout: 1 });
      assert.equal(answer.status, 200);
      for (const event of answer.events) if (event.id !== undefined) pollReceived.push(event.id);
      cursor = answer.cursor;
      if (!writing && answer.events.length === 0 && pollReceived.length === (await expected()).length) return turn;
    }
  })();

  await writes;
  const [reconnects, polls] = await Promise.all([sseReads, pollReads]);
  const all = await expected();
  assert.equal(all.length, MESSAGES);
  assert.deepEqual(sseReceived, all, 'SSE: every event exactly once, in id order');
  assert.deepEqual(pollReceived, all, 'long-poll: every event exactly once, in id order');
  console.log(`# no-skip: ${all.length} events; SSE reader resumed ${reconnects} times, poller made ${polls} polls`);
});
