import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { Pool } from 'pg';
import { readVisibleEventsAfter } from '../store/events.js';
import { Deliverable } from './deliverable.js';
import { resetEvent, resumeAfter } from './resume.js';
import { Subscription, type EndReason } from './subscriber.js';

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
  cursorAtRegistration: number;
  /** The client's resume point; undefined: from now. */
  from: number | undefined;
  settings: StreamSettings;
}

const BACKLOG_PAGE = 500;
/** Live events a stream may hold back while sending its backlog. */
const MAX_HELD = 10_000;

/**
 * An open event stream of one user (SSE or NDJSON). It is registered with the hub before its
 * backlog is read, sends the backlog with back-pressure, then goes live. It ends when the client
 * leaves, after its lifetime, when it cannot keep up, when its token is revoked, or on shutdown.
 */
export abstract class Stream extends Subscription {
  private closed = false;
  private lifetime: NodeJS.Timeout | undefined;
  private readonly closedHooks: Array<() => void> = [];

  private readonly cursorAtRegistration: number;
  private readonly from: number | undefined;
  protected readonly settings: StreamSettings;

  constructor(
    protected readonly res: ServerResponse,
    init: StreamInit,
  ) {
    super(init.userId, init.sessionId, 'stream', init.from ?? init.cursorAtRegistration, MAX_HELD);
    this.cursorAtRegistration = init.cursorAtRegistration;
    this.from = init.from;
    this.settings = init.settings;
    res.once('close', () => this.cleanUp());
  }

  /** Run `hook` once when the stream has closed, whatever the cause. */
  onClosed(hook: () => void): void {
    if (this.closed) hook();
    else this.closedHooks.push(hook);
  }

  /** Send what the client missed after `from` (or a reset), then deliver live. */
  async resume(pool: Pool): Promise<void> {
    const jitter = 1 - Math.random() * 0.1;
    this.lifetime = setTimeout(() => this.close(), this.settings.lifetimeMs * jitter);
    const resume = await resumeAfter(pool, this.userId, this.from, this.cursorAtRegistration, BACKLOG_PAGE);
    if (resume.kind === 'reset') {
      this.lastId = Math.max(this.cursorAtRegistration, resume.head);
      this.send(resetEvent(this.userId, resume.reason));
    }
    if (resume.kind === 'backlog') {
      let rows = resume.rows;
      while (!this.closed) {
        for (const row of rows) this.forward(Deliverable.fromRow(row));
        if (rows.length < BACKLOG_PAGE) break;
        // The backlog waits for the socket instead of overfilling it.
        if (this.res.writableNeedDrain) await Promise.race([once(this.res, 'drain'), once(this.res, 'close')]);
        rows = await readVisibleEventsAfter(pool, this.userId, this.lastId, BACKLOG_PAGE);
      }
    }
    this.goLive();
  }

  protected send(event: Deliverable): void {
    if (this.closed) return;
    if (this.isLive && this.res.writableLength > this.settings.slowConsumerBytes) {
      // It stopped reading: drop it rather than buffer without bound; it resumes from its last id.
      this.close();
      return;
    }
    this.write(event);
  }

  protected overflow(): void {
    this.close();
  }

  end(_reason: EndReason): void {
    this.close();
  }

  /** Write one event in this stream's format. */
  protected abstract write(event: Deliverable): void;

  protected close(): void {
    if (this.closed) return;
    this.res.end();
    this.cleanUp();
  }

  private cleanUp(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.lifetime);
    for (const hook of this.closedHooks.splice(0)) hook();
  }
}
