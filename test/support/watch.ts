import { poll } from './poll.js';
import { openStream, type Envelope, type StreamReader } from './sse.js';

/** The envelope of an SSE event without the reader's frame fields. */
function envelopeOf(envelope: Envelope & { sseId?: string; sseEvent?: string }): Envelope {
  const { sseId: _id, sseEvent: _event, ...rest } = envelope;
  return rest;
}

/**
 * One user's view of the events on one instance over both delivery paths at once: an SSE stream
 * and a long-poll loop that carries its cursor. Both start "from now".
 */
export class Watch {
  private readonly polled: Envelope[] = [];

  private constructor(
    private readonly baseUrl: string,
    private readonly token: string,
    readonly stream: StreamReader,
    private cursor: string,
  ) {}

  static async open(baseUrl: string, token: string): Promise<Watch> {
    const stream = await openStream(baseUrl, token);
    const { cursor } = await poll(baseUrl, token);
    return new Watch(baseUrl, token, stream, cursor);
  }

  /** The next durable event of `type` on each path (others are skipped), within `timeoutMs`. */
  async next(type: string, timeoutMs = 10_000): Promise<{ sse: Envelope; poll: Envelope }> {
    const [sse, polled] = await Promise.all([this.stream.nextOfType(type, timeoutMs), this.nextPolled(type, timeoutMs)]);
    return { sse: envelopeOf(sse), poll: polled };
  }

  /** The durable events of the next `count` on each path, as [type, data] pairs, equal on both. */
  async nextDurable(count: number, timeoutMs = 10_000): Promise<Envelope[]> {
    const sse: Envelope[] = [];
    while (sse.length < count) {
      const envelope = await this.stream.nextEnvelope(timeoutMs);
      if (envelope.id !== undefined) sse.push(envelope);
    }
    const polled: Envelope[] = [];
    while (polled.length < count) polled.push(await this.nextPolled(undefined, timeoutMs));
    const same = JSON.stringify(sse.map(envelopeOf)) === JSON.stringify(polled);
    if (!same) throw new Error(`SSE and long-poll differ:\n${JSON.stringify(sse)}\n${JSON.stringify(polled)}`);
    return polled;
  }

  private async nextPolled(type: string | undefined, timeoutMs: number): Promise<Envelope> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.polled.findIndex((envelope) => envelope.id !== undefined && (type === undefined || envelope.type === type));
      if (index !== -1) return this.polled.splice(0, index + 1).at(-1)!;
      this.polled.length = 0;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${type ?? 'durable'} event was polled within ${timeoutMs} ms`);
      const answer = await poll(this.baseUrl, this.token, { cursor: this.cursor, timeout: Math.max(1, Math.min(20, Math.ceil(left / 1000))) });
      if (answer.status !== 200) throw new Error(`poll answered ${answer.status}`);
      this.polled.push(...answer.events);
      this.cursor = answer.cursor;
    }
  }

  close(): void {
    this.stream.close();
  }
}
