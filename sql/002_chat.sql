-- Threads, members, messages, and the event log every delivery path reads from.

CREATE TABLE threads (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind             text NOT NULL CHECK (kind IN ('direct', 'group')),
  title            text,
  created_by       bigint NOT NULL REFERENCES users,
  -- A direct thread's two members, lowest id first; the unique pair makes "ask again" find it.
  direct_user_low  bigint REFERENCES users,
  direct_user_high bigint REFERENCES users,
  last_seq         bigint NOT NULL DEFAULT 0,
  last_message_id  bigint,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (direct_user_low, direct_user_high),
  CHECK ((kind = 'direct') = (direct_user_low IS NOT NULL AND direct_user_high IS NOT NULL))
);

CREATE TABLE thread_members (
  thread_id bigint NOT NULL REFERENCES threads ON DELETE CASCADE,
  user_id   bigint NOT NULL REFERENCES users ON DELETE CASCADE,
  -- Read marker: the highest seq this member has seen. unreadCount = threads.last_seq - read_seq,
  -- because sending moves the sender's own marker to the new message.
  read_seq  bigint NOT NULL DEFAULT 0,
  joined_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (thread_id, user_id)
);
CREATE INDEX thread_members_user_id ON thread_members (user_id, thread_id);

CREATE TABLE messages (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  thread_id  bigint NOT NULL REFERENCES threads ON DELETE CASCADE,
  seq        bigint NOT NULL,
  sender_id  bigint NOT NULL REFERENCES users,
  body       text NOT NULL,
  client_id  text,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (thread_id, seq),
  -- Idempotent send: one message per (thread, sender, clientId).
  UNIQUE (thread_id, sender_id, client_id)
);

ALTER TABLE threads ADD FOREIGN KEY (last_message_id) REFERENCES messages DEFERRABLE INITIALLY DEFERRED;

