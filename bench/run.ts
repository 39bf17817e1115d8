/**
 * `npm run bench`: postline against baselines measured in the same run, on this machine.
 *
 * Starts its own Postgres (embedded unless DATABASE_URL), two postline instances and load
 * generators, each in its own process, all on 127.0.0.1; runs four bounded phases (fan-out,
 * durable sends, end to end, long-poll), prints a table and writes bench/results/latest.json and
 * bench/results/latest.svg. Options: `npm run bench -- --streams=1000 --phases=fanout,poll …`
 * (see DEFAULTS). Figures are reported as ratios against the baselines: machines are noisy.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { renderChart } from './lib/chart.js';
import { startCluster, type Cluster } from './lib/cluster.js';
import { Worker } from './lib/ipc.js';
import { merge, summarize } from './lib/latency.js';
import { rssBytes, totalCpu } from './lib/proc.js';
import { createGroup, headCursor, registerUsers, sendOne, type BenchUser } from './lib/seed.js';

const DEFAULTS = {
  phases: 'fanout,sends,e2e,poll',
  /** Idle SSE streams held open (split over both instances), ten per user. */
  streams: 5000,
  /** Broadcast messages per second during the fan-out phase (each reaches every stream). */
  broadcastRate: 10,
  fanoutSeconds: 10,
  /** Concurrent senders in the durable-sends phase. */
  senders: 64,
  sendSeconds: 10,
  /** Messages per second in the end-to-end phase, spread over threads of ten users. */
  e2eRate: 500,
  pollers: 500,
  e2eSeconds: 15,
  pollSeconds: 8,
  pollConnections: 50,
  /** Where results go; the smoke test points this elsewhere. */
  out: 'bench/results',
};
type Options = typeof DEFAULTS;

function parseOptions(argv: string[]): Options {
  const options: Record<string, string | number> = { ...DEFAULTS };
  for (const arg of argv) {
    const match = /^--(\w+)=(.*)$/.exec(arg);
    if (!match || !(match[1]! in DEFAULTS)) throw new Error(`unknown option ${arg}; options: ${Object.keys(DEFAULTS).join(', ')}`);
    const current = DEFAULTS[match[1] as keyof Options];
    options[match[1]!] = typeof current === 'number' ? Number(match[2]) : match[2]!;
  }
  return options as Options;
}

const STREAMS_PER_USER = 10;
const GROUP_SIZE = 10;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (message: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(100);
  }
  return false;
}

/** Everything the phases share: the cluster, users, threads, and the open streams. */
interface World {
  cluster: Cluster;
  urls: string[];
  pids: number[];
  users: BenchUser[];
  groups: Array<{ threadId: string; members: BenchUser[] }>;
  streamWorkers: Worker[];
}

async function openStreams(workers: Worker[], specs: Array<{ url: string; token?: string; tag?: string }>): Promise<void> {
  await Promise.all(workers.map((worker, w) => worker.call('open', { streams: specs.filter((_, i) => i % workers.length === w) })));
}

const sumOf = async (workers: Worker[], command: string) =>
  (await Promise.all(workers.map((worker) => worker.call<number>(command)))).reduce((a, b) => a + b, 0);

/** Open ten streams per user, alternating instances; returns the instances' RSS growth per stream. */
async function openUserStreams(world: World): Promise<{ streams: number; rssKbPerStream: number[] }> {
  const rssBefore = world.pids.map(rssBytes);
  const specs = world.users.flatMap((user, u) =>
    Array.from({ length: STREAMS_PER_USER }, (_, s) => ({
      url: `${world.urls[(u + s) % 2]}/v1/events`,
      token: user.token,
      tag: world.groups[Math.floor(u / GROUP_SIZE)]!.threadId,
    })),
  );
  log(`opening ${specs.length} SSE streams`);
  await openStreams(world.streamWorkers, specs);
  await sleep(2000); // let the presence writes of the arrivals settle before measuring
  return {
    streams: specs.length,
    rssKbPerStream: world.pids.map((pid, i) => (rssBytes(pid) - rssBefore[i]!) / (specs.length / world.pids.length) / 1024),
  };
}

