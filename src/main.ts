import { loadConfig, type Config } from './config.js';
import { openDatabase, type DatabaseServer } from './db/database.js';
import { migrate } from './db/migrate.js';
import { createLogger, type Logger } from './log.js';
import { startInstance, type Instance } from './postline.js';

/** Start-up failures we can explain in one line; anything else is a bug and keeps its stack. */
const EXPLAINED = new Set(['ConfigError', 'EmbeddedPostgresError', 'DatabaseUnreachableError', 'ListenError']);

function fail(error: unknown, logger?: Logger): never {
  const explained = error instanceof Error && EXPLAINED.has(error.name);
  const message = error instanceof Error ? error.message : String(error);
  logger?.fatal({ err: explained ? undefined : error }, message);
  console.error(`postline: ${explained ? message : (error as Error)?.stack ?? message}`);
  process.exit(1);
}

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  fail(error);
}
const logger = createLogger(config.logLevel);

let database: DatabaseServer | undefined;
let instance: Instance;
try {
  database = await openDatabase(config, logger);
  await migrate(database.url, logger);
  instance = await startInstance(config, logger, database.url);
} catch (error) {
  await database?.stop();
  fail(error, logger);
}

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  const deadline = setTimeout(() => {
    logger.error('shutdown took too long; exiting');
    process.exit(1);
  }, config.shutdownTimeoutMs);
  deadline.unref();
  await instance.stop();
  await database?.stop();
  logger.info('stopped');
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
