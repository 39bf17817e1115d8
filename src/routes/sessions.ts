import { Router } from 'express';
import { NotFoundProblem } from '../errors.js';
import { requireAuth } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { operations, route } from '../http/operations.js';
import { parse } from '../http/validate.js';
import { deleteSession, listSessions } from '../store/sessions.js';

/** The caller's sessions: list them (one per device signed in), revoke one (sign a device out). */
export function sessionRoutes(ctx: AppContext): Router {
  const router = Router();

  route(router, operations.listSessions, async (req, res) => {
    const { user, sessionId } = requireAuth(req);
    const sessions = await listSessions(ctx.pool, user.id);
    res.json({ sessions: sessions.map((session) => ({ ...session, current: session.id === sessionId })) });
  });

  route(router, operations.revokeSession, async (req, res) => {
    const { sessionId } = parse(operations.revokeSession.params, req.params);
    if (!(await deleteSession(ctx.pool, sessionId, requireAuth(req).user.id))) throw new NotFoundProblem('No such session.');
    ctx.sessions.forget(sessionId); // other instances forget it on the revocation NOTIFY
    res.status(204).end();
  });

  return router;
}
