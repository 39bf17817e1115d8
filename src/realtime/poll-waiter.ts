import type { Logger } from '../log.js';
import type { Deliverable } from './deliverable.js';
import type { EventFeed } from './event-feed.js';
import { Subscription, type EndReason } from './subscriber.js';

/** Most events in one long-poll answer. */
const POLL_BATCH = 100;

export type PollOutcome =
  | { kind: 'events'; events: Deliverable[]; cursor: number }
  /** The token was revoked (or expired) while the poll waited. */
  | { kind: 'revoked' }
  /** Its backlog could not be read, or delivering to it failed: the client retries with its cursor. */
  | { kind: 'unavailable' }
  /** The client left; there is no one to answer. */
  | { kind: 'cancelled' };

/** A user whose events come at most this many coalescing windows apart is in a busy conversation. */
export const BUSY_WINDOWS = 4;

export interface PollSettings {
  /** How long to wait for the first event. */
  timeoutMs: number;
  /**
   * In a busy conversation, how long to wait after the first live event for more before
   * answering (0: never; otherwise the answer goes on the next turn, with the rest of the feed's batch).
   */
  coalesceMs: number;
  /** When the user's previous poll answer with events left (performance.now()), if recently. */
  lastAnswerAt: number | undefined;
}

/**
 * One waiting long-poll. Like a stream it registers with the hub before reading its backlog; it
 * answers at once when the backlog has events, else with the first live event (ephemeral ones
 * too) or at the timeout.
 *
 * The cursor it answers with never passes an event the answer does not carry: only a live,
 * complete answer vouches for everything the feed has dispatched (every event for this user up to
 * the feed's cursor is in hand then); an answer given before the waiter is live (shutdown,
 * overflow) or cut at the batch size vouches for no more than the last event it carries.
 */
export class PollWaiter extends Subscription {
  private readonly collected: Deliverable[] = [];
  private settle: ((outcome: PollOutcome) => void) | undefined;
  private answerScheduled = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    userId: string,
    sessionId: string,
    cursor: number,
    registeredAt: number,
    /** The feed's current cursor (everything up to it has been dispatched). */
    private readonly deliveredUpTo: () => number,
    private readonly settings: PollSettings,
    private readonly logger: Logger,
  ) {
    super(userId, sessionId, 'poll', cursor, registeredAt, POLL_BATCH * 10);
  }

  wait(feed: EventFeed): Promise<PollOutcome> {
    const outcome = new Promise<PollOutcome>((resolve) => (this.settle = resolve));
    this.start(feed).catch((error: unknown) => {
      this.logger.warn({ err: error }, 'reading a long-poll backlog failed');
      this.finish({ kind: 'unavailable' });
    });
    return outcome;
  }

  /** The client went away: settle without events, so the poll leaves the hub and its presence ends. */
  cancel(): void {
    this.finish({ kind: 'cancelled' });
  }

  private async start(feed: EventFeed): Promise<void> {
    // One more than an answer holds, to know whether the answer is cut short.
    this.take(await this.startingPoint(feed, POLL_BATCH + 1), POLL_BATCH + 1);
    this.goLive();
    if (this.collected.length > 0) this.answer();
    else if (this.settle) this.timer = setTimeout(() => this.answer(), this.settings.timeoutMs);
  }

  protected send(event: Deliverable): void {
    this.collected.push(event);
    // Answer a little later, so that the rest of a batch being dispatched comes along; in a busy
    // conversation (this event came soon after the last answer), wait a few ms for more.
    if (this.isLive && this.settle && !this.answerScheduled) {
      this.answerScheduled = true;
      const { coalesceMs, lastAnswerAt } = this.settings;
      if (coalesceMs > 0 && lastAnswerAt !== undefined && performance.now() - lastAnswerAt < BUSY_WINDOWS * coalesceMs) {
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.answer(), coalesceMs);
      } else {
        setImmediate(() => this.answer());
      }
    }
  }

  protected overflow(): void {
    this.answer();
  }

  end(reason: EndReason): void {
    if (reason === 'revoked') this.finish({ kind: 'revoked' });
    else if (reason === 'failed') this.finish({ kind: 'unavailable' });
    else this.answer();
  }

  private answer(): void {
    const events = this.collected.slice(0, POLL_BATCH);
    const complete = this.isLive && this.collected.length <= POLL_BATCH;
    const lastCarried = events.findLast((event) => event.id !== undefined)?.id ?? this.from!;
    this.finish({ kind: 'events', events, cursor: complete ? Math.max(this.lastId, this.deliveredUpTo()) : lastCarried });
  }

  private finish(outcome: PollOutcome): void {
    clearTimeout(this.timer);
    const settle = this.settle;
    this.settle = undefined;
    settle?.(outcome);
  }
}