async function fanout(world: World, options: Options, opened: { streams: number; rssKbPerStream: number[] }) {
  const [a] = world.urls;
  const broadcaster = world.users[0]!;
  const everyone = await createGroup(a!, broadcaster, world.users.slice(1), 'broadcast');
  await sleep(500);
  const framesBefore = await sumOf(world.streamWorkers, 'frames');
  const cpuBefore = totalCpu(world.pids);
  log(`broadcasting ${options.broadcastRate} msg/s for ${options.fanoutSeconds} s`);
  const sender = Worker.start('workers/senders.ts');
  const sent = await sender.call<{ acked: Record<string, number[]> }>('rate', {
    targets: [{ url: a, token: broadcaster.token, threadId: everyone }],
    perSecond: options.broadcastRate,
    durationMs: options.fanoutSeconds * 1000,
  });
  sender.stop();
  const broadcasts = sent.acked[everyone]?.length ?? 0;
  const expectedFrames = broadcasts * opened.streams;
  await waitUntil(async () => (await sumOf(world.streamWorkers, 'frames')) - framesBefore >= expectedFrames, 30_000);
  const delivered = (await sumOf(world.streamWorkers, 'frames')) - framesBefore;
  const cpuPerDelivery = (totalCpu(world.pids) - cpuBefore) / delivered;

  // The same broadcast through a raw node:http SSE server: one pre-built frame written to each socket.
  const pool = new pg.Pool({ connectionString: world.cluster.databaseUrl, max: 1 });
  const { rows } = await pool.query<{ frame: string }>(
    `SELECT 'id:' || id || E'\\nevent:' || type || E'\\ndata:' || envelope::text || E'\\n\\n' AS frame FROM events WHERE type = 'message.created' ORDER BY id DESC LIMIT 1`,
  );
  await pool.end();
  const baseline = Worker.start('baselines/raw-sse-server.ts');
  const port = await baseline.call<number>('listen');
  const baselineRssBefore = rssBytes(baseline.pid);
  const baselineStreams = Worker.start('workers/sse-clients.ts');
  await baselineStreams.call('open', { streams: Array.from({ length: opened.streams }, () => ({ url: `http://127.0.0.1:${port}/` })) });
  const baselineRssPerStream = (rssBytes(baseline.pid) - baselineRssBefore) / opened.streams;
  const baselineCpuBefore = totalCpu([baseline.pid]);
  const baselineFramesBefore = await baselineStreams.call<number>('frames');
  const written = await baseline.call<number>('broadcast', {
    frame: rows[0]!.frame,
    perSecond: options.broadcastRate,
    durationMs: options.fanoutSeconds * 1000,
  });
  await waitUntil(async () => (await baselineStreams.call<number>('frames')) - baselineFramesBefore >= written, 30_000);
  const baselineCpuPerDelivery = (totalCpu([baseline.pid]) - baselineCpuBefore) / written;
  baseline.stop();
  baselineStreams.stop();

  return {
    streams: opened.streams,
    broadcasts,
    delivered,
    expectedDeliveries: expectedFrames,
    cpuMicrosPerDelivery: cpuPerDelivery * 1e6,
    baselineCpuMicrosPerDelivery: baselineCpuPerDelivery * 1e6,
    cpuRatio: cpuPerDelivery / baselineCpuPerDelivery,
    rssKbPerStream: opened.rssKbPerStream,
    baselineRssKbPerStream: baselineRssPerStream / 1024,
  };
}

