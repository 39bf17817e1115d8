import { Router, type Request, type RequestHandler } from 'express';
import type { SessionCache } from '../auth/session-cache.js';
import { ServiceUnavailableProblem, UnauthorizedProblem } from '../errors.js';
import { authenticate, requireAuth, resolveSession } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { eventCursor, parse, pollQuery, streamQuery } from '../http/validate.js';

const STREAM_TOKEN_SOURCES = { query: true, cookie: true };
const RESUME_PARAMETERS = ['lastEventId', 'last_event_id', 'since'] as const;

/** The resume point of `GET /v1/events`: Last-Event-ID, else ?lastEventId, ?last_event_id, ?since. */
function resumePoint(req: Request): number | undefined {
  const header = req.get('Last-Event-ID');
  if (header !== undefined && header !== '') return parse(eventCursor, header, 'Last-Event-ID');
  for (const name of RESUME_PARAMETERS) {
    const value = req.query[name];
    if (value !== undefined) return parse(eventCursor, value, name);
  }
  return undefined;
}

/**
 * Authenticate a stream (header, ?access_token or cookie). A reconnect (it has a resume point)
 * with a dead token gets 204, which tells EventSource to stop retrying; a first connect gets 401.
 */
function authenticateStream(sessions: SessionCache): RequestHandler {
  return async (req, res, next) => {
    const from = resumePoint(req);
    try {
      req.auth = await resolveSession(sessions, req, STREAM_TOKEN_SOURCES);
    } catch (error) {
      if (error instanceof UnauthorizedProblem && from !== undefined) {
        res.status(204).end();
        return;
      }
      throw error;
    }
    next();
  };
}

/**
 * The delivery endpoints: the SSE/NDJSON stream and the long-poll. They are bounded by the
 * per-user caps of open streams and waiting polls, not by the per-minute request limit: a
 * long-poller re-polls after every answer, and a busy conversation must not throttle delivery.
 */
export function streamRoutes(ctx: AppContext): Router {
  const router = Router();

  router.get('/events', authenticateStream(ctx.sessions), async (req, res) => {
    const { format } = parse(streamQuery, req.query);
    await ctx.realtime.openStream(req, res, { auth: requireAuth(req), from: resumePoint(req), format });
  });

  router.get('/poll', authenticate(ctx.sessions, STREAM_TOKEN_SOURCES), async (req, res) => {
    const { cursor, timeout } = parse(pollQuery, req.query);
    const auth = requireAuth(req);
    if (cursor === undefined) {
      res.json({ events: [], cursor: String(await ctx.realtime.head(auth.user.id)) });
      return;
    }
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
    res.type('application/json').send(`{"events":[${outcome.events.map((event) => event.json).join(',')}],"cursor":"${outcome.cursor}"}`);
  });

  return router;
}
