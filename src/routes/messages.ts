import { Router } from 'express';
import { BadRequestProblem, NotFoundProblem } from '../errors.js';
import { requireAuth } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { operations, route } from '../http/operations.js';
import { parse } from '../http/validate.js';
import { listMessages } from '../store/messages.js';
import { markSeen } from '../store/threads.js';
import { setTyping } from '../store/typing.js';

export function messageRoutes(ctx: AppContext): Router {
  const router = Router();

  route(router, operations.listMessages, async (req, res) => {
    const { threadId } = parse(operations.listMessages.params, req.params);
    const page = parse(operations.listMessages.query, req.query);
    res.json(await listMessages(ctx.pool, { threadId, viewerId: requireAuth(req).user.id, ...page }));
  });

  route(router, operations.sendMessage, async (req, res) => {
    const timer = ctx.metrics.sendLatency.startTimer();
    res.once('finish', () => timer({ status: res.statusCode }));
    const { threadId } = parse(operations.sendMessage.params, req.params);
    const input = parse(operations.sendMessage.body, req.body);
    const headerKey = req.get('Idempotency-Key');
    const key = headerKey === undefined ? undefined : parse(operations.sendMessage.headers['Idempotency-Key'].schema, headerKey, 'Idempotency-Key');
    if (key !== undefined && input.clientId !== undefined && key !== input.clientId) {
      throw new BadRequestProblem('Idempotency-Key and clientId differ; send one of them.');
    }
    const result = await ctx.sendQueue.send({
      threadId,
      senderId: requireAuth(req).user.id,
      body: input.body,
      clientId: input.clientId ?? key ?? null,
    });
    if (result.outcome === 'not_found') throw new NotFoundProblem('No such thread.');
    res.status(result.outcome === 'created' ? 201 : 200).json({ message: result.message });
  });

  route(router, operations.typing, async (req, res) => {
    const { threadId } = parse(operations.typing.params, req.params);
    const { typing } = parse(operations.typing.body, req.body);
    if (!(await setTyping(ctx.pool, threadId, requireAuth(req).user.id, typing))) throw new NotFoundProblem('No such thread.');
    res.status(204).end();
  });

  route(router, operations.seen, async (req, res) => {
    const { threadId } = parse(operations.seen.params, req.params);
    const { upTo } = parse(operations.seen.body, req.body);
    await markSeen(ctx.pool, { threadId, userId: requireAuth(req).user.id, upTo });
    res.status(204).end();
  });

  return router;
}
