-- Elastic Load Balancing (v2) and ACM: load balancers, target groups,
-- listeners and rules are versioned JSON records; names are unique per
-- kind (a listener's port per load balancer, a rule's priority per
-- listener: the default rule has none). Registered targets and their
-- health are plain rows: registrations are written by the API, health
-- by the data plane. A certificate's private key is a column of its own,
-- never part of the body the API shows.

CREATE TABLE load_balancers (
    arn     TEXT   NOT NULL PRIMARY KEY,
    name    TEXT   NOT NULL UNIQUE,
    version BIGINT NOT NULL,
    body    TEXT   NOT NULL
);

CREATE TABLE target_groups (
    arn     TEXT   NOT NULL PRIMARY KEY,
    name    TEXT   NOT NULL UNIQUE,
    version BIGINT NOT NULL,
    body    TEXT   NOT NULL
);

CREATE TABLE listeners (
    arn               TEXT    NOT NULL PRIMARY KEY,
    load_balancer_arn TEXT    NOT NULL,
    port              INTEGER NOT NULL,
    version           BIGINT  NOT NULL,
    body              TEXT    NOT NULL,
    UNIQUE (load_balancer_arn, port)
);

CREATE TABLE listener_rules (
    arn          TEXT    NOT NULL PRIMARY KEY,
    listener_arn TEXT    NOT NULL,
    -- 0 for the default rule, else 1..50000.
    priority     INTEGER NOT NULL,
    version      BIGINT  NOT NULL,
    body         TEXT    NOT NULL,
    UNIQUE (listener_arn, priority)
);

CREATE TABLE target_registrations (
    target_group_arn TEXT    NOT NULL,
    target_id        TEXT    NOT NULL,
    port             INTEGER NOT NULL,
    zone             TEXT    NOT NULL,
    registered_ms    BIGINT  NOT NULL,
    -- Set by DeregisterTargets: draining until then, gone after
    -- (milliseconds since the epoch, as every time here).
    draining_until_ms BIGINT,
    PRIMARY KEY (target_group_arn, target_id, port)
);

CREATE TABLE target_health (
    target_group_arn TEXT    NOT NULL,
    target_id        TEXT    NOT NULL,
    port             INTEGER NOT NULL,
    state            TEXT    NOT NULL,
    reason           TEXT,
    description      TEXT,
    updated_ms       BIGINT  NOT NULL,
    PRIMARY KEY (target_group_arn, target_id, port)
);

CREATE TABLE certificates (
    arn         TEXT   NOT NULL PRIMARY KEY,
    version     BIGINT NOT NULL,
    body        TEXT   NOT NULL,
    private_key TEXT   NOT NULL
);
