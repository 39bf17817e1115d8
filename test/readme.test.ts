import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { useInstances } from './support/fixture.js';
import { runBlocks, shellBlocks } from './support/shell-doc.js';

const t = useInstances();

test('the README’s curl walkthrough runs as written and shows what it says', async () => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  const walkthrough = shellBlocks(readme).filter((block) => block.includes('# Two users'));
  assert.equal(walkthrough.length, 1);
  const [output] = await runBlocks(walkthrough, { API: `${t.app.url}/v1` }, tmpdir());
  const lines = output!.trim().split('\n');
  assert.match(lines[0]!, / 201$/, 'the first send answers 201');
  const first = JSON.parse(lines[0]!.replace(/ 201$/, ''));
  assert.equal(first.message.body, 'Hi Bob!');
  assert.match(lines[1]!, / 200$/, 'the retry answers 200');
  assert.deepEqual(JSON.parse(lines[1]!.replace(/ 200$/, '')), first, 'with the same message');
  const rest = lines.slice(2).join('\n');
  assert.match(rest, /"seq": 1,\s+"body": "Hi Bob!"/);
  assert.match(rest, /"unreadCount": 1[\s\S]*^204$[\s\S]*"unreadCount": 0/m);
});
