-- CloudWatch Logs: groups, their streams, and the streams' events.
-- Times are milliseconds since the epoch, as the Logs API writes them.
--
-- Groups and streams get numbers from `log_ids` (never reused), so events
-- refer to them compactly and a group deleted and made again under the
-- same name starts empty. Each stream numbers its events 0, 1, 2... in
-- the order they arrived (`seq`); a stream's events are read in
-- (event_time, seq) order, a group's in (event_time, stream_id, seq).

CREATE TABLE log_ids (
    kind    TEXT   NOT NULL PRIMARY KEY,
    last_id BIGINT NOT NULL
);
INSERT INTO log_ids (kind, last_id) VALUES ('log', 0);

CREATE TABLE log_groups (
    id             BIGINT NOT NULL PRIMARY KEY,
    name           TEXT   NOT NULL UNIQUE,
    created_at     BIGINT NOT NULL,
    retention_days BIGINT,
    class          TEXT   NOT NULL
);

-- `first_event_time`, `last_event_time` and `stored_bytes` move with
-- every append and expiry, in the same transaction.
CREATE TABLE log_streams (
    id                  BIGINT NOT NULL PRIMARY KEY,
    group_id            BIGINT NOT NULL REFERENCES log_groups (id),
    name                TEXT   NOT NULL,
    created_at          BIGINT NOT NULL,
    first_event_time    BIGINT,
    last_event_time     BIGINT,
    last_ingestion_time BIGINT,
    stored_bytes        BIGINT NOT NULL,
    next_seq            BIGINT NOT NULL,
    UNIQUE (group_id, name)
);

-- `bytes` is the message's length in UTF-8. PostgreSQL's TEXT cannot hold
-- NUL, so a message containing one is stored escaped (`escaped` = 1: NUL
-- as `\0`, backslash as `\\`); every other message is stored as it is.
-- The message comes last so that reads of the other columns do not load it.
CREATE TABLE log_events (
    group_id       BIGINT NOT NULL,
    stream_id      BIGINT NOT NULL REFERENCES log_streams (id),
    seq            BIGINT NOT NULL,
    event_time     BIGINT NOT NULL,
    ingestion_time BIGINT NOT NULL,
    bytes          BIGINT NOT NULL,
    escaped        BIGINT NOT NULL,
    message        TEXT   NOT NULL,
    PRIMARY KEY (stream_id, seq)
);
-- GetLogEvents (one stream by time, either way, sized by `bytes` before
-- the messages are read) and retention.
CREATE INDEX log_events_by_stream_time ON log_events (stream_id, event_time, seq, bytes);
-- FilterLogEvents across a group's streams by time.
CREATE INDEX log_events_by_group_time ON log_events (group_id, event_time, stream_id, seq);
