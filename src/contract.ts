import { z } from 'zod';

/**
 * The JSON objects of the HTTP contract (docs/api.md), defined once: the TypeScript types are
 * inferred from these schemas, and the OpenAPI document (src/http/openapi.ts) is generated from
 * them. The objects themselves are built in SQL (sql/002_chat.sql), so answers and event payloads
 * agree; the test suite checks every answer it gets against the document.
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

export const messageSchema = z.object({
  id: idString,
  threadId: idString,
  seq: z.number().int().min(1),
  senderId: idString,
  body: z.string(),
  clientId: z.string().nullable(),
  createdAt: timestamp,
});
export type Message = z.infer<typeof messageSchema>;

export const threadSchema = z.object({
  id: idString,
  kind: z.enum(['direct', 'group']),
  title: z.string().nullable(),
  createdBy: idString,
  members: z.array(userSchema),
  lastMessage: messageSchema.nullable(),
  unreadCount: z.number().int().min(0).nullable(),
  updatedAt: timestamp,
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

export const eventSchema = z.discriminatedUnion('type', [
  envelope('message.created', messageSchema, { durable: true, thread: true }),
  envelope('thread.updated', threadSchema, { durable: true, thread: true }),
  envelope('thread.removed', z.object({ threadId: idString }), { durable: true, thread: true }),
  envelope('seen', z.object({ userId: idString, upTo: idString, seq: z.number().int().min(1) }), { durable: true, thread: true }),
  envelope('typing', z.object({ userId: idString, typing: z.boolean() }), { durable: false, thread: true }),
  envelope('presence', z.object({ userId: idString, online: z.boolean() }), { durable: false, thread: false }),
  envelope('reset', z.object({ reason: z.enum(['unknown-cursor', 'expired-cursor']) }), { durable: false, thread: false }),
]);

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
  Thread: { schema: threadSchema, description: '`unreadCount` is the caller’s; null inside events.' },
  Event: { schema: eventSchema, description: 'The envelope every delivery path carries (SSE `data:`, NDJSON lines, long-poll `events`).' },
  Problem: { schema: problemSchema, description: 'RFC 9457 problem details (`application/problem+json`).' },
};
