/**
 * `npm test`: the suite against a real Postgres. With DATABASE_URL, that server is used; without
 * it, a throwaway embedded cluster is started. A migrated template database is built once and
 * each test file clones it (CREATE DATABASE … TEMPLATE), so every file starts from a fresh schema.
 *
 * Usage: tsx test/run.ts [--test-name-pattern=…] [folder | file.test.ts …]
 * (default: every test/*.test.ts; a folder: every *.test.ts in it, e.g. test/e2e)
 *
 * Then every answer the test instances gave is checked against the OpenAPI document
 * (support/conformance.ts): a route, status or shape the document lacks fails the run.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type RunningPostgres } from '../src/db/embedded-postgres.js';
import { migrate } from '../src/db/migrate.js';
import { createLogger } from '../src/log.js';
import { openApiDocument } from '../src/http/openapi.js';
import { checkAnswers, readRecordedAnswers } from './support/conformance.js';
import { databaseUrlFor } from './support/database.js';

const logger = createLogger(process.env.POSTLINE_TEST_LOG_LEVEL ?? 'warn');
const testDir = path.dirname(new URL(import.meta.url).pathname);

/** Arguments starting with `--` go to node's test runner (e.g. --test-only, --test-name-pattern=…). */
const runnerFlags = process.argv.slice(2).filter((arg) => arg.startsWith('--'));

async function testFilesIn(folder: string): Promise<string[]> {
  const names = await readdir(folder);
  return names.filter((name) => name.endsWith('.test.ts')).sort().map((name) => path.join(folder, name));
}

async function testFiles(): Promise<string[]> {
  const requested = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
  if (requested.length === 0) return testFilesIn(testDir);
  const files = await Promise.all(
    requested.map(async (arg) => ((await stat(arg)).isDirectory() ? testFilesIn(path.resolve(arg)) : [arg])),
  );
  return files.flat();
}

/**
 * Check the recorded answers against the document; prints what it found (for the whole suite, also
 * the operations no answer exercised), returns whether all conform.
 */
async function checkConformance(answersDir: string, wholeSuite: boolean): Promise<boolean> {
  const report = checkAnswers(openApiDocument(), await readRecordedAnswers(answersDir));
  console.log(`\nOpenAPI conformance: ${report.checked} answers to /v1 checked against the document, ${report.violations.size} kinds of violation`);
  for (const [violation, { count, example }] of report.violations) console.log(`  ✖ ${violation} (${count}×), e.g. ${example}`);
  if (wholeSuite && report.unexercised.length > 0) console.log(`  operations no answer exercised: ${report.unexercised.join(', ')}`);
  return report.violations.size === 0;
}

async function main(): Promise<number> {
  let embedded: RunningPostgres | undefined;
  let clusterDir: string | undefined;
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    clusterDir = await mkdtemp(path.join(tmpdir(), 'postline-test-'));
    await chmod(clusterDir, 0o711); // as root, Postgres runs as the postgres user and must enter it
    embedded = await startEmbeddedPostgres({
      dataDir: clusterDir,
      port: 0,
      logger,
      // A throwaway cluster: durability buys nothing here and costs seconds.
      postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=400'],
    });
    adminUrl = embedded.url;
  }
  const template = `postline_test_template_${process.pid}`;
  const answersDir = await mkdtemp(path.join(tmpdir(), 'postline-answers-'));
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${template}`);
    await admin.query(`CREATE DATABASE ${template}`);
    await migrate(databaseUrlFor(adminUrl, template), logger);

    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', `--test-timeout=${process.env.POSTLINE_TEST_TIMEOUT_MS ?? 180000}`, ...runnerFlags, ...(await testFiles())],
      {
        stdio: 'inherit',
        env: { ...process.env, POSTLINE_TEST_ADMIN_URL: adminUrl, POSTLINE_TEST_TEMPLATE: template, POSTLINE_TEST_ANSWERS_DIR: answersDir },
      },
    );
    // A Ctrl-C or SIGTERM ends the tests, and then the clean-up below still runs (the embedded
    // Postgres is in its own process group: nobody else stops it).
    const stopTests = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', stopTests).on('SIGTERM', stopTests);
    // node --test exits 1 when any test failed or was cancelled; a signal or a crash is a failure too.
    const code = await new Promise<number>((resolve) => child.on('exit', (exitCode) => resolve(exitCode ?? 1)));
    const conforms = await checkConformance(answersDir, process.argv.slice(2).every((arg) => arg.startsWith('--')));
    return code === 0 && !conforms ? 1 : code;
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`).catch(() => {});
    await admin.end();
    await embedded?.stop();
    await rm(answersDir, { recursive: true, force: true });
    if (clusterDir) await rm(clusterDir, { recursive: true, force: true });
  }
}

try {
  process.exitCode = await main();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
}
