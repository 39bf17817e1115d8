import { randomUUID } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Pool } from 'pg';
import type { SessionCache } from '../auth/session-cache.js';
import type { Config } from '../config.js';
import { SessionEndedError, ShuttingDownError, SubscriberLimitError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics, StreamEnd } from '../metrics.js';
import type { AuthenticatedSession } from '../store/sessions.js';
import { liveSessionIds } from '../store/sessions.js';
import { EphemeralNotices } from './ephemeral.js';
import { EventFeed } from './event-feed.js';
import { Hub } from './hub.js';
import { NotificationListener } from './listener.js';
import { NdjsonStream } from './ndjson-stream.js';
import { BUSY_WINDOWS, PollWaiter, type PollOutcome } from './poll-waiter.js';
import { PresenceTracker } from './presence.js';
import { SseStream } from './sse-stream.js';
import type { StreamSettings } from './stream.js';
import type { Resume, Subscriber, SubscriberKind } from './subscriber.js';

/** How often open streams' tokens are re-checked (revocations normally arrive by NOTIFY). */
const SESSION_CHECK_MS = 30_000;
/** The longest period of the instance's clock: token expiries are noticed within about this long. */
const CLOCK_MS = 1000;

/**
 * The real-time side of one instance: the listener wakes the feed, the feed reads new events
 * once and hands them to the hub, the hub hands them to the user's streams and waiting polls.
 */
export class Realtime {
  readonly hub: Hub;
  readonly feed: EventFeed;
  readonly presence: PresenceTracker;
  private readonly listener: NotificationListener;
  private readonly streamSettings: StreamSettings;
  private readonly ephemeral: EphemeralNotices;
  private ticker: NodeJS.Timeout | undefined;
  /**
   * One timer for every subscriber's timed work (heartbeats, lifetimes, token expiries) instead
   * of timers per stream: at thousands of idle streams, their timers were a tenth of the memory.
   */
  private clock: NodeJS.Timeout | undefined;
  private lastSessionCheck = Date.now();
  /** When each user's last poll answer with events left, while it may matter (for coalescing: see poll()). */
  private readonly lastPollDelivery = new Map<string, number>();
  /** Set by stop(): no new streams or polls (they would keep the drain waiting). */
  private stopping = false;

  constructor(
    private readonly config: Config,
    private readonly pool: Pool,
    databaseUrl: string,
    private readonly metrics: Metrics,
    sessions: SessionCache,
    private readonly logger: Logger,
  ) {
    this.hub = new Hub(metrics, logger);
    this.feed = new EventFeed(pool, this.hub, metrics, logger, config.recentEventsBytes);
    this.ephemeral = new EphemeralNotices(pool, this.hub, this.feed, sessions, logger);
    this.presence = new PresenceTracker(
      pool,
      randomUUID(),
      {
        streamGraceMs: config.presenceGraceMs,
        pollGraceMs: config.pollPresenceMs,
        instanceTimeoutMs: config.instanceTimeoutMs,
      },
      logger,
    );
    this.listener = new NotificationListener(
      databaseUrl,
      {
        onEvent: (id) => void this.feed.catchUp(id),
        onEphemeral: (payload) => this.ephemeral.receive(payload),
        onReconnected: () => {
          metrics.listenerReconnects.inc();
          sessions.clear(); // revocations sent while deaf were missed
          this.feed.forgetThrough(this.feed.cursor); // and rewrites of the event log
          void this.feed.catchUp();
          this.presence.resync().catch((error: unknown) => logger.warn({ err: error }, 'presence resync failed'));
        },
      },
      { checkIntervalMs: config.listenerCheckMs },
      logger,
    );
    this.streamSettings = {
      lifetimeMs: config.sseLifetimeMs,
      heartbeatMs: config.sseHeartbeatMs,
      // Fine enough for the shortest lifetime's jitter and for the heartbeat.
      clockMs: Math.min(CLOCK_MS, config.sseHeartbeatMs, config.sseLifetimeMs / 10),
      retryMs: config.sseRetryMs,
      slowConsumerBytes: config.slowConsumerBytes,
    };
  }

  async start(): Promise<void> {
    await this.feed.start();
    await this.listener.start();
    await this.presence.start();
    this.ticker = setInterval(() => void this.tick(), this.config.catchUpIntervalMs);
    this.ticker.unref();
    this.clock = setInterval(() => this.hub.tick(Date.now()), this.streamSettings.clockMs);
    this.clock.unref();
  }

  /** True while the LISTEN connection is up. */
  get listening(): boolean {
    return this.listener.connected;
  }

