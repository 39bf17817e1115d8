import { Deliverable } from './deliverable.js';

export type SubscriberKind = 'stream' | 'poll';
/** Why a subscriber is ended from outside: its token died, the instance stops, or delivering to it failed. */
export type EndReason = 'revoked' | 'shutdown' | 'failed';

/** Anything on this instance that receives a user's events: an open stream or a waiting poll. */
export interface Subscriber {
  readonly userId: string;
  readonly sessionId: string;
  readonly kind: SubscriberKind;
  /** Bytes written for it that its socket has not taken yet (0 for a poll: it answers all at once). */
  readonly unsentBytes: number;
  deliver(event: Deliverable): void;
  /** Finish at once (see {@link EndReason}). */
  end(reason: EndReason): void;
  /**
   * The instance's one clock (every second or so, see `Realtime`): what is due by time, so that
   * no subscriber keeps timers of its own. `now` is in ms since the epoch.
   */
  tick(now: number): void;
  /** End with `revoked` once the clock passes `at` (ms since the epoch): the token's expiry, which no NOTIFY announces. */
  expireAt(at: number): void;
}

/** How a subscriber that has just registered with the hub starts. */
export type Resume =
  /** Nothing to read: live events after `lastId` bring it up to date. */
  | { kind: 'live'; lastId: number }
  /** The first page of what it missed (more may follow when the page is full). */
  | { kind: 'backlog'; events: Deliverable[] }
  /** The cursor is unknown (ahead of the log) or older than retention: start over from `head`. */
  | { kind: 'reset'; reason: 'unknown-cursor' | 'expired-cursor'; head: number };

/** Where subscribers learn how to resume (the instance's event feed). */
export interface ResumeSource {
  resume(userId: string, from: number | undefined, registeredAt: number, pageSize: number): Promise<Resume>;
}

/** What a subscriber does when the cursor it resumes from is unknown or too old. */
function resetEvent(userId: string, reason: string): Deliverable {
  return Deliverable.ephemeral('reset', { at: new Date().toISOString(), data: { reason } }, [userId]);
}

/**
 * Registered before its backlog is read (so nothing published meanwhile is missed), a
 * subscription holds live events back while the backlog is sent, then flushes them, skipping
 * durable ids already sent, so nothing arrives twice and ids only increase.
 *
 * Catching up is one step for every kind of subscriber: {@link startingPoint} asks the feed where
 * to start, {@link take} hands what that holds (a reset, or a page of the backlog) to `send()`,
 * and {@link goLive} flushes what was held back.
 */
export abstract class Subscription implements Subscriber {
  /** Live events held back while catching up; undefined once live. */
  private held: Deliverable[] | undefined = [];
  /** The last durable id this subscriber has (been) sent. */
  protected lastId: number;
  private expiresAt = Infinity;

  constructor(
    readonly userId: string,
    readonly sessionId: string,
    readonly kind: SubscriberKind,
    /** The client's resume point; undefined: from now. */
    protected readonly from: number | undefined,
    /** The feed's cursor when it registered with the hub: everything after it arrives live. */
    private readonly registeredAt: number,
    /** Most live events held back during catch-up before giving up on this subscriber. */
    private readonly maxHeld: number,
  ) {
    this.lastId = from ?? registeredAt;
  }

  get unsentBytes(): number {
    return 0;
  }

  expireAt(at: number): void {
    this.expiresAt = at;
  }

  tick(now: number): void {
    if (now >= this.expiresAt) this.end('revoked');
  }

  deliver(event: Deliverable): void {
    if (!this.held) {
      this.forward(event);
      return;
    }
    this.held.push(event);
    if (this.held.length > this.maxHeld) {
      this.held = [];
      this.overflow();
    }
  }

  /** Where this subscriber starts: the first `pageSize` events it missed, a reset, or nothing to read. */
  protected startingPoint(feed: ResumeSource, pageSize: number): Promise<Resume> {
    return feed.resume(this.userId, this.from, this.registeredAt, pageSize);
  }

  /**
   * Send what a resume decision (or a further page of the backlog) holds. Returns whether the
   * page was full, so that more of the backlog may follow.
   */
  protected take(resume: Resume, pageSize: number): boolean {
    switch (resume.kind) {
      case 'live':
        this.lastId = resume.lastId;
        return false;
      case 'reset':
        this.lastId = Math.max(this.registeredAt, resume.head);
        this.send(resetEvent(this.userId, resume.reason));
        return false;
      case 'backlog':
        for (const event of resume.events) this.forward(event);
        return resume.events.length >= pageSize;
    }
  }

  /** Send an event unless its durable id was already sent. */
  protected forward(event: Deliverable): void {
    if (event.id !== undefined) {
      if (event.id <= this.lastId) return;
      this.lastId = event.id;
    }
    this.send(event);
  }

  /** The backlog is sent: flush what was held back and deliver live from now on. */
  protected goLive(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const event of held) this.forward(event);
  }

  protected get isLive(): boolean {
    return this.held === undefined;
  }

  protected abstract send(event: Deliverable): void;
  /** Too many live events arrived while catching up. */
  protected abstract overflow(): void;
  abstract end(reason: EndReason): void;
}
