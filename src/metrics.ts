import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Which limit turned a request away (a 429). */
export type LimitName = 'user' | 'sign-in' | 'login-failures' | 'auth-failures' | 'thread-creations' | 'streams' | 'polls';
/** The delivery path an event left by. */
export type DeliveryPath = 'sse' | 'ndjson' | 'poll';
/** Why a stream ended (`client`: the client left). */
export type StreamEnd = 'client' | 'lifetime' | 'slow-consumer' | 'revoked' | 'shutdown' | 'failed';

/**
 * The Prometheus metrics of one instance, served at `GET /metrics`. Each instance has its own
 * registry rather than prom-client's global one: tests run several instances in one process, and
 * each must report only its own numbers. Process metrics (memory, CPU, event-loop lag) come with it.
 */
export class Metrics {
  readonly registry = new Registry();

  /** Read at each scrape: what the instance holds for clients that have not taken it yet. */
  readonly unsentStreamBytes: Gauge;

  /** Open SSE/NDJSON streams and waiting long-polls on this instance, by `kind` (stream | poll). */
  readonly subscribers = new Gauge({
    name: 'postline_subscribers',
    help: 'Open streams (kind="stream") and waiting long-polls (kind="poll") on this instance',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  /**
   * Deliveries since the last scrape. Counting a delivery is on the fan-out hot path (once per
   * event per connection), so it is a plain increment here, added to the counter at scrape time.
   */
  private readonly uncountedDeliveries: Record<DeliveryPath, number> = { sse: 0, ndjson: 0, poll: 0 };

  readonly eventsDelivered = new Counter({
    name: 'postline_events_delivered_total',
    help: 'Events written to clients, by delivery path',
    labelNames: ['path'] as const,
    registers: [this.registry],
    collect: () => {
      for (const path of Object.keys(this.uncountedDeliveries) as DeliveryPath[]) {
        this.eventsDelivered.inc({ path }, this.uncountedDeliveries[path]);
        this.uncountedDeliveries[path] = 0;
      }
    },
  });

  /** Count `count` events written to clients by `path`. */
  delivered(path: DeliveryPath, count = 1): void {
    this.uncountedDeliveries[path] += count;
  }

  readonly streamsEnded = new Counter({
    name: 'postline_streams_ended_total',
    help: 'Streams that ended, by reason (client, lifetime, slow-consumer, revoked, shutdown, failed)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly sendLatency = new Histogram({
    name: 'postline_send_duration_seconds',
    help: 'Time to answer POST /v1/threads/:id/messages (validation, group commit, answer)',
    labelNames: ['status'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly notifyLag = new Histogram({
    name: 'postline_notify_delivery_lag_seconds',
    help: 'From a NOTIFY arriving to its event being handed to local streams and polls',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [this.registry],
  });

  readonly listenerReconnects = new Counter({
    name: 'postline_listener_reconnects_total',
    help: 'Times the LISTEN connection was lost and re-established',
    registers: [this.registry],
  });

  readonly rateLimited = new Counter({
    name: 'postline_rate_limited_total',
    help: 'Requests answered 429 (streams at their cap: retry:), by limit (user, sign-in, login-failures, auth-failures, thread-creations, streams, polls)',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });

  /** Push webhook jobs finished, by outcome: sent (the host took it), failed (after every attempt), skipped (everyone had it, or it was deleted). */
  readonly webhookJobs = new Counter({
    name: 'postline_webhook_jobs_total',
    help: 'Push webhook jobs this instance finished, by outcome (sent, failed, skipped)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly webhookAttemptsFailed = new Counter({
    name: 'postline_webhook_attempts_failed_total',
    help: 'Push webhook deliveries that failed (an error status, no answer in time, unreachable); retried with backoff',
    registers: [this.registry],
  });

  /** Read at each scrape (from Postgres: the same on every instance). */
  readonly webhookPending: Gauge;

  /** Connections closed at once because the API port had POSTLINE_MAX_CONNECTIONS open. */
  readonly connectionsRefused = new Counter({
    name: 'postline_connections_refused_total',
    help: 'Connections closed as they arrived because the API port had POSTLINE_MAX_CONNECTIONS open',
    registers: [this.registry],
  });

  /** Connections without a complete request, cut to make room near POSTLINE_MAX_CONNECTIONS. */
  readonly connectionsShed = new Counter({
    name: 'postline_connections_shed_total',
    help: 'Slow connections (a head or body still arriving) cut to make room, from 90% of POSTLINE_MAX_CONNECTIONS on',
    registers: [this.registry],
  });

  /** Read at each scrape: open connections of the API port. */
  readonly connections: Gauge;

  /**
   * @param sources - Values read at scrape time: `unsentStreamBytes` from the hub,
   * `pendingWebhookJobs` from Postgres, `openConnections` from the HTTP server.
   */
  constructor(sources: { unsentStreamBytes: () => number; pendingWebhookJobs: () => Promise<number>; openConnections: () => Promise<number> }) {
    this.connections = new Gauge({
      name: 'postline_connections',
      help: 'Open connections of the API port (at most POSTLINE_MAX_CONNECTIONS)',
      registers: [this.registry],
      async collect() {
        this.set(await sources.openConnections().catch(() => Number.NaN));
      },
    });
    this.webhookPending = new Gauge({
      name: 'postline_webhook_jobs_pending',
      help: 'Push webhook jobs not yet finished (in their grace period, or waiting to be retried), on all instances',
      registers: [this.registry],
      async collect() {
        this.set(await sources.pendingWebhookJobs().catch(() => Number.NaN));
      },
    });
    this.unsentStreamBytes = new Gauge({
      name: 'postline_stream_unsent_bytes',
      help: 'Bytes written to open streams that their clients have not taken yet (bounded per stream by POSTLINE_SLOW_CONSUMER_BYTES)',
      registers: [this.registry],
      collect() {
        this.set(sources.unsentStreamBytes());
      },
    });
    collectDefaultMetrics({ register: this.registry });
    // Every series exists from the start, so dashboards and rate() see zeros rather than gaps.
    for (const kind of ['stream', 'poll']) this.subscribers.set({ kind }, 0);
    for (const limit of ['user', 'sign-in', 'login-failures', 'auth-failures', 'thread-creations', 'streams', 'polls'] satisfies LimitName[]) {
      this.rateLimited.inc({ limit }, 0);
    }
    for (const outcome of ['sent', 'failed', 'skipped']) this.webhookJobs.inc({ outcome }, 0);
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
