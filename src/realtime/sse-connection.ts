import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Connection } from 'better-sse';

/** better-sse's Session reads only `url.searchParams` (its own padding flags, which we never set). */
const NO_QUERY = new URL('http://postline.invalid/');
const NO_HEADERS = new Headers();

/**
 * A better-sse Connection on node:http that keeps what a long-lived stream needs and nothing
 * more. The built-in NodeHttp1Connection copies every request into a fetch `Request` and
 * `Response` (URL, headers, abort signal) and holds them for the stream's life: about 8 KB of heap
 * per stream, which at thousands of idle streams is most of their cost. Sessions on this
 * connection never use getRequest()/getResponse(): the request object carries only the abort
 * signal better-sse listens to.
 */
export class NodeSseConnection extends Connection {
  url = NO_QUERY;
  request: Request;
  response: Response;
  private readonly aborted = new AbortController();

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly headers: OutgoingHttpHeaders,
  ) {
    super();
    req.socket.setNoDelay(true);
    this.request = { signal: this.aborted.signal, headers: NO_HEADERS } as Request;
    this.response = undefined as unknown as Response;
    req.once('close', this.onClose);
    res.once('close', this.onClose);
  }

  private readonly onClose = () => this.aborted.abort();

  sendHead = () => {
    this.res.writeHead(200, { ...Connection.constants.RESPONSE_HEADERS, ...this.headers });
  };

  sendChunk = (chunk: string) => {
    this.res.write(chunk);
  };

  cleanup = () => {
    this.req.removeListener('close', this.onClose);
    this.res.removeListener('close', this.onClose);
  };
}
