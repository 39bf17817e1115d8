import type { Pool } from 'pg';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { eventLogBounds, readEventsAfter } from '../store/events.js';
import { Deliverable } from './deliverable.js';
import type { Hub } from './hub.js';

const BATCH = 1000;

/**
 * This instance's single reader of the event log. A NOTIFY, a reconnect of the listener or the
 * periodic tick wakes it; it reads everything after the last id it delivered, in one query per
 * batch for all local subscribers, and hands each event to the hub. Because event ids commit in
 * increasing order, `id > cursor` never skips one, and a missed NOTIFY only delays delivery.
 */
export class EventFeed {
  /** The last event id handed to the hub; every committed event up to it has been delivered. */
  cursor = 0;
  private running: Promise<void> | undefined;
  private again = false;
  /** Notified ids not delivered yet, with when their NOTIFY arrived (for the lag metric). */
  private readonly notified = new Map<number, number>();

  constructor(
    private readonly pool: Pool,
    private readonly hub: Hub,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  /** Start from the current head: this instance delivers what is committed from now on. */
  async start(): Promise<void> {
    this.cursor = (await eventLogBounds(this.pool)).head;
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
          for (const row of rows) {
            const event = Deliverable.fromRow(row);
            this.cursor = event.id!;
            this.hub.dispatch(event);
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
