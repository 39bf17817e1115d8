import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const read = (file: string) => readFile(path.join(root, file), 'utf8');

test('the systemd unit starts what the Procfile starts, and systemd accepts it', async () => {
  const unit = await read('deploy/postline@.service');
  const web = /^web: (.+)$/m.exec(await read('Procfile'))![1]!;
  const execStart = /^ExecStart=(.+)$/m.exec(unit)![1]!;
  assert.equal(execStart, web.replace(/^node /, '/usr/bin/node '));
  assert.match(unit, /^Environment=.*\bPOSTLINE_TRUST_PROXY=loopback\b/m);
  const dir = await mkdtemp(path.join(tmpdir(), 'postline-unit-'));
  try {
    await copyFile(path.join(root, 'deploy/postline@.service'), path.join(dir, 'postline@3000.service'));
    const { stderr } = await promisify(execFile)('systemd-analyze', ['verify', path.join(dir, 'postline@3000.service')]);
    assert.equal(stderr, '');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('deploy/nginx.conf outlasts the longest poll and logs no query strings', async () => {
  const config = await read('deploy/nginx.conf');
  const readTimeout = Number(/proxy_read_timeout (\d+)s;/.exec(config)![1]);
  assert.ok(readTimeout > 55, 'long-polls wait up to 55 s');
  const logFormat = /log_format postline ([^;]+);/.exec(config)![1]!;
  assert.doesNotMatch(logFormat, /\$request\b|\$request_uri|\$args|\$query_string/);
  assert.match(config, /access_log \S+ postline;/);
});

test('docs/deploy.md names only settings that exist', async () => {
  const settings = new Set([...(await read('README.md')).matchAll(/^\| `(\w+)` \|/gm)].map((match) => match[1]));
  const named = new Set([...(await read('docs/deploy.md')).matchAll(/\b(POSTLINE_[A-Z_]+|DATABASE_URL)\b/g)].map((match) => match[1]!).filter((name) => !name.endsWith('_')));
  assert.ok(named.size > 5);
  for (const name of named) assert.ok(settings.has(name), `${name} is in the README's settings table`);
});
