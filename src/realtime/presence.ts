import type { Pool } from 'pg';
import type { Logger } from '../log.js';
import {
  addConnections,
  heartbeatInstance,
  removeConnections,
  removeInstance,
  replaceConnections,
  sweepPresence,
} from '../store/presence.js';

export interface PresenceSettings {
  /** After a user's last stream closes, how long they stay online (a quick reconnect does not flap). */
  streamGraceMs: number;
  /** After a user's last poll, how long they stay online ("polled within the last 30 s"). */
  pollGraceMs: number;
  /** An instance silent this long is presumed dead and its users' connections are dropped. */
  instanceTimeoutMs: number;
}

type Change = { kind: 'arrived' | 'left'; userId: string };

interface LocalUser {
  connections: number;
  /** Set while the user has no connection here but is kept online for a grace period. */
  grace: NodeJS.Timeout | undefined;
}

/**
 * This instance's part of presence. Locally it counts each user's open streams and waiting polls;
 * the database only hears of a user arriving here or leaving for good (after the grace period),
 * in batches, and postline_reconcile_presence_many turns that into online/offline announcements. A heartbeat
 * proves the instance alive; every instance sweeps away the connections of dead ones.
 */
export class PresenceTracker {
  private readonly users = new Map<string, LocalUser>();
  private timer: NodeJS.Timeout | undefined;
  /** Changes to write, in order: a user's arrival must never be written after their departure. */
  private readonly changes: Change[] = [];
  private writing = false;

  constructor(
    private readonly pool: Pool,
    private readonly instanceId: string,
    private readonly settings: PresenceSettings,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    await heartbeatInstance(this.pool, this.instanceId);
    this.timer = setInterval(() => void this.tick(), this.settings.instanceTimeoutMs / 3);
    this.timer.unref();
  }

  /** Changes waiting behind the write in progress (tests watch it). */
  get queuedChanges(): number {
    return this.changes.length;
  }

  /** A stream opened or a poll arrived. */
  acquire(userId: string): void {
    const user = this.users.get(userId);
    if (user) {
      user.connections++;
      clearTimeout(user.grace);
      user.grace = undefined;
      return;
    }
    this.users.set(userId, { connections: 1, grace: undefined });
    this.record({ kind: 'arrived', userId });
  }

  /** A stream closed or a poll answered. */
  release(userId: string, kind: 'stream' | 'poll'): void {
    const user = this.users.get(userId);
    if (!user || --user.connections > 0) return;
    clearTimeout(user.grace);
    user.grace = setTimeout(() => {
      this.users.delete(userId);
      this.record({ kind: 'left', userId });
    }, kind === 'stream' ? this.settings.streamGraceMs : this.settings.pollGraceMs);
  }

  /**
   * After the database was unreachable (writes may have failed, or a sweep dropped this
   * instance): make the database's connections of this instance match the local truth again.
   */
  async resync(): Promise<void> {
    await replaceConnections(this.pool, this.instanceId, [...this.users.keys()]);
  }

  /**
   * Stop: forget this instance's connections without announcing anyone offline. Its users are
   * reconnecting to other instances; any who do not are announced by the others' sweep.
   */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    for (const user of this.users.values()) clearTimeout(user.grace);
    this.users.clear();
    await removeInstance(this.pool, this.instanceId);
  }

  private async tick(): Promise<void> {
    try {
      await heartbeatInstance(this.pool, this.instanceId);
      await sweepPresence(this.pool, this.settings.instanceTimeoutMs);
    } catch (error) {
      this.logger.warn({ err: error }, 'presence heartbeat failed');
    }
  }

  private record(change: Change): void {
    this.changes.push(change);
    if (!this.writing) void this.writeChanges();
  }

  /**
   * Write queued changes in order, one statement pair per run of arrivals or of departures (a
   * burst of connects or disconnects goes as one), at most 500 users at a time.
   */
  private async writeChanges(): Promise<void> {
    this.writing = true;
    while (this.changes.length > 0) {
      const kind = this.changes[0]!.kind;
      let run = 1;
      while (run < this.changes.length && run < 500 && this.changes[run]!.kind === kind) run++;
      const userIds = this.changes.splice(0, run).map((change) => change.userId);
      try {
        if (kind === 'left') await removeConnections(this.pool, this.instanceId, userIds);
        else await addConnections(this.pool, this.instanceId, userIds);
      } catch (error) {
        // The database is unreachable; resync() re-registers everyone once the listener is back.
        this.logger.warn({ err: error }, 'recording presence failed');
      }
    }
    this.writing = false;
  }
}
