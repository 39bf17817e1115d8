import type { Pool } from 'pg';
import { NotFoundProblem } from '../errors.js';

/** The contract's `message` object. */
export interface Message {
  id: string;
  threadId: string;
  seq: number;
  senderId: string;
  body: string;
  clientId: string | null;
  createdAt: string;
}

export interface SendRequest {
  threadId: string;
  senderId: string;
  body: string;
  clientId: string | null;
}

/** `created`: a new message; `duplicate`: the original of an earlier send with the same clientId. */
export type SendOutcome = { outcome: 'created' | 'duplicate'; message: Message } | { outcome: 'not_found' };

interface QueuedSend {
  request: SendRequest;
  resolve: (outcome: SendOutcome) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for sends. While one batch is being committed, arriving sends queue up; the next
 * batch takes them all in one call of postline_send_messages: one transaction, one commit-order
 * lock, one NOTIFY. Each send is answered only after its batch has committed. When idle, a send
 * goes out at once, so low load pays no extra latency.
 */
export class SendQueue {
  private queue: QueuedSend[] = [];
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];

  /**
   * @param maxBatch - Most sends committed together. Defaults to 256.
   * @param maxInFlight - Batches committing at once on this instance. Defaults to 1.
   */
  constructor(
    private readonly pool: Pool,
    private readonly maxBatch = 256,
    private readonly maxInFlight = 1,
  ) {}

  send(request: SendRequest): Promise<SendOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.pump();
    });
  }

  /** Resolves once every queued send has been answered (for shutdown). */
  drain(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight++;
      void this.commit(batch).finally(() => {
        this.inFlight--;
        this.pump();
        if (this.queue.length === 0 && this.inFlight === 0) this.idleWaiters.splice(0).forEach((wake) => wake());
      });
    }
  }

  private async commit(batch: QueuedSend[]): Promise<void> {
    try {
      const { rows } = await this.pool.query<{ item: number; outcome: SendOutcome['outcome']; message: Message | null }>(
        'SELECT item, outcome, message FROM postline_send_messages($1::bigint[], $2::bigint[], $3::text[], $4::text[])',
        [
          batch.map((send) => send.request.threadId),
          batch.map((send) => send.request.senderId),
          batch.map((send) => send.request.body),
          batch.map((send) => send.request.clientId),
        ],
      );
      for (const row of rows) {
        const send = batch[row.item - 1]!;
        send.resolve(row.outcome === 'not_found' ? { outcome: 'not_found' } : { outcome: row.outcome, message: row.message! });
      }
    } catch (error) {
      for (const send of batch) send.reject(error);
    }
  }
}

const PAGE_WHERE = `m.thread_id = $1 AND ($2::bigint IS NULL OR m.seq < $2) AND ($3::bigint IS NULL OR m.seq > $3)`;
const PAGE_FORWARD = `SELECT postline_message_json(m) AS message FROM messages m WHERE ${PAGE_WHERE} ORDER BY m.seq ASC LIMIT $4`;
const PAGE_BACKWARD = `SELECT postline_message_json(m) AS message FROM messages m WHERE ${PAGE_WHERE} ORDER BY m.seq DESC LIMIT $4`;

/**
 * A page of a thread's messages in ascending seq. With `after`: the first `limit` after it;
 * otherwise the last `limit` before `before` (or the newest). `hasMore`: more exist beyond the
 * page in the direction of travel.
 */
export async function listMessages(
  pool: Pool,
  input: { threadId: string; viewerId: string; before?: number | undefined; after?: number | undefined; limit: number },
): Promise<{ messages: Message[]; hasMore: boolean }> {
  const member = await pool.query('SELECT 1 FROM thread_members WHERE thread_id = $1 AND user_id = $2', [
    input.threadId,
    input.viewerId,
  ]);
  if (!member.rowCount) throw new NotFoundProblem('No such thread.');
  const forward = input.after !== undefined;
  const { rows } = await pool.query<{ message: Message }>(forward ? PAGE_FORWARD : PAGE_BACKWARD, [
    input.threadId,
    input.before ?? null,
    input.after ?? null,
    input.limit + 1,
  ]);
  const hasMore = rows.length > input.limit;
  const page = rows.slice(0, input.limit).map((row) => row.message);
  return { messages: forward ? page : page.reverse(), hasMore };
}
