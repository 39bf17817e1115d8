import { pino, type Logger } from 'pino';

export type { Logger };

/** Query parameters that carry secrets, whatever their value: their values are never logged. */
const SECRET_PARAMETERS = /^(access_token|token|password|secret|api_key|apikey|jwt)$/i;
/** Token-shaped strings, anywhere: our tokens (`pl_` and 43 base64url characters) and JWTs (compact JWS). */
const TOKEN_SHAPE = /pl_[A-Za-z0-9_-]{43}|eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/;
const REDACTED = '[Redacted]';

/** A URL component as the server reads it (percent-decoded; `+` is a space in a query), or as is when malformed. */
function decoded(component: string, query: boolean): string {
  try {
    return decodeURIComponent(query ? component.replace(/\+/g, ' ') : component);
  } catch {
    return component;
  }
}

/**
 * A request URL fit for the logs: the values of secret query parameters (`access_token`,
 * `password`, …) and every path segment, parameter name or value that holds a token-shaped
 * string (a client that put its token in the wrong place) become `[Redacted]`, percent-encoded
 * or not. Everything else is kept as sent.
 */
export function redactUrl(url: string): string {
  const queryStart = url.indexOf('?');
  const path = (queryStart === -1 ? url : url.slice(0, queryStart))
    .split('/')
    .map((segment) => (TOKEN_SHAPE.test(decoded(segment, false)) ? REDACTED : segment))
    .join('/');
  if (queryStart === -1) return path;
  const query = url
    .slice(queryStart + 1)
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      const name = equals === -1 ? pair : pair.slice(0, equals);
      const plainName = decoded(name, true);
      if (TOKEN_SHAPE.test(plainName)) return REDACTED;
      if (equals === -1) return pair;
      const secret = SECRET_PARAMETERS.test(plainName) || TOKEN_SHAPE.test(decoded(pair.slice(equals + 1), true));
      return secret ? `${name}=${REDACTED}` : pair;
    })
    .join('&');
  return `${path}?${query}`;
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
