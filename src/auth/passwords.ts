import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const KEY_LENGTH = 32;
const BLOCK_SIZE = 8;
const PARALLELISM = 1;

function derive(password: string, salt: Buffer, params: { N: number; r: number; p: number }): Promise<Buffer> {
  // scrypt needs 128 * N * r bytes; allow that plus headroom.
  const maxmem = 256 * params.N * params.r;
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, KEY_LENGTH, { ...params, maxmem }, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

/**
 * Salted scrypt password hashes, stored as `scrypt$N$r$p$salt$key` (base64url parts), so the
 * cost can change later without invalidating stored hashes.
 */
export class PasswordHasher {
  private readonly params: { N: number; r: number; p: number };
  private dummyHash: Promise<string> | undefined;

  /** @param costLog2 - log2 of scrypt's N. The default, 15, costs ~32 MiB and tens of ms per hash. */
  constructor(costLog2 = 15) {
    this.params = { N: 2 ** costLog2, r: BLOCK_SIZE, p: PARALLELISM };
  }

  async hash(password: string): Promise<string> {
    const salt = randomBytes(16);
    const key = await derive(password, salt, this.params);
    const { N, r, p } = this.params;
    return ['scrypt', N, r, p, salt.toString('base64url'), key.toString('base64url')].join('$');
  }

  /**
   * Compare in constant time. Without a stored hash (unknown user) a dummy is checked, so that
   * both failures take the same time and do not tell which usernames exist.
   */
  async verify(password: string, stored: string | undefined): Promise<boolean> {
    this.dummyHash ??= this.hash(randomBytes(16).toString('hex'));
    const [scheme, n, r, p, salt, key] = (stored ?? (await this.dummyHash)).split('$');
    if (scheme !== 'scrypt' || !salt || !key) return false;
    const expected = Buffer.from(key, 'base64url');
    const actual = await derive(password, Buffer.from(salt, 'base64url'), { N: Number(n), r: Number(r), p: Number(p) });
    return stored !== undefined && actual.length === expected.length && timingSafeEqual(actual, expected);
  }
}
