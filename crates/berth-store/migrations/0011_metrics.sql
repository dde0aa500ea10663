-- CloudWatch metrics (self-contained: no table of another migration is read
-- or changed). `metric_series` has one row per metric (namespace, name and
-- sorted dimensions; `series` is their canonical JSON text) with when a
-- datapoint was last put (ListMetrics, RecentlyActive). `metric_points`
-- holds datapoints: `resolution_s` is 1 or 60 as put, 60/300/3600 after a
-- roll-up; `body` is the sample's JSON (count, sum, min, max, values).
-- Several rows may share a series and timestamp (statistics merge them);
-- `id` is random, naming a row for the roll-up that replaces it.

CREATE TABLE metric_series (
    series      TEXT   NOT NULL PRIMARY KEY,
    namespace   TEXT   NOT NULL,
    metric_name TEXT   NOT NULL,
    dimensions  TEXT   NOT NULL,
    last_put_ms BIGINT NOT NULL
);

CREATE INDEX metric_series_by_name ON metric_series (namespace, metric_name);

CREATE TABLE metric_points (
    id           BIGINT  NOT NULL PRIMARY KEY,
    series       TEXT    NOT NULL,
    ts_ms        BIGINT  NOT NULL,
    resolution_s BIGINT  NOT NULL,
    unit         TEXT    NOT NULL,
    body         TEXT    NOT NULL
);

CREATE INDEX metric_points_by_series ON metric_points (series, ts_ms);
CREATE INDEX metric_points_by_age ON metric_points (resolution_s, ts_ms);
