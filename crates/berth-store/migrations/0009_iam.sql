-- IAM: users, roles, groups and customer managed policies, and whose
-- each access key is.
--
-- `iam_entities` holds the four kinds of record (`kind` is `user`,
-- `role`, `group` or `policy`), keyed by kind and name in lower case
-- (IAM's names are unique in the account without case); `id` is IAM's
-- unique id (AIDA…, AROA…, AGPA…, ANPA…). The body is the model's record
-- as JSON with a formatVersion: a user's, role's or group's inline
-- policies and the ARNs of the managed policies attached to it are
-- members of its body, a user's groups members of its, a policy's
-- versions members of its. (DeletePolicy finds attachments, DeleteGroup
-- members, by reading the others; an account has few.)
--
-- `access_keys` (migration 1) held only the root key. Each key now says
-- whose it is: `user_name` NULL and `session` NULL is the account's root
-- key; `user_name` set is an IAM user's long-term key; `session` set is
-- a temporary key of an STS session (AssumeRole, GetSessionToken): JSON
-- of whom it acts as, the SHA-256 of its session token (the token is
-- not kept), its session policy and tags; `expires_at` (epoch seconds)
-- beside it so expired sessions can be swept. `status` is Active or
-- Inactive (an inactive key signs nothing). Keys of older stores are
-- root keys, Active.

CREATE TABLE iam_entities (
    kind     TEXT   NOT NULL,
    name_key TEXT   NOT NULL,
    id       TEXT   NOT NULL UNIQUE,
    version  BIGINT NOT NULL,
    body     TEXT   NOT NULL,
    PRIMARY KEY (kind, name_key)
);

ALTER TABLE access_keys ADD COLUMN user_name TEXT;
ALTER TABLE access_keys ADD COLUMN status TEXT NOT NULL DEFAULT 'Active';
ALTER TABLE access_keys ADD COLUMN session TEXT;
ALTER TABLE access_keys ADD COLUMN expires_at BIGINT;
CREATE INDEX access_keys_by_user ON access_keys (user_name);
CREATE INDEX access_keys_by_expiry ON access_keys (expires_at);
