import request from 'supertest';
import type { Envelope } from './sse.js';

export interface PollAnswer {
  status: number;
  events: Envelope[];
  cursor: string;
  headers: Record<string, string>;
}

/** One long-poll, as a client sends it. */
export async function poll(baseUrl: string, token: string, query: { cursor?: string; timeout?: number } = {}): Promise<PollAnswer> {
  const params = new URLSearchParams();
  if (query.cursor !== undefined) params.set('cursor', query.cursor);
  if (query.timeout !== undefined) params.set('timeout', String(query.timeout));
  const res = await request(baseUrl).get(`/v1/poll?${params}`).set('Authorization', `Bearer ${token}`);
  return { status: res.status, events: res.body.events, cursor: res.body.cursor, headers: res.headers as Record<string, string> };
}
