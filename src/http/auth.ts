import type { IncomingHttpHeaders } from 'node:http';
import { parseCookie } from 'cookie';
import type { Request, RequestHandler, Response } from 'express';
import { HostKeysUnavailable, HostTokenRejected, looksLikeJwt } from '../auth/host-identity.js';
import { hashToken, looksLikeToken } from '../auth/tokens.js';
import { ServiceUnavailableProblem, UnauthorizedProblem } from '../errors.js';
import type { AuthenticatedSession } from '../store/sessions.js';
import { COOKIE_SESSION_HEADER, usesCookieSession } from './browser-session.js';
import type { AppContext } from './context.js';

/**
 * The HttpOnly cookie of a page's session (see browser-session.ts): honoured on requests that send
 * `Postline-Session: cookie` (which cross-site forms cannot), and on the two delivery GETs.
 */
const SESSION_COOKIE = 'postline_session';

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by {@link authenticate}. */
    auth?: AuthenticatedSession;
    /** An `access_token` field taken out of a POST body (old IE's XDomainRequest); never logged. */
    bodyAccessToken?: string;
  }
}

export interface TokenSources {
  /** Accept `?access_token=` (EventSource and XDomainRequest cannot set headers). */
  query: boolean;
  /** Accept the session cookie even without the `Postline-Session: cookie` header (EventSource cannot send it). */
  cookie: boolean;
}

/** What a request presents to authenticate with. */
export interface Credentials {
  headers: IncomingHttpHeaders;
  /** An `access_token` field of a POST body (see body.ts). */
  bodyAccessToken?: string | undefined;
  /** The parsed query string (its `access_token`, where the sources allow it). */
  query: Record<string, unknown>;
  /** The client's address (as POSTLINE_TRUST_PROXY makes it out), for the per-address failure limit. */
  ip?: string | undefined;
}

/** The token presented, in the contract's order of preference. */
function presentedToken(credentials: Credentials, sources: TokenSources): string | undefined {
  const header = credentials.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer +(\S+) *$/i.exec(header);
    if (!match) throw new UnauthorizedProblem(`The Authorization header must be "Bearer <token>"${/^\S+$/.test(header) ? ': the "Bearer " scheme is missing' : ''}.`, true);
    return match[1];
  }
  if (credentials.bodyAccessToken !== undefined) return credentials.bodyAccessToken;
  const queryToken = credentials.query.access_token;
  if (sources.query && typeof queryToken === 'string') return queryToken;
  if (credentials.headers.cookie && (sources.cookie || usesCookieSession(credentials.headers))) return sessionCookie(credentials.headers);
  return undefined;
}

const sessionCookie = (headers: IncomingHttpHeaders) => (headers.cookie ? parseCookie(headers.cookie)[SESSION_COOKIE] : undefined);

/**
 * Who may present which tokens: our own session tokens (unless POSTLINE_OWN_ACCOUNTS is off) and
 * the host's JWTs (when configured).
 */
export type Identities = Pick<AppContext, 'sessions' | 'hostIdentity' | 'authFailures'> & { config: Pick<AppContext['config'], 'ownAccounts'> };

/**
 * The session of a postline token or a host JWT (looked up at most once a moment, see
 * SessionCache). A lookup for a token not known to be valid waits on the per-address failure
 * limit: past it, `address` gets 429 and the database is not asked.
 */
async function sessionOf(identities: Identities, token: string, address: string): Promise<AuthenticatedSession | undefined> {
  const limit = () => identities.authFailures.check(address);
  if (looksLikeToken(token)) return identities.config.ownAccounts ? identities.sessions.find(hashToken(token), undefined, limit) : undefined;
  const host = identities.hostIdentity;
  if (!host || !looksLikeJwt(token)) return undefined;
  try {
    return await identities.sessions.find(hashToken(token), () => host.authenticate(token), limit);
  } catch (error) {
    if (error instanceof HostTokenRejected) throw new UnauthorizedProblem(`The access token is not accepted: ${error.reason}.`, true);
    if (error instanceof HostKeysUnavailable) throw new ServiceUnavailableProblem("The host's signing keys cannot be fetched right now; retry shortly.");
    throw error;
  }
}

/**
 * Resolve the caller's session from a token, or throw 401 (503 when the host's keys are out of
 * reach; 429 when the address failed too often). A token that is not accepted counts against its address.
 */
export async function resolveSession(identities: Identities, credentials: Credentials, sources: TokenSources): Promise<AuthenticatedSession> {
  const token = presentedToken(credentials, sources);
  if (token === undefined && sessionCookie(credentials.headers) !== undefined) {
    throw new UnauthorizedProblem(`The session cookie counts here only with the header "${COOKIE_SESSION_HEADER}: cookie" (which pages of other sites cannot send).`);
  }
  if (token === undefined) throw new UnauthorizedProblem();
  const address = credentials.ip ?? '';
  let session: AuthenticatedSession | undefined;
  try {
    session = await sessionOf(identities, token, address);
  } catch (error) {
    if (error instanceof UnauthorizedProblem) identities.authFailures.failed(address);
    throw error;
  }
  if (!session) {
    identities.authFailures.failed(address);
    throw new UnauthorizedProblem('The access token is invalid, expired or revoked.', true);
  }
  return session;
}

/** Middleware: 401 unless the request carries a live token; sets `req.auth` (unless an earlier run did). */
export function authenticate(identities: Identities): RequestHandler {
  return async (req, _res, next) => {
    req.auth ??= await resolveSession(identities, req, { query: false, cookie: false });
    next();
  };
}

/** The authenticated session of a request that passed {@link authenticate}. */
export function requireAuth(req: Request): AuthenticatedSession {
  if (!req.auth) throw new UnauthorizedProblem();
  return req.auth;
}

/** The session cookie's attributes: HttpOnly, SameSite=Lax, scoped to the API, Secure over HTTPS. */
const cookieAttributes = (req: Request) => ({ httpOnly: true, sameSite: 'lax' as const, secure: req.secure, path: '/v1' });

export function setSessionCookie(req: Request, res: Response, token: string, maxAgeMs: number): void {
  res.cookie(SESSION_COOKIE, token, { ...cookieAttributes(req), maxAge: maxAgeMs });
}

export function clearSessionCookie(req: Request, res: Response): void {
  res.clearCookie(SESSION_COOKIE, cookieAttributes(req));
}
