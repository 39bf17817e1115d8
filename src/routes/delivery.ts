import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import { ServiceUnavailableProblem, UnauthorizedProblem } from '../errors.js';
import { resolveSession, type Credentials } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { answerError, type ErrorAnswers } from '../http/problem.js';
import { clientAddress, type TrustProxy } from '../http/proxy.js';
import { API_HEADERS } from '../http/security-headers.js';
import { API_BASE, operations } from '../http/operations.js';
import { parse } from '../http/validate.js';

const STREAM_TOKEN_SOURCES = { query: true, cookie: true };
/** The two paths the lean handler takes, as the registry declares them (and documents them in the OpenAPI document). */
const POLL_PATH = API_BASE + operations.poll.path;
const EVENTS_PATH = API_BASE + operations.events.path;
/**
 * The head of every delivery answer: the API's security headers, and no caching (old mobile
 * browsers cache answers; a stream replaces it with its own Cache-Control). Handed to
 * `writeHead` whole rather than set one by one: a response that had setHeader() calls keeps
 * them in an object for its whole life, about 1 KB per open stream.
 */
const DELIVERY_HEADERS: Readonly<Record<string, string>> = Object.freeze({ ...API_HEADERS, 'Cache-Control': 'no-store' });
const RESUME_PARAMETERS = ['lastEventId', 'last_event_id', 'since'] as const;

type Query = Record<string, unknown>;

/** The resume point of `GET /v1/events`: Last-Event-ID, else ?lastEventId, ?last_event_id, ?since. */
function resumePoint(req: IncomingMessage, query: Query): number | undefined {
  const header = req.headers['last-event-id'];
  if (header !== undefined && header !== '') return parse(operations.events.headers['Last-Event-ID'].schema, header, 'Last-Event-ID');
  for (const name of RESUME_PARAMETERS) {
    const value = query[name];
    if (value !== undefined) return parse(operations.events.query.shape[name], value, name);
  }
  return undefined;
}

/**
 * The delivery endpoints, `GET /v1/events` (SSE or NDJSON) and `GET /v1/poll`, served in front of
 * the Express app without its routing and middleware: a long-poller sends one of these after
 * every answer, and routing, body parsing and per-request middleware were most of a poll's cost
 * (see BENCHMARKS.md). They answer as the app does: the API's security headers and CORS, the
 * same token sources, problem+json errors from the one error answerer, the same request log.
 * They are bounded by the per-user caps of open streams and waiting polls, not by the per-minute
 * request limit: a long-poller re-polls after every answer, and a busy conversation must not
 * throttle delivery. Returns whether it took the request; everything else goes to the app.
 */
export function deliveryHandler(ctx: AppContext, cors: (req: IncomingMessage, res: ServerResponse, next: () => void) => void, trust: TrustProxy) {
  const answers: ErrorAnswers = { logger: ctx.logger, metrics: ctx.metrics, sseRetryMs: ctx.config.sseRetryMs };

  /** A stream reconnect (it has a resume point) with a dead token gets 204, which tells EventSource to stop; a first connect 401. */
  async function events(req: IncomingMessage, res: ServerResponse, credentials: Credentials): Promise<void> {
    const from = resumePoint(req, credentials.query);
    let auth;
    try {
      auth = await resolveSession(ctx, credentials, STREAM_TOKEN_SOURCES);
    } catch (error) {
      if (error instanceof UnauthorizedProblem && from !== undefined) {
        res.writeHead(204, DELIVERY_HEADERS).end();
        return;
      }
      throw error;
    }
    const { format } = parse(operations.events.query, credentials.query);
    await ctx.realtime.openStream(req, res, { auth, from, format, headers: DELIVERY_HEADERS });
  }

  async function poll(res: ServerResponse, credentials: Credentials): Promise<void> {
    const auth = await resolveSession(ctx, credentials, STREAM_TOKEN_SOURCES);
    const { cursor, timeout } = parse(operations.poll.query, credentials.query);
    let answer: string;
    if (cursor === undefined) {
      answer = `{"events":[],"cursor":"${await ctx.realtime.head(auth.user.id)}"}`;
    } else {
      const outcome = await ctx.realtime.poll({
        auth,
        cursor,
        timeoutMs: timeout * 1000,
        onClientGone: (cancel) => res.once('close', () => res.writableFinished || cancel()),
      });
      if (outcome.kind === 'cancelled') return;
      if (outcome.kind === 'revoked') throw new UnauthorizedProblem('The access token was revoked or has expired.', true);
      if (outcome.kind === 'unavailable') throw new ServiceUnavailableProblem('The events could not be read; poll again with the same cursor.');
      // The envelopes are JSON text already: join them rather than parse and re-serialize.
      answer = `{"events":[${outcome.events.map((event) => event.json).join(',')}],"cursor":"${outcome.cursor}"}`;
    }
    res.writeHead(200, { ...DELIVERY_HEADERS, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(answer) });
    res.end(answer);
  }

  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'GET') return false;
    const url = req.url ?? '';
    const queryStart = url.indexOf('?');
    const path = queryStart === -1 ? url : url.slice(0, queryStart);
    if (path !== POLL_PATH && path !== EVENTS_PATH) return false;
    cors(req, res, () => {
      const credentials = { headers: req.headers, query: queryStart === -1 ? {} : parseQuery(url.slice(queryStart + 1)), ip: clientAddress(req, trust) };
      (path === POLL_PATH ? poll(res, credentials) : events(req, res, credentials)).catch((error: unknown) => {
        if (!res.headersSent) for (const [name, value] of Object.entries(DELIVERY_HEADERS)) res.setHeader(name, value);
        answerError(error, req, res, answers);
      });
    });
    return true;
  };
}
