import type { Deliverable } from './deliverable.js';
import type { EventFeed } from './event-feed.js';
import { resetEvent, resumeAfter } from './resume.js';
import { Subscription, type EndReason } from './subscriber.js';

/** Most events in one long-poll answer. */
const POLL_BATCH = 100;

export type PollOutcome =
  | { kind: 'events'; events: Deliverable[]; cursor: number }
  /** The token was revoked (or expired) while the poll waited. */
  | { kind: 'revoked' }
  /** The client left; there is no one to answer. */
  | { kind: 'cancelled' };

/**
 * One waiting long-poll. Like a stream it registers with the hub before reading its backlog; it
 * answers at once when the backlog has events, else with the first live event (ephemeral ones
 * too) or at the timeout. The cursor it answers with is as far as it may safely go: past
 * everything this instance has delivered when nothing was left out.
 */
export class PollWaiter extends Subscription {
  private readonly collected: Deliverable[] = [];
  private settle: ((outcome: PollOutcome) => void) | undefined;
  private answerScheduled = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    userId: string,
    sessionId: string,
    private readonly from: number,
    private readonly cursorAtRegistration: number,
    /** The feed's current cursor (everything up to it has been dispatched). */
    private readonly deliveredUpTo: () => number,
  ) {
    super(userId, sessionId, 'poll', from, POLL_BATCH * 10);
  }

  wait(feed: EventFeed, timeoutMs: number): Promise<PollOutcome> {
    const outcome = new Promise<PollOutcome>((resolve) => (this.settle = resolve));
    void this.start(feed, timeoutMs).catch(() => this.answer());
    return outcome;
  }

  /** The client went away: settle without events, so the poll leaves the hub and its presence ends. */
  cancel(): void {
    this.finish({ kind: 'cancelled' });
  }

  private async start(feed: EventFeed, timeoutMs: number): Promise<void> {
    const resume = await resumeAfter(feed, this.userId, this.from, this.cursorAtRegistration, POLL_BATCH + 1);
    if (resume.kind === 'live') this.lastId = resume.lastId;
    if (resume.kind === 'reset') {
      this.lastId = Math.max(this.cursorAtRegistration, resume.head);
      this.collected.push(resetEvent(this.userId, resume.reason));
    }
    if (resume.kind === 'backlog') for (const event of resume.events) this.forward(event);
    this.goLive();
    if (this.collected.length > 0) this.answer();
    else if (this.settle) this.timer = setTimeout(() => this.answer(), timeoutMs);
  }

  protected send(event: Deliverable): void {
    this.collected.push(event);
    // Answer on the next turn, so that the rest of a batch being dispatched comes along.
    if (this.isLive && this.settle && !this.answerScheduled) {
      this.answerScheduled = true;
      setImmediate(() => this.answer());
    }
  }

  protected overflow(): void {
    this.answer();
  }

  end(reason: EndReason): void {
    if (reason === 'revoked') this.finish({ kind: 'revoked' });
    else this.answer();
  }

  private answer(): void {
    const events = this.collected.slice(0, POLL_BATCH);
    const truncated = this.collected.length > POLL_BATCH;
    const lastDurable = events.findLast((event) => event.id !== undefined)?.id;
    // Without truncation, every event this user may see up to the feed's cursor is in hand.
    const cursor = truncated ? (lastDurable ?? this.from) : Math.max(this.lastId, this.deliveredUpTo());
    this.finish({ kind: 'events', events, cursor });
  }

  private finish(outcome: PollOutcome): void {
    clearTimeout(this.timer);
    const settle = this.settle;
    this.settle = undefined;
    settle?.(outcome);
  }
}
