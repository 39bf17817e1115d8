import type { RequestHandler, Router } from 'express';
import { z } from 'zod';
import { MethodNotAllowedProblem } from '../errors.js';
import { eventSchema, messageSchema, searchResultSchema, sessionSchema, threadSchema, userSchema } from '../contract.js';
import {
  addMemberBody,
  clientId,
  createThreadBody,
  deliveredBody,
  editMessageBody,
  eventCursor,
  eventsQuery,
  findUsersQuery,
  listMessagesQuery,
  listThreadsQuery,
  loginBody,
  MAX_REACTIONS_PER_MESSAGE,
  memberParams,
  messageParams,
  pollQuery,
  presenceQuery,
  reactionParams,
  registerBody,
  searchQuery,
  seenBody,
  sessionParams,
  sendMessageBody,
  threadParams,
  typingBody,
  userParams,
} from './validate.js';

/**
 * Every route of `/v1`, declared once: the route handlers validate with these schemas and are
 * mounted at these paths (`route()`), and the OpenAPI document (http/openapi.ts) is generated
 * from the same declarations. A new route is one more entry here.
 */

/** Where the routes below are mounted. */
export const API_BASE = '/v1';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** A success answer: its body schema (none for 204) and media types (default JSON). */
interface Success {
  description: string;
  schema?: z.ZodType;
  /** Media types other than application/json, each with its own schema. */
  content?: Record<string, z.ZodType>;
}

export interface Operation {
  method: Method;
  /** Express path below /v1, e.g. `/threads/:threadId`. */
  path: string;
  summary: string;
  description?: string;
  tag: 'accounts' | 'contacts' | 'threads' | 'messages' | 'search' | 'delivery' | 'presence' | 'meta';
  /** `token`: Authorization: Bearer, or the session cookie with `Postline-Session: cookie`; `stream`: also ?access_token= and the cookie alone; `none`: public. */
  auth: 'none' | 'token' | 'stream';
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodObject;
  headers?: Record<string, { schema: z.ZodType; description: string }>;
  /** Success statuses and their bodies. */
  answers: Record<number, Success>;
  /** Problem answers particular to this operation, with when they happen (the common ones are added by the generator). */
  problems?: Record<number, string>;
}

/** A sign-in's answer: the token, unless the page asked for the cookie session (`Postline-Session: cookie`). */
const session = z.object({ user: userSchema, token: z.string().optional() });
/** Sign-ins take `Postline-Session: cookie` (a browser page's session is then the HttpOnly cookie alone). */
const signInHeaders = {
  'Postline-Session': {
    schema: z.literal('cookie'),
    description: 'Sign this browser in: the session is set as the HttpOnly `postline_session` cookie, and the answer carries no token.',
  },
};
const FOREIGN_SIGN_IN = 'A page of another site (by `Origin` or `Sec-Fetch-Site`) that POSTLINE_CORS_ORIGINS does not list: login CSRF.';
const threadAnswer = z.object({ thread: threadSchema });
const messageAnswer = z.object({ message: messageSchema });
const noContent = (description: string): Success => ({ description });
const json = (description: string, schema: z.ZodType): Success => ({ description, schema });
const NO_THREAD = 'No such thread, or the caller is not a member.';
const NO_MESSAGE = `${NO_THREAD} Or no such message in this thread.`;

/** `POST …/seen` and `POST …/delivered`: one of the caller's two markers moves forward to `upTo`. */
const markerOperation = (marker: 'seen' | 'delivered', summary: string) => ({
  method: 'post' as const,
  path: `/threads/:threadId/${marker}`,
  summary,
  tag: 'messages' as const,
  auth: 'token' as const,
  params: threadParams,
  body: marker === 'seen' ? seenBody : deliveredBody,
  answers: { 204: noContent('Moved (never back).') },
  problems: { 404: NO_THREAD },
});

