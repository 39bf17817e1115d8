import type { IncomingMessage, ServerResponse } from 'node:http';
import { redactUrl, type Logger } from '../log.js';

/** Probes and scrapers hit these every few seconds; their answers say all there is to say. */
const QUIET_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * One log line per request, when its answer is complete (or the client left): method, URL with
 * secrets redacted, status, time taken; `warn` for 4xx, `error` for 5xx. Written straight to the
 * logger, with no per-request child logger: at long-poll rates that costs more than the answer.
 */
export function requestLogger(logger: Logger): (req: IncomingMessage, res: ServerResponse) => void {
  // The line holds only what is built below (the URL through redactUrl, no headers, no body), so
  // pino's path redaction, about 40% of the line's cost in a poll profile, has nothing to find here.
  const lines = logger.child({}, { redact: [] });
  let lastId = 0;
  return (req, res) => {
    if (QUIET_PATHS.has(req.url ?? '')) return;
    const id = ++lastId;
    const startedAt = Date.now();
    // As it came: Express's routers rewrite req.url below their mount point (/v1) while they work.
    const url = req.url ?? '';
    const done = () => {
      res.off('finish', done);
      res.off('close', done);
      const status = res.statusCode;
      const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
      const completed = res.writableEnded && !req.readableAborted;
      lines[level](
        { req: { id, method: req.method, url: redactUrl(url) }, res: { statusCode: status }, responseTime: Date.now() - startedAt },
        completed ? 'request completed' : 'request aborted',
      );
    };
    res.on('finish', done);
    res.on('close', done);
  };
}
