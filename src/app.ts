import type { IncomingMessage, ServerResponse } from 'node:http';
import cors from 'cors';
import express, { type Express, type RequestHandler } from 'express';
import { authenticate } from './http/auth.js';
import { COOKIE_SESSION_HEADER } from './http/browser-session.js';
import { parseBodies } from './http/body.js';
import type { AppContext } from './http/context.js';
import { API_BASE, operations, refuseUnservedMethods, type Operation } from './http/operations.js';
import { errorHandler, notFoundHandler } from './http/problem.js';
import { untrustedProxyWarning, type TrustProxy } from './http/proxy.js';
import { userLimiter } from './http/rate-limit.js';
import { requestLogger } from './http/request-log.js';
import { securityHeaders } from './http/security-headers.js';
import { accountRoutes, signInRoutes } from './routes/accounts.js';
import { blockRoutes } from './routes/blocks.js';
import { clientFileRoutes } from './routes/client-files.js';
import { deliveryHandler } from './routes/delivery.js';
import { healthRoutes } from './routes/health.js';
import { messageRoutes } from './routes/messages.js';
import { openApiRoutes } from './routes/openapi.js';
import { presenceRoutes } from './routes/presence.js';
import { reactionRoutes } from './routes/reactions.js';
import { searchRoutes } from './routes/search.js';
import { sessionRoutes } from './routes/sessions.js';
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

/** The operations that need no token (register, login, the OpenAPI document), as `METHOD /path` below /v1. */
const PUBLIC_OPERATIONS = new Set(
  (Object.values(operations) as Operation[]).filter((operation) => operation.auth === 'none').map((operation) => `${operation.method.toUpperCase()} ${operation.path}`),
);

/**
 * Authentication and the per-user request limit, run once per request: early (before the body
 * is read) for a request whose token is in its Authorization header, else after body parsing
 * (the token may be an `access_token` field of the body). A request with a bad token or over its
 * user's limit is then refused before anything of its body is read, and its connection closes: a
 * slow body is no longer a way in for someone without a token (issue 15).
 */
function callerGuard(ctx: AppContext): { early: RequestHandler; late: RequestHandler } {
  const guarded = new WeakSet<object>();
  const guard = express.Router();
  guard.use(authenticate(ctx), userLimiter(ctx.counters, ctx.logger, ctx.config.rateLimitPerMin), (req, _res, next) => {
    guarded.add(req);
    next();
  });
  const late: RequestHandler = (req, res, next) => (guarded.has(req) ? next() : guard(req, res, next));
  const early: RequestHandler = (req, res, next) =>
    req.headers.authorization !== undefined && !PUBLIC_OPERATIONS.has(`${req.method} ${req.path}`) ? late(req, res, next) : next();
  return { early, late };
}

/** Express as both listeners use it: trust proxy, no ETags, no X-Powered-By, helmet's headers. */
function baseApp(ctx: AppContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', ctx.config.trustProxy);
  app.use(securityHeaders);
  return app;
}

/** 404 for anything else, and the one error handler. */
function endApp(ctx: AppContext, app: Express): Express {
  app.use(notFoundHandler);
  app.use(errorHandler({ logger: ctx.logger, metrics: ctx.metrics, sseRetryMs: ctx.config.sseRetryMs }));
  return app;
}

/**
 * The Express application for everything but delivery. Order matters: security headers and
 * CORS first; then the probes and the browser files (client, demo page, API viewer); then the
 * API (405 for a known path's wrong method, the caller of a header token checked, body parsing,
 * sign-in, the OpenAPI document, the caller checked otherwise, routes); then 404 and the one
 * error handler.
 */
function createExpressApp(ctx: AppContext, allowOrigins: Cors): Express {
  const app = baseApp(ctx);
  app.use(allowOrigins);
  app.use(healthRoutes(ctx), clientFileRoutes());

  const v1 = express.Router();
  const guard = callerGuard(ctx);
  // A known path's wrong method is 405 before anything else (the token included) is looked at.
  v1.use(noStore, refuseUnservedMethods, guard.early, ...parseBodies());
  v1.use(signInRoutes(ctx), openApiRoutes());
  v1.use(guard.late);
  // accountRoutes first: its DELETE /sessions/current before sessionRoutes' DELETE /sessions/:sessionId.
  v1.use(accountRoutes(ctx), sessionRoutes(ctx), blockRoutes(ctx), threadRoutes(ctx), messageRoutes(ctx), reactionRoutes(ctx), searchRoutes(ctx), presenceRoutes(ctx));
  app.use(API_BASE, v1);
  return endApp(ctx, app);
}

/** The admin listener's handler (POSTLINE_ADMIN_PORT): `/healthz`, `/readyz`, `/metrics`, nothing else. */
export function createAdminHandler(ctx: AppContext): Express {
  const app = baseApp(ctx);
  app.use(healthRoutes(ctx));
  return endApp(ctx, app);
}

/**
 * The instance's request handler: every request is logged; the delivery endpoints (streams and
 * long-polls) take the lean path, everything else the Express app.
 */
export function createRequestHandler(ctx: AppContext): (req: IncomingMessage, res: ServerResponse) => void {
  const allowOrigins = corsFor(ctx.config.corsOrigins);
  const app = createExpressApp(ctx, allowOrigins);
  const trust = app.get('trust proxy fn') as TrustProxy;
  const delivery = deliveryHandler(ctx, allowOrigins, trust);
  const log = requestLogger(ctx.logger);
  const warnOfUntrustedProxy = untrustedProxyWarning(ctx.logger, trust);
  return (req, res) => {
    log(req, res);
    warnOfUntrustedProxy(req);
    if (!delivery(req, res)) app(req, res);
  };
}
