import type { Deliverable } from './deliverable.js';

export type SubscriberKind = 'stream' | 'poll';
export type EndReason = 'revoked' | 'shutdown';

/** Anything on this instance that receives a user's events: an open stream or a waiting poll. */
export interface Subscriber {
  readonly userId: string;
  readonly sessionId: string;
  readonly kind: SubscriberKind;
  /** Bytes written for it that its socket has not taken yet (0 for a poll: it answers all at once). */
  readonly unsentBytes: number;
  deliver(event: Deliverable): void;
  /** The token was revoked or expired, or the instance stops: finish at once. */
  end(reason: EndReason): void;
}

/**
 * Registered before its backlog is read (so nothing published meanwhile is missed), a
 * subscription holds live events back while the backlog is sent, then flushes them, skipping
 * durable ids already sent, so nothing arrives twice and ids only increase.
 */
export abstract class Subscription implements Subscriber {
  /** Live events held back while catching up; undefined once live. */
  private held: Deliverable[] | undefined = [];

  constructor(
    readonly userId: string,
    readonly sessionId: string,
    readonly kind: SubscriberKind,
    /** The last durable id this subscriber has (been) sent. */
    protected lastId: number,
    /** Most live events held back during catch-up before giving up on this subscriber. */
    private readonly maxHeld: number,
  ) {}

  get unsentBytes(): number {
    return 0;
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
