import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import pg from 'pg';
import request from 'supertest';
import { PASSWORD, register } from './support/api.js';
import { createTestDatabase } from './support/database.js';
import { MIGRATION_LOCK } from '../src/db/migrate.js';
import { isAlive, spawnServer } from './support/process.js';
import { waitFor } from './support/sse.js';

describe('start-up', () => {
  test('a bad setting stops the start with a one-line error and exit code 1', async () => {
    for (const [name, value] of [['PORT', 'eighty'], ['POSTLINE_RATE_LIMIT_PER_MIN', '-5'], ['DATABASE_URL', 'mysql://x'], ['POSTLINE_LOG_LEVEL', 'loud']]) {
      const server = spawnServer({ [name!]: value });
      assert.equal(await server.exited, 1, name);
      assert.equal(server.output.length, 1, `${name}: ${server.output.join('\n')}`);
      assert.match(server.output[0]!, new RegExp(`^postline: invalid ${name}: `));
    }
  });

  test('an unreachable DATABASE_URL is a one-line error without the password, exit code 1', async () => {
    const server = spawnServer({ DATABASE_URL: 'postgres://someone:hunter2secret@127.0.0.1:1/nowhere' });
    assert.equal(await server.exited, 1);
    const errorLines = server.output.filter((line) => line.startsWith('postline:'));
    assert.equal(errorLines.length, 1, server.output.join('\n'));
    assert.match(errorLines[0]!, /cannot reach Postgres at 127\.0\.0\.1:1\/nowhere/);
    assert.ok(!server.output.join('\n').includes('hunter2secret'));
    assert.ok(!server.output.join('\n').includes('    at '), 'no stack trace');
  });

  test('a port in use is one line naming PORT, with no stack trace, and exit code 1', async () => {
    const db = await createTestDatabase();
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const { port } = taken.address() as AddressInfo;
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
        cwd: path.resolve(import.meta.dirname, '..'),
        env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: db.url, PORT: String(port), HOST: '127.0.0.1' },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const [code] = await once(child, 'exit');
      assert.equal(code, 1);
      assert.equal(stderr, `postline: port ${port} on 127.0.0.1 is already in use: set PORT to a free port, or stop what listens there\n`);
      assert.ok(!/"stack"|\n\s+at /.test(stdout), `no stack traces in the logs:\n${stdout}`);
      assert.ok(!/"level":40/.test(stdout), `no warnings on the way out:\n${stdout}`);
    } finally {
      taken.close();
      await db.drop();
    }
  });

  test('the start line shows the address it is bound to', async () => {
    const db = await createTestDatabase();
    const server = spawnServer({ DATABASE_URL: db.url, HOST: '0.0.0.0' });
    try {
      const url = await server.listening;
      const line = server.output.find((text) => text.includes('postline is listening'))!;
      const port = new URL(url).port;
      assert.match(line, new RegExp(`"address":"0\\.0\\.0\\.0","port":${port},.*"msg":"postline is listening on 0\\.0\\.0\\.0:${port} \\(every address of this machine\\): open http://127\\.0\\.0\\.1:${port}"`));
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
      await db.drop();
    }
  });

  test('two instances started at once on an empty database both migrate and serve', async () => {
    const db = await createTestDatabase({ migrated: false });
    const servers = [spawnServer({ DATABASE_URL: db.url }), spawnServer({ DATABASE_URL: db.url })];
    try {
      const urls = await Promise.all(servers.map((server) => server.listening));
      for (const url of urls) await request(url).get('/readyz').expect(200);
      const user = await register(urls[0]!);
      await request(urls[1]!).get('/v1/me').set('Authorization', `Bearer ${user.token}`).expect(200);
      const migrations = await db.query<{ name: string }>('SELECT name FROM postline_migrations ORDER BY id');
      const files = (await readdir(new URL('../sql/', import.meta.url))).filter((f) => f.endsWith('.sql')).sort();
      assert.deepEqual(migrations.map((m) => `${m.name}.sql`), files, 'each migration applied exactly once');
    } finally {
      for (const server of servers) server.child.kill('SIGTERM');
      await Promise.all(servers.map((server) => server.exited));
      await db.drop();
    }
  });

  test('SIGTERM stops the server cleanly with exit code 0', async () => {
    const db = await createTestDatabase();
    const server = spawnServer({ DATABASE_URL: db.url });
    try {
      const url = await server.listening;
      await request(url).get('/healthz').expect(200, { status: 'ok' });
      server.child.kill('SIGTERM');
      assert.equal(await server.exited, 0);
      assert.ok(server.output.some((line) => line.includes('"msg":"stopped"')));
    } finally {
      await db.drop();
    }
  });

  test('a SIGTERM during start-up lets the start finish, then drains: exit code 0, not death by the signal', async () => {
    const db = await createTestDatabase();
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK.toString()]);
    const server = spawnServer({ DATABASE_URL: db.url });
    try {
      const migrating = async () =>
        (await holder.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'postline-migrate' AND wait_event_type = 'Lock'`)).rowCount === 1;
      await waitFor(migrating, 10_000, 'the start waiting for the migration lock');
      server.child.kill('SIGTERM');
      await waitFor(() => server.output.some((line) => line.includes('"msg":"shutting down"')), 5000, 'the signal heard');
      await holder.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK.toString()]);
      assert.equal(await server.exited, 0, server.output.join('\n'));
      assert.ok(server.output.some((line) => line.includes('"msg":"stopped"')));
    } finally {
      if (server.child.exitCode === null) server.child.kill('SIGKILL');
      await holder.end();
      await db.drop();
    }
  });
});

describe('npm start', () => {
  /** `npm start` signalled by `stop`: the server it started drains and stops, npm exits 0, nothing is left. */
  async function stopsCleanly(stop: (npm: ReturnType<typeof spawnServer>) => void): Promise<void> {
    const db = await createTestDatabase();
    const npm = spawnServer({ DATABASE_URL: db.url }, { command: ['npm', 'start'], detached: true });
    let pid = 0;
    try {
      await npm.listening;
      pid = Number(/"pid":(\d+)/.exec(npm.output.find((line) => line.includes('postline is listening'))!)![1]);
      stop(npm);
      assert.equal(await npm.exited, 0, `npm and the server exit 0, not by the signal:\n${npm.output.join('\n')}`);
      assert.equal(npm.output.filter((line) => line.includes('"msg":"stopped"')).length, 1, 'the server drained and stopped once');
      await waitFor(() => !isAlive(-npm.child.pid!), 5000, 'every process of the group to exit');
    } finally {
      if (pid && isAlive(pid)) process.kill(pid, 'SIGKILL');
      await db.drop();
    }
  }

  // npm passes SIGTERM to its direct child only; `npm start` execs node, so that child is the server.
  test('SIGTERM to npm stops the server it started; nothing is left running', async () => {
    await stopsCleanly((npm) => npm.child.kill('SIGTERM'));
  });

  // The server gets SIGINT twice: from the terminal, and forwarded by npm.
  test('Ctrl-C (SIGINT to the whole process group) drains the server once; nothing is left running', async () => {
    await stopsCleanly((npm) => process.kill(-npm.child.pid!, 'SIGINT'));
  });
});

describe('the embedded Postgres (no DATABASE_URL)', () => {
  test('serves, keeps its data in POSTLINE_DATA_DIR across restarts, and stops with the server', async () => {
    const parent = await mkdtemp(path.join(tmpdir(), 'postline-embedded-'));
    await chmod(parent, 0o711);
    const dataDir = path.join(parent, 'data');
    try {
      const first = spawnServer({ POSTLINE_DATA_DIR: dataDir });
      const user = await register(await first.listening);
      first.child.kill('SIGTERM');
      assert.equal(await first.exited, 0);
      assert.ok(!existsSync(path.join(dataDir, 'pgdata', 'postmaster.pid')), 'Postgres stopped with the server');
      assert.match(await readFile(path.join(dataDir, 'password'), 'utf8'), /^\S{20,}\n$/);

      const second = spawnServer({ POSTLINE_DATA_DIR: dataDir });
      const url = await second.listening;
      await request(url).post('/v1/sessions').send({ username: user.username, password: PASSWORD }).expect(201);
      second.child.kill('SIGTERM');
      assert.equal(await second.exited, 0);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  test('a Postgres that cannot start is a one-line error, exit code 1', async () => {
    const parent = await mkdtemp(path.join(tmpdir(), 'postline-embedded-'));
    await chmod(parent, 0o711);
    const blocker = createServer().listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    try {
      const port = (blocker.address() as AddressInfo).port;
      const server = spawnServer({ POSTLINE_DATA_DIR: path.join(parent, 'data'), POSTLINE_EMBEDDED_PG_PORT: String(port) });
      assert.equal(await server.exited, 1);
      const errorLines = server.output.filter((line) => line.startsWith('postline:'));
      assert.equal(errorLines.length, 1, server.output.join('\n'));
      assert.match(errorLines[0]!, new RegExp(`embedded Postgres .* could not start .*free port ${port}`));
    } finally {
      blocker.close();
      await rm(parent, { recursive: true, force: true });
    }
  });
});
