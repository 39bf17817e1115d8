import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** Signature algorithms a host's key pair may use (HS256 is for POSTLINE_JWT_SECRET only). */
const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

/** A Standard Webhooks signing secret: `whsec_` and the base64 of at least 24 random bytes. */
function isWebhookSecret(value: string): boolean {
  const base64 = value.startsWith('whsec_') ? value.slice('whsec_'.length) : '';
  return /^[A-Za-z0-9+/]+={0,2}$/.test(base64) && Buffer.from(base64, 'base64').length >= 24;
}

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
  POSTLINE_LOGIN_FAILURES_PER_ADDRESS: wholeNumber(0, 1000).default(5),
  POSTLINE_LOGIN_FAILURES_PER_ACCOUNT: wholeNumber(1, 1_000_000).default(100),
  POSTLINE_LOGIN_FAILURES_PER_MIN: z.undefined({
    error: 'was replaced by POSTLINE_LOGIN_FAILURES_PER_ADDRESS and POSTLINE_LOGIN_FAILURES_PER_ACCOUNT (see the README)',
  }).optional(),
  POSTLINE_AUTH_FAILURES_PER_MIN: wholeNumber(0, 1_000_000).default(60),
  POSTLINE_THREADS_PER_HOUR: wholeNumber(0, 1_000_000).default(30),
  POSTLINE_MAX_CONNECTIONS: wholeNumber(10, 1_000_000).default(10_000),
  POSTLINE_HEADERS_TIMEOUT_MS: wholeNumber(100, 600_000).default(10_000),
  POSTLINE_REQUEST_TIMEOUT_MS: wholeNumber(100, 600_000).default(20_000),
  POSTLINE_ADMIN_PORT: wholeNumber(0, 65535).optional(),
  POSTLINE_ADMIN_HOST: z.string().min(1).default('127.0.0.1'),
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
  POSTLINE_TRUST_PROXY: z
    .string()
    .trim()
    .default('false')
    .refine(
      (value) => value !== 'true',
      'true would trust every X-Forwarded-For hop a client sends, so anyone could pose as any address (and pass the per-address limits); ' +
        'give the number of proxies in front (e.g. 1) or their addresses (e.g. loopback, 10.0.0.0/8)',
    ),
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
  POSTLINE_OWN_ACCOUNTS: z.enum(['true', 'false'], { error: 'must be true or false' }).default('true'),
  POSTLINE_JWT_JWKS_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  POSTLINE_JWT_PUBLIC_KEY: z.string().optional(),
  POSTLINE_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  POSTLINE_JWT_ISSUER: z.string().optional(),
  POSTLINE_JWT_AUDIENCE: z.string().optional(),
  POSTLINE_JWT_ALGORITHMS: z
    .string()
    .default('RS256,ES256')
    .transform((value) => value.split(',').map((alg) => alg.trim()))
    .pipe(z.array(z.enum(ASYMMETRIC_ALGORITHMS, { error: `must list algorithms of ${ASYMMETRIC_ALGORITHMS.join(', ')}` })).min(1)),
  POSTLINE_JWT_CLOCK_SKEW_S: wholeNumber(0, 300).default(30),
  POSTLINE_JWT_NAME_CLAIM: z.string().min(1).default('name'),
  POSTLINE_JWKS_TIMEOUT_MS: wholeNumber(100, 60_000).default(3000),
  POSTLINE_JWKS_CACHE_MS: wholeNumber(1000, 24 * 3600_000).default(600_000),
  POSTLINE_JWKS_COOLDOWN_MS: wholeNumber(0, 3600_000).default(30_000),
  POSTLINE_WEBHOOK_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  POSTLINE_WEBHOOK_SECRET: z
    .string()
    .refine(isWebhookSecret, 'must be a Standard Webhooks secret: whsec_ followed by base64 (at least 24 bytes)')
    .optional(),
  POSTLINE_WEBHOOK_GRACE_MS: wholeNumber(0, 3600_000).default(10_000),
  POSTLINE_WEBHOOK_TIMEOUT_MS: wholeNumber(100, 60_000).default(5000),
  POSTLINE_WEBHOOK_MAX_ATTEMPTS: wholeNumber(1, 100).default(8),
  POSTLINE_WEBHOOK_RETRY_MS: wholeNumber(10, 3600_000).default(5000),
  POSTLINE_WEBHOOK_POLL_MS: wholeNumber(10, 60_000).default(1000),
});

