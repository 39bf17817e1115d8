import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestUser } from '../support/api.js';
import { checkDelivery, createGroup, report, ResumingReader, Sender } from '../support/load.js';
import { useServers } from '../support/process.js';
import { waitFor } from '../support/sse.js';

// Two server processes; A gets SIGTERM while clients stream, poll and send through it.
const t = useServers(2);

/**
 * A send whose request is on the wire but not complete: the head and half the body now, the rest
 * when `finish` is called. Resolves with the answer's status line and body.
 */
async function startSend(url: string, user: TestUser, threadId: string, body: string) {
  const { port } = new URL(url);
  const socket = net.connect(Number(port), '127.0.0.1');
  await once(socket, 'connect');
  const json = JSON.stringify({ body, clientId: body });
  socket.write(
    `POST /v1/threads/${threadId}/messages HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${user.token}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json.slice(0, 10)}`,
  );
  let answer = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
  const closed = once(socket, 'close').then(() => answer);
  return {
    finish: async () => {
      socket.write(json.slice(10));
      const text = await closed;
      return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0), text };
    },
  };
}

test('SIGTERM under load: in-flight POSTs finish, streams end with a retry hint, waiting polls answer, exit 0 in time, nothing acknowledged lost', async () => {
  const [a, b] = t.urls as [string, string];
  const { users, threadId, startId } = await createGroup(a, 4, t.db.query);
  // Streams start on A and resume on B; senders go through both.
  const readers = users.map((user) => new ResumingReader(user, [a, b], startId));
  let stopSending = false;
  const senders = users.map((user) => new Sender(user, threadId, [a, b]));
  let sending: Promise<unknown> = Promise.resolve();
  try {
    await waitFor(() => readers.every((reader) => reader.connections.length > 0), 10_000, 'streams open');
    sending = Promise.all(senders.map((sender, i) => sender.run(100_000, 2, `u${i}`, () => stopSending)));
    await waitFor(() => senders.every((sender) => sender.acknowledged.length >= 20), 30_000, 'load running');

    const { cursor } = (await (await fetch(`${a}/v1/poll`, { headers: { Authorization: `Bearer ${users[0]!.token}` } })).json()) as { cursor: string };
    const waitingPoll = fetch(`${a}/v1/poll?cursor=${cursor}&timeout=50`, { headers: { Authorization: `Bearer ${users[0]!.token}` } });
    const inFlight = await Promise.all(users.map((user, i) => startSend(a, user, threadId, `in-flight-${i}`)));
    await sleep(200); // the heads have been read: these requests are in progress

    const sigtermAt = Date.now();
    t.servers[0]!.child.kill('SIGTERM');
    await sleep(100);
    const answers = await Promise.all(inFlight.map((send) => send.finish()));
    assert.deepEqual(answers.map((answer) => answer.status), [201, 201, 201, 201], 'in-flight sends were answered');
    const poll = await waitingPoll;
    const pollMs = Date.now() - sigtermAt;
    assert.equal(poll.status, 200, 'the waiting poll was answered');
    assert.ok(pollMs < 2000, `poll answered after ${pollMs} ms`);
    assert.equal(await t.servers[0]!.exited, 0, t.servers[0]!.output.filter((l) => !l.includes('"level":30')).slice(-5).join('\n'));
    const drainMs = Date.now() - sigtermAt;
    assert.ok(drainMs < 3000, `exited after ${drainMs} ms`);

    await waitFor(() => senders.every((sender) => sender.acknowledged.length >= 60), 30_000, 'load continues on B');
    stopSending = true;
    await sending;
    const inFlightIds = answers.map((answer) => (JSON.parse(answer.text.slice(answer.text.indexOf('\r\n\r\n') + 4)) as { message: { id: string } }).message.id);
    const figures = await checkDelivery(t.db.query, startId, readers, senders);
    for (const reader of readers) {
      const delivered = new Set(reader.received.map((event) => (event.data as { id?: string }).id));
      for (const id of inFlightIds) assert.ok(delivered.has(id), `in-flight message ${id} delivered`);
      const onA = reader.connections.filter((c) => c.url === a);
      assert.ok(onA.every((c) => c.endedByServer && c.retryHints >= 2), 'streams on A ended with a retry hint');
    }
    report('sigterm', { ...figures, inFlightAnswered: answers.length, drainMs, pollAnsweredMs: pollMs });
  } finally {
    stopSending = true;
    await sending;
    await Promise.all(readers.map((reader) => reader.stop()));
  }
});
