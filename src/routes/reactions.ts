import { Router } from 'express';
import { requireAuth } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { MAX_REACTIONS_PER_MESSAGE, parse, reactionParams } from '../http/validate.js';
import { setReaction } from '../store/reactions.js';

/** `PUT` / `DELETE /v1/threads/:threadId/messages/:messageId/reactions/:emoji`: idempotent, answer the message. */
export function reactionRoutes(ctx: AppContext): Router {
  const router = Router();
  for (const [method, added] of [['put', true], ['delete', false]] as const) {
    router[method]('/threads/:threadId/messages/:messageId/reactions/:emoji', async (req, res) => {
      const { threadId, messageId, emoji } = parse(reactionParams, req.params);
      const ref = { threadId, messageId, userId: requireAuth(req).user.id };
      res.json({ message: await setReaction(ctx.pool, ref, { emoji, added, maxDistinct: MAX_REACTIONS_PER_MESSAGE }) });
    });
  }
  return router;
}
