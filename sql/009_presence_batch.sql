-- Presence reconciled for many users in one statement and announced in few notifications. A
-- burst of arrivals or departures (thousands of reconnects after a deploy, a dead instance's
-- users swept offline) used to cost one round trip and one NOTIFY per user, and every instance
-- ran a query for every NOTIFY.
--
-- Each user is decided as postline_reconcile_presence does (under the same per-user advisory
-- lock); the locks are taken in the order of their keys, so concurrent reconciliations of
-- overlapping sets cannot deadlock. Changes are announced on postline_ephemeral as
-- {"kind":"presence-changes","changes":[{"userId","online"},…],"at"}, at most 150 a notification
-- (well under the 8000-byte payload limit).
CREATE FUNCTION postline_reconcile_presence_many(p_user_ids bigint[])
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  v_user_id bigint;
  v_online boolean;
  v_changed boolean;
  v_changes jsonb := '[]';
  v_count int := 0;
BEGIN
  FOR v_user_id IN
    SELECT u FROM (SELECT DISTINCT u FROM unnest(p_user_ids) AS u) AS users
     ORDER BY hashtextextended('postline.presence:' || u, 0)
  LOOP
    PERFORM pg_advisory_xact_lock(hashtextextended('postline.presence:' || v_user_id, 0));
    v_online := EXISTS (SELECT 1 FROM presence_connections WHERE user_id = v_user_id);
    CONTINUE WHEN NOT v_online AND NOT EXISTS (SELECT 1 FROM presence WHERE user_id = v_user_id);
    v_changed := NULL;
    INSERT INTO presence AS p (user_id, online) VALUES (v_user_id, v_online)
    ON CONFLICT (user_id) DO UPDATE SET online = excluded.online, changed_at = now()
     WHERE p.online <> excluded.online
    RETURNING true INTO v_changed;
    IF v_changed THEN
      v_changes := v_changes || jsonb_build_object('userId', v_user_id::text, 'online', v_online);
      v_count := v_count + 1;
      IF v_count = 150 THEN
        PERFORM pg_notify('postline_ephemeral', jsonb_build_object('kind', 'presence-changes', 'changes', v_changes, 'at', postline_iso(now()))::text);
        v_changes := '[]';
        v_count := 0;
      END IF;
    END IF;
  END LOOP;
  IF v_count > 0 THEN
    PERFORM pg_notify('postline_ephemeral', jsonb_build_object('kind', 'presence-changes', 'changes', v_changes, 'at', postline_iso(now()))::text);
  END IF;
END
$$;
