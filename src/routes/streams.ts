import { Router, type Request, type RequestHandler } from 'express';
import { UnauthorizedProblem } from '../errors.js';
import { authenticate, requireAuth, resolveSession, type Identities } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { operations, route } from '../http/operations.js';
import { parse, streamQuery } from '../http/validate.js';

const STREAM_TOKEN_SOURCES = { query: true, cookie: true };
const RESUME_PARAMETERS = ['lastEventId', 'last_event_id', 'since'] as const;

/** The resume point of `GET /v1/events`: Last-Event-ID, else ?lastEventId, ?last_event_id, ?since. */
function resumePoint(req: Request): number | undefined {
  const header = req.get('Last-Event-ID');
  if (header !== undefined && header !== '') return parse(operations.events.headers['Last-Event-ID'].schema, header, 'Last-Event-ID');
  for (const name of RESUME_PARAMETERS) {
    const value = req.query[name];
    if (value !== undefined) return parse(operations.events.query.shape[name], value, name);
  }
  return undefined;
}

/**
 * Authenticate a stream (header, ?access_token or cookie). A reconnect (it has a resume point)
 * with a dead token gets 204, which tells EventSource to stop retrying; a first connect gets 401.
 */
function authenticateStream(identities: Identities): RequestHandler {
  return async (req, res, next) => {
    const from = resumePoint(req);
    try {
      req.auth = await resolveSession(identities, req, STREAM_TOKEN_SOURCES);
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

/** The delivery endpoints: the SSE/NDJSON stream and the long-poll. */
export function streamRoutes(ctx: AppContext, limitUser: RequestHandler): Router {
  const router = Router();

  route(router, operations.events, authenticateStream(ctx), limitUser, async (req, res) => {
    const { format } = parse(streamQuery, req.query);
    await ctx.realtime.openStream(req, res, { auth: requireAuth(req), from: resumePoint(req), format });
  });

  route(router, operations.poll, authenticate(ctx, STREAM_TOKEN_SOURCES), limitUser, async (req, res) => {
    const { cursor, timeout } = parse(operations.poll.query, req.query);
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
    // The envelopes are JSON text already: join them rather than parse and re-serialize.
    res.type('application/json').send(`{"events":[${outcome.events.map((event) => event.json).join(',')}],"cursor":"${outcome.cursor}"}`);
  });

  return router;
}
