import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import type { Message } from '../../src/contract.js';
import { waitFor } from './sse.js';

/** A fresh Standard Webhooks secret. */
export const webhookSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

export interface Delivery {
  id: string;
  headers: Record<string, string>;
  body: string;
  /**
   * What the receiver answered: a status; 'hang' (it never answered); or 'swallow' (it took the
   * push, as a receiver that acts before answering would, but the answer never got out).
   */
  answer: number | 'hang' | 'swallow';
  at: number;
}

/**
 * The host's webhook endpoint on loopback. `answer(n, delivery)` decides the reply to the n-th
 * delivery (0-based): a status, or 'hang' / 'swallow' (hold the request until the client gives up).
 */
export class WebhookReceiver {
  readonly deliveries: Delivery[] = [];
  answer: (index: number, delivery: Omit<Delivery, 'answer'>) => Delivery['answer'] = () => 204;
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const headers = Object.fromEntries(Object.entries(req.headers).map(([name, value]) => [name, String(value)]));
      const seen = { id: headers['webhook-id'] ?? '', headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      const answer = this.answer(this.deliveries.length, seen);
      this.deliveries.push({ ...seen, answer });
      if (typeof answer === 'number') res.writeHead(answer).end();
    });
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks/postline`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  /** The payload of a delivery, verified with the library's own verify (throws if the signature is wrong). */
  static verify(secret: string, delivery: Delivery): PushPayload {
    return new Webhook(secret).verify(delivery.body, delivery.headers) as PushPayload;
  }

  /** Whether the receiver took this delivery (answered 2xx, or swallowed it). */
  static took(delivery: Delivery): boolean {
    return delivery.answer === 'swallow' || (typeof delivery.answer === 'number' && delivery.answer < 300);
  }

  async waitForDeliveries(count: number, timeoutMs = 10_000): Promise<void> {
    await waitFor(() => this.deliveries.length >= count, timeoutMs, `${count} webhook deliveries`);
  }
}

export interface PushPayload {
  type: string;
  timestamp: string;
  data: {
    message: Message;
    recipients: Array<{ userId: string; externalId: string | null; unreadCount: number; threadUnreadCount: number }>;
  };
}
