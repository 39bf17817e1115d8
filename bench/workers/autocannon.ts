/** Runs autocannon in its own process, so the load generator's CPU is not the server's. */
import autocannon from 'autocannon';
import { serve } from '../lib/ipc.js';

serve({
  async run(args: { url: string; headers?: Record<string, string>; connections: number; durationMs: number }) {
    const result = await autocannon({
      url: args.url,
      headers: args.headers ?? {},
      connections: args.connections,
      duration: args.durationMs / 1000,
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
