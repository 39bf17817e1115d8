import { Router } from 'express';
import { requireAuth } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { operations, route } from '../http/operations.js';
import { CONTACTED, threadCreationLimiter } from '../http/rate-limit.js';
import { parse } from '../http/validate.js';
import { acceptThread, addMember, createThread, getThread, listThreads, removeMember } from '../store/threads.js';

export function threadRoutes(ctx: AppContext): Router {
  const router = Router();

  route(router, operations.createThread, threadCreationLimiter(ctx.counters, ctx.logger, ctx.config.threadsPerHour), async (req, res) => {
    const input = parse(operations.createThread.body, req.body);
    const { thread, created, rejoined } = await createThread(ctx.pool, {
      creatorId: requireAuth(req).user.id,
      memberIds: input.members,
      title: input.title ?? null,
      maxMembers: ctx.config.maxThreadMembers,
    });
    res.locals[CONTACTED] = created || rejoined;
    res.status(created ? 201 : 200).json({ thread });
  });

  route(router, operations.acceptThread, async (req, res) => {
    const { threadId } = parse(operations.acceptThread.params, req.params);
    res.json({ thread: await acceptThread(ctx.pool, threadId, requireAuth(req).user.id) });
  });

  route(router, operations.listThreads, async (req, res) => {
    const page = parse(operations.listThreads.query, req.query);
    res.json({ threads: await listThreads(ctx.pool, requireAuth(req).user.id, page) });
  });

  route(router, operations.getThread, async (req, res) => {
    const { threadId } = parse(operations.getThread.params, req.params);
    res.json({ thread: await getThread(ctx.pool, threadId, requireAuth(req).user.id) });
  });

  route(router, operations.addMember, async (req, res) => {
    const { threadId } = parse(operations.addMember.params, req.params);
    const { userId } = parse(operations.addMember.body, req.body);
    const thread = await addMember(ctx.pool, {
      threadId,
      actorId: requireAuth(req).user.id,
      userId,
      maxMembers: ctx.config.maxThreadMembers,
    });
    res.json({ thread });
  });

  route(router, operations.removeMember, async (req, res) => {
    const { threadId, userId } = parse(operations.removeMember.params, req.params);
    await removeMember(ctx.pool, { threadId, actorId: requireAuth(req).user.id, userId });
    res.status(204).end();
  });

  return router;
}