export type Config = ReturnType<typeof toConfig>;

/** Raised for an invalid environment: the message is one line naming the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Express `trust proxy`: off, a hop count, or addresses (`true`, trusting any hop, is refused above). */
function parseTrustProxy(value: string): false | number | string {
  if (value === 'false' || value === '') return false;
  if (/^\d+$/.test(value)) return Number(value);
  return value; // "loopback", a list of addresses/subnets: handed to Express as is
}

/** Where the host's signing keys come from: exactly one of a JWKS URL, a PEM public key, an HS256 secret. */
export type HostKeySource =
  | { kind: 'jwks'; url: URL; timeoutMs: number; cacheMs: number; cooldownMs: number }
  | { kind: 'public-key'; key: KeyObject }
  | { kind: 'secret'; secret: string };

/** PEM text (with `\n` escapes allowed, for one-line environment files) or the path of a PEM file. */
function readPem(value: string): string {
  const text = value.trimStart().startsWith('-----BEGIN') ? value : readFileSync(value, 'utf8');
  return text.replace(/\\n/g, '\n');
}

/** Host JWT identity (undefined: off). Checked here: one key source, issuer and audience with it. */
function hostIdentity(env: z.infer<typeof envSchema>) {
  const sources = (['POSTLINE_JWT_JWKS_URL', 'POSTLINE_JWT_PUBLIC_KEY', 'POSTLINE_JWT_SECRET'] as const).filter((name) => env[name] !== undefined);
  if (sources.length === 0) {
    if (env.POSTLINE_OWN_ACCOUNTS === 'false') throw new ConfigError('invalid POSTLINE_OWN_ACCOUNTS: false needs a host JWT key (POSTLINE_JWT_JWKS_URL, _PUBLIC_KEY or _SECRET)');
    return undefined;
  }
  if (sources.length > 1) throw new ConfigError(`invalid ${sources[1]}: set only one of ${sources.join(', ')}`);
  for (const name of ['POSTLINE_JWT_ISSUER', 'POSTLINE_JWT_AUDIENCE'] as const) {
    if (!env[name]) throw new ConfigError(`invalid ${name}: is required with ${sources[0]}`);
  }
  let keys: HostKeySource;
  if (env.POSTLINE_JWT_JWKS_URL !== undefined) {
    keys = {
      kind: 'jwks',
      url: new URL(env.POSTLINE_JWT_JWKS_URL),
      timeoutMs: env.POSTLINE_JWKS_TIMEOUT_MS,
      cacheMs: env.POSTLINE_JWKS_CACHE_MS,
      cooldownMs: env.POSTLINE_JWKS_COOLDOWN_MS,
    };
  } else if (env.POSTLINE_JWT_PUBLIC_KEY !== undefined) {
    let key: KeyObject;
    try {
      key = createPublicKey(readPem(env.POSTLINE_JWT_PUBLIC_KEY));
    } catch {
      throw new ConfigError('invalid POSTLINE_JWT_PUBLIC_KEY: must be a PEM public key, or the path of a readable PEM file');
    }
    keys = { kind: 'public-key', key };
  } else {
    keys = { kind: 'secret', secret: env.POSTLINE_JWT_SECRET! };
  }
  return {
    keys,
    issuer: env.POSTLINE_JWT_ISSUER!,
    audience: env.POSTLINE_JWT_AUDIENCE!,
    algorithms: keys.kind === 'secret' ? ['HS256'] : env.POSTLINE_JWT_ALGORITHMS,
    clockSkewSeconds: env.POSTLINE_JWT_CLOCK_SKEW_S,
    nameClaim: env.POSTLINE_JWT_NAME_CLAIM,
  };
}

