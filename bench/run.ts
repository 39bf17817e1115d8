/**
 * `npm run bench`: postline against baselines and peers measured in the same run, on this machine.
 *
 * Starts its own Postgres (embedded unless DATABASE_URL), two postline instances running as
 * they ship (every setting at its default: rate limits on, request logs at info, written to a
 * file), and load generators, each in its own process, all on 127.0.0.1; runs bounded phases
 * (fan-out, capacity end to end, busy threads by long-poll and by SSE, durable sends, long-poll
 * throughput), prints a table and writes bench/results/latest.json and bench/results/latest.svg.
 * The capacity phase also runs postline on four instances and the peers of bench/peers/ (the
 * naive tutorial design, Socket.IO polling), each on two processes and a database of its own.
 * Options: `npm run bench -- --streams=1000 --phases=fanout,poll …` (see DEFAULTS);
 * `--config=NAME=VALUE,…` runs the postline instances with other settings (reported beside the
 * figures). Figures are reported as ratios within the run: these machines are shared and noisy.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { renderChart } from './lib/chart.js';
import { startCluster, startPostgres, type Cluster, type PostgresServer, type System } from './lib/cluster.js';
import { Worker } from './lib/ipc.js';
import { merge, summarize, type LatencySummary } from './lib/latency.js';
import { parseConfig, parseOptions } from './lib/options.js';
import { machineBusy, rssBytes, totalCpu, treeCpu } from './lib/proc.js';
import { createGroup, headCursor, seedUsers, sendOne, type BenchUser } from './lib/seed.js';
import { seedPeer } from './peers/store.js';

const DEFAULTS = {
  phases: 'fanout,e2e,busy,sends,poll',
  /**
   * Whose capacity the e2e phase searches, each on two instances: postline (with the
   * long-pollers), postline-sse (streams only, like for like with naive), naive, socketio.
   */
  systems: 'postline,postline-sse,naive,socketio',
  /** The capacity search also runs postline on this many instances (0: not). */
  scaleInstances: 4,
  /** Capacity searches per system, in turns (the order reversed every other round); the best counts. */
  rounds: 2,
  /**
   * Postgres' synchronous_commit for the capacity searches' databases (every system alike): `on`
   * waits for each commit's WAL flush, as the other phases do; `off` takes the shared disk's
   * stalls out of POST→delivery.
   */
  e2eSynchronousCommit: 'on',
  /** Idle SSE streams held open (split over both instances), ten per user. */
  streams: 5000,
  /** Broadcast messages per second during the fan-out phase (each reaches every stream). */
  broadcastRate: 10,
  fanoutSeconds: 10,
  /**
   * How long the instances settle after many streams opened (RSS is watched meanwhile, for its
   * lowest value) or closed (their users go offline after the presence grace of 5 s).
   */
  settleSeconds: 8,
  /** Concurrent send loops in the durable-sends phase (each over eight users, so no user meets the request limit). */
  senders: 64,
  sendSeconds: 10,
  /** End to end: long-pollers beside the streams (where the system has long-poll); each step of the capacity search lasts this long. */
  pollers: 500,
  e2eStepSeconds: 5,
  /** The latency the capacity search holds SSE deliveries to (p99, ms), and where it starts and stops (msg/s). */
  e2eP99Ms: 50,
  e2eStartRate: 25,
  e2eMaxRate: 3200,
  /** Busy threads: messages per second over threads of ten, delivered once by long-poll and once by SSE. */
  busyRate: 100,
  busySeconds: 8,
  pollSeconds: 8,
  pollConnections: 50,
  /** Other settings for the instances, `NAME=VALUE,NAME=VALUE` (reported with the results). */
  config: '',
  /** Where results go; the smoke test points this elsewhere. */
  out: 'bench/results',
};
type Options = typeof DEFAULTS;

const STREAMS_PER_USER = 10;
const GROUP_SIZE = 10;
/** The default POSTLINE_MAX_THREAD_MEMBERS: the broadcast reaches everyone through several threads. */
const MAX_MEMBERS = 256;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (message: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
const sum = <K extends string>(items: Array<Record<K, number>>, key: K) => items.reduce((total, item) => total + item[key], 0);

/** CPU over a stretch of time, in cores: the instances, Postgres, the load generators, and the whole machine (other users' work included). */
export interface Cores {
  server: number;
  postgres: number | undefined;
  load: number;
  machine: number;
  /** Over how long. */
  seconds: number;
}

/** Start watching CPU; the returned function tells the cores used since. */
function watchCores(serverPids: number[], postgresPid: number | undefined, loadPids: number[]): () => Cores {
  const before = { server: totalCpu(serverPids), postgres: postgresPid === undefined ? 0 : treeCpu(postgresPid), load: totalCpu(loadPids), machine: machineBusy() };
  const startedAt = performance.now();
  return () => {
    const seconds = (performance.now() - startedAt) / 1000;
    return {
      server: (totalCpu(serverPids) - before.server) / seconds,
      postgres: postgresPid === undefined ? undefined : (treeCpu(postgresPid) - before.postgres) / seconds,
      load: (totalCpu(loadPids) - before.load) / seconds,
      machine: (machineBusy() - before.machine) / seconds,
      seconds,
    };
  };
}

const describeCores = (cores: Cores) =>
  `cores: ${cores.server.toFixed(2)} server, ${cores.postgres?.toFixed(2) ?? '?'} Postgres, ${cores.load.toFixed(2)} load generators, ${cores.machine.toFixed(2)} machine`;

/**
 * RSS of each process once it has settled after opening connections: the lowest of one sample
 * a second for `seconds` (the garbage of the openings is collected at V8's pace, and the young
 * generation it grew shrinks only when the process goes quiet).
 */
async function settledRss(pids: number[], seconds: number): Promise<number[]> {
  const lowest = pids.map(rssBytes);
  for (let i = 0; i < seconds; i++) {
    await sleep(1000);
    pids.forEach((pid, p) => (lowest[p] = Math.min(lowest[p]!, rssBytes(pid))));
  }
  return lowest;
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(100);
  }
  return false;
}

