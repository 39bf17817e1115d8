import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Pool } from 'pg';
import type { SessionCache } from '../auth/session-cache.js';
import type { Config } from '../config.js';
import { ServiceUnavailableProblem, TooManyRequestsProblem } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { eventLogBounds } from '../store/events.js';
import { coMembers } from '../store/presence.js';
import type { AuthenticatedSession } from '../store/sessions.js';
import { liveSessionIds } from '../store/sessions.js';
import { Deliverable } from './deliverable.js';
import { EventFeed } from './event-feed.js';
import { Hub } from './hub.js';
import { NotificationListener } from './listener.js';
import { NdjsonStream } from './ndjson-stream.js';
import { PollWaiter, type PollOutcome } from './poll-waiter.js';
import { PresenceTracker } from './presence.js';
import { SseStream } from './sse-stream.js';
import type { StreamSettings } from './stream.js';
import type { Subscriber, SubscriberKind } from './subscriber.js';

/** What travels on the ephemeral channel (see sql/003_realtime.sql and store/sessions.ts). */
type EphemeralNotice =
  | { kind: 'typing'; threadId: string; userId: string; typing: boolean; at: string; audience: string[] }
  | { kind: 'presence'; userId: string; online: boolean; at: string }
  | { kind: 'revoked'; sessionId: string }
  /** Event rows up to `through` were rewritten in the log (a deleted message's copies). */
  | { kind: 'rewritten'; through: number };

