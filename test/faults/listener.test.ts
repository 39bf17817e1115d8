import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkDelivery, createGroup, report, ResumingReader, Sender } from '../support/load.js';
import { metricValue, scrapeMetrics } from '../support/metrics.js';
import { useServers } from '../support/process.js';
import { waitFor } from '../support/sse.js';
import { TcpProxy } from '../support/tcp-proxy.js';

// Instance A talks to Postgres directly, instance B through a TCP proxy that can silently stall
// one connection. The periodic catch-up is off (10 min), so events reach B's streams only by
// NOTIFY or by the catch-up after its LISTEN connection comes back.
const CHECK_MS = 1000;
let proxy: TcpProxy;
const t = useServers(2, {
  env: async (db, index) => {
    const settings = { POSTLINE_LISTENER_CHECK_MS: String(CHECK_MS), POSTLINE_CATCH_UP_INTERVAL_MS: '600000' };
    if (index === 0) return settings;
    proxy = await TcpProxy.start(Number(new URL(db.url).port));
    const proxied = new URL(db.url);
    proxied.port = String(proxy.port);
    return { ...settings, DATABASE_URL: proxied.toString() };
  },
  cleanUp: () => proxy.close(),
});

/** B's LISTEN backend: its pid and the port of its connection towards Postgres (the proxy's side). */
async function listenerOfB(): Promise<{ pid: number; clientPort: number }> {
  const rows = await t.db.query<{ pid: number; client_port: number }>(
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
  const { users, threadId, startId } = await createGroup(t.urls[0]!, 3, t.db.query);
  const readers = users.map((user) => new ResumingReader(user, [t.urls[1]!], startId));
  const senders = users.map((user) => new Sender(user, threadId, [t.urls[0]!]));
  try {
    await waitFor(() => readers.every((reader) => reader.connections.length > 0), 10_000, 'streams open');
    await Promise.all(senders.map((sender, i) => sender.run(20, 1, `before-${i}`)));
    const reconnectsBefore = metricValue(await scrapeMetrics(t.urls[1]!), 'postline_listener_reconnects_total');
    const faultAt = Date.now();
    await fault();
    await Promise.all(senders.map((sender, i) => sender.run(20, 1, `during-${i}`)));
    await waitFor(async () => metricValue(await scrapeMetrics(t.urls[1]!), 'postline_listener_reconnects_total') > reconnectsBefore, 20_000, 'B reconnected');
    const recoveredMs = Date.now() - faultAt;
    const figures = await checkDelivery(t.db.query, startId, readers, senders);
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
    await t.db.query('SELECT pg_terminate_backend($1)', [pid]);
  });
});

test('the LISTEN connection silently stalled (the proxy stops forwarding): B notices within a bounded time and catches up', async () => {
  await underLoad('listener-stalled', async () => {
    const { clientPort } = await listenerOfB();
    assert.ok(proxy.stall(clientPort), 'stalled');
  });
  const res = await fetch(`${t.urls[1]!}/readyz`);
  assert.equal(res.status, 200, 'ready again');
});

test('readiness follows the LISTEN connection: 503 while it cannot come back, 200 once it has', async () => {
  const readiness = async () => (await fetch(`${t.urls[1]}/readyz`)).status;
  assert.equal(await readiness(), 200);
  proxy.refuseNewConnections(true);
  try {
    const { pid } = await listenerOfB();
    await t.db.query('SELECT pg_terminate_backend($1)', [pid]);
    await waitFor(async () => (await readiness()) === 503, 10_000, 'not ready');
    await sleep(1000);
    assert.equal(await readiness(), 503, 'still not ready while it cannot reconnect');
  } finally {
    proxy.refuseNewConnections(false);
  }
  const allowedAt = Date.now();
  await waitFor(async () => (await readiness()) === 200, 15_000, 'ready again, without a restart');
  report('listener-readiness', { readyAgainMs: Date.now() - allowedAt });
});

test('SIGTERM while the LISTEN connection is stalled still drains and exits 0 promptly', async () => {
  const { clientPort } = await listenerOfB();
  assert.ok(proxy.stall(clientPort), 'stalled');
  const start = Date.now();
  t.servers[1]!.child.kill('SIGTERM');
  assert.equal(await t.servers[1]!.exited, 0);
  const drainMs = Date.now() - start;
  assert.ok(drainMs < 5000, `exited after ${drainMs} ms`);
});
