import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { checkDelivery, createGroup, report, ResumingReader, Sender } from '../support/load.js';
import { metricValue, scrapeMetrics } from '../support/metrics.js';
import { LOAD_TEST_ENV, spawnServer, type ServerProcess } from '../support/process.js';
import { waitFor } from '../support/sse.js';
import { TcpProxy } from '../support/tcp-proxy.js';

// Instance A talks to Postgres directly, instance B through a TCP proxy that can silently stall
// one connection. The periodic catch-up is off (10 min), so events reach B's streams only by
// NOTIFY or by the catch-up after its LISTEN connection comes back.
const CHECK_MS = 1000;
let db: TestDatabase;
let proxy: TcpProxy;
let servers: ServerProcess[];
let a: string;
let b: string;

before(async () => {
  db = await createTestDatabase();
  proxy = await TcpProxy.start(Number(new URL(db.url).port));
  const proxied = new URL(db.url);
  proxied.port = String(proxy.port);
  const env = { ...LOAD_TEST_ENV, POSTLINE_LISTENER_CHECK_MS: String(CHECK_MS), POSTLINE_CATCH_UP_INTERVAL_MS: '600000' };
  servers = [spawnServer({ ...env, DATABASE_URL: db.url }), spawnServer({ ...env, DATABASE_URL: proxied.toString() })];
  [a, b] = (await Promise.all(servers.map((server) => server.listening))) as [string, string];
});
after(async () => {
  for (const server of servers) if (server.child.exitCode === null) server.child.kill('SIGTERM');
  const codes = await Promise.all(servers.map((server) => server.exited));
  await proxy.close();
  await db.drop();
  assert.deepEqual(codes, [0, 0]);
});

/** B's LISTEN backend: its pid and the port of its connection towards Postgres (the proxy's side). */
async function listenerOfB(): Promise<{ pid: number; clientPort: number }> {
  const rows = await db.query<{ pid: number; client_port: number }>(
    `SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'postline-listen'
      ORDER BY backend_start DESC`, // a stalled predecessor may linger: Postgres cannot tell it is dead
  );
  const ports = new Set(proxy.upstreamPorts());
  const found = rows.find((row) => ports.has(row.client_port));
  assert.ok(found, 'B’s listener found');
  return { pid: found.pid, clientPort: found.client_port };
}

/** Load through a fault on B's listener (readers on B, senders on A); reports the figures and recovery times. */
async function underLoad(name: string, fault: () => Promise<void>): Promise<void> {
  const { users, threadId, startId } = await createGroup(a, 3, db.query);
  const readers = users.map((user) => new ResumingReader(user, [b], startId));
  const senders = users.map((user) => new Sender(user, threadId, [a]));
  try {
    await waitFor(() => readers.every((reader) => reader.connections.length > 0), 10_000, 'streams open');
    await Promise.all(senders.map((sender, i) => sender.run(20, 1, `before-${i}`)));
    const reconnectsBefore = metricValue(await scrapeMetrics(b), 'postline_listener_reconnects_total');
    const faultAt = Date.now();
    await fault();
    await Promise.all(senders.map((sender, i) => sender.run(20, 1, `during-${i}`)));
    await waitFor(async () => metricValue(await scrapeMetrics(b), 'postline_listener_reconnects_total') > reconnectsBefore, 20_000, 'B reconnected');
    const recoveredMs = Date.now() - faultAt;
    const figures = await checkDelivery(db.query, startId, readers, senders);
    const caughtUpMs = Date.now() - faultAt;
    assert.equal(figures.lost + figures.duplicated, 0);
    report(name, { ...figures, recoveredMs, caughtUpMs, checkIntervalMs: CHECK_MS });
    // Detection is bounded by one check interval plus the check's own timeout, plus the reconnect.
    assert.ok(recoveredMs < 2 * CHECK_MS + 2500, `recovered after ${recoveredMs} ms`);
  } finally {
    await Promise.all(readers.map((reader) => reader.stop()));
  }
}

test('the LISTEN connection killed with pg_terminate_backend: B reconnects and catches up', async () => {
  await underLoad('listener-terminated', async () => {
    const { pid } = await listenerOfB();
    await db.query('SELECT pg_terminate_backend($1)', [pid]);
  });
});

test('the LISTEN connection silently stalled (the proxy stops forwarding): B notices within a bounded time and catches up', async () => {
  await underLoad('listener-stalled', async () => {
    const { clientPort } = await listenerOfB();
    assert.ok(proxy.stall(clientPort), 'stalled');
  });
  const res = await fetch(`${b}/readyz`);
  assert.equal(res.status, 200, 'ready again');
});

test('SIGTERM while the LISTEN connection is stalled still drains and exits 0 promptly', async () => {
  const { clientPort } = await listenerOfB();
  assert.ok(proxy.stall(clientPort), 'stalled');
  const start = Date.now();
  servers[1]!.child.kill('SIGTERM');
  assert.equal(await servers[1]!.exited, 0);
  const drainMs = Date.now() - start;
  assert.ok(drainMs < 5000, `exited after ${drainMs} ms`);
});
