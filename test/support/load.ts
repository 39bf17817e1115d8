import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createThread, register, type TestUser } from './api.js';
import { openStream, type Envelope, type StreamReader } from './sse.js';

/** How one stream connection of a {@link ResumingReader} went. */
export interface Connection {
  url: string;
  status: number;
  /** The server ended it (rather than the reader). */
  endedByServer: boolean;
  /** `retry:` fields received on it (the first comes with the preamble). */
  retryHints: number;
}

/**
 * A client following one user's events as EventSource would: whenever its stream ends or cannot
 * be opened, it resumes with `Last-Event-ID` on the next of `urls`. Records every durable event.
 */
export class ResumingReader {
  /** Durable events received, in arrival order. */
  readonly received: Envelope[] = [];
  /** When each of them arrived (performance.now()). */
  readonly arrivals: number[] = [];
  readonly connections: Connection[] = [];
  lastId: string;
  private stopped = false;
  private current: StreamReader | undefined;
  private readonly done: Promise<void>;

  constructor(
    readonly user: TestUser,
    /** Where to connect, tried in turn; the caller may change it (say, drop a dead instance). */
    public urls: string[],
    from: string,
  ) {
    this.lastId = from;
    this.done = this.run();
  }

  /** Wait until the reader has every id in `ids` (it may have more). */
  async caughtUp(ids: string[], timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const have = new Set(this.received.map((event) => event.id));
      const missing = ids.filter((id) => !have.has(id));
      if (missing.length === 0) return;
      if (Date.now() > deadline) throw new Error(`user ${this.user.id}: ${missing.length} events never arrived (first ${missing[0]})`);
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.close();
    await this.done;
  }

  private async run(): Promise<void> {
    for (let turn = 0; !this.stopped; turn++) {
      const url = this.urls[turn % this.urls.length]!;
      let stream: StreamReader;
      try {
        stream = await openStream(url, this.user.token, { headers: { 'Last-Event-ID': this.lastId } });
      } catch {
        await sleep(100); // refused: that instance is gone; try the next
        continue;
      }
      this.current = stream;
      const connection: Connection = { url, status: stream.status, endedByServer: false, retryHints: 0 };
      this.connections.push(connection);
      if (stream.status === 200) {
        try {
          for (;;) {
            const envelope = await stream.nextEnvelope(3_600_000);
            if (envelope.id === undefined) continue;
            this.received.push(envelope);
            this.arrivals.push(performance.now());
            this.lastId = envelope.id;
          }
        } catch {
          connection.endedByServer = !this.stopped;
        }
      }
      connection.retryHints = stream.raw.match(/^retry:/gm)?.length ?? 0;
      stream.close();
      if (!this.stopped) await sleep(stream.status === 200 ? 20 : 100);
    }
  }
}

/** A message the service acknowledged (201 or 200). */
export interface Acknowledged {
  id: string;
  clientId: string;
}

/**
 * Sends messages as one user, as a careful client does: each with a clientId, retried (on the
 * next URL after a connection error, after a pause on 503) until acknowledged. Tallies every
 * status it saw and keeps any answer that is not what the contract allows.
 */
export class Sender {
  readonly acknowledged: Acknowledged[] = [];
  readonly statuses = new Map<number | 'network', number>();
  /** Answers that break the contract: a 5xx other than a problem+json 503, or a 503 without it. */
  readonly violations: string[] = [];
  /** Messages this sender set out to send (each may take several attempts). */
  sent = 0;
  /** When each message's first attempt started (performance.now()), by clientId. */
  readonly startedAt = new Map<string, number>();
  attempts = 0;
  private turn = 0;

  constructor(
    readonly user: TestUser,
    readonly threadId: string,
    public urls: string[],
  ) {}

