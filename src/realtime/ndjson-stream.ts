import type { Deliverable } from './deliverable.js';
import { Stream } from './stream.js';
import { WireBytes } from './wire.js';

/** An empty line keeps idle connections open through proxies; jq skips it. */
const HEARTBEAT = new WireBytes('\n');

/** The same envelopes as one JSON object per line, for `curl -N … | jq`. */
export class NdjsonStream extends Stream {
  protected readonly path = 'ndjson';
  protected readonly heartbeat = HEARTBEAT;

  override async open(): Promise<void> {
    const res = this.res;
    res.writeHead(200, {
      ...this.headers,
      'Content-Type': 'application/x-ndjson; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    this.beginBody();
  }

  protected wireOf(event: Deliverable): WireBytes {
    return event.ndjsonWire;
  }
}
