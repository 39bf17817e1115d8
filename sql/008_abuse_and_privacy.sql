-- Abuse and privacy (issue 15): requests between strangers, blocks, sends that check membership
-- before they lock, typing toggles held to the 2-second rule, login failures per account and address.

-- Contact between strangers (issue 15 #3). A member who was added by someone they share no
-- accepted thread with holds a *request* (accepted = false) until they accept it (or reply):
-- requests are listed apart, and carry no presence, no typing and no push. Existing members
-- stay accepted.
ALTER TABLE thread_members ADD COLUMN accepted boolean NOT NULL DEFAULT true;
CREATE INDEX thread_members_requests ON thread_members (user_id, thread_id) WHERE NOT accepted;

-- Blocks: blocked users cannot add the blocker to a thread or message them in a direct thread,
-- and the two do not see each other's presence (or typing).
CREATE TABLE blocks (
  blocker_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
  blocked_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (blocker_id, blocked_id),
  CHECK (blocker_id <> blocked_id)
);
CREATE INDEX blocks_blocked_id ON blocks (blocked_id, blocker_id);

-- Whether either of two users blocked the other.
CREATE FUNCTION postline_blocked(p_a bigint, p_b bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT EXISTS (SELECT 1 FROM blocks WHERE (blocker_id = p_a AND blocked_id = p_b) OR (blocker_id = p_b AND blocked_id = p_a))
$$;

-- Contacts: two users who are both accepted members of some thread, neither having blocked the
-- other. Presence goes between contacts only; a stranger's new thread is a request.
CREATE FUNCTION postline_contacts(p_a bigint, p_b bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT EXISTS (SELECT 1 FROM thread_members x JOIN thread_members y USING (thread_id)
                  WHERE x.user_id = p_a AND y.user_id = p_b AND x.accepted AND y.accepted)
     AND NOT postline_blocked(p_a, p_b)
$$;

-- The thread object gains `pending`: the members for whom it is a request, in member order.
CREATE OR REPLACE FUNCTION postline_thread_json(p_thread_id bigint, p_viewer bigint) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT row_to_json(j) FROM (
    SELECT t.id::text AS id, t.kind, t.title, t.created_by::text AS "createdBy",
           (SELECT coalesce(array_to_json(array_agg(postline_user_json(u) ORDER BY m.joined_at, u.id)), '[]'::json)
              FROM thread_members m JOIN users u ON u.id = m.user_id WHERE m.thread_id = t.id) AS members,
           (SELECT postline_message_json(lm) FROM messages lm WHERE lm.id = t.last_message_id) AS "lastMessage",
           (SELECT t.last_seq - v.read_seq
                   - (SELECT count(*) FROM messages d WHERE d.thread_id = t.id AND d.seq > v.read_seq AND d.deleted_at IS NOT NULL)
              FROM thread_members v WHERE v.thread_id = t.id AND v.user_id = p_viewer) AS "unreadCount",
           postline_iso(t.updated_at) AS "updatedAt",
           (SELECT coalesce(array_to_json(array_agg(
                     (SELECT row_to_json(x) FROM (SELECT m.user_id::text AS "userId",
                                                         greatest(m.delivered_seq, m.read_seq) AS "deliveredSeq",
                                                         m.read_seq AS "readSeq") x)
                     ORDER BY m.joined_at, m.user_id)), '[]'::json)
              FROM thread_members m WHERE m.thread_id = t.id) AS receipts,
           (SELECT coalesce(array_to_json(array_agg(m.user_id::text ORDER BY m.joined_at, m.user_id)), '[]'::json)
              FROM thread_members m WHERE m.thread_id = t.id AND NOT m.accepted) AS pending
      FROM threads t WHERE t.id = p_thread_id) j
$$;

-- Typing: `broadcast_at` is now when typing:true was last announced (a typing:false no longer
-- moves it), so typing:true is announced at most once per 2 s however often a client toggles
-- true/false/true (each toggle used to be announced). typing:false is still announced only when
-- true was, so each (thread, user) costs at most two notices per 2 s. A first row that says false
-- has announced nothing: it starts at -infinity.
-- With requests and blocks: a member whose thread is a request does not type (nothing is
-- announced), and typing reaches only accepted members who are not blocked from or by the typer.
CREATE OR REPLACE FUNCTION postline_set_typing(p_thread_id bigint, p_user_id bigint, p_typing boolean)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
  v_accepted boolean;
  v_announce boolean;
  v_part text[];
BEGIN
  SELECT accepted INTO v_accepted FROM thread_members WHERE thread_id = p_thread_id AND user_id = p_user_id;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  IF NOT v_accepted THEN
    RETURN true;
  END IF;
  INSERT INTO typing_state AS s (thread_id, user_id, typing, broadcast_at)
  VALUES (p_thread_id, p_user_id, p_typing, CASE WHEN p_typing THEN now() ELSE '-infinity' END)
  ON CONFLICT (thread_id, user_id) DO UPDATE
     SET typing = excluded.typing,
         broadcast_at = CASE WHEN excluded.typing THEN excluded.broadcast_at ELSE s.broadcast_at END
   WHERE (excluded.typing AND s.broadcast_at <= now() - interval '2 seconds')
      OR (NOT excluded.typing AND s.typing)
  RETURNING (p_typing OR s.xmax::text <> '0') INTO v_announce; -- xmax 0: a first row, nothing to retract
  IF v_announce THEN
    FOR v_part IN
      SELECT array_agg(user_id::text ORDER BY user_id)
        FROM (SELECT m.user_id, (row_number() OVER (ORDER BY m.user_id) - 1) / 256 AS part
                FROM thread_members m
               WHERE m.thread_id = p_thread_id AND m.user_id <> p_user_id AND m.accepted
                 AND NOT postline_blocked(p_user_id, m.user_id)) m
       GROUP BY part
    LOOP
      PERFORM pg_notify('postline_ephemeral', json_build_object(
        'kind', 'typing', 'threadId', p_thread_id::text, 'userId', p_user_id::text, 'typing', p_typing,
        'at', postline_iso(now()), 'audience', to_json(v_part))::text);
    END LOOP;
  END IF;
  RETURN true;
END
$$;

-- Sends check membership before they lock the thread row: a non-member's send (to a thread of
-- others) must not queue behind the thread's senders, which made it measurably slower than a
-- send to a missing thread. Membership is checked again under the lock (a removal may have
-- committed in between). New outcome 'blocked': a direct thread whose two members are blocked
-- (either way). Sending in a thread that is a request for the sender accepts it (a reply is
-- consent); that appends a thread.updated (its `pending` changed) after the batch's messages.
CREATE OR REPLACE FUNCTION postline_send_messages(
  p_thread_ids bigint[], p_sender_ids bigint[], p_bodies text[], p_client_ids text[], p_reply_to_ids bigint[])
RETURNS TABLE (item integer, outcome text, message json)
LANGUAGE plpgsql
AS $$
DECLARE
  r record;
  v_msg messages;
  v_reply messages;
  v_thread threads;
  v_accepted boolean;
  -- The new messages' threads and JSON, in message id order (the order phase 1 inserts them).
  v_threads bigint[] := '{}';
  v_created json[] := '{}';
  -- Threads whose request a send accepted.
  v_accepted_threads bigint[] := '{}';
  v_thread_id bigint;
  v_last_event bigint;
BEGIN
  -- Phase 1: row locks, in thread order so that concurrent batches cannot deadlock, and in
  -- arrival order within a thread so that seq follows the order the sends came in.
  FOR r IN
    SELECT i, p_thread_ids[i] AS thread_id, p_sender_ids[i] AS sender_id,
           p_bodies[i] AS body, p_client_ids[i] AS client_id, p_reply_to_ids[i] AS reply_to_id
      FROM generate_subscripts(p_thread_ids, 1) AS i
     ORDER BY p_thread_ids[i], i
  LOOP
    item := r.i;
    message := NULL;
    IF NOT EXISTS (SELECT 1 FROM thread_members WHERE thread_id = r.thread_id AND user_id = r.sender_id) THEN
      outcome := 'not_found';
      RETURN NEXT;
      CONTINUE;
    END IF;
    SELECT * INTO v_thread FROM threads WHERE id = r.thread_id FOR NO KEY UPDATE;
    SELECT accepted INTO v_accepted FROM thread_members WHERE thread_id = r.thread_id AND user_id = r.sender_id;
    IF NOT FOUND THEN
      outcome := 'not_found';
      RETURN NEXT;
      CONTINUE;
    END IF;
    IF v_thread.kind = 'direct' AND postline_blocked(v_thread.direct_user_low, v_thread.direct_user_high) THEN
      outcome := 'blocked';
      RETURN NEXT;
      CONTINUE;
    END IF;
    IF r.client_id IS NOT NULL THEN
      SELECT * INTO v_msg FROM messages
       WHERE thread_id = r.thread_id AND sender_id = r.sender_id AND client_id = r.client_id;
      IF FOUND THEN
        outcome := 'duplicate'; message := postline_message_json(v_msg);
        RETURN NEXT;
        CONTINUE;
      END IF;
    END IF;
    IF r.reply_to_id IS NOT NULL THEN
      SELECT * INTO v_reply FROM messages WHERE id = r.reply_to_id AND thread_id = r.thread_id;
      IF NOT FOUND OR v_reply.deleted_at IS NOT NULL THEN
        outcome := CASE WHEN FOUND THEN 'reply_deleted' ELSE 'reply_not_found' END;
        RETURN NEXT;
        CONTINUE;
      END IF;
    END IF;
    INSERT INTO messages (thread_id, seq, sender_id, body, client_id, reply_to_id)
    SELECT r.thread_id, t.last_seq + 1, r.sender_id, r.body, r.client_id, r.reply_to_id FROM threads t WHERE t.id = r.thread_id
    RETURNING * INTO v_msg;
    UPDATE threads SET last_seq = v_msg.seq, last_message_id = v_msg.id, updated_at = now()
     WHERE id = r.thread_id;
    UPDATE thread_members SET read_seq = greatest(read_seq, v_msg.seq), accepted = true
     WHERE thread_id = r.thread_id AND user_id = r.sender_id;
    IF NOT v_accepted AND NOT r.thread_id = ANY (v_accepted_threads) THEN
      v_accepted_threads := v_accepted_threads || r.thread_id;
    END IF;
    outcome := 'created'; message := postline_message_json(v_msg);
    v_threads := v_threads || r.thread_id;
    v_created := v_created || message;
    RETURN NEXT;
  END LOOP;

  -- Phase 2: the events, after every row lock (the commit-order lock must come last). Message ids
  -- were taken in phase-1 order, so each thread's events follow its seq. The JSON is phase 1's:
  -- nothing later in the batch changes a message.
  FOR i IN 1 .. coalesce(array_length(v_threads, 1), 0) LOOP
    v_last_event := postline_insert_event('message.created', v_threads[i],
      (SELECT array_agg(tm.user_id ORDER BY tm.user_id) FROM thread_members tm WHERE tm.thread_id = v_threads[i]),
      v_created[i]);
  END LOOP;
  FOREACH v_thread_id IN ARRAY v_accepted_threads LOOP
    v_last_event := postline_insert_event('thread.updated', v_thread_id,
      (SELECT array_agg(tm.user_id ORDER BY tm.user_id) FROM thread_members tm WHERE tm.thread_id = v_thread_id),
      postline_thread_json(v_thread_id, NULL));
  END LOOP;
  IF v_last_event IS NOT NULL THEN
    PERFORM pg_notify('postline_events', v_last_event::text);
  END IF;
END
$$;

-- Pushes go to accepted members only (a request pushes nothing), and never from someone the
-- recipient blocked.
CREATE OR REPLACE FUNCTION postline_push_recipients(p_message_id bigint)
RETURNS TABLE (user_id bigint, external_id text, unread_count bigint, thread_unread_count bigint)
LANGUAGE sql STABLE
AS $$
  SELECT tm.user_id, u.external_id,
         (SELECT coalesce(sum(postline_unread_count(t2.id, t2.last_seq, m2.read_seq)), 0)::bigint
            FROM thread_members m2 JOIN threads t2 ON t2.id = m2.thread_id WHERE m2.user_id = tm.user_id),
         postline_unread_count(t.id, t.last_seq, tm.read_seq)
    FROM messages msg
    JOIN threads t ON t.id = msg.thread_id
    JOIN thread_members tm ON tm.thread_id = msg.thread_id
    JOIN users u ON u.id = tm.user_id
   WHERE msg.id = p_message_id
     AND msg.deleted_at IS NULL
     AND tm.user_id <> msg.sender_id
     AND tm.accepted
     AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = tm.user_id AND b.blocked_id = msg.sender_id)
     AND greatest(tm.delivered_seq, tm.read_seq) < msg.seq
   ORDER BY tm.user_id
$$;

-- Failed sign-ins per account and client address (issue 15 #4). The per-account count alone let
-- anyone lock an account out (its right password answered 429 too), and still let a guesser with
-- many addresses try ten passwords a minute forever. Now each (account, address) has a few free
-- failures, then a wait that doubles with each further failure; and the account has a looser cap
-- over all addresses together, which holds back only the addresses that have failed for it
-- recently: a right password from an address with no recent failures always gets checked.
-- UNLOGGED, like rate_limit_hits: a crash forgetting who failed costs little.
CREATE UNLOGGED TABLE login_failures (
  username text NOT NULL,
  address  text NOT NULL,
  failures integer NOT NULL,
  last_at  timestamptz NOT NULL,
  -- Before this, the address's next attempt for the account is refused unchecked.
  retry_at timestamptz NOT NULL,
  PRIMARY KEY (username, address)
);
CREATE INDEX login_failures_last_at ON login_failures (last_at);

-- Reserve a login attempt: count it as a failure in advance (concurrent guesses on several
-- instances cannot all slip through before one is counted; a success takes it back by deleting
-- the row), or refuse it. Returns NULL when the attempt may go ahead, else when to try again.
-- Failures older than p_window are forgotten. Attempts for one account take turns (advisory lock).
CREATE FUNCTION postline_reserve_login(
  p_username text, p_address text, p_free integer, p_account_cap integer, p_window interval, p_max_wait interval)
RETURNS timestamptz
LANGUAGE plpgsql
AS $$
DECLARE
  v_pair login_failures;
  v_account integer;
  v_failures integer;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('postline.login:' || p_username, 0));
  SELECT * INTO v_pair FROM login_failures
   WHERE username = p_username AND address = p_address AND last_at > now() - p_window;
  IF FOUND THEN
    IF v_pair.retry_at > now() THEN
      RETURN v_pair.retry_at;
    END IF;
    SELECT sum(failures) INTO v_account FROM login_failures WHERE username = p_username AND last_at > now() - p_window;
    IF v_account >= p_account_cap THEN
      -- Until the oldest failure counted is forgotten.
      RETURN (SELECT min(last_at) FROM login_failures WHERE username = p_username AND last_at > now() - p_window) + p_window;
    END IF;
  END IF;
  v_failures := coalesce(v_pair.failures, 0) + 1;
  INSERT INTO login_failures (username, address, failures, last_at, retry_at)
  VALUES (p_username, p_address, v_failures, now(),
          now() + CASE WHEN v_failures < p_free THEN interval '0'
                       ELSE least(p_max_wait, interval '1 second' * power(2, least(v_failures - p_free, 30))) END)
  ON CONFLICT (username, address) DO UPDATE
     SET failures = excluded.failures, last_at = excluded.last_at, retry_at = excluded.retry_at;
  RETURN NULL;
END
$$;