/** Everything the phases share: the cluster, users, threads of ten, and the stream holders. */
interface World {
  cluster: Cluster;
  urls: string[];
  pids: number[];
  postgresPid: number | undefined;
  users: BenchUser[];
  groups: Array<{ threadId: string; members: BenchUser[] }>;
  streamWorkers: Worker[];
}

async function openStreams(workers: Worker[], specs: Array<{ url: string; token?: string; tag?: string }>): Promise<void> {
  await Promise.all(workers.map((worker, w) => worker.call('open', { streams: specs.filter((_, i) => i % workers.length === w) })));
}

const sumOf = async (workers: Worker[], command: string) =>
  (await Promise.all(workers.map((worker) => worker.call<number>(command)))).reduce((a, b) => a + b, 0);

const groupOf = (world: World, userIndex: number) => world.groups[Math.floor(userIndex / GROUP_SIZE)]!.threadId;

/** Open `perUser` streams per user, alternating instances; returns the instances' RSS growth per stream. */
async function openUserStreams(world: World, perUser: number, options: Options): Promise<{ streams: number; rssKbPerStream: number[] }> {
  const rssBefore = world.pids.map(rssBytes);
  const n = world.urls.length;
  const specs = world.users.flatMap((user, u) =>
    Array.from({ length: perUser }, (_, s) => ({ url: `${world.urls[(u + s) % n]}/v1/events`, token: user.token, tag: groupOf(world, u) })),
  );
  log(`opening ${specs.length} SSE streams`);
  await openStreams(world.streamWorkers, specs);
  const rssAfter = await settledRss(world.pids, options.settleSeconds);
  return {
    streams: specs.length,
    rssKbPerStream: world.pids.map((_, i) => (rssAfter[i]! - rssBefore[i]!) / (specs.length / world.pids.length) / 1024),
  };
}

async function fanout(world: World, options: Options, opened: { streams: number; rssKbPerStream: number[] }) {
  const [a] = world.urls;
  // Everyone, in threads of at most the default member cap, each with a broadcaster of its own
  // (one user sending 10 a second is what the default request limit allows). The same threads
  // once more with members who have no stream open: the cost of the sends alone.
  const chunks: BenchUser[][] = [];
  for (let i = 0; i < world.users.length; i += MAX_MEMBERS - 1) chunks.push(world.users.slice(i, i + MAX_MEMBERS - 1));
  const broadcastThreads = async (label: string, memberships: BenchUser[][]) => {
    const broadcasters = await seedUsers(world.cluster.databaseUrl, memberships.length);
    return Promise.all(
      memberships.map(async (members, i) => ({ url: a!, token: broadcasters[i]!.token, threadId: await createGroup(a!, broadcasters[i]!, members, `${label} ${i}`) })),
    );
  };
  const targets = await broadcastThreads('broadcast', chunks);
  const absent = await seedUsers(world.cluster.databaseUrl, world.users.length);
  const quietTargets = await broadcastThreads('quiet broadcast', chunks.map((chunk, c) => absent.slice(c * (MAX_MEMBERS - 1), c * (MAX_MEMBERS - 1) + chunk.length)));
  await sleep(500);
  const sender = Worker.start('workers/senders.ts');
  const broadcast = (to: typeof targets) =>
    sender.call<{ acked: Record<string, number[]>; failed: number }>('rate', { targets: to, perSecond: options.broadcastRate * to.length, durationMs: options.fanoutSeconds * 1000 });
  log(`sends alone: ${options.broadcastRate} msg/s to threads whose members have no stream, for ${options.fanoutSeconds} s`);
  const quietCpuBefore = totalCpu(world.pids);
  const quiet = await broadcast(quietTargets);
  await sleep(500);
  const sendsOnlyCpu = totalCpu(world.pids) - quietCpuBefore;
  const quietSent = Object.values(quiet.acked).flat().length;

  const framesBefore = await sumOf(world.streamWorkers, 'frames');
  const cpuBefore = totalCpu(world.pids);
  log(`broadcasting ${options.broadcastRate} msg/s to everyone for ${options.fanoutSeconds} s`);
  const sent = await broadcast(targets);
  sender.stop();
  const sentCount = Object.values(sent.acked).flat().length;
  const broadcasts = sentCount / targets.length;
  const expectedFrames = broadcasts * opened.streams;
  await waitUntil(async () => (await sumOf(world.streamWorkers, 'frames')) - framesBefore >= expectedFrames, 30_000);
  const delivered = (await sumOf(world.streamWorkers, 'frames')) - framesBefore;
  const cpu = totalCpu(world.pids) - cpuBefore;
  const cpuPerDelivery = cpu / delivered;
  // What the deliveries cost beyond the sends (the same sends, measured alone above).
  const deliveryOnlyPerDelivery = (cpu - (sendsOnlyCpu * sentCount) / Math.max(quietSent, 1)) / delivered;

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
  const [baselineRssAfter] = await settledRss([baseline.pid], options.settleSeconds);
  const baselineRssPerStream = (baselineRssAfter! - baselineRssBefore) / opened.streams;
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
    failedSends: sent.failed,
    delivered,
    expectedDeliveries: expectedFrames,
    cpuMicrosPerDelivery: cpuPerDelivery * 1e6,
    baselineCpuMicrosPerDelivery: baselineCpuPerDelivery * 1e6,
    cpuRatio: cpuPerDelivery / baselineCpuPerDelivery,
    /** Server CPU of the same sends into threads nobody streams, and the deliveries' cost beyond it. */
    sendsOnlyCpuSeconds: sendsOnlyCpu,
    deliveryOnlyCpuMicrosPerDelivery: deliveryOnlyPerDelivery * 1e6,
    deliveryOnlyCpuRatio: deliveryOnlyPerDelivery / baselineCpuPerDelivery,
    rssKbPerStream: opened.rssKbPerStream,
    baselineRssKbPerStream: baselineRssPerStream / 1024,
  };
}

