import type { IncomingMessage } from 'node:http';
import { createEventBuffer, createSession, type Session } from 'better-sse';
import type { Deliverable } from './deliverable.js';
import { Stream } from './stream.js';

/** Old IE and buffering proxies hold back a response until they have seen about 2 KiB. */
const PADDING = ' '.repeat(2048);
/** An empty comment line. */
const HEARTBEAT = createEventBuffer().comment().dispatch();

/** A Server-Sent Events stream on better-sse; each event is written as its frame, built once per instance. */
export class SseStream extends Stream {
  protected readonly path = 'sse';
  private session: Session | undefined;

  /** Send the head, a padding comment and the `retry:` hint; keep-alive comments follow. */
  override async open(req: IncomingMessage): Promise<void> {
    this.session = await createSession(req, this.res, {
      // We read the resume point ourselves: it may also come as ?last_event_id or ?since.
      trustClientEventId: false,
      retry: null,
      keepAlive: null, // see Stream.startHeartbeat
      headers: { 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' },
    });
    await this.session.batch(createEventBuffer().comment(PADDING).dispatch().retry(this.settings.retryMs).dispatch());
    this.startHeartbeat();
  }

  protected write(event: Deliverable): void {
    void this.session?.batch(event.sse);
  }

  protected writeHeartbeat(): void {
    void this.session?.batch(HEARTBEAT);
  }

  protected override writeRetryHint(): void {
    void this.session?.batch(createEventBuffer().retry(this.settings.retryMs).dispatch());
  }
}
