import { Router, type Request, type Response } from 'express';
import { PasswordHasher } from '../auth/passwords.js';
import { generateToken, hashToken } from '../auth/tokens.js';
import { ConflictProblem, UnauthorizedProblem } from '../errors.js';
import { clearSessionCookie, requireAuth, setSessionCookie } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { authAttemptLimiter } from '../http/rate-limit.js';
import { loginBody, parse, peopleSearchQuery, registerBody, userLookupQuery } from '../http/validate.js';
import { LoginFailureLimit } from '../limits/login-failures.js';
import { deleteSession, insertSession } from '../store/sessions.js';
import { findCredentials, findUsersByUsername, insertUser, searchUsers, type User } from '../store/users.js';

/** POST /v1/users and POST /v1/sessions: public, behind the sign-in rate limit. */
export function signInRoutes(ctx: AppContext): Router {
  const router = Router();
  const limitAttempts = authAttemptLimiter(ctx.counters, ctx.logger, ctx.config.authRateLimitPerMin);
  const passwords = new PasswordHasher(ctx.config.scryptCostLog2);
  const loginFailures = new LoginFailureLimit(ctx.pool, ctx.config.loginFailuresPerMin);

  async function startSession(req: Request, res: Response, user: User): Promise<void> {
    const token = generateToken();
    await insertSession(ctx.pool, user.id, hashToken(token), ctx.config.tokenTtlMs);
    setSessionCookie(req, res, token, ctx.config.tokenTtlMs);
    res.status(201).json({ user, token });
  }

  router.post('/users', limitAttempts, async (req, res) => {
    const input = parse(registerBody, req.body);
    const user = await insertUser(ctx.pool, {
      username: input.username,
      displayName: input.displayName ?? input.username,
      passwordHash: await passwords.hash(input.password),
    });
    if (!user) throw new ConflictProblem('That username is taken.');
    await startSession(req, res, user);
  });

  router.post('/sessions', limitAttempts, async (req, res) => {
    const input = parse(loginBody, req.body);
    await loginFailures.reserve(input.username);
    const found = await findCredentials(ctx.pool, input.username);
    const valid = await passwords.verify(input.password, found?.passwordHash);
    if (!found || !valid) throw new UnauthorizedProblem('Wrong username or password.');
    await loginFailures.succeeded(input.username);
    await startSession(req, res, found.user);
  });

  return router;
}

/** The signed-in user's own account and session. */
export function accountRoutes(ctx: AppContext): Router {
  const router = Router();

  router.delete('/sessions/current', async (req, res) => {
    const { sessionId } = requireAuth(req);
    await deleteSession(ctx.pool, sessionId);
    ctx.sessions.forget(sessionId); // other instances forget it on the revocation NOTIFY

    clearSessionCookie(req, res);
    res.status(204).end();
  });

  router.get('/me', (req, res) => {
    res.json({ user: requireAuth(req).user });
  });

  // ?q= searches people by prefix; otherwise ?username= is the exact lookup.
  router.get('/users', async (req, res) => {
    if (req.query.q !== undefined) {
      const { q } = parse(peopleSearchQuery, req.query);
      res.json({ users: await searchUsers(ctx.pool, q) });
      return;
    }
    const { username } = parse(userLookupQuery, req.query);
    res.json({ users: await findUsersByUsername(ctx.pool, username) });
  });

  return router;
}
