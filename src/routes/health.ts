import { Router } from 'express';
import type { AppContext } from '../http/context.js';

/** Liveness and readiness for load balancers and orchestrators; metrics for Prometheus. */
export function healthRoutes(ctx: AppContext): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const ready = await ctx.isReady();
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready' });
  });
  router.get('/metrics', async (_req, res) => {
    const { contentType, body } = await ctx.metrics.render();
    res.type(contentType).send(body);
  });
  return router;
}
