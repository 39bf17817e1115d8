import type { Pool } from 'pg';
import { findSession, type AuthenticatedSession } from '../store/sessions.js';

interface Entry {
  session: AuthenticatedSession;
  /** Reused without a lookup until then. */
  until: number;
  /** Known to be a valid token until then (for the per-address failure limit, see find()). */
  knownUntil: number;
}

/** Beyond this many remembered tokens (either kind), spent entries are swept on the next insert. */
const SWEEP_AT = 10_000;
/** How long a token that was valid counts as known after its last lookup. */
const KNOWN_MS = 10 * 60_000;
/** How long a token that matched no session is answered 401 without a lookup. */
const UNKNOWN_MS = 60_000;

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
 *
 * Tokens that matched no session are remembered too, for a minute: a flood of made-up tokens
 * costs one lookup each at most (a token that is unknown now never becomes valid: tokens are
 * 256 random bits chosen by the server).
 */
export class SessionCache {
  private readonly entries = new Map<string, Entry>();
  private readonly unknown = new Map<string, number>();

  /**
   * @param ttlMs - How long a looked-up session is reused; 0 turns the reuse off. Default 1000.
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
   * `beforeLookup` runs when a lookup is due for a token not known to be valid (it may throw to
   * refuse the request: the per-address failure limit).
   */
  async find(
    tokenHash: Buffer,
    lookup: () => Promise<AuthenticatedSession | undefined> = () => findSession(this.pool, tokenHash),
    beforeLookup: () => void = () => {},
  ): Promise<AuthenticatedSession | undefined> {
    const key = tokenHash.toString('base64');
    const now = Date.now();
    const entry = this.entries.get(key);
    if (entry && entry.until > now && entry.session.expiresAt.getTime() > now && this.isTrusted()) return entry.session;
    if ((this.unknown.get(key) ?? 0) > now) return undefined;
    if (!(entry && entry.knownUntil > now)) beforeLookup();
    const session = await lookup();
    if (this.entries.size + this.unknown.size >= SWEEP_AT) this.sweep(now);
    if (session) {
      const reusable = this.ttlMs > 0 && this.isTrusted();
      this.entries.set(key, { session, until: reusable ? now + this.ttlMs : 0, knownUntil: now + KNOWN_MS });
    } else {
      this.entries.delete(key);
      this.unknown.set(key, now + UNKNOWN_MS);
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
    for (const [key, entry] of this.entries) if (entry.knownUntil <= now) this.entries.delete(key);
    for (const [key, until] of this.unknown) if (until <= now) this.unknown.delete(key);
    // A flood of made-up tokens within a minute: forgetting them costs lookups, which the per-address limit bounds.
    if (this.unknown.size >= SWEEP_AT) this.unknown.clear();
  }
}
