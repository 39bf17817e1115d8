/** Types of postline-client (postline-client.cjs) for TypeScript users; see that file for details. */

declare namespace Postline {
  /** The contract's shapes, as the server defines them. */
  type User = import('../contract.js', { with: { 'resolution-mode': 'import' } }).User;
  type Message = import('../contract.js', { with: { 'resolution-mode': 'import' } }).Message;
  type Thread = import('../contract.js', { with: { 'resolution-mode': 'import' } }).Thread;
  type Receipt = import('../contract.js', { with: { 'resolution-mode': 'import' } }).Receipt;
  type SearchResult = import('../contract.js', { with: { 'resolution-mode': 'import' } }).SearchResult;
  /** Data of `seen` and `delivered` events. */
  interface MarkerMoved {
    userId: string;
    upTo: string;
    seq: number;
  }
  /** Data of `reaction.added` and `reaction.removed` events. */
  interface ReactionChanged {
    messageId: string;
    userId: string;
    emoji: string;
    reactions: Message['reactions'];
  }
  interface Envelope<Data = Record<string, unknown>> {
    id?: string;
    type: string;
    threadId?: string;
    at: string;
    data: Data;
    /** Set on the typing:false the client emits when someone's typing ran out. */
    expired?: true;
  }
  /** null on success; status 0 means the network failed or the call timed out. */
  interface RequestError {
    status: number;
    problem: { type: string; title: string; status: number; detail: string } | null;
    retryAfterMs: number;
    message: string;
  }
  type Callback<T> = (error: RequestError | null, value?: T) => void;
  type TransportName = 'sse' | 'long-poll';

  interface Options {
    baseUrl?: string;
    token?: string | null;
    session?: 'auto' | 'cookie' | 'token';
    transport?: 'auto' | 'long-poll';
    withCredentials?: boolean;
    openTimeoutMs?: number;
    maxStreamFailures?: number;
    streamRetryMs?: number;
    streamRetryMaxMs?: number;
    reconnectBaseMs?: number;
    reconnectMaxMs?: number;
    pollTimeoutSeconds?: number;
    requestTimeoutMs?: number;
    acknowledgeAttempts?: number;
    typingRenewMs?: number;
    typingIdleMs?: number;
    typingExpiryMs?: number;
    acknowledgeDelivery?: boolean;
    deliveredDelayMs?: number;
    tabs?: boolean;
    leaseMs?: number;
    outboxStaleMs?: number;
    storage?: unknown;
    XMLHttpRequest?: unknown;
    EventSource?: unknown;
    BroadcastChannel?: unknown;
  }

  /** A message in the outbox: written, not yet stored by the server. */
  interface PendingMessage {
    clientId: string;
    threadId: string;
    body: string;
    replyTo: string | null;
    /** When it was written (ms since the epoch). */
    at: number;
  }

  class Client {
    constructor(options?: Options);
    readonly options: Required<Options>;
    token: string | null;
    session: 'cookie' | 'token';
    user: User | null;
    lastEventId: string | null;
    transport: TransportName | null;
    state: 'connecting' | 'open' | 'reconnecting' | 'closed';
    role: 'leader' | 'follower' | null;
    on(type: string, listener: (data: any) => void): this;
    once(type: string, listener: (data: any) => void): this;
    off(type: string, listener: (data: any) => void): this;
    register(username: string, password: string, displayName: string | null, callback: Callback<User>): void;
    login(username: string, password: string, callback: Callback<User>): void;
    useToken(token: string, callback: Callback<User>): void;
    restore(callback: (error: RequestError | null, user: User | null) => void): void;
    logout(callback?: (error: RequestError | null) => void): void;
    listThreads(callback: Callback<Thread[]>): void;
    getThread(threadId: string, callback: Callback<Thread>): void;
    createThread(memberIds: string[], title: string | null, callback: Callback<Thread>): void;
    listRequests(callback: Callback<Thread[]>): void;
    acceptThread(threadId: string, callback?: Callback<Thread>): void;
    leaveThread(threadId: string, callback?: (error: RequestError | null) => void): void;
    block(userId: string, blocked: boolean, callback?: (error: RequestError | null) => void): void;
    findUser(username: string, callback: Callback<User | null>): void;
    findUsers(query: string, callback: Callback<User[]>): void;
    listMessages(threadId: string, page: { before?: number; after?: number; limit?: number } | null, callback: Callback<{ messages: Message[]; hasMore: boolean }>): void;
    search(query: string, options: { threadId?: string; limit?: number; before?: string } | null, callback: Callback<{ results: SearchResult[]; hasMore: boolean }>): void;
    send(threadId: string, body: string, callback?: Callback<Message>): string;
    send(threadId: string, body: string, options: { replyTo?: string } | null, callback?: Callback<Message>): string;
    pending(threadId?: string): PendingMessage[];
    editMessage(threadId: string, messageId: string, body: string, callback?: Callback<Message>): void;
    deleteMessage(threadId: string, messageId: string, callback?: (error: RequestError | null) => void): void;
    react(threadId: string, messageId: string, emoji: string, callback?: Callback<Message>): void;
    unreact(threadId: string, messageId: string, emoji: string, callback?: Callback<Message>): void;
    delivered(threadId: string, messageId: string, callback?: (error: RequestError | null) => void): void;
    typing(threadId: string): void;
    stopTyping(threadId: string): void;
    seen(threadId: string, messageId: string, callback?: (error: RequestError | null) => void): void;
    presence(userIds: string[], callback: Callback<Array<{ userId: string; online: boolean }>>): void;
    connect(ready?: () => void): void;
    disconnect(): void;
    streamUrl(): string;
  }

  const EVENT_TYPES: string[];
  const DEFAULTS: Required<Options>;
}

export = Postline;
