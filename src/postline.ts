import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.js';
import { createPool } from './db/pool.js';
import { createAdminHandler, createRequestHandler } from './app.js';
import { capConnections, serverOptions } from './http/connections.js';
import { answerClientError } from './http/problem.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { AuthFailureLimit } from './limits/auth-failures.js';
import { SharedCounters } from './limits/shared-counters.js';
import { Maintenance } from './maintenance.js';
import { HostIdentity } from './auth/host-identity.js';
import { SessionCache } from './auth/session-cache.js';
import { Realtime } from './realtime/realtime.js';
import { WebhookDispatcher } from './push/webhook-dispatcher.js';
import { pendingJobCount, setPushSettings } from './store/push-jobs.js';
import { SendQueue } from './store/send-queue.js';

/** The HTTP port cannot be had; its message is the one line the operator needs. */
export class ListenError extends Error {
  override name = 'ListenError';
}

function listenError(error: NodeJS.ErrnoException, config: Config): Error {
  const where = `port ${config.port} on ${config.host}`;
  switch (error.code) {
    case 'EADDRINUSE':
      return new ListenError(`${where} is already in use: set PORT to a free port, or stop what listens there`);
    case 'EACCES':
      return new ListenError(`${where} needs privileges this process lacks: set PORT to 1024 or above`);
    case 'EADDRNOTAVAIL':
      return new ListenError(`HOST=${config.host} is not an address of this machine`);
    default:
      return error;
  }
}

export interface Instance {
  /** Base URL the instance serves on, e.g. http://127.0.0.1:3000 */
  url: string;
  server: http.Server;
  /** Base URL of the admin listener (POSTLINE_ADMIN_PORT: the probes and metrics only), if there is one. */
  adminUrl: string | undefined;
  /** The instance's real-time side (its hub and feed are inspected by tests and metrics). */
  realtime: Realtime;
  maintenance: Maintenance;
  /** This instance's Prometheus registry (GET /metrics). */
  metrics: Metrics;
  /** The rate limits' local counts (flushed to the shared totals periodically; tests flush at will). */
  counters: SharedCounters;
  /** Graceful stop: no new connections, in-flight requests finish, then the pool closes. */
  stop(): Promise<void>;
}

/** The admin listener serves probes and metrics only: a few connections are plenty. */
const ADMIN_MAX_CONNECTIONS = 64;
/** Readiness is asked by every probe and load balancer; one answer serves all who ask within this long. */
const READINESS_REUSE_MS = 250;

/**
 * Whether the instance can serve: `up()` (not draining, LISTEN connection up) and Postgres
 * answers. Concurrent and quick successive probes share one `SELECT 1`, so a flood of `/readyz`
 * (it needs no token) costs the database nothing more.
 */
function readiness(up: () => boolean, pool: ReturnType<typeof createPool>): () => Promise<boolean> {
  let last: { at: number; answer: Promise<boolean> } | undefined;
  return () => {
    if (!up()) return Promise.resolve(false);
    if (last && performance.now() - last.at < READINESS_REUSE_MS) return last.answer;
    const answer = pool.query('SELECT 1').then(
      () => true,
      () => false,
    );
    last = { at: performance.now(), answer };
    return answer;
  };
}

/** Listen on `port` and `host`; resolves with the address bound, as a URL to open and as said in the log. */
async function listen(server: http.Server, port: number, host: string): Promise<{ url: string; bound: string; address: AddressInfo }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const everywhere = shown === '0.0.0.0' || shown === '[::]';
  const url = `http://${everywhere ? '127.0.0.1' : shown}:${address.port}`;
  return { url, bound: `${shown}:${address.port}${everywhere ? ' (every address of this machine)' : ''}`, address };
}

/**
 * Start one postline instance on an already migrated database: the pool, the send queue, the
 * HTTP server. Several instances on one database act as one service.
 */
