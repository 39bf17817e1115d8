import type { IncomingHttpHeaders } from 'node:http';
import type { RequestHandler } from 'express';
import { ForbiddenProblem } from '../errors.js';

/**
 * Sessions of browser pages (docs/api.md, "Sessions in the browser"). A page signs in with the
 * header `Postline-Session: cookie`: its session is then the HttpOnly cookie alone (the answer
 * carries no token for scripts to read or leak), and every request of the page sends that header
 * again. The cookie is honoured only on requests that carry it (and on the two delivery GETs,
 * where EventSource cannot send headers): an HTML form cannot set a header, and a script of another
 * origin can only send one after a CORS preflight, which only POSTLINE_CORS_ORIGINS pass. So
 * another site can neither act with the cookie nor plant one of its own (login CSRF); sign-ins
 * that a browser says come from another site are refused outright.
 */

/** The request header a page sends to use (or, signing in, to get) the cookie session. */
export const COOKIE_SESSION_HEADER = 'Postline-Session';

/** Whether the request carries `Postline-Session: cookie`. */
export function usesCookieSession(headers: IncomingHttpHeaders): boolean {
  const value = headers['postline-session'];
  return typeof value === 'string' && value.trim().toLowerCase() === 'cookie';
}

/** Whether `origin` (an Origin header) names the host the request was sent to (`Host`). */
function isOwnOrigin(origin: string, host: string | undefined): boolean {
  if (!host) return false;
  try {
    const from = new URL(origin);
    const to = new URL(`http://${host}`);
    // A proxy may pass the Host without its port (nginx's $host): then the names must match.
    return to.port === '' ? from.hostname === to.hostname : from.host === to.host;
  } catch {
    return false;
  }
}

/**
 * Whether a browser says this request comes from a page of another origin that
 * POSTLINE_CORS_ORIGINS does not list: `Sec-Fetch-Site` other than `same-origin` (or `none`, the
 * user's own navigation), else an `Origin` other than the request's host (`null` included).
 * Requests that carry neither (curl, scripts, old browsers on their own origin) are not foreign.
 */
export function isForeignPageRequest(headers: IncomingHttpHeaders, corsOrigins: readonly string[]): boolean {
  const origin = headers.origin;
  if (origin !== undefined && corsOrigins.includes(origin)) return false;
  const site = headers['sec-fetch-site'];
  if (typeof site === 'string') return site !== 'same-origin' && site !== 'none';
  return origin !== undefined && !isOwnOrigin(origin, headers.host);
}

/** Middleware for sign-ins: 403 for one a page of another, unlisted site sent (login CSRF). */
export function refuseForeignSignIns(corsOrigins: readonly string[]): RequestHandler {
  return (req, _res, next) => {
    if (isForeignPageRequest(req.headers, corsOrigins)) {
      throw new ForbiddenProblem(
        'Sign-ins from pages of other sites are refused: sign in from a page of this origin, or list the page’s origin in POSTLINE_CORS_ORIGINS.',
      );
    }
    next();
  };
}
