import type { Socket } from 'node:net';

const CRLF = Buffer.from('\r\n');

/**
 * Bytes every stream of an instance sends alike (an event's frame, a heartbeat), encoded once
 * and framed once as an HTTP/1.1 chunk too, so that a delivery is one buffer handed to the
 * socket: no per-socket encoding, no chunk header built per write.
 */
export class WireBytes {
  /** The bytes as one HTTP/1.1 chunk (`<size>\r\n<bytes>\r\n`). */
  readonly chunk: Buffer;
  /** The bytes alone (a view into `chunk`), for a response without chunked encoding (HTTP/1.0). */
  readonly body: Buffer;

  constructor(text: string) {
    const body = Buffer.from(text);
    const head = Buffer.from(`${body.length.toString(16)}\r\n`);
    this.chunk = Buffer.concat([head, body, CRLF]);
    this.body = this.chunk.subarray(head.length, head.length + body.length);
  }
}

/**
 * The sockets written to while a feed batch of several events is dispatched. Each is corked at
 * its first write and uncorked once the whole batch is handed out, so the events a socket gets
 * from one batch leave in one `writev`. A batch of one event corks nothing.
 */
export class WriteBatch {
  private open = false;
  private readonly corked: Socket[] = [];

  /** Run `dispatch` with every socket it writes to corked until it returns. */
  run(dispatch: () => void): void {
    this.open = true;
    try {
      dispatch();
    } finally {
      this.open = false;
      for (const socket of this.corked) socket.uncork();
      this.corked.length = 0;
    }
  }

  /** Called before each write to `socket`: during a batch, it is corked at its first write. */
  cork(socket: Socket): void {
    if (!this.open || socket.writableCorked > 0) return;
    socket.cork();
    this.corked.push(socket);
  }
}
