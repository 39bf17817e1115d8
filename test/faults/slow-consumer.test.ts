import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { checkDelivery, createGroup, report, ResumingReader, Sender } from '../support/load.js';
import { metricValue, scrapeMetrics } from '../support/metrics.js';
import { useServers } from '../support/process.js';
import { waitFor } from '../support/sse.js';

// One server process with the default slow-consumer bound (1 MiB of unsent output per stream).
const t = useServers(1);

const SENDERS = 4;
const BASELINE_EVENTS = 1000;
const SLOW_PHASE_EVENTS = 10_000;
// 8 KB events: loopback TCP buffers alone can absorb tens of MB (tcp_rmem autotunes up to 32 MB
// here) before the server sees any back-pressure; 10k of these (80 MB) go well past that.
const BODY = '🐢'.repeat(2000);

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
const summary = (latencies: number[]) => {
  const sorted = [...latencies].sort((x, y) => x - y);
  return { p50: Math.round(percentile(sorted, 0.5)), p95: Math.round(percentile(sorted, 0.95)), p99: Math.round(percentile(sorted, 0.99)) };
};
const MB = 2 ** 20;

test('a client that stops reading while 10k events flow: bounded memory, disconnected, other clients’ latency unaffected', async () => {
  const url = t.urls[0]!;
  const { users, threadId, startId } = await createGroup(url, SENDERS + 2, t.db.query);
  const [slow, fast] = users.slice(SENDERS) as [(typeof users)[0], (typeof users)[0]];
  const senders = users.slice(0, SENDERS).map((user) => new Sender(user, threadId, [url]));
  const reader = new ResumingReader(fast, [url], startId);
  let slowSocket: net.Socket | undefined;
  try {
    await waitFor(() => reader.connections.length > 0, 10_000, 'fast stream open');

    /** Send `count` messages (8 KB bodies) and return the fast client's send-to-receive latencies, in ms. */
    const phase = async (label: string, count: number) => {
      await Promise.all(senders.map((sender, i) => sender.run(count / SENDERS, 5, `${label}-${i}`, () => false, BODY)));
      const ids = new Set<string>();
      for (const sender of senders) for (const ack of sender.acknowledged) if (ack.clientId.startsWith(`${label}-`)) ids.add(ack.id);
      await waitFor(() => reader.received.filter((e) => ids.has((e.data as { id: string }).id)).length === ids.size, 60_000, `${label} delivered`);
      const latencies: number[] = [];
      reader.received.forEach((event, index) => {
        const clientId = (event.data as { clientId?: string }).clientId;
        if (!clientId?.startsWith(`${label}-`)) return;
        const started = senders.map((sender) => sender.startedAt.get(clientId)).find((t) => t !== undefined)!;
        latencies.push(reader.arrivals[index]! - started);
      });
      return summary(latencies);
    };

    await phase('warm-up', 200); // JIT and connection pools, so the baseline is not the cold start
    const baseline = await phase('base', BASELINE_EVENTS);
    const rssBefore = metricValue(await scrapeMetrics(url), 'process_resident_memory_bytes');

    // The slow client: sends its request, then never reads a byte.
    slowSocket = net.connect(Number(new URL(url).port), '127.0.0.1');
    slowSocket.pause();
    slowSocket.write(`GET /v1/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${slow.token}\r\n\r\n`);
    await waitFor(async () => metricValue(await scrapeMetrics(url), 'postline_subscribers', { kind: 'stream' }) === 2, 10_000, 'slow stream open');

    // Sample what the server holds for its streams, and its memory, while the events flow.
    let rssPeak = rssBefore;
    let unsentPeak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const metrics = await scrapeMetrics(url);
        rssPeak = Math.max(rssPeak, metricValue(metrics, 'process_resident_memory_bytes'));
        unsentPeak = Math.max(unsentPeak, metricValue(metrics, 'postline_stream_unsent_bytes'));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const started = performance.now();
    const withSlow = await phase('slow', SLOW_PHASE_EVENTS);
    const phaseMs = Math.round(performance.now() - started);
    sampling = false;
    await sampler;

    const metrics = await scrapeMetrics(url);
    assert.equal(metricValue(metrics, 'postline_streams_ended_total', { reason: 'slow-consumer' }), 1, 'the slow client was disconnected');
    assert.equal(metricValue(metrics, 'postline_subscribers', { kind: 'stream' }), 1);
    // What a server that buffered for it would hold: every event of the phase. What it held: at
    // most the bound (1 MiB) for the slow client, plus whatever the fast one had not read yet.
    const unboundedMb = (SLOW_PHASE_EVENTS * (Buffer.byteLength(BODY) + 250)) / MB;
    assert.ok(unsentPeak < 2 * (MB + 64 * 1024), `held ${(unsentPeak / MB).toFixed(2)} MB for streams`);
    // The process as a whole (heap growth under 10k sends included) stays far from unbounded.
    const growthMb = (rssPeak - rssBefore) / MB;
    assert.ok(growthMb < 128, `memory grew by ${growthMb.toFixed(1)} MB`);
    // Latency with the slow client present stays in line with the baseline (generous: 2 shared cores).
    assert.ok(withSlow.p95 <= Math.max(3 * baseline.p95, baseline.p95 + 150), `p95 ${withSlow.p95} ms vs ${baseline.p95} ms`);

    const figures = await checkDelivery(t.db.query, startId, [reader], senders);
    report('slow-consumer', {
      ...figures,
      eventsWhileSlow: SLOW_PHASE_EVENTS,
      phaseMs,
      unsentPeakMb: +(unsentPeak / MB).toFixed(2),
      rssBeforeMb: +(rssBefore / MB).toFixed(1),
      rssPeakMb: +(rssPeak / MB).toFixed(1),
      unboundedWouldBufferMb: +unboundedMb.toFixed(1),
      latencyBaselineMs: baseline,
      latencyWithSlowConsumerMs: withSlow,
    });
  } finally {
    slowSocket?.destroy();
    await reader.stop();
  }
});
