/** Runs autocannon in its own process, so the load generator's CPU is not the server's. */
import autocannon from 'autocannon';
import { serve } from '../lib/ipc.js';

serve({
  /** `tokens`: the connections take turns over these users (each sends its bearer token). */
  async run(args: { url: string; tokens?: string[]; connections: number; durationMs: number }) {
    let next = 0;
    const result = await autocannon({
      url: args.url,
      connections: args.connections,
      duration: args.durationMs / 1000,
      ...(args.tokens && {
        setupClient: (client: { setHeaders(headers: Record<string, string>): void }) =>
          client.setHeaders({ Authorization: `Bearer ${args.tokens![next++ % args.tokens!.length]}` }),
      }),
    });
    return {
      requestsPerSecond: result.requests.average,
      non2xx: result.non2xx,
      errors: result.errors,
      latencyP50: result.latency.p50,
      latencyP99: result.latency.p99,
    };
  },
});
