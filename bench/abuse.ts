/**
 * `npm run bench:abuse`: what the floods of issue 15 cost an instance, for docs/reliability.md's
 * "abuse" table. One postline instance (the sources in --server=DIR, default this tree: run it on
 * a checkout of the previous release for the "before" figures) on a fresh database, with every
 * setting at its default except POSTLINE_ADMIN_PORT (ignored by releases without it) and one
 * trusted proxy hop (so that a flood can come from many addresses); --config adds settings.
 * A victim (a user sending five messages a second to another, who has a stream open) is measured
 * throughout: send-to-receive latency while each flood runs, one at a time, from worker processes:
 *
 * - slow bodies: --slow connections each send the head of `POST /v1/threads/1/messages` with a
 *   `Content-Length` of 60 000 and one body byte every 5 s (the probe);
 * - slow heads: as many connections sending one header byte every 5 s;
 * - made-up tokens: autocannon, 50 connections, `GET /v1/poll` with a new random `pl_` token each time;
 * - failed logins: autocannon, 50 connections, wrong passwords for one account, each from another address.
 *
 * Halfway through each autocannon flood the target account's owner signs in from an address of
 * their own (does the right password still work?).
 * Prints a table and writes bench/results/abuse-<label>.json.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort, startEmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { createLogger } from '../src/log.js';
import { spawnServer } from '../test/support/process.js';
import { Worker } from './lib/ipc.js';
import { newHistogram, summarize, type LatencySummary } from './lib/latency.js';
import { parseConfig, parseOptions } from './lib/options.js';
import { rssBytes } from './lib/proc.js';

const DEFAULTS = {
  /** The postline tree to run (its src/main.ts, through tsx): this one, or the previous release's. */
  server: path.resolve(path.dirname(new URL(import.meta.url).pathname), '..'),
  /** What the results are called (bench/results/abuse-<label>.json). */
  label: 'after',
  /** Slow connections per flood: more than the default POSTLINE_MAX_CONNECTIONS (10 000), within this machine's 20 000 descriptors per process. */
  slow: 12_000,
  /** How long each slow flood is held (the default request timeout is 20 s). */
  slowSeconds: 30,
  floodSeconds: 10,
  /** Other settings, `NAME=VALUE,…`. */
  config: '',
  out: 'bench/results',
};
const log = (message: string) => console.error(`[abuse ${new Date().toISOString().slice(11, 19)}] ${message}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const PASSWORD = 'correct horse battery';
const VICTIM_ADDRESS = '198.51.100.1';

/** Sockets the process holds (its open TCP connections, the listening ones and Postgres' included). */
function socketsOf(pid: number): number {
  let sockets = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++;
    } catch {
      // closed meanwhile
    }
  }
  return sockets;
}

async function call<T>(url: string, init: { method?: string; token?: string; body?: unknown } = {}): Promise<T> {
  const response = await fetch(url, {
    method: init.method ?? (init.body ? 'POST' : 'GET'),
    headers: { 'Content-Type': 'application/json', 'X-Forwarded-For': VICTIM_ADDRESS, ...(init.token && { Authorization: `Bearer ${init.token}` }) },
    ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) throw new Error(`${init.method ?? 'POST'} ${url}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** Whether `url` answers 200 within 2 s. */
async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
}

/**
 * The victim: `sender` sends five messages a second (each stamped with its send time) to
 * `receiver`, whose SSE stream measures when each arrives. Latency is kept per phase.
 */
class Victim {
  private histogram = newHistogram();
  private failed = 0;
  private timer: NodeJS.Timeout | undefined;
  private stream: http.ClientRequest | undefined;

