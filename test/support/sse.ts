import http from 'node:http';

/** One SSE event block as it came over the wire. */
export interface SseFrame {
  id?: string;
  event?: string;
  data?: string;
  retry?: number;
  comments: string[];
}

export interface Envelope {
  id?: string;
  type: string;
  threadId?: string;
  at: string;
  data: Record<string, unknown>;
}

/**
 * An event-stream parser as a browser implements it (WHATWG rules: CR, LF or CRLF line ends, `:`
 * comments, one space after the colon, a blank line dispatches). Fed text in chunks.
 */
export class EventStreamParser {
  /** Complete frames (events, comments, retry-only blocks) in order. */
  readonly frames: SseFrame[] = [];
  /** Complete lines (for NDJSON). */
  readonly lines: string[] = [];
  private pendingLines = '';
  private frame: SseFrame = { comments: [] };

  /** Parse a whole stream at once. */
  static parse(text: string): EventStreamParser {
    const parser = new EventStreamParser();
    parser.feed(text);
    return parser;
  }

  feed(chunk: string): void {
    this.pendingLines += chunk;
    const parts = this.pendingLines.split(/\r\n|\r|\n/);
    this.pendingLines = parts.pop()!;
    for (const line of parts) {
      this.lines.push(line);
      this.parseLine(line);
    }
  }

  private parseLine(line: string): void {
    if (line === '') {
      if (this.frame.data !== undefined || this.frame.comments.length || this.frame.id !== undefined || this.frame.retry !== undefined) {
        this.frames.push(this.frame);
      }
      this.frame = { comments: [] };
      return;
    }
    if (line.startsWith(':')) {
      this.frame.comments.push(line.slice(1));
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.frame.data = this.frame.data === undefined ? value : `${this.frame.data}\n${value}`;
    else if (field === 'id') this.frame.id = value;
    else if (field === 'event') this.frame.event = value;
    else if (field === 'retry') this.frame.retry = Number(value);
  }
}

/** The `ready` event every stream opens with (docs/api.md), with the SSE frame's `id:` if it had one. */
export type ReadyEnvelope = Envelope & { type: 'ready'; data: { userId: string; lastEventId: string }; sseId?: string };

/**
 * A raw HTTP reader of an SSE (or NDJSON) response, frame by frame, as a browser would parse it.
 * Every stream's first event must be `ready` (and no other event may be): the reader holds it
 * apart ({@link ready}), so that the other readers return the events that follow it, and fails
 * them all if the stream breaks that rule.
 */
export class StreamReader {
  /** Every byte received, as text. */
  raw = '';
  ended = false;
  private readonly parser = new EventStreamParser();
  private readonly frames = this.parser.frames;
  private readonly lines = this.parser.lines;
  private readyEnvelope: ReadyEnvelope | undefined;
  /** How the stream broke the `ready` rule, if it did. */
  private broken: string | undefined;
  private wake: (() => void) | undefined;

  private constructor(
    readonly response: http.IncomingMessage,
    private readonly request: http.ClientRequest,
  ) {
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => this.receive(chunk));
    response.on('end', () => this.finish());
    response.on('close', () => this.finish());
    response.on('error', () => this.finish());
  }

  static open(url: string, headers: Record<string, string> = {}): Promise<StreamReader> {
    return new Promise((resolve, reject) => {
      const request = http.get(url, { headers: { Accept: 'text/event-stream', ...headers } }, (response) =>
        resolve(new StreamReader(response, request)),
      );
      request.on('error', reject);
    });
  }

  get status(): number {
    return this.response.statusCode ?? 0;
  }

  private get isNdjson(): boolean {
    return (this.response.headers['content-type'] ?? '').startsWith('application/x-ndjson');
  }

  /** The stream's `ready` event (it comes first, right after the padding). */
  async ready(timeoutMs = 10_000): Promise<ReadyEnvelope> {
    return this.take(() => this.readyEnvelope, timeoutMs);
  }

  /** The next frame with data (an event), skipping comment-only and retry-only blocks. */
  async nextEvent(timeoutMs = 10_000): Promise<SseFrame> {
    const frame = await this.take(() => {
      const index = this.frames.findIndex((f) => f.data !== undefined);
      return index === -1 ? undefined : this.frames.splice(0, index + 1).at(-1);
    }, timeoutMs);
    return frame;
  }

  /** The next event's envelope, parsed. */
  async nextEnvelope(timeoutMs?: number): Promise<Envelope & { sseId?: string; sseEvent?: string }> {
    const frame = await this.nextEvent(timeoutMs);
    return { ...(JSON.parse(frame.data!) as Envelope), sseId: frame.id, sseEvent: frame.event };
  }

  /** The next `count` envelopes. */
  async envelopes(count: number, timeoutMs?: number): Promise<Envelope[]> {
    const out: Envelope[] = [];
    while (out.length < count) out.push(await this.nextEnvelope(timeoutMs));
    return out;
  }

  /** The next envelope of a given type (others are skipped). */
  async nextOfType(type: string, timeoutMs?: number): Promise<Envelope> {
    for (;;) {
      const envelope = await this.nextEnvelope(timeoutMs);
      if (envelope.type === type) return envelope;
    }
  }

