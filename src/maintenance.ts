import type { Pool } from 'pg';
import type { Logger } from './log.js';
import { pruneEvents } from './store/events.js';
import { deleteFinishedJobs } from './store/push-jobs.js';
import { deleteExpiredHits } from './store/rate-limits.js';
import { deleteStaleLoginFailures } from './store/login-failures.js';
import { deleteExpiredSessions } from './store/sessions.js';
import { deleteStaleTyping } from './store/typing.js';

const PRUNE_BATCH = 5000;
/** Finished push jobs are kept this long (to look into what was sent or failed). */
const FINISHED_JOBS_KEPT_MS = 7 * 24 * 3600_000;

/**
 * Housekeeping every instance runs now and then: retention of the event log (in small batches,
 * so no delete holds locks for long), expired sessions, spent rate-limit windows, old typing
 * states, push jobs finished a week ago. Safe to run on several instances at once.
 */
export class Maintenance {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  /**
   * @param retentionMs - Events older than this are deleted.
   * @param onPruned - Called after events were pruned (the feed stops serving older cursors).
   * @param intervalMs - Time between runs. Defaults to an hour.
   */
  constructor(
    private readonly pool: Pool,
    private readonly retentionMs: number,
    private readonly logger: Logger,
    private readonly onPruned: () => Promise<void>,
    private readonly intervalMs = 3600_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.run(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass; resolves when done. Concurrent calls share the pass in progress. */
  run(): Promise<void> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<void> {
    try {
      let events = 0;
      for (let deleted = PRUNE_BATCH; deleted === PRUNE_BATCH; events += deleted) {
        deleted = await pruneEvents(this.pool, this.retentionMs, PRUNE_BATCH);
      }
      if (events > 0) await this.onPruned();
      const sessions = await deleteExpiredSessions(this.pool);
      const rateLimits = await deleteExpiredHits(this.pool);
      const loginFailures = await deleteStaleLoginFailures(this.pool);
      const typing = await deleteStaleTyping(this.pool);
      const pushJobs = await deleteFinishedJobs(this.pool, FINISHED_JOBS_KEPT_MS);
      this.logger.info({ events, sessions, rateLimits, loginFailures, typing, pushJobs }, 'maintenance pass done');
    } catch (error) {
      this.logger.warn({ err: error }, 'maintenance pass failed');
    }
  }
}
