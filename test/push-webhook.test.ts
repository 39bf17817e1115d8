import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { SignJWT } from 'jose';
import request from 'supertest';
import { messageSchema } from '../src/contract.js';
import { bearer, createThread, register, sendMessage, type TestUser } from './support/api.js';
import { createTestDatabase } from './support/database.js';
import { useInstances } from './support/fixture.js';
import { startTestInstance } from './support/instance.js';
import { metricValue, scrapeMetrics } from './support/metrics.js';
import { poll } from './support/poll.js';
import { openStream, waitFor } from './support/sse.js';
import { webhookSecret, WebhookReceiver, type Delivery } from './support/webhook-receiver.js';

const receiver = new WebhookReceiver();
const receiverUrl = await receiver.start();
after(() => receiver.stop());
const secret = webhookSecret();

const GRACE_MS = 400;
const RETRY_MS = 150;
const TIMEOUT_MS = 600;
const HOST_SECRET = 'host-application-shared-secret-0123456789';
const WEBHOOK_ENV = {
  POSTLINE_WEBHOOK_URL: receiverUrl,
  POSTLINE_WEBHOOK_SECRET: secret,
  POSTLINE_WEBHOOK_GRACE_MS: String(GRACE_MS),
  POSTLINE_WEBHOOK_RETRY_MS: String(RETRY_MS),
  POSTLINE_WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS),
  POSTLINE_WEBHOOK_MAX_ATTEMPTS: '4',
  POSTLINE_WEBHOOK_POLL_MS: '50',
};
// Host users too: the push names them by their host id, for the host's own device registry.
const t = useInstances({ env: { ...WEBHOOK_ENV, POSTLINE_JWT_SECRET: HOST_SECRET, POSTLINE_JWT_ISSUER: 'https://host.example', POSTLINE_JWT_AUDIENCE: 'postline' } });

const forMessage = (messageId: string) => receiver.deliveries.filter((delivery) => WebhookReceiver.verify(secret, delivery).data.message.id === messageId);
const jobOf = async (messageId: string) =>
  (await t.db.query<{ state: string; attempts: number; last_error: string | null }>('SELECT state, attempts, last_error FROM push_jobs WHERE message_id = $1', [messageId]))[0];
const waitForJob = (messageId: string, state: string, timeoutMs = 10_000) =>
  waitFor(async () => (await jobOf(messageId))?.state === state, timeoutMs, `the job of message ${messageId} to be ${state}`);
/** Move `member`'s delivered or read marker to `messageId`, as postline-client does for what it received or showed. */
const acknowledge = (member: TestUser, marker: 'delivered' | 'seen', threadId: string, messageId: string) =>
  request(t.app.url).post(`/v1/threads/${threadId}/${marker}`).set(bearer(member)).send({ upTo: messageId }).expect(204);

test('a recipient who is offline is named, with unread counts, after the grace period; signed per Standard Webhooks', async () => {
  receiver.answer = () => 204;
  const [alice, bob] = [await register(t.app.url), await register(t.app.url)];
  const threadId = await createThread(t.app.url, alice, [bob]);
  await sendMessage(t.app.url, alice, threadId, 'earlier');
  const sentAt = Date.now();
  const message = await sendMessage(t.app.url, alice, threadId, 'are you there?');
  await waitFor(() => forMessage(message.id).length === 1, 10_000, 'the push');
  const [delivery] = forMessage(message.id) as [Delivery];
  assert.ok(delivery.at - sentAt >= GRACE_MS, `delivered ${delivery.at - sentAt} ms after the send (grace ${GRACE_MS} ms)`);
  const payload = WebhookReceiver.verify(secret, delivery); // the library's own verify: throws on a bad signature
  assert.equal(payload.type, 'message.unreceived');
  assert.equal(payload.data.message.body, 'are you there?');
  assert.deepEqual(messageSchema.parse(payload.data.message), payload.data.message, "the contract's message object");
  assert.deepEqual(payload.data.recipients, [{ userId: bob.id, externalId: null, unreadCount: 2, threadUnreadCount: 2 }]);
  assert.match(delivery.id, /^push_\d+$/);
  assert.match(delivery.headers['webhook-timestamp']!, /^\d+$/);
  assert.match(delivery.headers['webhook-signature']!, /^v1,/);
  assert.throws(() => WebhookReceiver.verify(webhookSecret(), delivery), /signature/i, 'another secret does not verify');
  await waitForJob(message.id, 'sent');
  assert.ok(!t.app.logs.some((line) => line.includes(secret.slice(6))), 'the secret is never logged');
});

