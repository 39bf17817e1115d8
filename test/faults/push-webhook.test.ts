import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createThread, register, sendMessage } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { LOAD_TEST_ENV, spawnServer, type ServerProcess } from '../support/process.js';
import { waitFor } from '../support/sse.js';
import { webhookSecret, WebhookReceiver } from '../support/webhook-receiver.js';

// Push webhook jobs survive the death of the instance delivering them: kill -9 while a retry is
// in flight, and every job is still delivered (after restart), duplicates only under one
// webhook-id; and two instances delivering at once never both take a job.
const receiver = new WebhookReceiver();
const secret = webhookSecret();
let db: TestDatabase;
let env: Record<string, string>;
const servers: ServerProcess[] = [];

before(async () => {
  db = await createTestDatabase();
  env = {
    ...LOAD_TEST_ENV,
    DATABASE_URL: db.url,
    POSTLINE_WEBHOOK_URL: await receiver.start(),
    POSTLINE_WEBHOOK_SECRET: secret,
    POSTLINE_WEBHOOK_GRACE_MS: '1000', // the messages of a test are all due at about the same time
    POSTLINE_WEBHOOK_RETRY_MS: '200',
    POSTLINE_WEBHOOK_TIMEOUT_MS: '30000',
    POSTLINE_WEBHOOK_POLL_MS: '50',
  };
});
after(async () => {
  const running = servers.filter((server) => server.child.exitCode === null && server.child.signalCode === null);
  for (const server of running) server.child.kill('SIGTERM');
  const codes = await Promise.all(running.map((server) => server.exited));
  await receiver.stop();
  await db.drop();
  assert.deepEqual(codes, running.map(() => 0), 'every server drained and exited 0 on SIGTERM');
});

async function start(): Promise<string> {
  const server = spawnServer(env);
  servers.push(server);
  return server.listening;
}

const JOBS = 12;

/** JOBS messages to a recipient who never connects: one push job each. */
async function sendToOffline(url: string, label: string): Promise<string[]> {
  const [alice, bob] = [await register(url), await register(url)];
  const threadId = await createThread(url, alice, [bob]);
  const ids: string[] = [];
  for (let i = 0; i < JOBS; i++) ids.push((await sendMessage(url, alice, threadId, `${label} ${i}`)).id);
  return ids;
}

/** Accepted deliveries by message id, and every webhook-id seen for each message. */
function byMessage(messageIds: string[]) {
  const wanted = new Set(messageIds);
  const accepted = new Map<string, number>();
  const webhookIds = new Map<string, Set<string>>();
  for (const delivery of receiver.deliveries) {
    const messageId = WebhookReceiver.verify(secret, delivery).data.message.id;
    if (!wanted.has(messageId)) continue;
    (webhookIds.get(messageId) ?? webhookIds.set(messageId, new Set()).get(messageId)!).add(delivery.id);
    if (WebhookReceiver.took(delivery)) accepted.set(messageId, (accepted.get(messageId) ?? 0) + 1);
  }
  return { accepted, webhookIds };
}

test('kill -9 of the instance delivering, mid-retry: after a restart every job is delivered; duplicates only under the same webhook-id', async () => {
  // First attempts fail (500); second attempts are taken but never answered (the receiver acted
  // on them), so the instance dies holding them and they are delivered again after the restart.
  const attempts = new Map<string, number>();
  let killed = false;
  receiver.answer = (_index, delivery) => {
    const attempt = (attempts.get(delivery.id) ?? 0) + 1;
    attempts.set(delivery.id, attempt);
    if (killed) return 200;
    return attempt === 1 ? 500 : 'swallow';
  };
  const first = await start();
  const messageIds = await sendToOffline(first, 'kill');
  await waitFor(() => [...attempts.values()].some((attempt) => attempt >= 2), 20_000, 'a retry in flight');
  const victim = servers.at(-1)!;
  victim.child.kill('SIGKILL');
  assert.equal(await victim.exited, 'SIGKILL');
  killed = true;
  const [{ pending }] = (await db.query<{ pending: number }>(`SELECT count(*)::int AS pending FROM push_jobs WHERE state = 'pending'`)) as [{ pending: number }];
  assert.ok(pending > 0, 'jobs were left undelivered by the kill');

  await start();
  await waitFor(async () => (await db.query(`SELECT 1 FROM push_jobs WHERE state <> 'sent'`)).length === 0, 30_000, 'every job sent');
  const { accepted, webhookIds } = byMessage(messageIds);
  assert.deepEqual([...accepted.keys()].sort(), [...messageIds].sort(), 'every message was pushed');
  for (const messageId of messageIds) assert.equal(webhookIds.get(messageId)!.size, 1, `message ${messageId}: one webhook-id however often it came`);
  const duplicates = [...accepted.values()].filter((count) => count > 1).length;
  assert.ok(duplicates >= 1, 'a swallowed push came again, under its webhook-id');
  console.log(`# figures push-kill-9: ${JSON.stringify({ jobs: JOBS, pendingAtKill: pending, deliveries: receiver.deliveries.length, acceptedTwice: duplicates })}`);
});

test('two instances delivering at once never take the same job (FOR UPDATE SKIP LOCKED)', async () => {
  receiver.answer = () => 200;
  const before = receiver.deliveries.length;
  const second = await start();
  assert.equal(servers.filter((server) => server.child.exitCode === null && server.child.signalCode === null).length, 2);
  const messageIds = [...(await sendToOffline(second, 'pair a')), ...(await sendToOffline(second, 'pair b'))];
  await waitFor(async () => (await db.query(`SELECT 1 FROM push_jobs WHERE state <> 'sent'`)).length === 0, 30_000, 'every job sent');
  const { accepted } = byMessage(messageIds);
  assert.equal(accepted.size, messageIds.length);
  assert.deepEqual([...accepted.values()].filter((count) => count > 1), [], 'no job delivered twice');
  assert.equal(receiver.deliveries.length - before, messageIds.length);
});
