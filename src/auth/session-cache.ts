import type { Pool } from 'pg';
import { findSession, type AuthenticatedSession } from '../store/sessions.js';

interface Entry {
  session: AuthenticatedSession;
  until: number;
}

/** Beyond this many remembered tokens, expired entries are swept on the next insert. */
const SWEEP_AT = 10_000;

/**
 * Sessions by token hash, remembered for a moment so that a client polling or sending several
 * times a second costs one lookup per `ttlMs`, not one per request (the lookup was half the work
 * of a long-poll).
 *
 * Revocation stays immediate: logout forgets the session on the instance that served it, the
 * revocation NOTIFY makes every other instance forget it, and entries are only used while that
 * NOTIFY can arrive (`isTrusted`: the LISTEN connection is up; everything is forgotten when it
 * comes back). What this cannot see is a session changed behind postline's back (a row edited in
 * SQL): that takes effect within `ttlMs`. Token expiry is checked on every use.
 */
export class SessionCache {
  private readonly entries = new Map<string, Entry>();

  /**
   * @param ttlMs - How long a looked-up session is reused; 0 turns the cache off. Default 1000.
   * @param isTrusted - Whether revocation notices are arriving right now.
   */
  constructor(
    private readonly pool: Pool,
    private readonly isTrusted: () => boolean,
    private readonly ttlMs = 1000,
  ) {}

  /**
   * The live session of a token hash, or undefined. `lookup` finds it when it is not cached;
   * the default reads our `sessions` table (a host JWT brings its own: verify and map the user).
   */
  async find(
    tokenHash: Buffer,
    lookup: () => Promise<AuthenticatedSession | undefined> = () => findSession(this.pool, tokenHash),
  ): Promise<AuthenticatedSession | undefined> {
    const key = tokenHash.toString('base64');
    const now = Date.now();
    const entry = this.entries.get(key);
    if (entry && entry.until > now && entry.session.expiresAt.getTime() > now && this.isTrusted()) return entry.session;
    const session = await lookup();
    if (session && this.ttlMs > 0 && this.isTrusted()) {
      if (this.entries.size >= SWEEP_AT) this.sweep(now);
      this.entries.set(key, { session, until: now + this.ttlMs });
    } else {
      this.entries.delete(key);
    }
    return session;
  }

  /** A session was revoked (here, or on another instance). */
  forget(sessionId: string): void {
    for (const [key, entry] of this.entries) if (entry.session.sessionId === sessionId) this.entries.delete(key);
  }

  /** Revocations may have been missed (the LISTEN connection was down): forget everything. */
  clear(): void {
    this.entries.clear();
  }

  private sweep(now: number): void {
    for (const [key, entry] of this.entries) if (entry.until <= now) this.entries.delete(key);
  }
}