  constructor(
    private readonly url: string,
    private readonly sender: { token: string },
    private readonly receiver: { token: string },
    private readonly threadId: string,
  ) {}

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.stream = http.get(`${this.url}/v1/events`, { headers: { Authorization: `Bearer ${this.receiver.token}`, 'X-Forwarded-For': VICTIM_ADDRESS } }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          for (const match of chunk.matchAll(/"body":"t=([\d.]+)/g)) this.histogram.recordValue(Math.max(1, Math.round((Date.now() - Number(match[1])) * 1000)));
        });
        resolve();
      });
      this.stream.on('error', reject);
    });
    this.timer = setInterval(() => {
      call(`${this.url}/v1/threads/${this.threadId}/messages`, { token: this.sender.token, body: { body: `t=${Date.now()}` } }).catch(() => this.failed++);
    }, 200);
  }

  /** The latency since the last call (and the sends that failed), starting over. */
  take(): LatencySummary & { failedSends: number } {
    const summary = { ...summarize(this.histogram), failedSends: this.failed };
    this.histogram = newHistogram();
    this.failed = 0;
    return summary;
  }

  stop(): void {
    clearInterval(this.timer);
    this.stream?.destroy();
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2), DEFAULTS);
  const logger = createLogger('warn');
  const dir = await mkdtemp(path.join(tmpdir(), 'postline-abuse-'));
  await chmod(dir, 0o711);
  let stopPostgres = async () => {};
  let serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    const embedded = await startEmbeddedPostgres({ dataDir: dir, port: 0, logger, postgresFlags: ['-c', 'max_connections=100'] });
    serverUrl = embedded.url;
    stopPostgres = () => embedded.stop();
  }
  const database = `postline_abuse_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const databaseUrl = Object.assign(new URL(serverUrl), { pathname: `/${database}` }).toString();

  /** Transactions the database has run so far (pg_stat_database: what the floods cost it). */
  const stats = new pg.Client({ connectionString: databaseUrl });
  await stats.connect();
  const transactions = async () => {
    await sleep(1000); // statistics are flushed about once a second
    const { rows } = await stats.query<{ n: string }>('SELECT (xact_commit + xact_rollback)::text AS n FROM pg_stat_database WHERE datname = $1', [database]);
    return Number(rows[0]!.n);
  };
  const [port, adminPort] = [await freePort(), await freePort()];
  const extra = parseConfig(options.config);
  const env = { DATABASE_URL: databaseUrl, PORT: String(port), POSTLINE_ADMIN_PORT: String(adminPort), POSTLINE_TRUST_PROXY: '1', POSTLINE_LOG_LEVEL: 'warn', ...extra };
  log(`starting ${options.server}/src/main.ts (${JSON.stringify(extra)})`);
  const server = spawnServer(env, { command: [process.execPath, '--import', 'tsx', path.join(options.server, 'src/main.ts')] });
  const url = await server.listening.catch(async () => {
    // A quieter log level hides the "listening" line; a fixed port answers /healthz.
    for (let i = 0; i < 100 && !(await answers(`http://127.0.0.1:${port}/healthz`)); i++) await sleep(100);
    return `http://127.0.0.1:${port}`;
  });
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const pid = server.child.pid!;
  const results: Record<string, unknown> = { label: options.label, server: options.server, config: extra, slow: options.slow };
  const victim = await (async () => {
    const names = [`victim_${randomBytes(3).toString('hex')}`, `friend_${randomBytes(3).toString('hex')}`];
    const [sender, receiver] = await Promise.all(names.map((username) => call<{ user: { id: string }; token: string }>(`${url}/v1/users`, { body: { username, password: PASSWORD } })));
    const { thread } = await call<{ thread: { id: string } }>(`${url}/v1/threads`, { token: sender!.token, body: { members: [receiver!.user.id] } });
    // Friends: the thread is no request (releases without requests answer 404, which is fine).
    await fetch(`${url}/v1/threads/${thread.id}/accept`, { method: 'POST', headers: { Authorization: `Bearer ${receiver!.token}` } });
    const account = `target_${randomBytes(3).toString('hex')}`;
    await call(`${url}/v1/users`, { body: { username: account, password: PASSWORD } });
    results.account = account;
    return new Victim(url, sender!, receiver!, thread.id);
  })();
  await victim.start();

  try {
    log('baseline: the victim alone');
    const idle = await transactions();
    victim.take();
    await sleep(options.floodSeconds * 1000);
    const victimAlone = victim.take();
    results.baseline = { victim: victimAlone, sockets: socketsOf(pid), rssMb: rssBytes(pid) / 2 ** 20, databaseTransactionsPerSecond: ((await transactions()) - idle) / options.floodSeconds };

    for (const [name, head, trickle] of [
      ['slow bodies', 'POST /v1/threads/1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n', '{"body":"' + 'x'.repeat(100)],
      ['slow heads', 'POST /v1/threads/1/messages HTTP/1.1\r\nHost: x\r\n', 'X-Slow: ' + 'x'.repeat(100)],
    ] as const) {
      log(`${name}: ${options.slow} connections, a byte every 5 s, for ${options.slowSeconds} s`);
      const rssBefore = rssBytes(pid);
      const slow = Worker.start('workers/slow-clients.ts');
      const opening = slow.call('open', { port, count: options.slow, head, trickle, everyMs: 5000 });
      let maxSockets = 0;
      let peakRss = rssBefore;
      const probes = { api: 0, apiOk: 0, admin: 0, adminOk: 0 };
      const startedAt = Date.now();
      while (Date.now() - startedAt < options.slowSeconds * 1000) {
        maxSockets = Math.max(maxSockets, socketsOf(pid));
        peakRss = Math.max(peakRss, rssBytes(pid));
        const [api, adminOk] = await Promise.all([answers(`${url}/healthz`), answers(`${adminUrl}/healthz`)]);
        probes.api++;
        probes.admin++;
        if (api) probes.apiOk++;
        if (adminOk) probes.adminOk++;
        await sleep(1000);
      }
      await opening;
      const stats = await slow.call('stats');
      slow.call('close').catch(() => {});
      await sleep(500);
      slow.stop();
      // Recovery: the API port answers again once they are gone.
      let recoveredMs: number | null = null;
      const leftAt = Date.now();
      while (Date.now() - leftAt < 30_000) {
        if (await answers(`${url}/healthz`)) {
          recoveredMs = Date.now() - leftAt;
          break;
        }
        await sleep(200);
      }
      results[name] = { victim: victim.take(), maxSockets, rssMb: { before: rssBefore / 2 ** 20, peak: peakRss / 2 ** 20 }, clients: stats, probes, recoveredMs };
    }

    for (const [name, job] of [
      ['made-up tokens', { url: `${url}/v1/poll`, randomize: 'token', headers: { 'X-Forwarded-For': '203.0.113.1' } }],
      ['failed logins', { url: `${url}/v1/sessions`, method: 'POST', randomize: 'forwarded-for', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: results.account, password: 'not the password' }) }],
    ] as const) {
      log(`${name}: autocannon, 50 connections, ${options.floodSeconds} s`);
      const before = await transactions();
      victim.take(); // the wait for the statistics is not the flood
      const flood = Worker.start('workers/autocannon.ts');
      const running = flood.call('run', { ...job, connections: 50, durationMs: options.floodSeconds * 1000 });
      // Halfway through, the account's owner signs in with the right password from an address of their own.
      await sleep((options.floodSeconds * 1000) / 2);
      const owner = await fetch(`${url}/v1/sessions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Forwarded-For': '198.51.100.2' },
        body: JSON.stringify({ username: results.account, password: PASSWORD }),
      });
      const outcome = await running;
      flood.stop();
      const victimDuring = victim.take();
      const databaseTransactions = (await transactions()) - before;
      results[name] = { victim: victimDuring, ownerSignIn: owner.status, flood: outcome, databaseTransactionsPerSecond: databaseTransactions / options.floodSeconds };
      await sleep(1000);
    }
  } finally {
    victim.stop();
    await stats.end();
    server.child.kill('SIGTERM');
    await server.exited;
    const cleanup = new pg.Client({ connectionString: serverUrl });
    await cleanup.connect();
    await cleanup.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await cleanup.end();
    await stopPostgres();
    await rm(dir, { recursive: true, force: true });
  }
  await mkdir(options.out, { recursive: true });
  const file = path.join(options.out, `abuse-${options.label}.json`);
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  console.log(JSON.stringify(results, null, 2));
  log(`written: ${file}`);
}

await main();
