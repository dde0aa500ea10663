-- Service discovery (Cloud Map): namespaces, their services, the
-- instances registered in a service, and the operations that changed
-- them. Bodies are the model's records (JSON with a formatVersion);
-- beside them the columns they are looked up by. A namespace's name and
-- a service's name in its namespace are unique without case (DNS names),
-- by `name_key` (the name in lower case). A service's `revision` counts
-- the changes to its instances (DiscoverInstancesRevision). Depends on
-- no table of another migration.

CREATE TABLE discovery_namespaces (
    id       TEXT   NOT NULL PRIMARY KEY,
    name_key TEXT   NOT NULL UNIQUE,
    version  BIGINT NOT NULL,
    body     TEXT   NOT NULL
);

CREATE TABLE discovery_services (
    id           TEXT   NOT NULL PRIMARY KEY,
    namespace_id TEXT   NOT NULL,
    name_key     TEXT   NOT NULL,
    revision     BIGINT NOT NULL DEFAULT 0,
    version      BIGINT NOT NULL,
    body         TEXT   NOT NULL,
    UNIQUE (namespace_id, name_key)
);

CREATE TABLE discovery_instances (
    service_id  TEXT   NOT NULL,
    instance_id TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    body        TEXT   NOT NULL,
    PRIMARY KEY (service_id, instance_id)
);

CREATE TABLE discovery_operations (
    id         TEXT   NOT NULL PRIMARY KEY,
    updated_at BIGINT NOT NULL,
    body       TEXT   NOT NULL
);
