import { Router } from 'express';
import { BadRequestProblem, NotFoundProblem } from '../errors.js';
import { requireAuth } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { operations, route } from '../http/operations.js';
import { parse } from '../http/validate.js';
import { block, listBlocked, unblock } from '../store/blocks.js';

/**
 * Blocking a user: they can no longer add the caller to a thread or message them in a direct
 * thread, and neither sees the other's presence or typing (see docs/api.md, "Contacts, requests
 * and blocks"). Blocks are not announced to the user blocked.
 */
export function blockRoutes(ctx: AppContext): Router {
  const router = Router();

  route(router, operations.block, async (req, res) => {
    const { userId } = parse(operations.block.params, req.params);
    const me = requireAuth(req).user.id;
    if (userId === me) throw new BadRequestProblem('You cannot block yourself.');
    if (!(await block(ctx.pool, me, userId))) throw new NotFoundProblem('No such user.');
    res.status(204).end();
  });

  route(router, operations.unblock, async (req, res) => {
    const { userId } = parse(operations.unblock.params, req.params);
    await unblock(ctx.pool, requireAuth(req).user.id, userId);
    res.status(204).end();
  });

  route(router, operations.listBlocks, async (req, res) => {
    res.json({ users: await listBlocked(ctx.pool, requireAuth(req).user.id) });
  });

  return router;
}
