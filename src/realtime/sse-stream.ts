import type { IncomingMessage } from 'node:http';
import { Connection, createEventBuffer } from 'better-sse';
import { asText, type Deliverable } from './deliverable.js';
import type { Resume } from './subscriber.js';
import { Stream } from './stream.js';
import { WireBytes } from './wire.js';

/** Old IE and buffering proxies hold back a response until they have seen about 2 KiB. */
const PADDING = ' '.repeat(2048);
/** An empty comment line. */
const HEARTBEAT = new WireBytes(createEventBuffer().comment().dispatch().read());
const HEADERS = { ...Connection.constants.RESPONSE_HEADERS, 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' };

/**
 * A Server-Sent Events stream. better-sse frames every event, comment and hint (its EventBuffer)
 * and gives the response headers; the stream writes the bytes itself instead of holding a
 * better-sse Session per connection: a Session with its EventBuffer and connection is about
 * 3 KB of heap per idle stream (a dozen bound methods, an AbortController), against the 16 KB a
 * stream may cost in all (see BENCHMARKS.md), and it would write each event as a string again.
 */
export class SseStream extends Stream {
  protected readonly path = 'sse';
  protected readonly heartbeat = HEARTBEAT;

  /**
   * Send the head, a padding comment, then the `retry:` hint with the `ready` event; keep-alive
   * comments follow. A stream "from now" puts where now is on the `ready` frame as its `id:` (which
   * sets EventSource's last event id): a client that loses the stream before its first durable
   * event then resumes from there instead of from a later "now", which would skip what came between.
   */
  override async open(req: IncomingMessage, resume: Resume): Promise<void> {
    req.socket.setNoDelay(true);
    this.res.writeHead(200, { ...this.headers, ...HEADERS });
    // The head on its own: Node builds it as a rope of concatenations, which writing it alone
    // flattens; written along with the first chunk, the rope would stay (about 1.5 KB a stream).
    this.res.flushHeaders();
    const ready = this.readyEvent(resume);
    const preamble = createEventBuffer({ serializer: asText }).comment(PADDING).dispatch().retry(this.settings.retryMs);
    if (ready.fromNow !== undefined) preamble.id(ready.fromNow);
    this.res.write(preamble.event('ready').data(ready.json).dispatch().read());
    this.beginBody();
  }

  /** The hot path of fan-out: the event's frame, encoded once per instance. */
  protected wireOf(event: Deliverable): WireBytes {
    return event.sseWire;
  }

  protected override writeRetryHint(): void {
    this.put(new WireBytes(createEventBuffer().retry(this.settings.retryMs).dispatch().read()));
  }
}
