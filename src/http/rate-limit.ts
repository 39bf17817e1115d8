import type { RequestHandler } from 'express';
import { rateLimit, type Options, type Store } from 'express-rate-limit';
import type { Pool } from 'pg';
import { TooManyRequestsProblem } from '../errors.js';
import type { Logger } from '../log.js';
import type { LimitName } from '../metrics.js';
import { countHit, currentHits, forgetHits, uncountHit } from '../store/rate-limits.js';
import { requireAuth } from './auth.js';

/** An express-rate-limit Store on our own pool: one atomic upsert per request, shared by all instances. */
class PostgresStore implements Store {
  readonly localKeys = false;
  private windowMs = 60_000;

  constructor(
    private readonly pool: Pool,
    readonly prefix: string,
  ) {}

  init(options: Options): void {
    this.windowMs = options.windowMs;
  }

  async increment(key: string) {
    const { hits, resetAt } = await countHit(this.pool, this.prefix + key, this.windowMs);
    return { totalHits: hits, resetTime: resetAt };
  }

  async get(key: string) {
    const current = await currentHits(this.pool, this.prefix + key);
    return current && { totalHits: current.hits, resetTime: current.resetAt };
  }

  decrement(key: string) {
    return uncountHit(this.pool, this.prefix + key);
  }

  resetKey(key: string) {
    return forgetHits(this.pool, this.prefix + key);
  }
}

const passThrough: RequestHandler = (_req, _res, next) => next();

/** Whole seconds until `time`, at least 1 (for Retry-After). */
const secondsUntil = (time: Date) => Math.max(1, Math.ceil((time.getTime() - Date.now()) / 1000));

function limiter(
  pool: Pool,
  logger: Logger,
  options: { name: LimitName; perMinute: number; keyGenerator?: Options['keyGenerator']; detail: string },
): RequestHandler {
  if (options.perMinute === 0) return passThrough;
  return rateLimit({
    windowMs: 60_000,
    limit: options.perMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    store: new PostgresStore(pool, `${options.name}:`),
    logger,
    ...(options.keyGenerator && { keyGenerator: options.keyGenerator }),
    handler: (req, _res, next) => {
      const resetTime = (req as { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const retryAfter = resetTime ? secondsUntil(resetTime) : 60;
      next(new TooManyRequestsProblem(options.name, options.detail, retryAfter));
    },
  });
}

/** Register/login attempts per client IP (POSTLINE_AUTH_RATE_LIMIT_PER_MIN; 0 = off). */
export function authAttemptLimiter(pool: Pool, logger: Logger, perMinute: number): RequestHandler {
  return limiter(pool, logger, {
    name: 'sign-in',
    perMinute,
    detail: 'Too many sign-in attempts from this address; retry later.',
  });
}

/**
 * Failed sign-ins per username per minute, on every instance together
 * (POSTLINE_LOGIN_FAILURES_PER_MIN, default 10; 0 = off). The per-address limit does not stop a
 * guesser who spreads attempts over many addresses; this one does, at the price that the account
 * cannot sign in anew (its open sessions keep working) until the minute is over.
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
      throw new TooManyRequestsProblem('login-failures', 'Too many failed sign-ins for this account; retry later.', secondsUntil(resetAt));
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

/** Requests per signed-in user, on every instance together (POSTLINE_RATE_LIMIT_PER_MIN; 0 = off). */
export function userLimiter(pool: Pool, logger: Logger, perMinute: number): RequestHandler {
  return limiter(pool, logger, {
    name: 'user',
    perMinute,
    keyGenerator: (req) => requireAuth(req).user.id,
    detail: 'Too many requests for this user; retry later.',
  });
}
