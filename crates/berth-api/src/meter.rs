//! The meter: a level-triggered controller that keeps every task's usage
//! records (`berth_model::metering`) true in the store. Its key is a
//! task; its reconcile computes the task's records from the task's times
//! (and now, for a task still running) and replaces the task's records
//! with them. Woken by task notices, a resync of live tasks and of tasks
//! with open records every [`INTERVAL`], and its own requeue of running
//! tasks.
//!
//! Because the records are a function of the task, not a running sum, a
//! reconcile repeated, lost or run after a restart writes the same
//! numbers: no second is lost or counted twice. A record is open (it
//! still grows) until its task stops.

use std::sync::Arc;
use std::time::Duration;

use berth_control::runner::{Action, Backoff, Reconcile, Runner, RunnerConfig, every, from_notices};
use berth_model::metering;
use berth_store::{Page, RecordKind, Store, StoreError, TaskFilter};
use futures_util::{Stream, stream};

use crate::ecs::now_epoch;

/// How often a running task's records are brought up to date.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// Runs the meter over `store` until `shutdown` resolves.
pub async fn run_meter(store: Arc<dyn Store>, shutdown: impl Future<Output = ()> + Send) {
    let config = RunnerConfig { concurrency: 2, backoff: Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(60) } };
    Runner::new("meter", Meter { store: store.clone() }, config).run(triggers(store), shutdown).await;
}

/// Task notices, and every task to meter at start and each [`INTERVAL`].
fn triggers(store: Arc<dyn Store>) -> impl Stream<Item = String> + Send + 'static {
    let lister = {
        let store = store.clone();
        move || {
            let store = store.clone();
            async move { to_meter(store.as_ref()).await }
        }
    };
    let notices = from_notices(store.watch(RecordKind::Task), |n| Some(n.key), lister.clone());
    let resync = every(INTERVAL, lister);
    stream::select(notices, resync)
}

/// Live tasks and tasks whose records are still open.
async fn to_meter(store: &dyn Store) -> Vec<String> {
    let mut out = match store.open_usage_tasks().await {
        Ok(arns) => arns,
        Err(e) => {
            tracing::warn!(error = %e, "listing open usage records failed");
            Vec::new()
        }
    };
    let filter = TaskFilter { live_only: true, ..TaskFilter::default() };
    let mut after = None;
    loop {
        let rows = match store.list_tasks(&filter, Page { after: after.clone(), limit: 500 }).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "listing live tasks for the meter failed");
                break;
            }
        };
        let done = rows.len() < 500;
        after = rows.last().map(|r| r.value.arn.to_string());
        out.extend(rows.into_iter().map(|r| r.value.arn.to_string()));
        if done {
            break;
        }
    }
    out.sort();
    out.dedup();
    out
}

struct Meter {
    store: Arc<dyn Store>,
}

impl Reconcile<String> for Meter {
    type Error = StoreError;

    async fn reconcile(&self, key: &String) -> Result<Action, StoreError> {
        let Some(task) = self.store.get_task(key).await? else { return Ok(Action::await_change()) };
        let task = task.value;
        let records = metering::records(&task, &task.arn.account.region, now_epoch());
        if records.is_empty() {
            // Never held capacity (yet): nothing to bill.
            return Ok(Action::await_change());
        }
        self.store.put_task_usage(key, &records).await?;
        if records.iter().all(|r| r.closed) { Ok(Action::await_change()) } else { Ok(Action::requeue(INTERVAL)) }
    }
}