interface Step {
  rate: number;
  achievedRate: number;
  failedSends: number;
  /** POST→delivery on the streams (SSE, or Socket.IO's polling sockets). */
  sse: LatencySummary;
  /** POST→delivery on the long-pollers (none where the system has no long-poll). */
  poll: LatencySummary | undefined;
  /** POST→answer of the sends. */
  send: LatencySummary;
  lost: number;
  duplicated: number;
  /** Every receiver had every message before the step's deadline. */
  complete: boolean;
  /** CPU over the step and its drain. */
  cores: Cores;
  ok: boolean;
}

/** What a capacity search drives: senders' targets, and receivers that track message ids per thread. */
interface CapacityRig {
  label: string;
  instances: number;
  pids: number[];
  postgresPid: number | undefined;
  /** One sender per thread (its first member). */
  targets: Array<{ url: string; token: string; threadId: string }>;
  /** Workers holding the streams or sockets (sse-clients.ts, socketio-clients.ts), tracking. */
  streamWorkers: Worker[];
  streams: number;
  /** A pollers.ts worker, started, where the system has long-poll. */
  pollers: Worker | undefined;
  pollerCount: number;
}

/**
 * Capacity end to end: the receivers get messages sent at a fixed rate (open loop) over the
 * threads of ten; the search doubles the rate from `e2eStartRate` while the streams' p99
 * POST→delivery stays within `e2eP99Ms` with nothing lost or duplicated, then bisects between
 * the last rate that held and the first that did not.
 */
async function capacity(rig: CapacityRig, options: Options) {
  const receivers = [...rig.streamWorkers, ...(rig.pollers ? [rig.pollers] : [])];
  const expected: Record<string, number[]> = {};
  const sender = Worker.start('workers/senders.ts');
  const allComplete = async () => (await Promise.all(receivers.map((w) => w.call<boolean>('complete')))).every(Boolean);

  const step = async (rate: number): Promise<Step> => {
    await Promise.all(receivers.map((worker) => worker.call('resetLatency')));
    const coresSince = watchCores(rig.pids, rig.postgresPid, [...receivers, sender].map((worker) => worker.pid));
    const outcome = await sender.call<{ acked: Record<string, number[]>; failed: number; latency: string }>('rate', { targets: rig.targets, perSecond: rate, durationMs: options.e2eStepSeconds * 1000 });
    for (const [threadId, ids] of Object.entries(outcome.acked)) (expected[threadId] ??= []).push(...ids);
    await Promise.all(receivers.map((worker) => worker.call('expect', { expected })));
    // A step that cannot deliver within a few seconds is over capacity; let it drain fully before the next.
    const complete = await waitUntil(allComplete, 5000);
    const cores = coresSince();
    if (!complete) await waitUntil(allComplete, 60_000);
    const streamed = await Promise.all(rig.streamWorkers.map((w) => w.call<{ lost: number; duplicated: number; latency: string }>('verify')));
    const polled = rig.pollers ? [await rig.pollers.call<{ lost: number; duplicated: number; latency: string }>('verify')] : [];
    const everyone = [...streamed, ...polled];
    const result = {
      rate,
      achievedRate: Object.values(outcome.acked).flat().length / options.e2eStepSeconds,
      failedSends: outcome.failed,
      sse: summarize(merge(streamed.map((r) => r.latency))),
      poll: rig.pollers ? summarize(merge(polled.map((r) => r.latency))) : undefined,
      send: summarize(merge([outcome.latency])),
      lost: sum(everyone, 'lost'),
      duplicated: sum(everyone, 'duplicated'),
      complete,
      cores,
    };
    const ok = complete && result.failedSends === 0 && result.lost === 0 && result.duplicated === 0 && result.sse.p99 <= options.e2eP99Ms;
    log(`  ${rig.label}, ${rate} msg/s: stream p99 ${result.sse.p99} ms${result.poll ? `, long-poll p99 ${result.poll.p99} ms` : ''}, send p99 ${result.send.p99} ms, lost ${result.lost}, dup ${result.duplicated}; ${describeCores(cores)} → ${ok ? 'holds' : 'over'}`);
    return { ...result, ok };
  };

  // A rate that missed only the latency bound (everything delivered, nothing lost) gets a second
  // try: on this shared machine a neighbour's burst of disk writes can stall every commit for
  // tens of milliseconds. Losses and duplicates are never retried away.
  const steps: Step[] = [];
  const tryRate = async (rate: number): Promise<Step> => {
    const first = await step(rate);
    steps.push(first);
    if (first.ok || !first.complete || first.lost + first.duplicated + first.failedSends > 0) return first;
    const second = await step(rate);
    steps.push(second);
    return second;
  };
  log(`${rig.label}: capacity search (stream p99 ≤ ${options.e2eP99Ms} ms), ${rig.streams} streams${rig.pollerCount ? ` + ${rig.pollerCount} long-pollers` : ''}, ${options.e2eStepSeconds} s steps`);
  let good: Step | undefined;
  let bad: Step | undefined;
  for (let rate = options.e2eStartRate; rate <= options.e2eMaxRate; rate *= 2) {
    const result = await tryRate(rate);
    if (!result.ok) {
      bad = result;
      break;
    }
    good = result;
  }
  // Over already at the start: halve (a few times) to find a rate that holds.
  for (let rate = Math.floor(options.e2eStartRate / 2); !good && bad && rate >= 2 && options.e2eStartRate / rate <= 8; rate = Math.floor(rate / 2)) {
    const result = await tryRate(rate);
    if (result.ok) good = result;
    else bad = result;
  }
  for (let i = 0; i < 3 && good && bad && bad.rate - good.rate > good.rate / 8; i++) {
    const result = await tryRate(Math.round((good.rate + bad.rate) / 2));
    if (result.ok) good = result;
    else bad = result;
  }
  sender.stop();
  // Over the whole search: every receiver against every message it should have had.
  const everyone = [
    ...(await Promise.all(rig.streamWorkers.map((w) => w.call<{ lost: number; duplicated: number }>('verify')))),
    ...(rig.pollers ? [await rig.pollers.call<{ lost: number; duplicated: number }>('stop')] : []),
  ];
  // Server and Postgres CPU per message over the steps that delivered everything: what a message
  // costs, which neighbours on this shared machine disturb far less than they disturb latency.
  const perMessage = steps
    .filter((step) => step.complete && step.achievedRate > 0)
    .map((step) => ((step.cores.server + (step.cores.postgres ?? 0)) * step.cores.seconds * 1000) / (step.achievedRate * options.e2eStepSeconds))
    .sort((a, b) => a - b);
  return {
    system: rig.label,
    instances: rig.instances,
    /** Median over the steps, in ms of CPU (instances and Postgres) per message sent. */
    cpuMsPerMessage: perMessage[Math.floor(perMessage.length / 2)] ?? 0,
    streams: rig.streams,
    pollers: rig.pollerCount,
    capacity: good?.rate ?? 0,
    atCapacity: good,
    steps,
    lost: sum(everyone, 'lost'),
    duplicated: sum(everyone, 'duplicated'),
  };
}
/** A system's capacity search (its best round, with every round's capacity). */
type Capacity = Awaited<ReturnType<typeof capacity>> & { rounds?: number[] };