/** How often open streams' tokens are re-checked (revocations normally arrive by NOTIFY). */
const SESSION_CHECK_MS = 30_000;
/** The longest delay setTimeout takes; a later expiry is beyond any stream's lifetime anyway. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** End `subscriber` when its token expires; returns the cancel. No NOTIFY announces an expiry. */
function endAtExpiry(subscriber: Subscriber, auth: AuthenticatedSession): () => void {
  const delay = auth.expiresAt.getTime() - Date.now();
  if (delay > MAX_TIMER_MS) return () => {};
  const timer = setTimeout(() => subscriber.end('revoked'), Math.max(0, delay));
  return () => clearTimeout(timer);
}

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
  private ticker: NodeJS.Timeout | undefined;
  private lastSessionCheck = Date.now();
  /** Set by stop(): no new streams or polls (they would keep the drain waiting). */
  private stopping = false;

  constructor(
    private readonly config: Config,
    private readonly pool: Pool,
    databaseUrl: string,
    private readonly metrics: Metrics,
    private readonly sessions: SessionCache,
    private readonly logger: Logger,
  ) {
    this.hub = new Hub(metrics);
    this.feed = new EventFeed(pool, this.hub, metrics, logger, config.recentEventsBytes);
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
        onEphemeral: (payload) => this.onEphemeral(payload),
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
    options: { auth: AuthenticatedSession; from: number | undefined; format: 'sse' | 'ndjson' },
  ): Promise<void> {
    this.admit(options.auth, 'stream');
    const init = {
      userId: options.auth.user.id,
      sessionId: options.auth.sessionId,
      cursorAtRegistration: this.feed.cursor,
      from: options.from,
      settings: this.streamSettings,
      metrics: this.metrics,
    };
    const stream = options.format === 'ndjson' ? new NdjsonStream(res, init) : new SseStream(res, init);
    stream.onClosed(this.register(stream, options.auth));
    let resume;
    try {
      resume = await stream.prepare(this.feed);
    } catch (error) {
      stream.abandon();
      throw error;
    }
    if (res.destroyed) return; // the client left meanwhile; the stream has cleaned up
    await stream.open(req);
    await stream.resume(this.feed, resume);
  }

  /**
   * Serve `GET /v1/poll` with a cursor: answer at once with what the user missed, else wait up
   * to `timeoutMs` for the first event. `onClientGone` is called by the route when the client
   * leaves early.
   */
  async poll(options: {
    auth: AuthenticatedSession;
    cursor: number;
    timeoutMs: number;
    onClientGone: (cancel: () => void) => void;
  }): Promise<PollOutcome> {
    this.admit(options.auth, 'poll');
    const waiter = new PollWaiter(options.auth.user.id, options.auth.sessionId, options.cursor, this.feed.cursor, () => this.feed.cursor);
    const unregister = this.register(waiter, options.auth);
    options.onClientGone(() => waiter.cancel());
    try {
      const outcome = await waiter.wait(this.feed, options.timeoutMs);
      if (outcome.kind === 'events') this.metrics.delivered('poll', outcome.events.length);
      return outcome;
    } finally {
      unregister();
    }
  }

  /** A poll without a cursor only learns where "now" is (the newest committed event); it still counts as the user polling. */
  async head(userId: string): Promise<number> {
    this.presence.acquire(userId);
    this.presence.release(userId, 'poll');
    return Math.max(this.feed.cursor, (await eventLogBounds(this.pool)).head);
  }

  /** Shutdown: end every stream (clients resume elsewhere with their last id) and answer every poll. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.ticker);
    this.hub.endAll('shutdown');
    await this.presence.stop().catch((error: unknown) => this.logger.warn({ err: error }, 'presence cleanup failed'));
    await this.listener.stop();
  }

  /** Refuse a new stream or poll while stopping (it would hold up the drain) or over the user's cap. */
  private admit(auth: AuthenticatedSession, kind: SubscriberKind): void {
    if (this.stopping) throw new ServiceUnavailableProblem('This instance is shutting down; reconnect to another.');
    const [limit, cap, what] =
      kind === 'stream'
        ? (['streams', this.config.maxStreamsPerUser, 'open streams'] as const)
        : (['polls', this.config.maxPollsPerUser, 'waiting polls'] as const);
    if (this.hub.count(auth.user.id, kind) >= cap) throw new TooManyRequestsProblem(limit, `At most ${cap} ${what} per user.`, 5);
  }

  /**
   * Hand `subscriber` its user's events (before it reads its backlog), count it as the user being
   * connected, and end it when the token expires. Returns what undoes all that.
   */
  private register(subscriber: Subscriber, auth: AuthenticatedSession): () => void {
    this.hub.add(subscriber);
    this.presence.acquire(subscriber.userId);
    const cancelExpiry = endAtExpiry(subscriber, auth);
    return () => {
      cancelExpiry();
      this.hub.remove(subscriber);
      this.presence.release(subscriber.userId, subscriber.kind);
    };
  }

  private onEphemeral(payload: string): void {
    let notice: EphemeralNotice;
    try {
      notice = JSON.parse(payload) as EphemeralNotice;
    } catch {
      this.logger.warn('ignoring a malformed ephemeral notification');
      return;
    }
    switch (notice.kind) {
      case 'typing':
        this.hub.dispatch(
          Deliverable.ephemeral(
            'typing',
            { threadId: notice.threadId, at: notice.at, data: { userId: notice.userId, typing: notice.typing } },
            notice.audience,
          ),
        );
        break;
      case 'presence':
        void this.dispatchPresence(notice);
        break;
      case 'revoked':
        this.sessions.forget(notice.sessionId);
        this.hub.endSession(notice.sessionId);
        break;
      case 'rewritten':
        this.feed.forgetThrough(notice.through);
        break;
    }
  }

  /** Presence goes to the users here who share a thread with its subject. */
  private async dispatchPresence(notice: { userId: string; online: boolean; at: string }): Promise<void> {
    const localUsers = this.hub.userIds();
    if (localUsers.length === 0) return;
    try {
      const audience = await coMembers(this.pool, notice.userId, localUsers);
      this.hub.dispatch(Deliverable.ephemeral('presence', { at: notice.at, data: { userId: notice.userId, online: notice.online } }, audience));
    } catch (error) {
      this.logger.warn({ err: error }, 'delivering a presence change failed');
    }
  }

  /** The slow periodic tick: catch up in case a NOTIFY was lost, and re-check tokens now and then. */
  private async tick(): Promise<void> {
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
