import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkDelivery, createGroup, report, ResumingReader, Sender } from '../support/load.js';
import { OwnPostgres } from '../support/own-postgres.js';
import { useServers } from '../support/process.js';
import { openStream, waitFor } from '../support/sse.js';

// Two server processes on a Postgres of this test's own, which is stopped and started again while
// clients stream and send.
let starting: Promise<OwnPostgres> | undefined;
const ownPostgres = () => (starting ??= OwnPostgres.start());
const t = useServers(2, {
  env: async () => ({ DATABASE_URL: (await ownPostgres()).url, POSTLINE_LISTENER_CHECK_MS: '1000' }),
  cleanUp: async () => (await ownPostgres()).destroy(),
});

const readiness = async (url: string) => (await fetch(`${url}/readyz`)).status;

test('Postgres restarted under load: 503 problems during the outage, then everything committed is delivered and the service is ready again', async () => {
  const urls = t.urls;
  const postgres = await ownPostgres();
  const query = postgres.query.bind(postgres);
  const { users, threadId, startId } = await createGroup(urls[0]!, 4, query);
  const readers = users.map((user, i) => new ResumingReader(user, i % 2 ? [...urls].reverse() : [...urls], startId));
  await waitFor(() => readers.every((reader) => reader.connections.length > 0), 10_000, 'streams open');
  let stopSending = false;
  const senders = users.map((user) => new Sender(user, threadId, [...urls]));
  const sending = Promise.all(senders.map((sender, i) => sender.run(100_000, 2, `u${i}`, () => stopSending)));
  const acked = () => senders.reduce((sum, sender) => sum + sender.acknowledged.length, 0);
  try {
    await waitFor(() => acked() >= 100, 30_000, 'load before the outage');
    const connectionsBefore = readers.map((reader) => reader.connections.length);

    await postgres.stop();
    const outageStart = Date.now();
    // A send during the outage is answered, quickly, with a 503 problem.
    const probeStart = Date.now();
    const probe = await fetch(`${urls[0]}/v1/threads/${threadId}/messages`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${users[0]!.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ body: 'during the outage' }),
    });
    const probeMs = Date.now() - probeStart;
    assert.equal(probe.status, 503);
    assert.match(probe.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.ok(probe.headers.get('retry-after'), 'Retry-After');
    assert.ok(probeMs < 6000, `answered in ${probeMs} ms`);
    const problem = (await probe.json()) as { status: number; type: string };
    assert.equal(problem.type, 'urn:postline:problem:unavailable');
    for (const url of urls) await waitFor(async () => (await readiness(url)) === 503, 10_000, 'not ready');
    // A stream (re)connecting now gets 200, `retry:` and a close: a 5xx would make EventSource give up.
    const reconnect = await openStream(urls[1]!, users[1]!.token, { headers: { 'Last-Event-ID': startId } });
    await reconnect.closed();
    assert.equal(reconnect.status, 200);
    assert.match(reconnect.response.headers['content-type'] ?? '', /^text\/event-stream/);
    assert.match(reconnect.raw, /^retry: ?\d+$/m);
    const ackedDuringOutage = acked();
    await sleep(2000);
    assert.equal(acked(), ackedDuringOutage, 'nothing is acknowledged while Postgres is down');

    await postgres.restart();
    const outageMs = Date.now() - outageStart;
    const recoveryStart = Date.now();
    for (const url of urls) await waitFor(async () => (await readiness(url)) === 200, 30_000, 'ready again');
    const recoveryMs = Date.now() - recoveryStart;
    await waitFor(() => acked() >= ackedDuringOutage + 100, 30_000, 'sends succeed again');
    stopSending = true;
    await sending;

    const figures = await checkDelivery(query, startId, readers, senders);
    // Streams either stayed open through the outage or were ended by the server; a reconnect
    // during the outage never met a 5xx (EventSource would give up for good), only 200 + retry.
    const later = readers.flatMap((reader, i) => reader.connections.slice(connectionsBefore[i]));
    assert.deepEqual(later.filter((c) => c.status !== 200), [], 'no stream was refused with an error status');
    assert.ok(later.every((c) => c.retryHints >= 1), 'every stream carried retry:');
    const statuses = Object.fromEntries(senders.flatMap((sender) => [...sender.statuses]).reduce((map, [status, n]) => map.set(status, (map.get(status) ?? 0) + n), new Map()));
    assert.equal(statuses[500] ?? 0, 0);
    report('postgres-restart', { ...figures, outageMs, recoveryMs, probeMs, statuses, streamReconnects: later.length });
  } finally {
    stopSending = true;
    await sending;
    await Promise.all(readers.map((reader) => reader.stop()));
  }
});
