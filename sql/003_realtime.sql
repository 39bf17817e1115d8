-- Ephemeral real-time state: typing and presence. UNLOGGED: none of it is worth keeping over a
-- crash, and skipping the WAL keeps these frequent writes cheap.

-- Last broadcast typing state per member, so a repeated typing:true within 2 s is not re-sent.
CREATE UNLOGGED TABLE typing_state (
  thread_id    bigint NOT NULL,
  user_id      bigint NOT NULL,
  typing       boolean NOT NULL,
  broadcast_at timestamptz NOT NULL,
  PRIMARY KEY (thread_id, user_id)
);

-- Live postline processes; one that stops heartbeating is presumed dead and its connections go.
CREATE UNLOGGED TABLE instances (
  id           text PRIMARY KEY,
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Users with an open stream or a recent poll, per instance.
CREATE UNLOGGED TABLE presence_connections (
  instance_id text NOT NULL REFERENCES instances ON DELETE CASCADE,
  user_id     bigint NOT NULL,
  PRIMARY KEY (instance_id, user_id)
);
CREATE INDEX presence_connections_user_id ON presence_connections (user_id);

-- The presence last announced per user.
CREATE UNLOGGED TABLE presence (
  user_id    bigint PRIMARY KEY,
  online     boolean NOT NULL,
  changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX presence_online ON presence (user_id) WHERE online;

-- Record a typing state and announce it to the other members (inline in the NOTIFY: typing is
-- never stored as an event), unless it repeats typing:true within 2 s or says false when true was
-- never announced. Returns false, doing nothing, when the user is not a member.
CREATE FUNCTION postline_set_typing(p_thread_id bigint, p_user_id bigint, p_typing boolean)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
  v_member boolean;
  v_others bigint[];
  v_announce boolean;
BEGIN
  SELECT bool_or(user_id = p_user_id), array_agg(user_id ORDER BY user_id) FILTER (WHERE user_id <> p_user_id)
    INTO v_member, v_others
    FROM thread_members WHERE thread_id = p_thread_id;
  IF v_member IS NOT TRUE THEN
    RETURN false;
  END IF;
  INSERT INTO typing_state AS s (thread_id, user_id, typing, broadcast_at)
  VALUES (p_thread_id, p_user_id, p_typing, now())
  ON CONFLICT (thread_id, user_id) DO UPDATE SET typing = excluded.typing, broadcast_at = excluded.broadcast_at
   WHERE (excluded.typing AND NOT (s.typing AND s.broadcast_at > now() - interval '2 seconds'))
      OR (NOT excluded.typing AND s.typing)
  RETURNING (p_typing OR s.xmax::text <> '0') INTO v_announce; -- xmax 0: a first row, nothing to retract
  IF v_announce THEN
    PERFORM pg_notify('postline_ephemeral', json_build_object(
      'kind', 'typing', 'threadId', p_thread_id::text, 'userId', p_user_id::text, 'typing', p_typing,
      'at', postline_iso(now()), 'audience', to_json(coalesce(v_others, '{}')::text[]))::text);
  END IF;
  RETURN true;
END
$$;

-- Decide a user's presence from presence_connections and announce a change. Reconciliations of
-- one user take turns (advisory lock), and each reads the connections committed before it, so
-- the last one to run always leaves the truth behind.
CREATE FUNCTION postline_reconcile_presence(p_user_id bigint)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  v_online boolean;
  v_changed boolean;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('postline.presence:' || p_user_id, 0));
  v_online := EXISTS (SELECT 1 FROM presence_connections WHERE user_id = p_user_id);
  IF NOT v_online AND NOT EXISTS (SELECT 1 FROM presence WHERE user_id = p_user_id) THEN
    RETURN; -- never seen online: nothing to announce
  END IF;
  INSERT INTO presence AS p (user_id, online) VALUES (p_user_id, v_online)
  ON CONFLICT (user_id) DO UPDATE SET online = excluded.online, changed_at = now()
   WHERE p.online <> excluded.online
  RETURNING true INTO v_changed;
  IF v_changed THEN
    PERFORM pg_notify('postline_ephemeral', json_build_object(
      'kind', 'presence', 'userId', p_user_id::text, 'online', v_online, 'at', postline_iso(now()))::text);
  END IF;
END
$$;
