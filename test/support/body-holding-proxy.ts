import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';

const HEAD_END = Buffer.from('\r\n\r\n');

/**
 * A TCP proxy in front of an HTTP server that behaves like the antivirus and corporate gateways
 * that scan `text/event-stream`: every answer's head goes through at once, but the body of an
 * event stream is held until `holdBytes` of it (64 KiB by default) have come, then let through in
 * that much at a time (the rest when the server ends it). Other answers pass as they are. It
 * follows HTTP/1.1 framing (Content-Length) to find each answer's head on kept-alive connections.
 */
export class BodyHoldingProxy {
  /** While false, new connections pass everything at once (the gateway was fixed). */
  holding = true;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    private readonly holdBytes: number,
  ) {}

  static async start(target: string, holdBytes = 64 * 1024): Promise<BodyHoldingProxy> {
    const { hostname, port } = new URL(target);
    const server = net.createServer();
    const proxy = new BodyHoldingProxy(server, holdBytes);
    server.on('connection', (client) => proxy.forward(client, hostname, Number(port)));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private forward(client: net.Socket, host: string, port: number): void {
    const upstream = net.connect(port, host);
    const holding = this.holding;
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    let pending = Buffer.alloc(0);
    /** Bytes of the current answer's body still to pass before the next head; Infinity: to the end. */
    let bodyLeft = 0;
    let held: Buffer[] = [];
    let heldBytes = 0;
    let inEventStream = false;
    const flushHeld = () => {
      if (heldBytes > 0) client.write(Buffer.concat(held));
      held = [];
      heldBytes = 0;
    };
    upstream.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length > 0) {
        if (inEventStream) {
          held.push(pending);
          heldBytes += pending.length;
          pending = Buffer.alloc(0);
          if (heldBytes >= this.holdBytes) flushHeld();
          return;
        }
        if (bodyLeft > 0) {
          const part = pending.subarray(0, Math.min(bodyLeft, pending.length));
          client.write(part);
          bodyLeft -= part.length;
          pending = pending.subarray(part.length);
          continue;
        }
        const end = pending.indexOf(HEAD_END);
        if (end === -1) return;
        const head = pending.subarray(0, end + HEAD_END.length);
        pending = pending.subarray(head.length);
        client.write(head);
        const text = head.toString('latin1');
        const length = /\r\ncontent-length: *(\d+)/i.exec(text);
        if (holding && /\r\ncontent-type: *text\/event-stream/i.test(text)) inEventStream = true;
        else if (length) bodyLeft = Number(length[1]);
        else if (!/^HTTP\/1\.[01] (1\d\d|204|304)/.test(text)) bodyLeft = Infinity; // chunked or till the end: pass it all
      }
    });
    upstream.on('end', () => {
      flushHeld();
      client.end();
    });
  }
}