/** postline's rig: the world's streams (already open), plus `options.pollers` long-pollers. */
async function postlineRig(world: World, label: string, pollerCount: number): Promise<CapacityRig> {
  const [a] = world.urls;
  const pollerUsers = world.users.slice(0, pollerCount);
  const n = world.urls.length;
  let pollers: Worker | undefined;
  if (pollerUsers.length > 0) {
    pollers = Worker.start('workers/pollers.ts');
    const cursor = await headCursor(a!, world.users[0]!);
    await pollers.call('start', { pollers: pollerUsers.map((user, i) => ({ url: world.urls[i % n], token: user.token, tag: groupOf(world, i) })), cursor });
  }
  await Promise.all(world.streamWorkers.map((worker) => worker.call('track', { on: true })));
  await sleep(1000);
  return {
    label,
    instances: n,
    pids: world.pids,
    postgresPid: world.postgresPid,
    targets: world.groups.map((group, i) => ({ url: world.urls[i % n]!, token: group.members[0]!.token, threadId: group.threadId })),
    streamWorkers: world.streamWorkers,
    streams: world.users.length * STREAMS_PER_USER,
    pollers,
    pollerCount: pollerUsers.length,
  };
}

/**
 * A peer's rig on its own two processes: the same users, threads of ten and streams per user as
 * postline's world (SSE streams for naive, polling sockets for Socket.IO), seeded in its tables.
 */
async function peerRig(server: PostgresServer, system: Exclude<System, 'postline'>, options: Options) {
  const userCount = userCountOf(options);
  const cluster = await startCluster(server, 2, { system, synchronousCommit: synchronousCommitOf(options) });
  const urls = cluster.instances.map((instance) => instance.url);
  const { users, threadIds } = await seedPeer(cluster.databaseUrl, userCount, GROUP_SIZE);
  const worker = system === 'naive' ? 'workers/sse-clients.ts' : 'workers/socketio-clients.ts';
  const streamWorkers = [Worker.start(worker), Worker.start(worker)];
  const specs = users.flatMap((user, u) =>
    Array.from({ length: STREAMS_PER_USER }, (_, s) => ({
      url: system === 'naive' ? `${urls[(u + s) % 2]}/v1/events` : urls[(u + s) % 2]!,
      token: user.token,
      tag: threadIds[Math.floor(u / GROUP_SIZE)]!,
    })),
  );
  log(`${system}: opening ${specs.length} ${system === 'naive' ? 'SSE streams' : 'polling sockets'}`);
  await openStreams(streamWorkers, specs);
  await Promise.all(streamWorkers.map((w) => w.call('track', { on: true })));
  await sleep(Math.max(1, options.settleSeconds) * 1000);
  const rig: CapacityRig = {
    label: system,
    instances: 2,
    pids: cluster.instances.map((instance) => instance.pid),
    postgresPid: server.pid,
    targets: threadIds.map((threadId, i) => ({ url: urls[i % 2]!, token: users[i * GROUP_SIZE]!.token, threadId })),
    streamWorkers,
    streams: specs.length,
    pollers: undefined,
    pollerCount: 0,
  };
  return {
    rig,
    async stop() {
      for (const w of streamWorkers) w.stop();
      await cluster.stop();
    },
  };
}

