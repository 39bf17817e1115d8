import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import {
  BadRequestProblem,
  ConflictProblem,
  HeadersTooLargeProblem,
  NotFoundProblem,
  PayloadTooLargeProblem,
  Problem,
  RequestTimeoutProblem,
  ServiceUnavailableProblem,
  SessionEndedError,
  ShuttingDownError,
  SubscriberLimitError,
  TooManyRequestsProblem,
  UnauthorizedProblem,
  UnsupportedMediaTypeProblem,
} from '../errors.js';
import { redactUrl, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { BODY_LIMIT_BYTES } from './body.js';
import { API_HEADER_LINES } from './security-headers.js';

/** Problem types are URNs: stable names, documented in docs/api.md, not links. */
const PROBLEM_BASE = 'urn:postline:problem:';

/** The RFC 9457 JSON text of a problem. */
function problemJson(problem: Problem): string {
  return JSON.stringify({
    type: PROBLEM_BASE + problem.slug,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    ...(problem.extra.errors && { errors: problem.extra.errors }),
  });
}

/** Write an RFC 9457 problem answer. */
function sendProblem(res: ServerResponse, problem: Problem): void {
  for (const [name, value] of Object.entries(problem.extra.headers ?? {})) res.setHeader(name, value);
  const body = problemJson(problem);
  res.statusCode = problem.status;
  res.setHeader('Content-Type', 'application/problem+json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

/**
 * The server's 'clientError' handler: requests Node's HTTP parser refuses before Express sees
 * them (malformed heads, control characters in headers, heads over 16 KiB, unknown methods,
 * heads that never finish, bodies that do not arrive in time) still get a problem+json answer,
 * with the API's security headers (nosniff, the deny-all CSP), then the connection closes.
 */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const problem =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? new HeadersTooLargeProblem()
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new RequestTimeoutProblem()
        : new BadRequestProblem('The request is not well-formed HTTP/1.1.');
  const body = problemJson(problem);
  socket.end(
    `HTTP/1.1 ${problem.status} ${problem.title}\r\nContent-Type: application/problem+json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\n${API_HEADER_LINES}Connection: close\r\n\r\n${body}`,
  );
}

/** Postgres SQLSTATEs and socket errors that mean "the database is not there right now". */
function isDatabaseUnavailable(error: { code?: unknown; message?: unknown }): boolean {
  const code = typeof error.code === 'string' ? error.code : '';
  // 08: connection exceptions; 57P0x: shutdown, crash recovery; 53300: too many connections;
  // 3D000, 28xxx: the database or its role is gone or misconfigured.
  if (/^(08|28)/.test(code) || ['57P01', '57P02', '57P03', '53300', '3D000', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'].includes(code)) {
    return true;
  }
  const message = typeof error.message === 'string' ? error.message : '';
  return /timeout exceeded when trying to connect|Connection terminated|Client has encountered a connection error/i.test(message);
}

/**
 * Database errors a request can cause (not outages, see above), by SQLSTATE class: bad data
 * (22: a value Postgres cannot take), a constraint (23: a race the request lost), a limit of the
 * server (54), a transaction that must be retried (40: serialization failure, deadlock), a
 * statement that ran out of time or resources (57014, 53). None of them is a 500.
 */
function databaseProblem(code: string): Problem | undefined {
  if (code === '22021') return new BadRequestProblem('The request contains characters that cannot be stored.');
  if (code.startsWith('22') || code.startsWith('54')) return new BadRequestProblem('The request contains a value the database cannot process.');
  if (code.startsWith('23')) return new ConflictProblem('The request conflicts with a concurrent change; retry it.');
  if (code.startsWith('40') || code.startsWith('53') || code === '57014') {
    return new ServiceUnavailableProblem('The database is busy; retry shortly.');
  }
  return undefined;
}

/** Map what the stack throws (our problems and domain errors, body-parser errors, database errors) to a problem. */
function toProblem(error: unknown): Problem | undefined {
  if (error instanceof Problem) return error;
  if (error instanceof ShuttingDownError) return new ServiceUnavailableProblem('This instance is shutting down; reconnect to another.');
  if (error instanceof SessionEndedError) return new UnauthorizedProblem('The access token was revoked or has expired.', true);
  if (error instanceof SubscriberLimitError) {
    const what = error.kind === 'stream' ? 'open streams' : 'waiting polls';
    return new TooManyRequestsProblem(error.kind === 'stream' ? 'streams' : 'polls', `At most ${error.cap} ${what} per user`, 5);
  }
  if (typeof error !== 'object' || error === null) return undefined;
  const failure = error as { type?: unknown; status?: unknown; code?: unknown; message?: unknown };
  switch (failure.type) {
    case 'entity.parse.failed':
      return new BadRequestProblem('The body is not well-formed JSON.');
    case 'entity.verify.failed':
      return new BadRequestProblem('The body is not valid UTF-8.');
    case 'entity.too.large':
      return new PayloadTooLargeProblem(BODY_LIMIT_BYTES);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new UnsupportedMediaTypeProblem('Send the body in UTF-8.');
    case 'request.aborted':
    case 'request.size.invalid':
    case 'parameters.too.many':
      return new BadRequestProblem('The body could not be read.');
  }
  if (isDatabaseUnavailable(failure)) return new ServiceUnavailableProblem('The database is unavailable; retry shortly.');
  // SQLSTATEs are five characters; validation refuses bad input first, and what slips through is
  // still the request's fault (or the database's load), not a bug of ours.
  if (typeof failure.code === 'string' && /^[0-9A-Z]{5}$/.test(failure.code)) {
    const problem = databaseProblem(failure.code);
    if (problem) return problem;
  }
  if (typeof failure.status === 'number' && failure.status >= 400 && failure.status < 500) {
    return new BadRequestProblem('The request could not be processed.');
  }
  return undefined;
}

export const notFoundHandler: RequestHandler = () => {
  throw new NotFoundProblem('No such route.');
};

/**
 * EventSource gives up for good on any error status; it reconnects (with its Last-Event-ID) only
 * after a 200 event stream ends. So a client that asks for an event stream is told "not now" as
 * an empty stream carrying `retry:`.
 */
function sendRetryLater(res: ServerResponse, retryMs: number): void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache, no-transform' });
  res.end(`retry: ${retryMs}\n\n`);
}

/** The `retry:` hint for a stream refused at the per-user cap: as long as the 429's Retry-After. */
const STREAM_CAP_RETRY_MS = 5000;

export interface ErrorAnswers {
  logger: Logger;
  metrics: Metrics;
  /** The `retry:` hint for event-stream clients meeting a server-side failure. */
  sseRetryMs: number;
}

/**
 * Answer a failed request: every failure leaves as problem+json, never a stack trace or an HTML
 * page; except that an event-stream client meeting a 5xx, or refused at the per-user cap of
 * streams, gets `retry:` and a close (overload: EventSource comes back later, where a 429 would
 * end it for good). A request whose body was not read (refused before it) closes its connection:
 * what is left of the body is not waited for. Shared by the Express app's error handler and the
 * lean delivery path.
 */
export function answerError(error: unknown, req: IncomingMessage, res: ServerResponse, answers: ErrorAnswers): void {
  const problem = toProblem(error);
  if (problem instanceof TooManyRequestsProblem) answers.metrics.rateLimited.inc({ limit: problem.limit });
  if (!problem || problem.status >= 500) {
    const path = redactUrl(req.url?.split('?')[0] ?? '');
    answers.logger.error({ err: error, method: req.method, path }, problem ? `request failed (${problem.status}): ${problem.detail}` : 'request failed');
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (req.headers.accept?.includes('text/event-stream')) {
    if (!problem || problem.status >= 500) return sendRetryLater(res, answers.sseRetryMs);
    if (error instanceof SubscriberLimitError && error.kind === 'stream') return sendRetryLater(res, Math.max(answers.sseRetryMs, STREAM_CAP_RETRY_MS));
  }
  if (!req.complete) res.setHeader('Connection', 'close');
  sendProblem(res, problem ?? new Problem(500, 'internal', 'Internal error', 'Something went wrong on our side.'));
}

/** The Express app's one error handler (see {@link answerError}). */
export function errorHandler(answers: ErrorAnswers): ErrorRequestHandler {
  return (error, req, res, _next) => answerError(error, req, res, answers);
}