  /**
   * Send `count` messages, `concurrency` at a time, each retried until acknowledged (or until
   * `shouldStop()`). Each has the clientId `<label>-<n>`; the body is that too, unless given.
   */
  async run(count: number, concurrency: number, label: string, shouldStop: () => boolean = () => false, body?: string): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < count && !shouldStop()) {
        const clientId = `${label}-${next++}`;
        await this.send(body ?? clientId, clientId, shouldStop);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }

  /** Send one message until it is acknowledged; returns its id (undefined if stopped first). */
  async send(body: string, clientId: string, shouldStop: () => boolean = () => false): Promise<string | undefined> {
    this.sent++;
    this.startedAt.set(clientId, performance.now());
    for (;;) {
      if (shouldStop()) return undefined;
      const url = this.urls[this.turn++ % this.urls.length]!;
      this.attempts++;
      let res: Response;
      try {
        res = await fetch(`${url}/v1/threads/${this.threadId}/messages`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${this.user.token}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ body, clientId }),
          signal: AbortSignal.timeout(20_000),
        });
      } catch {
        this.count('network');
        await sleep(50);
        continue;
      }
      this.count(res.status);
      const text = await res.text();
      if (res.status === 201 || res.status === 200) {
        const { message } = JSON.parse(text) as { message: { id: string } };
        this.acknowledged.push({ id: message.id, clientId });
        return message.id;
      }
      const isProblem = /^application\/problem\+json/.test(res.headers.get('content-type') ?? '');
      if (res.status >= 500 && !(res.status === 503 && isProblem && !/\bat .+:\d+:\d+/.test(text))) {
        this.violations.push(`${res.status} ${res.headers.get('content-type')} ${text.slice(0, 300)}`);
      }
      await sleep(res.status === 503 ? 200 : 50);
    }
  }

  private count(status: number | 'network'): void {
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
  }
}

/** The outcome of one fault test, as docs/reliability.md reports it. */
export interface DeliveryFigures {
  /** Messages sent, POST attempts it took (retries after errors), and acknowledgements. */
  sent: number;
  attempts: number;
  acknowledged: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicated: number;
}

type Query = <Row extends Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<Row[]>;

/**
 * Check readers against the events table: each got every event after `startId` that its user may
 * see, exactly once and in id order, nothing it may not see, and every acknowledged message.
 * Fails the test otherwise; returns the figures.
 */
export async function checkDelivery(query: Query, startId: string, readers: ResumingReader[], senders: Sender[]): Promise<DeliveryFigures> {
  const figures: DeliveryFigures = { sent: 0, attempts: 0, acknowledged: 0, expected: 0, delivered: 0, lost: 0, duplicated: 0 };
  for (const sender of senders) {
    figures.sent += sender.sent;
    figures.attempts += sender.attempts;
    figures.acknowledged += sender.acknowledged.length;
    assert.deepEqual(sender.violations, [], 'every failure was a 503 problem+json');
    // Retries carry the same clientId: a send that committed but whose answer was lost is not stored twice.
    const [stored] = await query<{ rows: number; keys: number }>(
      'SELECT count(*)::int AS rows, count(DISTINCT client_id)::int AS keys FROM messages WHERE thread_id = $1 AND sender_id = $2',
      [sender.threadId, sender.user.id],
    );
    assert.equal(stored!.rows, stored!.keys, 'no message stored twice');
  }
  for (const reader of readers) {
    const expected = (
      await query<{ id: string }>('SELECT id::text AS id FROM events e WHERE e.id > $1 AND e.audience @> ARRAY[$2::bigint] ORDER BY e.id', [startId, reader.user.id])
    ).map((row) => row.id);
    await reader.caughtUp(expected);
    const ids = reader.received.map((event) => event.id!);
    const unique = new Set(ids);
    figures.expected += expected.length;
    figures.delivered += ids.length;
    figures.duplicated += ids.length - unique.size;
    figures.lost += expected.filter((id) => !unique.has(id)).length;
    assert.deepEqual(ids, expected, `user ${reader.user.id}: every event exactly once, in id order`);
    const deliveredMessages = new Set(reader.received.filter((e) => e.type === 'message.created').map((e) => (e.data as { id: string }).id));
    for (const sender of senders) {
      for (const ack of sender.acknowledged) assert.ok(deliveredMessages.has(ack.id), `acknowledged message ${ack.id} delivered`);
    }
  }
  return figures;
}

/** Print a fault's figures where the test report shows them (copied into docs/reliability.md). */
export function report(name: string, figures: object): void {
  console.log(`# figures ${name}: ${JSON.stringify(figures)}`);
}

/** `count` new users in one group thread (everyone both sends and reads), and the event id to start after. */
export async function createGroup(
  baseUrl: string,
  count: number,
  query: Query,
): Promise<{ users: TestUser[]; threadId: string; startId: string }> {
  const users: TestUser[] = [];
  for (let i = 0; i < count; i++) users.push(await register(baseUrl));
  const threadId = await createThread(baseUrl, users[0]!, users.slice(1), 'load');
  const [row] = await query<{ id: string }>('SELECT coalesce(max(id), 0)::text AS id FROM events');
  return { users, threadId, startId: row!.id };
}