-- The event log. One row per durable event, holding the contract's envelope and the users who may
-- see it (the thread's members when it happened). Ids come from events_id_seq under the
-- commit-order lock taken in postline_insert_event, so ids commit in increasing order.
CREATE SEQUENCE events_id_seq AS bigint;
CREATE TABLE events (
  id         bigint PRIMARY KEY,
  type       text NOT NULL,
  thread_id  bigint,
  audience   bigint[] NOT NULL,
  envelope   json NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE events_id_seq OWNED BY events.id;
CREATE INDEX events_audience ON events USING gin (audience);
CREATE INDEX events_created_at ON events USING brin (created_at);

-- Events up to pruned_through were deleted by retention; cursors below it get a reset.
CREATE TABLE event_retention (
  singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  pruned_through bigint NOT NULL DEFAULT 0
);
INSERT INTO event_retention DEFAULT VALUES;

-- The JSON shapes of the HTTP contract, built in one place for the REST answers and the events.
-- row_to_json writes compact JSON (json_build_object would put spaces around every colon).

CREATE FUNCTION postline_iso(ts timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

CREATE FUNCTION postline_user_json(u users) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT row_to_json(j) FROM (SELECT u.id::text AS id, u.username, u.display_name AS "displayName") j $$;

CREATE FUNCTION postline_message_json(m messages) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT row_to_json(j) FROM (
    SELECT m.id::text AS id, m.thread_id::text AS "threadId", m.seq, m.sender_id::text AS "senderId",
           m.body, m.client_id AS "clientId", postline_iso(m.created_at) AS "createdAt") j
$$;

-- unreadCount is the viewer's; events carry the thread without a viewer, so it is null there.
CREATE FUNCTION postline_thread_json(p_thread_id bigint, p_viewer bigint) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT row_to_json(j) FROM (
    SELECT t.id::text AS id, t.kind, t.title, t.created_by::text AS "createdBy",
           (SELECT coalesce(array_to_json(array_agg(postline_user_json(u) ORDER BY m.joined_at, u.id)), '[]'::json)
              FROM thread_members m JOIN users u ON u.id = m.user_id WHERE m.thread_id = t.id) AS members,
           (SELECT postline_message_json(lm) FROM messages lm WHERE lm.id = t.last_message_id) AS "lastMessage",
           (SELECT t.last_seq - v.read_seq FROM thread_members v
             WHERE v.thread_id = t.id AND v.user_id = p_viewer) AS "unreadCount",
           postline_iso(t.updated_at) AS "updatedAt"
      FROM threads t WHERE t.id = p_thread_id) j
$$;

-- Append one event to the log. Must be the transaction's last lock: it takes the commit-order
-- lock, held until commit, so that event ids are taken and committed one transaction at a time.
CREATE FUNCTION postline_insert_event(p_type text, p_thread_id bigint, p_audience bigint[], p_data json)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
  v_id bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(8101821198535061093); -- 'postline' in ASCII
  v_id := nextval('events_id_seq');
  INSERT INTO events (id, type, thread_id, audience, envelope)
  SELECT v_id, p_type, p_thread_id, p_audience, row_to_json(j)
    FROM (SELECT v_id::text AS id, p_type AS type, p_thread_id::text AS "threadId",
                 postline_iso(now()) AS at, p_data AS data) j;
  RETURN v_id;
END
$$;

-- Append and announce: the NOTIFY carries only the id (payloads are capped at 8000 bytes) and is
-- sent at commit, so listeners never hear of an event they cannot read yet.
CREATE FUNCTION postline_append_event(p_type text, p_thread_id bigint, p_audience bigint[], p_data json)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
  v_id bigint := postline_insert_event(p_type, p_thread_id, p_audience, p_data);
BEGIN
  PERFORM pg_notify('postline_events', v_id::text);
  RETURN v_id;
END
$$;

-- Send a batch of messages in one transaction (group commit: one lock, one commit, one NOTIFY for
-- many concurrent sends). Outcome per item: 'created', 'duplicate' (same clientId from the same
-- sender in the same thread: the original message) or 'not_found' (no such thread, or the sender
-- is not a member).
CREATE FUNCTION postline_send_messages(
  p_thread_ids bigint[], p_sender_ids bigint[], p_bodies text[], p_client_ids text[])
RETURNS TABLE (item integer, outcome text, message json)
LANGUAGE plpgsql
AS $$
DECLARE
  r record;
  v_msg messages;
  v_created bigint[] := '{}';
  v_last_event bigint;
BEGIN
  -- Phase 1: row locks, in thread order so that concurrent batches cannot deadlock, and in
  -- arrival order within a thread so that seq follows the order the sends came in.
  FOR r IN
    SELECT i, p_thread_ids[i] AS thread_id, p_sender_ids[i] AS sender_id,
           p_bodies[i] AS body, p_client_ids[i] AS client_id
      FROM generate_subscripts(p_thread_ids, 1) AS i
     ORDER BY p_thread_ids[i], i
  LOOP
    item := r.i;
    PERFORM 1 FROM threads WHERE id = r.thread_id FOR NO KEY UPDATE;
    IF NOT EXISTS (SELECT 1 FROM thread_members WHERE thread_id = r.thread_id AND user_id = r.sender_id) THEN
      outcome := 'not_found'; message := NULL;
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
    INSERT INTO messages (thread_id, seq, sender_id, body, client_id)
    SELECT r.thread_id, t.last_seq + 1, r.sender_id, r.body, r.client_id FROM threads t WHERE t.id = r.thread_id
    RETURNING * INTO v_msg;
    UPDATE threads SET last_seq = v_msg.seq, last_message_id = v_msg.id, updated_at = now()
     WHERE id = r.thread_id;
    UPDATE thread_members SET read_seq = greatest(read_seq, v_msg.seq)
     WHERE thread_id = r.thread_id AND user_id = r.sender_id;
    v_created := v_created || v_msg.id;
    outcome := 'created'; message := postline_message_json(v_msg);
    RETURN NEXT;
  END LOOP;

  -- Phase 2: the events, after every row lock (the commit-order lock must come last). Message ids
  -- were taken in phase-1 order, so each thread's events follow its seq.
  FOR r IN
    SELECT m.thread_id, postline_message_json(m) AS data,
           (SELECT array_agg(tm.user_id ORDER BY tm.user_id) FROM thread_members tm
             WHERE tm.thread_id = m.thread_id) AS audience
      FROM messages m WHERE m.id = ANY (v_created) ORDER BY m.id
  LOOP
    v_last_event := postline_insert_event('message.created', r.thread_id, r.audience, r.data);
  END LOOP;
  IF v_last_event IS NOT NULL THEN
    PERFORM pg_notify('postline_events', v_last_event::text);
  END IF;
END
$$;
