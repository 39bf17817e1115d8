import cors from 'cors';
import express, { type Express, type RequestHandler } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import { redactUrl } from './log.js';
import { accountRoutes, signInRoutes } from './routes/accounts.js';
import { clientFileRoutes } from './routes/client-files.js';
import { healthRoutes } from './routes/health.js';
import { messageRoutes } from './routes/messages.js';
import { presenceRoutes } from './routes/presence.js';
import { reactionRoutes } from './routes/reactions.js';
import { searchRoutes } from './routes/search.js';
import { streamRoutes } from './routes/streams.js';
import { threadRoutes } from './routes/threads.js';
import { authenticate } from './http/auth.js';
import { parseBodies } from './http/body.js';
import type { AppContext } from './http/context.js';
import { errorHandler, notFoundHandler } from './http/problem.js';
import { userLimiter } from './http/rate-limit.js';

/** Old mobile browsers cache POST answers; polls and actions must never be served from a cache. */
const noStore: RequestHandler = (_req, res, next) => {
  res.setHeader('Cache-Control', 'no-store');
  next();
};

/**
 * helmet, tuned per kind of answer. Pages (the demo) get helmet's full set with a CSP for them.
 * API answers (JSON, streams, problems) are never rendered, so they get the headers that matter
 * for them (nosniff, no-referrer, HSTS, framing, a deny-all CSP) and skip the legacy browser
 * headers: at long-poll rates those hundreds of bytes per answer cost more than the answer.
 */
function securityHeaders(): RequestHandler {
  const referrerPolicy = { policy: 'no-referrer' as const };
  const forPages = helmet({
    referrerPolicy,
    // Served over plain HTTP on intranets too: upgrading subresources to HTTPS would break the page.
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
  });
  const forApi = helmet({
    referrerPolicy,
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    crossOriginOpenerPolicy: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
  });
  return (req, res, next) => (req.path.startsWith('/v1/') ? forApi : forPages)(req, res, next);
}

/**
 * The Express application. Order matters: logging, security headers and CORS first; then the
 * probes and the browser files (client and demo page); then the API (body parsing, sign-in,
 * authentication, per-user rate limit, routes); then 404 and the one error handler.
 */
export function createApp(ctx: AppContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', ctx.config.trustProxy);

  app.use(
    pinoHttp({
      logger: ctx.logger,
      // Probes and scrapers hit these every few seconds; their answers say all there is to say.
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/readyz' || req.url === '/metrics' },
      serializers: {
        req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, url: redactUrl(req.url) }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      customLogLevel: (_req, res, error) => (error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
    }),
  );
  app.use(securityHeaders());
  if (ctx.config.corsOrigins.length > 0) {
    app.use(
      cors({
        origin: ctx.config.corsOrigins,
        credentials: true,
        allowedHeaders: ['Authorization', 'Content-Type', 'Last-Event-ID', 'Idempotency-Key'],
        exposedHeaders: ['Retry-After', 'RateLimit', 'RateLimit-Policy'],
        maxAge: 600,
      }),
    );
  }

  app.use(healthRoutes(ctx), clientFileRoutes());

  const v1 = express.Router();
  v1.use(noStore, ...parseBodies());
  const limitUser = userLimiter(ctx.pool, ctx.logger, ctx.config.rateLimitPerMin);
  v1.use(signInRoutes(ctx));
  // The stream endpoints also take the token from ?access_token or the cookie, so they come first.
  v1.use(streamRoutes(ctx, limitUser));
  v1.use(authenticate(ctx.sessions), limitUser);
  v1.use(accountRoutes(ctx), threadRoutes(ctx), messageRoutes(ctx), reactionRoutes(ctx), searchRoutes(ctx), presenceRoutes(ctx));
  app.use('/v1', v1);

  app.use(notFoundHandler);
  app.use(errorHandler(ctx.logger, ctx.metrics, ctx.config.sseRetryMs));
  return app;
}