export const operations = {
  register: {
    method: 'post',
    path: '/users',
    summary: 'Register an account (and sign in)',
    description: 'With `Postline-Session: cookie`, sets the HttpOnly `postline_session` cookie instead of answering the token. With own accounts switched off: 404.',
    tag: 'accounts',
    auth: 'none',
    body: registerBody,
    headers: signInHeaders,
    answers: { 201: json('The new user and a session token (none with `Postline-Session: cookie`).', session) },
    problems: {
      403: FOREIGN_SIGN_IN,
      404: 'Own accounts are switched off (POSTLINE_OWN_ACCOUNTS=false).',
      409: 'The username is taken.',
      429: 'Too many sign-in attempts from this address; see `Retry-After`.',
    },
  },
  login: {
    method: 'post',
    path: '/sessions',
    summary: 'Log in',
    description: 'With `Postline-Session: cookie`, sets the HttpOnly `postline_session` cookie instead of answering the token. With own accounts switched off: 404.',
    tag: 'accounts',
    auth: 'none',
    body: loginBody,
    headers: signInHeaders,
    answers: { 201: json('The user and a new session token (none with `Postline-Session: cookie`).', session) },
    problems: {
      401: 'Wrong username or password.',
      403: FOREIGN_SIGN_IN,
      404: 'Own accounts are switched off (POSTLINE_OWN_ACCOUNTS=false).',
      429: 'Too many sign-in attempts from this address, or failed logins for this username; see `Retry-After`.',
    },
  },
  logout: {
    method: 'delete',
    path: '/sessions/current',
    summary: 'Log out: the token stops working at once, on every instance',
    tag: 'accounts',
    auth: 'token',
    answers: { 204: noContent('Revoked; its open streams end.') },
    problems: { 409: 'A host JWT cannot be revoked here; it ends at its exp.' },
  },
  listSessions: {
    method: 'get',
    path: '/sessions',
    summary: "The caller's signed-in sessions (one per login or registration), newest first",
    tag: 'accounts',
    auth: 'token',
    answers: { 200: json('The live sessions; `current` marks the one of this request.', z.object({ sessions: z.array(sessionSchema) })) },
  },
  revokeSession: {
    method: 'delete',
    path: '/sessions/:sessionId',
    summary: 'Revoke one of the caller’s sessions (sign out another device)',
    description: 'Its token stops working at once, on every instance, and its open streams end. `DELETE /v1/sessions/current` also clears the cookie.',
    tag: 'accounts',
    auth: 'token',
    params: sessionParams,
    answers: { 204: noContent('Revoked.') },
    problems: { 404: 'No such session of the caller.' },
  },
  me: {
    method: 'get',
    path: '/me',
    summary: 'The caller',
    tag: 'accounts',
    auth: 'token',
    answers: { 200: json('The signed-in user.', z.object({ user: userSchema })) },
  },
  findUsers: {
    method: 'get',
    path: '/users',
    summary: 'Find a user by exact username (`username`), or search people (`q`)',
    description:
      '`q` (1–64 characters): at most 20 users whose username starts with it (case-insensitive), or whose display name has, ' +
      'for every word of `q`, a word starting with it (case- and accent-insensitive); the exact username first. ' +
      'Send one of `username` and `q`.',
    tag: 'accounts',
    auth: 'token',
    query: findUsersQuery,
    answers: { 200: json('The user with that username (or none), or the people found.', z.object({ users: z.array(userSchema) })) },
  },
  block: {
    method: 'post',
    path: '/users/:userId/block',
    summary: 'Block a user',
    description:
      'They can no longer add the caller to a thread or send in a direct thread with them (nor can the caller, until unblocking), ' +
      'and neither sees the other’s presence or typing. Shared groups go on as before. The user blocked is not told.',
    tag: 'contacts',
    auth: 'token',
    params: userParams,
    answers: { 204: noContent('Blocked (also when they already were).') },
    problems: { 404: 'No such user.' },
  },
  unblock: {
    method: 'delete',
    path: '/users/:userId/block',
    summary: 'Take a block back',
    tag: 'contacts',
    auth: 'token',
    params: userParams,
    answers: { 204: noContent('Not blocked (also when they were not).') },
  },
  listBlocks: {
    method: 'get',
    path: '/blocks',
    summary: 'The users the caller blocked, latest first',
    tag: 'contacts',
    auth: 'token',
    answers: { 200: json('The users blocked.', z.object({ users: z.array(userSchema) })) },
  },
  createThread: {
    method: 'post',
    path: '/threads',
    summary: 'Create a thread (a direct one is unique per pair)',
    description:
      'For each member who shares no accepted thread with the caller, the new thread is a request (see `pending`). ' +
      'An unknown user id, or a user who blocked the caller or whom the caller blocked, is a 400 that does not say which. ' +
      'At most `POSTLINE_THREADS_PER_HOUR` new threads per user per hour (429).',
    tag: 'threads',
    auth: 'token',
    body: createThreadBody,
    answers: {
      201: json('The new thread.', threadAnswer),
      200: json('The existing direct thread of this pair (with whichever of the two had left it back in).', threadAnswer),
    },
  },
  listThreads: {
    method: 'get',
    path: '/threads',
    summary: "The caller's threads, latest activity first (with requests=true: the requests, listed apart)",
    tag: 'threads',
    auth: 'token',
    query: listThreadsQuery,
    answers: { 200: json('A page of threads.', z.object({ threads: z.array(threadSchema) })) },
  },
  acceptThread: {
    method: 'post',
    path: '/threads/:threadId/accept',
    summary: 'Accept a thread that is a request for the caller',
    description: 'Sending a message in it accepts it too. To decline, leave it (`DELETE …/members/{yourId}`), and block its sender if need be.',
    tag: 'threads',
    auth: 'token',
    params: threadParams,
    answers: { 200: json('The thread (accepting an accepted one changes nothing).', threadAnswer) },
    problems: { 404: NO_THREAD },
  },
  getThread: {
    method: 'get',
    path: '/threads/:threadId',
    summary: 'One thread',
    tag: 'threads',
    auth: 'token',
    params: threadParams,
    answers: { 200: json('The thread.', threadAnswer) },
    problems: { 404: NO_THREAD },
  },
  addMember: {
    method: 'post',
    path: '/threads/:threadId/members',
    summary: 'Add a member (any member may)',
    tag: 'threads',
    auth: 'token',
    params: threadParams,
    body: addMemberBody,
    answers: { 200: json('The thread with its members.', threadAnswer) },
    problems: { 404: NO_THREAD, 409: 'A direct thread has only its two members, or the thread is full.' },
  },
  removeMember: {
    method: 'delete',
    path: '/threads/:threadId/members/:userId',
    summary: 'Leave a thread, or (its creator) remove a member',
    tag: 'threads',
    auth: 'token',
    params: memberParams,
    answers: { 204: noContent('Removed.') },
    problems: {
      403: "Only the thread's creator may remove other members.",
      404: `${NO_THREAD} Or the user is not a member.`,
      409: 'The other member of a direct thread cannot be removed (a member may leave it).',
    },
  },
  listMessages: {
    method: 'get',
    path: '/threads/:threadId/messages',
    summary: 'A page of messages, in ascending seq',
    tag: 'messages',
    auth: 'token',
    params: threadParams,
    query: listMessagesQuery,
    answers: { 200: json('The messages and whether more exist beyond them.', z.object({ messages: z.array(messageSchema), hasMore: z.boolean() })) },
    problems: { 404: NO_THREAD },
  },
  sendMessage: {
    method: 'post',
    path: '/threads/:threadId/messages',
    summary: 'Send a message (idempotent with clientId or Idempotency-Key)',
    description: 'Answered only after the message is committed.',
    tag: 'messages',
    auth: 'token',
    params: threadParams,
    body: sendMessageBody,
    headers: { 'Idempotency-Key': { schema: clientId, description: 'The same as `clientId` (if both are sent they must be equal).' } },
    answers: {
      201: json('The new message.', messageAnswer),
      200: json('The original message of an earlier send with the same clientId.', messageAnswer),
    },
    problems: { 403: 'A direct thread between users one of whom blocked the other.', 404: NO_THREAD },
  },
  editMessage: {
    method: 'patch',
    path: '/threads/:threadId/messages/:messageId',
    summary: "Edit one's own message",
    description: 'The message gets `editedAt` and a `message.updated` event; the same text again changes nothing.',
    tag: 'messages',
    auth: 'token',
    params: messageParams,
    body: editMessageBody,
    answers: { 200: json('The message as it is now.', messageAnswer) },
    problems: { 403: 'Only the sender may edit a message.', 404: NO_MESSAGE, 409: 'The message was deleted.' },
  },
  deleteMessage: {
    method: 'delete',
    path: '/threads/:threadId/messages/:messageId',
    summary: "Delete one's own message, leaving a tombstone",
    description: 'Its text leaves the database (the event log included); a `message.deleted` event carries the tombstone.',
    tag: 'messages',
    auth: 'token',
    params: messageParams,
    answers: { 204: noContent('Deleted (also when it already was).') },
    problems: { 403: 'Only the sender may delete a message.', 404: NO_MESSAGE },
  },
  addReaction: {
    method: 'put',
    path: '/threads/:threadId/messages/:messageId/reactions/:emoji',
    summary: 'React to a message with one emoji (idempotent)',
    tag: 'messages',
    auth: 'token',
    params: reactionParams,
    answers: { 200: json('The message with its reactions.', messageAnswer) },
    problems: {
      404: NO_MESSAGE,
      409: `The message was deleted, or it carries ${MAX_REACTIONS_PER_MESSAGE} different emoji already.`,
    },
  },
  removeReaction: {
    method: 'delete',
    path: '/threads/:threadId/messages/:messageId/reactions/:emoji',
    summary: "Take back one's reaction (idempotent)",
    tag: 'messages',
    auth: 'token',
    params: reactionParams,
    answers: { 200: json('The message with its reactions.', messageAnswer) },
    problems: { 404: NO_MESSAGE },
  },
  typing: {
    method: 'post',
    path: '/threads/:threadId/typing',
    summary: 'Tell the other members the caller is typing (or stopped)',
    tag: 'messages',
    auth: 'token',
    params: threadParams,
    body: typingBody,
    answers: { 204: noContent('Announced (or a repeat within 2 s, not re-sent).') },
    problems: { 404: NO_THREAD },
  },
  seen: markerOperation('seen', "Move the caller's read marker forward"),
  delivered: markerOperation('delivered', "Move the caller's delivered marker forward: the client has the messages up to upTo"),
  search: {
    method: 'get',
    path: '/search',
    summary: "Full-text search over the messages of the caller's threads, newest first",
    description:
      'Words match whole words, case- and accent-insensitively; `q` as people type into search boxes (words, "phrases", `or`, `-word`). ' +
      'Deleted messages are left out. `before`: the message id of the last result of the previous page.',
    tag: 'search',
    auth: 'token',
    query: searchQuery,
    answers: { 200: json('The results and whether more exist.', z.object({ results: z.array(searchResultSchema), hasMore: z.boolean() })) },
    problems: { 404: 'No such thread (`threadId`), or the caller is not a member.' },
  },
  presence: {
    method: 'get',
    path: '/presence',
    summary: 'Who of these users is online (the caller and their contacts: users who share a thread both accepted, neither blocking the other)',
    tag: 'presence',
    auth: 'token',
    query: presenceQuery,
    answers: {
      200: json('Presence of the visible users, in id order.', z.object({ presence: z.array(z.object({ userId: z.string(), online: z.boolean() })) })),
    },
  },
  events: {
    method: 'get',
    path: '/events',
    summary: 'The event stream: Server-Sent Events, or NDJSON with ?format=ndjson',
    description:
      'Resumes after `Last-Event-ID` (else `lastEventId`, `last_event_id`, `since`); none: from now. ' +
      'An event-stream client meeting a server-side failure gets `retry:` and a close (200), never a 5xx.',
    tag: 'delivery',
    auth: 'stream',
    query: eventsQuery,
    headers: { 'Last-Event-ID': { schema: eventCursor, description: 'Resume after this event id.' } },
    answers: {
      200: {
        description: 'The stream: `id:`/`event:`/`data:` frames whose data is an Event; `:` heartbeats.',
        content: { 'text/event-stream': z.string(), 'application/x-ndjson': z.string() },
      },
      204: noContent('A reconnect (it has a resume point) whose token is no longer valid: stop retrying.'),
    },
    problems: { 429: 'Too many open streams for this user on this instance (delivery is not under the per-minute request limit).' },
  },
  poll: {
    method: 'get',
    path: '/poll',
    summary: 'Long-poll: the events after a cursor, waiting up to `timeout` seconds for the first',
    tag: 'delivery',
    auth: 'stream',
    query: pollQuery,
    answers: { 200: json('The events (at most 100) and the cursor to send next time.', z.object({ events: z.array(eventSchema), cursor: z.string() })) },
    problems: {
      429: 'Too many waiting polls for this user on this instance (delivery is not under the per-minute request limit).',
      503: 'The events could not be read (or the database or the host’s keys cannot be reached): poll again with the same cursor; see `Retry-After`.',
    },
  },
  openApiDocument: {
    method: 'get',
    path: '/openapi.json',
    summary: 'This document (OpenAPI 3.1)',
    description: 'Browsable at /docs.',
    tag: 'meta',
    auth: 'none',
    answers: { 200: json('The OpenAPI document.', z.record(z.string(), z.unknown())) },
  },
} satisfies Record<string, Operation>;

