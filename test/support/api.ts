import { randomBytes } from 'node:crypto';
import request from 'supertest';

export interface TestUser {
  id: string;
  username: string;
  token: string;
}

export const PASSWORD = 'correct horse battery';

/** A username no other test uses. */
export function uniqueUsername(prefix = 'u'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

export async function register(baseUrl: string, username = uniqueUsername()): Promise<TestUser> {
  const res = await request(baseUrl).post('/v1/users').send({ username, password: PASSWORD }).expect(201);
  return { id: res.body.user.id, username, token: res.body.token };
}

export const bearer = (user: TestUser) => ({ Authorization: `Bearer ${user.token}` });

/**
 * Create a thread as `owner` with `others`, who accept it if it is a request for them (they are
 * friends: most tests are about what friends do; test/contacts.test.ts is about strangers).
 * Returns its id.
 */
export async function createThread(baseUrl: string, owner: TestUser, others: TestUser[], title?: string): Promise<string> {
  const res = await request(baseUrl)
    .post('/v1/threads')
    .set(bearer(owner))
    .send({ members: others.map((user) => user.id), ...(title && { title }) });
  if (res.status !== 201 && res.status !== 200) throw new Error(`create thread: ${res.status} ${res.text}`);
  const thread = res.body.thread as { id: string; pending: string[] };
  for (const user of others.filter((other) => thread.pending.includes(other.id))) {
    await request(baseUrl).post(`/v1/threads/${thread.id}/accept`).set(bearer(user)).expect(200);
  }
  return thread.id;
}

export async function sendMessage(baseUrl: string, sender: TestUser, threadId: string, body: string, clientId?: string) {
  const res = await request(baseUrl)
    .post(`/v1/threads/${threadId}/messages`)
    .set(bearer(sender))
    .send({ body, ...(clientId && { clientId }) });
  if (res.status !== 201 && res.status !== 200) throw new Error(`send: ${res.status} ${res.text}`);
  return res.body.message as { id: string; seq: number; body: string; clientId: string | null };
}

/** Two new users and a direct thread between them. */
export async function createPair(baseUrl: string): Promise<{ alice: TestUser; bob: TestUser; threadId: string }> {
  const [alice, bob] = [await register(baseUrl), await register(baseUrl)];
  return { alice, bob, threadId: await createThread(baseUrl, alice, [bob]) };
}
