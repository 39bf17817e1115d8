import type http from 'node:http';
import type { Socket } from 'node:net';
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

/** Shedding starts when this share of the cap is open. */
const SHED_AT = 0.9;
/** A connection younger than this is never shed: it may be a client about to send its request. */
const SHED_MIN_AGE_MS = 1000;
/** How often the headroom below the cap is restored. */
const SWEEP_EVERY_MS = 500;

/**
 * Cap the open connections of `server` (POSTLINE_MAX_CONNECTIONS), so the process never runs out
 * of file descriptors (its Postgres connections, files and probes keep working):
 *
 * - above 90% of the cap, each new connection (and every half second, until it is below again)
 *   sheds the oldest open one whose request has not arrived whole (a head or a body still
 *   trickling in, older than a second): that is what a flood of slow clients holds, and they
 *   would be cut at their timeouts anyway. A connection whose
 *   request is complete (a stream, a waiting poll, a keep-alive connection between requests) is
 *   never shed, so clients keep getting in while a flood lasts;
 * - at the cap, Node closes each new connection as it arrives, and idle keep-alive connections
 *   are closed to make room (their clients reconnect).
 *
 * Either is logged at once, then every 10 s while it goes on, with the counts; metrics count
 * both. Returns what stops the reporting.
 */
export function capConnections(server: http.Server, maxConnections: number, logger: Logger, metrics: Metrics): () => void {
  server.maxConnections = maxConnections;
  const shedAt = Math.floor(maxConnections * SHED_AT);
  /**
   * Open connections whose request has not arrived whole, oldest first (a Map keeps insertion
   * order): when each opened, and its request once its head is in.
   */
  const incomplete = new Map<Socket, { openedAt: number; req?: http.IncomingMessage }>();
  /** Open connections (a shed one leaves at once, before its close event). */
  const live = new Set<Socket>();
  const counts = { refused: 0, shed: 0 };
  let report: NodeJS.Timeout | undefined;
  let idleClosedAt = 0;

  const reportPressure = () => {
    if (report) return;
    logger.warn(
      { maxConnections },
      `connections near their cap (POSTLINE_MAX_CONNECTIONS=${maxConnections}): slow ones are cut past ${shedAt}, new ones refused at the cap`,
    );
    report = setInterval(() => {
      if (counts.refused + counts.shed === 0) {
        clearInterval(report);
        report = undefined;
        logger.info({ maxConnections }, 'connections below their cap again: none shed or refused for 10 s');
        return;
      }
      logger.warn({ maxConnections, ...counts }, `in the last 10 s: ${counts.shed} slow connections cut, ${counts.refused} refused at the connection cap`);
      counts.refused = counts.shed = 0;
    }, REPORT_EVERY_MS);
    report.unref();
  };

  /** Cut the oldest slow connection; false when there is none old enough. */
  const shedOldest = (): boolean => {
    const now = performance.now();
    for (const [socket, { openedAt, req }] of incomplete) {
      if (now - openedAt < SHED_MIN_AGE_MS) return false;
      incomplete.delete(socket);
      if (req?.complete) continue; // arrived whole meanwhile
      live.delete(socket);
      socket.destroy();
      metrics.connectionsShed.inc();
      counts.shed++;
      reportPressure();
      return true;
    }
    return false;
  };
  // Arrivals shed as they come; this keeps the headroom when the port filled up with connections too young to shed.
  const sweep = setInterval(() => {
    while (live.size > shedAt && shedOldest());
  }, SWEEP_EVERY_MS);
  sweep.unref();

  server.on('connection', (socket: Socket) => {
    live.add(socket);
    incomplete.set(socket, { openedAt: performance.now() });
    socket.once('close', () => {
      live.delete(socket);
      incomplete.delete(socket);
    });
    if (live.size > shedAt) shedOldest();
  });
  server.on('request', (req: http.IncomingMessage) => {
    const entry = incomplete.get(req.socket);
    if (!entry) return;
    entry.req = req;
    // A request without a body is complete once the parser is through its head (after this event);
    // only one still receiving its body needs to be told when it ends (a stream's or a poll's
    // request would keep that listener for its whole life).
    setImmediate(() => {
      if (req.complete) incomplete.delete(req.socket);
      else req.once('end', () => incomplete.delete(req.socket));
    });
  });
  server.on('drop', () => {
    metrics.connectionsRefused.inc();
    counts.refused++;
    if (Date.now() - idleClosedAt >= 1000) {
      idleClosedAt = Date.now();
      server.closeIdleConnections();
    }
    reportPressure();
  });
  return () => {
    clearInterval(report);
    clearInterval(sweep);
  };
}
