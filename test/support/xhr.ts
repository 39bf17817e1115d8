import http from 'node:http';

/**
 * Just enough of XMLHttpRequest, on node:http, for postline-client to run in Node tests:
 * asynchronous open/send/abort, request headers, status, responseText, Retry-After, timeout.
 */
export class NodeXMLHttpRequest {
  readyState = 0;
  status = 0;
  responseText = '';
  /** Milliseconds without a response before the call fails (0: never). */
  timeout = 0;
  withCredentials = false;
  onreadystatechange: (() => void) | null = null;
  ontimeout: (() => void) | null = null;
  private method = 'GET';
  private url = '';
  private readonly headers: Record<string, string> = {};
  private responseHeaders: http.IncomingHttpHeaders = {};
  private request: http.ClientRequest | undefined;

  open(method: string, url: string): void {
    this.method = method;
    this.url = url;
    this.readyState = 1;
  }

  setRequestHeader(name: string, value: string): void {
    this.headers[name] = value;
  }

  getResponseHeader(name: string): string | null {
    const value = this.responseHeaders[name.toLowerCase()];
    return value === undefined ? null : String(value);
  }

  send(body: string | null): void {
    this.request = http.request(this.url, { method: this.method, headers: this.headers }, (response) => {
      this.status = response.statusCode ?? 0;
      this.responseHeaders = response.headers;
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (this.responseText += chunk));
      response.on('end', () => this.finish());
      response.on('error', () => this.fail());
    });
    if (this.timeout > 0) {
      this.request.setTimeout(this.timeout, () => {
        this.fail();
        this.ontimeout?.();
      });
    }
    this.request.on('error', () => this.fail());
    this.request.end(body ?? undefined);
  }

  abort(): void {
    this.fail();
  }

  /** A network failure, abort or timeout: status 0, as browsers report it. */
  private fail(): void {
    if (this.readyState === 4) return;
    this.request?.destroy();
    this.status = 0;
    this.responseText = '';
    this.finish();
  }

  private finish(): void {
    if (this.readyState === 4) return;
    this.readyState = 4;
    this.onreadystatechange?.();
  }
}