/**
 * Busy threads: the same messages (threads of ten, `busyRate` a second) delivered once to one
 * long-poller per user and once to one SSE stream per user, CPU per delivered event of each. The
 * sends go through a third instance that nobody receives from, so the two receiving instances'
 * CPU is what delivering costs (each event's notification and feed read included) and no
 * separately measured cost of the sends has to be subtracted: on this shared machine that
 * difference of two noisy figures was as large as what it was meant to leave.
 */
async function busyThreads(world: World, options: Options) {
  const users = world.users.slice(0, options.pollers);
  const groups = world.groups.slice(0, Math.ceil(users.length / GROUP_SIZE));
  const sending = await world.cluster.addInstance();
  const targets = groups.map((group) => ({ url: sending.url, token: group.members[1]!.token, threadId: group.threadId }));
  const durationMs = options.busySeconds * 1000;
  const receiving = new Set(users);
  const receiversIn = (group: { members: BenchUser[] }) => group.members.filter((member) => receiving.has(member)).length;
  const sender = Worker.start('workers/senders.ts');
  const measure = async (label: string, delivered: () => Promise<number>) => {
    const before = { cpu: totalCpu(world.pids), delivered: await delivered() };
    log(`busy threads, ${label}: ${options.busyRate} msg/s over ${groups.length} threads of ${GROUP_SIZE} for ${options.busySeconds} s, sent through a third instance`);
    const outcome = await sender.call<{ acked: Record<string, number[]> }>('rate', { targets, perSecond: options.busyRate, durationMs });
    const sent = Object.values(outcome.acked).flat().length;
    // Every member of a thread who is one of the receivers gets each of its messages.
    const expected = groups.reduce((total, group) => total + (outcome.acked[group.threadId]?.length ?? 0) * receiversIn(group), 0);
    await waitUntil(async () => (await delivered()) - before.delivered >= expected, 30_000);
    const cpuSeconds = totalCpu(world.pids) - before.cpu;
    const received = (await delivered()) - before.delivered;
    return { cpuSeconds, sent, delivered: received, cpuMicrosPerDelivery: (cpuSeconds / received) * 1e6 };
  };
  // Warm-up (JIT, connection pools), nobody receiving.
  await sender.call('rate', { targets, perSecond: options.busyRate, durationMs: 2000 });

  const pollers = Worker.start('workers/pollers.ts');
  const cursor = await headCursor(world.urls[0]!, users[0]!);
  await pollers.call('start', { pollers: users.map((user, i) => ({ url: world.urls[i % 2], token: user.token, tag: groupOf(world, i) })), cursor });
  await sleep(1000);
  const byPoll = await measure('long-poll', () => pollers.call<number>('received'));
  const { polls, latency: pollLatency } = await pollers.call<{ polls: number; latency: string }>('stop');
  pollers.stop();

  const streams = Worker.start('workers/sse-clients.ts');
  await streams.call('open', { streams: users.map((user, i) => ({ url: `${world.urls[i % 2]}/v1/events`, token: user.token })) });
  await streams.call('track', { on: true });
  await sleep(1000);
  const bySse = await measure('SSE', () => streams.call<number>('frames'));
  const { latency: sseLatency } = await streams.call<{ latency: string }>('verify');
  streams.stop();
  sender.stop();
  sending.process.child.kill('SIGTERM');
  await sending.process.exited;

  return {
    receivers: users.length,
    poll: { ...byPoll, pollsPerDelivery: polls / byPoll.delivered, latency: summarize(merge([pollLatency])) },
    sse: { ...bySse, latency: summarize(merge([sseLatency])) },
    ratio: byPoll.cpuMicrosPerDelivery / bySse.cpuMicrosPerDelivery,
  };
}

async function durableSends(world: World, options: Options) {
  const [a] = world.urls;
  // Each send loop takes turns over eight users of its own thread (with the listener in every thread).
  const [listener, ...writers] = await seedUsers(world.cluster.databaseUrl, options.senders * 8 + 1);
  const threads = await Promise.all(
    Array.from({ length: options.senders }, (_, slot) => {
      const members = writers.filter((_, i) => i % options.senders === slot);
      return createGroup(world.urls[slot % 2]!, members[0]!, [...members.slice(1), listener!], `send ${slot}`);
    }),
  );
  const streams = Worker.start('workers/sse-clients.ts');
  await streams.call('open', { streams: [{ url: `${a}/v1/events`, token: listener!.token, tag: 'all' }] });
  await streams.call('track', { on: true });
  log(`${options.senders} concurrent send loops for ${options.sendSeconds} s`);
  const worker = Worker.start('workers/senders.ts');
  const sendCores = watchCores(world.pids, world.postgresPid, [worker.pid, streams.pid]);
  const outcome = await worker.call<{ acked: Record<string, number[]>; failed: number; latency: string }>('concurrency', {
    targets: writers.map((writer, i) => ({ url: world.urls[i % 2], token: writer.token, threadId: threads[i % options.senders] })),
    concurrency: options.senders,
    durationMs: options.sendSeconds * 1000,
  });
  const cores = sendCores();
  worker.stop();
  const acked = Object.values(outcome.acked).flat();
  // The listener is in every sender's thread: its stream must get every acknowledged message once.
  await streams.call('expect', { expected: { all: acked } });
  await waitUntil(() => streams.call<boolean>('complete'), 30_000);
  const delivery = await streams.call<{ lost: number; duplicated: number }>('verify');
  streams.stop();
  const db = new pg.Client({ connectionString: world.cluster.databaseUrl });
  await db.connect();
  // Group commit: how many transactions carried the acknowledged sends (rows of one transaction share its xmin).
  const { rows } = await db.query<{ stored: number; transactions: number }>(
    'SELECT count(*)::int AS stored, count(DISTINCT xmin::text)::int AS transactions FROM messages WHERE id = ANY ($1::bigint[])',
    [acked],
  );

  log(`baseline: raw INSERT + pg_notify per transaction, ${options.senders} clients`);
  const baseline = Worker.start('baselines/pg-insert-notify.ts');
  const baselineCores = watchCores([], world.postgresPid, [baseline.pid]);
  const committed = await baseline.call<number>('run', {
    databaseUrl: world.cluster.databaseUrl,
    concurrency: options.senders,
    durationMs: options.sendSeconds * 1000,
  });
  const baselineCoresUsed = baselineCores();
  baseline.stop();
  await db.end();
  const perSecond = acked.length / options.sendSeconds;
  const baselinePerSecond = committed / options.sendSeconds;
  log(`  postline ${describeCores(cores)}; baseline ${describeCores(baselineCoresUsed)}`);
  return {
    acknowledged: acked.length,
    failed: outcome.failed,
    cores,
    baselineCores: baselineCoresUsed,
    acknowledgedPerSecond: perSecond,
    baselinePerSecond,
    ratio: perSecond / baselinePerSecond,
    storedOfAcknowledged: rows[0]!.stored,
    /** Transactions (so commits, fsyncs and NOTIFY queue locks) per second that carried them; the baseline takes one per send. */
    commitsPerSecond: rows[0]!.transactions / options.sendSeconds,
    lostFromDatabase: acked.length - rows[0]!.stored,
    lostOnStream: delivery.lost,
    duplicatedOnStream: delivery.duplicated,
    sendLatency: summarize(merge([outcome.latency])),
  };
}

