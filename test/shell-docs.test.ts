import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createTestDatabase } from './support/database.js';
import { startTestInstance } from './support/instance.js';
import { runBlocks, shellBlocks } from './support/shell-doc.js';

/**
 * The README's curl walkthrough and docs/curl.md run exactly as written and show what their texts
 * say: each on a fresh database, and each on one the other has already used (people run both
 * against the same server).
 */

async function readmeWalkthrough(): Promise<string[]> {
  const blocks = shellBlocks(await readFile(new URL('../README.md', import.meta.url), 'utf8')).filter((block) => block.includes('# Two users'));
  assert.equal(blocks.length, 1);
  return blocks;
}

async function curlSession(): Promise<string[]> {
  const blocks = shellBlocks(await readFile(new URL('../docs/curl.md', import.meta.url), 'utf8'));
  assert.equal(blocks.length, 12, 'the session has twelve blocks');
  return blocks;
}

function checkReadme([output]: string[]): void {
  const lines = output!.trim().split('\n');
  assert.match(lines[0]!, / 201$/, 'the first send answers 201');
  const first = JSON.parse(lines[0]!.replace(/ 201$/, ''));
  assert.equal(first.message.body, 'Hi Bob!');
  assert.match(lines[1]!, / 200$/, 'the retry answers 200');
  assert.deepEqual(JSON.parse(lines[1]!.replace(/ 200$/, '')), first, 'with the same message');
  const rest = lines.slice(2).join('\n');
  assert.match(rest, /"seq": 1,\s+"body": "Hi Bob!"/);
  assert.match(rest, /"unreadCount": 1[\s\S]*^204$[\s\S]*"unreadCount": 0/m);
}

function checkCurlSession([setUp, register, login, thread, send, accept, sse, ndjson, pollLoop, seen, presence, changes]: string[]): void {
  assert.equal(setUp, '');
  assert.match(register!, /^\{"id":"\d+","username":"carol","displayName":"Carol"\}\n\{"id":"\d+","username":"dave","displayName":"Dave"\}\n$/);
  assert.match(login!, /^\{"id":"\d+","username":"carol","displayName":"Carol"\}\n$/);
  assert.equal(thread, '{"kind":"direct","members":["carol","dave"]}\n');
  assert.equal(send, '201\n200\n{"seq":1,"body":"Hi Dave!"}\n');
  assert.equal(accept, '{"kind":"direct","pending":1}\n[]\n', 'a request for Dave, then accepted');

  // The stream: retry: with the ready event, the typing event (no id), then the message with its id.
  assert.match(sse!, /^retry: ?2000\nevent: ?ready\ndata: ?\{"type":"ready","at":"[^"]+","data":\{"userId":"\d+","lastEventId":"\d+"\}\}$/m);
  assert.match(sse!, /^event: ?typing\ndata: ?\{"type":"typing","threadId":"\d+","at":"[^"]+","data":\{"userId":"\d+","typing":true\}\}$/m);
  assert.match(sse!, /^id: ?\d+\nevent: ?message\.created\ndata: ?\{.*"body":"Are you there\?"/m);
  assert.ok(sse!.indexOf('typing') < sse!.indexOf('Are you there?'));

  assert.match(ndjson!, /^\{"id":"\d+","type":"message\.created","body":"Are you there\?"\}\n$/);
  assert.equal(
    pollLoop,
    '{"type":"message.created","body":"Are you there?"}\n{"type":"message.created","body":"Hello?"}\n',
    'round one gets the waiting message, round two the next one',
  );
  assert.match(seen!, /^\{"id":"\d+","unreadCount":3\}\n204\n\{"id":"\d+","unreadCount":0\}\n\{"type":"seen","data":\{"userId":"\d+","upTo":"\d+","seq":3\}\}\n$/);
  assert.match(presence!, /^\[\{"userId":"\d+","online":true\}\]\n204\n\{"status":401,"title":"[^"]+"\}\n$/);
  assert.equal(
    changes,
    [
      '{"excerpt":"Học tiếng Việt?"}',
      '{"body":"Học tiếng Việt nhé!","edited":true}',
      '{"emoji":"👍","count":1}',
      '"Học <mark>tiếng</mark> <mark>Việt</mark> nhé!"',
      '204',
      '0',
      '',
    ].join('\n'),
  );
}

const DOCS = { readme: { blocks: readmeWalkthrough, check: checkReadme }, curl: { blocks: curlSession, check: checkCurlSession } };

for (const order of [['readme', 'curl'], ['curl', 'readme']] as const) {
  test(`${order[0] === 'readme' ? 'the README walkthrough, then docs/curl.md' : 'docs/curl.md, then the README walkthrough'}, on one fresh database: both as written`, async () => {
    const db = await createTestDatabase();
    const instance = await startTestInstance(db.url);
    const workDir = await mkdtemp(path.join(tmpdir(), 'postline-shell-docs-'));
    try {
      for (const name of order) DOCS[name].check(await runBlocks(await DOCS[name].blocks(), { API: `${instance.url}/v1` }, workDir));
    } finally {
      await instance.stop();
      await db.drop();
      await rm(workDir, { recursive: true, force: true });
    }
  });
}
