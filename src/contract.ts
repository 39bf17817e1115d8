import { z } from 'zod';

/**
 * The JSON objects of the HTTP contract (docs/api.md), defined once: the TypeScript types are
 * inferred from these schemas, and the OpenAPI document (src/http/openapi.ts) is generated from
 * them. The objects themselves are built in SQL (sql/002_chat.sql, sql/006_chat_features.sql), so
 * answers and event payloads agree; the test suite checks every answer it gets against the document.
 *
 * `contractComponents` names each one for the document's `components/schemas`.
 */

/** Ids are decimal strings of positive 64-bit integers. */
const idString = z.string().regex(/^[1-9][0-9]{0,18}$/);
const timestamp = z.iso.datetime();

export const userSchema = z.object({
  id: idString,
  username: z.string(),
  displayName: z.string(),
});
export type User = z.infer<typeof userSchema>;

const seq = z.number().int().min(1);

/** A message's reactions, oldest emoji first: who reacted with each, in the order they did. */
const reactionsSchema = z.array(z.object({ emoji: z.string(), count: z.number().int().min(1), userIds: z.array(idString) }));

/** A deleted message (a tombstone) keeps its id and seq; its `body` is null and `deletedAt` set. */
export const messageSchema = z.object({
  id: idString,
  threadId: idString,
  seq,
  senderId: idString,
  body: z.string().nullable(),
  clientId: z.string().nullable(),
  createdAt: timestamp,
  editedAt: timestamp.nullable(),
  deletedAt: timestamp.nullable(),
  /** A short quote of the message this one answers, as it is now (`excerpt` null once deleted). */
  replyTo: z
    .object({ id: idString, seq, senderId: idString, excerpt: z.string().nullable(), deletedAt: timestamp.nullable() })
    .nullable(),
  reactions: reactionsSchema,
});
export type Message = z.infer<typeof messageSchema>;

/** Where one member has got to in a thread, by seq: delivered to their client (never below read), and read. */
export const receiptSchema = z.object({
  userId: idString,
  deliveredSeq: z.number().int().min(0),
  readSeq: z.number().int().min(0),
});
export type Receipt = z.infer<typeof receiptSchema>;

export const threadSchema = z.object({
  id: idString,
  kind: z.enum(['direct', 'group']),
  title: z.string().nullable(),
  createdBy: idString,
  members: z.array(userSchema),
  lastMessage: messageSchema.nullable(),
  unreadCount: z.number().int().min(0).nullable(),
  updatedAt: timestamp,
  /** Every member's receipt, in member order. */
  receipts: z.array(receiptSchema),
  /** The members for whom the thread is a request (someone they share no accepted thread with added them), in member order. */
  pending: z.array(idString),
});
export type Thread = z.infer<typeof threadSchema>;

/** An envelope of one event type: durable ones carry an `id`, ephemeral ones do not. */
function envelope<Type extends string, Data extends z.ZodType>(type: Type, data: Data, options: { durable: boolean; thread: boolean }) {
  return z.object({
    ...(options.durable ? { id: idString } : {}),
    type: z.literal(type),
    ...(options.thread ? { threadId: idString } : {}),
    at: timestamp,
    data,
  });
}

const markerMoved = z.object({ userId: idString, upTo: idString, seq });
const reactionChanged = z.object({ messageId: idString, userId: idString, emoji: z.string(), reactions: reactionsSchema });

export const eventSchema = z.discriminatedUnion('type', [
  envelope('message.created', messageSchema, { durable: true, thread: true }),
  envelope('message.updated', messageSchema, { durable: true, thread: true }),
  envelope('message.deleted', messageSchema, { durable: true, thread: true }),
  envelope('reaction.added', reactionChanged, { durable: true, thread: true }),
  envelope('reaction.removed', reactionChanged, { durable: true, thread: true }),
  envelope('thread.updated', threadSchema, { durable: true, thread: true }),
  envelope('thread.removed', z.object({ threadId: idString }), { durable: true, thread: true }),
  envelope('seen', markerMoved, { durable: true, thread: true }),
  envelope('delivered', markerMoved, { durable: true, thread: true }),
  envelope('typing', z.object({ userId: idString, typing: z.boolean() }), { durable: false, thread: true }),
  envelope('presence', z.object({ userId: idString, online: z.boolean() }), { durable: false, thread: false }),
  envelope('reset', z.object({ reason: z.enum(['unknown-cursor', 'expired-cursor']) }), { durable: false, thread: false }),
  // The first event of every stream (never in polls): whose stream it is and where it starts.
  envelope('ready', z.object({ userId: idString, lastEventId: z.string().regex(/^(0|[1-9][0-9]*)$/) }), { durable: false, thread: false }),
]);

/** One of a user's sessions (signed-in devices); `current`: the one this request came with. */
export const sessionSchema = z.object({ id: idString, createdAt: timestamp, expiresAt: timestamp, current: z.boolean() });

/** One search hit: the message and its text, HTML-escaped, with the matches in `<mark>…</mark>`. */
export const searchResultSchema = z.object({ message: messageSchema, snippet: z.string() });
export type SearchResult = z.infer<typeof searchResultSchema>;

export const problemSchema = z.object({
  type: z.string().startsWith('urn:postline:problem:'),
  title: z.string(),
  status: z.number().int().min(400).max(599),
  detail: z.string(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});

/** The named objects of the contract: the OpenAPI document's `components/schemas`. */
export const contractComponents: Record<string, { schema: z.ZodType; description: string }> = {
  User: { schema: userSchema, description: 'A postline user; a host user’s username is `~` followed by their `sub`.' },
  Message: { schema: messageSchema, description: '`seq` counts 1, 2, 3… per thread, without gaps.' },
  Receipt: { schema: receiptSchema, description: 'A member’s delivered and read position in a thread, by `seq`.' },
  Thread: { schema: threadSchema, description: '`unreadCount` is the caller’s (deleted messages left out); null inside events.' },
  Session: { schema: sessionSchema, description: 'A signed-in session of the caller (a token); revoke it with `DELETE /v1/sessions/{id}`.' },
  SearchResult: { schema: searchResultSchema, description: 'A message found by `GET /v1/search`, with a highlighted snippet.' },
  Event: { schema: eventSchema, description: 'The envelope every delivery path carries (SSE `data:`, NDJSON lines, long-poll `events`).' },
  Problem: { schema: problemSchema, description: 'RFC 9457 problem details (`application/problem+json`).' },
};
