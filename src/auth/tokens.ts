import { createHash, randomBytes } from 'node:crypto';

const TOKEN_PREFIX = 'pl_';

/** A new bearer token: 256 random bits, prefixed so secret scanners can recognise it. */
export function generateToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

/** What the database keeps of a token: its SHA-256, never the token. */
export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** Cheap shape check before any database lookup. */
export function looksLikeToken(value: string): boolean {
  return /^pl_[A-Za-z0-9_-]{43}$/.test(value);
}
