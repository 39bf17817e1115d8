import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';

interface Link {
  client: net.Socket;
  upstream: net.Socket;
}

/**
 * A TCP proxy in front of Postgres on 127.0.0.1, for faults the database cannot produce itself: a
 * connection that silently stops forwarding (a dead NAT entry, a stuck middlebox) while both
 * ends still believe it is open.
 */
export class TcpProxy {
  private readonly links = new Set<Link>();
  private refusing = false;

  private constructor(private readonly server: net.Server) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    const server = net.createServer();
    const proxy = new TcpProxy(server);
    server.on('connection', (client) => proxy.forward(client, targetPort));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /**
   * Stop forwarding, in both directions and without closing anything, on the connection whose
   * side towards Postgres uses `clientPort` (pg_stat_activity.client_port). Returns false if there
   * is no such connection.
   */
  stall(clientPort: number): boolean {
    for (const link of this.links) {
      if (link.upstream.localPort !== clientPort) continue;
      link.client.unpipe(link.upstream);
      link.upstream.unpipe(link.client);
      link.client.pause();
      link.upstream.pause();
      return true;
    }
    return false;
  }

  /** While on, new connections are closed at once (Postgres looks unreachable); existing ones carry on. */
  refuseNewConnections(on: boolean): void {
    this.refusing = on;
  }

  /** The local ports of the proxy's connections to Postgres (pg_stat_activity.client_port). */
  upstreamPorts(): number[] {
    return [...this.links].map((link) => link.upstream.localPort ?? 0);
  }

  async close(): Promise<void> {
    for (const link of this.links) {
      link.client.destroy();
      link.upstream.destroy();
    }
    await new Promise((resolve) => this.server.close(resolve));
  }

  private forward(client: net.Socket, targetPort: number): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    const link = { client, upstream };
    this.links.add(link);
    const drop = () => {
      this.links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) socket.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
