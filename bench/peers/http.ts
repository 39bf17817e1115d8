/**
 * The HTTP side both peers share, as a tutorial writes it: Express 5, a token lookup per request,
 * express-rate-limit with its memory store (per process; the same budget as postline's default,
 * 600 per user per minute), JSON bodies, and `POST /v1/threads/:id/messages` (`{body}` → 201
 * `{message}`) persisted by `insertMessage`, then handed to `delivered` (the peer's fan-out).
 */
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import type pg from 'pg';
import { insertMessage, userOf } from './store.js';

export function peerApi(pool: pg.Pool, options: { notify?: string; delivered?: (threadId: string, envelope: { data: unknown }) => void }): Express {
  const app = express();
  app.get('/healthz', (_req, res) => {
    res.send('ok');
  });
  app.use('/v1', async (req: Request, res: Response, next: NextFunction) => {
    const userId = await userOf(pool, req.headers.authorization);
    if (!userId) {
      res.status(401).json({ error: 'unauthorized' });
      return;
    }
    res.locals.userId = userId;
    next();
  });
  app.use('/v1', rateLimit({ windowMs: 60_000, limit: 600, keyGenerator: (_req, res) => res.locals.userId as string, standardHeaders: 'draft-8', legacyHeaders: false }));
  app.use(express.json());
  app.post('/v1/threads/:threadId/messages', async (req, res) => {
    const body = (req.body as { body?: unknown } | undefined)?.body;
    if (typeof body !== 'string' || body.length === 0) {
      res.status(400).json({ error: 'body must be a non-empty string' });
      return;
    }
    const message = await insertMessage(pool, req.params.threadId, res.locals.userId, body, options.notify);
    if (!message) {
      res.status(404).json({ error: 'no such thread' });
      return;
    }
    const envelope = JSON.parse(message.envelope) as { data: unknown };
    options.delivered?.(req.params.threadId, envelope);
    res.status(201).json({ message: envelope.data });
  });
  return app;
}
