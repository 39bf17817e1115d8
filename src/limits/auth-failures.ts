import { ipKeyGenerator } from 'express-rate-limit';
import { TooManyRequestsProblem } from '../errors.js';
import { secondsUntil } from './retry-after.js';

const WINDOW_MS = 60_000;
/** Beyond this many addresses, spent windows are swept on the next failure. */
const SWEEP_AT = 10_000;

/**
 * Failed token checks per client address (POSTLINE_AUTH_FAILURES_PER_MIN, default 60; 0 = off),
 * counted in memory on each instance: it stands in front of the database, so it must not cost
 * the database anything itself. An address past the limit gets 429 for the rest of the minute
 * instead of a session lookup, for tokens this instance does not know to be valid; a known
 * token still works (see SessionCache), so clients sharing an address with a guesser keep
 * going. Windows are a minute, aligned to the clock. IPv6 addresses count by their /56 network.
 */
export class AuthFailureLimit {
  private readonly windows = new Map<string, { resetAt: number; failures: number }>();

  constructor(private readonly perMinute: number) {}

  /** Throw 429 when `address` has used up its failures this minute. */
  check(address: string): void {
    if (this.perMinute === 0) return;
    const window = this.windows.get(ipKeyGenerator(address));
    if (window && window.resetAt > Date.now() && window.failures >= this.perMinute) {
      throw new TooManyRequestsProblem('auth-failures', 'Too many failed authentications from this address', secondsUntil(new Date(window.resetAt)));
    }
  }

  /** A token from `address` was not accepted. */
  failed(address: string): void {
    if (this.perMinute === 0) return;
    const now = Date.now();
    const key = ipKeyGenerator(address);
    let window = this.windows.get(key);
    if (!window || window.resetAt <= now) {
      if (this.windows.size >= SWEEP_AT) for (const [other, { resetAt }] of this.windows) if (resetAt <= now) this.windows.delete(other);
      window = { resetAt: (Math.floor(now / WINDOW_MS) + 1) * WINDOW_MS, failures: 0 };
      this.windows.set(key, window);
    }
    window.failures++;
  }
}
