import type { Deliverable } from './deliverable.js';
import type { Resume } from './subscriber.js';
import { Stream } from './stream.js';

/** The same envelopes as one JSON object per line, for `curl -N … | jq`. */
export class NdjsonStream extends Stream {
  protected readonly path = 'ndjson';
  /** The head, then the `ready` line (where a stream from now starts: a script can resume from it). */
  override async open(_req: unknown, resume: Resume): Promise<void> {
    const res = this.res;
    res.writeHead(200, {
      'Content-Type': 'application/x-ndjson; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
    });
    res.write(`${this.readyEvent(resume).json}\n`);
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
