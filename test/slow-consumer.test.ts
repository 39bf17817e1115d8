import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { createThread, register, sendMessage } from './support/api.js';
import { useInstances } from './support/fixture.js';
import { openStream, waitFor } from './support/sse.js';

// The bound leaves room for a burst of ten 16 KB events to a reader that is busy for a moment.
const BOUND = 512 * 1024;
const t = useInstances({ env: { POSTLINE_SLOW_CONSUMER_BYTES: String(BOUND), POSTLINE_SSE_HEARTBEAT_MS: '100' } });

test('a stream that stops reading is closed before its buffer grows past the bound; others get everything', async () => {
  const [sender, slow, fast] = [await register(t.app.url), await register(t.app.url), await register(t.app.url)];
  const threadId = await createThread(t.app.url, sender, [slow, fast], 'busy');
  const serverSockets: net.Socket[] = [];
  t.app.server.on('connection', (serverSocket: net.Socket) => serverSockets.push(serverSocket));
  // A client that sends its request and then never reads a byte.
  const { port } = new URL(t.app.url);
  const socket = net.connect(Number(port), '127.0.0.1');
  socket.pause();
  socket.write(`GET /v1/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${slow.token}\r\n\r\n`);
  const fastStream = await openStream(t.app.url, fast.token);
  try {
    await waitFor(() => t.app.realtime.hub.count(slow.id, 'stream') === 1, 5000, 'the slow stream open');
    // 16 KB per event (4000 four-byte characters): the kernel's socket buffers fill after a few MB.
    const body = '🐢'.repeat(4000);
    let sent = 0;
    while (t.app.realtime.hub.count(slow.id, 'stream') > 0) {
      assert.ok(sent < 2000, 'the slow stream was never closed');
      await Promise.all(Array.from({ length: 10 }, () => sendMessage(t.app.url, sender, threadId, body)));
      sent += 10;
      // While it lingers, the server never holds much more than the bound for it.
      for (const serverSocket of serverSockets) {
        assert.ok(serverSocket.writableLength < BOUND + 64 * 1024, `buffered ${serverSocket.writableLength} bytes`);
      }
    }
    // Its connection is cut rather than ended: nothing stays buffered for it, and no heartbeat is
    // written after the end (that write was an unhandled error that crashed the process).
    await waitFor(() => serverSockets.every((s) => s.destroyed || s.writableLength === 0), 2000, 'slow connection cut');
    // Two heartbeat rounds (every 100 ms here) pass after the cut without a write to the dead stream.
    const cutAt = fastStream.raw.length;
    await waitFor(() => (fastStream.raw.slice(cutAt).match(/^:\n\n/gm) ?? []).length >= 2, 5000, 'two heartbeats after the cut');
    // (Presence events may come between: the slow user goes offline after the grace period.)
    for (let i = 0; i < sent; i++) await fastStream.nextOfType('message.created', 20_000);
  } finally {
    socket.destroy();
    fastStream.close();
  }
});
