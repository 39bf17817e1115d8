import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import type { DeliveryPath, Metrics, StreamEnd } from '../metrics.js';
import type { Deliverable } from './deliverable.js';
import type { EventFeed } from './event-feed.js';
import { Subscription, type EndReason, type Resume } from './subscriber.js';
import type { WireBytes, WriteBatch } from './wire.js';

export interface StreamSettings {
  /** Server-side lifetime of a stream; it closes (with jitter, up to 10% earlier) so proxies never cut it. */
  lifetimeMs: number;
  /** A stream that has written nothing for this long gets a keep-alive write. */
  heartbeatMs: number;
  /** The period of the instance's clock, which drives heartbeats, lifetimes and expiries. */
  clockMs: number;
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
  /** The route's headers for the head (the format adds its own). */
  headers: OutgoingHttpHeaders;
  settings: StreamSettings;
  metrics: Metrics;
  /** The instance's batch of corked sockets (see {@link WriteBatch}). */
  writes: WriteBatch;
}

/** Events per page of a backlog: what a stream may write before it waits for its socket (≤ 1.6 MB). */
const BACKLOG_PAGE = 100;
/** Live events a stream may hold back while sending its backlog. */
const MAX_HELD = 10_000;

/** Resolves once `output` takes more (or has closed), leaving no listener behind. */
function untilWritable(output: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      output.off('drain', done);
      output.off('close', done);
      resolve();
    };
    output.on('drain', done);
    output.on('close', done);
  });
}

/**
 * An open event stream of one user (SSE or NDJSON). It is registered with the hub before its
 * backlog is read, sends the backlog with back-pressure, then goes live. It ends when the client
 * leaves, after its lifetime, when it cannot keep up, when its token is revoked, or on shutdown.
 */
export abstract class Stream extends Subscription {
  private closed = false;
  /** When its lifetime is over (ms since the epoch); set once the stream has opened. */
  private closeAt = Infinity;
  /** Whether the clock drives keep-alive writes (once the head is sent). */
  private beating = false;
  /** Whether anything was written since the clock's last tick. */
  private wrote = false;
  /** Clock ticks since the last write. */
  private quietTicks = 0;
  /**
   * Where the body goes once the head is sent: the socket itself, each write one HTTP/1.1 chunk
   * built once per instance (see {@link WireBytes}). Undefined while the response has no socket
   * of its own (a pipelined request waiting its turn): then bytes go through the response.
   */
  private socket: Socket | undefined;
  private chunked = false;
  private readonly writes: WriteBatch;
  private closedHook: (() => void) | undefined;
  /** Set while the stream is being prepared: settles prepare() should the stream end meanwhile. */
  private endedWhilePreparing: ((reason: StreamEnd) => void) | undefined;

  protected readonly settings: StreamSettings;
  /** The route's headers for the head (see {@link StreamInit}). */
  protected readonly headers: OutgoingHttpHeaders;
  private readonly metrics: Metrics;
  /** The wire format, for the delivery metrics. */
  protected abstract readonly path: DeliveryPath;

  constructor(
    protected readonly res: ServerResponse,
    init: StreamInit,
  ) {
    super(init.userId, init.sessionId, 'stream', init.from, init.registeredAt, MAX_HELD);
    this.settings = init.settings;
    this.headers = init.headers;
    this.metrics = init.metrics;
    this.writes = init.writes;
    res.on('close', () => this.cleanUp('client'));
  }

  override get unsentBytes(): number {
    return this.res.writableLength;
  }

  /** Run `hook` (one) once when the stream has closed, whatever the cause. */
  onClosed(hook: () => void): void {
    if (this.closed) hook();
    else this.closedHook = hook;
  }

  /**
   * Decide how this stream starts. Called after registering with the hub and before the response
   * head is sent, so that "from now" means before the client sees the stream, and a failure is
   * still an ordinary problem answer. Should the stream end first (shutdown, revocation, the
   * client left), it settles with the reason at once, whatever the reading of the backlog waits for.
   */
  prepare(feed: EventFeed): Promise<Resume | StreamEnd> {
    return new Promise((resolve, reject) => {
      this.endedWhilePreparing = resolve;
      this.startingPoint(feed, BACKLOG_PAGE)
        .then(resolve, reject)
        .finally(() => (this.endedWhilePreparing = undefined));
    });
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
    this.closeAt = Date.now() + this.settings.lifetimeMs * jitter;
    let more = this.take(resume, BACKLOG_PAGE);
    const output = this.socket ?? this.res;
    while (more && !this.closed) {
      // The backlog waits for the socket instead of overfilling it.
      if (output.writableNeedDrain) await untilWritable(output);
      if (this.closed) break;
      more = this.take({ kind: 'backlog', events: await feed.readVisible(this.userId, this.lastId, BACKLOG_PAGE) }, BACKLOG_PAGE);
    }
    // Live only once the socket has taken the backlog: what is unsent from then on is what the
    // client failed to keep up with (a full page still in the buffer would look like a slow consumer).
    if (output.writableNeedDrain) await untilWritable(output);
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

  /** One event in this stream's format. */
  protected abstract wireOf(event: Deliverable): WireBytes;

  /** A keep-alive that clients ignore. */
  protected abstract readonly heartbeat: WireBytes;

  /**
   * The head and preamble are written (through the response, which sends the head): from now on
   * the body goes straight to the socket, and the clock keeps the stream alive. Keep-alives stop
   * the moment the stream closes: after `end()` the socket may take long to report 'close' (a
   * client that stopped reading never does), and a write after the end is an error.
   */
  protected beginBody(): void {
    const socket = this.res.socket;
    if (socket) {
      this.socket = socket;
      this.chunked = this.res.chunkedEncoding;
    }
    this.beating = true;
  }

  /** Write bytes every stream of the instance sends alike (during a feed batch, into a corked socket). */
  protected put(bytes: WireBytes): void {
    this.wrote = true;
    const socket = this.socket;
    if (!socket) {
      this.res.write(bytes.body);
      return;
    }
    this.writes.cork(socket);
    socket.write(this.chunked ? bytes.chunk : bytes.body);
  }

  private write(event: Deliverable): void {
    this.put(this.wireOf(event));
  }

  /** Remind the client when to reconnect (where the format has a way to say it). */
  protected writeRetryHint(): void {}

  /** The clock: the token's expiry, the end of the lifetime, and a keep-alive after a quiet spell. */
  override tick(now: number): void {
    super.tick(now);
    if (this.closed) return;
    if (now >= this.closeAt) {
      this.close('lifetime');
      return;
    }
    if (!this.beating) return;
    if (this.wrote) {
      this.wrote = false;
      this.quietTicks = 0;
    } else if (++this.quietTicks * this.settings.clockMs >= this.settings.heartbeatMs) {
      this.put(this.heartbeat);
      this.wrote = false;
      this.quietTicks = 0;
    }
  }

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
    this.endedWhilePreparing?.(reason ?? 'client');
    if (reason) this.metrics.streamsEnded.inc({ reason });
    const hook = this.closedHook;
    this.closedHook = undefined;
    hook?.();
  }
}
