-- Fitting into a host product (issue 13).

-- Users of the host application: `external_id` is the `sub` of the host's JWTs. They have no
-- password (and cannot log in with one); their username is '~' || external_id, which no
-- registered account can take (registration allows only [a-z0-9_.-]).
ALTER TABLE users ADD COLUMN external_id text UNIQUE;
ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;
ALTER TABLE users ADD CONSTRAINT users_password_or_external_id CHECK ((password_hash IS NULL) = (external_id IS NOT NULL));

-- Push webhook (POSTLINE_WEBHOOK_URL): tell the host when a recipient did not get a message, so
-- that its backend sends the push (APNs/FCM). Each instance writes its setting here at start
-- (all instances share one configuration).
CREATE TABLE push_settings (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  enabled   boolean NOT NULL DEFAULT false,
  -- How long after the send the job is looked at: time for the recipients to receive it.
  grace     interval NOT NULL DEFAULT interval '10 seconds'
);
INSERT INTO push_settings DEFAULT VALUES;

-- One job per message, written in the message's own transaction (nothing acknowledged is lost to
-- a crash), delivered at least once by one instance at a time (FOR UPDATE SKIP LOCKED).
CREATE TABLE push_jobs (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  message_id bigint NOT NULL REFERENCES messages ON DELETE CASCADE,
  -- pending: to be looked at from due_at on; sent: the host took it; failed: it never did, after
  -- every attempt; skipped: everyone had received the message, or it was deleted.
  state      text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed', 'skipped')),
  due_at     timestamptz NOT NULL,
  attempts   integer NOT NULL DEFAULT 0,
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  done_at    timestamptz
);
CREATE INDEX push_jobs_due ON push_jobs (due_at) WHERE state = 'pending';
CREATE INDEX push_jobs_message_id ON push_jobs (message_id);
CREATE INDEX push_jobs_done_at ON push_jobs (done_at) WHERE state <> 'pending';

-- A statement-level trigger, so that the send function (postline_send_messages) stays as it is:
-- one INSERT … SELECT per statement, whatever the batch.
CREATE FUNCTION postline_enqueue_push_jobs() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO push_jobs (message_id, due_at)
  SELECT n.id, now() + s.grace FROM new_messages n, push_settings s WHERE s.enabled;
  RETURN NULL;
END
$$;
CREATE TRIGGER messages_enqueue_push_jobs AFTER INSERT ON messages
  REFERENCING NEW TABLE AS new_messages FOR EACH STATEMENT EXECUTE FUNCTION postline_enqueue_push_jobs();

-- Unread messages of a member of a thread: those above their read marker that are not deleted
-- (as the thread object counts them, sql/006_chat_features.sql).
CREATE FUNCTION postline_unread_count(p_thread_id bigint, p_last_seq bigint, p_read_seq bigint)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT p_last_seq - p_read_seq
         - (SELECT count(*) FROM messages d WHERE d.thread_id = p_thread_id AND d.seq > p_read_seq AND d.deleted_at IS NOT NULL)
$$;

-- Who of a message's recipients has not received it, with their unread counts (all threads, for
-- the app badge; this thread). The one place that decides "not received": a member has received
-- message seq S once their client acknowledged it, greatest(delivered_seq, read_seq) >= S (the
-- delivered markers of sql/006_chat_features.sql; an open stream alone is not a delivery). A
-- deleted message has nobody to tell: its text is gone, and so is any reason for a push.
CREATE FUNCTION postline_push_recipients(p_message_id bigint)
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
     AND greatest(tm.delivered_seq, tm.read_seq) < msg.seq
   ORDER BY tm.user_id
$$;
