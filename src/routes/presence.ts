import { Router } from 'express';
import { requireAuth } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { parse, presenceQuery } from '../http/validate.js';
import { presenceOf } from '../store/presence.js';

/** `GET /v1/presence?userIds=1,2`: who of them is online, for users who share a thread with the caller. */
export function presenceRoutes(ctx: AppContext): Router {
  const router = Router();
  router.get('/presence', async (req, res) => {
    const { userIds } = parse(presenceQuery, req.query);
    res.json({ presence: await presenceOf(ctx.pool, requireAuth(req).user.id, userIds) });
  });
  return router;
}
