import type { LimitName } from './metrics.js';

/** One field-level complaint of a 400 answer. */
export interface FieldError {
  path: string;
  message: string;
}

/**
 * An error that is answered as an RFC 9457 problem. Handlers throw these; the one error handler
 * (http/problem.ts) turns them into `application/problem+json`.
 */
export class Problem extends Error {
  override name = 'Problem';
  constructor(
    readonly status: number,
    /** Short slug naming the kind of problem; becomes the `type` URI. */
    readonly slug: string,
    readonly title: string,
    readonly detail: string,
    readonly extra: { errors?: FieldError[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
  }
}

/** The first complaint, for curl users who read `detail` only; the rest are in `errors`. */
function describeFieldErrors(errors: FieldError[]): string {
  const [first] = errors;
  if (!first) return 'The request is not valid.';
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more, see errors)` : '';
  return `${first.path}: ${first.message}${more}.`;
}

export class ValidationProblem extends Problem {
  constructor(errors: FieldError[], detail = describeFieldErrors(errors)) {
    super(400, 'validation', 'Invalid request', detail, { errors });
  }
}

export class BadRequestProblem extends Problem {
  constructor(detail: string) {
    super(400, 'bad-request', 'Bad request', detail);
  }
}

export class UnauthorizedProblem extends Problem {
  constructor(detail = 'A valid access token is required.', tokenGiven = false) {
    super(401, 'unauthorized', 'Unauthorized', detail, {
      headers: { 'WWW-Authenticate': tokenGiven ? 'Bearer error="invalid_token"' : 'Bearer' },
    });
  }
}

export class ForbiddenProblem extends Problem {
  constructor(detail: string) {
    super(403, 'forbidden', 'Forbidden', detail);
  }
}

export class NotFoundProblem extends Problem {
  constructor(detail = 'No such resource.') {
    super(404, 'not-found', 'Not found', detail);
  }
}

export class MethodNotAllowedProblem extends Problem {
  constructor(method: string, allowed: string[]) {
    super(405, 'method-not-allowed', 'Method not allowed', `${method} is not served here; this path takes ${allowed.join(', ')}.`, {
      headers: { Allow: allowed.join(', ') },
    });
  }
}

export class ConflictProblem extends Problem {
  constructor(detail: string) {
    super(409, 'conflict', 'Conflict', detail);
  }
}

export class PayloadTooLargeProblem extends Problem {
  constructor(limitBytes: number) {
    super(413, 'payload-too-large', 'Payload too large', `Request bodies are limited to ${limitBytes} bytes.`);
  }
}

export class UnsupportedMediaTypeProblem extends Problem {
  constructor(detail = 'Send application/json, application/x-www-form-urlencoded or text/plain holding JSON.') {
    super(415, 'unsupported-media-type', 'Unsupported media type', detail);
  }
}

export class RequestTimeoutProblem extends Problem {
  constructor() {
    super(408, 'request-timeout', 'Request timeout', 'The request head did not arrive in time.');
  }
}

export class HeadersTooLargeProblem extends Problem {
  constructor() {
    super(431, 'headers-too-large', 'Request header fields too large', 'The request line and headers are limited to 16 KiB.');
  }
}

export class TooManyRequestsProblem extends Problem {
  /** `detail` says which limit; the wait (also in `Retry-After`) is added to it. */
  constructor(
    /** Which limit was hit (for the rate-limited metric). */
    readonly limit: LimitName,
    detail: string,
    retryAfterSeconds: number,
  ) {
    super(429, 'rate-limited', 'Too many requests', `${detail}; retry in ${retryAfterSeconds} s.`, {
      headers: { 'Retry-After': String(retryAfterSeconds) },
    });
  }
}

export class ServiceUnavailableProblem extends Problem {
  constructor(detail = 'The service is not ready; retry shortly.') {
    super(503, 'unavailable', 'Service unavailable', detail, { headers: { 'Retry-After': '2' } });
  }
}

/*
 * Errors of the inner layers (the real-time side, the stores): they say what went wrong, not which
 * HTTP answer that is; the one error handler (http/problem.ts) maps them.
 */

/** The instance is draining: no new streams or polls. */
export class ShuttingDownError extends Error {
  override name = 'ShuttingDownError';
  constructor() {
    super('this instance is shutting down');
  }
}

/** A user already has as many open streams (or waiting polls) on this instance as allowed. */
export class SubscriberLimitError extends Error {
  override name = 'SubscriberLimitError';
  constructor(
    readonly kind: 'stream' | 'poll',
    readonly cap: number,
  ) {
    super(`at most ${cap} ${kind === 'stream' ? 'open streams' : 'waiting polls'} per user`);
  }
}

/** The session ended (revoked or expired) while its request was being served. */
export class SessionEndedError extends Error {
  override name = 'SessionEndedError';
  constructor() {
    super('the session ended');
  }
}
