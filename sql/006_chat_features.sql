-- The chat features every chat has: delivery receipts, edit, delete (tombstones), reactions,
-- replies, full-text search of messages and a people search.

-- Accent-insensitive search: "tieng viet" finds "tiếng Việt". unaccent is in Postgres' contrib and
-- a trusted extension (Postgres 13+), so the database owner may create it.
CREATE EXTENSION IF NOT EXISTS unaccent;

-- Words are unaccented and lowercased, never stemmed and never dropped as stop words: messages mix
-- Vietnamese and English, and an English stemmer or stop list mangles unaccented Vietnamese
-- ("an", "to", "do" are Vietnamese words). Non-ASCII words are the `word`/`hword*` token types;
-- ASCII words have no accents to remove.
CREATE TEXT SEARCH CONFIGURATION postline_search (COPY = pg_catalog.simple);
ALTER TEXT SEARCH CONFIGURATION postline_search
  ALTER MAPPING FOR word, hword, hword_part WITH unaccent, simple;

-- Delivered marker: the highest seq this member's client has acknowledged having. The delivered
-- position reported is greatest(delivered_seq, read_seq): what was read was delivered.
ALTER TABLE thread_members ADD COLUMN delivered_seq bigint NOT NULL DEFAULT 0;

-- Replies, edits and tombstones. A deleted message keeps its row (and seq: threads stay gapless)
-- but not its text: body is NULL exactly when deleted_at is set.
ALTER TABLE messages
  ADD COLUMN reply_to_id bigint REFERENCES messages,
  ADD COLUMN edited_at timestamptz,
  ADD COLUMN deleted_at timestamptz,
  ALTER COLUMN body DROP NOT NULL,
  ADD CONSTRAINT messages_body_unless_deleted CHECK ((body IS NULL) = (deleted_at IS NOT NULL));
CREATE INDEX messages_reply_to_id ON messages (reply_to_id) WHERE reply_to_id IS NOT NULL;
-- unreadCount subtracts the deleted messages above a read marker; there are few of them.
CREATE INDEX messages_deleted ON messages (thread_id, seq) WHERE deleted_at IS NOT NULL;
-- An expression index rather than a stored tsvector column: adding a stored generated column
-- would rewrite the whole table under an exclusive lock. Queries must use this very expression.
CREATE INDEX messages_search ON messages USING gin (to_tsvector('postline_search', body)) WHERE deleted_at IS NULL;

CREATE TABLE message_reactions (
  message_id bigint NOT NULL REFERENCES messages ON DELETE CASCADE,
  emoji      text NOT NULL,
  user_id    bigint NOT NULL REFERENCES users ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (message_id, emoji, user_id)
);

-- People search: a username prefix (text_pattern_ops serves LIKE 'abc%' under any collation) or
-- prefixes of the words of a display name.
CREATE INDEX users_username_prefix ON users (username text_pattern_ops);
CREATE INDEX users_display_name_search ON users USING gin (to_tsvector('postline_search', display_name));

-- The message object gains editedAt, deletedAt, replyTo (a short quote of the message answered,
-- or null) and reactions ([{emoji, count, userIds}], oldest emoji first). It stays one function
-- for REST answers and event payloads alike. array_to_json, not json_agg: json_agg puts line
-- breaks between elements, and an envelope must stay on one line (NDJSON).
CREATE OR REPLACE FUNCTION postline_message_json(m messages) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT row_to_json(j) FROM (
    SELECT m.id::text AS id, m.thread_id::text AS "threadId", m.seq, m.sender_id::text AS "senderId",
           m.body, m.client_id AS "clientId", postline_iso(m.created_at) AS "createdAt",
           postline_iso(m.edited_at) AS "editedAt", postline_iso(m.deleted_at) AS "deletedAt",
           (SELECT row_to_json(q) FROM (
              SELECT r.id::text AS id, r.seq, r.sender_id::text AS "senderId", left(r.body, 160) AS excerpt,
                     postline_iso(r.deleted_at) AS "deletedAt"
                FROM messages r WHERE r.id = m.reply_to_id) q) AS "replyTo",
           (SELECT coalesce(array_to_json(array_agg(
                     (SELECT row_to_json(x) FROM (SELECT g.emoji, g.count, g."userIds") x) ORDER BY g.first, g.emoji)), '[]'::json)
              FROM (SELECT emoji, count(*)::int AS count, array_agg(user_id::text ORDER BY created_at, user_id) AS "userIds",
                           min(created_at) AS first
                      FROM message_reactions WHERE message_id = m.id GROUP BY emoji) g) AS reactions) j
