import type { Pool, PoolClient } from 'pg';
import { Webhook } from 'standardwebhooks';
import type { WebhookSettings } from '../config.js';
import { inTransaction } from '../db/pool.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { claimDueJobs, finishJob, pushSubject, retryJob, setPushSettings, type PushJob } from '../store/push-jobs.js';

/** Jobs claimed per transaction; their deliveries run concurrently. */
const BATCH = 16;
/** The longest wait between two attempts at one job. */
const MAX_RETRY_DELAY_MS = 3600_000;

/** The event type of the webhook's payload. */
export const PUSH_EVENT_TYPE = 'message.unreceived';

/** The instance is stopping: the attempt is abandoned and its job stays as it was. */
class Stopping extends Error {}

/**
 * Delivers the push webhook: every instance looks for due jobs now and then (never on the send
 * path: sends only write the job, in their own transaction, by trigger), claims them with
 * FOR UPDATE SKIP LOCKED (so each job is with one instance at a time), works out who has not
 * received the message, and POSTs it signed per Standard Webhooks. A failed attempt is retried
 * with exponential backoff (`retryMs`, doubling, at most an hour) until `maxAttempts`, then the
 * job is `failed`. A crash leaves its jobs pending: they are delivered again, under the same
 * `webhook-id` (`push_<job id>`), so delivery is at least once.
 */
export class WebhookDispatcher {
  private readonly signer: Webhook;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly stopping = new AbortController();

  constructor(
    private readonly pool: Pool,
    private readonly settings: WebhookSettings,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {
    this.signer = new Webhook(settings.secret);
  }

  async start(): Promise<void> {
    await setPushSettings(this.pool, true, this.settings.graceMs);
    this.timer = setInterval(() => void this.run(), this.settings.pollMs);
    this.timer.unref();
  }

  /** Stop looking for jobs; an attempt in flight is abandoned (its job is due again elsewhere). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.stopping.abort();
    await this.running;
  }

  /** Deliver what is due, batch after batch; concurrent calls share the run in progress. */
  run(): Promise<void> {
    this.running ??= this.deliverDue().finally(() => (this.running = undefined));
    return this.running;
  }

  private async deliverDue(): Promise<void> {
    try {
      while (!this.stopping.signal.aborted && (await inTransaction(this.pool, (client) => this.deliverBatch(client))) === BATCH);
    } catch (error) {
      if (!(error instanceof Stopping)) this.logger.warn({ err: error }, 'push webhook: looking for due jobs failed');
    }
  }

  /**
   * Claim due jobs, read each one's recipients, POST those with someone to tell concurrently,
   * then record every outcome. The client's queries run one after another (a pg client takes
   * one query at a time); only the HTTP requests overlap.
   */
  private async deliverBatch(client: PoolClient): Promise<number> {
    const jobs = await claimDueJobs(client, BATCH);
    const work: Array<{ job: PushJob; payload: string }> = [];
    for (const job of jobs) {
      const subject = await pushSubject(client, job.messageId);
      if (subject && subject.recipients.length > 0) {
        work.push({ job, payload: JSON.stringify({ type: PUSH_EVENT_TYPE, timestamp: new Date().toISOString(), data: subject }) });
        continue;
      }
      await finishJob(client, job.id, 'skipped', job.attempts);
      this.metrics.webhookJobs.inc({ outcome: 'skipped' });
    }
    // Stopping rejects (and rolls the batch back: its jobs stay as they were).
    const errors = await Promise.all(work.map(({ job, payload }) => this.post(`push_${job.id}`, payload)));
    for (const [index, { job }] of work.entries()) await this.record(client, job, errors[index]);
    return jobs.length;
  }

  /** Mark the job sent, due again after the backoff, or failed after its last attempt. */
  private async record(client: PoolClient, job: PushJob, error: string | undefined): Promise<void> {
    const attempts = job.attempts + 1;
    if (error === undefined) {
      await finishJob(client, job.id, 'sent', attempts);
      this.metrics.webhookJobs.inc({ outcome: 'sent' });
      return;
    }
    this.metrics.webhookAttemptsFailed.inc();
    if (attempts >= this.settings.maxAttempts) {
      await finishJob(client, job.id, 'failed', attempts, error);
      this.metrics.webhookJobs.inc({ outcome: 'failed' });
      this.logger.warn({ jobId: job.id, attempts, error, webhook: this.settings.url.origin }, 'push webhook: giving up on a job');
      return;
    }
    const delayMs = Math.min(this.settings.retryMs * 2 ** job.attempts, MAX_RETRY_DELAY_MS);
    await retryJob(client, job.id, attempts, delayMs, error);
  }

  /** One signed POST; undefined when the host took it (2xx), else why not. */
  private async post(webhookId: string, payload: string): Promise<string | undefined> {
    const timestamp = new Date();
    // A timer of our own rather than AbortSignal.timeout(): nothing else holds on to that signal
    // while the request waits, and the attempt must be cut at the timeout, always.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new DOMException('The webhook did not answer in time.', 'TimeoutError')), this.settings.timeoutMs);
    const onStop = () => abort.abort();
    this.stopping.signal.addEventListener('abort', onStop, { once: true });
    try {
      const response = await fetch(this.settings.url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'webhook-id': webhookId,
          'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
          'webhook-signature': this.signer.sign(webhookId, timestamp, payload),
        },
        body: payload,
        redirect: 'manual',
        signal: abort.signal,
      });
      await response.body?.cancel();
      return response.ok ? undefined : `answered ${response.status}`;
    } catch (error) {
      if (this.stopping.signal.aborted) throw new Stopping();
      const failure = error as Error & { cause?: { code?: string; message?: string } };
      if (failure.name === 'TimeoutError') return `no answer within ${this.settings.timeoutMs} ms`;
      return failure.cause?.code ?? failure.cause?.message ?? failure.message; // ECONNREFUSED, ENOTFOUND …
    } finally {
      clearTimeout(timer);
      this.stopping.signal.removeEventListener('abort', onStop);
    }
  }
}
