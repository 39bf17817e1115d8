import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { useInstances } from './support/fixture.js';
import { runBlocks, shellBlocks } from './support/shell-doc.js';

const t = useInstances();
const CURL_DOC = new URL('../docs/curl.md', import.meta.url);

test('docs/curl.md: every command runs against a server and shows what the text says', async () => {
  const blocks = shellBlocks(await readFile(CURL_DOC, 'utf8'));
  assert.equal(blocks.length, 12, 'the session has twelve blocks');
  const workDir = await mkdtemp(path.join(tmpdir(), 'postline-curl-doc-'));
  try {
    const [setUp, register, login, thread, send, accept, sse, ndjson, pollLoop, seen, presence, changes] = await runBlocks(blocks, { API: `${t.app.url}/v1` }, workDir);
    assert.equal(setUp, '');
    assert.match(register!, /^\{"id":"\d+","username":"alice","displayName":"Alice"\}\n\{"id":"\d+","username":"bob","displayName":"Bob"\}\n$/);
    assert.match(login!, /^\{"id":"\d+","username":"alice","displayName":"Alice"\}\n$/);
    assert.equal(thread, '{"kind":"direct","members":["alice","bob"]}\n');
    assert.equal(send, '201\n200\n{"seq":1,"body":"Hi Bob!"}\n');
    assert.equal(accept, '{"kind":"direct","pending":1}\n[]\n', 'a request for Bob, then accepted');

    // The stream: retry:, the typing event (no id), then the message with its id.
    assert.match(sse!, /^retry: ?2000$/m);
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
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
});
