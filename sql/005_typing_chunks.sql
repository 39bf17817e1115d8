-- Typing notices name their audience inline (typing is never stored), and a NOTIFY payload holds
-- at most 8000 bytes: a group of ~800 members overflowed it and the POST failed. The audience is
-- now sent in parts of at most 256 ids (256 × 19 digits and quotes fit with room to spare), one
-- NOTIFY each; every member is in exactly one part, so each gets the event once.
CREATE OR REPLACE FUNCTION postline_set_typing(p_thread_id bigint, p_user_id bigint, p_typing boolean)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
  v_member boolean;
  v_announce boolean;
  v_part text[];
BEGIN
  SELECT bool_or(user_id = p_user_id) INTO v_member FROM thread_members WHERE thread_id = p_thread_id;
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
    FOR v_part IN
      SELECT array_agg(user_id::text ORDER BY user_id)
        FROM (SELECT user_id, (row_number() OVER (ORDER BY user_id) - 1) / 256 AS part
                FROM thread_members WHERE thread_id = p_thread_id AND user_id <> p_user_id) m
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