  /**
   * Every envelope up to the message.created of `marker` (a message sent to this user after what
   * is watched: what did not come before it did not come), the marker left out.
   */
  async until(marker: { id: string }): Promise<Envelope[]> {
    const seen: Envelope[] = [];
    for (;;) {
      const envelope = await this.nextEnvelope();
      if (envelope.type === 'message.created' && envelope.data.id === marker.id) return seen;
      seen.push(envelope);
    }
  }

  /** The next frame that carries anything but comments (data, id or retry), skipping heartbeats only. */
  async nextFrame(timeoutMs = 10_000): Promise<SseFrame> {
    return this.take(() => {
      const index = this.frames.findIndex((f) => f.data !== undefined || f.id !== undefined || f.retry !== undefined);
      return index === -1 ? undefined : this.frames.splice(0, index + 1).at(-1);
    }, timeoutMs);
  }

  /** The next comment-only block (a heartbeat), skipping whatever comes before it. */
  async nextHeartbeat(timeoutMs = 10_000): Promise<SseFrame> {
    return this.take(() => {
      const index = this.frames.findIndex((f) => f.comments.length > 0 && f.data === undefined);
      return index === -1 ? undefined : this.frames.splice(0, index + 1).at(-1);
    }, timeoutMs);
  }

  /** The next non-empty NDJSON line, parsed. */
  async nextLine(timeoutMs = 10_000): Promise<Envelope> {
    const line = await this.take(() => {
      while (this.lines.length && this.lines[0]!.trim() === '') this.lines.shift();
      return this.lines.shift();
    }, timeoutMs);
    return JSON.parse(line) as Envelope;
  }

  /** Resolves when the server has closed the response. */
  async closed(timeoutMs = 10_000): Promise<void> {
    await this.take(() => (this.ended ? true : undefined), timeoutMs);
  }

  /** Frames received so far and not yet taken (comment-only blocks included). */
  pendingFrames(): SseFrame[] {
    return [...this.frames];
  }

  close(): void {
    this.request.destroy();
  }

  private receive(chunk: string): void {
    this.raw += chunk;
    this.parser.feed(chunk);
    if (this.status === 200) this.holdReadyApart();
    this.wake?.();
  }

  /** Take the first event out as the `ready` event; any other first event, or a later `ready`, breaks the stream. */
  private holdReadyApart(): void {
    if (this.isNdjson) {
      const index = this.lines.findIndex((line) => line.trim() !== '');
      if (index === -1) return;
      if (this.readyEnvelope === undefined) {
        const envelope = JSON.parse(this.lines[index]!) as Envelope;
        if (envelope.type !== 'ready') this.broken ??= `the first line is not the ready event: ${this.lines[index]}`;
        else this.readyEnvelope = envelope as ReadyEnvelope;
        this.lines.splice(0, index + 1);
      }
      if (this.lines.some((line) => line.startsWith('{"type":"ready"'))) this.broken ??= 'a second ready line';
      return;
    }
    const index = this.frames.findIndex((frame) => frame.data !== undefined);
    if (index === -1) return;
    if (this.readyEnvelope === undefined) {
      const frame = this.frames[index]!;
      if (frame.event !== 'ready') this.broken ??= `the first event is not ready: ${frame.event} ${frame.data}`;
      else this.readyEnvelope = { ...(JSON.parse(frame.data!) as ReadyEnvelope), sseId: frame.id };
      this.frames.splice(index, 1);
    }
    if (this.frames.some((frame) => frame.event === 'ready')) this.broken ??= 'a second ready event';
  }

  private finish(): void {
    this.ended = true;
    this.wake?.();
  }

  private take<T>(pick: () => T | undefined, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        reject(new Error(`nothing arrived within ${timeoutMs} ms; received so far:\n${this.raw.slice(-2000)}`));
      }, timeoutMs);
      const attempt = () => {
        if (this.broken !== undefined) {
          clearTimeout(timer);
          this.wake = undefined;
          reject(new Error(`the stream broke the ready rule: ${this.broken}`));
          return;
        }
        const value = pick();
        if (value !== undefined) {
          clearTimeout(timer);
          this.wake = undefined;
          resolve(value);
        } else if (this.ended) {
          clearTimeout(timer);
          this.wake = undefined;
          reject(new Error(`the stream ended; received:\n${this.raw.slice(-2000)}`));
        }
      };
      this.wake = attempt;
      attempt();
    });
  }
}

/** Open an SSE stream as `token`'s user, with extra query parameters and headers. */
export function openStream(
  baseUrl: string,
  token: string,
  options: { query?: Record<string, string>; headers?: Record<string, string> } = {},
): Promise<StreamReader> {
  const query = new URLSearchParams(options.query ?? {}).toString();
  return StreamReader.open(`${baseUrl}/v1/events${query ? `?${query}` : ''}`, {
    Authorization: `Bearer ${token}`,
    ...options.headers,
  });
}

/** Wait until `predicate()` holds, checking every few milliseconds (for state with no event to await). */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
