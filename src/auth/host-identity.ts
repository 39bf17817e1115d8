import { createHash } from 'node:crypto';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Pool } from 'pg';
import type { HostIdentitySettings, HostKeySource } from '../config.js';
import type { Logger } from '../log.js';
import { cleanName } from '../names.js';
import type { AuthenticatedSession } from '../store/sessions.js';
import { upsertHostUser } from '../store/users.js';

/** A host JWT that does not verify; `reason` says why in words a client may see. */
export class HostTokenRejected extends Error {
  override name = 'HostTokenRejected';
  constructor(readonly reason: string) {
    super(`host token rejected: ${reason}`);
  }
}

/** No key can verify the token right now: the JWKS endpoint is down or slow, and no cached key matches. */
export class HostKeysUnavailable extends Error {
  override name = 'HostKeysUnavailable';
}

/** Longer tokens are refused unread (headers are capped at 16 KiB anyway; real JWTs are ~1 KiB). */
const MAX_JWT_LENGTH = 8192;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/** Host user ids longer than this are refused (they become part of the username). */
const MAX_SUBJECT_LENGTH = 255;
const MAX_DISPLAY_NAME = 64;
const CONTROL = /\p{Cc}/u;

/** Cheap shape check: three base64url parts (a JWS in compact form). Oversized tokens are not JWTs to us. */
export function looksLikeJwt(token: string): boolean {
  return token.length <= MAX_JWT_LENGTH && JWT_SHAPE.test(token);
}

/** The session id of a host token: not a row of `sessions`, so it can never name one of ours. */
export const HOST_SESSION_PREFIX = 'host:';

/**
 * Keys from a JWKS URL, through jose's remote key set (fetched once, refetched for an unknown
 * `kid` at most once per cooldown, each fetch bounded by the timeout). jose would refetch a set
 * older than its max age on the request path, and fail the request when that fetch fails; here
 * the set never ages inside jose: it is refreshed in the background once `cacheMs` old, so cached
 * keys keep verifying while the endpoint is down or slow.
 */
function jwksKeys(source: Extract<HostKeySource, { kind: 'jwks' }>, logger: Logger): JWTVerifyGetKey {
  const remote = createRemoteJWKSet(source.url, {
    timeoutDuration: source.timeoutMs,
    cooldownDuration: source.cooldownMs,
    cacheMaxAge: Number.POSITIVE_INFINITY,
  });
  /** When the cached set is next refreshed: `cacheMs` after a fetch, a cooldown after a failed one. */
  let refreshAt = 0;
  const refresh = () =>
    remote.reload().then(
      () => void (refreshAt = Date.now() + source.cacheMs),
      (error: unknown) => {
        refreshAt = Date.now() + Math.max(source.cooldownMs, 1000);
        logger.warn({ err: error, url: source.url.origin }, 'refreshing the host JWKS failed; cached keys stay in use');
      },
    );
  return async (header, token) => {
    if (remote.jwks() === undefined) {
      await remote.reload().catch((error: unknown) => {
        throw new HostKeysUnavailable('the host JWKS could not be fetched', { cause: error });
      });
      refreshAt = Date.now() + source.cacheMs;
    } else if (Date.now() >= refreshAt && !remote.reloading) {
      void refresh();
    }
    try {
      return await remote(header, token);
    } catch (error) {
      // Only "no such key" is the token's fault; anything else is the fetch for a new kid failing.
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error;
      throw new HostKeysUnavailable('the host JWKS could not be fetched', { cause: error });
    }
  };
}

/** Why jose refused a token, in words for the 401 answer (never the token itself). */
function rejectionReason(error: unknown): string | undefined {
  if (error instanceof errors.JWTExpired) return 'it has expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    return error.reason === 'missing' ? `it has no "${error.claim}" claim` : `its "${error.claim}" claim is not accepted`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) return 'its "alg" is not accepted';
  if (error instanceof errors.JWKSNoMatchingKey) return 'no key of the host matches its "kid"';
  if (error instanceof errors.JWKSMultipleMatchingKeys) return 'several keys of the host match it; give it a "kid"';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'its signature does not verify';
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return 'it is not a well-formed JWT';
  // jose's TypeError for a key that cannot do the token's (allowed) alg, say ES256 against an RSA key.
  if (error instanceof TypeError) return 'its "alg" does not fit the host\'s key';
  return undefined;
}

function claimText(payload: JWTPayload, claim: string): string | undefined {
  const value = payload[claim];
  return typeof value === 'string' ? value : undefined;
}

/** The display name from the configured claim: trimmed, control characters dropped, at most 64 characters. */
function displayNameOf(payload: JWTPayload, claim: string, fallback: string): string {
  const name = [...cleanName(claimText(payload, claim) ?? '')].slice(0, MAX_DISPLAY_NAME).join('').trim();
  return name || [...cleanName(fallback)].slice(0, MAX_DISPLAY_NAME).join('').trim() || fallback.slice(0, MAX_DISPLAY_NAME);
}

/**
 * The host application's identity: its JWTs, verified with jose against its JWKS, its PEM public
 * key or a shared HS256 secret, with the required issuer and audience and a small clock skew.
 * The token's `sub` is a postline user, created on first sight.
 */
export class HostIdentity {
  private readonly key: JWTVerifyGetKey;

  constructor(
    private readonly settings: HostIdentitySettings,
    private readonly pool: Pool,
    logger: Logger,
  ) {
    const source = settings.keys;
    if (source.kind === 'jwks') {
      this.key = jwksKeys(source, logger);
    } else {
      const key = source.kind === 'public-key' ? source.key : new TextEncoder().encode(source.secret);
      this.key = () => key;
    }
  }

  /**
   * The session of a host JWT: its user (created or renamed as the token says) until its `exp`
   * plus the clock skew, the moment this instance stops accepting it. Throws
   * {@link HostTokenRejected} or {@link HostKeysUnavailable}.
   */
  async authenticate(token: string): Promise<AuthenticatedSession> {
    const payload = await this.verify(token);
    const subject = payload.sub!;
    if (subject.length === 0 || subject.length > MAX_SUBJECT_LENGTH || CONTROL.test(subject)) {
      throw new HostTokenRejected('its "sub" claim is not accepted');
    }
    const user = await upsertHostUser(this.pool, subject, displayNameOf(payload, this.settings.nameClaim, subject));
    return {
      sessionId: HOST_SESSION_PREFIX + createHash('sha256').update(token).digest('base64url'),
      user,
      expiresAt: new Date((payload.exp! + this.settings.clockSkewSeconds) * 1000),
    };
  }

  private async verify(token: string): Promise<JWTPayload> {
    try {
      const { payload } = await jwtVerify(token, this.key, {
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        algorithms: this.settings.algorithms,
        clockTolerance: this.settings.clockSkewSeconds,
        requiredClaims: ['sub', 'exp'],
      });
      if (typeof payload.sub !== 'string') throw new HostTokenRejected('its "sub" claim is not accepted');
      return payload;
    } catch (error) {
      if (error instanceof HostTokenRejected || error instanceof HostKeysUnavailable) throw error;
      const reason = rejectionReason(error);
      if (reason === undefined) throw error;
      throw new HostTokenRejected(reason);
    }
  }
}
