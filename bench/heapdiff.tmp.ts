// Temporary: heap snapshot diff per idle stream (not committed).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { startCluster } from './lib/cluster.js';
import { Worker } from './lib/ipc.js';
import { rssBytes } from './lib/proc.js';
import { seedUsers } from './lib/seed.js';
const dir = '/tmp/i11prof/heap';
const N = Number(process.env.N ?? 2000);
process.env.BENCH_NODE_FLAGS = `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${dir}`;
const { startPostgres } = await import('./lib/cluster.js'); const server = await startPostgres(); const cluster = await startCluster(server, 1, { env: { NODE_OPTIONS: process.env.BENCH_NODE_FLAGS! } });
const [inst] = cluster.instances;
const users = await seedUsers(cluster.databaseUrl, N / 10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const snap = async () => { const before = new Set(readdirSync(dir)); process.kill(inst!.pid, 'SIGUSR2'); for (;;) { await sleep(500); const f = readdirSync(dir).filter((x) => !before.has(x) && x.endsWith('.heapsnapshot')); if (f.length) { const p = `${dir}/${f[0]}`; let s = -1; while (statSync(p).size !== s) { s = statSync(p).size; await sleep(2500); } await sleep(2000); return p; } } };
// warm up: one stream per user opened and closed
const w = Worker.start('workers/sse-clients.ts');
await w.call('open', { streams: users.map((u) => ({ url: `${inst!.url}/v1/events`, token: u.token })) });
await w.call('close'); await sleep(7000);
const a = await snap(); const rssA = rssBytes(inst!.pid);
await w.call('open', { streams: users.flatMap((u) => Array.from({ length: 10 }, () => ({ url: `${inst!.url}/v1/events`, token: u.token }))) });
await sleep(3000);
const b = await snap(); const rssB = rssBytes(inst!.pid);
console.log(`RSS per stream ${((rssB - rssA) / N / 1024).toFixed(2)} KB`);
function agg(file: string) {
  const s = JSON.parse(readFileSync(file, 'utf8'));
  const f = s.snapshot.meta.node_fields; const nf = f.length; const types = s.snapshot.meta.node_types[0];
  const ti = f.indexOf('type'), ni = f.indexOf('name'), si = f.indexOf('self_size');
  const m = new Map<string, [number, number]>(); let total = 0;
  for (let i = 0; i < s.nodes.length; i += nf) { const t = types[s.nodes[i + ti]]; let name = s.strings[s.nodes[i + ni]]; if (t !== 'object' && t !== 'closure') name = `(${t})`; else if (t === 'closure') name = `closure ${name}`; const sz = s.nodes[i + si]; total += sz; const e = m.get(name) ?? [0, 0]; e[0] += sz; e[1]++; m.set(name, e); }
  return { m, total };
}
const A = agg(a), B = agg(b);
console.log(`heap per stream ${((B.total - A.total) / N / 1024).toFixed(2)} KB`);
const rows = [...B.m].map(([k, [sz, c]]) => [k, sz - (A.m.get(k)?.[0] ?? 0), c - (A.m.get(k)?.[1] ?? 0)] as const).sort((x, y) => y[1] - x[1]).slice(0, 45);
for (const [k, sz, c] of rows) console.log(`${(sz / N).toFixed(0).padStart(6)} B/stream ${(c / N).toFixed(2).padStart(6)}/stream  ${k}`);
w.stop(); await cluster.stop(); await server.stop(); process.exit(0);
