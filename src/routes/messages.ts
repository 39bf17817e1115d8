import { Router } from 'express';
import { BadRequestProblem, NotFoundProblem, ValidationProblem } from '../errors.js';
import { requireAuth } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import {
  clientId,
  deliveredBody,
  editMessageBody,
  listMessagesQuery,
  messageParams,
  parse,
  seenBody,
  sendMessageBody,
  threadParams,
  typingBody,
} from '../http/validate.js';
import { deleteMessage, editMessage, listMessages } from '../store/messages.js';
import { moveMarker } from '../store/receipts.js';
import { setTyping } from '../store/typing.js';

/** Why a send with `replyTo` was refused. */
const REPLY_PROBLEMS = {
  reply_not_found: 'no such message in this thread',
  reply_deleted: 'is a deleted message',
};

export function messageRoutes(ctx: AppContext): Router {
  const router = Router();

  router.get('/threads/:threadId/messages', async (req, res) => {
    const { threadId } = parse(threadParams, req.params);
    const page = parse(listMessagesQuery, req.query);
    res.json(await listMessages(ctx.pool, { threadId, viewerId: requireAuth(req).user.id, ...page }));
  });

  router.post('/threads/:threadId/messages', async (req, res) => {
    const timer = ctx.metrics.sendLatency.startTimer();
    res.once('finish', () => timer({ status: res.statusCode }));
    const { threadId } = parse(threadParams, req.params);
    const input = parse(sendMessageBody, req.body);
    const headerKey = req.get('Idempotency-Key');
    const key = headerKey === undefined ? undefined : parse(clientId, headerKey, 'Idempotency-Key');
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
    throw new ValidationProblem([{ path: 'replyTo', message: REPLY_PROBLEMS[result.outcome] }]);
  });

  router.patch('/threads/:threadId/messages/:messageId', async (req, res) => {
    const { threadId, messageId } = parse(messageParams, req.params);
    const { body } = parse(editMessageBody, req.body);
    res.json({ message: await editMessage(ctx.pool, { threadId, messageId, userId: requireAuth(req).user.id }, body) });
  });

  router.delete('/threads/:threadId/messages/:messageId', async (req, res) => {
    const { threadId, messageId } = parse(messageParams, req.params);
    await deleteMessage(ctx.pool, { threadId, messageId, userId: requireAuth(req).user.id });
    res.status(204).end();
  });

  router.post('/threads/:threadId/typing', async (req, res) => {
    const { threadId } = parse(threadParams, req.params);
    const { typing } = parse(typingBody, req.body);
    if (!(await setTyping(ctx.pool, threadId, requireAuth(req).user.id, typing))) throw new NotFoundProblem('No such thread.');
    res.status(204).end();
  });

  router.post('/threads/:threadId/seen', async (req, res) => {
    const { threadId } = parse(threadParams, req.params);
    const { upTo } = parse(seenBody, req.body);
    await moveMarker(ctx.pool, 'seen', { threadId, userId: requireAuth(req).user.id, upTo });
    res.status(204).end();
  });

  router.post('/threads/:threadId/delivered', async (req, res) => {
    const { threadId } = parse(threadParams, req.params);
    const { upTo } = parse(deliveredBody, req.body);
    await moveMarker(ctx.pool, 'delivered', { threadId, userId: requireAuth(req).user.id, upTo });
    res.status(204).end();
  });

  return router;
}
