/**
 * Baseline for durable sends: raw pg clients, each looping one transaction per message —
 * BEGIN; INSERT; pg_notify; COMMIT — what a straightforward implementation does per send.
 */
import pg from 'pg';
import { serve } from '../lib/ipc.js';

serve({
  async run(args: { databaseUrl: string; concurrency: number; durationMs: number }) {
    const setup = new pg.Client({ connectionString: args.databaseUrl });
    await setup.connect();
    await setup.query('CREATE TABLE IF NOT EXISTS bench_baseline (id bigserial PRIMARY KEY, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())');
    await setup.end();
    const deadline = Date.now() + args.durationMs;
    const counts = await Promise.all(
      Array.from({ length: args.concurrency }, async () => {
        const client = new pg.Client({ connectionString: args.databaseUrl });
        await client.connect();
        let committed = 0;
        while (Date.now() < deadline) {
          await client.query('BEGIN');
          const { rows } = await client.query<{ id: string }>('INSERT INTO bench_baseline (body) VALUES ($1) RETURNING id', [`t=${Date.now()} ${'x'.repeat(80)}`]);
          await client.query('SELECT pg_notify($1, $2)', ['bench_baseline', rows[0]!.id]);
          await client.query('COMMIT');
          committed++;
        }
        await client.end();
        return committed;
      }),
    );
    return counts.reduce((sum, count) => sum + count, 0);
  },
});
