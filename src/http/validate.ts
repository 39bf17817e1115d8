import { z } from 'zod';
import { ValidationProblem } from '../errors.js';
import { nameProblem, normalizeName } from '../names.js';

/**
 * The input schemas of the HTTP contract, and the one place that turns a failed parse into a
 * 400 problem. Unknown fields are ignored (zod strips them).
 */

const MAX_BIGINT = 9223372036854775807n;

/** Length in Unicode code points, so an emoji counts as one character. */
const codePoints = (text: string) => [...text].length;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const CONTROL = /\p{Cc}/u;
const CONTROL_EXCEPT_LINE_BREAKS = /[^\P{Cc}\n\r\t]/u;

/** The message for a value of the wrong type, or "is required" when it is missing. */
const must = (what: string) => (issue: { input?: unknown }) => (issue.input === undefined ? 'is required' : what);

/** Trimmed text of min..max code points, without control characters (line breaks if allowed). */
function text(min: number, max: number, options: { multiline?: boolean } = {}) {
  const forbidden = options.multiline ? CONTROL_EXCEPT_LINE_BREAKS : CONTROL;
  return z
    .string({ error: must('must be a string') })
    .trim()
    .refine((value) => codePoints(value) >= min, min === 1 ? 'must not be empty' : `must be at least ${min} characters`)
    .refine((value) => codePoints(value) <= max, `must be at most ${max} characters`)
    .refine((value) => !forbidden.test(value), 'must not contain control characters')
    .refine((value) => !LONE_SURROGATE.test(value), 'must be valid Unicode');
}

/**
 * A name people take as identity (a display name, a thread title), min..max code points after
 * the rules of names.ts: NFKC, white space collapsed; no control, invisible or formatting
 * characters, no long runs of combining marks.
 */
function name(max: number) {
  return z
    .string({ error: must('must be a string') })
    .refine((value) => !LONE_SURROGATE.test(value), { error: 'must be valid Unicode', abort: true })
    .transform(normalizeName)
    .refine((value) => codePoints(value) >= 1, 'must not be empty')
    .refine((value) => codePoints(value) <= max, `must be at most ${max} characters`)
    .superRefine((value, ctx) => {
      const problem = nameProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });
}

/** A database id: a positive integer as a string (a JSON number that is a safe integer is accepted too). */
export const id = z.preprocess(
  (value) => (typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? String(value) : value),
  z
    .string({ error: must('must be an id string') })
    .regex(/^[1-9][0-9]{0,18}$/, { error: 'must be an id (a positive integer)', abort: true })
    .refine((value) => BigInt(value) <= MAX_BIGINT, 'must be an id (a positive integer)'),
);

