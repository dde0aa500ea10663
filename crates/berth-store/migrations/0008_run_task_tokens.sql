-- RunTask's clientToken: one row per (cluster, token), claimed before the
-- tasks are placed (the primary key decides between racing retries) and
-- given the task ARNs once they are. `digest` is the SHA-256 of the
-- request without its token: a retry with other parameters is refused.
-- `task_arns` is a JSON array, NULL while the first request is placing.
-- `created_at` is in epoch seconds: rows expire after ECS's 24 hours.

CREATE TABLE run_task_tokens (
    cluster_arn TEXT   NOT NULL,
    token       TEXT   NOT NULL,
    digest      TEXT   NOT NULL,
    task_arns   TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (cluster_arn, token)
);
