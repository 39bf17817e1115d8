import { EventBuffer } from 'better-sse';
import type { EventRow } from '../store/events.js';
import { WireBytes } from './wire.js';

/** Our payloads are JSON text already: written as they are. */
export const asText = (data: unknown) => data as string;

/**
 * One event as every delivery path sends it. The envelope is JSON text from the database (or
 * built once for an ephemeral event), and each wire format is derived at most once per instance,
 * however many connections receive it.
 */
export class Deliverable {
  private sseFrame: WireBytes | undefined;
  private ndjsonLine: WireBytes | undefined;
  private audienceSet: Set<string> | undefined;

  constructor(
    /** The durable event id; undefined for ephemeral events (typing, presence, reset). */
    readonly id: number | undefined,
    readonly type: string,
    /** The contract's envelope as JSON text. */
    readonly json: string,
    /** Users who may receive it. */
    readonly audience: readonly string[],
  ) {}

  static fromRow(row: EventRow): Deliverable {
    return new Deliverable(Number(row.id), row.type, row.envelope, row.audience);
  }

  /** An event that is never stored: its envelope has no id. */
  static ephemeral(type: string, fields: { threadId?: string; at: string; data: unknown }, audience: readonly string[]): Deliverable {
    const envelope = { type, ...(fields.threadId !== undefined && { threadId: fields.threadId }), at: fields.at, data: fields.data };
    return new Deliverable(undefined, type, JSON.stringify(envelope), audience);
  }

  /** Whether `userId` may receive it. */
  isFor(userId: string): boolean {
    if (this.audience.length <= 16) return this.audience.includes(userId);
    this.audienceSet ??= new Set(this.audience);
    return this.audienceSet.has(userId);
  }

  /**
   * The SSE frame (`id:` for durable events only, `event:`, `data:`), framed by better-sse and
   * encoded once: every stream writes the same bytes.
   */
  get sseWire(): WireBytes {
    if (!this.sseFrame) {
      const frame = new EventBuffer({ serializer: asText });
      if (this.id !== undefined) frame.id(String(this.id));
      this.sseFrame = new WireBytes(frame.event(this.type).data(this.json).dispatch().read());
    }
    return this.sseFrame;
  }

  get sse(): Buffer {
    return this.sseWire.body;
  }

  /** The envelope as one line of NDJSON, encoded once. */
  get ndjsonWire(): WireBytes {
    this.ndjsonLine ??= new WireBytes(`${this.json}\n`);
    return this.ndjsonLine;
  }

  get ndjson(): Buffer {
    return this.ndjsonWire.body;
  }

  /** Drop the encoded frames (after the live dispatch), keeping only the JSON. */
  forgetWireFormats(): void {
    this.sseFrame = undefined;
    this.ndjsonLine = undefined;
  }
}
