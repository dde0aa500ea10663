-- Tasks that run: where each is placed, what it reserves there, and the
-- columns ListTasks filters by. Nodes: hosts whose agents run tasks.

ALTER TABLE tasks ADD COLUMN desired_status TEXT;
ALTER TABLE tasks ADD COLUMN family TEXT;
ALTER TABLE tasks ADD COLUMN started_by TEXT;
ALTER TABLE tasks ADD COLUMN task_group TEXT;
ALTER TABLE tasks ADD COLUMN launch_type TEXT;
ALTER TABLE tasks ADD COLUMN node_id TEXT;
ALTER TABLE tasks ADD COLUMN cpu BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN memory BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tasks_by_node ON tasks (node_id, last_status);

CREATE TABLE nodes (
    id      TEXT   NOT NULL PRIMARY KEY,
    status  TEXT   NOT NULL,
    version BIGINT NOT NULL,
    body    TEXT   NOT NULL
);
