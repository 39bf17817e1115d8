import type { IncomingMessage } from 'node:http';
import { createEventBuffer, createSession, type Session } from 'better-sse';
import { asText, type Deliverable } from './deliverable.js';
import type { Resume } from './subscriber.js';
import { NodeSseConnection } from './sse-connection.js';
import { Stream } from './stream.js';

/** Old IE and buffering proxies hold back a response until they have seen about 2 KiB. */
const PADDING = ' '.repeat(2048);
/** An empty comment line. */
const HEARTBEAT = createEventBuffer().comment().dispatch();

/** A Server-Sent Events stream on better-sse; each event is written as its frame, built once per instance. */
export class SseStream extends Stream {
  protected readonly path = 'sse';
  private session: Session | undefined;

  /**
   * Send the head, a padding comment, then the `retry:` hint with the `ready` event; keep-alive
   * comments follow. A stream "from now" puts where now is on the `ready` frame as its `id:` (which
   * sets EventSource's last event id): a client that loses the stream before its first durable
   * event then resumes from there instead of from a later "now", which would skip what came between.
   */
  override async open(req: IncomingMessage, resume: Resume): Promise<void> {
    const connection = new NodeSseConnection(req, this.res, { 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' });
    this.session = await createSession(connection, {
      // We read the resume point ourselves: it may also come as ?last_event_id or ?since.
      trustClientEventId: false,
      retry: null,
      keepAlive: null, // see Stream.startHeartbeat
    });
    const ready = this.readyEvent(resume);
    const preamble = createEventBuffer({ serializer: asText }).comment(PADDING).dispatch().retry(this.settings.retryMs);
    if (ready.fromNow !== undefined) preamble.id(ready.fromNow);
    await this.session.batch(preamble.event('ready').data(ready.json).dispatch());
    this.startHeartbeat();
  }

  /**
   * The hot path of fan-out: the event's bytes, encoded once per instance, straight onto the
   * response (better-sse's batch() would turn them back into a string and add a promise per write).
   */
  protected write(event: Deliverable): void {
    this.res.write(event.sse);
  }

  protected writeHeartbeat(): void {
    void this.session?.batch(HEARTBEAT);
  }

  protected override writeRetryHint(): void {
    void this.session?.batch(createEventBuffer().retry(this.settings.retryMs).dispatch());
  }
}
