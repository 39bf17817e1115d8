-- Fitting into a host product (issue 13).

-- Users of the host application: `external_id` is the `sub` of the host's JWTs. They have no
-- password (and cannot log in with one); their username is '~' || external_id, which no
-- registered account can take (registration allows only [a-z0-9_.-]).
ALTER TABLE users ADD COLUMN external_id text UNIQUE;
ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;
ALTER TABLE users ADD CONSTRAINT users_password_or_external_id CHECK ((password_hash IS NULL) = (external_id IS NOT NULL));
