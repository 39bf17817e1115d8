import type { Pool } from 'pg';
import { TooManyRequestsProblem } from '../errors.js';
import { countHit, uncountHit } from '../store/rate-limits.js';
import { secondsUntil } from './retry-after.js';

/**
 * Failed sign-ins per username per minute, on every instance together
 * (POSTLINE_LOGIN_FAILURES_PER_MIN, default 10; 0 = off). The per-address limit does not stop a
 * guesser who spreads attempts over many addresses; this one does, at the price that the account
 * cannot sign in anew (its open sessions keep working) until the minute is over. Counted in
 * Postgres at each attempt, exactly: concurrent guesses on several instances must not slip through.
 */
export class LoginFailureLimit {
  constructor(
    private readonly pool: Pool,
    private readonly perMinute: number,
  ) {}

  /**
   * Count an attempt as a failure in advance (so that concurrent guesses cannot all slip through
   * before any is counted), or throw 429 when the account's failures are used up.
   */
  async reserve(username: string): Promise<void> {
    if (this.perMinute === 0) return;
    const { hits, resetAt } = await countHit(this.pool, this.key(username), 60_000);
    if (hits > this.perMinute) {
      throw new TooManyRequestsProblem('login-failures', 'Too many failed sign-ins for this account', secondsUntil(resetAt));
    }
  }

  /** The attempt succeeded: it was no failure after all. */
  async succeeded(username: string): Promise<void> {
    if (this.perMinute > 0) await uncountHit(this.pool, this.key(username));
  }

  private key(username: string): string {
    return `login-failures:${username}`;
  }
}
