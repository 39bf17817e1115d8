import { Router, type Request, type Response } from 'express';
import { HOST_SESSION_PREFIX } from '../auth/host-identity.js';
import { PasswordHasher } from '../auth/passwords.js';
import { generateToken, hashToken } from '../auth/tokens.js';
import { ConflictProblem, NotFoundProblem, UnauthorizedProblem } from '../errors.js';
import { clearSessionCookie, requireAuth, setSessionCookie } from '../http/auth.js';
import { refuseForeignSignIns, usesCookieSession } from '../http/browser-session.js';
import type { AppContext } from '../http/context.js';
import { authAttemptLimiter } from '../http/rate-limit.js';
import { operations, route } from '../http/operations.js';
import { parse } from '../http/validate.js';
import { LoginFailureLimit } from '../limits/login-failures.js';
import { deleteSession, insertSession } from '../store/sessions.js';
import type { User } from '../contract.js';
import { findCredentials, findUsersByUsername, insertUser, searchUsers } from '../store/users.js';

/**
 * POST /v1/users and POST /v1/sessions: public, behind the sign-in rate limit. With own accounts
 * switched off (POSTLINE_OWN_ACCOUNTS=false) both answer 404: users sign in with the host.
 */
export function signInRoutes(ctx: AppContext): Router {
  const router = Router();
  if (!ctx.config.ownAccounts) {
    const switchedOff = () => {
      throw new NotFoundProblem('Own accounts are switched off here: sign in with the host application.');
    };
    route(router, operations.register, switchedOff);
    route(router, operations.login, switchedOff);
    return router;
  }
  const limitAttempts = authAttemptLimiter(ctx.counters, ctx.logger, ctx.config.authRateLimitPerMin);
  const passwords = new PasswordHasher(ctx.config.scryptCostLog2);
  const loginFailures = new LoginFailureLimit(ctx.pool, ctx.config.loginFailures);

  /** A page that asks for the cookie session gets only the cookie; everyone else only the token. */
  async function startSession(req: Request, res: Response, user: User): Promise<void> {
    const token = generateToken();
    await insertSession(ctx.pool, user.id, hashToken(token), ctx.config.tokenTtlMs);
    if (!usesCookieSession(req.headers)) {
      res.status(201).json({ user, token });
      return;
    }
    setSessionCookie(req, res, token, ctx.config.tokenTtlMs);
    res.status(201).json({ user });
  }
  const refuseForeign = refuseForeignSignIns(ctx.config.corsOrigins);

  route(router, operations.register, refuseForeign, limitAttempts, async (req, res) => {
    const input = parse(operations.register.body, req.body);
    const user = await insertUser(ctx.pool, {
      username: input.username,
      displayName: input.displayName ?? input.username,
      passwordHash: await passwords.hash(input.password),
    });
    if (!user) throw new ConflictProblem('That username is taken.');
    await startSession(req, res, user);
  });

  route(router, operations.login, refuseForeign, limitAttempts, async (req, res) => {
    const input = parse(operations.login.body, req.body);
    await loginFailures.reserve(input.username, req.ip ?? '');
    const found = await findCredentials(ctx.pool, input.username);
    const valid = await passwords.verify(input.password, found?.passwordHash);
    if (!found || !valid) throw new UnauthorizedProblem('Wrong username or password.');
    await loginFailures.succeeded(input.username, req.ip ?? '');
    await startSession(req, res, found.user);
  });

  return router;
}

/** The signed-in user's own account and session. */
export function accountRoutes(ctx: AppContext): Router {
  const router = Router();

  route(router, operations.logout, async (req, res) => {
    const { sessionId } = requireAuth(req);
    if (sessionId.startsWith(HOST_SESSION_PREFIX)) {
      throw new ConflictProblem('A host token cannot be revoked here: it ends at its exp. Sign out in the host application.');
    }
    await deleteSession(ctx.pool, sessionId);
    ctx.sessions.forget(sessionId); // other instances forget it on the revocation NOTIFY

    clearSessionCookie(req, res);
    res.status(204).end();
  });

  route(router, operations.me, (req, res) => {
    res.json({ user: requireAuth(req).user });
  });

  // ?username= is the exact lookup; ?q= searches people by prefix.
  route(router, operations.findUsers, async (req, res) => {
    const { username, q } = parse(operations.findUsers.query, req.query);
    res.json({ users: q === undefined ? await findUsersByUsername(ctx.pool, username!) : await searchUsers(ctx.pool, q) });
  });

  return router;
}