async function durableSends(world: World, options: Options) {
  const [a] = world.urls;
  const [listener, ...rest] = await registerUsers(world.urls, options.senders + 1);
  const senders = rest;
  const threads = await Promise.all(senders.map((sender, i) => createGroup(world.urls[i % 2]!, sender, [listener!], `send ${i}`)));
  const streams = Worker.start('workers/sse-clients.ts');
  await streams.call('open', { streams: [{ url: `${a}/v1/events`, token: listener!.token, tag: 'all' }] });
  await streams.call('track', { on: true });
  log(`${options.senders} concurrent senders for ${options.sendSeconds} s`);
  const worker = Worker.start('workers/senders.ts');
  const outcome = await worker.call<{ acked: Record<string, number[]>; failed: number; latency: string }>('concurrency', {
    targets: senders.map((sender, i) => ({ url: world.urls[i % 2], token: sender.token, threadId: threads[i] })),
    concurrency: options.senders,
    durationMs: options.sendSeconds * 1000,
  });
  worker.stop();
  const acked = Object.values(outcome.acked).flat();
  // The listener is in every sender's thread: its stream must get every acknowledged message once.
  await streams.call('expect', { expected: { all: acked } });
  await waitUntil(() => streams.call<boolean>('complete'), 30_000);
  const delivery = await streams.call<{ lost: number; duplicated: number }>('verify');
  streams.stop();
  const db = new pg.Client({ connectionString: world.cluster.databaseUrl });
  await db.connect();
  const { rows } = await db.query<{ stored: number }>('SELECT count(*)::int AS stored FROM messages WHERE id = ANY ($1::bigint[])', [acked]);

  log(`baseline: raw INSERT + pg_notify per transaction, ${options.senders} clients`);
  const baseline = Worker.start('baselines/pg-insert-notify.ts');
  const committed = await baseline.call<number>('run', {
    databaseUrl: world.cluster.databaseUrl,
    concurrency: options.senders,
    durationMs: options.sendSeconds * 1000,
  });
  baseline.stop();
  await db.end();
  const perSecond = acked.length / options.sendSeconds;
  const baselinePerSecond = committed / options.sendSeconds;
  return {
    acknowledged: acked.length,
    failed: outcome.failed,
    acknowledgedPerSecond: perSecond,
    baselinePerSecond,
    ratio: perSecond / baselinePerSecond,
    storedOfAcknowledged: rows[0]!.stored,
    lostFromDatabase: acked.length - rows[0]!.stored,
    lostOnStream: delivery.lost,
    duplicatedOnStream: delivery.duplicated,
    sendLatency: summarize(merge([outcome.latency])),
  };
}

async function endToEnd(world: World, options: Options) {
  const [a] = world.urls;
  const pollerUsers = world.users.slice(0, options.pollers);
  const tagOf = (index: number) => world.groups[Math.floor(index / GROUP_SIZE)]!.threadId;
  const pollers = Worker.start('workers/pollers.ts');
  const cursor = await headCursor(a!, world.users[0]!);
  await pollers.call('start', {
    pollers: pollerUsers.map((user, i) => ({ url: world.urls[i % 2], token: user.token, tag: tagOf(i) })),
    cursor,
  });
  await Promise.all(world.streamWorkers.map((worker) => worker.call('track', { on: true })));
  await sleep(1000);
  log(`end to end: ${options.e2eRate} msg/s over ${world.groups.length} threads for ${options.e2eSeconds} s`);
  const sender = Worker.start('workers/senders.ts');
  const outcome = await sender.call<{ acked: Record<string, number[]>; failed: number }>('rate', {
    targets: world.groups.map((group, i) => ({ url: world.urls[i % 2], token: group.members[0]!.token, threadId: group.threadId })),
    perSecond: options.e2eRate,
    durationMs: options.e2eSeconds * 1000,
  });
  sender.stop();
  const receivers = [...world.streamWorkers, pollers];
  await Promise.all(receivers.map((worker) => worker.call('expect', { expected: outcome.acked })));
  await waitUntil(async () => (await Promise.all(receivers.map((w) => w.call<boolean>('complete')))).every(Boolean), 30_000);
  await sleep(500); // anything duplicated would arrive by now
  const streamResults = await Promise.all(world.streamWorkers.map((w) => w.call<{ lost: number; duplicated: number; latency: string }>('verify')));
  const pollResult = await pollers.call<{ lost: number; duplicated: number; latency: string }>('stop');
  pollers.stop();
  const acked = Object.values(outcome.acked).flat().length;
  return {
    sent: acked,
    failedSends: outcome.failed,
    achievedRate: acked / options.e2eSeconds,
    sse: { ...summarize(merge(streamResults.map((r) => r.latency))), lost: sum(streamResults, 'lost'), duplicated: sum(streamResults, 'duplicated') },
    poll: { ...summarize(merge([pollResult.latency])), lost: pollResult.lost, duplicated: pollResult.duplicated },
  };
}

