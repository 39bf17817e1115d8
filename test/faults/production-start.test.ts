import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { promisify } from 'node:util';
import { register } from '../support/api.js';
import { metricValue, scrapeMetrics } from '../support/metrics.js';
import { poll } from '../support/poll.js';
import { isAlive, spawnServer, type ServerProcess } from '../support/process.js';
import { waitFor } from '../support/sse.js';

// The production start as the README and the Procfile give it (`npm run build`, then the web:
// line), on the embedded Postgres, stopped the two ways people stop it: SIGTERM from a process
// manager, and Ctrl-C in a terminal (SIGINT to the whole foreground process group).
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

/** The Procfile's web: line as argv: a plain command (no shell, no npm between the signal and node). */
function webCommand(): string[] {
  const line = /^web:\s*(.+)$/m.exec(readFileSync(path.join(ROOT, 'Procfile'), 'utf8'))?.[1]?.trim();
  assert.ok(line, 'the Procfile has a web: line');
  assert.doesNotMatch(line, /[|&;<>$`]|\bnpm\b/, 'the web: line starts node itself');
  return line.split(/\s+/);
}

before(async () => {
  await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT });
});

/**
 * Start the production server on a fresh embedded Postgres in its own process group, with a
 * long-poll waiting on it; signal it with `stop`; check that nothing is left and the poll was
 * answered with its own cursor. Returns the server's output.
 */
async function startAndStop(stop: (server: ServerProcess) => void): Promise<string[]> {
  const parent = await mkdtemp(path.join(tmpdir(), 'postline-production-'));
  await chmod(parent, 0o711); // as root, Postgres runs as the postgres user and must enter it
  const dataDir = path.join(parent, 'data');
  const server = spawnServer({ POSTLINE_DATA_DIR: dataDir, POSTLINE_SCRYPT_COST: '10' }, { command: webCommand(), detached: true });
  try {
    const url = await server.listening;
    const postmaster = Number((await readFile(path.join(dataDir, 'pgdata', 'postmaster.pid'), 'utf8')).split('\n')[0]);
    assert.ok(isAlive(postmaster), 'the embedded Postgres runs');
    const user = await register(url);
    const { cursor } = await poll(url, user.token);
    const waiting = poll(url, user.token, { cursor, timeout: 30 });
    await waitFor(async () => metricValue(await scrapeMetrics(url), 'postline_subscribers', { kind: 'poll' }) === 1, 5000, 'the poll waiting');

    stop(server);
    const answer = await waiting;
    assert.equal(answer.status, 200, `the waiting poll was answered: ${JSON.stringify(answer)}`);
    assert.deepEqual({ events: answer.events, cursor: answer.cursor }, { events: [], cursor }, 'with its own cursor');
    assert.equal(await server.exited, 0, server.output.slice(-10).join('\n'));
    await waitFor(() => !isAlive(postmaster), 5000, 'the embedded Postgres gone');
    assert.ok(!existsSync(path.join(dataDir, 'pgdata', 'postmaster.pid')), 'Postgres shut down cleanly');
    assert.ok(!isAlive(-server.child.pid!), 'no process is left in the server’s group');
    assert.ok(!isAlive(-postmaster), 'no Postgres process is left');
    assert.ok(server.output.some((line) => line.includes('"msg":"stopped"')), 'the server logged that it stopped');
    const troubles = server.output.filter((line) => /^\s+at |"level":[456]0/.test(line));
    assert.deepEqual(troubles, [], 'no warnings, errors or stack traces: Postgres outlived the drain');
    return server.output;
  } finally {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
    await rm(parent, { recursive: true, force: true });
  }
}

test('the Procfile web: line, signalled once with SIGTERM, drains and stops everything it started, exit 0', async () => {
  await startAndStop((server) => server.child.kill('SIGTERM'));
});

test('Ctrl-C (SIGINT to the whole process group) drains the server first, then stops Postgres, exit 0', async () => {
  const output = await startAndStop((server) => process.kill(-server.child.pid!, 'SIGINT'));
  assert.ok(output.some((line) => line.includes('"signal":"SIGINT"')));
});