test('recipients whose client acknowledged it (SSE or long-poll) or who read it are not named; an open stream alone is no delivery', async () => {
  receiver.answer = () => 204;
  const members: TestUser[] = [];
  for (let i = 0; i < 6; i++) members.push(await register(t.app.url));
  const [alice, streamer, poller, reader, silent, offline] = members as [TestUser, TestUser, TestUser, TestUser, TestUser, TestUser];
  const threadId = await createThread(t.app.url, alice, [streamer, poller, reader, silent, offline], 'group');
  const stream = await openStream(t.app.url, streamer.token);
  const silentStream = await openStream(t.app.url, silent.token);
  try {
    const { cursor } = await poll(t.app.url, poller.token);
    const message = await sendMessage(t.app.url, alice, threadId, 'hello all');
    // What postline-client does with what it receives: acknowledge it.
    assert.equal(((await stream.nextOfType('message.created')).data as { id: string }).id, message.id);
    const polled = await poll(t.app.url, poller.token, { cursor, timeout: 10 });
    assert.ok(polled.events.some((event) => event.type === 'message.created' && (event.data as { id: string }).id === message.id));
    for (const member of [streamer, poller]) await acknowledge(member, 'delivered', threadId, message.id);
    await acknowledge(reader, 'seen', threadId, message.id);
    assert.equal(((await silentStream.nextOfType('message.created')).data as { id: string }).id, message.id, 'written to a socket, never acknowledged');
    await waitFor(() => forMessage(message.id).length === 1, 10_000, 'the push');
    const payload = WebhookReceiver.verify(secret, forMessage(message.id)[0]!);
    assert.deepEqual(payload.data.recipients.map((recipient) => recipient.userId), [silent.id, offline.id]);

    // Now everyone acknowledges the next one: there is nobody to tell.
    const second = await sendMessage(t.app.url, alice, threadId, 'for everyone');
    for (const member of [streamer, poller, silent]) await acknowledge(member, 'delivered', threadId, second.id);
    for (const member of [reader, offline]) await acknowledge(member, 'seen', threadId, second.id);
    await waitForJob(second.id, 'skipped');
    assert.equal(forMessage(second.id).length, 0);
  } finally {
    stream.close();
    silentStream.close();
  }
});

