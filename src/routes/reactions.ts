import { Router } from 'express';
import { requireAuth } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { operations, route } from '../http/operations.js';
import { MAX_REACTIONS_PER_MESSAGE, parse } from '../http/validate.js';
import { setReaction } from '../store/reactions.js';

/** `PUT` / `DELETE /v1/threads/:threadId/messages/:messageId/reactions/:emoji`: idempotent, answer the message. */
export function reactionRoutes(ctx: AppContext): Router {
  const router = Router();
  for (const [operation, added] of [
    [operations.addReaction, true],
    [operations.removeReaction, false],
  ] as const) {
    route(router, operation, async (req, res) => {
      const { threadId, messageId, emoji } = parse(operation.params, req.params);
      const ref = { threadId, messageId, userId: requireAuth(req).user.id };
      res.json({ message: await setReaction(ctx.pool, ref, { emoji, added, maxDistinct: MAX_REACTIONS_PER_MESSAGE }) });
    });
  }
  return router;
}
