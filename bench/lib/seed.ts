import { randomBytes } from 'node:crypto';

export interface BenchUser {
  id: string;
  token: string;
}

async function call<T>(url: string, init: { method?: string; token?: string; body?: unknown } = {}): Promise<T> {
  const response = await fetch(url, {
    method: init.method ?? (init.body ? 'POST' : 'GET'),
    headers: { 'Content-Type': 'application/json', ...(init.token && { Authorization: `Bearer ${init.token}` }) },
    ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
  });
  if (!response.ok) throw new Error(`${init.method ?? 'POST'} ${url}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** Run `work` over `items` with at most `concurrency` at a time, keeping the order of results. */
export async function inParallel<I, O>(items: I[], concurrency: number, work: (item: I, index: number) => Promise<O>): Promise<O[]> {
  const results: O[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index]!, index);
      }
    }),
  );
  return results;
}

/** Register `count` users, spread over the instances. */
export function registerUsers(urls: string[], count: number): Promise<BenchUser[]> {
  const prefix = randomBytes(3).toString('hex');
  return inParallel(Array.from({ length: count }, (_, i) => i), 16, async (i) => {
    const answer = await call<{ user: { id: string }; token: string }>(`${urls[i % urls.length]}/v1/users`, {
      body: { username: `b${prefix}_${i}`, password: 'benchmark password' },
    });
    return { id: answer.user.id, token: answer.token };
  });
}

/** A group thread created by `owner` with `members`; returns its id. */
export async function createGroup(url: string, owner: BenchUser, members: BenchUser[], title: string): Promise<string> {
  const answer = await call<{ thread: { id: string } }>(`${url}/v1/threads`, {
    token: owner.token,
    body: { members: members.map((member) => member.id), title },
  });
  return answer.thread.id;
}

export async function sendOne(url: string, sender: BenchUser, threadId: string, body: string): Promise<string> {
  const answer = await call<{ message: { id: string } }>(`${url}/v1/threads/${threadId}/messages`, { token: sender.token, body: { body } });
  return answer.message.id;
}

export async function headCursor(url: string, user: BenchUser): Promise<string> {
  return (await call<{ cursor: string }>(`${url}/v1/poll`, { token: user.token })).cursor;
}
