import type { Pool } from 'pg';
import type { HostIdentity } from '../auth/host-identity.js';
import type { SessionCache } from '../auth/session-cache.js';
import type { Config } from '../config.js';
import type { AuthFailureLimit } from '../limits/auth-failures.js';
import type { SharedCounters } from '../limits/shared-counters.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Realtime } from '../realtime/realtime.js';
import type { SendQueue } from '../store/send-queue.js';

/** What the HTTP layer needs from the rest of the instance. */
export interface AppContext {
  config: Config;
  pool: Pool;
  logger: Logger;
  sendQueue: SendQueue;
  realtime: Realtime;
  metrics: Metrics;
  /** The rate limits' counters, shared with the other instances by periodic flushes. */
  counters: SharedCounters;
  /** Token lookups (shared with the real-time side, which hears of revocations). */
  sessions: SessionCache;
  /** Failed token checks per client address, in memory (POSTLINE_AUTH_FAILURES_PER_MIN). */
  authFailures: AuthFailureLimit;
  /** The host application's JWTs, when configured (POSTLINE_JWT_*). */
  hostIdentity: HostIdentity | undefined;
  /** True when Postgres answers and the LISTEN connection is up. */
  isReady: () => Promise<boolean>;
}
