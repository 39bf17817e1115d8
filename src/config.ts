import { z } from 'zod';

/** A non-negative whole number given as an environment string. */
const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const envSchema = z.object({
  PORT: wholeNumber(0, 65535).default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATABASE_URL: z
    .string()
    .trim()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  POSTLINE_DATA_DIR: z.string().min(1).default('./.postline'),
  POSTLINE_EMBEDDED_PG_PORT: wholeNumber(0, 65535).default(0),
  POSTLINE_DB_POOL_SIZE: wholeNumber(2, 500).default(10),
  POSTLINE_STATEMENT_TIMEOUT_MS: wholeNumber(100, 600_000).default(30_000),
  POSTLINE_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  POSTLINE_RATE_LIMIT_PER_MIN: wholeNumber(0, 1_000_000).default(600),
  POSTLINE_RATE_LIMIT_FLUSH_MS: wholeNumber(10, 10_000).default(250),
  POSTLINE_AUTH_RATE_LIMIT_PER_MIN: wholeNumber(0, 1_000_000).default(20),
  POSTLINE_LOGIN_FAILURES_PER_MIN: wholeNumber(0, 1_000_000).default(10),
  POSTLINE_SCRYPT_COST: wholeNumber(10, 20).default(15),
  POSTLINE_SESSION_CACHE_MS: wholeNumber(0, 60_000).default(1000),
  POSTLINE_TOKEN_TTL_HOURS: wholeNumber(1, 24 * 365).default(24 * 30),
  POSTLINE_CORS_ORIGINS: z
    .string()
    .default('')
    .transform((value) =>
      value
        .split(',')
        .map((origin) => origin.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.url({ protocol: /^https?$/ }))),
  POSTLINE_TRUST_PROXY: z.string().default('false'),
  POSTLINE_MAX_THREAD_MEMBERS: wholeNumber(2, 1000).default(256),
  POSTLINE_SSE_RETRY_MS: wholeNumber(100, 60_000).default(2000),
  POSTLINE_SSE_HEARTBEAT_MS: wholeNumber(100, 120_000).default(15_000),
  POSTLINE_SSE_LIFETIME_MS: wholeNumber(1000, 24 * 3600_000).default(300_000),
  POSTLINE_MAX_STREAMS_PER_USER: wholeNumber(1, 10_000).default(10),
  POSTLINE_MAX_POLLS_PER_USER: wholeNumber(1, 10_000).default(10),
  POSTLINE_POLL_COALESCE_MS: wholeNumber(0, 1000).default(0),
  POSTLINE_SLOW_CONSUMER_BYTES: wholeNumber(16 * 1024, 1024 ** 3).default(1024 * 1024),
  POSTLINE_CATCH_UP_INTERVAL_MS: wholeNumber(50, 600_000).default(5000),
  POSTLINE_PRESENCE_GRACE_MS: wholeNumber(0, 600_000).default(5000),
  POSTLINE_POLL_PRESENCE_MS: wholeNumber(0, 600_000).default(30_000),
  POSTLINE_INSTANCE_TIMEOUT_MS: wholeNumber(300, 600_000).default(30_000),
  POSTLINE_LISTENER_CHECK_MS: wholeNumber(100, 600_000).default(10_000),
  POSTLINE_RECENT_EVENTS_KB: wholeNumber(0, 4 * 1024 * 1024).default(4096),
  POSTLINE_RETENTION_DAYS: wholeNumber(1, 36_500).default(30),
  POSTLINE_SHUTDOWN_TIMEOUT_MS: wholeNumber(100, 600_000).default(10_000),
});

export type Config = ReturnType<typeof toConfig>;

/** Raised for an invalid environment: the message is one line naming the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

function parseTrustProxy(value: string): boolean | number | string {
  if (value === 'true') return true;
  if (value === 'false' || value === '') return false;
  if (/^\d+$/.test(value)) return Number(value);
  return value; // "loopback", a list of addresses/subnets: handed to Express as is
}

function toConfig(env: z.infer<typeof envSchema>) {
  return {
    port: env.PORT,
    host: env.HOST,
    databaseUrl: env.DATABASE_URL,
    dataDir: env.POSTLINE_DATA_DIR,
    embeddedPgPort: env.POSTLINE_EMBEDDED_PG_PORT,
    dbPoolSize: env.POSTLINE_DB_POOL_SIZE,
    statementTimeoutMs: env.POSTLINE_STATEMENT_TIMEOUT_MS,
    logLevel: env.POSTLINE_LOG_LEVEL,
    rateLimitPerMin: env.POSTLINE_RATE_LIMIT_PER_MIN,
    rateLimitFlushMs: env.POSTLINE_RATE_LIMIT_FLUSH_MS,
    authRateLimitPerMin: env.POSTLINE_AUTH_RATE_LIMIT_PER_MIN,
    loginFailuresPerMin: env.POSTLINE_LOGIN_FAILURES_PER_MIN,
    scryptCostLog2: env.POSTLINE_SCRYPT_COST,
    sessionCacheMs: env.POSTLINE_SESSION_CACHE_MS,
    tokenTtlMs: env.POSTLINE_TOKEN_TTL_HOURS * 3600_000,
    corsOrigins: env.POSTLINE_CORS_ORIGINS,
    trustProxy: parseTrustProxy(env.POSTLINE_TRUST_PROXY),
    maxThreadMembers: env.POSTLINE_MAX_THREAD_MEMBERS,
    sseRetryMs: env.POSTLINE_SSE_RETRY_MS,
    sseHeartbeatMs: env.POSTLINE_SSE_HEARTBEAT_MS,
    sseLifetimeMs: env.POSTLINE_SSE_LIFETIME_MS,
    maxStreamsPerUser: env.POSTLINE_MAX_STREAMS_PER_USER,
    maxPollsPerUser: env.POSTLINE_MAX_POLLS_PER_USER,
    pollCoalesceMs: env.POSTLINE_POLL_COALESCE_MS,
    slowConsumerBytes: env.POSTLINE_SLOW_CONSUMER_BYTES,
    catchUpIntervalMs: env.POSTLINE_CATCH_UP_INTERVAL_MS,
    presenceGraceMs: env.POSTLINE_PRESENCE_GRACE_MS,
    pollPresenceMs: env.POSTLINE_POLL_PRESENCE_MS,
    instanceTimeoutMs: env.POSTLINE_INSTANCE_TIMEOUT_MS,
    listenerCheckMs: env.POSTLINE_LISTENER_CHECK_MS,
    recentEventsBytes: env.POSTLINE_RECENT_EVENTS_KB * 1024,
    retentionMs: env.POSTLINE_RETENTION_DAYS * 24 * 3600_000,
    shutdownTimeoutMs: env.POSTLINE_SHUTDOWN_TIMEOUT_MS,
  };
}

/**
 * Read the configuration from environment variables, once, at start. Empty strings count as unset.
 * Throws a {@link ConfigError} whose message names the first bad variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? 'environment');
    throw new ConfigError(`invalid ${name}: ${issue.message}`);
  }
  return toConfig(parsed.data);
}
