import type { Pool } from 'pg';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { eventLogBounds, readEventsAfter, readVisibleEventsAfter } from '../store/events.js';
import { Deliverable } from './deliverable.js';
import type { Hub } from './hub.js';
import type { Resume, ResumeSource } from './subscriber.js';

const BATCH = 1000;


/**
 * This instance's single reader of the event log. A NOTIFY, a reconnect of the listener or the
 * periodic tick wakes it; it reads everything after the last id it delivered, in one query per
 * batch for all local subscribers, and hands each event to the hub. Because event ids commit in
 * increasing order, `id > cursor` never skips one, and a missed NOTIFY only delays delivery.
 *
 * It also keeps the most recent events in memory, so that clients resuming from a recent id
 * (a reconnect, a long-poll) are served without a query.
 */
export class EventFeed implements ResumeSource {
  /** The last event id handed to the hub; every committed event up to it has been delivered. */
  cursor = 0;
  /** Recent events in id order: every event with an id above `floor`, up to `cursor`. */
  private recent: Deliverable[] = [];
  private recentSize = 0;
  private floor = 0;
  /** Events up to here were pruned by retention: older cursors get a reset, even from memory. */
  private prunedThrough = 0;
  private running: Promise<void> | undefined;
  private again = false;
  /** Notified ids not delivered yet, with when their NOTIFY arrived (for the lag metric). */
  private readonly notified = new Map<number, number>();

  /**
   * @param recentBytes - Memory for recent events kept for resuming clients (their JSON text).
   *   Defaults to 16 MiB.
   */
  constructor(
    private readonly pool: Pool,
    private readonly hub: Hub,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly recentBytes = 16 * 1024 * 1024,
  ) {}

  /** Start from the current head: this instance delivers what is committed from now on. */
  async start(): Promise<void> {
    const bounds = await eventLogBounds(this.pool);
    this.cursor = bounds.head;
    this.floor = bounds.head;
    this.prunedThrough = bounds.prunedThrough;
  }

  /** Learn how far retention has pruned (called periodically and after a local prune). */
  async refreshBounds(): Promise<void> {
    this.prunedThrough = (await eventLogBounds(this.pool)).prunedThrough;
  }

  /** The newest committed event id: everything before it, even what this instance has not dispatched yet. */
  async head(): Promise<number> {
    return Math.max(this.cursor, (await eventLogBounds(this.pool)).head);
  }

  /**
   * Decide how a subscriber resumes after `from` (undefined: from now). Called after it registered
   * with the hub, when the feed's cursor was `registeredAt`: everything after that reaches it live.
   * A recent cursor (the usual reconnect or poll) is served from memory, with no query at all.
   */
  async resume(userId: string, from: number | undefined, registeredAt: number, pageSize: number): Promise<Resume> {
    if (from === undefined) return { kind: 'live', lastId: Math.max(await this.head(), registeredAt) };
    if (from === registeredAt) return { kind: 'live', lastId: from };
    const inMemory = this.holds(from);
    const events = await this.readVisible(userId, from, pageSize);
    if (!inMemory) {
      // Read the bounds after the page: a retention prune that could have removed part of the
      // page has then certainly moved pruned_through past `from`.
      const { head, prunedThrough } = await eventLogBounds(this.pool);
      if (from > head) return { kind: 'reset', reason: 'unknown-cursor', head };
      if (from < prunedThrough) return { kind: 'reset', reason: 'expired-cursor', head };
    }
    return events.length ? { kind: 'backlog', events } : { kind: 'live', lastId: from };
  }

  /** Whether every event after `after` (up to the cursor) is in memory, and `after` is not too old. */
  holds(after: number): boolean {
    return after >= this.floor && after >= this.prunedThrough && after <= this.cursor;
  }

  /**
   * The first `limit` events after `after` that `userId` may see, from memory when it holds them,
   * else from the database. (From memory, only events up to the cursor; later ones arrive live.)
   */
  async readVisible(userId: string, after: number, limit: number): Promise<Deliverable[]> {
    if (!this.holds(after)) {
      return (await readVisibleEventsAfter(this.pool, userId, after, limit)).map(Deliverable.fromRow);
    }
    const found: Deliverable[] = [];
    for (let i = this.firstAfter(after); i < this.recent.length && found.length < limit; i++) {
      const event = this.recent[i]!;
      if (event.isFor(userId)) found.push(event);
    }
    return found;
  }

  /** Index of the first recent event with an id above `after` (binary search: ids increase). */
  private firstAfter(after: number): number {
    let low = 0;
    let high = this.recent.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.recent[middle]!.id! <= after) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /**
   * Forget the recent events up to `id`: their rows were rewritten in the log (the copies of a
   * deleted message), so clients resuming before them read them from the database.
   */
  forgetThrough(id: number): void {
    const through = Math.min(id, this.cursor);
    const drop = this.firstAfter(through);
    for (let i = 0; i < drop; i++) this.recentSize -= this.recent[i]!.json.length;
    this.recent.splice(0, drop);
    this.floor = Math.max(this.floor, through);
  }

  private remember(event: Deliverable): void {
    this.recent.push(event);
    this.recentSize += event.json.length;
    // Trim in chunks (to three quarters of the budget), so the array is not shifted on every event.
    if (this.recentSize <= this.recentBytes) return;
    let drop = 0;
    while (drop < this.recent.length && this.recentSize > this.recentBytes * 0.75) this.recentSize -= this.recent[drop++]!.json.length;
    this.floor = this.recent[drop - 1]!.id!;
    this.recent.splice(0, drop);
  }

  /**
   * Read and deliver everything new. Calls while a read runs are folded into one more round, so
   * a burst of notifications costs a few queries, not one each. `latestId` (from a NOTIFY) lets
   * a notification for something already delivered cost nothing.
   */
  catchUp(latestId?: number): Promise<void> {
    if (latestId !== undefined && latestId <= this.cursor) return this.running ?? Promise.resolve();
    if (latestId !== undefined && !this.notified.has(latestId)) this.notified.set(latestId, performance.now());
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.drain().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async drain(): Promise<void> {
    try {
      do {
        this.again = false;
        let rows;
        do {
          rows = await readEventsAfter(this.pool, this.cursor, BATCH);
          const events = rows.map(Deliverable.fromRow);
          // Dispatched before the cursor moves: should dispatching ever fail half-way, the next
          // round hands the events out again, and subscribers skip ids they already have.
          if (events.length > 0) this.hub.dispatchAll(events);
          for (const event of events) {
            this.cursor = event.id!;
            this.remember(event);
            // Kept for resuming clients as JSON only: their frames are rebuilt if ever needed.
            event.forgetWireFormats();
          }
          this.observeLag();
        } while (rows.length === BATCH);
      } while (this.again);
    } catch (error) {
      // The next notification or tick retries from the same cursor; nothing is lost.
      this.logger.warn({ err: error }, 'reading new events failed');
    }
  }

  private observeLag(): void {
    const now = performance.now();
    for (const [id, arrivedAt] of this.notified) {
      if (id > this.cursor) continue;
      this.metrics.notifyLag.observe((now - arrivedAt) / 1000);
      this.notified.delete(id);
    }
  }
}
