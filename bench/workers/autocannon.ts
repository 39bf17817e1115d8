/** Runs autocannon in its own process, so the load generator's CPU is not the server's. */
import { randomBytes } from 'node:crypto';
import autocannon, { type Request } from 'autocannon';
import { serve } from '../lib/ipc.js';

/** A header that gets a new made-up value in every request (a flood of guesses, bench/abuse.ts). */
type Randomized = 'token' | 'forwarded-for';

const madeUp: Record<Randomized, () => [string, string]> = {
  token: () => ['authorization', `Bearer pl_${randomBytes(32).toString('base64url')}`],
  'forwarded-for': () => ['x-forwarded-for', `10.${randomBytes(3).join('.')}`],
};

serve({
  /** `tokens`: the connections take turns over these users (each sends its bearer token). */
  async run(args: {
    url: string;
    tokens?: string[];
    connections: number;
    durationMs: number;
    method?: 'GET' | 'POST';
    body?: string;
    headers?: Record<string, string>;
    randomize?: Randomized;
  }) {
    let next = 0;
    const result = await autocannon({
      url: args.url,
      connections: args.connections,
      duration: args.durationMs / 1000,
      ...(args.method && { method: args.method }),
      ...(args.body !== undefined && { body: args.body }),
      ...(args.headers && { headers: args.headers }),
      ...(args.tokens && {
        setupClient: (client: { setHeaders(headers: Record<string, string>): void }) =>
          client.setHeaders({ Authorization: `Bearer ${args.tokens![next++ % args.tokens!.length]}` }),
      }),
      ...(args.randomize && {
        requests: [
          {
            setupRequest: (request: Request) => {
              const [name, value] = madeUp[args.randomize!]();
              return { ...request, headers: { ...(request.headers as Record<string, string>), [name]: value } };
            },
          },
        ],
      }),
    });
    return {
      requestsPerSecond: result.requests.average,
      non2xx: result.non2xx,
      statusCodes: result.statusCodeStats,
      errors: result.errors,
      latencyP50: result.latency.p50,
      latencyP99: result.latency.p99,
    };
  },
});
