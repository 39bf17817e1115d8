/*!
 * postline-client: the browser client of postline, served at /client.js.
 *
 * ES5 only, XMLHttpRequest, callbacks and events (no Promise, no fetch), so that it runs in IE11
 * and old Android browsers. A UMD module: a <script> defines the global `Postline`; CommonJS
 * `require` and ESM `import` (of this .cjs file) get the same object.
 *
 *   var client = new Postline.Client({ baseUrl: '' });
 *   client.restore(function (error, user) {          // a session of this browser, or null
 *     if (!user) return client.login('alice', 'wonderland', start);
 *     start(null, user);
 *   });
 *   function start(error, user) {
 *     client.on('message.created', function (envelope) { ... });
 *     client.connect(function () { client.listThreads(function (error, threads) { ... }); });
 *   }
 *
 * Session: a page on the API's origin (or with withCredentials) keeps its session in the HttpOnly
 * cookie, which no script can read, and restores it after a reload; otherwise a token.
 * Tabs: the tabs of one origin and user elect one of them to hold the stream and relay its events
 * to the others (BroadcastChannel, else `storage` events), so that a browser's few connections per
 * host are not all taken by waiting streams. Delivery: EventSource when there is one; long-poll
 * when there is none, when a stream's first event does not arrive within a few seconds (a proxy or
 * antivirus holds it), or when streams keep failing before their first event, trying the stream
 * again now and then. Either way the client keeps the last durable event id, resumes after it on
 * every reconnect (exponential backoff with jitter), drops events it already has, and on `reset`
 * refetches the thread list over REST. Sending: messages wait in an outbox (localStorage, with
 * their clientId) until the server has them, in order, across failures and reloads.
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
   * (sql/008_abuse_and_privacy.sql); this much, with a margin for the network, is waited after ours.
   */
  var TYPING_REPEAT_MS = 2250;

  var DEFAULTS = {
    /** Where the API lives; '' is this page's origin. */
    baseUrl: '',
    /** A token to use instead of signing in (then the session is 'token'). */
    token: null,
    /**
     * 'cookie': the session is the HttpOnly cookie (each call sends Postline-Session: cookie);
     * 'token': a bearer token kept in memory; 'auto': 'cookie' on the API's origin or with
     * withCredentials, else 'token'.
     */
    session: 'auto',
    /** 'auto' (EventSource while it works, else long-poll) or 'long-poll'. */
    transport: 'auto',
    /** Send cookies on cross-origin calls (the server must list this origin in POSTLINE_CORS_ORIGINS). */
    withCredentials: false,
    /** A stream whose first event (`ready`) has not arrived by then is held by something in between: long-poll. */
    openTimeoutMs: 5000,
    /** This many streams in a row that end before their first event: long-poll. */
    maxStreamFailures: 4,
    /** On long-poll by fallback, try a stream again after this long, doubling per failed try, up to streamRetryMaxMs. */
    streamRetryMs: 15000,
    streamRetryMaxMs: 600000,
    /** Reconnect delays: reconnectBaseMs doubling per failure up to reconnectMaxMs, times 0.5-1 (jitter). */
    reconnectBaseMs: 1000,
    reconnectMaxMs: 30000,
    /** How long one long-poll waits on the server (the contract's default; below common 30 s proxy cuts). */
    pollTimeoutSeconds: 20,
    /** Timeout of ordinary REST calls. */
    requestTimeoutMs: 15000,
    /** Attempts of one delivered acknowledgement (messages themselves wait in the outbox until sent). */
    acknowledgeAttempts: 8,
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
    /** Share one connection among the tabs of this origin (needs localStorage). */
    tabs: true,
    /** A leading tab that has not renewed its lease for this long is replaced by another. */
    leaseMs: 3000,
    /** An outbox entry whose tab has not tried it for this long is taken over by the leading tab. */
    outboxStaleMs: 60000,
    /** Stand-ins for the globals (tests, non-browser hosts): localStorage, XMLHttpRequest, EventSource, BroadcastChannel. */
    storage: null,
    XMLHttpRequest: null,
    EventSource: null,
    BroadcastChannel: null
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

  function randomId() {
    return Math.random().toString(36).slice(2, 10);
  }

  var clientIdCounter = 0;
  /** An idempotency key for one message: unique enough per sender and thread. */
  function newClientId() {
    clientIdCounter += 1;
    return 'c' + now().toString(36) + '-' + randomId() + '-' + clientIdCounter.toString(36);
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

  var hasWindow = typeof window !== 'undefined' && typeof window.addEventListener === 'function';

  function listen(type, listener) {
    if (hasWindow) window.addEventListener(type, listener, false);
  }

  function unlisten(type, listener) {
    if (hasWindow) window.removeEventListener(type, listener, false);
  }

  /** The page's localStorage, if it works (private modes of old browsers throw on setItem). */
  function pageStorage() {
    try {
      var storage = hasWindow ? window.localStorage : null;
      if (!storage) return null;
      storage.setItem('postline:probe', '1');
      storage.removeItem('postline:probe');
      return storage;
    } catch (ignored) {
      return null;
    }
  }

  /** A Storage-like map in memory, for an outbox without localStorage (it lasts as long as the page). */
  function MemoryStorage() {
    this.items = {};
  }
  MemoryStorage.prototype.getItem = function (key) {
    return Object.prototype.hasOwnProperty.call(this.items, key) ? this.items[key] : null;
  };
  MemoryStorage.prototype.setItem = function (key, value) {
    this.items[key] = String(value);
  };
  MemoryStorage.prototype.removeItem = function (key) {
    delete this.items[key];
  };
  MemoryStorage.prototype.keys = function () {
    return Object.keys(this.items);
  };

  /** The keys of a Storage (or MemoryStorage) that start with `prefix`. */
  function keysWith(storage, prefix) {
    var keys = [];
    if (storage.keys) keys = storage.keys();
    else for (var i = 0; i < storage.length; i++) keys.push(storage.key(i));
    var found = [];
    for (var k = 0; k < keys.length; k++) if (keys[k] && keys[k].indexOf(prefix) === 0) found.push(keys[k]);
    return found;
  }

  function readJson(storage, key) {
    try {
      var text = storage.getItem(key);
      return text ? JSON.parse(text) : null;
    } catch (ignored) {
      return null;
    }
  }

  function writeJson(storage, key, value) {
    try {
      storage.setItem(key, JSON.stringify(value));
    } catch (ignored) {
      // Full or refused: the page goes on without it (an outbox entry still lives in memory).
    }
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
    this.waiting = false;
    this.failures = 0;
    this.stopped = false;
  }

  /** Start again after `delayMs`; meanwhile the client is reconnecting. */
  Transport.prototype.retryLater = function (delayMs) {
    var self = this;
    this.client.setState('reconnecting');
    this.waiting = true;
    this.timer = setTimeout(function () {
      self.waiting = false;
      self.start();
    }, delayMs);
  };

  /** The network is back (the browser says so): do not sit out the rest of a backoff. */
  Transport.prototype.retryNow = function () {
    if (this.stopped || !this.waiting) return;
    clearTimeout(this.timer);
    this.waiting = false;
    this.start();
  };

  Transport.prototype.stop = function () {
    this.stopped = true;
    clearTimeout(this.timer);
    this.close();
  };

  /**
   * Server-Sent Events through EventSource (native, or a polyfill installed as window.EventSource).
   * A stream counts as working once its first event, `ready`, has arrived: a proxy that passes the
   * head and holds the body opens the EventSource and delivers nothing. `probe` ({onReady, onFail}):
   * one try, for a client on long-poll that wants to know whether streams work again.
   */
  function SseTransport(client, EventSourceImpl, probe) {
    Transport.call(this, client);
    this.EventSourceImpl = EventSourceImpl;
    this.source = null;
    this.probe = probe || null;
    /** The current source has delivered its `ready` event. */
    this.live = false;
  }

  SseTransport.prototype = Object.create(Transport.prototype);
  SseTransport.prototype.name = 'sse';

  SseTransport.prototype.start = function () {
    var self = this;
    var client = this.client;
    var options = client.options;
    var source = new this.EventSourceImpl(client.streamUrl(), { withCredentials: options.withCredentials });
    var opened = false;
    this.source = source;
    this.live = false;
    this.timer = setTimeout(function () {
      source.close();
      self.giveUp(
        opened
          ? 'the stream opened but its first event did not arrive within ' + options.openTimeoutMs + ' ms'
          : 'the stream did not open within ' + options.openTimeoutMs + ' ms'
      );
    }, options.openTimeoutMs);

    source.onopen = function () {
      opened = true;
    };
    source.addEventListener(
      'ready',
      function (event) {
        if (self.stopped || self.source !== source) return;
        clearTimeout(self.timer);
        var ready = JSON.parse(event.data);
        if (client.user && ready.data.userId !== client.user.id) {
          // The cookie is someone else's now: never show their events here.
          self.stop();
          client.foreignStream(ready.data.userId);
          return;
        }
        self.live = true;
        self.failures = 0;
        var probe = self.probe;
        self.probe = null;
        if (probe) probe.onReady(self);
        client.setState('open');
      },
      false
    );
    source.onerror = function () {
      if (self.stopped || self.source !== source) return;
      clearTimeout(self.timer);
      // EventSource would reconnect by itself, without jitter; we reconnect with backoff instead.
      source.close();
      if (self.probe) return self.giveUp('the stream ended before its first event');
      // Only a stream that never delivered its first event counts against streams here: cuts of
      // working streams (a proxy reload, an instance going away) are ordinary reconnects.
      if (!self.live) self.failures += 1;
      if (self.failures >= options.maxStreamFailures) return self.giveUp(self.failures + ' streams in a row ended before their first event');
      self.retryLater(backoffMs(options, Math.max(1, self.failures)));
    };
    var onEvent = function (event) {
      if (self.source === source) client.receive(JSON.parse(event.data));
    };
    for (var i = 0; i < EVENT_TYPES.length; i++) source.addEventListener(EVENT_TYPES[i], onEvent, false);
  };

  /** Streams do not work here (for now): a probe says so to its caller, the transport to the client. */
  SseTransport.prototype.giveUp = function (reason) {
    var probe = this.probe;
    this.probe = null;
    this.stop();
    if (probe) probe.onFail(reason);
    else this.client.fallBack(reason);
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
  // Tabs: one connection per origin and user

  /**
   * The tabs of one origin and user share one stream (or poll): over HTTP/1.1 a browser opens
   * about 6 connections per host, and a stream in every tab would leave none for sending. The tabs
   * elect a leader with a lease in localStorage (renewed every leaseMs / 3; a tab that finds it
   * expired claims it and checks a moment later that its claim stood). The leader holds the
   * connection and relays each envelope it receives, once, to the others (BroadcastChannel where
   * the browser has it, else `storage` events, which IE11 has); the others send their own POSTs.
   * When the leader goes (its page closes, or it stops renewing), another tab takes over within a
   * lease and resumes from its own last event id: it has every event the leader relayed, and the
   * stream brings what came after, each once (ids it has are dropped).
   */
  function Tabs(client, storage, prefix) {
    var self = this;
    var BroadcastChannelImpl = client.options.BroadcastChannel || (typeof BroadcastChannel !== 'undefined' ? BroadcastChannel : null);
    this.client = client;
    this.storage = storage;
    this.id = client.tabId;
    this.leaseKey = prefix + 'leader';
    this.relayKey = prefix + 'relay';
    this.outboxPrefix = prefix + 'outbox:';
    this.channel = BroadcastChannelImpl ? new BroadcastChannelImpl(prefix + 'relay') : null;
    this.sent = 0;
    this.leading = false;
    this.timer = null;
    this.onMessage = function (event) {
      self.take(event.data);
    };
    this.onStorage = function (event) {
      if (event.key === self.relayKey && !self.channel && event.newValue) {
        var relayed = JSON.parse(event.newValue);
        if (relayed) self.take(relayed.payload);
      } else if (event.key === self.leaseKey && !event.newValue) {
        self.checkSoon();
      } else if (event.key && event.key.indexOf(self.outboxPrefix) === 0) {
        client.outboxChanged();
        // A page that went released its messages: the leader sends them.
        if (self.leading) client.outbox.kick();
      }
    };
    this.onLeave = function () {
      self.leave();
    };
  }

  /** Hear the other tabs (before the election, so that nothing relayed meanwhile is missed). */
  Tabs.prototype.listen = function () {
    if (this.channel) this.channel.onmessage = this.onMessage;
    listen('storage', this.onStorage);
    listen('pagehide', this.onLeave);
  };

  /** Take part in the election, and ask a leader, if there is one, to say how it is connected. */
  Tabs.prototype.elect = function () {
    var self = this;
    this.publish({ kind: 'hello' });
    this.check();
    this.timer = setInterval(function () {
      self.check();
    }, Math.max(100, Math.round(this.client.options.leaseMs / 3)));
  };

  Tabs.prototype.lease = function () {
    return readJson(this.storage, this.leaseKey);
  };

  Tabs.prototype.check = function () {
    var self = this;
    var lease = this.lease();
    var time = now();
    if (lease && lease.tab === this.id) {
      writeJson(this.storage, this.leaseKey, { tab: this.id, until: time + this.client.options.leaseMs });
      if (!this.leading) this.lead();
      // What a tab that died without a word left in the outbox goes out once it is stale.
      else this.client.outbox.kick();
      return;
    }
    if (lease && lease.until > time) {
      if (this.leading) this.follow();
      return;
    }
    // Vacant or run out: claim it, and lead only if the claim still stands a moment later (two
    // tabs that claimed at once: the last write won).
    writeJson(this.storage, this.leaseKey, { tab: this.id, until: time + this.client.options.leaseMs });
    setTimeout(function () {
      var claimed = self.lease();
      if (self.timer !== null && claimed && claimed.tab === self.id && !self.leading) self.lead();
    }, 30 + Math.round(Math.random() * 100));
  };

  Tabs.prototype.checkSoon = function () {
    var self = this;
    if (this.timer === null || this.leading) return;
    setTimeout(function () {
      if (self.timer !== null) self.check();
    }, Math.round(Math.random() * 100));
  };

  Tabs.prototype.lead = function () {
    this.leading = true;
    this.client.lead();
  };

  Tabs.prototype.follow = function () {
    this.leading = false;
    this.client.follow();
  };

  /** Send `message` to the other tabs. */
  Tabs.prototype.publish = function (message) {
    var payload = { from: this.id, message: message };
    if (this.channel) this.channel.postMessage(payload);
    else writeJson(this.storage, this.relayKey, { n: (this.sent += 1), payload: payload });
  };

  Tabs.prototype.take = function (payload) {
    // IE fires `storage` events in the tab that wrote, too.
    if (!payload || payload.from === this.id) return;
    var message = payload.message;
    if (message.kind === 'event' && !this.leading) this.client.relayed(message.envelope);
    else if (message.kind === 'state' && !this.leading) this.client.mirror(message.transport, message.state);
    else if (message.kind === 'hello' && this.leading) this.client.announce();
    else if (message.kind === 'leaving' && !this.leading) this.checkSoon();
    else if (message.kind === 'signed-out') this.client.signedOutElsewhere();
  };

  /** This page goes (closed, reloaded, navigated away): hand the lease and its outbox on at once. */
  Tabs.prototype.leave = function () {
    this.client.outbox.release();
    if (!this.leading) return;
    var lease = this.lease();
    if (lease && lease.tab === this.id) this.storage.removeItem(this.leaseKey);
    this.publish({ kind: 'leaving' });
  };

  Tabs.prototype.stop = function () {
    clearInterval(this.timer);
    this.timer = null;
    this.leave();
    this.leading = false;
    if (this.channel) this.channel.close();
    unlisten('storage', this.onStorage);
    unlisten('pagehide', this.onLeave);
  };

  // ---------------------------------------------------------------------------------------------
  // The outbox

  /**
   * Messages on their way: each is kept (in localStorage, one key per message, so that tabs never
   * overwrite each other's) from the moment it is written until the server has it, with the
   * clientId that makes the server store it once however often it is sent. A tab sends its own,
   * one at a time and in order, retrying while the network or the server fails (and at once when
   * the browser is back online); entries of a page that went (reloaded or closed) are taken over by
   * the leading tab, oldest first. Only an answer that says the message itself is wrong (400, 403,
   * 404, 409) drops it, with an error.
   */
  function Outbox(client, storage, prefix) {
    this.client = client;
    this.storage = storage;
    this.prefix = prefix + 'outbox:';
    this.tab = client.tabId;
    this.sending = false;
    this.timer = null;
    this.failures = 0;
    this.callbacks = {};
    this.written = 0;
  }

  /** Every entry, oldest first: {clientId, threadId, body, replyTo, at, owner}. */
  Outbox.prototype.entries = function () {
    var keys = keysWith(this.storage, this.prefix);
    var list = [];
    for (var i = 0; i < keys.length; i++) {
      var entry = readJson(this.storage, keys[i]);
      if (entry) list.push(entry);
    }
    list.sort(function (a, b) {
      return a.at - b.at || a.n - b.n || (a.clientId < b.clientId ? -1 : 1);
    });
    return list;
  };

  Outbox.prototype.save = function (entry) {
    writeJson(this.storage, this.prefix + entry.clientId, entry);
  };

  Outbox.prototype.add = function (threadId, body, replyTo, callback) {
    var entry = { clientId: newClientId(), threadId: threadId, body: body, replyTo: replyTo || null, at: now(), n: (this.written += 1), owner: this.tab, triedAt: now() };
    this.save(entry);
    if (callback) this.callbacks[entry.clientId] = callback;
    this.client.outboxChanged();
    this.kick();
    return entry.clientId;
  };

  /** Take over what a page that went left behind (only the leading tab or a lone one does). */
  Outbox.prototype.adopt = function (entries) {
    if (this.client.role === 'follower') return;
    var stale = now() - this.client.options.outboxStaleMs;
    for (var i = 0; i < entries.length; i++) {
      var entry = entries[i];
      if (entry.owner !== this.tab && (entry.owner === null || entry.triedAt < stale)) {
        entry.owner = this.tab;
        this.save(entry);
      }
    }
  };

  /** Send the oldest of our entries, unless one is on its way or waiting for its retry. */
  Outbox.prototype.kick = function () {
    if (this.sending || this.timer !== null || !this.client.user) return;
    var entries = this.entries();
    this.adopt(entries);
    for (var i = 0; i < entries.length; i++) {
      if (entries[i].owner === this.tab) return this.send(entries[i]);
    }
  };

  Outbox.prototype.send = function (entry) {
    var self = this;
    var client = this.client;
    var payload = { body: entry.body, clientId: entry.clientId };
    if (entry.replyTo) payload.replyTo = entry.replyTo;
    this.sending = true;
    entry.triedAt = now();
    this.save(entry);
    client.request('POST', '/v1/threads/' + encodeURIComponent(entry.threadId) + '/messages', payload, function (error, answer) {
      self.sending = false;
      var callback = self.callbacks[entry.clientId];
      // Offline, a server that fails or throttles, a session to sign in again: it waits.
      if (error && (error.status === 0 || error.status === 401 || error.status === 429 || error.status >= 500)) {
        self.failures += 1;
        if (error.status === 401) return;
        self.timer = setTimeout(function () {
          self.timer = null;
          self.kick();
        }, Math.max(error.retryAfterMs, backoffMs(client.options, self.failures)));
        return;
      }
      self.failures = 0;
      delete self.callbacks[entry.clientId];
      self.storage.removeItem(self.prefix + entry.clientId);
      if (error) client.emit('sendfailed', { entry: entry, error: error });
      else client.emit('sent', { clientId: entry.clientId, message: answer.message });
      if (callback) callback(error, answer && answer.message);
      client.outboxChanged();
      self.kick();
    });
  };

  /** Try now (the browser is back online, or the connection is). */
  Outbox.prototype.retryNow = function () {
    clearTimeout(this.timer);
    this.timer = null;
    this.kick();
  };

  /** This page goes: its entries are anyone's (the next leader takes them over at once). */
  Outbox.prototype.release = function () {
    var entries = this.entries();
    for (var i = 0; i < entries.length; i++) {
      if (entries[i].owner === this.tab) {
        entries[i].owner = null;
        this.save(entries[i]);
      }
    }
  };

  Outbox.prototype.stop = function () {
    clearTimeout(this.timer);
    this.timer = null;
  };

  // ---------------------------------------------------------------------------------------------
  // The client

  /**
   * A postline client. `options` override DEFAULTS (baseUrl '', session 'auto', transport 'auto',
   * openTimeoutMs 5000, maxStreamFailures 4, streamRetryMs 15000, pollTimeoutSeconds 20, tabs
   * true, leaseMs 3000, typingRenewMs 3000, typingIdleMs 3000, typingExpiryMs 6000,
   * acknowledgeDelivery true, deliveredDelayMs 1000, …).
   *
   * Events: every envelope type ('message.created', 'message.updated', 'message.deleted',
   * 'reaction.added', 'reaction.removed', 'thread.updated', 'thread.removed', 'seen', 'delivered',
   * 'typing', 'presence') with the envelope; 'event' for each of them; 'reset' with
   * {reason, threads} after a refetch; 'typing' also with data.typing false and `expired: true`
   * when someone's typing ran out; 'transport' ('sse' | 'long-poll'); 'state' ('connecting',
   * 'open', 'reconnecting', 'closed'); 'role' ('leader' | 'follower': which tab holds the
   * connection); 'fallback' (reason); 'outbox' (messages not sent yet changed: see pending());
   * 'sent' ({clientId, message}); 'sendfailed' ({entry, error}); 'unauthorized' (the session
   * ended, or the stream turned out to be another user's).
   */
  function Client(options) {
    Emitter.call(this);
    this.options = extend(extend({}, DEFAULTS), options || {});
    this.baseUrl = String(this.options.baseUrl || '').replace(/\/+$/, '');
    this.token = this.options.token || null;
    var cookieCapable = isSameOrigin(this.baseUrl) || this.options.withCredentials;
    /** 'cookie' or 'token': where the session lives (see DEFAULTS.session). */
    this.session = this.token ? 'token' : this.options.session === 'auto' ? (cookieCapable ? 'cookie' : 'token') : this.options.session;
    /** The signed-in user, once known. */
    this.user = null;
    /** The last durable event id received (or the poll cursor): where every reconnect resumes. */
    this.lastEventId = null;
    /** 'sse', 'long-poll' or null (a follower tab names its leader's). */
    this.transport = null;
    this.state = 'closed';
    /** 'leader' (this tab holds the connection), 'follower' (another tab does) or null (no tabs to share with). */
    this.role = null;
    this.tabId = randomId() + randomId();
    this.storage = this.options.storage || pageStorage();
    this.tabs = null;
    this.outbox = new Outbox(this, new MemoryStorage(), '');
    this.connection = null;
    this.connecting = false;
    this.probe = null;
    this.probeTimer = null;
    this.probes = 0;
    /** Envelopes relayed by the leader before this tab knew where it starts. */
    this.heldRelays = null;
    this.ownTyping = {};
    /** threadId -> when we last said typing:true there (the server's 2-second rule counts from it). */
    this.typingSaidAt = {};
    this.othersTyping = {};
    /** threadId -> seq our delivered marker is known to be at; threadId -> {id, seq} still to acknowledge. */
    this.deliveredSeq = {};
    this.undelivered = {};
    this.deliveredTimer = null;
    var self = this;
    this.onOnline = function () {
      self.outbox.retryNow();
      if (self.connection) self.connection.retryNow();
    };
    listen('online', this.onOnline);
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
    else if (this.session === 'cookie') xhr.setRequestHeader('Postline-Session', 'cookie');
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

  /** The URL of the SSE stream, resuming after lastEventId; with ?access_token only in a token session. */
  Client.prototype.streamUrl = function () {
    return (
      this.baseUrl +
      '/v1/events' +
      queryString({
        since: this.lastEventId,
        access_token: this.session === 'cookie' ? null : this.token
      })
    );
  };

  /** Where this user's tabs keep their lease, relay and outbox in localStorage. */
  Client.prototype.storagePrefix = function () {
    var base = this.baseUrl || (typeof location !== 'undefined' ? location.protocol + '//' + location.host : '');
    return 'postline:' + base + ':' + this.user.id + ':';
  };

  /** The user is known: their outbox (left by earlier pages too) starts sending. */
  Client.prototype.signedIn = function (user) {
    this.user = user;
    this.outbox.stop();
    this.outbox = new Outbox(this, this.storage || new MemoryStorage(), this.storagePrefix());
    this.outbox.kick();
    this.outboxChanged();
    return user;
  };

  Client.prototype.startSession = function (path, body, callback) {
    var self = this;
    this.request('POST', path, body, function (error, answer) {
      if (error) return callback(error);
      // A cookie session's answer has no token: the session is the HttpOnly cookie.
      self.token = answer.token || null;
      callback(null, self.signedIn(answer.user));
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

  /**
   * The session this browser already has (a cookie session: after a reload, in a new tab):
   * callback(error, user), with user null when there is none (sign in then).
   */
  Client.prototype.restore = function (callback) {
    var self = this;
    if (this.session !== 'cookie' && !this.token) return callback(null, null);
    this.request('GET', '/v1/me', null, function (error, answer) {
      if (error) return error.status === 401 ? callback(null, null) : callback(error);
      callback(null, self.signedIn(answer.user));
    });
  };

  /** Use a token obtained elsewhere: callback(error, user) once it is checked. */
  Client.prototype.useToken = function (token, callback) {
    var self = this;
    this.token = token;
    this.session = 'token';
    this.request('GET', '/v1/me', null, function (error, answer) {
      if (error) return callback(error);
      callback(null, self.signedIn(answer.user));
    });
  };

  /** End the session on the server (the token or cookie stops working everywhere, in every tab) and disconnect. */
  Client.prototype.logout = function (callback) {
    var self = this;
    if (this.tabs) this.tabs.publish({ kind: 'signed-out' });
    this.disconnect();
    this.outbox.stop();
    // The next user starts from "now", not from this user's place in the log.
    this.lastEventId = null;
    this.deliveredSeq = {};
    this.request('DELETE', '/v1/sessions/current', null, function (error) {
      self.token = null;
      self.user = null;
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
   * Send a message: callback(error, message) once the server has it (or has refused it). `options`
   * may hold replyTo (the id of a message of the thread this one answers); it may be left out:
   * send(threadId, body, callback). The message waits in the outbox until then, under its
   * clientId, through network failures, 429 and 5xx answers, and reloads (a later page sends it,
   * and then has no callback: watch 'sent' and 'outbox'); the server stores it once. Messages are
   * sent one after another, in the order written. Returns the clientId.
   */
  Client.prototype.send = function (threadId, body, options, callback) {
    if (typeof options === 'function') {
      callback = options;
      options = null;
    }
    this.stopTyping(threadId);
    return this.outbox.add(threadId, body, options && options.replyTo, callback);
  };

  /** Messages not sent yet (of `threadId`, or all), oldest first: [{clientId, threadId, body, replyTo, at}]. */
  Client.prototype.pending = function (threadId) {
    var entries = this.outbox.entries();
    var list = [];
    for (var i = 0; i < entries.length; i++) if (!threadId || entries[i].threadId === threadId) list.push(entries[i]);
    return list;
  };

  Client.prototype.outboxChanged = function () {
    this.emit('outbox', this.pending());
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

  /** Send one acknowledgement; one that fails on the network or the server goes again (backoff, acknowledgeAttempts in all). */
  Client.prototype.acknowledge = function (threadId, pending) {
    var self = this;
    this.delivered(threadId, pending.id, function (error) {
      if (!error) {
        self.deliveredSeq[threadId] = Math.max(self.deliveredSeq[threadId] || 0, pending.seq);
        return;
      }
      var retryable = error.status === 0 || error.status === 429 || error.status >= 500;
      if (retryable && pending.attempts + 1 < self.options.acknowledgeAttempts) {
        self.queueDelivered(threadId, { id: pending.id, seq: pending.seq, attempts: pending.attempts + 1 });
      }
    });
  };

  /**
   * Start real-time delivery. `ready()` is called once the resume point is known: state fetched
   * over REST after it misses nothing, since every later event will be delivered (in this tab or,
   * relayed, from the tab that holds the connection).
   */
  Client.prototype.connect = function (ready) {
    var self = this;
    if (this.connection || this.connecting || this.role) return;
    this.connecting = true;
    this.setState('connecting');
    if (this.options.tabs && this.storage && hasWindow) {
      this.tabs = new Tabs(this, this.storage, this.storagePrefix());
      // Relays are heard from now on, and kept until this tab knows where it starts.
      this.heldRelays = [];
      this.tabs.listen();
    }
    this.learnHead(function () {
      self.connecting = false;
      var held = self.heldRelays || [];
      self.heldRelays = null;
      for (var i = 0; i < held.length; i++) self.receive(held[i], true);
      if (ready) ready();
      if (self.tabs) {
        self.role = 'follower';
        self.tabs.elect();
      } else {
        self.startDelivery();
      }
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

  Client.prototype.eventSourceImpl = function () {
    return this.options.EventSource || (typeof EventSource !== 'undefined' ? EventSource : null);
  };

  /** Hold the connection: a stream while streams work here, else long-poll. */
  Client.prototype.startDelivery = function () {
    var EventSourceImpl = this.eventSourceImpl();
    var useSse = this.options.transport !== 'long-poll' && EventSourceImpl;
    this.useTransport(useSse ? new SseTransport(this, EventSourceImpl) : new PollTransport(this));
  };

  /** This tab was elected to hold the connection (the Tabs lease); it resumes from its last id. */
  Client.prototype.lead = function () {
    this.role = 'leader';
    this.emit('role', 'leader');
    this.startDelivery();
    this.outbox.kick();
  };

  /** Another tab holds the connection now. */
  Client.prototype.follow = function () {
    this.stopDelivery();
    this.role = 'follower';
    this.emit('role', 'follower');
    this.tabs.publish({ kind: 'hello' });
  };

  Client.prototype.useTransport = function (transport) {
    this.connection = transport;
    this.transport = transport.name;
    this.emit('transport', transport.name);
    this.announce();
    transport.start();
  };

  /** Tell the other tabs how this (leading) tab is connected. */
  Client.prototype.announce = function () {
    if (this.tabs && this.role === 'leader') this.tabs.publish({ kind: 'state', transport: this.transport, state: this.state });
  };

  /** A follower shows its leader's transport and state as its own. */
  Client.prototype.mirror = function (transport, state) {
    if (transport !== this.transport) {
      this.transport = transport;
      this.emit('transport', transport);
    }
    this.setState(state);
  };

  /** An envelope the leading tab received; held until this tab knows where it starts. */
  Client.prototype.relayed = function (envelope) {
    if (this.heldRelays) this.heldRelays.push(envelope);
    else if (this.role === 'follower') this.receive(envelope, true);
  };

  /**
   * Called by the SSE transport when streams cannot work here: long-poll from now on; unless
   * there is no EventSource or long-poll was asked for, try a stream again now and then (with
   * backoff), and go back to it once one delivers its first event.
   */
  Client.prototype.fallBack = function (reason) {
    this.emit('fallback', reason);
    this.useTransport(new PollTransport(this));
    this.probes = 0;
    this.scheduleProbe();
  };

  Client.prototype.scheduleProbe = function () {
    var self = this;
    var options = this.options;
    var delay = Math.min(options.streamRetryMaxMs, options.streamRetryMs * Math.pow(2, this.probes));
    this.probeTimer = setTimeout(function () {
      self.probeTimer = null;
      self.probe = new SseTransport(self, self.eventSourceImpl(), {
        onReady: function (stream) {
          // The stream works (again): it takes over; the poll's events after its start point are
          // dropped as duplicates, and its ready event came before any other.
          self.probe = null;
          self.probes = 0;
          var poll = self.connection;
          self.connection = stream;
          self.transport = stream.name;
          if (poll) poll.stop();
          self.emit('transport', stream.name);
          self.announce();
        },
        onFail: function () {
          self.probe = null;
          self.probes += 1;
          self.scheduleProbe();
        }
      });
      self.probe.start();
    }, Math.round(delay * (0.5 + Math.random() * 0.5)));
  };

  Client.prototype.stopDelivery = function () {
    clearTimeout(this.probeTimer);
    this.probeTimer = null;
    if (this.probe) this.probe.stop();
    this.probe = null;
    if (this.connection) this.connection.stop();
    this.connection = null;
  };

  /**
   * Stop real-time delivery (connect() starts it again, resuming where it stopped); another tab
   * takes the connection over. Pending acknowledgements are dropped: the next listThreads
   * acknowledges what is still unacknowledged.
   */
  Client.prototype.disconnect = function () {
    clearTimeout(this.deliveredTimer);
    this.deliveredTimer = null;
    this.undelivered = {};
    this.connecting = false;
    this.heldRelays = null;
    this.stopDelivery();
    if (this.tabs) this.tabs.stop();
    this.tabs = null;
    this.role = null;
    this.transport = null;
    this.setState('closed');
  };

  Client.prototype.unauthorized = function () {
    this.disconnect();
    this.emit('unauthorized');
  };

  /** The stream's ready event named another user: the cookie changed under this page. */
  Client.prototype.foreignStream = function () {
    if (this.tabs) this.tabs.publish({ kind: 'signed-out' });
    this.unauthorized();
  };

  /** Another tab signed out (or found the session gone). */
  Client.prototype.signedOutElsewhere = function () {
    this.unauthorized();
  };

  Client.prototype.setState = function (state) {
    if (state === this.state) return;
    this.state = state;
    this.emit('state', state);
    this.announce();
    if (state === 'open') this.outbox.retryNow();
  };

  /**
   * Take one envelope from a transport (or, `relayed`, from the leading tab): drop what we already
   * have, pass it on to the other tabs if we lead, then emit it.
   */
  Client.prototype.receive = function (envelope, relayed) {
    if (envelope.id !== undefined) {
      if (this.lastEventId !== null && compareIds(envelope.id, this.lastEventId) <= 0) return;
      this.lastEventId = envelope.id;
    }
    if (this.tabs && this.role === 'leader') this.tabs.publish({ kind: 'event', envelope: envelope });
    if (envelope.type === 'reset') return this.resync(envelope);
    if (envelope.type === 'typing') this.trackTyping(envelope);
    // The leading tab acknowledges what arrives; the others would only repeat it.
    if (envelope.type === 'message.created' && !relayed) this.receivedMessage(envelope.data);
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