$$;

-- The thread object gains receipts: each member's delivered and read position by seq. unreadCount
-- and lastMessage leave deleted messages out (lastMessage by keeping last_message_id on the newest
-- message that is not deleted).
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
              FROM thread_members m WHERE m.thread_id = t.id) AS receipts
      FROM threads t WHERE t.id = p_thread_id) j
$$;

-- Sends gain replyTo: a message of the same thread that is not deleted, checked under the thread
-- lock. New outcomes: 'reply_not_found' (no such message in this thread) and 'reply_deleted'.
DROP FUNCTION postline_send_messages(bigint[], bigint[], text[], text[]);
CREATE FUNCTION postline_send_messages(
  p_thread_ids bigint[], p_sender_ids bigint[], p_bodies text[], p_client_ids text[], p_reply_to_ids bigint[])
RETURNS TABLE (item integer, outcome text, message json)
LANGUAGE plpgsql
AS $$
DECLARE
  r record;
  v_msg messages;
  v_reply messages;
  -- The new messages' threads and JSON, in message id order (the order phase 1 inserts them).
  v_threads bigint[] := '{}';
  v_created json[] := '{}';
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
    PERFORM 1 FROM threads WHERE id = r.thread_id FOR NO KEY UPDATE;
    IF NOT EXISTS (SELECT 1 FROM thread_members WHERE thread_id = r.thread_id AND user_id = r.sender_id) THEN
      outcome := 'not_found';
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
    UPDATE thread_members SET read_seq = greatest(read_seq, v_msg.seq)
     WHERE thread_id = r.thread_id AND user_id = r.sender_id;
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
  IF v_last_event IS NOT NULL THEN
    PERFORM pg_notify('postline_events', v_last_event::text);
  END IF;
END
$$;

-- A deleted message's text must leave the database, and the event log holds copies of it: in its
-- message.created and message.updated events, as the lastMessage of thread.updated events, and
-- as the quote (replyTo) in the events of replies to it. Rewrite those copies to the messages'
-- current state. Events carry the thread's id, and none older than the message can mention it.
-- Instances keep recent events in memory for resuming clients: a notice at commit ('rewritten',
-- through the highest id rewritten) tells them to read those from the log again.
CREATE FUNCTION postline_refresh_event_copies(p_message_id bigint)
RETURNS void
LANGUAGE sql
AS $$
  WITH rewritten AS (
    UPDATE events e
       SET envelope = (CASE WHEN e.type = 'thread.updated'
                            THEN jsonb_set(e.envelope::jsonb, '{data,lastMessage}', postline_message_json(c)::jsonb)
                            ELSE jsonb_set(e.envelope::jsonb, '{data}', postline_message_json(c)::jsonb) END)::json
      FROM messages target, messages c
     WHERE target.id = p_message_id
       AND e.thread_id = target.thread_id
       AND e.created_at >= target.created_at
       AND e.type IN ('message.created', 'message.updated', 'thread.updated')
       AND c.id = (CASE WHEN e.type = 'thread.updated' THEN e.envelope #>> '{data,lastMessage,id}'
                        ELSE e.envelope #>> '{data,id}' END)::bigint
       AND (c.id = p_message_id OR c.reply_to_id = p_message_id)
    RETURNING e.id)
  SELECT pg_notify('postline_ephemeral', json_build_object('kind', 'rewritten', 'through', max(id))::text)
    FROM rewritten HAVING count(*) > 0
$$;
