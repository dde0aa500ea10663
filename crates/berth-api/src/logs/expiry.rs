//! The retention sweep as a controller on berth-control's runner.

use std::sync::Arc;

use berth_control::runner::{Action, Backoff, Reconcile, Runner, RunnerConfig};
use berth_store::{LogStore, StoreError};

use super::{EXPIRY_INTERVAL, expire};

/// Runs [`expire`] now and then every [`EXPIRY_INTERVAL`] after each
/// sweep ends, until `shutdown` resolves: a controller with one key. A
/// failed sweep is logged and tried again an interval later (the backoff
/// is that interval, floor and cap).
pub async fn run_expiry(store: Arc<dyn LogStore>, shutdown: impl Future<Output = ()> + Send) {
    let every = Backoff { initial: EXPIRY_INTERVAL, max: EXPIRY_INTERVAL };
    let runner = Runner::new("log-expiry", Expiry { store }, RunnerConfig { concurrency: 1, backoff: every });
    runner.run(futures_util::stream::iter([()]), shutdown).await;
}

/// The retention sweep as a reconciler.
struct Expiry {
    store: Arc<dyn LogStore>,
}

impl Reconcile<()> for Expiry {
    type Error = StoreError;

    async fn reconcile(&self, _: &()) -> Result<Action, StoreError> {
        let n = expire(self.store.as_ref()).await?;
        if n > 0 {
            tracing::info!(events = n, "expired log events past their group's retention");
        }
        Ok(Action::requeue(EXPIRY_INTERVAL))
    }
}
