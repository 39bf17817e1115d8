import { ipKeyGenerator } from 'express-rate-limit';
import type { Pool } from 'pg';
import { TooManyRequestsProblem } from '../errors.js';
import { forgetLoginFailures, reserveLogin } from '../store/login-failures.js';
import { secondsUntil } from './retry-after.js';

/**
 * Failed logins per account and client address, on every instance together (Postgres, exact at
 * each attempt: concurrent guesses on several instances must not slip through).
 *
 * From one address an account has `perAddress` failures free (POSTLINE_LOGIN_FAILURES_PER_ADDRESS,
 * default 5; 0 turns all of this off); after that each failure doubles the wait before that
 * address may try again (1 s, 2 s, 4 s … at most 15 min). Over all addresses an account has
 * `perAccount` failures an hour (POSTLINE_LOGIN_FAILURES_PER_ACCOUNT, default 100); past it, only
 * addresses without a recent failure for the account are let through, once each. So nobody can
 * lock an account out (a right password from an address with no recent failures is always
 * checked), one address cannot guess fast, and many addresses get one guess each. Failures are
 * forgotten an hour after the last one; a success forgets that address's failures.
 * IPv6 addresses count by their /56 network, as the per-address request limit does.
 */
export class LoginFailureLimit {
  constructor(
    private readonly pool: Pool,
    private readonly limits: { perAddress: number; perAccount: number },
  ) {}

  /**
   * Count an attempt as a failure in advance (so that concurrent guesses cannot all slip through
   * before any is counted), or throw 429 when this address must wait.
   */
  async reserve(username: string, address: string): Promise<void> {
    if (this.limits.perAddress === 0) return;
    const retryAt = await reserveLogin(this.pool, username, ipKeyGenerator(address), this.limits);
    if (retryAt) {
      throw new TooManyRequestsProblem('login-failures', 'Too many failed sign-ins for this account from this address', secondsUntil(retryAt));
    }
  }

  /** The attempt succeeded: it was no failure after all, and the address is clean for the account. */
  async succeeded(username: string, address: string): Promise<void> {
    if (this.limits.perAddress > 0) await forgetLoginFailures(this.pool, username, ipKeyGenerator(address));
  }
}
