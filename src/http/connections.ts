import type http from 'node:http';
import type { ConnectionSettings } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

/** Longer than common load balancer idle timeouts, so the balancer closes idle connections first. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** While connections are refused, how often the log says how many. */
const REPORT_EVERY_MS = 10_000;

/**
 * The options of an HTTP server whose requests must arrive in time: a head within
 * `headersTimeoutMs`, the whole request (bodies are at most 64 KiB) within `requestTimeoutMs`,
 * else 408 and the connection closes. A stream's or poll's request is complete once its head is
 * in, so these never cut a stream or a waiting poll, which keep their own lifetimes. Node checks
 * the deadlines every `connectionsCheckingInterval` (its default, 30 s, would let a trickling
 * client stay that much longer); here at most a second, or a quarter of the head's deadline.
 */
export function serverOptions(settings: Pick<ConnectionSettings, 'headersTimeoutMs' | 'requestTimeoutMs'>): http.ServerOptions {
  return {
    headersTimeout: settings.headersTimeoutMs,
    requestTimeout: settings.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(settings.headersTimeoutMs / 4))),
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
  };
}

/**
 * Cap the open connections of `server` (POSTLINE_MAX_CONNECTIONS): past the cap Node closes each
 * new connection as it arrives, before it costs more than its file descriptor for a moment, so
 * the process never runs out of descriptors (and its own Postgres connections, files and probes
 * keep working). When that starts, it is logged at once, then every 10 s while it goes on, with
 * the count; idle keep-alive connections are closed then to make room (their clients reconnect).
 * Returns what stops the reporting.
 */
export function capConnections(server: http.Server, maxConnections: number, logger: Logger, metrics: Metrics): () => void {
  server.maxConnections = maxConnections;
  let refused = 0;
  let report: NodeJS.Timeout | undefined;
  let idleClosedAt = 0;
  server.on('drop', () => {
    metrics.connectionsRefused.inc();
    refused++;
    if (Date.now() - idleClosedAt >= 1000) {
      idleClosedAt = Date.now();
      server.closeIdleConnections();
    }
    if (report) return;
    logger.warn({ maxConnections }, `connection cap reached: ${maxConnections} connections open (POSTLINE_MAX_CONNECTIONS); refusing new ones`);
    report = setInterval(() => {
      if (refused === 0) {
        clearInterval(report);
        report = undefined;
        logger.info({ maxConnections }, 'below the connection cap again: no connection refused for 10 s');
        return;
      }
      logger.warn({ maxConnections, refused }, `refused ${refused} connections in the last 10 s at the connection cap (POSTLINE_MAX_CONNECTIONS)`);
      refused = 0;
    }, REPORT_EVERY_MS);
    report.unref();
  });
  return () => clearInterval(report);
}
