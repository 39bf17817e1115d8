import type { Pool } from 'pg';

/** Failures older than this are forgotten: an address is clean again an hour after its last failure. */
export const LOGIN_FAILURE_WINDOW_MS = 3600_000;
/** The longest wait the doubling reaches. */
export const LOGIN_MAX_WAIT_MS = 15 * 60_000;

/**
 * Reserve a login attempt for `username` from `address` (counted as a failure in advance; see
 * postline_reserve_login in sql/008_abuse_and_privacy.sql): undefined when it may go ahead, else
 * when the address may try again.
 */
export async function reserveLogin(
  pool: Pool,
  username: string,
  address: string,
  limits: { perAddress: number; perAccount: number },
): Promise<Date | undefined> {
  const { rows } = await pool.query<{ retry_at: Date | null }>(
    `SELECT postline_reserve_login($1, $2, $3, $4, $5 * interval '1 millisecond', $6 * interval '1 millisecond') AS retry_at`,
    [username, address, limits.perAddress, limits.perAccount, LOGIN_FAILURE_WINDOW_MS, LOGIN_MAX_WAIT_MS],
  );
  return rows[0]!.retry_at ?? undefined;
}

/** The attempt succeeded: the address is clean for that account (its reserved failure is taken back with the rest). */
export async function forgetLoginFailures(pool: Pool, username: string, address: string): Promise<void> {
  await pool.query('DELETE FROM login_failures WHERE username = $1 AND address = $2', [username, address]);
}

export async function deleteStaleLoginFailures(pool: Pool): Promise<number> {
  const { rowCount } = await pool.query(`DELETE FROM login_failures WHERE last_at <= now() - $1 * interval '1 millisecond'`, [LOGIN_FAILURE_WINDOW_MS]);
  return rowCount ?? 0;
}