export type HostIdentitySettings = NonNullable<ReturnType<typeof hostIdentity>>;

/** The push webhook (undefined: off); the secret is required with the URL. */
function pushWebhook(env: z.infer<typeof envSchema>) {
  if (env.POSTLINE_WEBHOOK_URL === undefined) return undefined;
  if (env.POSTLINE_WEBHOOK_SECRET === undefined) throw new ConfigError('invalid POSTLINE_WEBHOOK_SECRET: is required with POSTLINE_WEBHOOK_URL');
  return {
    url: new URL(env.POSTLINE_WEBHOOK_URL),
    secret: env.POSTLINE_WEBHOOK_SECRET,
    graceMs: env.POSTLINE_WEBHOOK_GRACE_MS,
    timeoutMs: env.POSTLINE_WEBHOOK_TIMEOUT_MS,
    maxAttempts: env.POSTLINE_WEBHOOK_MAX_ATTEMPTS,
    retryMs: env.POSTLINE_WEBHOOK_RETRY_MS,
    pollMs: env.POSTLINE_WEBHOOK_POLL_MS,
  };
}

export type WebhookSettings = NonNullable<ReturnType<typeof pushWebhook>>;

/** The connection limits of the HTTP server (issue 15: one client without a token could hold every file descriptor). */
function connections(env: z.infer<typeof envSchema>) {
  if (env.POSTLINE_HEADERS_TIMEOUT_MS > env.POSTLINE_REQUEST_TIMEOUT_MS) {
    throw new ConfigError('invalid POSTLINE_HEADERS_TIMEOUT_MS: must not be more than POSTLINE_REQUEST_TIMEOUT_MS (the head is part of the request)');
  }
  return {
    /** Open connections the API port takes; past it new ones are closed at once (and logged). */
    maxConnections: env.POSTLINE_MAX_CONNECTIONS,
    /** The longest a request head may take to arrive. */
    headersTimeoutMs: env.POSTLINE_HEADERS_TIMEOUT_MS,
    /** The longest a whole request (head and body) may take to arrive; streams and polls, whose requests are complete at once, are not cut by it. */
    requestTimeoutMs: env.POSTLINE_REQUEST_TIMEOUT_MS,
    /** A second listener for /healthz, /readyz and /metrics only, which answers while the API port is full (undefined: none). */
    admin: env.POSTLINE_ADMIN_PORT === undefined ? undefined : { port: env.POSTLINE_ADMIN_PORT, host: env.POSTLINE_ADMIN_HOST },
  };
}

export type ConnectionSettings = ReturnType<typeof connections>;

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
    /** Failed logins per account from one address before each further one doubles the wait (0: no login throttling), and per account from all addresses (per hour). */
    loginFailures: { perAddress: env.POSTLINE_LOGIN_FAILURES_PER_ADDRESS, perAccount: env.POSTLINE_LOGIN_FAILURES_PER_ACCOUNT },
    /** Failed token checks per client address per minute on each instance, counted in memory (0 = off). */
    authFailuresPerMin: env.POSTLINE_AUTH_FAILURES_PER_MIN,
    /** Threads a user may start (or direct threads re-open with someone who left) per hour (0 = off). */
    threadsPerHour: env.POSTLINE_THREADS_PER_HOUR,
    connections: connections(env),
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
    /** Register and log in with postline's own accounts (and accept their tokens). */
    ownAccounts: env.POSTLINE_OWN_ACCOUNTS === 'true',
    /** The host application's JWTs, when configured. */
    hostIdentity: hostIdentity(env),
    /** The push webhook for recipients who did not receive a message, when configured. */
    webhook: pushWebhook(env),
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
