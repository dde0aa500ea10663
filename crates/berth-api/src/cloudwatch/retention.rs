//! CloudWatch's metric retention as a controller on berth-control's
//! runner: [`berth_store::MetricStore::prune_metrics`] in batches until a
//! pass does nothing, then again [`RETENTION_INTERVAL`] later.

use std::sync::Arc;
use std::time::Duration;

use berth_control::runner::{Action, Backoff, Reconcile, Runner, RunnerConfig};
use berth_store::{Store, StoreError};

/// How often the retention pass runs.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(600);
/// Datapoints per level per pass.
const BATCH: u32 = 5000;

pub async fn run_metric_retention(store: Arc<dyn Store>, shutdown: impl Future<Output = ()> + Send) {
    let every = Backoff { initial: RETENTION_INTERVAL, max: RETENTION_INTERVAL };
    let runner = Runner::new("metric-retention", Retention { store }, RunnerConfig { concurrency: 1, backoff: every });
    runner.run(futures_util::stream::iter([()]), shutdown).await;
}

struct Retention {
    store: Arc<dyn Store>,
}

impl Reconcile<()> for Retention {
    type Error = StoreError;

    async fn reconcile(&self, _: &()) -> Result<Action, StoreError> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        loop {
            let r = self.store.prune_metrics(now, BATCH).await?;
            if r.rolled_up + r.deleted == 0 {
                break;
            }
            tracing::info!(rolled_up = r.rolled_up, written = r.written, deleted = r.deleted, "metric retention pass");
        }
        Ok(Action::requeue(RETENTION_INTERVAL))
    }
}
