import { Router } from 'express';
import { requireAuth } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import {
  addMemberBody,
  createThreadBody,
  listThreadsQuery,
  memberParams,
  parse,
  threadParams,
} from '../http/validate.js';
import { addMember, createThread, getThread, listThreads, removeMember } from '../store/threads.js';

export function threadRoutes(ctx: AppContext): Router {
  const router = Router();

  router.post('/threads', async (req, res) => {
    const input = parse(createThreadBody, req.body);
    const { thread, created } = await createThread(ctx.pool, {
      creatorId: requireAuth(req).user.id,
      memberIds: input.members,
      title: input.title ?? null,
      maxMembers: ctx.config.maxThreadMembers,
    });
    res.status(created ? 201 : 200).json({ thread });
  });

  router.get('/threads', async (req, res) => {
    const page = parse(listThreadsQuery, req.query);
    res.json({ threads: await listThreads(ctx.pool, requireAuth(req).user.id, page) });
  });

  router.get('/threads/:threadId', async (req, res) => {
    const { threadId } = parse(threadParams, req.params);
    res.json({ thread: await getThread(ctx.pool, threadId, requireAuth(req).user.id) });
  });

  router.post('/threads/:threadId/members', async (req, res) => {
    const { threadId } = parse(threadParams, req.params);
    const { userId } = parse(addMemberBody, req.body);
    const thread = await addMember(ctx.pool, {
      threadId,
      actorId: requireAuth(req).user.id,
      userId,
      maxMembers: ctx.config.maxThreadMembers,
    });
    res.json({ thread });
  });

  router.delete('/threads/:threadId/members/:userId', async (req, res) => {
    const { threadId, userId } = parse(memberParams, req.params);
    await removeMember(ctx.pool, { threadId, actorId: requireAuth(req).user.id, userId });
    res.status(204).end();
  });

  return router;
}
