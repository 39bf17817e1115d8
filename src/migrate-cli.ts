import { loadConfig } from './config.js';
import { openDatabase } from './db/database.js';
import { migrate } from './db/migrate.js';
import { createLogger } from './log.js';

/** `npm run migrate` (the Procfile's release step): apply pending migrations and exit. */
try {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const database = await openDatabase(config, logger);
  try {
    const applied = await migrate(database.url, logger);
    logger.info({ applied }, applied.length ? 'migrations applied' : 'database is up to date');
  } finally {
    await database.stop();
  }
} catch (error) {
  console.error(`postline: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
