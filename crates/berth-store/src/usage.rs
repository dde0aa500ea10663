//! Usage records of the meter (`migrations/0014_usage.sql`): one per task
//! and clock hour, written for a task all at once.

use async_trait::async_trait;
use berth_model::metering::UsageRecord;

use crate::StoreError;

#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Replaces every usage record of `task_arn` with `records` (all of
    /// that task), in one transaction: an hour no longer in `records` goes.
    async fn put_task_usage(&self, task_arn: &str, records: &[UsageRecord]) -> Result<(), StoreError>;
    /// The records of hours in `[from, to)` (epoch seconds of hour starts),
    /// by hour, then task.
    async fn list_usage(&self, from: i64, to: i64) -> Result<Vec<UsageRecord>, StoreError>;
    /// The tasks with a record still open (their task had not stopped
    /// when it was written).
    async fn open_usage_tasks(&self) -> Result<Vec<String>, StoreError>;
}
