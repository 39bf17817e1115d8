import type { Pool } from 'pg';
import type { SessionCache } from '../auth/session-cache.js';
import type { Logger } from '../log.js';
import { contactsAmong } from '../store/presence.js';
import { Deliverable } from './deliverable.js';
import type { EventFeed } from './event-feed.js';
import type { Hub } from './hub.js';

interface PresenceChange {
  userId: string;
  online: boolean;
}

/** What travels on the ephemeral channel (see sql/003_realtime.sql, sql/005_typing_chunks.sql and store/sessions.ts). */
type EphemeralNotice =
  /** One NOTIFY per part of the audience: large groups do not fit Postgres' 8000-byte payload. */
  | { kind: 'typing'; threadId: string; userId: string; typing: boolean; at: string; audience: string[] }
  /** Presence changes, in batches (sql/009_presence_batch.sql). */
  | { kind: 'presence-changes'; changes: PresenceChange[]; at: string }
  /** One presence change, as instances of the previous version announce it (during a rolling upgrade). */
  | { kind: 'presence'; userId: string; online: boolean; at: string }
  | { kind: 'revoked'; sessionId: string }
  /** Event rows up to `through` were rewritten in the log (a deleted message's copies). */
  | { kind: 'rewritten'; through: number };

/**
 * The notices of the ephemeral channel, which are never stored: typing and presence go to the
 * local subscribers of their audience, revocations end the session's subscribers and forget it,
 * and rewrites of the event log make the feed forget its copies of the rewritten events.
 */
export class EphemeralNotices {
  /** Presence changes waiting for their audience query, in the order they were announced. */
  private readonly presenceQueue: Array<PresenceChange & { at: string }> = [];
  private presenceRunning = false;

  constructor(
    private readonly pool: Pool,
    private readonly hub: Hub,
    private readonly feed: EventFeed,
    private readonly sessions: SessionCache,
    private readonly logger: Logger,
  ) {}

  receive(payload: string): void {
    let notice: EphemeralNotice;
    try {
      notice = JSON.parse(payload) as EphemeralNotice;
    } catch {
      this.logger.warn('ignoring a malformed ephemeral notification');
      return;
    }
    switch (notice.kind) {
      case 'typing': {
        const data = { userId: notice.userId, typing: notice.typing };
        this.hub.dispatch(Deliverable.ephemeral('typing', { threadId: notice.threadId, at: notice.at, data }, notice.audience));
        break;
      }
      case 'presence-changes':
        this.queuePresence(notice.changes.map((change) => ({ ...change, at: notice.at })));
        break;
      case 'presence':
        this.queuePresence([notice]);
        break;
      case 'revoked':
        this.sessions.forget(notice.sessionId);
        this.hub.endSession(notice.sessionId);
        break;
      case 'rewritten':
        this.feed.forgetThrough(notice.through);
        break;
    }
  }

  /**
   * Presence goes to the users here who are contacts of its subject. One query finds the
   * audiences of every change that arrived meanwhile, and changes are dispatched in the order
   * they were announced (queries never overtake each other).
   */
  private queuePresence(changes: Array<PresenceChange & { at: string }>): void {
    this.presenceQueue.push(...changes);
    if (!this.presenceRunning) void this.dispatchPresence();
  }

  private async dispatchPresence(): Promise<void> {
    this.presenceRunning = true;
    while (this.presenceQueue.length > 0) {
      const changes = this.presenceQueue.splice(0);
      const localUsers = this.hub.userIds();
      if (localUsers.length === 0) continue;
      try {
        const audiences = await contactsAmong(this.pool, [...new Set(changes.map((change) => change.userId))], localUsers);
        for (const { userId, online, at } of changes) {
          const audience = audiences.get(userId);
          if (audience) this.hub.dispatch(Deliverable.ephemeral('presence', { at, data: { userId, online } }, audience));
        }
      } catch (error) {
        this.logger.warn({ err: error }, 'delivering presence changes failed');
      }
    }
    this.presenceRunning = false;
  }
}
