-- Berth's store schema. One file for SQLite and PostgreSQL alike: only
-- TEXT, INTEGER and BIGINT columns, no dialect-specific syntax.
--
-- Each record table keeps the ECS wire shape as JSON text in `body`, the
-- columns it is looked up, filtered and ordered by beside it, and the
-- `version` that optimistic concurrency checks and bumps on every write.

CREATE TABLE clusters (
    name    TEXT   NOT NULL PRIMARY KEY,
    status  TEXT,
    version BIGINT NOT NULL,
    body    TEXT   NOT NULL
);
CREATE INDEX clusters_by_status ON clusters (status, name);

-- One row per task definition family ever registered, never deleted:
-- `last_revision` is the highest revision handed out, so a revision
-- number is never reused, whatever happens to the revisions themselves.
CREATE TABLE families (
    family        TEXT    NOT NULL PRIMARY KEY,
    last_revision INTEGER NOT NULL
);

CREATE TABLE task_definitions (
    family   TEXT    NOT NULL REFERENCES families (family),
    revision INTEGER NOT NULL,
    status   TEXT    NOT NULL,
    version  BIGINT  NOT NULL,
    body     TEXT    NOT NULL,
    PRIMARY KEY (family, revision)
);
CREATE INDEX task_definitions_by_status ON task_definitions (status, family, revision);

CREATE TABLE tasks (
    task_arn    TEXT   NOT NULL PRIMARY KEY,
    cluster_arn TEXT,
    last_status TEXT,
    version     BIGINT NOT NULL,
    body        TEXT   NOT NULL
);
CREATE INDEX tasks_by_cluster ON tasks (cluster_arn, last_status);

CREATE TABLE services (
    service_arn TEXT   NOT NULL PRIMARY KEY,
    cluster_arn TEXT,
    status      TEXT,
    version     BIGINT NOT NULL,
    body        TEXT   NOT NULL
);
CREATE INDEX services_by_cluster ON services (cluster_arn, status);

CREATE TABLE access_keys (
    access_key_id     TEXT   NOT NULL PRIMARY KEY,
    secret_access_key TEXT   NOT NULL,
    created_at        BIGINT NOT NULL
);
