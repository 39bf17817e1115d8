import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createThread, register, sendMessage } from './support/api.js';
import { useInstances } from './support/fixture.js';
import { poll } from './support/poll.js';

// The per-user request limit on, scaled down (60 a minute instead of 600) so that a poller in a
// busy group would use it up within seconds if polls counted against it.
const t = useInstances({ env: { POSTLINE_RATE_LIMIT_PER_MIN: '60' } });

const SENDERS = 4;
const PER_SENDER_PER_SECOND = 3;
const SECONDS = 8;

test('a long-poller in a group of 12 messages a second gets every message, never a 429, each within 2 s', async () => {
  const [poller, ...senders] = await Promise.all(Array.from({ length: SENDERS + 1 }, () => register(t.app.url)));
  const threadId = await createThread(t.app.url, senders[0]!, [poller!, ...senders.slice(1)], 'busy');
  const { cursor: start } = await poll(t.app.url, poller!.token);

  const sentAt = new Map<string, number>();
  const sending = Promise.all(
    senders.map(async (sender, s) => {
      // Staggered: each sender starts a quarter of its interval after the previous one.
      await new Promise((resolve) => setTimeout(resolve, (s * 1000) / PER_SENDER_PER_SECOND / SENDERS));
      for (let i = 0; i < PER_SENDER_PER_SECOND * SECONDS; i++) {
        const tick = new Promise((resolve) => setTimeout(resolve, 1000 / PER_SENDER_PER_SECOND));
        const clientId = `s${s}-${i}`;
        sentAt.set(clientId, performance.now());
        await sendMessage(t.app.url, sender!, threadId, clientId, clientId);
        await tick;
      }
    }),
  );

  const expected = SENDERS * PER_SENDER_PER_SECOND * SECONDS;
  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  let cursor = start;
  let polls = 0;
  while (latencies.length < expected) {
    assert.ok(polls++ < expected * 2, `only ${latencies.length} of ${expected} messages after ${polls} polls`);
    const answer = await poll(t.app.url, poller!.token, { cursor, timeout: 20 });
    statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    if (answer.status !== 200) continue;
    const now = performance.now();
    for (const event of answer.events) {
      if (event.type === 'message.created') latencies.push(now - sentAt.get((event.data as { clientId: string }).clientId)!);
    }
    cursor = answer.cursor;
  }
  await sending;

  assert.deepEqual([...statuses.keys()], [200], `poll answers by status: ${JSON.stringify(Object.fromEntries(statuses))}`);
  const sorted = latencies.sort((x, y) => x - y);
  const p99 = sorted[Math.floor(sorted.length * 0.99)]!;
  const worst = sorted.at(-1)!;
  console.log(`# figures busy-poller: ${JSON.stringify({ messages: expected, polls, p50: Math.round(sorted[sorted.length >> 1]!), p99: Math.round(p99), worst: Math.round(worst) })}`);
  assert.ok(worst <= 2000, `worst delivery ${Math.round(worst)} ms`);
});
