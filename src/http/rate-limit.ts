import type { RequestHandler } from 'express';
import { rateLimit, type Options, type Store } from 'express-rate-limit';
import { TooManyRequestsProblem } from '../errors.js';
import { secondsUntil } from '../limits/retry-after.js';
import type { SharedCounters } from '../limits/shared-counters.js';
import type { Logger } from '../log.js';
import type { LimitName } from '../metrics.js';
import { requireAuth } from './auth.js';

/** An express-rate-limit Store on the instance's shared counters: no round trip per request. */
class SharedCounterStore implements Store {
  readonly localKeys = false;
  private windowMs = 60_000;

  constructor(
    private readonly counters: SharedCounters,
    readonly prefix: string,
  ) {}

  init(options: Options): void {
    this.windowMs = options.windowMs;
  }

  increment(key: string) {
    return this.counters.hit(this.prefix + key, this.windowMs);
  }

  decrement(key: string): void {
    this.counters.unhit(this.prefix + key);
  }

  resetKey(key: string): Promise<void> {
    return this.counters.reset(this.prefix + key);
  }
}

const passThrough: RequestHandler = (_req, _res, next) => next();

function limiter(
  counters: SharedCounters,
  logger: Logger,
  options: {
    name: LimitName;
    /** Requests per window (default: a minute); 0 turns the limit off. */
    limit: number;
    windowMs?: number;
    keyGenerator?: Options['keyGenerator'];
    /** Which answered requests are not counted after all (default: all are). */
    uncounted?: Options['requestWasSuccessful'];
    detail: string;
  },
): RequestHandler {
  if (options.limit === 0) return passThrough;
  return rateLimit({
    windowMs: options.windowMs ?? 60_000,
    limit: options.limit,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    store: new SharedCounterStore(counters, `${options.name}:`),
    logger,
    ...(options.keyGenerator && { keyGenerator: options.keyGenerator }),
    ...(options.uncounted && { skipSuccessfulRequests: true, requestWasSuccessful: options.uncounted }),
    handler: (req, _res, next) => {
      const resetTime = (req as { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      next(new TooManyRequestsProblem(options.name, options.detail, resetTime ? secondsUntil(resetTime) : 60));
    },
  });
}

/** Register/login attempts per client IP (POSTLINE_AUTH_RATE_LIMIT_PER_MIN; 0 = off). */
export function authAttemptLimiter(counters: SharedCounters, logger: Logger, perMinute: number): RequestHandler {
  return limiter(counters, logger, {
    name: 'sign-in',
    limit: perMinute,
    detail: 'Too many sign-in attempts from this address',
  });
}

/**
 * Requests per signed-in user, on every instance together (POSTLINE_RATE_LIMIT_PER_MIN; 0 = off).
 * Actions only: the delivery endpoints are bounded by their concurrency caps instead.
 */
export function userLimiter(counters: SharedCounters, logger: Logger, perMinute: number): RequestHandler {
  return limiter(counters, logger, {
    name: 'user',
    limit: perMinute,
    keyGenerator: (req) => requireAuth(req).user.id,
    detail: 'Too many requests for this user',
  });
}

/** What a thread-creating handler sets on `res.locals` when it started a thread or re-opened one for someone. */
export const CONTACTED = 'contacted';

/**
 * Threads a user starts per hour, on every instance together (POSTLINE_THREADS_PER_HOUR, default
 * 30; 0 = off): each reaches strangers' thread lists (as requests), and twenty groups of 256 took
 * half a second. Only what started a thread (or re-opened a direct one for someone who had left)
 * counts, as the handler says in `res.locals[CONTACTED]`; asking again for an existing direct
 * thread, or a refused request, does not.
 */
export function threadCreationLimiter(counters: SharedCounters, logger: Logger, perHour: number): RequestHandler {
  return limiter(counters, logger, {
    name: 'thread-creations',
    limit: perHour,
    windowMs: 3600_000,
    keyGenerator: (req) => requireAuth(req).user.id,
    uncounted: (_req, res) => res.locals[CONTACTED] !== true,
    detail: `At most ${perHour} new threads per user per hour`,
  });
}
