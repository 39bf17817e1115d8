import type { Pool } from 'pg';
import type { Message } from '../contract.js';

export interface SendRequest {
  threadId: string;
  senderId: string;
  body: string;
  clientId: string | null;
  /** A message of the same thread (not deleted) that this one answers. */
  replyTo: string | null;
}

/**
 * `created`: a new message; `duplicate`: the original of an earlier send with the same clientId;
 * `not_found`: no such thread, or the sender is not a member; `reply_not_found`: replyTo is not a
 * message of that thread; `reply_deleted`: replyTo was deleted; `blocked`: a direct thread whose
 * two members are blocked (either way).
 */
export type SendOutcome =
  | { outcome: 'created' | 'duplicate'; message: Message }
  | { outcome: 'not_found' | 'reply_not_found' | 'reply_deleted' | 'blocked' };

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
        'SELECT item, outcome, message FROM postline_send_messages($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[])',
        [
          batch.map((send) => send.request.threadId),
          batch.map((send) => send.request.senderId),
          batch.map((send) => send.request.body),
          batch.map((send) => send.request.clientId),
          batch.map((send) => send.request.replyTo),
        ],
      );
      for (const row of rows) {
        const send = batch[row.item - 1]!;
        // The database pairs a message with 'created' and 'duplicate' only.
        send.resolve((row.message ? { outcome: row.outcome, message: row.message } : { outcome: row.outcome }) as SendOutcome);
      }
    } catch (error) {
      for (const send of batch) send.reject(error);
    }
  }
}
