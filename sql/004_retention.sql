-- Retention: delete events older than a given age, oldest ids first, in batches, one instance at
-- a time. pruned_through moves to the highest id deleted; every event above it is kept, so a
-- cursor at or above it resumes completely, and one below it gets a reset.
CREATE FUNCTION postline_prune_events(p_older_than interval, p_batch integer)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
  v_deleted integer;
  v_highest bigint;
BEGIN
  IF NOT pg_try_advisory_xact_lock(hashtextextended('postline.retention', 0)) THEN
    RETURN 0; -- another instance is pruning
  END IF;
  WITH doomed AS (
    SELECT id FROM events WHERE created_at < now() - p_older_than ORDER BY id LIMIT p_batch
  ), deleted AS (
    DELETE FROM events e USING doomed d WHERE e.id = d.id RETURNING e.id
  )
  SELECT count(*), max(id) INTO v_deleted, v_highest FROM deleted;
  IF v_deleted > 0 THEN
    UPDATE event_retention SET pruned_through = greatest(pruned_through, v_highest);
  END IF;
  RETURN v_deleted;
END
$$;

-- Typing states are only compared within seconds; older rows are dead weight.
CREATE INDEX typing_state_broadcast_at ON typing_state (broadcast_at);
