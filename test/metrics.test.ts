import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import request from 'supertest';
import { createPair, sendMessage } from './support/api.js';
import { useInstances } from './support/fixture.js';
import { metricValue, scrapeMetrics } from './support/metrics.js';
import { poll } from './support/poll.js';
import { openStream, waitFor } from './support/sse.js';

const t = useInstances({ count: 2, env: { POSTLINE_MAX_STREAMS_PER_USER: '1', POSTLINE_LISTENER_CHECK_MS: '1000' } });

test('GET /metrics is Prometheus text with the instance’s own numbers', async () => {
  const res = await request(t.a.url).get('/metrics').expect(200);
  assert.match(res.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/);
  for (const name of [
    'postline_subscribers',
    'postline_events_delivered_total',
    'postline_send_duration_seconds',
    'postline_notify_delivery_lag_seconds',
    'postline_listener_reconnects_total',
    'postline_rate_limited_total',
    'postline_stream_unsent_bytes',
    'process_resident_memory_bytes',
  ]) {
    assert.match(res.text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
});

test('streams, polls, deliveries, send latency, NOTIFY lag and caps are counted per instance', async () => {
  const { alice, bob, threadId } = await createPair(t.a.url);
  const stream = await openStream(t.b.url, bob.token);
  const { cursor } = await poll(t.b.url, bob.token);
  const waiting = poll(t.b.url, bob.token, { cursor, timeout: 20 });
  try {
    await waitFor(async () => metricValue(await scrapeMetrics(t.b.url), 'postline_subscribers', { kind: 'poll' }) === 1, 5000, 'poll gauge');
    const during = await scrapeMetrics(t.b.url);
    assert.equal(metricValue(during, 'postline_subscribers', { kind: 'stream' }), 1);
    assert.equal(metricValue(await scrapeMetrics(t.a.url), 'postline_subscribers', { kind: 'stream' }), 0, 'A has its own registry');

    // One stream per user here: the second is refused and counted.
    await request(t.b.url).get('/v1/events').set('Authorization', `Bearer ${bob.token}`).expect(429);

    await sendMessage(t.a.url, alice, threadId, 'counted');
    await stream.nextOfType('message.created');
    await waiting;
    const after = await scrapeMetrics(t.b.url);
    assert.equal(metricValue(after, 'postline_events_delivered_total', { path: 'sse' }), 1);
    assert.equal(metricValue(after, 'postline_events_delivered_total', { path: 'poll' }), 1);
    assert.ok(metricValue(after, 'postline_notify_delivery_lag_seconds_count') >= 1, 'NOTIFY lag observed');
    assert.equal(metricValue(after, 'postline_rate_limited_total', { limit: 'streams' }), 1);
    assert.equal(metricValue(after, 'postline_subscribers', { kind: 'poll' }), 0);
    const onA = await scrapeMetrics(t.a.url);
    assert.equal(metricValue(onA, 'postline_send_duration_seconds_count', { status: '201' }), 1);
  } finally {
    stream.close();
  }
  await waitFor(async () => metricValue(await scrapeMetrics(t.b.url), 'postline_streams_ended_total', { reason: 'client' }) === 1, 5000, 'end counted');
});

test('listener reconnects are counted', async () => {
  const before = metricValue(await scrapeMetrics(t.a.url), 'postline_listener_reconnects_total');
  const admin = new pg.Client({ connectionString: t.db.url });
  await admin.connect();
  try {
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'postline-listen'`);
  } finally {
    await admin.end();
  }
  await waitFor(async () => metricValue(await scrapeMetrics(t.a.url), 'postline_listener_reconnects_total') === before + 1, 10_000, 'reconnect counted');
});
