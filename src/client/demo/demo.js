/*
 * The demo chat page at /: ES5 on top of postline-client (window.Postline), no build step.
 * State lives in plain objects; each change re-renders the part of the page it touches.
 * Text from users is always set with textContent, never parsed as HTML.
 */
(function () {
  'use strict';

  var client = new Postline.Client();
  var me = null;
  /** threadId -> thread (with our own unreadCount, which events do not carry). */
  var threads = {};
  var openThreadId = null;
  /** Messages of the open thread, in seq order, and their ids. */
  var messages = [];
  var messageIds = {};
  /** userId -> online. */
  var online = {};
  /** threadId -> {userId: true} of those typing there. */
  var typing = {};
  /** threadId -> {userId: seq} read markers of the others, from `seen` events. */
  var readUpTo = {};

  function $(id) {
    return document.getElementById(id);
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function on(node, type, listener) {
    node.addEventListener(type, listener, false);
  }

  function others(thread) {
    var list = [];
    for (var i = 0; i < thread.members.length; i++) if (thread.members[i].id !== me.id) list.push(thread.members[i]);
    return list;
  }

  function threadName(thread) {
    if (thread.title) return thread.title;
    var names = [];
    var list = others(thread);
    for (var i = 0; i < list.length; i++) names.push(list[i].displayName);
    return names.join(', ') || 'Just you';
  }

  function memberName(threadId, userId) {
    var members = threads[threadId] ? threads[threadId].members : [];
    for (var i = 0; i < members.length; i++) if (members[i].id === userId) return members[i].displayName;
    return 'Someone';
  }

  function showError(id, error) {
    $(id).textContent = error ? error.message : '';
  }

  // --- rendering ---------------------------------------------------------------------------

  var TRANSPORT_LABELS = { sse: 'SSE', 'long-poll': 'long-poll' };

  function renderTransport() {
    var badge = $('transport');
    var label = TRANSPORT_LABELS[client.transport] || 'offline';
    badge.textContent = client.state === 'open' ? label : label + ' (' + client.state + ')';
    badge.setAttribute('data-transport', client.transport || 'none');
    badge.setAttribute('data-state', client.state);
  }

  function presenceDot(userId) {
    var dot = element('span', 'presence');
    var state = online[userId] ? 'online' : 'offline';
    dot.setAttribute('data-user-id', userId);
    dot.setAttribute('data-online', String(!!online[userId]));
    dot.setAttribute('title', state);
    dot.appendChild(element('span', 'visually-hidden', state));
    return dot;
  }

  function sortedThreads() {
    var list = [];
    for (var id in threads) if (Object.prototype.hasOwnProperty.call(threads, id)) list.push(threads[id]);
    list.sort(function (a, b) {
      return a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : 0;
    });
    return list;
  }

  function renderThreads() {
    var list = $('threads');
    clear(list);
    var sorted = sortedThreads();
    for (var i = 0; i < sorted.length; i++) {
      var thread = sorted[i];
      var item = element('li');
      var button = element('button', 'thread' + (thread.id === openThreadId ? ' current' : ''));
      button.type = 'button';
      button.setAttribute('data-thread-id', thread.id);
      if (thread.id === openThreadId) button.setAttribute('aria-current', 'true');
      var members = others(thread);
      for (var m = 0; m < members.length; m++) button.appendChild(presenceDot(members[m].id));
      button.appendChild(element('span', 'name', threadName(thread)));
      if (thread.unreadCount > 0) {
        var badge = element('span', 'unread', String(thread.unreadCount));
        badge.setAttribute('aria-label', thread.unreadCount + ' unread');
        button.appendChild(badge);
      }
      item.appendChild(button);
      list.appendChild(item);
    }
  }

  /** Our message is seen once any other member's read marker reached it. */
  function seenByOthers(message) {
    var markers = readUpTo[message.threadId] || {};
    for (var userId in markers) if (markers[userId] >= message.seq) return true;
    return false;
  }

  function renderMessages() {
    var list = $('messages');
    clear(list);
    for (var i = 0; i < messages.length; i++) {
      var message = messages[i];
      var mine = message.senderId === me.id;
      var item = element('li', 'message ' + (mine ? 'mine' : 'theirs'));
      item.setAttribute('data-message-id', message.id);
      item.appendChild(element('span', 'author', mine ? 'You' : memberName(message.threadId, message.senderId)));
      item.appendChild(element('span', 'body', message.body));
      var time = element('time', 'time', message.createdAt.slice(11, 16));
      time.setAttribute('datetime', message.createdAt);
      item.appendChild(time);
      if (mine) {
        var seen = seenByOthers(message);
        var tick = element('span', 'tick' + (seen ? ' seen' : ''), seen ? '\u2713\u2713' : '\u2713');
        tick.setAttribute('aria-label', seen ? 'seen' : 'sent');
        tick.setAttribute('title', seen ? 'seen' : 'sent');
        item.appendChild(tick);
      }
      list.appendChild(item);
    }
    list.scrollTop = list.scrollHeight;
  }

  function renderTyping() {
    var names = [];
    var here = typing[openThreadId] || {};
    for (var userId in here) names.push(memberName(openThreadId, userId));
    $('typing').textContent = names.length ? names.join(', ') + (names.length > 1 ? ' are' : ' is') + ' typing\u2026' : '';
  }

  function renderConversation() {
    var thread = threads[openThreadId];
    $('conversation-title').textContent = thread ? threadName(thread) : 'Pick a conversation';
    $('composer').hidden = !thread;
    renderMessages();
    renderTyping();
  }

  // --- state changes -------------------------------------------------------------------------

  function refreshPresence() {
    var ids = [];
    var known = {};
    for (var id in threads) {
      var members = others(threads[id]);
      for (var i = 0; i < members.length; i++) {
        if (!known[members[i].id]) ids.push(members[i].id);
        known[members[i].id] = true;
      }
    }
    client.presence(ids.slice(0, 200), function (error, states) {
      if (error) return;
      for (var i = 0; i < states.length; i++) online[states[i].userId] = states[i].online;
      renderThreads();
    });
  }

  /** Put a thread from REST or an event into the list; events carry no unreadCount, so we keep ours. */
  function upsertThread(thread) {
    var known = threads[thread.id];
    thread.unreadCount = thread.unreadCount === null || thread.unreadCount === undefined ? (known ? known.unreadCount : 0) : thread.unreadCount;
    threads[thread.id] = thread;
  }

  function loadThreads(list) {
    threads = {};
    for (var i = 0; i < list.length; i++) upsertThread(list[i]);
    if (openThreadId && !threads[openThreadId]) openThreadId = null;
    renderThreads();
    refreshPresence();
    if (openThreadId) openThread(openThreadId);
    else renderConversation();
  }

  function markSeen() {
    var thread = threads[openThreadId];
    var last = messages[messages.length - 1];
    if (!thread || !last || document.hidden) return;
    thread.unreadCount = 0;
    renderThreads();
    if (last.senderId !== me.id) client.seen(thread.id, last.id);
  }

  function addMessage(message) {
    if (messageIds[message.id]) return;
    messageIds[message.id] = true;
    messages.push(message);
    messages.sort(function (a, b) {
      return a.seq - b.seq;
    });
  }

  function openThread(threadId) {
    openThreadId = threadId;
    messages = [];
    messageIds = {};
    renderThreads();
    renderConversation();
    client.listMessages(threadId, { limit: 50 }, function (error, page) {
      if (error || threadId !== openThreadId) return;
      for (var i = 0; i < page.messages.length; i++) addMessage(page.messages[i]);
      renderConversation();
      markSeen();
    });
    $('message-input').focus();
  }

  function onMessage(envelope) {
    var message = envelope.data;
    var thread = threads[message.threadId];
    if (!thread) {
      // A thread we have not heard of yet (its thread.updated may still be on its way).
      client.getThread(message.threadId, function (error, fetched) {
        if (error) return;
        upsertThread(fetched);
        renderThreads();
      });
      return;
    }
    thread.lastMessage = message;
    thread.updatedAt = message.createdAt;
    if (typing[thread.id]) delete typing[thread.id][message.senderId];
    if (message.threadId === openThreadId) {
      addMessage(message);
      renderConversation();
      markSeen();
    } else if (message.senderId !== me.id) {
      thread.unreadCount += 1;
    }
    renderThreads();
  }

  function onSeen(envelope) {
    var data = envelope.data;
    if (data.userId === me.id) {
      // Read here or in another tab.
      if (threads[envelope.threadId]) threads[envelope.threadId].unreadCount = 0;
      renderThreads();
      return;
    }
    var markers = readUpTo[envelope.threadId] || (readUpTo[envelope.threadId] = {});
    markers[data.userId] = Math.max(markers[data.userId] || 0, data.seq);
    if (envelope.threadId === openThreadId) renderMessages();
  }

  function onTyping(envelope) {
    var here = typing[envelope.threadId] || (typing[envelope.threadId] = {});
    if (envelope.data.typing) here[envelope.data.userId] = true;
    else delete here[envelope.data.userId];
    if (envelope.threadId === openThreadId) renderTyping();
  }

  function onThreadUpdated(envelope) {
    var isNew = !threads[envelope.data.id];
    upsertThread(envelope.data);
    renderThreads();
    if (isNew) refreshPresence();
    if (envelope.data.id === openThreadId) renderConversation();
  }

  function onThreadRemoved(envelope) {
    delete threads[envelope.data.threadId];
    if (openThreadId === envelope.data.threadId) openThreadId = null;
    renderThreads();
    renderConversation();
  }

  function onPresence(envelope) {
    online[envelope.data.userId] = envelope.data.online;
    renderThreads();
  }

  // --- session -----------------------------------------------------------------------------

  function signedIn(user) {
    me = user;
    $('me').textContent = user.displayName + ' (' + user.username + ')';
    $('signin').hidden = true;
    $('chat').hidden = false;
    $('logout').hidden = false;
    client.connect(function () {
      client.listThreads(function (error, list) {
        if (!error) loadThreads(list);
      });
    });
  }

  function signedOut() {
    me = null;
    threads = {};
    openThreadId = null;
    $('me').textContent = '';
    $('signin').hidden = false;
    $('chat').hidden = true;
    $('logout').hidden = true;
    renderTransport();
  }

  function signIn(register) {
    var username = $('username').value;
    var password = $('password').value;
    var done = function (error, user) {
      showError('signin-error', error);
      if (!error) signedIn(user);
    };
    if (register) client.register(username, password, $('display-name').value, done);
    else client.login(username, password, done);
  }

  on($('signin'), 'submit', function (event) {
    event.preventDefault();
    signIn(false);
  });
  on($('register'), 'click', function () {
    signIn(true);
  });
  on($('logout'), 'click', function () {
    client.logout(signedOut);
  });

  on($('new-chat'), 'submit', function (event) {
    event.preventDefault();
    var username = $('new-chat-username').value;
    client.findUser(username, function (error, user) {
      if (!error && !user) error = { message: 'No user named ' + username + '.' };
      showError('new-chat-error', error);
      if (error) return;
      client.createThread([user.id], null, function (error, thread) {
        showError('new-chat-error', error);
        if (error) return;
        upsertThread(thread);
        $('new-chat-username').value = '';
        refreshPresence();
        openThread(thread.id);
      });
    });
  });

  on($('threads'), 'click', function (event) {
    var target = event.target;
    while (target && target !== this && !target.getAttribute('data-thread-id')) target = target.parentNode;
    if (target && target !== this) openThread(target.getAttribute('data-thread-id'));
  });

  on($('message-input'), 'input', function () {
    if (openThreadId && this.value) client.typing(openThreadId);
  });

  on($('composer'), 'submit', function (event) {
    event.preventDefault();
    var input = $('message-input');
    var body = input.value;
    if (!openThreadId || !/\S/.test(body)) return;
    input.value = '';
    var threadId = openThreadId;
    client.send(threadId, body, function (error, message) {
      if (error) {
        // Not delivered after every retry: give the text back rather than lose it.
        input.value = body;
        window.alert('Not sent: ' + error.message);
        return;
      }
      // Shown now rather than when its event arrives (which addMessage then ignores).
      if (threadId === openThreadId) {
        addMessage(message);
        renderMessages();
      }
    });
  });

  on(document, 'visibilitychange', markSeen);

  client.on('message.created', onMessage);
  client.on('seen', onSeen);
  client.on('typing', onTyping);
  client.on('thread.updated', onThreadUpdated);
  client.on('thread.removed', onThreadRemoved);
  client.on('presence', onPresence);
  client.on('reset', function (refetched) {
    if (refetched.threads) loadThreads(refetched.threads);
  });
  client.on('transport', renderTransport);
  client.on('state', renderTransport);
  client.on('unauthorized', signedOut);

  // For tests and the curious: the page's client.
  window.postlineDemo = { client: client };
})();
