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

// Listen for the stop signals before anything starts: a signal during start-up (a process
// manager's quick restart, Ctrl-C while migrating) lets the start finish, then drains. The
// shutdown deadline runs from the first signal; repeats are ignored (npm forwards the Ctrl-C its
// process group already got).
const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => resolve(signal));
});
void stopSignal.then((signal) => {
  logger.info({ signal }, 'shutting down');
  setTimeout(() => {
    logger.error('shutdown took too long; exiting');
    process.exit(1);
  }, config.shutdownTimeoutMs).unref();
});

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

await stopSignal;
await instance.stop();
await database?.stop();
logger.info('stopped');
process.exit(0);
