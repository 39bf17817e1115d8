import type { IncomingMessage, ServerResponse } from 'node:http';
import cors from 'cors';
import express, { type Express, type RequestHandler } from 'express';
import { authenticate } from './http/auth.js';
import { COOKIE_SESSION_HEADER } from './http/browser-session.js';
import { parseBodies } from './http/body.js';
import type { AppContext } from './http/context.js';
import { API_BASE, refuseUnservedMethods } from './http/operations.js';
import { errorHandler, notFoundHandler } from './http/problem.js';
import { userLimiter } from './http/rate-limit.js';
import { requestLogger } from './http/request-log.js';
import { securityHeaders } from './http/security-headers.js';
import { accountRoutes, signInRoutes } from './routes/accounts.js';
import { clientFileRoutes } from './routes/client-files.js';
import { deliveryHandler } from './routes/delivery.js';
import { healthRoutes } from './routes/health.js';
import { messageRoutes } from './routes/messages.js';
import { openApiRoutes } from './routes/openapi.js';
import { presenceRoutes } from './routes/presence.js';
import { reactionRoutes } from './routes/reactions.js';
import { searchRoutes } from './routes/search.js';
import { threadRoutes } from './routes/threads.js';

/** Old mobile browsers cache POST answers; polls and actions must never be served from a cache. */
const noStore: RequestHandler = (_req, res, next) => {
  res.setHeader('Cache-Control', 'no-store');
  next();
};

type Cors = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

/** CORS for the origins in POSTLINE_CORS_ORIGINS (none: same-origin only). */
function corsFor(origins: string[]): Cors {
  if (origins.length === 0) return (_req, _res, next) => next();
  return cors({
    origin: origins,
    credentials: true,
    allowedHeaders: ['Authorization', 'Content-Type', 'Last-Event-ID', 'Idempotency-Key', COOKIE_SESSION_HEADER],
    exposedHeaders: ['Retry-After', 'RateLimit', 'RateLimit-Policy'],
    maxAge: 600,
  }) as Cors;
}

/**
 * The Express application for everything but delivery. Order matters: security headers and
 * CORS first; then the probes and the browser files (client, demo page, API viewer); then the
 * API (body parsing, sign-in, the OpenAPI document, authentication, per-user rate limit, routes);
 * then 404 and the one error handler.
 */
function createExpressApp(ctx: AppContext, allowOrigins: Cors): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', ctx.config.trustProxy);

  app.use(securityHeaders, allowOrigins);
  app.use(healthRoutes(ctx), clientFileRoutes());

  const v1 = express.Router();
  v1.use(noStore, refuseUnservedMethods, ...parseBodies());
  v1.use(signInRoutes(ctx), openApiRoutes());
  v1.use(authenticate(ctx), userLimiter(ctx.counters, ctx.logger, ctx.config.rateLimitPerMin));
  v1.use(accountRoutes(ctx), threadRoutes(ctx), messageRoutes(ctx), reactionRoutes(ctx), searchRoutes(ctx), presenceRoutes(ctx));
  app.use(API_BASE, v1);

  app.use(notFoundHandler);
  app.use(errorHandler({ logger: ctx.logger, metrics: ctx.metrics, sseRetryMs: ctx.config.sseRetryMs }));
  return app;
}

/**
 * The instance's request handler: every request is logged; the delivery endpoints (streams and
 * long-polls) take the lean path, everything else the Express app.
 */
export function createRequestHandler(ctx: AppContext): (req: IncomingMessage, res: ServerResponse) => void {
  const allowOrigins = corsFor(ctx.config.corsOrigins);
  const app = createExpressApp(ctx, allowOrigins);
  const delivery = deliveryHandler(ctx, allowOrigins);
  const log = requestLogger(ctx.logger);
  return (req, res) => {
    log(req, res);
    if (!delivery(req, res)) app(req, res);
  };
}