/** Mount `handlers` for `operation` on `router` (a router below /v1). */
export function route(router: Router, operation: Operation, ...handlers: RequestHandler[]): void {
  router[operation.method](operation.path, ...handlers);
}

/** Each path of the registry as a pattern (below /v1), with the methods served there. */
const PATHS = (() => {
  const methods = new Map<string, Set<string>>();
  for (const operation of Object.values(operations) as Operation[]) {
    const served = methods.get(operation.path) ?? new Set<string>();
    served.add(operation.method.toUpperCase());
    // The delivery endpoints (a stream, a waiting poll) are served by routes/delivery.ts for GET alone.
    if (operation.method === 'get' && operation.tag !== 'delivery') served.add('HEAD');
    methods.set(operation.path, served);
  }
  return [...methods].map(([path, served]) => ({ pattern: new RegExp(`^${path.replace(/:\w+/g, '[^/]+')}/?$`), allowed: [...served] }));
})();

/**
 * Middleware below /v1: a known path asked with a method it does not serve is 405 with `Allow`
 * (before the body is read or the token checked), rather than the 404 of an unknown route.
 */
export const refuseUnservedMethods: RequestHandler = (req, _res, next) => {
  // Several patterns may match one path (`/sessions/current` and a `/sessions/:id`): all count.
  const allowed = new Set(PATHS.filter(({ pattern }) => pattern.test(req.path)).flatMap((path) => path.allowed));
  if (allowed.size > 0 && !allowed.has(req.method)) throw new MethodNotAllowedProblem(req.method, [...allowed]);
  next();
};
