-- Fargate metering: each task's capacity provider (placement keeps Spot
-- tasks within a node's Spot share), and usage records, one per task and
-- clock hour it was billed in (berth_model::metering). A task's records
-- are replaced together, so every billed second is in exactly one row.
-- Self-contained: only `tasks` gains a column.

ALTER TABLE tasks ADD COLUMN capacity_provider TEXT;

CREATE TABLE usage_records (
    task_arn TEXT   NOT NULL,
    hour     BIGINT NOT NULL,
    closed   BIGINT NOT NULL,
    body     TEXT   NOT NULL,
    PRIMARY KEY (task_arn, hour)
);
CREATE INDEX usage_records_by_hour ON usage_records (hour);
CREATE INDEX usage_records_open ON usage_records (closed, task_arn);
