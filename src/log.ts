import { pino, type Logger } from 'pino';

export type { Logger };

/** Query parameters that carry secrets: dropped from every logged URL. */
const SECRET_QUERY_PARAMS = ['access_token'];

/** Strip secret query parameters from a request URL before it is logged. */
export function redactUrl(url: string): string {
  const queryStart = url.indexOf('?');
  if (queryStart === -1) return url;
  const params = new URLSearchParams(url.slice(queryStart + 1));
  for (const name of SECRET_QUERY_PARAMS) if (params.has(name)) params.set(name, '[Redacted]');
  const query = params.toString();
  return url.slice(0, queryStart) + (query ? `?${query}` : '');
}

/**
 * The process logger: JSON lines on stdout. Tokens, cookies and passwords are redacted wherever
 * they could appear (headers, bodies, URLs).
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'res.headers["set-cookie"]',
          '*.password',
          '*.token',
          '*.access_token',
        ],
        censor: '[Redacted]',
      },
    },
    destination,
  );
}