/** Long-poll answers with events ready, over connections spread so that no user meets the waiting-poll cap. */
async function longPoll(world: World, options: Options) {
  const [a] = world.urls;
  const [writer, ...readers] = await seedUsers(world.cluster.databaseUrl, 1 + Math.ceil(options.pollConnections / 5));
  const threadId = await createGroup(a!, writer!, readers, 'poll');
  const cursor = await headCursor(a!, readers[0]!);
  for (let i = 0; i < 5; i++) await sendOne(a!, writer!, threadId, `ready ${i}`);
  const runner = Worker.start('workers/autocannon.ts');
  log(`long-poll: ${options.pollConnections} connections for ${options.pollSeconds} s, 5 events ready per poll`);
  const ours = await runner.call<{ requestsPerSecond: number; non2xx: number; errors: number; latencyP99: number }>('run', {
    url: `${a}/v1/poll?cursor=${cursor}&timeout=0`,
    tokens: readers.map((reader) => reader.token),
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
  /** The capacity search per system: postline (two instances), postline on `scaleInstances`, the peers. */
  capacity?: Capacity[];
  busy?: Awaited<ReturnType<typeof busyThreads>>;
  sends?: Awaited<ReturnType<typeof durableSends>>;
  poll?: Awaited<ReturnType<typeof longPoll>>;
}

function verdicts(results: Results) {
  const rows: Array<[string, string, string, boolean]> = [];
  const f = results.fanout;
  if (f) {
    rows.push(['fan-out CPU per delivery vs raw SSE', `${f.cpuRatio.toFixed(2)}× (${f.cpuMicrosPerDelivery.toFixed(2)} µs vs ${f.baselineCpuMicrosPerDelivery.toFixed(2)} µs, the sends' CPU included)`, '≤ 1.0×', f.cpuRatio <= 1.0]);
    rows.push(['fan-out: deliveries beyond the sends vs raw SSE', `${f.deliveryOnlyCpuRatio.toFixed(2)}× (${f.deliveryOnlyCpuMicrosPerDelivery.toFixed(2)} µs; the same sends alone took ${f.sendsOnlyCpuSeconds.toFixed(2)} s CPU)`, '(reported)', true]);
    const rss = Math.max(...f.rssKbPerStream);
    rows.push(['RSS per idle stream', `${rss.toFixed(1)} KB (raw: ${f.baselineRssKbPerStream.toFixed(1)} KB)`, '≤ 16 KB', rss <= 16]);
  }
  const runs = results.capacity ?? [];
  const find = (label: string) => runs.find((run) => run.system === label);
  for (const run of runs) {
    const at = run.atCapacity;
    const latency = at ? ` (stream p50/p99 ${at.sse.p50}/${at.sse.p99} ms${at.poll ? `, long-poll ${at.poll.p50}/${at.poll.p99} ms` : ''}; ${describeCores(at.cores)})` : '';
    const load = `${run.streams} ${run.system === 'socketio' ? 'polling sockets' : 'streams'}${run.pollers ? ` + ${run.pollers} long-pollers` : ''}`;
    const rounds = run.rounds && run.rounds.length > 1 ? `; rounds: ${run.rounds.join(', ')} msg/s` : '';
    rows.push([`capacity: ${run.system}, ${run.instances} instances (${load})`, `${run.capacity} msg/s${latency}${rounds}`, '(reported)', run.capacity > 0]);
  }
  const postline = find('postline');
  const ratio = (ours: Capacity | undefined, label: string, name: string, target: number | undefined) => {
    const peer = find(label);
    if (!ours || !peer) return;
    const value = ours.capacity / Math.max(peer.capacity, Number.MIN_VALUE);
    const shown = `${peer.capacity ? `${value.toFixed(2)}×` : 'peer held no rate'} (${ours.capacity} vs ${peer.capacity} msg/s)`;
    rows.push([name, shown, target === undefined ? '(reported)' : `≥ ${target}×`, target === undefined || value >= target]);
  };
  for (const run of runs) {
    rows.push([`CPU per message: ${run.system}`, `${run.cpuMsPerMessage.toFixed(2)} ms (instances + Postgres, median of the search's steps; one message reaches ${STREAMS_PER_USER * GROUP_SIZE} ${run.system === 'socketio' ? 'sockets' : 'streams'}${run.pollers ? ` and ${GROUP_SIZE} long-pollers` : ''})`, '(reported)', true]);
  }
  const cheaper = (ours: Capacity | undefined, label: string, name: string) => {
    const peer = find(label);
    if (ours && peer && ours.cpuMsPerMessage > 0) rows.push([name, `${(peer.cpuMsPerMessage / ours.cpuMsPerMessage).toFixed(2)}× less CPU per message (${ours.cpuMsPerMessage.toFixed(2)} vs ${peer.cpuMsPerMessage.toFixed(2)} ms)`, '(reported)', true]);
  };
  cheaper(postline, 'naive', 'CPU per message vs naive (postline with its long-pollers)');
  cheaper(find('postline, streams only'), 'naive', 'CPU per message vs naive, like for like (streams only)');
  cheaper(postline, 'socketio', 'CPU per message vs Socket.IO polling');
  ratio(postline, 'naive', 'capacity vs the naive peer (postline with its long-pollers)', 3);
  ratio(find('postline, streams only'), 'naive', 'capacity vs the naive peer, like for like (streams only)', undefined);
  ratio(postline, 'socketio', 'capacity vs Socket.IO polling', 5);
  const scaled = runs.find((run) => run.system.startsWith('postline ×'));
  if (postline && scaled) {
    const value = scaled.capacity / Math.max(postline.capacity, Number.MIN_VALUE);
    rows.push([`capacity on ${scaled.instances} instances vs 2`, `${value.toFixed(2)}× (${scaled.capacity} vs ${postline.capacity} msg/s)`, '≥ 1.6×', value >= 1.6]);
  }
  const at = postline?.atCapacity;
  if (at?.poll) rows.push(['e2e long-poll p99 vs SSE p99 at capacity', `${(at.poll.p99 / at.sse.p99).toFixed(2)}× (${at.poll.p99} vs ${at.sse.p99} ms)`, '≤ 2×', at.poll.p99 <= 2 * at.sse.p99]);
  if (runs.length) {
    const lost = runs.reduce((total, run) => total + run.lost, 0);
    const duplicated = runs.reduce((total, run) => total + run.duplicated, 0);
    rows.push(['e2e lost / duplicated (every system, every step)', `${lost} / ${duplicated}`, '0 / 0', lost + duplicated === 0]);
  }
  const b = results.busy;
  if (b) {
    rows.push(['busy threads: CPU per delivery, long-poll vs SSE', `${b.ratio.toFixed(2)}× (${b.poll.cpuMicrosPerDelivery.toFixed(1)} vs ${b.sse.cpuMicrosPerDelivery.toFixed(1)} µs; ${b.poll.pollsPerDelivery.toFixed(2)} polls per delivery)`, '≤ 3×', b.ratio <= 3]);
    rows.push(['busy threads: p50 / p99 latency, long-poll and SSE', `${b.poll.latency.p50} / ${b.poll.latency.p99} ms and ${b.sse.latency.p50} / ${b.sse.latency.p99} ms`, '(reported)', true]);
  }
  const s = results.sends;
  if (s) {
    rows.push(['durable sends vs INSERT+NOTIFY per tx', `${s.ratio.toFixed(2)}× (${s.acknowledgedPerSecond.toFixed(0)}/s in ${s.commitsPerSecond.toFixed(0)} commits/s vs ${s.baselinePerSecond.toFixed(0)}/s; ${describeCores(s.cores)} vs ${describeCores(s.baselineCores)})`, '≥ 2×', s.ratio >= 2]);
    rows.push(['durable sends lost / duplicated', `${s.lostFromDatabase + s.lostOnStream} / ${s.duplicatedOnStream}`, '0 / 0', s.lostFromDatabase + s.lostOnStream + s.duplicatedOnStream === 0]);
  }
  const p = results.poll;
  if (p) rows.push(['long-poll req/s vs raw node:http JSON', `${p.ratio.toFixed(2)}× (${p.requestsPerSecond.toFixed(0)} vs ${p.baselineRequestsPerSecond.toFixed(0)}${p.non2xx ? `, ${p.non2xx} non-2xx` : ''})`, '≥ 0.3×', p.ratio >= 0.3 && p.non2xx === 0]);
  return rows;
}

function synchronousCommitOf(options: Options): 'on' | 'off' {
  if (options.e2eSynchronousCommit !== 'on' && options.e2eSynchronousCommit !== 'off') throw new Error('--e2eSynchronousCommit is on or off');
  return options.e2eSynchronousCommit;
}

/** Users of every world: ten streams each, and enough for the long-pollers. */
const userCountOf = (options: Options) => Math.max(GROUP_SIZE, Math.ceil(options.streams / STREAMS_PER_USER), options.pollers);

/** postline on `count` instances of a fresh database, with the users and threads of ten every phase uses. */
async function buildWorld(server: PostgresServer, count: number, options: Options, config: Record<string, string>, synchronousCommit?: 'on' | 'off'): Promise<World> {
  const cluster = await startCluster(server, count, { env: config, ...(synchronousCommit && { synchronousCommit }) });
  const world: World = {
    cluster,
    urls: cluster.instances.map((instance) => instance.url),
    pids: cluster.instances.map((instance) => instance.pid),
    postgresPid: server.pid,
    users: [],
    groups: [],
    streamWorkers: [Worker.start('workers/sse-clients.ts'), Worker.start('workers/sse-clients.ts')],
  };
  const userCount = userCountOf(options);
  log(`postline on ${count}: seeding ${userCount} users in threads of ${GROUP_SIZE}`);
  world.users = await seedUsers(cluster.databaseUrl, userCount);
  for (let i = 0; i < world.users.length; i += GROUP_SIZE) {
    const members = world.users.slice(i, i + GROUP_SIZE);
    world.groups.push({ threadId: await createGroup(world.urls[i % count]!, members[0]!, members.slice(1), `group ${i / GROUP_SIZE}`), members });
  }
  return world;
}

async function stopWorld(world: World): Promise<void> {
  for (const worker of world.streamWorkers) worker.stop();
  await world.cluster.stop();
}

/** One capacity search: what runs, on how many instances, with how many long-pollers beside the streams. */
interface Search {
  label: string;
  system: System;
  instances: number;
  pollers: number;
}

function searchesOf(options: Options): Search[] {
  const searches: Search[] = [];
  for (const name of options.systems.split(',').filter(Boolean)) {
    if (name === 'postline') {
      searches.push({ label: 'postline', system: 'postline', instances: 2, pollers: options.pollers });
      if (options.scaleInstances > 0) searches.push({ label: `postline ×${options.scaleInstances}`, system: 'postline', instances: options.scaleInstances, pollers: options.pollers });
    } else if (name === 'postline-sse') searches.push({ label: 'postline, streams only', system: 'postline', instances: 2, pollers: 0 });
    else if (name === 'naive' || name === 'socketio') searches.push({ label: name, system: name, instances: 2, pollers: 0 });
    else throw new Error(`unknown system ${name}; systems: postline, postline-sse, naive, socketio`);
  }
  return searches;
}

/** Set up a system on a fresh database (users, threads, streams or sockets), search its capacity, tear it down. */
async function search(server: PostgresServer, spec: Search, options: Options, config: Record<string, string>): Promise<Capacity> {
  if (spec.system === 'postline') {
    const world = await buildWorld(server, spec.instances, options, config, synchronousCommitOf(options));
    try {
      await openUserStreams(world, STREAMS_PER_USER, options); // and let the arrivals settle
      const rig = await postlineRig(world, spec.label, spec.pollers);
      try {
        return await capacity(rig, options);
      } finally {
        rig.pollers?.stop();
      }
    } finally {
      await stopWorld(world);
    }
  }
  const { rig, stop } = await peerRig(server, spec.system, options);
  try {
    return await capacity(rig, options);
  } finally {
    await stop();
  }
}

/**
 * Every search `options.rounds` times, in turns (reversed every other round, so that a noisy
 * minute on this shared machine does not always fall on the same system). Each system is
 * reported by its best round, with every round's capacity and the losses of all of them.
 */
async function capacities(server: PostgresServer, options: Options, config: Record<string, string>): Promise<Capacity[]> {
  const searches = searchesOf(options);
  const runs = new Map<string, Capacity[]>(searches.map((spec) => [spec.label, []]));
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? searches : [...searches].reverse();
    for (const spec of order) {
      log(`capacity, round ${round + 1} of ${options.rounds}: ${spec.label}`);
      runs.get(spec.label)!.push(await search(server, spec, options, config));
    }
  }
  return searches.map((spec) => {
    const rounds = runs.get(spec.label)!;
    const best = rounds.reduce((a, b) => (b.capacity > a.capacity ? b : a));
    const costs = rounds.map((run) => run.cpuMsPerMessage).sort((a, b) => a - b);
    return {
      ...best,
      rounds: rounds.map((run) => run.capacity),
      cpuMsPerMessage: costs[Math.floor((costs.length - 1) / 2)]!,
      lost: sum(rounds, 'lost'),
      duplicated: sum(rounds, 'duplicated'),
    };
  });
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2), DEFAULTS);
  const config = parseConfig(options.config);
  const phases = new Set(options.phases.split(','));
  log(`starting Postgres and two instances (${JSON.stringify(options)})`);
  const server = await startPostgres();
  const results: Results = {};
  try {
    if (phases.has('fanout') || phases.has('busy') || phases.has('sends') || phases.has('poll')) {
      const world = await buildWorld(server, 2, options, config);
      try {
        if (phases.has('fanout')) {
          results.fanout = await fanout(world, options, await openUserStreams(world, STREAMS_PER_USER, options));
          await Promise.all(world.streamWorkers.map((worker) => worker.call('close')));
          // The departures go offline after the presence grace (5 s): not in the next phase's CPU.
          await sleep(options.settleSeconds * 1000);
        }
        if (phases.has('busy')) results.busy = await busyThreads(world, options);
        if (phases.has('sends')) results.sends = await durableSends(world, options);
        if (phases.has('poll')) results.poll = await longPoll(world, options);
      } finally {
        await stopWorld(world);
      }
    }
    if (phases.has('e2e')) results.capacity = await capacities(server, options, config);
  } finally {
    await server.stop();
  }

  const rows = verdicts(results);
  const report = { at: new Date().toISOString(), machine: machine(), options, config, results, verdicts: rows.map(([name, value, target, met]) => ({ name, value, target, met })) };
  await mkdir(options.out, { recursive: true });
  await writeFile(path.join(options.out, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(path.join(options.out, 'latest.svg'), await renderChart(results));
  const width = Math.max(...rows.map(([name]) => name.length));
  console.log(`\npostline benchmark — ${report.machine.cores} × ${report.machine.cpu}, ${report.machine.node}${options.config ? `, config ${options.config}` : ', default settings'}\n`);
  for (const [name, value, target, met] of rows) console.log(`${met ? '✔' : '✖'} ${name.padEnd(width)}  ${value}   target ${target}`);
  console.log(`\nwritten: ${path.join(options.out, 'latest.json')}, ${path.join(options.out, 'latest.svg')}`);
}

await main();
process.exit(0);
