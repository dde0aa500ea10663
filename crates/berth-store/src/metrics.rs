//! CloudWatch metric datapoints (`migrations/0011_metrics.sql`). The
//! store keeps datapoints as put and answers raw datapoints of one metric;
//! statistics are computed from them by `berth_model::metrics::aggregate`.
//! [`MetricStore::prune_metrics`] applies CloudWatch's retention
//! (`berth_model::metrics::RETENTION`): high-resolution datapoints older
//! than 3 h are rolled up into 1-minute ones, 1-minute ones older than 15
//! days into 5-minute ones, 5-minute ones older than 63 days into hourly
//! ones, and hourly ones older than 455 days are deleted.

use async_trait::async_trait;
use berth_model::metrics::{Datapoint, MetricKey};

use crate::StoreError;

/// Which metrics [`MetricStore::list_metrics`] lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricQuery {
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    /// (name, value): the metric has that dimension (with that value, if given).
    pub dimensions: Vec<(String, Option<String>)>,
    /// Only metrics with a datapoint put at or after this time (ms).
    pub active_since_ms: Option<i64>,
}

/// A listed metric and when a datapoint of it was last put.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSeries {
    pub key: MetricKey,
    pub last_put_ms: i64,
}

/// What one pruning pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Datapoints replaced by coarser ones.
    pub rolled_up: u64,
    /// Coarser datapoints written for them.
    pub written: u64,
    /// Datapoints deleted for age (hourly ones past 455 days).
    pub deleted: u64,
}

#[async_trait]
pub trait MetricStore: Send + Sync {
    /// Stores datapoints (any metrics, in one transaction) and marks their
    /// metrics as put at `now_ms` (RecentlyActive).
    async fn put_datapoints(&self, points: &[Datapoint], now_ms: i64) -> Result<(), StoreError>;
    /// The datapoints of exactly this metric (all its dimensions, no
    /// more) with `start_ms <= timestamp < end_ms`, oldest first.
    async fn metric_datapoints(&self, key: &MetricKey, start_ms: i64, end_ms: i64) -> Result<Vec<Datapoint>, StoreError>;
    /// Metrics matching the query, ordered by namespace, name, dimensions.
    async fn list_metrics(&self, query: &MetricQuery) -> Result<Vec<MetricSeries>, StoreError>;
    /// One retention pass at `now_ms` (see the module documentation); at
    /// most `batch` datapoints per level, so call it again while it did
    /// something.
    async fn prune_metrics(&self, now_ms: i64, batch: u32) -> Result<PruneReport, StoreError>;
}
