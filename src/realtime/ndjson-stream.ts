import type { Deliverable } from './deliverable.js';
import type { Resume } from './subscriber.js';
import { Stream } from './stream.js';
import { WireBytes } from './wire.js';

/** An empty line keeps idle connections open through proxies; jq skips it. */
const HEARTBEAT = new WireBytes('\n');

/** The same envelopes as one JSON object per line, for `curl -N … | jq`. */
export class NdjsonStream extends Stream {
  protected readonly path = 'ndjson';
  protected readonly heartbeat = HEARTBEAT;

  /** The head, then the `ready` line (where a stream from now starts: a script can resume from it). */
  override async open(_req: unknown, resume: Resume): Promise<void> {
    const res = this.res;
    res.writeHead(200, {
      ...this.headers,
      'Content-Type': 'application/x-ndjson; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    res.write(`${this.readyEvent(resume).json}\n`);
    this.beginBody();
  }

  protected wireOf(event: Deliverable): WireBytes {
    return event.ndjsonWire;
  }
}
