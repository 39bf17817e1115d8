import type { ServerResponse } from 'node:http';
import type { Deliverable } from './deliverable.js';
import { Stream, type StreamInit } from './stream.js';

/** The same envelopes as one JSON object per line, for `curl -N … | jq`. */
export class NdjsonStream extends Stream {
  private readonly heartbeat: NodeJS.Timeout;

  constructor(res: ServerResponse, init: StreamInit) {
    super(res, init);
    res.writeHead(200, {
      'Content-Type': 'application/x-ndjson; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    // An empty line keeps idle connections open through proxies; jq skips it.
    this.heartbeat = setInterval(() => res.write('\n'), init.settings.heartbeatMs);
    this.onClosed(() => clearInterval(this.heartbeat));
  }

  protected write(event: Deliverable): void {
    this.res.write(event.ndjson);
  }
}
