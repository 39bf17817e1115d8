import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet from 'helmet';

const referrerPolicy = { policy: 'no-referrer' as const };

/**
 * helmet, tuned per kind of answer. Pages (the demo) get helmet's full set with a CSP for them.
 * API answers (JSON, streams, problems) are never rendered, so they get the headers that matter
 * for them (nosniff, no-referrer, HSTS, framing, a deny-all CSP) and skip the legacy browser
 * headers: at long-poll rates those hundreds of bytes per answer cost more than the answer.
 */
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

type Middleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;

/**
 * The headers helmet sets on API answers, computed once (they do not depend on the request), for
 * the lean delivery path: it hands them to `writeHead` with the rest of an answer's head.
 */
export const API_HEADERS: Readonly<Record<string, string>> = (() => {
  const headers: Record<string, string> = {};
  const capture = { setHeader: (name: string, value: string) => (headers[name] = value), removeHeader: () => {} };
  (forApi as Middleware)({} as IncomingMessage, capture as unknown as ServerResponse, () => {});
  return Object.freeze(headers);
})();

/** The same headers as raw HTTP header lines, for answers written straight to a socket (http/problem.ts). */
export const API_HEADER_LINES = Object.entries(API_HEADERS).map(([name, value]) => `${name}: ${value}\r\n`).join('');

/** Middleware: the API set under /v1/, helmet's full set for pages. */
export const securityHeaders: Middleware = (req, res, next) => (req.url?.startsWith('/v1/') ? forApi : forPages)(req as never, res as never, next);
