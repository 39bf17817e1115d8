import type { Pool } from 'pg';
import type { SessionCache } from '../auth/session-cache.js';
import type { Logger } from '../log.js';
import { contactsAmong } from '../store/presence.js';
import { Deliverable } from './deliverable.js';
import type { EventFeed } from './event-feed.js';
import type { Hub } from './hub.js';

/** What travels on the ephemeral channel (see sql/003_realtime.sql, sql/005_typing_chunks.sql and store/sessions.ts). */
type EphemeralNotice =
  /** One NOTIFY per part of the audience: large groups do not fit Postgres' 8000-byte payload. */
  | { kind: 'typing'; threadId: string; userId: string; typing: boolean; at: string; audience: string[] }
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
      case 'presence':
        void this.dispatchPresence(notice);
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

  /** Presence goes to the users here who are contacts of its subject. */
  private async dispatchPresence(notice: { userId: string; online: boolean; at: string }): Promise<void> {
    const localUsers = this.hub.userIds();
    if (localUsers.length === 0) return;
    try {
      const audience = await contactsAmong(this.pool, notice.userId, localUsers);
      this.hub.dispatch(Deliverable.ephemeral('presence', { at: notice.at, data: { userId: notice.userId, online: notice.online } }, audience));
    } catch (error) {
      this.logger.warn({ err: error }, 'delivering a presence change failed');
    }
  }
}