const sum = <K extends string>(items: Array<Record<K, number>>, key: K) => items.reduce((total, item) => total + item[key], 0);

async function longPoll(world: World, options: Options) {
  const [a] = world.urls;
  const [reader, writer] = await registerUsers(world.urls, 2);
  const threadId = await createGroup(a!, writer!, [reader!], 'poll');
  const cursor = await headCursor(a!, reader!);
  for (let i = 0; i < 5; i++) await sendOne(a!, writer!, threadId, `ready ${i}`);
  const runner = Worker.start('workers/autocannon.ts');
  log(`long-poll: ${options.pollConnections} connections for ${options.pollSeconds} s, 5 events ready per poll`);
  const ours = await runner.call<{ requestsPerSecond: number; non2xx: number; errors: number; latencyP99: number }>('run', {
    url: `${a}/v1/poll?cursor=${cursor}&timeout=0`,
    headers: { Authorization: `Bearer ${reader!.token}` },
    connections: options.pollConnections,
    durationMs: options.pollSeconds * 1000,
  });
  const baseline = Worker.start('baselines/raw-json-server.ts');
  const port = await baseline.call<number>('listen');
  const raw = await runner.call<{ requestsPerSecond: number }>('run', {
    url: `http://127.0.0.1:${port}/`,
    connections: options.pollConnections,
    durationMs: options.pollSeconds * 1000,
  });
  baseline.stop();
  runner.stop();
  return {
    requestsPerSecond: ours.requestsPerSecond,
    non2xx: ours.non2xx,
    errors: ours.errors,
    baselineRequestsPerSecond: raw.requestsPerSecond,
    ratio: ours.requestsPerSecond / raw.requestsPerSecond,
  };
}

