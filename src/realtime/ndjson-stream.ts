import type { Deliverable } from './deliverable.js';
import { Stream } from './stream.js';

/** The same envelopes as one JSON object per line, for `curl -N … | jq`. */
export class NdjsonStream extends Stream {
  protected readonly path = 'ndjson';
  override async open(): Promise<void> {
    const res = this.res;
    res.writeHead(200, {
      'Content-Type': 'application/x-ndjson; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    this.startHeartbeat();
  }

  /** An empty line keeps idle connections open through proxies; jq skips it. */
  protected writeHeartbeat(): void {
    this.res.write('\n');
  }

  protected write(event: Deliverable): void {
    this.res.write(event.ndjson);
  }
}