/** A whole number given in a query string, within bounds; anything else is rejected, never clamped. */
export function queryInteger(min: number, max: number) {
  return z
    .string({ error: must(`must be a whole number from ${min} to ${max}`) })
    .regex(/^\d{1,16}$/, `must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .refine((value) => value >= min && value <= max, `must be a whole number from ${min} to ${max}`);
}

/** true/false, also as the strings a form body sends. */
const flag = z.preprocess(
  (value) => (value === 'true' ? true : value === 'false' ? false : value),
  z.boolean({ error: must('must be true or false') }),
);

/** A client-chosen idempotency key: 1-128 visible ASCII characters. */
export const clientId = z
  .string({ error: must('must be a string') })
  .regex(/^[\x21-\x7e]{1,128}$/, 'must be 1-128 visible ASCII characters');

export const username = z
  .string({ error: must('must be a string') })
  .regex(/^[a-z0-9_.-]{3,32}$/, 'must be 3-32 characters of a-z, 0-9, "_", "." or "-"');

const password = z
  .string({ error: must('must be a string') })
  .refine((value) => codePoints(value) >= 8 && codePoints(value) <= 256, 'must be 8-256 characters');

export const registerBody = z.object({
  username,
  password,
  displayName: name(64).optional(),
});

export const loginBody = z.object({
  // Not the username rules (an old account may predate them), but nothing Postgres cannot store.
  username: z
    .string({ error: must('must be a string') })
    .max(64, 'is too long')
    .refine((value) => !CONTROL.test(value), 'must not contain control characters'),
  password: z.string({ error: must('must be a string') }).max(1024, 'is too long'),
});

/**
 * `GET /v1/users`: `username` is the exact lookup; `q` searches people (a prefix of a username or
 * of words of a display name). One of the two, not both.
 */
export const findUsersQuery = z
  .object({
    username: username.optional(),
    q: text(1, 64).optional(),
  })
  .superRefine((query, ctx) => {
    if (query.username !== undefined && query.q !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['username'], message: 'send either username (exact) or q (search), not both' });
    } else if (query.username === undefined && query.q === undefined) {
      ctx.addIssue({ code: 'custom', path: ['username'], message: 'is required (or q, to search people)' });
    }
  });

export const createThreadBody = z.object({
  // A form body sends a single member as a plain string.
  members: z.preprocess(
    (value) => (typeof value === 'string' ? [value] : value),
    z.array(id, { error: must('must be a list of user ids') }).max(1000, 'has too many members'),
  ),
  title: name(100).nullish(),
});

export const listThreadsQuery = z.object({
  limit: queryInteger(1, 200).default(50),
  before: id.optional(),
  /** true: the threads that are requests for the caller (listed apart); default: the others. */
  requests: flag.default(false),
});

export const threadParams = z.object({ threadId: id });
export const sessionParams = z.object({ sessionId: id });
export const memberParams = z.object({ threadId: id, userId: id });
export const userParams = z.object({ userId: id });
export const addMemberBody = z.object({ userId: id });

const seqNumber = queryInteger(1, Number.MAX_SAFE_INTEGER);
export const listMessagesQuery = z.object({
  before: seqNumber.optional(),
  after: seqNumber.optional(),
  limit: queryInteger(1, 200).default(50),
});

const messageText = text(1, 4000, { multiline: true });

export const sendMessageBody = z.object({
  body: messageText,
  clientId: clientId.optional(),
  /** The message (of the same thread) this one answers. */
  replyTo: id.optional(),
});

export const messageParams = z.object({ threadId: id, messageId: id });
export const editMessageBody = z.object({ body: messageText });

/** Most distinct emoji one message may carry. */
export const MAX_REACTIONS_PER_MESSAGE = 20;
const ONE_EMOJI = new RegExp('^\\p{RGI_Emoji}$', 'v');
const VARIATION_SELECTOR_16 = '\uFE0F';

/**
 * One emoji: a single RGI emoji (Unicode's list of emoji, sequences included: skin tones, ZWJ
 * families, flags, keycaps), never arbitrary text. A character that is an emoji only in its emoji
 * presentation (❤ U+2764) is stored with its VS16 (❤️), so that both spellings count as one.
 */
export const emoji = z
  .string({ error: must('must be an emoji') })
  .max(32, { error: 'must be a single emoji', abort: true })
  .transform((value) => (!ONE_EMOJI.test(value) && ONE_EMOJI.test(value + VARIATION_SELECTOR_16) ? value + VARIATION_SELECTOR_16 : value))
  .refine((value) => ONE_EMOJI.test(value), 'must be a single emoji');

export const reactionParams = z.object({ threadId: id, messageId: id, emoji });

/** `GET /v1/search`: `limit` 1-50, default 20. */
export const searchQuery = z.object({
  q: text(1, 200),
  threadId: id.optional(),
  limit: queryInteger(1, 50).default(20),
  /** The id of the last result of the previous page: results older than it. */
  before: id.optional(),
});

export const typingBody = z.object({ typing: flag });

/** An event id a client resumes after: 0 (the very beginning) or a positive whole number. */
export const eventCursor = z
  .string({ error: must('must be an event id') })
  .regex(/^(0|[1-9][0-9]{0,15})$/, { error: 'must be an event id (a whole number)', abort: true })
  .transform(Number)
  .refine(Number.isSafeInteger, 'must be an event id (a whole number)');

export const streamQuery = z.object({
  format: z.enum(['sse', 'ndjson'], { error: 'must be sse or ndjson' }).default('sse'),
});

/** Every query parameter of `GET /v1/events`: the format and the resume points besides the Last-Event-ID header. */
export const eventsQuery = streamQuery.extend({
  lastEventId: eventCursor.optional(),
  last_event_id: eventCursor.optional(),
  since: eventCursor.optional(),
});

export const pollQuery = z.object({
  cursor: eventCursor.optional(),
  timeout: queryInteger(0, 55).default(20),
});

export const presenceQuery = z.object({
  userIds: z
    .string({ error: must('must be a comma-separated list of user ids') })
    .transform((value): unknown[] => value.split(','))
    .pipe(z.array(id).min(1, 'must name at least one user').max(200, 'names too many users')),
});
/** A marker (read or delivered) moves up to a message of the thread. */
export const seenBody = z.object({ upTo: id });
export const deliveredBody = seenBody;

/**
 * Parse `input` with `schema`, or throw a 400 problem listing every complaint. `name` labels a
 * complaint about the input as a whole (a header, say).
 */
export function parse<Schema extends z.ZodType>(schema: Schema, input: unknown, name = '(root)'): z.output<Schema> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw new ValidationProblem(
    result.error.issues.map((issue) => ({
      path: issue.path.map(String).join('.') || name,
      message: issue.message,
    })),
  );
}
