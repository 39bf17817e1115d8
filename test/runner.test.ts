import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

// `npm test` on planted test files, as a developer or CI runs it: its exit code is all that
// `.ci/run` (set -e) sees, so every kind of failure must make it non-zero.
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const PLANTED = {
  passing: `import { test } from 'node:test';\ntest('planted', () => {});\n`,
  failing: `import { test } from 'node:test';\nimport assert from 'node:assert/strict';\ntest('planted', () => assert.equal(1, 2));\n`,
  cancelled: `import { test } from 'node:test';\ntest('planted', { timeout: 100 }, () => new Promise(() => {}));\n`,
  crashing: `throw new Error('planted crash while loading');\n`,
};

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'postline-planted-'));
  for (const [name, source] of Object.entries(PLANTED)) await writeFile(path.join(dir, `${name}.test.ts`), source);
});
after(() => rm(dir, { recursive: true, force: true }));

/** `npm test -- <file>` on the Postgres of this run (no second embedded cluster); resolves with its exit code. */
async function npmTest(file: string): Promise<{ code: number | null; output: string }> {
  // Without NODE_TEST_CONTEXT (node marks its test processes with it, and a nested runner that
  // sees it skips every file).
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const child = spawn('npm', ['test', '--', file], {
    cwd: ROOT,
    env: { ...env, DATABASE_URL: process.env.POSTLINE_TEST_ADMIN_URL },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  for (const stream of [child.stdout, child.stderr]) stream.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

test('npm test exits 0 for a passing file and non-zero for a failing, a cancelled or a crashing one, or a missing file', async () => {
  const runs = await Promise.all(
    [...Object.keys(PLANTED).map((name) => path.join(dir, `${name}.test.ts`)), path.join(dir, 'missing.test.ts')].map(npmTest),
  );
  const [passing, failing, cancelled, crashing, missing] = runs as [typeof runs[0], typeof runs[0], typeof runs[0], typeof runs[0], typeof runs[0]];
  assert.equal(passing.code, 0, passing.output);
  assert.match(passing.output, /ℹ pass 1/);
  assert.notEqual(failing.code, 0, failing.output);
  assert.match(failing.output, /ℹ fail 1/);
  assert.notEqual(cancelled.code, 0, cancelled.output);
  assert.notEqual(crashing.code, 0, crashing.output);
  assert.notEqual(missing.code, 0, missing.output);
});