function machine() {
  const cpus = os.cpus();
  return { cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.type()} ${os.release()}` };
}

interface Results {
  fanout?: Awaited<ReturnType<typeof fanout>>;
  sends?: Awaited<ReturnType<typeof durableSends>>;
  e2e?: Awaited<ReturnType<typeof endToEnd>>;
  poll?: Awaited<ReturnType<typeof longPoll>>;
}

function verdicts(results: Results) {
  const rows: Array<[string, string, string, boolean]> = [];
  const f = results.fanout;
  if (f) {
    rows.push(['fan-out CPU per delivery vs raw SSE', `${f.cpuRatio.toFixed(2)}× (${f.cpuMicrosPerDelivery.toFixed(2)} µs vs ${f.baselineCpuMicrosPerDelivery.toFixed(2)} µs)`, '≤ 1.2×', f.cpuRatio <= 1.2]);
    const rss = Math.max(...f.rssKbPerStream);
    rows.push(['RSS per idle stream', `${rss.toFixed(1)} KB (raw: ${f.baselineRssKbPerStream.toFixed(1)} KB)`, '≤ 20 KB', rss <= 20]);
  }
  const s = results.sends;
  if (s) {
    rows.push(['durable sends vs INSERT+NOTIFY per tx', `${s.ratio.toFixed(2)}× (${s.acknowledgedPerSecond.toFixed(0)}/s vs ${s.baselinePerSecond.toFixed(0)}/s)`, '≥ 2×', s.ratio >= 2]);
    rows.push(['durable sends lost / duplicated', `${s.lostFromDatabase + s.lostOnStream} / ${s.duplicatedOnStream}`, '0 / 0', s.lostFromDatabase + s.lostOnStream + s.duplicatedOnStream === 0]);
  }
  const e = results.e2e;
  if (e) {
    rows.push(['e2e SSE latency p50 / p99', `${e.sse.p50} / ${e.sse.p99} ms (max ${e.sse.max}) at ${e.achievedRate.toFixed(0)} msg/s`, '≤ 10 / ≤ 50 ms', e.sse.p50 <= 10 && e.sse.p99 <= 50]);
    rows.push(['e2e long-poll latency p50 / p99', `${e.poll.p50} / ${e.poll.p99} ms (max ${e.poll.max})`, '(reported)', true]);
    const lost = e.sse.lost + e.poll.lost;
    const duplicated = e.sse.duplicated + e.poll.duplicated;
    rows.push(['e2e lost / duplicated', `${lost} / ${duplicated} of ${e.sse.count + e.poll.count} deliveries`, '0 / 0', lost + duplicated === 0]);
  }
  const p = results.poll;
  if (p) rows.push(['long-poll req/s vs raw node:http JSON', `${p.ratio.toFixed(2)}× (${p.requestsPerSecond.toFixed(0)} vs ${p.baselineRequestsPerSecond.toFixed(0)})`, '≥ 0.3×', p.ratio >= 0.3]);
  return rows;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const phases = new Set(options.phases.split(','));
  log(`starting Postgres and two instances (${JSON.stringify(options)})`);
  const cluster = await startCluster(2);
  const world: World = {
    cluster,
    urls: cluster.instances.map((instance) => instance.url),
    pids: cluster.instances.map((instance) => instance.pid),
    users: [],
    groups: [],
    streamWorkers: [Worker.start('workers/sse-clients.ts'), Worker.start('workers/sse-clients.ts')],
  };
  const results: Results = {};
  try {
    const userCount = Math.max(GROUP_SIZE, Math.ceil(options.streams / STREAMS_PER_USER));
    log(`registering ${userCount} users`);
    world.users = await registerUsers(world.urls, userCount);
    for (let i = 0; i < world.users.length; i += GROUP_SIZE) {
      const members = world.users.slice(i, i + GROUP_SIZE);
      world.groups.push({ threadId: await createGroup(world.urls[0]!, members[0]!, members.slice(1), `group ${i / GROUP_SIZE}`), members });
    }
    if (phases.has('fanout') || phases.has('e2e')) {
      const opened = await openUserStreams(world);
      if (phases.has('fanout')) results.fanout = await fanout(world, options, opened);
    }
    if (phases.has('e2e')) results.e2e = await endToEnd(world, options);
    await Promise.all(world.streamWorkers.map((worker) => worker.call('close')));
    if (phases.has('sends')) results.sends = await durableSends(world, options);
    if (phases.has('poll')) results.poll = await longPoll(world, options);
  } finally {
    for (const worker of world.streamWorkers) worker.stop();
    await cluster.stop();
  }

  const rows = verdicts(results);
  const report = { at: new Date().toISOString(), machine: machine(), options, results, verdicts: rows.map(([name, value, target, met]) => ({ name, value, target, met })) };
  await mkdir(options.out, { recursive: true });
  await writeFile(path.join(options.out, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(path.join(options.out, 'latest.svg'), await renderChart(results));
  const width = Math.max(...rows.map(([name]) => name.length));
  console.log(`\npostline benchmark — ${report.machine.cores} × ${report.machine.cpu}, ${report.machine.node}\n`);
  for (const [name, value, target, met] of rows) console.log(`${met ? '✔' : '✖'} ${name.padEnd(width)}  ${value}   target ${target}`);
  console.log(`\nwritten: ${path.join(options.out, 'latest.json')}, ${path.join(options.out, 'latest.svg')}`);
}

await main();
process.exit(0);
