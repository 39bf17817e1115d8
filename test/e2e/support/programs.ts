import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** Set to 1 to skip e2e tests whose program is missing instead of failing (never in CI). */
const ALLOW_MISSING = process.env.POSTLINE_E2E_ALLOW_MISSING === '1';

/** Debian puts daemons in sbin, which a non-root PATH may lack. */
const SEARCH_PATH = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export interface RequiredProgram {
  /** Absolute path of the program; empty when it is missing and skipping was allowed. */
  path: string;
  /** A skip reason for node:test when the program is missing and skipping was allowed. */
  skip: string | false;
}

/**
 * Find `name` on the PATH (or in sbin). When it is missing the suite fails with a message naming
 * the Debian package, unless POSTLINE_E2E_ALLOW_MISSING=1 turns that into a skip.
 */
export function requireProgram(name: string, debianPackage: string): RequiredProgram {
  for (const folder of SEARCH_PATH) {
    const candidate = path.join(folder, name);
    try {
      accessSync(candidate, constants.X_OK);
      return { path: candidate, skip: false };
    } catch {
      // not in this folder
    }
  }
  const advice = `${name} is missing: install the Debian package "${debianPackage}" (npm run setup:e2e installs everything the e2e suite needs)`;
  if (ALLOW_MISSING) return { path: '', skip: `${advice}; skipped because POSTLINE_E2E_ALLOW_MISSING=1` };
  throw new Error(`${advice}, or set POSTLINE_E2E_ALLOW_MISSING=1 to skip these tests.`);
}
