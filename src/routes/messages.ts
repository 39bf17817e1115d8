import { Router } from 'express';
import { BadRequestProblem, ForbiddenProblem, NotFoundProblem, ValidationProblem } from '../errors.js';
import { requireAuth } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { operations, route } from '../http/operations.js';
import { parse } from '../http/validate.js';
import { deleteMessage, editMessage, listMessages } from '../store/messages.js';
import { moveMarker } from '../store/receipts.js';
import { setTyping } from '../store/typing.js';

/** Why a send with `replyTo` was refused. */
const REPLY_PROBLEMS = {
  reply_not_found: 'no such message in this thread',
  reply_deleted: 'is a deleted message',
};

/** The one answer to a send in a direct thread between users of whom one blocked the other, whichever did. */
const BLOCKED_DIRECT_THREAD = 'Messages cannot be sent in this conversation.';

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
      replyTo: input.replyTo ?? null,
    });
    if ('message' in result) {
      res.status(result.outcome === 'created' ? 201 : 200).json({ message: result.message });
      return;
    }
    if (result.outcome === 'not_found') throw new NotFoundProblem('No such thread.');
    if (result.outcome === 'blocked') throw new ForbiddenProblem(BLOCKED_DIRECT_THREAD);
    throw new ValidationProblem([{ path: 'replyTo', message: REPLY_PROBLEMS[result.outcome] }]);
  });

  route(router, operations.editMessage, async (req, res) => {
    const { threadId, messageId } = parse(operations.editMessage.params, req.params);
    const { body } = parse(operations.editMessage.body, req.body);
    res.json({ message: await editMessage(ctx.pool, { threadId, messageId, userId: requireAuth(req).user.id }, body) });
  });

  route(router, operations.deleteMessage, async (req, res) => {
    const { threadId, messageId } = parse(operations.deleteMessage.params, req.params);
    await deleteMessage(ctx.pool, { threadId, messageId, userId: requireAuth(req).user.id });
    res.status(204).end();
  });

  route(router, operations.typing, async (req, res) => {
    const { threadId } = parse(operations.typing.params, req.params);
    const { typing } = parse(operations.typing.body, req.body);
    if (!(await setTyping(ctx.pool, threadId, requireAuth(req).user.id, typing))) throw new NotFoundProblem('No such thread.');
    res.status(204).end();
  });

  for (const [operation, marker] of [
    [operations.seen, 'seen'],
    [operations.delivered, 'delivered'],
  ] as const) {
    route(router, operation, async (req, res) => {
      const { threadId } = parse(operation.params, req.params);
      const { upTo } = parse(operation.body, req.body);
      await moveMarker(ctx.pool, marker, { threadId, userId: requireAuth(req).user.id, upTo });
      res.status(204).end();
    });
  }

  return router;
}
