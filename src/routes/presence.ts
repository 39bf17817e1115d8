import { Router } from 'express';
import { requireAuth } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { operations, route } from '../http/operations.js';
import { parse } from '../http/validate.js';
import { presenceOf } from '../store/presence.js';

/** `GET /v1/presence?userIds=1,2`: who of them is online, for the caller's contacts (see store/presence.ts). */
export function presenceRoutes(ctx: AppContext): Router {
  const router = Router();
  route(router, operations.presence, async (req, res) => {
    const { userIds } = parse(operations.presence.query, req.query);
    res.json({ presence: await presenceOf(ctx.pool, requireAuth(req).user.id, userIds) });
  });
  return router;
}
