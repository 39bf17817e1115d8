import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Logger } from '../log.js';

/** The repository's sql/ folder, from src/db/ and from dist/db/ alike. */
const SQL_DIR = fileURLToPath(new URL('../../sql/', import.meta.url));
/** Session advisory lock held while migrating, so instances starting together take turns. */
export const MIGRATION_LOCK = 8101821198551836530n; // 'postmigr' in ASCII

interface Migration {
  id: number;
  name: string;
  file: string;
}

async function listMigrations(): Promise<Migration[]> {
  const files = (await readdir(SQL_DIR)).filter((file) => /^\d+_[\w-]+\.sql$/.test(file)).sort();
  return files.map((file) => ({ id: Number.parseInt(file, 10), name: file.replace(/\.sql$/, ''), file }));
}

/**
 * Apply the numbered files of sql/ that this database has not seen, each in its own transaction,
 * under an advisory lock, and record them in postline_migrations. Returns the names applied.
 */
export async function migrate(databaseUrl: string, logger: Logger): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'postline-migrate' });
  await client.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK.toString()]);
    await client.query(`CREATE TABLE IF NOT EXISTS postline_migrations (
      id integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await client.query<{ id: number }>('SELECT id FROM postline_migrations');
    const done = new Set(rows.map((row) => row.id));
    for (const migration of await listMigrations()) {
      if (done.has(migration.id)) continue;
      const sql = await readFile(path.join(SQL_DIR, migration.file), 'utf8');
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query('INSERT INTO postline_migrations (id, name) VALUES ($1, $2)', [migration.id, migration.name]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${migration.file} failed: ${(error as Error).message}`);
      }
      applied.push(migration.name);
      logger.info({ migration: migration.name }, 'migration applied');
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK.toString()]).catch(() => {});
    await client.end();
  }
  return applied;
}