test('a message deleted before its push is due is not pushed, and no job keeps its text; an edited one is pushed as edited', async () => {
  // A grace period of its own (on a database and with a receiver of its own), so the changes surely come first.
  const db = await createTestDatabase();
  const own = new WebhookReceiver();
  const instance = await startTestInstance(db.url, { ...WEBHOOK_ENV, POSTLINE_WEBHOOK_URL: await own.start(), POSTLINE_WEBHOOK_GRACE_MS: '2000' });
  try {
    const [alice, bob] = [await register(instance.url), await register(instance.url)];
    const threadId = await createThread(instance.url, alice, [bob]);
    const deleted = await sendMessage(instance.url, alice, threadId, 'the secret plan, deleted at once');
    const edited = await sendMessage(instance.url, alice, threadId, 'a first draft');
    await request(instance.url).delete(`/v1/threads/${threadId}/messages/${deleted.id}`).set(bearer(alice)).expect(204);
    await request(instance.url).patch(`/v1/threads/${threadId}/messages/${edited.id}`).set(bearer(alice)).send({ body: 'the final words' }).expect(200);
    const jobs = await db.query<{ job: string }>('SELECT row_to_json(j)::text AS job FROM push_jobs j WHERE message_id = ANY ($1::bigint[])', [[deleted.id, edited.id]]);
    assert.equal(jobs.length, 2);
    assert.ok(jobs.every(({ job }) => !job.includes('secret plan') && !job.includes('first draft')), 'a job holds the message id, not its text');

    const jobState = async (messageId: string) => (await db.query<{ state: string }>('SELECT state FROM push_jobs WHERE message_id = $1', [messageId]))[0]?.state;
    await waitFor(async () => (await jobState(edited.id)) === 'sent', 10_000, 'the push of the edited message');
    assert.equal(await jobState(deleted.id), 'skipped', 'due before the edited one, and skipped');
    const pushed = own.deliveries.map((delivery) => WebhookReceiver.verify(secret, delivery).data.message);
    assert.deepEqual(pushed.map((message) => [message.id, message.body]), [[edited.id, 'the final words']], 'only the edited message, as edited');
    assert.ok(pushed[0]!.editedAt);
    assert.ok(!own.deliveries.some((delivery) => delivery.body.includes('secret plan') || delivery.body.includes('first draft')), 'no push carries the old texts');
  } finally {
    await instance.stop();
    await own.stop();
    await db.drop();
  }
});

test('a receiver that fails, then recovers: retried with growing delays under one webhook-id until it takes it', async () => {
  receiver.answer = (_index, delivery) => (receiver.deliveries.filter((d) => d.id === delivery.id).length < 2 ? 500 : 200);
  const [alice, bob] = [await register(t.app.url), await register(t.app.url)];
  const message = await sendMessage(t.app.url, alice, await createThread(t.app.url, alice, [bob]), 'retry me');
  await waitForJob(message.id, 'sent');
  const deliveries = forMessage(message.id);
  assert.deepEqual(deliveries.map((delivery) => delivery.answer), [500, 500, 200]);
  assert.equal(new Set(deliveries.map((delivery) => delivery.id)).size, 1, 'one webhook-id for every attempt');
  const [first, second] = [deliveries[1]!.at - deliveries[0]!.at, deliveries[2]!.at - deliveries[1]!.at];
  assert.ok(first >= RETRY_MS && second >= 2 * RETRY_MS, `waited ${first} ms, then ${second} ms (backoff from ${RETRY_MS} ms, doubling)`);
  assert.equal((await jobOf(message.id))!.attempts, 3);
});

test('a receiver that never takes it: after the last attempt the job is failed, and the metrics say so', async () => {
  receiver.answer = () => 503;
  const before = await scrapeMetrics(t.app.url);
  const [alice, bob] = [await register(t.app.url), await register(t.app.url)];
  const message = await sendMessage(t.app.url, alice, await createThread(t.app.url, alice, [bob]), 'never taken');
  const pending = metricValue(await scrapeMetrics(t.app.url), 'postline_webhook_jobs_pending');
  assert.ok(pending >= 1, `pending ${pending} in the grace period`);
  await waitForJob(message.id, 'failed');
  const job = await jobOf(message.id);
  assert.deepEqual(job, { state: 'failed', attempts: 4, last_error: 'answered 503' });
  assert.equal(forMessage(message.id).length, 4);
  const after = await scrapeMetrics(t.app.url);
  assert.equal(metricValue(after, 'postline_webhook_jobs_total', { outcome: 'failed' }) - metricValue(before, 'postline_webhook_jobs_total', { outcome: 'failed' }), 1);
  assert.ok(metricValue(after, 'postline_webhook_attempts_failed_total') - metricValue(before, 'postline_webhook_attempts_failed_total') >= 4);
  assert.ok(metricValue(after, 'postline_webhook_jobs_total', { outcome: 'sent' }) >= 2);
  assert.equal(metricValue(after, 'postline_webhook_jobs_pending'), 0);
});

