import { eventLogBounds } from '../store/events.js';
import { Deliverable } from './deliverable.js';
import type { EventFeed } from './event-feed.js';

/** How a subscriber that has just registered with the hub starts. */
export type Resume =
  /** Nothing to read: live events after `lastId` bring it up to date. */
  | { kind: 'live'; lastId: number }
  /** The first page of what it missed (more may follow when the page is full). */
  | { kind: 'backlog'; events: Deliverable[] }
  /** The cursor is unknown (ahead of the log) or older than retention: start over from `head`. */
  | { kind: 'reset'; reason: 'unknown-cursor' | 'expired-cursor'; head: number };

/**
 * Decide how to resume after `from`. Called after the subscriber registered with the hub, with
 * the feed's cursor at that moment: everything after that cursor reaches the subscriber live.
 */
export async function resumeAfter(
  feed: EventFeed,
  userId: string,
  from: number | undefined,
  cursorAtRegistration: number,
  pageSize: number,
): Promise<Resume> {
  if (from === undefined) {
    // "From now": after everything committed before this request, even what this instance has
    // not dispatched yet.
    const { head } = await eventLogBounds(feed.pool);
    return { kind: 'live', lastId: Math.max(head, cursorAtRegistration) };
  }
  if (from === cursorAtRegistration) return { kind: 'live', lastId: from };
  // A recent cursor (the usual reconnect or poll) is served from memory, with no query at all.
  const inMemory = feed.holds(from);
  const events = await feed.readVisible(userId, from, pageSize);
  if (!inMemory) {
    // Read the bounds after the page: a retention prune that could have removed part of the
    // page has then certainly moved pruned_through past `from`.
    const { head, prunedThrough } = await eventLogBounds(feed.pool);
    if (from > head) return { kind: 'reset', reason: 'unknown-cursor', head };
    if (from < prunedThrough) return { kind: 'reset', reason: 'expired-cursor', head };
  }
  return events.length ? { kind: 'backlog', events } : { kind: 'live', lastId: from };
}

export function resetEvent(userId: string, reason: string): Deliverable {
  return Deliverable.ephemeral('reset', { at: new Date().toISOString(), data: { reason } }, [userId]);
}
