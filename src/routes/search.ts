import { Router } from 'express';
import { requireAuth } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { operations, route } from '../http/operations.js';
import { parse } from '../http/validate.js';
import { searchMessages } from '../store/search.js';

/** `GET /v1/search?q=&threadId=&limit=&before=`: full-text search over the caller's threads. */
export function searchRoutes(ctx: AppContext): Router {
  const router = Router();
  route(router, operations.search, async (req, res) => {
    const query = parse(operations.search.query, req.query);
    res.json(await searchMessages(ctx.pool, { userId: requireAuth(req).user.id, ...query }));
  });
  return router;
}
