import { Router } from 'express';
import { BadRequestProblem, NotFoundProblem } from '../errors.js';
import { requireAuth } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { clientId, listMessagesQuery, parse, seenBody, sendMessageBody, threadParams, typingBody } from '../http/validate.js';
import { listMessages } from '../store/messages.js';
import { markSeen } from '../store/threads.js';
import { setTyping } from '../store/typing.js';

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
    });
    if (result.outcome === 'not_found') throw new NotFoundProblem('No such thread.');
    res.status(result.outcome === 'created' ? 201 : 200).json({ message: result.message });
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
    await markSeen(ctx.pool, { threadId, userId: requireAuth(req).user.id, upTo });
    res.status(204).end();
  });

  return router;
}
