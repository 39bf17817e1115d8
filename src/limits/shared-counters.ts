import type { Pool } from 'pg';
import type { Logger } from '../log.js';
import { addHits, forgetHits } from '../store/rate-limits.js';

interface Counter {
  /** End of the window the counts belong to (epoch ms). */
  resetAt: number;
  /** Hits of every instance as Postgres knew them at this instance's last flush of the key. */
  known: number;
  /** This instance's hits being written right now. */
  writing: number;
  /** This instance's hits not written yet. */
  pending: number;
}

/**
 * Rate-limit counters shared by every instance, without a round trip per request: hits are
 * counted here, and every `flushMs` one statement adds this instance's new hits to the totals in
 * Postgres and reads back the totals, which include the other instances' hits.
 *
 * Windows are fixed and aligned to the clock (`floor(now / windowMs)`), so instances agree on
 * them without asking each other. The price of counting locally: the hits other instances admit
 * between two flushes are seen late, so a user spreading requests over N instances can get at
 * most what the other N − 1 instances admit for them in one flush interval past the limit. On
 * one instance the count is exact.
 */
export class SharedCounters {
  private readonly counters = new Map<string, Counter>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  /** @param flushMs - How often new hits are added to the shared totals. */
  constructor(
    private readonly pool: Pool,
    private readonly flushMs: number,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.flushMs);
    this.timer.unref();
  }

  /** Stop flushing, after a last flush of what is pending. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  /** Count a hit for `key` in its current `windowMs` window; returns the hits so far and the window's end. */
  hit(key: string, windowMs: number): { totalHits: number; resetTime: Date } {
    const now = Date.now();
    const resetAt = (Math.floor(now / windowMs) + 1) * windowMs;
    let counter = this.counters.get(key);
    if (!counter || counter.resetAt !== resetAt) {
      counter = { resetAt, known: 0, writing: 0, pending: 0 };
      this.counters.set(key, counter);
    }
    counter.pending++;
    return { totalHits: counter.known + counter.writing + counter.pending, resetTime: new Date(resetAt) };
  }

  /** Take back a hit counted in the current window. */
  unhit(key: string): void {
    const counter = this.counters.get(key);
    if (counter && counter.resetAt > Date.now()) counter.pending--;
  }

  /** Forget a key everywhere. */
  async reset(key: string): Promise<void> {
    this.counters.delete(key);
    await forgetHits(this.pool, key);
  }

  /**
   * Add the pending hits to the shared totals and learn the totals. Resolves once every hit
   * counted before the call is written: a flush under way may not hold them, so this one follows it.
   */
  flush(): Promise<void> {
    const current: Promise<void> = (this.flushing ?? Promise.resolve())
      .then(() => this.write())
      .finally(() => {
        if (this.flushing === current) this.flushing = undefined;
      });
    this.flushing = current;
    return current;
  }

  private async write(): Promise<void> {
    const now = Date.now();
    const batch: Array<{ key: string; hits: number; resetAt: Date }> = [];
    for (const [key, counter] of this.counters) {
      if (counter.resetAt <= now) this.counters.delete(key);
      else if (counter.pending !== 0) batch.push({ key, hits: counter.pending, resetAt: new Date(counter.resetAt) });
    }
    if (batch.length === 0) return;
    // Hits counted while the statement runs stay pending, for the next flush.
    for (const { key, hits } of batch) {
      const counter = this.counters.get(key)!;
      counter.pending -= hits;
      counter.writing = hits;
    }
    try {
      const totals = new Map((await addHits(this.pool, batch)).map((total) => [total.key, total]));
      for (const { key, resetAt } of batch) {
        const counter = this.counterOf(key, resetAt);
        if (!counter) continue;
        const total = totals.get(key);
        // A total of another window (the clocks disagree at a boundary) teaches nothing about this one.
        if (total && total.resetAt.getTime() === counter.resetAt) counter.known = total.hits;
        counter.writing = 0;
      }
    } catch (error) {
      for (const { key, resetAt } of batch) {
        const counter = this.counterOf(key, resetAt);
        if (!counter) continue;
        counter.pending += counter.writing;
        counter.writing = 0;
      }
      this.logger.warn({ err: error }, 'writing rate-limit counts failed');
    }
  }

  /** The counter of `key` if it is still the one of the window ending at `resetAt`. */
  private counterOf(key: string, resetAt: Date): Counter | undefined {
    const counter = this.counters.get(key);
    return counter?.resetAt === resetAt.getTime() ? counter : undefined;
  }
}
