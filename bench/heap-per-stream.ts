/**
 * `node --import tsx bench/heap-per-stream.ts [streams]`: what an idle stream holds in the V8
 * heap, by constructor, for postline (one instance as it ships) and for the raw node:http SSE
 * server of the fan-out phase. Each process gets its streams opened, closed (so code and pools
 * are warm), then the same number again between two heap snapshots; the difference, divided by
 * the streams, is printed. Slower than `npm run bench` (snapshots are large) but exact where RSS
 * is noisy: it is how the per-stream state was found and cut (BENCHMARKS.md).
 */
import { fork } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startCluster, startPostgres } from './lib/cluster.js';
import { Worker } from './lib/ipc.js';
import { seedUsers } from './lib/seed.js';

const STREAMS = Number(process.argv[2] ?? 2000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Signal `pid` to write a heap snapshot into `dir`; resolves with its path once it is complete. */
async function snapshot(pid: number, dir: string): Promise<string> {
  const before = new Set(await readdir(dir));
  process.kill(pid, 'SIGUSR2');
  for (;;) {
    await sleep(500);
    const file = (await readdir(dir)).find((name) => !before.has(name) && name.endsWith('.heapsnapshot'));
    if (!file) continue;
    const full = path.join(dir, file);
    for (let size = -1; ; await sleep(2000)) {
      const now = (await stat(full)).size;
      if (now === size) return full;
      size = now;
    }
  }
}

/** Self sizes by constructor (objects, closures) or node type (arrays, strings, code…). */
async function selfSizes(file: string): Promise<{ total: number; sizes: Map<string, number> }> {
  const heap = JSON.parse(await readFile(file, 'utf8'));
  const fields: string[] = heap.snapshot.meta.node_fields;
  const types: string[] = heap.snapshot.meta.node_types[0];
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((field) => fields.indexOf(field));
  const sizes = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < heap.nodes.length; i += fields.length) {
    const type = types[heap.nodes[i + typeAt!]]!;
    const name = type === 'object' ? heap.strings[heap.nodes[i + nameAt!]] : type === 'closure' ? 'closures' : `(${type})`;
    const size = heap.nodes[i + sizeAt!];
    total += size;
    sizes.set(name, (sizes.get(name) ?? 0) + size);
  }
  return { total, sizes };
}

async function measure(label: string, pid: number, dir: string, open: () => Promise<void>, close: () => Promise<void>): Promise<void> {
  await open();
  await close();
  await sleep(7000); // presence departures, idle pools
  const before = await selfSizes(await snapshot(pid, dir));
  await open();
  await sleep(3000);
  const after = await selfSizes(await snapshot(pid, dir));
  console.log(`\n${label}: ${((after.total - before.total) / STREAMS / 1024).toFixed(2)} KB of heap per idle stream`);
  const rows = [...after.sizes].map(([name, size]) => [name, (size - (before.sizes.get(name) ?? 0)) / STREAMS] as const);
  for (const [name, perStream] of rows.sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${perStream.toFixed(0).padStart(6)} B  ${name}`);
}

const dir = await mkdtemp(path.join(tmpdir(), 'postline-heap-'));
const server = await startPostgres();
try {
  const cluster = await startCluster(server, 1, { env: { NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${dir}` } });
  const [instance] = cluster.instances;
  const users = await seedUsers(cluster.databaseUrl, STREAMS / 10);
  const streams = Worker.start('workers/sse-clients.ts');
  const specs = users.flatMap((user) => Array.from({ length: 10 }, () => ({ url: `${instance!.url}/v1/events`, token: user.token })));
  await measure('postline', instance!.pid, dir, () => streams.call('open', { streams: specs }), () => streams.call('close'));
  streams.stop();
  await cluster.stop();

  const raw = fork(path.join(path.dirname(new URL(import.meta.url).pathname), 'baselines/raw-sse-server.ts'), [], {
    execArgv: ['--import', 'tsx', '--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve) => {
    raw.once('message', (reply: { result: number }) => resolve(reply.result));
    raw.send({ id: 1, command: 'listen', args: {} });
  });
  const rawStreams = Worker.start('workers/sse-clients.ts');
  const rawSpecs = Array.from({ length: STREAMS }, () => ({ url: `http://127.0.0.1:${port}/` }));
  await measure('raw node:http SSE server', raw.pid!, dir, () => rawStreams.call('open', { streams: rawSpecs }), () => rawStreams.call('close'));
  rawStreams.stop();
  raw.kill();
} finally {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}
process.exit(0);
