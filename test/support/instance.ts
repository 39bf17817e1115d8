import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startInstance, type Instance } from '../../src/postline.js';
import { recordAnswers } from './answers.js';

export interface TestInstance extends Instance {
  /** Every log line this instance wrote, as raw JSON text. */
  logs: string[];
}

/**
 * A postline instance in this process on a random port, on `databaseUrl` (already migrated).
 * Rate limits are off unless `env` turns them on; `env` overrides any POSTLINE_* setting. Its
 * answers are recorded for the OpenAPI conformance check (support/answers.ts). Its error lines
 * are echoed to stderr (worth seeing when a test fails), unless the test provokes errors on
 * purpose (`expectErrors`) and checks `logs` itself.
 */
export async function startTestInstance(
  databaseUrl: string,
  env: Record<string, string> = {},
  options: { expectErrors?: boolean } = {},
): Promise<TestInstance> {
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    POSTLINE_LOG_LEVEL: 'info',
    POSTLINE_RATE_LIMIT_PER_MIN: '0',
    POSTLINE_AUTH_RATE_LIMIT_PER_MIN: '0',
    POSTLINE_SCRYPT_COST: '10', // fast hashes: the tests register hundreds of users
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const lines = chunk.toString('utf8').split('\n').filter(Boolean);
      logs.push(...lines);
      // Errors are worth seeing when a test fails; everything else stays quiet.
      if (!options.expectErrors) for (const line of lines) if (/"level":(50|60)/.test(line)) process.stderr.write(`[instance] ${line}\n`);
      done();
    },
  });
  const instance = await startInstance(config, createLogger(config.logLevel, sink), databaseUrl);
  recordAnswers(instance.server);
  return Object.assign(instance, { logs });
}
