import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkDelivery, createGroup, report, ResumingReader, Sender } from '../support/load.js';
import { useServers } from '../support/process.js';
import { waitFor } from '../support/sse.js';

// Two server processes on one database; clients stream and send through both; one is killed
// with SIGKILL mid-load. Nothing acknowledged may be lost, nothing delivered twice.
const t = useServers(2);

const USERS = 4;
const MESSAGES_PER_USER = 150;

test('kill -9 one of two instances under stream and send load: clients resume on the other; every acknowledged message exactly once', async () => {
  const { users, threadId, startId } = await createGroup(t.urls[0]!, USERS, t.db.query);
  // Half the readers start on each instance; each sender alternates between the two.
  const readers = users.map((user, i) => new ResumingReader(user, i % 2 ? [...t.urls].reverse() : [...t.urls], startId));
  await waitFor(() => readers.every((reader) => reader.connections.length > 0), 10_000, 'streams open');
  try {
    const senders = users.map((user) => new Sender(user, threadId, [...t.urls]));
    const sending = Promise.all(senders.map((sender, i) => sender.run(MESSAGES_PER_USER, 2, `u${i}`)));

    const total = () => senders.reduce((sum, sender) => sum + sender.acknowledged.length, 0);
    await waitFor(() => total() >= (USERS * MESSAGES_PER_USER) / 3, 60_000, 'a third sent');
    t.servers[0]!.child.kill('SIGKILL');
    assert.equal(await t.servers[0]!.exited, 'SIGKILL');
    const ackedAtKill = total();
    await sending;

    const figures = await checkDelivery(t.db.query, startId, readers, senders);
    const resumed = readers.filter((reader) => reader.connections.some((c) => c.url === t.urls[0] && c.endedByServer)).length;
    assert.equal(figures.acknowledged, USERS * MESSAGES_PER_USER);
    assert.equal(figures.lost, 0);
    assert.equal(figures.duplicated, 0);
    assert.ok(resumed >= USERS / 2, 'the readers on the killed instance resumed elsewhere');
    report('kill-9', { ...figures, acknowledgedBeforeKill: ackedAtKill, readersResumed: resumed, networkErrors: senders.reduce((n, s) => n + (s.statuses.get('network') ?? 0), 0) });
  } finally {
    await Promise.all(readers.map((reader) => reader.stop()));
  }
});