test('a receiver that hangs: sends are answered meanwhile, and each attempt is cut at the timeout', async () => {
  receiver.answer = () => 'hang';
  const [alice, bob] = [await register(t.app.url), await register(t.app.url)];
  const threadId = await createThread(t.app.url, alice, [bob]);
  const first = await sendMessage(t.app.url, alice, threadId, 'into the void');
  await waitFor(() => forMessage(first.id).length === 1, 10_000, 'the first attempt');
  // The attempt is now held open by the receiver: sending goes on regardless.
  const sends = await Promise.all(Array.from({ length: 10 }, (_, i) => sendMessage(t.app.url, alice, threadId, `meanwhile ${i}`)));
  assert.equal(sends.length, 10);
  await waitFor(async () => (await jobOf(first.id))!.attempts >= 1, 5000, 'the attempt to time out');
  assert.equal((await jobOf(first.id))!.last_error, `no answer within ${TIMEOUT_MS} ms`);
  receiver.answer = () => 204;
  await waitForJob(first.id, 'sent');
});

test('an unreachable webhook URL: sends work, attempts fail fast and are retried; without a URL, no jobs are written', async () => {
  const db = await createTestDatabase();
  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as net.AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve)); // nothing listens there now
  const unreachable = await startTestInstance(db.url, { ...WEBHOOK_ENV, POSTLINE_WEBHOOK_URL: `http://127.0.0.1:${port}/hooks` });
  try {
    const [alice, bob] = [await register(unreachable.url), await register(unreachable.url)];
    const threadId = await createThread(unreachable.url, alice, [bob]);
    const message = await sendMessage(unreachable.url, alice, threadId, 'anyone?');
    await waitFor(async () => (await db.query('SELECT 1 FROM push_jobs WHERE message_id = $1 AND attempts >= 2', [message.id])).length === 1, 10_000, 'two attempts');
    const [job] = await db.query<{ state: string; last_error: string }>('SELECT state, last_error FROM push_jobs WHERE message_id = $1', [message.id]);
    assert.deepEqual(job, { state: 'pending', last_error: 'ECONNREFUSED' });
    await unreachable.stop();
    const plain = await startTestInstance(db.url); // no POSTLINE_WEBHOOK_URL: jobs are switched off
    try {
      const later = await sendMessage(plain.url, alice, threadId, 'no push for this one');
      assert.deepEqual(await db.query('SELECT id FROM push_jobs WHERE message_id = $1', [later.id]), []);
    } finally {
      await plain.stop();
    }
  } finally {
    if (unreachable.server.listening) await unreachable.stop();
    await db.drop();
  }
});

test('a host user is named by their host id (sub), with their unread count across threads for the badge', async () => {
  receiver.answer = () => 204;
  const token = await new SignJWT({ iss: 'https://host.example', aud: 'postline', sub: 'host|42', exp: Math.floor(Date.now() / 1000) + 600 })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode(HOST_SECRET));
  const hostUser = (await request(t.app.url).get('/v1/me').set('Authorization', `Bearer ${token}`).expect(200)).body.user as { id: string };
  const [alice, bob] = [await register(t.app.url), await register(t.app.url)];
  const group = await createThread(t.app.url, bob, [{ id: hostUser.id, username: '', token }], 'other');
  await sendMessage(t.app.url, bob, group, 'elsewhere');
  const message = await sendMessage(t.app.url, alice, await createThread(t.app.url, alice, [{ id: hostUser.id, username: '', token }]), 'to the host user');
  await waitFor(() => forMessage(message.id).length === 1, 10_000, 'the push');
  assert.deepEqual(WebhookReceiver.verify(secret, forMessage(message.id)[0]!).data.recipients, [
    { userId: hostUser.id, externalId: 'host|42', unreadCount: 2, threadUnreadCount: 1 },
  ]);
});
