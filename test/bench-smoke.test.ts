import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

// The benchmark harness itself works (tiny sizes, a few seconds per phase): every phase runs,
// the peers (naive, Socket.IO polling) and postline on more instances go through the same
// capacity search, results and chart are written, and nothing is lost or duplicated. Speed is
// not judged here.
test('npm run bench completes with tiny sizes and writes its results', async () => {
  const out = await mkdtemp(path.join(tmpdir(), 'postline-bench-smoke-'));
  try {
    const child = spawn(
      process.execPath,
      [
        '--import', 'tsx', 'bench/run.ts',
        '--streams=40', '--broadcastRate=5', '--fanoutSeconds=1', '--settleSeconds=0', '--senders=4', '--sendSeconds=1', '--pollers=4',
        '--e2eStepSeconds=1', '--e2eStartRate=10', '--e2eMaxRate=10', '--scaleInstances=3', '--rounds=1', '--busyRate=10', '--busySeconds=1',
        '--pollSeconds=1', '--pollConnections=4', `--out=${out}`,
      ],
      // The test run's Postgres server hosts the benchmark's own database.
      { env: { ...process.env, DATABASE_URL: process.env.POSTLINE_TEST_ADMIN_URL }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const [code] = await once(child, 'exit');
    assert.equal(code, 0, output);
    const report = JSON.parse(await readFile(path.join(out, 'latest.json'), 'utf8'));
    assert.deepEqual(Object.keys(report.results).sort(), ['busy', 'capacity', 'fanout', 'poll', 'sends']);
    assert.equal(report.results.sends.lostFromDatabase + report.results.sends.lostOnStream, 0);
    assert.equal(report.results.sends.duplicatedOnStream, 0);
    type Run = { system: string; instances: number; lost: number; duplicated: number; steps: Array<{ sse: { count: number }; poll?: { count: number } }> };
    const runs: Run[] = report.results.capacity;
    assert.deepEqual(runs.map((run) => [run.system, run.instances]), [['postline', 2], ['postline ×3', 3], ['postline, streams only', 2], ['naive', 2], ['socketio', 2]]);
    for (const run of runs) {
      assert.equal(run.lost, 0, `${run.system}: nothing lost`);
      assert.equal(run.duplicated, 0, `${run.system}: nothing duplicated`);
      assert.ok(run.steps.length >= 1, `${run.system}: the capacity search ran`);
      assert.ok(run.steps.every((step) => step.sse.count > 0), `${run.system}: deliveries were measured`);
      assert.equal(run.steps.every((step) => (step.poll?.count ?? 0) > 0), run.system === 'postline' || run.system === 'postline ×3', `${run.system}: long-pollers beside the streams where asked`);
    }
    assert.ok(report.results.busy.poll.delivered > 0 && report.results.busy.sse.delivered > 0, 'busy threads delivered both ways');
    assert.equal(report.results.fanout.delivered, report.results.fanout.expectedDeliveries);
    assert.ok(report.results.poll.requestsPerSecond > 0);
    assert.match(await readFile(path.join(out, 'latest.svg'), 'utf8'), /^<svg/);
    assert.match(output, /postline benchmark/);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
