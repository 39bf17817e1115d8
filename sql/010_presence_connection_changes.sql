-- A change to an instance's connections and the reconciliation of its users, in one transaction
-- (and one round trip). Written apart, a sweep (postline_reconcile_presence_many over the users
-- online with no connection) could run between them and announce some of the departed itself:
-- not wrong, but a burst of departures reached the other instances as several notifications.
--
-- Both take their row locks before the users' advisory locks, as every writer of
-- presence_connections does, so they cannot deadlock with one another. Callers pass at most a few
-- hundred users: each advisory lock is held until the transaction commits.
CREATE FUNCTION postline_add_connections(p_instance_id text, p_user_ids bigint[])
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO presence_connections (instance_id, user_id)
  SELECT p_instance_id, unnest(p_user_ids)
  ON CONFLICT DO NOTHING;
  PERFORM postline_reconcile_presence_many(p_user_ids);
END
$$;

CREATE FUNCTION postline_remove_connections(p_instance_id text, p_user_ids bigint[])
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  DELETE FROM presence_connections WHERE instance_id = p_instance_id AND user_id = ANY (p_user_ids);
  PERFORM postline_reconcile_presence_many(p_user_ids);
END
$$;
