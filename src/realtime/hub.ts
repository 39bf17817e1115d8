import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Deliverable } from './deliverable.js';
import type { EndReason, Subscriber, SubscriberKind } from './subscriber.js';
import { WriteBatch } from './wire.js';

/** The subscribers of this instance, by user: where every event is handed out locally. */
export class Hub {
  private readonly byUser = new Map<string, Set<Subscriber>>();
  /** The sockets corked while a batch of events is handed out (streams write through it). */
  readonly writes = new WriteBatch();

  constructor(
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  add(subscriber: Subscriber): void {
    let set = this.byUser.get(subscriber.userId);
    if (!set) this.byUser.set(subscriber.userId, (set = new Set()));
    set.add(subscriber);
    this.metrics.subscribers.inc({ kind: subscriber.kind });
  }

  remove(subscriber: Subscriber): void {
    const set = this.byUser.get(subscriber.userId);
    if (!set?.delete(subscriber)) return;
    if (set.size === 0) this.byUser.delete(subscriber.userId);
    this.metrics.subscribers.dec({ kind: subscriber.kind });
  }

  /** How many subscribers of one kind a user has here (for the per-user caps). */
  count(userId: string, kind: SubscriberKind): number {
    let count = 0;
    for (const subscriber of this.byUser.get(userId) ?? []) if (subscriber.kind === kind) count++;
    return count;
  }

  /**
   * Hand an event to the local subscribers of its audience. Each is on its own: one that fails
   * (a socket in a bad state, a bug) is ended, so its client resumes from what it has, and the
   * others still get the event.
   */
  dispatch(event: Deliverable): void {
    for (const userId of event.audience) {
      const set = this.byUser.get(userId);
      if (!set) continue;
      for (const subscriber of set) {
        try {
          subscriber.deliver(event);
        } catch (error) {
          this.logger.error({ err: error, kind: subscriber.kind }, 'delivering an event failed; ending that subscriber');
          subscriber.end('failed');
        }
      }
    }
  }

  /**
   * Hand out a feed batch: the events one socket gets from it leave in one write. Each event is
   * still dispatched on its own, in id order.
   */
  dispatchAll(events: readonly Deliverable[]): void {
    if (events.length === 1) this.dispatch(events[0]!);
    else this.writes.run(() => events.forEach((event) => this.dispatch(event)));
  }

  /** The instance's clock: every subscriber does what is due by time (see Subscriber.tick). */
  tick(now: number): void {
    for (const set of this.byUser.values()) {
      for (const subscriber of set) {
        try {
          subscriber.tick(now);
        } catch (error) {
          this.logger.error({ err: error, kind: subscriber.kind }, 'a subscriber’s timed work failed; ending it');
          subscriber.end('failed');
        }
      }
    }
  }

  /** End every subscriber of a session (its token was revoked). */
  endSession(sessionId: string): void {
    for (const subscriber of this.subscribers()) if (subscriber.sessionId === sessionId) subscriber.end('revoked');
  }

  endAll(reason: EndReason): void {
    for (const subscriber of this.subscribers()) subscriber.end(reason);
  }

  userIds(): string[] {
    return [...this.byUser.keys()];
  }

  sessionIds(): string[] {
    return [...new Set(this.subscribers().map((subscriber) => subscriber.sessionId))];
  }

  /** Output written to this instance's streams that their sockets have not taken yet. */
  unsentBytes(): number {
    let bytes = 0;
    for (const subscriber of this.subscribers()) bytes += subscriber.unsentBytes;
    return bytes;
  }

  private subscribers(): Subscriber[] {
    return [...this.byUser.values()].flatMap((set) => [...set]);
  }
}