  /**
   * Serve `GET /v1/events`: register a stream for the user, learn what it missed (or where "now"
   * is), send the head, then the backlog, then live events. Resolves when the backlog is sent.
   */
  async openStream(
    req: IncomingMessage,
    res: ServerResponse,
    options: { auth: AuthenticatedSession; from: number | undefined; format: 'sse' | 'ndjson'; headers: OutgoingHttpHeaders },
  ): Promise<void> {
    this.admit(options.auth, 'stream');
    const init = {
      userId: options.auth.user.id,
      sessionId: options.auth.sessionId,
      registeredAt: this.feed.cursor,
      from: options.from,
      headers: options.headers,
      settings: this.streamSettings,
      metrics: this.metrics,
      writes: this.hub.writes,
    };
    const stream = options.format === 'ndjson' ? new NdjsonStream(res, init) : new SseStream(res, init);
    stream.onClosed(this.register(stream, options.auth));
    let resume: Resume | StreamEnd;
    try {
      resume = await stream.prepare(this.feed);
    } catch (error) {
      stream.abandon();
      throw error;
    }
    if (res.destroyed) return; // the client left meanwhile; the stream has cleaned up
    if (typeof resume === 'string') throw resume === 'revoked' ? new SessionEndedError() : new ShuttingDownError();
    await stream.open(req, resume);
    await stream.resume(this.feed, resume);
  }

  /**
   * Serve `GET /v1/poll` with a cursor: answer at once with what the user missed, else wait up
   * to `timeoutMs` for the first event. A user whose next event comes within a few coalescing
   * windows of their last poll answer is in a busy conversation: their poll waits
   * `POSTLINE_POLL_COALESCE_MS` after the first event for more, so one round trip carries
   * several. `onClientGone` is called by the route when the client leaves early.
   */
  async poll(options: {
    auth: AuthenticatedSession;
    cursor: number;
    timeoutMs: number;
    onClientGone: (cancel: () => void) => void;
  }): Promise<PollOutcome> {
    this.admit(options.auth, 'poll');
    const userId = options.auth.user.id;
    const coalesceMs = this.config.pollCoalesceMs;
    const settings = { timeoutMs: options.timeoutMs, coalesceMs, lastAnswerAt: this.lastPollDelivery.get(userId) };
    const waiter = new PollWaiter(userId, options.auth.sessionId, options.cursor, this.feed.cursor, () => this.feed.cursor, settings, this.logger);
    const unregister = this.register(waiter, options.auth);
    options.onClientGone(() => waiter.cancel());
    try {
      const outcome = await waiter.wait(this.feed);
      if (outcome.kind === 'events' && outcome.events.length > 0) {
        this.metrics.delivered('poll', outcome.events.length);
        if (coalesceMs > 0) this.lastPollDelivery.set(userId, performance.now());
      }
      return outcome;
    } finally {
      unregister();
    }
  }

  /** A poll without a cursor only learns where "now" is (the newest committed event); it still counts as the user polling. */
  async head(userId: string): Promise<number> {
    this.presence.acquire(userId);
    this.presence.release(userId, 'poll');
    return this.feed.head();
  }

  /** Shutdown: end every stream (clients resume elsewhere with their last id) and answer every poll. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.ticker);
    clearInterval(this.clock);
    this.hub.endAll('shutdown');
    await this.presence.stop().catch((error: unknown) => this.logger.warn({ err: error }, 'presence cleanup failed'));
    await this.listener.stop();
  }

  /** Refuse a new stream or poll while stopping (it would hold up the drain) or over the user's cap. */
  private admit(auth: AuthenticatedSession, kind: SubscriberKind): void {
    if (this.stopping) throw new ShuttingDownError();
    const cap = kind === 'stream' ? this.config.maxStreamsPerUser : this.config.maxPollsPerUser;
    if (this.hub.count(auth.user.id, kind) >= cap) throw new SubscriberLimitError(kind, cap);
  }

  /**
   * Hand `subscriber` its user's events (before it reads its backlog), count it as the user being
   * connected, and end it when the token expires. Returns what undoes all that.
   */
  private register(subscriber: Subscriber, auth: AuthenticatedSession): () => void {
    this.hub.add(subscriber);
    this.presence.acquire(subscriber.userId);
    subscriber.expireAt(auth.expiresAt.getTime());
    return () => {
      this.hub.remove(subscriber);
      this.presence.release(subscriber.userId, subscriber.kind);
    };
  }

  /** The slow periodic tick: catch up in case a NOTIFY was lost, and re-check tokens now and then. */
  private async tick(): Promise<void> {
    const now = performance.now();
    const busyWithin = BUSY_WINDOWS * this.config.pollCoalesceMs;
    for (const [userId, at] of this.lastPollDelivery) if (now - at >= busyWithin) this.lastPollDelivery.delete(userId);
    await this.feed.catchUp();
    await this.feed.refreshBounds().catch((error: unknown) => this.logger.warn({ err: error }, 'reading the event log bounds failed'));
    if (Date.now() - this.lastSessionCheck < SESSION_CHECK_MS) return;
    this.lastSessionCheck = Date.now();
    const sessionIds = this.hub.sessionIds();
    if (sessionIds.length === 0) return;
    try {
      const live = await liveSessionIds(this.pool, sessionIds);
      for (const sessionId of sessionIds) if (!live.has(sessionId)) this.hub.endSession(sessionId);
    } catch (error) {
      this.logger.warn({ err: error }, 'checking open streams’ tokens failed');
    }
  }
}
