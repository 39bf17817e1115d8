import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pgListen, { type Subscriber } from 'pg-listen';
import type { Logger } from '../log.js';

/** Durable events announce their id here (from the SQL functions, at commit). */
export const EVENTS_CHANNEL = 'postline_events';
/** Typing, presence and revocations travel here with their payload inline; they are never stored. */
export const EPHEMERAL_CHANNEL = 'postline_ephemeral';

export interface ListenerHandlers {
  /** A durable event with this id (or a smaller one) committed. */
  onEvent(id: number): void;
  onEphemeral(payload: string): void;
  /** The connection came back after a loss: notifications may have been missed meanwhile. */
  onReconnected(): void;
}

/** How long a graceful goodbye to Postgres may take when stopping, before the socket is cut. */
const CLOSE_GRACE_MS = 1000;

/** A LISTEN connection and the socket under it. */
interface Connection {
  subscriber: Subscriber;
  socket: net.Socket;
}

export interface ListenerSettings {
  /** How often the connection is checked with a query, and how long that query may take. */
  checkIntervalMs: number;
}

/**
 * The instance's one dedicated LISTEN connection (pg-listen, not a pooled client). pg-listen
 * watches the connection (errors, and a periodic check query whose timeout also catches a
 * connection that went silent); when it is lost, this class opens a new one with backoff, for as
 * long as the instance runs. (pg-listen's own retry loop gives up after `retryTimeout` and cannot
 * be stopped once started, so it is given a single attempt and the retrying happens here.)
 * A notification is only a hint: after every reconnect the instance catches up from its cursor,
 * because NOTIFYs sent while it was away are lost.
 *
 * The class owns the socket under each connection: a connection that went silent (a stalled
 * network path) never answers pg's goodbye, so closing it politely would wait forever; a lost
 * connection's socket is destroyed, and stopping waits at most a second for the goodbye.
 */
export class NotificationListener {
  private connection: Connection | undefined;
  private connectedOnce = false;
  private stopped = false;
  private attempts = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  /** True while the LISTEN connection is up. */
  connected = false;

  constructor(
    private readonly databaseUrl: string,
    private readonly handlers: ListenerHandlers,
    private readonly settings: ListenerSettings,
    private readonly logger: Logger,
  ) {}

  /** Connect and LISTEN; rejects if the first connection fails. */
  async start(): Promise<void> {
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.connected = false;
    clearTimeout(this.retryTimer);
    const connection = this.connection;
    this.connection = undefined;
    if (!connection) return;
    await Promise.race([connection.subscriber.close().catch(() => {}), sleep(CLOSE_GRACE_MS)]);
    connection.socket.destroy();
  }

  private async connect(): Promise<void> {
    const socket = new net.Socket();
    // pg-listen is CommonJS with its function as exports.default.
    const subscriber = pgListen.default(
      {
        connectionString: this.databaseUrl,
        stream: () => socket,
        application_name: 'postline-listen',
        query_timeout: this.settings.checkIntervalMs,
        keepAliveInitialDelayMillis: this.settings.checkIntervalMs,
        connectionTimeoutMillis: 5000,
      },
      { paranoidChecking: this.settings.checkIntervalMs, retryLimit: 1, parse: (payload: string) => payload },
    );
    const connection = { subscriber, socket };
    subscriber.events.on('error', (error: Error) => this.lost(connection, error));
    subscriber.notifications.on(EVENTS_CHANNEL, (payload: string) => this.handlers.onEvent(Number(payload)));
    subscriber.notifications.on(EPHEMERAL_CHANNEL, (payload: string) => this.handlers.onEphemeral(payload));
    try {
      await subscriber.connect();
      await subscriber.listenTo(EVENTS_CHANNEL);
      await subscriber.listenTo(EPHEMERAL_CHANNEL);
    } catch (error) {
      discard(connection);
      throw error;
    }
    if (this.stopped) {
      discard(connection);
      return;
    }
    this.connection = connection;
    this.connected = true;
    this.attempts = 0;
    if (this.connectedOnce) {
      this.logger.info('LISTEN connection restored; catching up');
      this.handlers.onReconnected();
    }
    this.connectedOnce = true;
  }

  private lost(connection: Connection, error: unknown): void {
    if (connection !== this.connection || this.stopped) return;
    this.connection = undefined;
    this.connected = false;
    this.logger.warn({ err: error }, 'LISTEN connection lost; reconnecting');
    discard(connection);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const delay = Math.min(5000, 250 * 2 ** this.attempts++);
    this.retryTimer = setTimeout(() => {
      this.connect().catch((error: unknown) => {
        this.logger.warn({ err: error }, 'LISTEN reconnect failed');
        this.scheduleReconnect();
      });
    }, delay);
  }
}

/** Drop a connection without waiting for Postgres (it may never answer): stop its checks, cut the socket. */
function discard(connection: Connection): void {
  void connection.subscriber.close().catch(() => {});
  connection.socket.destroy();
}