export async function startInstance(config: Config, logger: Logger, databaseUrl: string): Promise<Instance> {
  const pool = createPool(databaseUrl, { size: config.dbPoolSize, statementTimeoutMs: config.statementTimeoutMs }, logger);
  const sendQueue = new SendQueue(pool);
  // The metrics read the hub at scrape time, and the real-time side reports to the metrics.
  const metrics: Metrics = new Metrics({
    unsentStreamBytes: () => realtime.hub.unsentBytes(),
    pendingWebhookJobs: () => pendingJobCount(pool),
    openConnections: () => new Promise((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count)))),
  });
  const sessions: SessionCache = new SessionCache(pool, () => realtime.listening, config.sessionCacheMs);
  const realtime = new Realtime(config, pool, databaseUrl, metrics, sessions, logger);
  await realtime.start();
  const counters = new SharedCounters(pool, config.rateLimitFlushMs, logger);
  counters.start();
  const maintenance = new Maintenance(pool, config.retentionMs, logger, () => realtime.feed.refreshBounds());
  maintenance.start();
  // Every instance says whether messages get push jobs from now on (all share one configuration).
  const webhooks = config.webhook && new WebhookDispatcher(pool, config.webhook, metrics, logger);
  await (webhooks ? webhooks.start() : setPushSettings(pool, false, 0));
  /** Set by stop(): the instance is draining and must get no new work. */
  let draining = false;
  const ctx = {
    config,
    pool,
    logger,
    sendQueue,
    realtime,
    metrics,
    sessions,
    authFailures: new AuthFailureLimit(config.authFailuresPerMin),
    hostIdentity: config.hostIdentity && new HostIdentity(config.hostIdentity, pool, logger),
    counters,
    isReady: readiness(() => !draining && realtime.listening, pool),
  };
  const handle = createRequestHandler(ctx);
  const server = http.createServer(serverOptions(config.connections), (req, res) => {
    // While draining, every answer closes its connection: keep-alive clients move to another
    // instance, and the server is not kept open by connections that never go idle.
    if (draining) res.setHeader('Connection', 'close');
    handle(req, res);
  });
  const stopCapReports = capConnections(server, config.connections.maxConnections, logger, metrics);
  server.on('clientError', answerClientError);
  let listening;
  try {
    listening = await listen(server, config.port, config.host);
  } catch (error) {
    // Put down what already runs, so that nothing complains while the process exits.
    stopCapReports();
    await realtime.stop();
    await maintenance.stop();
    await webhooks?.stop();
    await counters.stop();
    await pool.end();
    throw listenError(error as NodeJS.ErrnoException, config);
  }
  const { url, bound, address } = listening;
  logger.info({ url, address: address.address, port: address.port }, `postline is listening on ${bound}: open ${url}`);
  // The probes on a port of their own: they still answer when the API port is full.
  const admin = config.connections.admin && http.createServer(serverOptions(config.connections), createAdminHandler(ctx));
  let adminUrl: string | undefined;
  if (admin) {
    admin.maxConnections = ADMIN_MAX_CONNECTIONS;
    admin.on('clientError', answerClientError);
    adminUrl = (await listen(admin, config.connections.admin!.port, config.connections.admin!.host)).url;
    logger.info({ url: adminUrl }, 'the admin listener (probes and metrics) is listening');
  }

  return {
    url,
    server,
    adminUrl,
    realtime,
    maintenance,
    metrics,
    counters,
    async stop() {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections go idle whenever their last answer finishes (streams ending, polls
      // answering, in-flight requests completing); close each as soon as it does.
      const closeIdle = setInterval(() => server.closeIdleConnections(), 50);
      server.closeIdleConnections();
      // Streams end (clients resume elsewhere with their last id) and waiting polls answer now.
      await realtime.stop();
      await maintenance.stop();
      await webhooks?.stop();
      await closed;
      clearInterval(closeIdle);
      stopCapReports();
      if (admin) {
        admin.closeAllConnections();
        await new Promise((resolve) => admin.close(resolve));
      }
      await sendQueue.drain();
      await counters.stop();
      await pool.end();
    },
  };
}
