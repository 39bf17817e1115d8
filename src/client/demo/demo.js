/*
 * The demo chat page at /: ES5 on top of postline-client (window.Postline), no build step.
 * State lives in plain objects; each change re-renders the part of the page it touches.
 * Text from users is always set with textContent, never parsed as HTML (search snippets are
 * taken apart into text and <mark> elements).
 */
(function () {
  'use strict';

  var client = new Postline.Client();
  var me = null;
  /** threadId -> thread (with our own unreadCount, which events do not carry, and receipts). */
  var threads = {};
  var openThreadId = null;
  /** Messages of the open thread, in seq order, and their ids. */
  var messages = [];
  var messageIds = {};
  /** userId -> online. */
  var online = {};
  /** threadId -> {userId: true} of those typing there. */
  var typing = {};
  /** The message whose menu is open; the one being answered or edited in the composer. */
  var menuFor = null;
  var replyingTo = null;
  var editing = null;
  /** A message to point at once its thread is shown (a search result), and whether it was. */
  var highlight = null;
  var highlightShown = false;

  var REACTIONS = ['\uD83D\uDC4D', '\u2764\uFE0F', '\uD83D\uDE02', '\uD83D\uDE2E', '\uD83D\uDE22', '\uD83C\uDF89'];
  var EXCERPT = 160;

  function $(id) {
    return document.getElementById(id);
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function button(className, text, attributes) {
    var node = element('button', className, text);
    node.type = 'button';
    for (var name in attributes || {}) node.setAttribute(name, attributes[name]);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function on(node, type, listener) {
    node.addEventListener(type, listener, false);
  }

  /** The element (or an ancestor up to `root`) carrying `attribute`. */
  function closest(target, root, attribute) {
    while (target && target !== root && !(target.getAttribute && target.getAttribute(attribute) !== null)) target = target.parentNode;
    return target && target !== root ? target : null;
  }

  function others(thread) {
    var list = [];
    for (var i = 0; i < thread.members.length; i++) if (thread.members[i].id !== me.id) list.push(thread.members[i]);
    return list;
  }

  /** Whether a thread is a request for us (someone we share no accepted thread with started it): it is listed apart. */
  function isRequest(thread) {
    return (thread.pending || []).indexOf(me.id) !== -1;
  }

  /**
   * Letters of other scripts that look like Latin ones, and digits that pass for letters: a name
   * written with them (Cyrillic "а" for "a") shows as someone else's.
   */
  var LOOK_ALIKES = {
    '\u0430': 'a', '\u0435': 'e', '\u043E': 'o', '\u0440': 'p', '\u0441': 'c', '\u0443': 'y', '\u0445': 'x', '\u0456': 'i',
    '\u0458': 'j', '\u0455': 's', '\u0501': 'd', '\u04BB': 'h', '\u04CF': 'l', '\u03BF': 'o', '\u03B1': 'a', '\u03B5': 'e',
    '\u03B9': 'i', '\u03BA': 'k', '\u03BD': 'v', '\u03C1': 'p', '\u03C4': 't', '\u03C5': 'u', '\u03C7': 'x', '0': 'o', '1': 'l', '|': 'l'
  };

  /** What a name looks like, roughly: lowercase, without accents, spaces or punctuation, look-alike letters made Latin. */
  function skeleton(name) {
    var text = (name.normalize ? name.normalize('NFKD') : name).toLowerCase().replace(/[\u0300-\u036f]/g, '');
    var out = '';
    for (var i = 0; i < text.length; i++) {
      var c = text.charAt(i);
      if (/[\s._\-]/.test(c)) continue;
      out += LOOK_ALIKES[c] || c;
    }
    return out;
  }

  /** skeleton -> {userId: true} of every name (display name and username) of the people this page knows; rebuilt when threads change. */
  var nameIndex = null;

  function namesLookingLike(look) {
    if (!nameIndex) {
      nameIndex = {};
      var add = function (user) {
        var looks = [skeleton(user.displayName), skeleton(user.username)];
        for (var k = 0; k < looks.length; k++) (nameIndex[looks[k]] || (nameIndex[looks[k]] = {}))[user.id] = true;
      };
      add(me);
      for (var id in threads) for (var i = 0; i < threads[id].members.length; i++) add(threads[id].members[i]);
    }
    return nameIndex[look] || {};
  }

  /**
   * A user's name as the page shows it: the display name, with the username beside it wherever
   * the display name could pass for someone else's (it looks like another known person's display
   * name or username).
   */
  function nameOf(user) {
    var alike = namesLookingLike(skeleton(user.displayName));
    for (var id in alike) if (id !== user.id) return user.displayName + ' (@' + user.username + ')';
    return user.displayName;
  }

  function threadName(thread) {
    if (thread.title) return thread.title;
    var names = [];
    var list = others(thread);
    for (var i = 0; i < list.length; i++) names.push(nameOf(list[i]));
    return names.join(', ') || 'Just you';
  }

  function memberName(threadId, userId) {
    var members = threads[threadId] ? threads[threadId].members : [];
    for (var i = 0; i < members.length; i++) if (members[i].id === userId) return nameOf(members[i]);
    return 'Someone';
  }

  /** What went wrong, for people: the wait of a 429, else the server's detail. */
  function describe(error) {
    if (error.status === 429 && error.retryAfterMs) return 'Too many attempts: try again in ' + Math.ceil(error.retryAfterMs / 1000) + ' s.';
    if (error.status === 0) return 'No connection to the server: check your network.';
    return error.message;
  }

  function showError(id, error) {
    $(id).textContent = error ? describe(error) : '';
  }

  /**
   * A problem next to the fields it names (`fields`: errors[] path -> element id of its message);
   * what names no field goes to `generalId`. Returns nothing.
   */
  function showProblem(generalId, fields, error) {
    var placed = false;
    for (var path in fields) $(fields[path]).textContent = '';
    var list = (error && error.problem && error.problem.errors) || [];
    for (var i = 0; i < list.length; i++) {
      var id = fields[list[i].path];
      if (!id) continue;
      $(id).textContent = (list[i].path === 'body' ? 'The message ' : '') + list[i].message;
      placed = true;
    }
    $(generalId).textContent = error && !placed ? describe(error) : '';
  }

  /** Characters as the server counts them: code points, so an emoji is one. */
  function codePoints(text) {
    return text.length - (text.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g) || []).length;
  }

  var MAX_MESSAGE = 4000;

  function pad(number) {
    return (number < 10 ? '0' : '') + number;
  }

  var MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

  /** A timestamp in the reader's time zone: the time today, with the day before that, with the year before this year. */
  function localTime(iso) {
    var date = new Date(iso);
    var today = new Date();
    var time = pad(date.getHours()) + ':' + pad(date.getMinutes());
    if (date.toDateString() === today.toDateString()) return time;
    var day = date.getDate() + ' ' + MONTHS[date.getMonth()];
    return (date.getFullYear() === today.getFullYear() ? day : day + ' ' + date.getFullYear()) + ', ' + time;
  }

  function findMessage(messageId) {
    for (var i = 0; i < messages.length; i++) if (messages[i].id === messageId) return messages[i];
    return null;
  }

  // --- rendering ---------------------------------------------------------------------------

  var TRANSPORT_LABELS = { sse: 'SSE', 'long-poll': 'long-poll' };

  function renderTransport() {
    var badge = $('transport');
    var label = (TRANSPORT_LABELS[client.transport] || 'offline') + (client.role === 'follower' ? ' \u00B7 shared' : '');
    badge.textContent = client.state === 'open' ? label : label + ' (' + client.state + ')';
    badge.setAttribute('title', client.role === 'follower' ? 'Another tab of this browser holds the connection and passes the events on' : 'How events reach this page');
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

  /** The thread's last message, as the list shows it: who, and the start of what. */
  function preview(thread) {
    var last = thread.lastMessage;
    if (!last) return 'No messages yet';
    var who = last.senderId === me.id ? 'You' : memberName(thread.id, last.senderId);
    return who + ': ' + last.body;
  }

  /** The conversations, and apart from them the requests (with Accept and Block). */
  function renderThreads() {
    var list = $('threads');
    var requests = $('requests');
    clear(list);
    clear(requests);
    var sorted = sortedThreads();
    var requestCount = 0;
    for (var i = 0; i < sorted.length; i++) {
      var thread = sorted[i];
      var request = isRequest(thread);
      var item = element('li');
      var entry = button('thread' + (thread.id === openThreadId ? ' current' : ''), undefined, { 'data-thread-id': thread.id });
      if (thread.id === openThreadId) entry.setAttribute('aria-current', 'true');
      var members = others(thread);
      // A request carries no presence: no dots there.
      for (var m = 0; m < members.length && !request; m++) entry.appendChild(presenceDot(members[m].id));
      var text = element('span', 'summary');
      text.appendChild(element('span', 'name', threadName(thread)));
      text.appendChild(element('span', 'preview', preview(thread)));
      entry.appendChild(text);
      if (thread.lastMessage) entry.appendChild(element('time', 'when', localTime(thread.lastMessage.createdAt)));
      if (thread.unreadCount > 0) {
        var badge = element('span', 'unread', String(thread.unreadCount));
        badge.setAttribute('aria-label', thread.unreadCount + ' unread');
        entry.appendChild(badge);
      }
      item.appendChild(entry);
      if (request) {
        requestCount += 1;
        item.appendChild(button('request-action', 'Accept', { 'data-action': 'accept', 'data-thread-id': thread.id }));
        if (thread.kind === 'direct') item.appendChild(button('request-action', 'Block', { 'data-action': 'block', 'data-thread-id': thread.id }));
      }
      (request ? requests : list).appendChild(item);
    }
    $('requests-title').hidden = $('requests-hint').hidden = requests.hidden = requestCount === 0;
  }

  /**
   * Where the others have got to with our message: 'seen' once every other member read it,
   * 'delivered' once every other member's client has it, else 'sent'; and how many read it.
   */
  function receiptState(message) {
    var thread = threads[message.threadId];
    var list = thread ? others(thread) : [];
    var read = 0;
    var delivered = 0;
    var receipts = (thread && thread.receipts) || [];
    for (var i = 0; i < receipts.length; i++) {
      if (receipts[i].userId === me.id) continue;
      if (receipts[i].readSeq >= message.seq) read += 1;
      if (receipts[i].deliveredSeq >= message.seq) delivered += 1;
    }
    var state = list.length && read >= list.length ? 'seen' : list.length && delivered >= list.length ? 'delivered' : 'sent';
    return { state: state, read: read, of: list.length, group: thread && thread.kind === 'group' };
  }

  var TICK_LABELS = { sent: 'sent', delivered: 'delivered', seen: 'read' };

  function renderTick(message) {
    var receipt = receiptState(message);
    var tick = element('span', 'tick ' + receipt.state, receipt.state === 'sent' ? '\u2713' : '\u2713\u2713');
    tick.setAttribute('aria-label', TICK_LABELS[receipt.state]);
    tick.setAttribute('title', TICK_LABELS[receipt.state]);
    var node = element('span', 'receipt');
    node.appendChild(tick);
    if (receipt.group && receipt.read > 0 && receipt.state !== 'seen') {
      node.appendChild(element('span', 'read-by', 'read by ' + receipt.read + ' of ' + receipt.of));
    }
    return node;
  }

  function renderQuote(message) {
    var quote = element('span', 'quote');
    quote.setAttribute('data-reply-to', message.replyTo.id);
    quote.appendChild(element('span', 'quote-author', message.replyTo.senderId === me.id ? 'You' : memberName(message.threadId, message.replyTo.senderId)));
    if (message.replyTo.deletedAt) quote.appendChild(element('span', 'quote-text deleted', 'deleted message'));
    else quote.appendChild(element('span', 'quote-text', message.replyTo.excerpt));
    return quote;
  }

  function renderReactions(message) {
    var row = element('span', 'reactions');
    for (var i = 0; i < message.reactions.length; i++) {
      var reaction = message.reactions[i];
      var mine = reaction.userIds.indexOf(me.id) !== -1;
      var chip = button('reaction' + (mine ? ' mine' : ''), undefined, {
        'data-emoji': reaction.emoji,
        'aria-pressed': String(mine),
        title: mine ? 'Take back your ' + reaction.emoji : 'React ' + reaction.emoji
      });
      chip.appendChild(element('span', 'emoji', reaction.emoji));
      chip.appendChild(document.createTextNode(' ' + reaction.count));
      row.appendChild(chip);
    }
    return row;
  }

  function renderMenu(message, mine) {
    var menu = element('span', 'menu');
    menu.setAttribute('role', 'group');
    menu.setAttribute('aria-label', 'Message actions');
    for (var i = 0; i < REACTIONS.length; i++) menu.appendChild(button('react emoji', REACTIONS[i], { 'data-emoji': REACTIONS[i], title: 'React ' + REACTIONS[i] }));
    menu.appendChild(button('action', 'Reply', { 'data-action': 'reply' }));
    if (mine) {
      menu.appendChild(button('action', 'Edit', { 'data-action': 'edit' }));
      menu.appendChild(button('action', 'Delete', { 'data-action': 'delete' }));
    }
    return menu;
  }

  function renderMessage(message) {
    var mine = message.senderId === me.id;
    var deleted = !!message.deletedAt;
    var item = element('li', 'message ' + (mine ? 'mine' : 'theirs') + (deleted ? ' deleted' : '') + (highlight === message.id ? ' found' : ''));
    item.setAttribute('data-message-id', message.id);
    item.appendChild(element('span', 'author', mine ? 'You' : memberName(message.threadId, message.senderId)));
    if (message.replyTo) item.appendChild(renderQuote(message));
    item.appendChild(element('span', 'body', deleted ? 'This message was deleted' : message.body));
    if (message.editedAt && !deleted) item.appendChild(element('span', 'edited', '(edited)'));
    var time = element('time', 'time', localTime(message.createdAt));
    time.setAttribute('datetime', message.createdAt);
    time.setAttribute('title', new Date(message.createdAt).toString());
    item.appendChild(time);
    if (mine && !deleted) item.appendChild(renderTick(message));
    if (deleted) return item;
    item.appendChild(button('menu-toggle', '\u22EF', { 'aria-label': 'Message actions', 'aria-expanded': String(menuFor === message.id) }));
    if (message.reactions.length) item.appendChild(renderReactions(message));
    if (menuFor === message.id) item.appendChild(renderMenu(message, mine));
    return item;
  }

  /** A message in the outbox: ours, not on the server yet (offline, or the server failing). */
  function renderPending(entry) {
    var item = element('li', 'message mine pending');
    item.setAttribute('data-client-id', entry.clientId);
    item.appendChild(element('span', 'author', 'You'));
    item.appendChild(element('span', 'body', entry.body));
    var status = element('span', 'tick pending', '\u23F1 waiting to send');
    status.setAttribute('title', 'Kept in this browser; sent as soon as the server can be reached');
    item.appendChild(status);
    return item;
  }

  /** Re-render the open thread's messages, staying at the bottom if we were (or where we were). */
  function renderMessages() {
    var list = $('messages');
    var scrolled = list.scrollTop;
    var atBottom = list.scrollHeight - scrolled - list.clientHeight < 40;
    clear(list);
    var sentIds = {};
    for (var i = 0; i < messages.length; i++) {
      list.appendChild(renderMessage(messages[i]));
      if (messages[i].clientId) sentIds[messages[i].clientId] = true;
    }
    var pending = openThreadId ? client.pending(openThreadId) : [];
    for (var p = 0; p < pending.length; p++) if (!sentIds[pending[p].clientId]) list.appendChild(renderPending(pending[p]));
    var found = highlight && list.querySelector('.found');
    if (found && !highlightShown) {
      highlightShown = true;
      list.scrollTop = Math.max(0, found.offsetTop - list.offsetTop - 20);
    } else {
      list.scrollTop = atBottom ? list.scrollHeight : scrolled;
    }
  }

  function renderTyping() {
    var names = [];
    var here = typing[openThreadId] || {};
    for (var userId in here) names.push(memberName(openThreadId, userId));
    $('typing').textContent = names.length ? names.join(', ') + (names.length > 1 ? ' are' : ' is') + ' typing\u2026' : '';
  }

  function renderComposerContext() {
    var context = replyingTo
      ? 'Replying to ' + (replyingTo.senderId === me.id ? 'yourself' : memberName(replyingTo.threadId, replyingTo.senderId)) + ': ' + replyingTo.body.slice(0, EXCERPT)
      : editing
        ? 'Editing your message'
        : '';
    $('composer-context-text').textContent = context;
    $('composer-context').hidden = !context;
  }

  function renderConversation() {
    var thread = threads[openThreadId];
    $('chat').className = thread ? 'chat thread-open' : 'chat';
    $('conversation-title').textContent = thread ? threadName(thread) : 'Pick a conversation';
    $('composer').hidden = !thread;
    renderMessages();
    renderTyping();
    renderComposerContext();
  }

  /** A search snippet: escaped text whose only markup is <mark>; rebuilt as nodes, never as HTML. */
  function snippetNode(snippet) {
    var node = element('span', 'snippet');
    var parts = snippet.split(/(<mark>|<\/mark>)/);
    var marked = false;
    for (var i = 0; i < parts.length; i++) {
      if (parts[i] === '<mark>' || parts[i] === '</mark>') {
        marked = parts[i] === '<mark>';
        continue;
      }
      var text = parts[i].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
      if (text) node.appendChild(marked ? element('mark', undefined, text) : document.createTextNode(text));
    }
    return node;
  }

  function renderSearchResults(results) {
    var list = $('search-results');
    clear(list);
    for (var i = 0; i < results.length; i++) {
      var hit = results[i];
      var entry = button('search-result', undefined, { 'data-thread-id': hit.message.threadId, 'data-message-id': hit.message.id });
      var thread = threads[hit.message.threadId];
      entry.appendChild(element('span', 'where', (thread ? threadName(thread) : 'A conversation') + ' \u00B7 ' + memberName(hit.message.threadId, hit.message.senderId)));
      entry.appendChild(snippetNode(hit.snippet));
      var item = element('li');
      item.appendChild(entry);
      list.appendChild(item);
    }
    if (!results.length) list.appendChild(element('li', 'hint', 'Nothing found.'));
  }

  function renderPeople(users) {
    var list = $('people');
    clear(list);
    for (var i = 0; i < users.length; i++) {
      if (users[i].id === me.id) continue;
      var item = element('li');
      item.appendChild(button('person', users[i].displayName + ' (' + users[i].username + ')', { 'data-user-id': users[i].id }));
      list.appendChild(item);
    }
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
    nameIndex = null;
  }

  /** The conversations and the requests, fetched anew (at sign-in, after a reset). */
  function fetchThreads() {
    client.listThreads(function (error, list) {
      if (error) return;
      client.listRequests(function (requestsError, requests) {
        loadThreads(requestsError ? list : list.concat(requests));
      });
    });
  }

  /** Refetch one thread (its lastMessage and unreadCount changed in ways events do not say). */
  function refetchThread(threadId) {
    client.getThread(threadId, function (error, thread) {
      if (error) return;
      upsertThread(thread);
      renderThreads();
    });
  }

  function loadThreads(list) {
    threads = {};
    nameIndex = null;
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

  function resetComposer() {
    replyingTo = null;
    editing = null;
    $('message-input').value = '';
    updateCounter();
    renderComposerContext();
  }

  /** The character counter: the server takes at most 4000 (after trimming); over that, no Send. */
  function updateCounter() {
    var used = codePoints($('message-input').value.replace(/^\s+|\s+$/g, ''));
    var counter = $('counter');
    counter.textContent = used + ' / ' + MAX_MESSAGE;
    counter.className = used > MAX_MESSAGE ? 'counter over' : 'counter';
    $('send').disabled = used > MAX_MESSAGE;
  }

  function openThread(threadId, messageId) {
    if (threadId !== openThreadId) resetComposer();
    openThreadId = threadId;
    highlight = messageId || null;
    highlightShown = false;
    menuFor = null;
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

  /** A message changed (edited, deleted, reacted to): put the new version wherever it shows. */
  function replaceMessage(message) {
    var thread = threads[message.threadId];
    if (thread && thread.lastMessage && thread.lastMessage.id === message.id) thread.lastMessage = message;
    for (var i = 0; i < messages.length; i++) {
      if (messages[i].id === message.id) messages[i] = message;
      var quote = messages[i].replyTo;
      if (quote && quote.id === message.id) {
        quote.excerpt = message.body === null ? null : message.body.slice(0, EXCERPT);
        quote.deletedAt = message.deletedAt;
      }
    }
    if (replyingTo && replyingTo.id === message.id && message.deletedAt) replyingTo = null;
    if (editing && editing.id === message.id && message.deletedAt) resetComposer();
    if (message.threadId === openThreadId) renderConversation();
  }

  function onMessage(envelope) {
    var message = envelope.data;
    var thread = threads[message.threadId];
    if (!thread) {
      // A thread we have not heard of yet (its thread.updated may still be on its way).
      refetchThread(message.threadId);
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

  function onMessageDeleted(envelope) {
    var message = envelope.data;
    replaceMessage(message);
    // The last message or the unread count may have changed: the server knows which it is now.
    if (message.threadId !== openThreadId && threads[message.threadId]) refetchThread(message.threadId);
  }

  function onReaction(envelope) {
    var message = findMessage(envelope.data.messageId);
    if (!message) return;
    message.reactions = envelope.data.reactions;
    renderMessages();
  }

  /** A `seen` or `delivered` event: move that member's receipt forward (reading delivers too). */
  function onMarker(envelope) {
    var data = envelope.data;
    var thread = threads[envelope.threadId];
    if (!thread) return;
    if (envelope.type === 'seen' && data.userId === me.id) {
      // Read here or in another tab.
      thread.unreadCount = 0;
      renderThreads();
    }
    var receipts = thread.receipts || (thread.receipts = []);
    var receipt = null;
    for (var i = 0; i < receipts.length; i++) if (receipts[i].userId === data.userId) receipt = receipts[i];
    if (!receipt) receipts.push((receipt = { userId: data.userId, deliveredSeq: 0, readSeq: 0 }));
    receipt.deliveredSeq = Math.max(receipt.deliveredSeq, data.seq);
    if (envelope.type === 'seen') receipt.readSeq = Math.max(receipt.readSeq, data.seq);
    if (envelope.threadId === openThreadId) renderMessages();
  }

  function onTyping(envelope) {
    var here = typing[envelope.threadId] || (typing[envelope.threadId] = {});
    if (envelope.data.typing) here[envelope.data.userId] = true;
    else delete here[envelope.data.userId];
    if (envelope.threadId === openThreadId) renderTyping();
  }

  function onThreadUpdated(envelope) {
    var known = threads[envelope.data.id];
    // New, or accepted by someone: whose presence we may see may have changed.
    var contacts = !known || String(known.pending) !== String(envelope.data.pending);
    upsertThread(envelope.data);
    renderThreads();
    if (contacts) refreshPresence();
    if (envelope.data.id === openThreadId) renderConversation();
  }

  function onThreadRemoved(envelope) {
    delete threads[envelope.data.threadId];
    nameIndex = null;
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
    $('restoring').hidden = true;
    $('signin').hidden = true;
    $('chat').hidden = false;
    $('logout').hidden = false;
    client.connect(fetchThreads);
  }

  function signedOut() {
    me = null;
    threads = {};
    openThreadId = null;
    $('me').textContent = '';
    $('restoring').hidden = true;
    $('signin').hidden = false;
    $('chat').hidden = true;
    $('logout').hidden = true;
    renderTransport();
  }

  var SIGNIN_FIELDS = { username: 'username-error', password: 'password-error', displayName: 'display-name-error' };

  /** Keep the sign-in buttons off while the server asks us to wait (a 429's Retry-After). */
  function holdSignIn(ms) {
    $('login').disabled = true;
    $('register').disabled = true;
    setTimeout(function () {
      $('login').disabled = false;
      $('register').disabled = false;
      $('signin-error').textContent = '';
    }, ms);
  }

  function signIn(register) {
    var username = $('username').value;
    var password = $('password').value;
    var done = function (error, user) {
      showProblem('signin-error', SIGNIN_FIELDS, error);
      if (error && error.status === 429) holdSignIn(error.retryAfterMs || 1000);
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

  // --- starting chats ----------------------------------------------------------------------

  /** The one user `query` names: the exact username, else the only match; else an error to show. */
  function resolvePerson(query, callback) {
    var wanted = query.replace(/^\s+|\s+$/g, '');
    client.findUsers(wanted, function (error, users) {
      if (error) return callback(error);
      var candidates = [];
      for (var i = 0; i < users.length; i++) {
        if (users[i].username === wanted.toLowerCase()) return callback(null, users[i], users);
        if (users[i].id !== me.id) candidates.push(users[i]);
      }
      if (candidates.length === 1) return callback(null, candidates[0], users);
      callback({ message: candidates.length ? 'Several people match \u201C' + wanted + '\u201D: pick one.' : 'No one called \u201C' + wanted + '\u201D.' }, null, users);
    });
  }

  function startDirectChat(userId) {
    client.createThread([userId], null, function (error, thread) {
      showError('new-chat-error', error);
      if (error) return;
      upsertThread(thread);
      $('new-chat-username').value = '';
      clear($('people'));
      refreshPresence();
      openThread(thread.id);
    });
  }

  var peopleTimer = null;
  on($('new-chat-username'), 'input', function () {
    var query = this.value;
    clearTimeout(peopleTimer);
    if (!/\S/.test(query)) return clear($('people'));
    peopleTimer = setTimeout(function () {
      client.findUsers(query, function (error, users) {
        if (!error && $('new-chat-username').value === query) renderPeople(users);
      });
    }, 250);
  });

  on($('people'), 'click', function (event) {
    var target = closest(event.target, this, 'data-user-id');
    if (target) startDirectChat(target.getAttribute('data-user-id'));
  });

  on($('new-chat'), 'submit', function (event) {
    event.preventDefault();
    clearTimeout(peopleTimer);
    resolvePerson($('new-chat-username').value, function (error, user, users) {
      showError('new-chat-error', error);
      if (users) renderPeople(users);
      if (!error) startDirectChat(user.id);
    });
  });

  on($('new-group'), 'submit', function (event) {
    event.preventDefault();
    var title = $('group-title').value;
    var names = $('group-members').value.split(',');
    var ids = [];
    var pending = 0;
    var failed = null;
    function done() {
      if (failed) return showError('new-group-error', failed);
      client.createThread(ids, title, function (error, thread) {
        showError('new-group-error', error);
        if (error) return;
        upsertThread(thread);
        $('group-title').value = '';
        $('group-members').value = '';
        refreshPresence();
        openThread(thread.id);
      });
    }
    for (var i = 0; i < names.length; i++) {
      if (!/\S/.test(names[i])) continue;
      pending += 1;
      resolvePerson(names[i], function (error, user) {
        if (error) failed = failed || error;
        else ids.push(user.id);
        pending -= 1;
        if (pending === 0) done();
      });
    }
    if (pending === 0) showError('new-group-error', { message: 'Name at least one member.' });
  });

  // --- search ------------------------------------------------------------------------------

  on($('search'), 'submit', function (event) {
    event.preventDefault();
    client.search($('search-input').value, { limit: 20 }, function (error, answer) {
      showError('search-error', error);
      if (error) return clear($('search-results'));
      renderSearchResults(answer.results);
    });
  });

  on($('search-results'), 'click', function (event) {
    var target = closest(event.target, this, 'data-message-id');
    if (target) openThread(target.getAttribute('data-thread-id'), target.getAttribute('data-message-id'));
  });

  // --- the conversation ----------------------------------------------------------------------

  on($('threads'), 'click', function (event) {
    var target = closest(event.target, this, 'data-thread-id');
    if (target) openThread(target.getAttribute('data-thread-id'));
  });

  // A request: read it (open it), accept it (replying does too), or block its sender and leave it.
  on($('requests'), 'click', function (event) {
    var target = closest(event.target, this, 'data-thread-id');
    if (!target) return;
    var thread = threads[target.getAttribute('data-thread-id')];
    var action = target.getAttribute('data-action');
    if (!thread) return;
    if (!action) return openThread(thread.id);
    if (action === 'accept') {
      client.acceptThread(thread.id, function (error, accepted) {
        if (error) return window.alert('Not accepted: ' + error.message);
        upsertThread(accepted);
        renderThreads();
        refreshPresence();
      });
    } else if (action === 'block' && window.confirm('Block ' + threadName(thread) + '? They can no longer message you or add you to conversations.')) {
      client.block(others(thread)[0].id, true, function (error) {
        if (error) return window.alert('Not blocked: ' + error.message);
        client.leaveThread(thread.id);
      });
    }
  });

  on($('messages'), 'click', function (event) {
    var item = closest(event.target, this, 'data-message-id');
    var message = item && findMessage(item.getAttribute('data-message-id'));
    if (!message) return;
    // The button clicked (or the one around the emoji clicked).
    var target = closest(event.target, item, 'data-emoji') || closest(event.target, item, 'data-action') || event.target;
    var emoji = target.getAttribute('data-emoji');
    var action = target.getAttribute('data-action');
    if (/\bmenu-toggle\b/.test(target.className)) {
      menuFor = menuFor === message.id ? null : message.id;
      return renderMessages();
    }
    if (emoji) {
      var reacted = false;
      for (var i = 0; i < message.reactions.length; i++) {
        if (message.reactions[i].emoji === emoji && message.reactions[i].userIds.indexOf(me.id) !== -1) reacted = true;
      }
      menuFor = null;
      (reacted ? client.unreact : client.react).call(client, message.threadId, message.id, emoji, function (error, changed) {
        showError('composer-error', error);
        if (!error) replaceMessage(changed);
      });
      return renderMessages();
    }
    if (!action) return;
    menuFor = null;
    if (action === 'reply') {
      editing = null;
      replyingTo = message;
      $('message-input').focus();
    } else if (action === 'edit') {
      replyingTo = null;
      editing = message;
      $('message-input').value = message.body;
      $('message-input').focus();
    } else if (action === 'delete' && window.confirm('Delete this message for everyone?')) {
      client.deleteMessage(message.threadId, message.id, function (error) {
        showError('composer-error', error);
      });
    }
    renderConversation();
  });

  on($('composer-cancel'), 'click', resetComposer);

  on($('message-input'), 'input', function () {
    updateCounter();
    if (openThreadId && this.value && !editing) client.typing(openThreadId);
  });

  // Enter sends, Shift+Enter starts a new line, Escape leaves a reply or an edit.
  on($('message-input'), 'keydown', function (event) {
    if (event.keyCode === 27) resetComposer();
    if (event.keyCode === 13 && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (!$('send').disabled) $('send').click();
    }
  });

  on($('back'), 'click', function () {
    openThreadId = null;
    renderThreads();
    renderConversation();
  });

  on($('composer'), 'submit', function (event) {
    event.preventDefault();
    var input = $('message-input');
    var body = input.value;
    if (!openThreadId || !/\S/.test(body)) return;
    var threadId = openThreadId;
    var edited = editing;
    var answering = replyingTo;
    resetComposer();
    $('composer-error').textContent = '';
    if (edited) {
      client.editMessage(threadId, edited.id, body, function (error, message) {
        showProblem('composer-error', { body: 'composer-error' }, error);
        if (error) return;
        replaceMessage(message);
      });
      return;
    }
    client.send(threadId, body, { replyTo: answering ? answering.id : null }, function (error, message) {
      if (error) {
        // The server refused it (not a failure it will get over): give the text back rather than lose it.
        if (!input.value) input.value = body;
        showProblem('composer-error', { body: 'composer-error' }, error);
        updateCounter();
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
  client.on('message.updated', function (envelope) {
    replaceMessage(envelope.data);
  });
  client.on('message.deleted', onMessageDeleted);
  client.on('reaction.added', onReaction);
  client.on('reaction.removed', onReaction);
  client.on('seen', onMarker);
  client.on('delivered', onMarker);
  client.on('typing', onTyping);
  client.on('thread.updated', onThreadUpdated);
  client.on('thread.removed', onThreadRemoved);
  client.on('presence', onPresence);
  client.on('reset', fetchThreads);
  client.on('transport', renderTransport);
  client.on('state', renderTransport);
  client.on('unauthorized', signedOut);
  client.on('outbox', function () {
    if (me && openThreadId) renderMessages();
  });
  client.on('sent', function (sent) {
    if (sent.message.threadId !== openThreadId) return;
    addMessage(sent.message);
    renderMessages();
  });
  client.on('sendfailed', function (failed) {
    // A message a reload left in the outbox, which the server refused: say so where it was.
    if (failed.entry.threadId === openThreadId) showProblem('composer-error', { body: 'composer-error' }, failed.error);
  });

  // A reload or a new tab: the browser's session (the HttpOnly cookie) signs the page in again.
  // While the server cannot be reached (offline, or restarting) the page waits for it rather
  // than asking to sign in; messages left in the outbox go out once it is back.
  var restoreTimer = null;
  var restoreFailures = 0;
  function restoreSession() {
    restoreTimer = null;
    client.restore(function (error, user) {
      if (user) return signedIn(user);
      if (error && (error.status === 0 || error.status >= 500)) {
        restoreFailures += 1;
        $('restoring').textContent = 'Waiting for the server\u2026';
        restoreTimer = setTimeout(restoreSession, Math.min(10000, 250 * Math.pow(2, restoreFailures)));
        return;
      }
      signedOut();
      showError('signin-error', error);
    });
  }
  on(window, 'online', function () {
    if (restoreTimer === null) return;
    clearTimeout(restoreTimer);
    restoreSession();
  });
  restoreSession();

  // For tests and the curious: the page's client.
  window.postlineDemo = { client: client };
})();
