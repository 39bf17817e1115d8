import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DeliveryPath, Metrics, StreamEnd } from '../metrics.js';
import type { Deliverable } from './deliverable.js';
import type { EventFeed } from './event-feed.js';
import { Subscription, type EndReason, type Resume } from './subscriber.js';

export interface StreamSettings {
  /** Server-side lifetime of a stream; it closes (with jitter, up to 10% earlier) so proxies never cut it. */
  lifetimeMs: number;
  /** Interval of keep-alive writes. */
  heartbeatMs: number;
  /** The `retry:` hint, in ms. */
  retryMs: number;
  /** A stream whose unsent output grows past this many bytes is a slow consumer and is closed. */
  slowConsumerBytes: number;
}

/** Who a stream is for and where it starts. */
export interface StreamInit {
  userId: string;
  sessionId: string;
  /** The feed's cursor when the stream registered with the hub. */
  registeredAt: number;
  /** The client's resume point; undefined: from now. */
  from: number | undefined;
  settings: StreamSettings;
  metrics: Metrics;
}

/** Events per page of a backlog: what a stream may write before it waits for its socket (≤ 1.6 MB). */
const BACKLOG_PAGE = 100;
/** Live events a stream may hold back while sending its backlog. */
const MAX_HELD = 10_000;

/** Resolves once `res` takes more output (or has closed), leaving no listener behind. */
function untilWritable(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * An open event stream of one user (SSE or NDJSON). It is registered with the hub before its
 * backlog is read, sends the backlog with back-pressure, then goes live. It ends when the client
 * leaves, after its lifetime, when it cannot keep up, when its token is revoked, or on shutdown.
 */
export abstract class Stream extends Subscription {
  private closed = false;
  private lifetime: NodeJS.Timeout | undefined;
  private readonly closedHooks: Array<() => void> = [];
  private markEnded!: (reason: StreamEnd) => void;
  /** Resolves with the reason once the stream has ended (`client`: the client left). */
  readonly ended = new Promise<StreamEnd>((resolve) => (this.markEnded = resolve));

  protected readonly settings: StreamSettings;
  private readonly metrics: Metrics;
  /** The wire format, for the delivery metrics. */
  protected abstract readonly path: DeliveryPath;

  constructor(
    protected readonly res: ServerResponse,
    init: StreamInit,
  ) {
    super(init.userId, init.sessionId, 'stream', init.from, init.registeredAt, MAX_HELD);
    this.settings = init.settings;
    this.metrics = init.metrics;
    res.once('close', () => this.cleanUp('client'));
  }

  override get unsentBytes(): number {
    return this.res.writableLength;
  }

  /** Run `hook` once when the stream has closed, whatever the cause. */
  onClosed(hook: () => void): void {
    if (this.closed) hook();
    else this.closedHooks.push(hook);
  }

  /**
   * Decide how this stream starts. Called after registering with the hub and before the response
   * head is sent, so that "from now" means before the client sees the stream, and a failure is
   * still an ordinary problem answer.
   */
  prepare(feed: EventFeed): Promise<Resume> {
    return this.startingPoint(feed, BACKLOG_PAGE);
  }

  /** Send the response head, the preamble and the `ready` event (`resume` says where the stream starts). */
  abstract open(req: IncomingMessage, resume: Resume): Promise<void>;

  /**
   * The stream's first event, `ready`: whose stream this is and where it starts (the resume point
   * it was given, or, from now, the newest event's id). A client sees from it that the body gets
   * through (a proxy may pass the head and hold the body) and that the stream is its own user's.
   * `fromNow` is that id when the stream starts from now (SSE also sends it as the frame's `id:`).
   */
  protected readyEvent(resume: Resume): { json: string; fromNow: string | undefined } {
    const fromNow = this.from === undefined && resume.kind === 'live' ? String(resume.lastId) : undefined;
    const lastEventId = fromNow ?? String(this.from ?? this.lastId);
    const json = JSON.stringify({ type: 'ready', at: new Date().toISOString(), data: { userId: this.userId, lastEventId } });
    return { json, fromNow };
  }

  /** Send what the client missed (or a reset), page by page as the socket takes it, then deliver live. */
  async resume(feed: EventFeed, resume: Resume): Promise<void> {
    const jitter = 1 - Math.random() * 0.1;
    this.lifetime = setTimeout(() => this.close('lifetime'), this.settings.lifetimeMs * jitter);
    let more = this.take(resume, BACKLOG_PAGE);
    while (more && !this.closed) {
      // The backlog waits for the socket instead of overfilling it.
      if (this.res.writableNeedDrain) await untilWritable(this.res);
      if (this.closed) break;
      more = this.take({ kind: 'backlog', events: await feed.readVisible(this.userId, this.lastId, BACKLOG_PAGE) }, BACKLOG_PAGE);
    }
    // Live only once the socket has taken the backlog: what is unsent from then on is what the
    // client failed to keep up with (a full page still in the buffer would look like a slow consumer).
    if (this.res.writableNeedDrain) await untilWritable(this.res);
    this.goLive();
  }

  /** Give up before the head was sent (the request then fails with an ordinary problem answer). */
  abandon(): void {
    this.cleanUp(undefined);
  }

  protected send(event: Deliverable): void {
    if (this.closed) return;
    if (this.isLive && this.res.writableLength > this.settings.slowConsumerBytes) {
      // It stopped reading: drop it rather than buffer without bound; it resumes from its last id.
      this.close('slow-consumer');
      return;
    }
    this.write(event);
    this.metrics.delivered(this.path);
  }

  protected overflow(): void {
    this.close('slow-consumer');
  }

  end(reason: EndReason): void {
    // On shutdown the client should come back soon, on another instance.
    if (reason === 'shutdown' && !this.closed && this.res.headersSent) this.writeRetryHint();
    this.close(reason);
  }

  /** Write one event in this stream's format. */
  protected abstract write(event: Deliverable): void;

  /** Write a keep-alive that clients ignore. */
  protected abstract writeHeartbeat(): void;

  /**
   * Start the keep-alive writes once the head is sent. They are ours, not better-sse's, so that
   * they stop the moment the stream closes: after `end()` the socket may take long to report
   * 'close' (a client that stopped reading never does), and a write after the end is an error.
   */
  protected startHeartbeat(): void {
    const heartbeat = setInterval(() => this.writeHeartbeat(), this.settings.heartbeatMs);
    this.onClosed(() => clearInterval(heartbeat));
  }

  /** Remind the client when to reconnect (where the format has a way to say it). */
  protected writeRetryHint(): void {}

  private close(reason: StreamEnd): void {
    if (this.closed) return;
    // Before the head is sent the response is left alone: the request fails with a problem answer.
    // A slow consumer is not reading: ending politely would keep its unsent output (and the
    // socket) for as long as it stalls, so the connection is cut and the buffer freed; so is a
    // stream that failed, whose state is unknown.
    if (this.res.headersSent) {
      if (reason === 'slow-consumer' || reason === 'failed') this.res.destroy();
      else this.res.end();
    }
    this.cleanUp(reason);
  }

  /** `reason` is undefined for a stream that never opened (it is not counted as ended). */
  private cleanUp(reason: StreamEnd | undefined): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.lifetime);
    this.markEnded(reason ?? 'client');
    if (reason) this.metrics.streamsEnded.inc({ reason });
    for (const hook of this.closedHooks.splice(0)) hook();
  }
}
