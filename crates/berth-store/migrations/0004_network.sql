-- awsvpc networking: subnets and security groups (Berth resources with
-- AWS-style ids), and the addresses handed to tasks. An address is held
-- by one task at a time (the primary key), from allocation at
-- PROVISIONING until its release at DEPROVISIONING.

CREATE TABLE subnets (
    id      TEXT   NOT NULL PRIMARY KEY,
    cidr    TEXT   NOT NULL,
    version BIGINT NOT NULL,
    body    TEXT   NOT NULL
);

CREATE TABLE security_groups (
    id      TEXT   NOT NULL PRIMARY KEY,
    name    TEXT   NOT NULL,
    version BIGINT NOT NULL,
    body    TEXT   NOT NULL
);

CREATE TABLE ip_allocations (
    subnet_id TEXT NOT NULL,
    ip        TEXT NOT NULL,
    task_arn  TEXT NOT NULL,
    PRIMARY KEY (subnet_id, ip)
);
CREATE INDEX ip_allocations_by_task ON ip_allocations (task_arn);
