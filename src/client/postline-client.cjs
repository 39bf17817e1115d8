/*!
 * postline-client: the browser client of postline, served at /client.js.
 *
 * ES5 only, XMLHttpRequest, callbacks and events (no Promise, no fetch), so that it runs in IE11
 * and old Android browsers. A UMD module: a <script> defines the global `Postline`; CommonJS
 * `require` and ESM `import` (of this .cjs file) get the same object.
 *
 *   var client = new Postline.Client({ baseUrl: '' });
 *   client.login('alice', 'wonderland', function (error, user) {
 *     client.on('message.created', function (envelope) { ... });
 *     client.connect(function () { client.listThreads(function (error, threads) { ... }); });
 *   });
 *
 * Delivery: EventSource when there is one; long-poll when there is none, when a stream does not
 * open within a few seconds (a buffering proxy or antivirus holds it), or when streams keep
 * failing. Either way the client keeps the last durable event id, resumes after it on every
 * reconnect (exponential backoff with jitter), drops events it already has, and on `reset`
 * refetches the thread list over REST.
 */
(function (root, factory) {
  if (typeof module === 'object' && module.exports) module.exports = factory();
  else root.Postline = factory();
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  /** The event types of the contract; the SSE stream names each frame after its type. */
  var EVENT_TYPES = [
    'message.created',
    'message.updated',
    'message.deleted',
    'reaction.added',
    'reaction.removed',
    'thread.updated',
    'thread.removed',
    'seen',
    'delivered',
    'typing',
    'presence',
    'reset'
  ];

  /**
   * The server announces typing:true at most once per 2 s per thread and user
   * (sql/009_abuse_and_privacy.sql); this much, with a margin for the network, is waited after ours.
   */
  var TYPING_REPEAT_MS = 2250;

  var DEFAULTS = {
    /** Where the API lives; '' is this page's origin. */
    baseUrl: '',
    /** A token to use instead of logging in. */
    token: null,
    /** 'auto' (EventSource while it works, else long-poll) or 'long-poll'. */
    transport: 'auto',
    /** Send cookies on cross-origin calls (the server must list this origin in POSTLINE_CORS_ORIGINS). */
    withCredentials: false,
    /** A stream that has not opened by then is held by something in between: use long-poll. */
    openTimeoutMs: 5000,
    /** This many streams in a row that fail before living healthyStreamMs: use long-poll. */
    maxStreamFailures: 4,
    healthyStreamMs: 5000,
    /** Reconnect delays: reconnectBaseMs doubling per failure up to reconnectMaxMs, times 0.5-1 (jitter). */
    reconnectBaseMs: 1000,
    reconnectMaxMs: 30000,
    /** How long one long-poll waits on the server (the contract's default; below common 30 s proxy cuts). */
    pollTimeoutSeconds: 20,
    /** Timeout of ordinary REST calls. */
    requestTimeoutMs: 15000,
    /** Attempts of one send (network failures, 429 and 5xx are retried with the same clientId). */
    sendAttempts: 8,
    /** While typing, typing:true is re-sent this often; after typingIdleMs without a keystroke, typing:false. */
    typingRenewMs: 3000,
    typingIdleMs: 3000,
    /** Others' typing:true counts this long without renewal. */
    typingExpiryMs: 6000,
    /**
     * Tell the server which messages of others reached us (the senders' ✓✓ delivered), by itself:
     * what arrives as events, in message pages and as threads' last messages. One request per
     * thread at most every deliveredDelayMs, for the newest message received there.
     */
    acknowledgeDelivery: true,
    deliveredDelayMs: 1000,
    /** Constructors to use instead of the globals (tests, non-browser hosts). */
    XMLHttpRequest: null,
    EventSource: null
  };

  function extend(target, source) {
    for (var key in source) if (Object.prototype.hasOwnProperty.call(source, key)) target[key] = source[key];
    return target;
  }

  function now() {
    return new Date().getTime();
  }

  /** Exponential backoff with jitter, so that clients cut off together do not return together. */
  function backoffMs(options, failures) {
    var ms = Math.min(options.reconnectMaxMs, options.reconnectBaseMs * Math.pow(2, Math.max(0, failures - 1)));
    return Math.round(ms * (0.5 + Math.random() * 0.5));
  }

  /** Compare two decimal id strings (ids may exceed 2^53, so never as numbers). */
  function compareIds(a, b) {
    if (a.length !== b.length) return a.length - b.length;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  var clientIdCounter = 0;
  /** An idempotency key for one message: unique enough per sender and thread. */
  function newClientId() {
    clientIdCounter += 1;
    return 'c' + now().toString(36) + '-' + Math.random().toString(36).slice(2, 10) + '-' + clientIdCounter.toString(36);
  }

  function queryString(params) {
    var parts = [];
    for (var key in params) {
      if (Object.prototype.hasOwnProperty.call(params, key) && params[key] !== undefined && params[key] !== null) {
        parts.push(encodeURIComponent(key) + '=' + encodeURIComponent(params[key]));
      }
    }
    return parts.length ? '?' + parts.join('&') : '';
  }

  function isSameOrigin(baseUrl) {
    if (baseUrl === '') return true;
    if (typeof location === 'undefined') return false;
    var origin = location.protocol + '//' + location.host;
    return baseUrl === origin || baseUrl.indexOf(origin + '/') === 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Events

  function Emitter() {
    this.listeners = {};
  }

  /** Call `listener(data)` on every `type` event. */
  Emitter.prototype.on = function (type, listener) {
    (this.listeners[type] = this.listeners[type] || []).push(listener);
    return this;
  };

  /** Call `listener(data)` on the next `type` event only. */
  Emitter.prototype.once = function (type, listener) {
    var self = this;
    function wrapper(data) {
      self.off(type, wrapper);
      listener.call(self, data);
    }
    return this.on(type, wrapper);
  };

  Emitter.prototype.off = function (type, listener) {
    var list = this.listeners[type] || [];
    for (var i = 0; i < list.length; i++) {
      if (list[i] === listener) {
        list.splice(i, 1);
        break;
      }
    }
    return this;
  };

  Emitter.prototype.emit = function (type, data) {
    var list = (this.listeners[type] || []).slice();
    for (var i = 0; i < list.length; i++) list[i].call(this, data);
  };

  // ---------------------------------------------------------------------------------------------
  // Transports: each one delivers envelopes to client.receive() and reports to the client.

  /** What both transports share: the client, a retry timer, a failure count, and stopping. */
  function Transport(client) {
    this.client = client;
    this.timer = null;
    this.failures = 0;
    this.stopped = false;
  }

  /** Start again after `delayMs`; meanwhile the client is reconnecting. */
  Transport.prototype.retryLater = function (delayMs) {
    var self = this;
    this.client.setState('reconnecting');
    this.timer = setTimeout(function () {
      self.start();
    }, delayMs);
  };

  Transport.prototype.stop = function () {
    this.stopped = true;
    clearTimeout(this.timer);
    this.close();
  };

  /** Server-Sent Events through EventSource (native, or a polyfill installed as window.EventSource). */
  function SseTransport(client, EventSourceImpl) {
    Transport.call(this, client);
    this.EventSourceImpl = EventSourceImpl;
    this.source = null;
  }

  SseTransport.prototype = Object.create(Transport.prototype);
  SseTransport.prototype.name = 'sse';

  SseTransport.prototype.start = function () {
    var self = this;
    var client = this.client;
    var options = client.options;
    var source = new this.EventSourceImpl(client.streamUrl(), { withCredentials: options.withCredentials });
    var openedAt = 0;
    this.source = source;
    this.timer = setTimeout(function () {
      // No answer at all: a proxy or antivirus holds the stream until it has seen more bytes.
      self.stop();
      client.fallBack('the stream did not open within ' + options.openTimeoutMs + ' ms');
    }, options.openTimeoutMs);

    source.onopen = function () {
      clearTimeout(self.timer);
      openedAt = now();
      client.setState('open');
    };
    source.onerror = function () {
      if (self.stopped) return;
      clearTimeout(self.timer);
      // EventSource would reconnect by itself, without jitter; we reconnect with backoff instead.
      source.close();
      var healthy = openedAt > 0 && now() - openedAt >= options.healthyStreamMs;
      self.failures = healthy ? 1 : self.failures + 1;
      if (self.failures >= options.maxStreamFailures) {
        self.stop();
        client.fallBack('streams keep failing');
        return;
      }
      self.retryLater(backoffMs(options, self.failures));
    };
    var onEvent = function (event) {
      client.receive(JSON.parse(event.data));
    };
    for (var i = 0; i < EVENT_TYPES.length; i++) source.addEventListener(EVENT_TYPES[i], onEvent, false);
  };

  SseTransport.prototype.close = function () {
    if (this.source) this.source.close();
  };

  /** Long-polling over XMLHttpRequest: one waiting GET /v1/poll at a time, carrying the cursor. */
  function PollTransport(client) {
    Transport.call(this, client);
    this.xhr = null;
  }

  PollTransport.prototype = Object.create(Transport.prototype);
  PollTransport.prototype.name = 'long-poll';

  PollTransport.prototype.start = function () {
    var self = this;
    var client = this.client;
    var seconds = client.options.pollTimeoutSeconds;
    var path = '/v1/poll' + queryString({ cursor: client.lastEventId, timeout: seconds });
    // A poll may wait for long: it is open while it waits, unless the last one failed.
    if (this.failures === 0) client.setState('open');
    this.xhr = client.request('GET', path, null, function (error, answer) {
      self.xhr = null;
      if (self.stopped) return;
      if (error) {
        if (error.status === 401) return client.unauthorized();
        self.failures += 1;
        self.retryLater(Math.max(error.retryAfterMs, backoffMs(client.options, self.failures)));
        return;
      }
      self.failures = 0;
      for (var i = 0; i < answer.events.length; i++) client.receive(answer.events[i]);
      // The server's cursor may move past events this user cannot see: it is the resume point.
      client.lastEventId = answer.cursor;
      self.start();
    }, (seconds + 15) * 1000);
  };

  PollTransport.prototype.close = function () {
    if (this.xhr) this.xhr.abort();
  };

  // ---------------------------------------------------------------------------------------------
  // The client

  /**
   * A postline client. `options` override DEFAULTS (baseUrl '', transport 'auto', openTimeoutMs
   * 5000, maxStreamFailures 4, pollTimeoutSeconds 20, sendAttempts 8, typingRenewMs 3000,
   * typingIdleMs 3000, typingExpiryMs 6000, acknowledgeDelivery true, deliveredDelayMs 1000, …).
   *
   * Events: every envelope type ('message.created', 'message.updated', 'message.deleted',
   * 'reaction.added', 'reaction.removed', 'thread.updated', 'thread.removed', 'seen', 'delivered',
   * 'typing', 'presence') with the envelope; 'event' for each of them; 'reset' with
   * {reason, threads} after a refetch; 'typing' also with data.typing false and `expired: true`
   * when someone's typing ran out; 'transport' ('sse' | 'long-poll'); 'state' ('connecting',
   * 'open', 'reconnecting', 'closed'); 'fallback' (reason); 'unauthorized'.
   */
  function Client(options) {
    Emitter.call(this);
    this.options = extend(extend({}, DEFAULTS), options || {});
    this.baseUrl = String(this.options.baseUrl || '').replace(/\/+$/, '');
    this.token = this.options.token || null;
    /** The signed-in user, once known. */
    this.user = null;
    /** The last durable event id received (or the poll cursor): where every reconnect resumes. */
    this.lastEventId = null;
    /** 'sse', 'long-poll' or null. */
    this.transport = null;
    this.state = 'closed';
    // Same-origin pages that signed in through us hold the HttpOnly session cookie, which the
    // stream endpoints accept: the token then stays out of URLs (and proxies' logs).
    this.cookieSession = false;
    this.connection = null;
    this.connecting = false;
    this.ownTyping = {};
    /** threadId -> when we last said typing:true there (the server's 2-second rule counts from it). */
    this.typingSaidAt = {};
    this.othersTyping = {};
    /** threadId -> seq our delivered marker is known to be at; threadId -> {id, seq} still to acknowledge. */
    this.deliveredSeq = {};
    this.undelivered = {};
    this.deliveredTimer = null;
  }

  Client.prototype = Object.create(Emitter.prototype);
  Client.prototype.constructor = Client;

  /**
   * One JSON call: callback(error, body, xhr). `error` is null for 2xx, else {status, problem,
   * retryAfterMs, message}; status 0 means the network failed or the call timed out.
   * Returns the XMLHttpRequest (abort() ends it: the callback gets status 0).
   */
  Client.prototype.request = function (method, path, body, callback, timeoutMs) {
    var Xhr = this.options.XMLHttpRequest || XMLHttpRequest;
    var xhr = new Xhr();
    var finished = false;
    xhr.open(method, this.baseUrl + path, true);
    xhr.timeout = timeoutMs || this.options.requestTimeoutMs;
    if (this.options.withCredentials) xhr.withCredentials = true;
    xhr.setRequestHeader('Accept', 'application/json');
    if (this.token) xhr.setRequestHeader('Authorization', 'Bearer ' + this.token);
    if (body) xhr.setRequestHeader('Content-Type', 'application/json');
    function finish() {
      if (finished) return;
      finished = true;
      var data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch (ignored) {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) return callback(null, data, xhr);
      var retryAfter = Number(xhr.status ? xhr.getResponseHeader('Retry-After') : 0) || 0;
      callback(
        {
          status: xhr.status,
          problem: data,
          retryAfterMs: retryAfter * 1000,
          message: data && data.detail ? data.detail : xhr.status ? 'HTTP ' + xhr.status : 'network failure'
        },
        null,
        xhr
      );
    }
    xhr.onreadystatechange = function () {
      if (xhr.readyState === 4) finish();
    };
    xhr.ontimeout = finish;
    xhr.send(body ? JSON.stringify(body) : null);
    return xhr;
  };

  /** The URL of the SSE stream, resuming after lastEventId, with ?access_token only when no cookie can serve. */
  Client.prototype.streamUrl = function () {
    return (
      this.baseUrl +
      '/v1/events' +
      queryString({
        since: this.lastEventId,
        access_token: this.cookieSession ? null : this.token
      })
    );
  };

  Client.prototype.startSession = function (path, body, callback) {
    var self = this;
    this.request('POST', path, body, function (error, answer) {
      if (error) return callback(error);
      self.token = answer.token;
      self.user = answer.user;
      self.cookieSession = isSameOrigin(self.baseUrl) || self.options.withCredentials;
      callback(null, answer.user);
    });
  };

  /** Create an account and sign in: callback(error, user). displayName may be null. */
  Client.prototype.register = function (username, password, displayName, callback) {
    var body = { username: username, password: password };
    if (displayName) body.displayName = displayName;
    this.startSession('/v1/users', body, callback);
  };

  /** Sign in: callback(error, user). */
  Client.prototype.login = function (username, password, callback) {
    this.startSession('/v1/sessions', { username: username, password: password }, callback);
  };

  /** Use a token obtained elsewhere: callback(error, user) once it is checked. */
  Client.prototype.useToken = function (token, callback) {
    var self = this;
    this.token = token;
    this.cookieSession = false;
    this.request('GET', '/v1/me', null, function (error, answer) {
      if (error) return callback(error);
      self.user = answer.user;
      callback(null, answer.user);
    });
  };

  /** End the session on the server (the token stops working everywhere) and disconnect. */
  Client.prototype.logout = function (callback) {
    var self = this;
    this.disconnect();
    // The next user starts from "now", not from this user's place in the log.
    this.lastEventId = null;
    this.deliveredSeq = {};
    this.request('DELETE', '/v1/sessions/current', null, function (error) {
      self.token = null;
      self.user = null;
      self.cookieSession = false;
      if (callback) callback(error);
    });
  };

  /** callback(error, threads): newest activity first, each with lastMessage, unreadCount and receipts. */
  Client.prototype.listThreads = function (callback) {
    var self = this;
    this.request('GET', '/v1/threads', null, function (error, answer) {
      if (answer) for (var i = 0; i < answer.threads.length; i++) self.receivedThread(answer.threads[i]);
      callback(error, answer && answer.threads);
    });
  };

  Client.prototype.getThread = function (threadId, callback) {
    var self = this;
    this.request('GET', '/v1/threads/' + encodeURIComponent(threadId), null, function (error, answer) {
      if (answer) self.receivedThread(answer.thread);
      callback(error, answer && answer.thread);
    });
  };

  /** Start a thread with `memberIds` (one id and no title: the direct thread with that user). */
  Client.prototype.createThread = function (memberIds, title, callback) {
    var body = { members: memberIds };
    if (title) body.title = title;
    this.request('POST', '/v1/threads', body, function (error, answer) {
      callback(error, answer && answer.thread);
    });
  };

  /**
   * callback(error, threads): the threads that are requests for us (someone we share no accepted
   * thread with started them or added us), listed apart from listThreads'. A thread is one when
   * its `pending` holds our id.
   */
  Client.prototype.listRequests = function (callback) {
    var self = this;
    this.request('GET', '/v1/threads' + queryString({ requests: 'true' }), null, function (error, answer) {
      if (answer) for (var i = 0; i < answer.threads.length; i++) self.receivedThread(answer.threads[i]);
      callback(error, answer && answer.threads);
    });
  };

  /** Accept a request: presence, typing and pushes between us and its members from now on (sending in it accepts it too). */
  Client.prototype.acceptThread = function (threadId, callback) {
    this.request('POST', '/v1/threads/' + encodeURIComponent(threadId) + '/accept', null, function (error, answer) {
      if (callback) callback(error, answer && answer.thread);
    });
  };

  /** Leave a thread (a direct one too: that is how a request is declined). */
  Client.prototype.leaveThread = function (threadId, callback) {
    var path = '/v1/threads/' + encodeURIComponent(threadId) + '/members/' + encodeURIComponent(this.user.id);
    this.request('DELETE', path, null, function (error) {
      if (callback) callback(error);
    });
  };

  /** Block (`blocked` true) or unblock a user: a blocked user cannot add us to threads or message us in a direct thread, and presence and typing stop both ways. */
  Client.prototype.block = function (userId, blocked, callback) {
    this.request(blocked ? 'POST' : 'DELETE', '/v1/users/' + encodeURIComponent(userId) + '/block', null, function (error) {
      if (callback) callback(error);
    });
  };

  /** callback(error, user or null) for an exact username. */
  Client.prototype.findUser = function (username, callback) {
    this.request('GET', '/v1/users' + queryString({ username: username }), null, function (error, answer) {
      callback(error, answer && answer.users.length ? answer.users[0] : null);
    });
  };

  /**
   * callback(error, users): at most 20 whose username starts with `query`, or whose display name
   * has words starting with its words (case- and accent-insensitive); the exact username first.
   */
  Client.prototype.findUsers = function (query, callback) {
    this.request('GET', '/v1/users' + queryString({ q: query }), null, function (error, answer) {
      callback(error, answer && answer.users);
    });
  };

  /** callback(error, {messages, hasMore}); `page` may hold before, after, limit (default 50). */
  Client.prototype.listMessages = function (threadId, page, callback) {
    var self = this;
    var path = '/v1/threads/' + encodeURIComponent(threadId) + '/messages' + queryString(page || {});
    this.request('GET', path, null, function (error, answer, xhr) {
      if (answer) for (var i = 0; i < answer.messages.length; i++) self.receivedMessage(answer.messages[i]);
      callback(error, answer, xhr);
    });
  };

  /**
   * Full-text search of the messages of our threads: callback(error, {results: [{message,
   * snippet}], hasMore}), newest first. `options` may hold threadId, limit (1-50, default 20) and
   * before (the last result's message id, for the next page). A snippet is HTML-escaped text whose
   * only markup is <mark>…</mark> around the matches.
   */
  Client.prototype.search = function (query, options, callback) {
    var params = extend({ q: query }, options || {});
    this.request('GET', '/v1/search' + queryString(params), null, callback);
  };

  /** The path of a message, or of something under it. */
  function messagePath(threadId, messageId, rest) {
    return '/v1/threads/' + encodeURIComponent(threadId) + '/messages/' + encodeURIComponent(messageId) + (rest || '');
  }

  /**
   * Send a message: callback(error, message). `options` may hold replyTo (the id of a message of
   * the thread this one answers); it may be left out: send(threadId, body, callback). Network
   * failures, 429 and 5xx answers are retried (with backoff) under the same clientId, so the
   * server stores it once. Returns the clientId.
   */
  Client.prototype.send = function (threadId, body, options, callback) {
    var self = this;
    var clientId = newClientId();
    var attempts = 0;
    if (typeof options === 'function') {
      callback = options;
      options = null;
    }
    var payload = { body: body, clientId: clientId };
    if (options && options.replyTo) payload.replyTo = options.replyTo;
    this.stopTyping(threadId);
    function attempt() {
      attempts += 1;
      self.request('POST', '/v1/threads/' + encodeURIComponent(threadId) + '/messages', payload, function (error, answer) {
        var retryable = error && (error.status === 0 || error.status === 429 || error.status >= 500);
        if (retryable && attempts < self.options.sendAttempts) {
          setTimeout(attempt, Math.max(error.retryAfterMs, backoffMs(self.options, attempts)));
          return;
        }
        if (callback) callback(error, answer && answer.message);
      });
    }
    attempt();
    return clientId;
  };

  Client.prototype.postTyping = function (threadId, typing) {
    this.request('POST', '/v1/threads/' + encodeURIComponent(threadId) + '/typing', { typing: typing }, function () {
      // Typing is a hint: a lost one is renewed by the next keystroke or expires on the other side.
    });
  };

  /**
   * Call on every keystroke: sends typing:true at once and again every typingRenewMs while the
   * keystrokes go on, and typing:false after typingIdleMs without one. The server announces at
   * most one typing:true per TYPING_REPEAT_MS in a thread, so one that would come sooner after
   * the last (typing on right after sending) waits until it would be announced.
   */
  Client.prototype.typing = function (threadId) {
    var self = this;
    var state = this.ownTyping[threadId] || (this.ownTyping[threadId] = { sentAt: 0, idle: null, soon: null });
    if (now() - state.sentAt >= this.options.typingRenewMs && !state.soon) {
      var wait = TYPING_REPEAT_MS - (now() - (this.typingSaidAt[threadId] || 0));
      if (wait <= 0) this.sayTyping(threadId, state);
      else {
        state.soon = setTimeout(function () {
          state.soon = null;
          self.sayTyping(threadId, state);
        }, wait);
      }
    }
    clearTimeout(state.idle);
    state.idle = setTimeout(function () {
      self.stopTyping(threadId);
    }, this.options.typingIdleMs);
  };

  Client.prototype.sayTyping = function (threadId, state) {
    state.sentAt = now();
    this.typingSaidAt[threadId] = state.sentAt;
    this.postTyping(threadId, true);
  };

  /** Say typing:false now, if typing:true was said (sending a message does this). */
  Client.prototype.stopTyping = function (threadId) {
    var state = this.ownTyping[threadId];
    if (!state) return;
    clearTimeout(state.idle);
    clearTimeout(state.soon);
    delete this.ownTyping[threadId];
    if (state.sentAt) this.postTyping(threadId, false);
  };

  /** Change the text of our message: callback(error, message), which then has editedAt. */
  Client.prototype.editMessage = function (threadId, messageId, body, callback) {
    this.request('PATCH', messagePath(threadId, messageId), { body: body }, function (error, answer) {
      if (callback) callback(error, answer && answer.message);
    });
  };

  /** Delete our message (it stays as a tombstone without text): callback(error). */
  Client.prototype.deleteMessage = function (threadId, messageId, callback) {
    this.request('DELETE', messagePath(threadId, messageId), null, function (error) {
      if (callback) callback(error);
    });
  };

  /** Add our reaction `emoji` to a message (again: no change): callback(error, message). */
  Client.prototype.react = function (threadId, messageId, emoji, callback) {
    this.setReaction('PUT', threadId, messageId, emoji, callback);
  };

  /** Take back our reaction `emoji`: callback(error, message). */
  Client.prototype.unreact = function (threadId, messageId, emoji, callback) {
    this.setReaction('DELETE', threadId, messageId, emoji, callback);
  };

  Client.prototype.setReaction = function (method, threadId, messageId, emoji, callback) {
    this.request(method, messagePath(threadId, messageId, '/reactions/' + encodeURIComponent(emoji)), null, function (error, answer) {
      if (callback) callback(error, answer && answer.message);
    });
  };

  /** Move the read marker of `threadId` up to `messageId` (never back). */
  Client.prototype.seen = function (threadId, messageId, callback) {
    this.postMarker('seen', threadId, messageId, callback);
  };

  /**
   * Move the delivered marker of `threadId` up to `messageId` (never back). The client does this
   * by itself for what it receives (acknowledgeDelivery); call it for messages it cannot see.
   */
  Client.prototype.delivered = function (threadId, messageId, callback) {
    this.postMarker('delivered', threadId, messageId, callback);
  };

  Client.prototype.postMarker = function (marker, threadId, messageId, callback) {
    this.request('POST', '/v1/threads/' + encodeURIComponent(threadId) + '/' + marker, { upTo: messageId }, function (error) {
      if (callback) callback(error);
    });
  };

  /** callback(error, [{userId, online}]) for users who share a thread with us (others are left out). */
  Client.prototype.presence = function (userIds, callback) {
    if (userIds.length === 0) return callback(null, []);
    this.request('GET', '/v1/presence' + queryString({ userIds: userIds.join(',') }), null, function (error, answer) {
      callback(error, answer && answer.presence);
    });
  };

  /** A thread arrived (REST): learn where our delivered marker is, and acknowledge its last message. */
  Client.prototype.receivedThread = function (thread) {
    var receipts = thread.receipts || [];
    for (var i = 0; i < receipts.length; i++) {
      if (this.user && receipts[i].userId === this.user.id) {
        this.deliveredSeq[thread.id] = Math.max(this.deliveredSeq[thread.id] || 0, receipts[i].deliveredSeq);
      }
    }
    if (thread.lastMessage) this.receivedMessage(thread.lastMessage);
  };

  /**
   * A message of someone else arrived: acknowledge it, together with whatever else arrives in the
   * next deliveredDelayMs (only the newest per thread is sent: the marker covers all before it).
   */
  Client.prototype.receivedMessage = function (message) {
    if (!this.options.acknowledgeDelivery || !this.user || message.senderId === this.user.id) return;
    this.queueDelivered(message.threadId, { id: message.id, seq: message.seq, attempts: 0 });
  };

  Client.prototype.queueDelivered = function (threadId, pending) {
    var self = this;
    var queued = this.undelivered[threadId];
    if (pending.seq <= (this.deliveredSeq[threadId] || 0) || (queued && pending.seq <= queued.seq)) return;
    this.undelivered[threadId] = pending;
    if (this.deliveredTimer !== null) return;
    this.deliveredTimer = setTimeout(function () {
      self.deliveredTimer = null;
      var due = self.undelivered;
      self.undelivered = {};
      for (var id in due) if (Object.prototype.hasOwnProperty.call(due, id)) self.acknowledge(id, due[id]);
    }, this.options.deliveredDelayMs * Math.pow(2, pending.attempts));
  };

  /** Send one acknowledgement; one that fails on the network or the server goes again (backoff, sendAttempts in all). */
  Client.prototype.acknowledge = function (threadId, pending) {
    var self = this;
    this.delivered(threadId, pending.id, function (error) {
      if (!error) {
        self.deliveredSeq[threadId] = Math.max(self.deliveredSeq[threadId] || 0, pending.seq);
        return;
      }
      var retryable = error.status === 0 || error.status === 429 || error.status >= 500;
      if (retryable && pending.attempts + 1 < self.options.sendAttempts) {
        self.queueDelivered(threadId, { id: pending.id, seq: pending.seq, attempts: pending.attempts + 1 });
      }
    });
  };

  /**
   * Start real-time delivery. `ready()` is called once the resume point is known: state fetched
   * over REST after it misses nothing, since every later event will be delivered.
   */
  Client.prototype.connect = function (ready) {
    var self = this;
    if (this.connection || this.connecting) return;
    this.connecting = true;
    this.setState('connecting');
    this.learnHead(function () {
      self.connecting = false;
      if (ready) ready();
      var EventSourceImpl = self.options.EventSource || (typeof EventSource !== 'undefined' ? EventSource : null);
      var useSse = self.options.transport !== 'long-poll' && EventSourceImpl;
      self.useTransport(useSse ? new SseTransport(self, EventSourceImpl) : new PollTransport(self));
    });
  };

  /** A poll without a cursor answers at once with "now": the first resume point. */
  Client.prototype.learnHead = function (then) {
    var self = this;
    var failures = 0;
    if (this.lastEventId !== null) return then();
    (function ask() {
      self.request('GET', '/v1/poll', null, function (error, answer) {
        if (!self.connecting) return;
        if (!error) {
          self.lastEventId = answer.cursor;
          return then();
        }
        if (error.status === 401) return self.unauthorized();
        failures += 1;
        self.setState('reconnecting');
        setTimeout(ask, backoffMs(self.options, failures));
      });
    })();
  };

  Client.prototype.useTransport = function (transport) {
    this.connection = transport;
    this.transport = transport.name;
    this.emit('transport', transport.name);
    transport.start();
  };

  /** Called by the SSE transport when streams cannot work here: long-poll from now on. */
  Client.prototype.fallBack = function (reason) {
    this.emit('fallback', reason);
    this.useTransport(new PollTransport(this));
  };

  /**
   * Stop real-time delivery (connect() starts it again, resuming where it stopped). Pending
   * acknowledgements are dropped: the next listThreads acknowledges what is still unacknowledged.
   */
  Client.prototype.disconnect = function () {
    clearTimeout(this.deliveredTimer);
    this.deliveredTimer = null;
    this.undelivered = {};
    this.connecting = false;
    if (this.connection) this.connection.stop();
    this.connection = null;
    this.transport = null;
    this.setState('closed');
  };

  Client.prototype.unauthorized = function () {
    this.disconnect();
    this.emit('unauthorized');
  };

  Client.prototype.setState = function (state) {
    if (state === this.state) return;
    this.state = state;
    this.emit('state', state);
  };

  /** Take one envelope from a transport: drop what we already have, then emit it. */
  Client.prototype.receive = function (envelope) {
    if (envelope.id !== undefined) {
      if (this.lastEventId !== null && compareIds(envelope.id, this.lastEventId) <= 0) return;
      this.lastEventId = envelope.id;
    }
    if (envelope.type === 'reset') return this.resync(envelope);
    if (envelope.type === 'typing') this.trackTyping(envelope);
    if (envelope.type === 'message.created') this.receivedMessage(envelope.data);
    this.emit(envelope.type, envelope);
    this.emit('event', envelope);
  };

  /**
   * `reset`: the server did not know our resume point (too old, or ahead of its log); the stream
   * goes on from now. Accept whatever id comes next, and refetch the state over REST.
   */
  Client.prototype.resync = function (envelope) {
    var self = this;
    this.lastEventId = null;
    this.listThreads(function (error, threads) {
      self.emit('reset', { reason: envelope.data.reason, threads: error ? null : threads });
    });
  };

  /** Others' typing:true lapses after typingExpiryMs without renewal: say so with typing:false. */
  Client.prototype.trackTyping = function (envelope) {
    var self = this;
    var key = envelope.threadId + ' ' + envelope.data.userId;
    clearTimeout(this.othersTyping[key]);
    delete this.othersTyping[key];
    if (!envelope.data.typing) return;
    this.othersTyping[key] = setTimeout(function () {
      delete self.othersTyping[key];
      self.emit('typing', {
        type: 'typing',
        threadId: envelope.threadId,
        at: new Date().toISOString(),
        data: { userId: envelope.data.userId, typing: false },
        expired: true
      });
    }, this.options.typingExpiryMs);
  };

  return { Client: Client, EVENT_TYPES: EVENT_TYPES, DEFAULTS: DEFAULTS };
});
