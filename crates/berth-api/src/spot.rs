//! Fargate Spot reclaiming capacity: `berth spot interrupt` (Berth's
//! InterruptSpotTasks) and the optional random interruptions of
//! `berth up --spot-interruption-rate`.
//!
//! An interruption is one write of the task through its transition
//! function ([`Task::interrupt`](berth_model::task::Task::interrupt)):
//! desiredStatus STOPPED with lastStatus RUNNING, stopCode
//! TerminationNotice, stoppedReason "Your Spot Task was interrupted.". The
//! node's agent then stops it as it stops any task wanted stopped (SIGTERM
//! now, SIGKILL after the container's stopTimeout, at most 120 s), and the
//! task ends with stopCode SpotInterruption. A service replaces it by its
//! strategy.

use std::sync::Arc;
use std::time::Duration;

use berth_model::capacity;
use berth_model::lifecycle::{DesiredStatus, TaskStatus};
use berth_model::task::Task;
use berth_store::{Page, Store, StoreError, TaskFilter};
use berth_wire::berth::{InterruptSpotTasksRequest, InterruptSpotTasksResponse, InterruptedTask};
use rand::Rng as _;

use crate::ApiError;
use crate::ecs::now_epoch;

/// How often the random interrupter draws.
pub const DRAW_INTERVAL: Duration = Duration::from_secs(10);

/// Interrupts what the request names: one task by ARN, or `count` (1)
/// running Spot tasks, oldest first.
pub async fn interrupt(store: &dyn Store, req: InterruptSpotTasksRequest) -> Result<InterruptSpotTasksResponse, ApiError> {
    if req.task_arn.is_some() && req.count.is_some() {
        return Err(ApiError::invalid_parameter("Give either taskArn or count, not both."));
    }
    let targets = match req.task_arn {
        Some(arn) => {
            let Some(t) = store.get_task(&arn).await? else {
                return Err(ApiError::service("InvalidParameterException", format!("The task {arn} was not found.")));
            };
            if !capacity::is_spot(t.value.capacity_provider.as_deref()) {
                return Err(ApiError::invalid_parameter(format!("The task {arn} does not run on FARGATE_SPOT.")));
            }
            vec![arn]
        }
        None => {
            let count = req.count.unwrap_or(1);
            if count == 0 {
                return Err(ApiError::invalid_parameter("count must be at least 1."));
            }
            let mut running = interruptible(store).await?;
            running.sort_by(|a, b| a.times.created_at.total_cmp(&b.times.created_at));
            running.into_iter().take(count as usize).map(|t| t.arn.to_string()).collect()
        }
    };
    let mut out = InterruptSpotTasksResponse::default();
    for arn in targets {
        if let Some(t) = interrupt_one(store, &arn).await? {
            let stop = t.stop.as_ref();
            out.tasks.push(InterruptedTask {
                task_arn: arn.clone(),
                last_status: t.status().as_str().to_owned(),
                desired_status: t.desired().as_str().to_owned(),
                stop_code: stop.map(|s| format!("{:?}", s.code)).unwrap_or_default(),
                stopped_reason: stop.map(|s| s.reason.clone()).unwrap_or_default(),
            });
            out.task_arns.push(arn);
        }
    }
    Ok(out)
}

/// Live Spot tasks still wanted running that serve (RUNNING or ACTIVATING).
async fn interruptible(store: &dyn Store) -> Result<Vec<Task>, StoreError> {
    let filter = TaskFilter {
        capacity_provider: Some(capacity::FARGATE_SPOT.to_owned()),
        desired_status: Some(DesiredStatus::Running),
        live_only: true,
        ..TaskFilter::default()
    };
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let rows = store.list_tasks(&filter, Page { after: after.clone(), limit: 500 }).await?;
        let done = rows.len() < 500;
        after = rows.last().map(|r| r.value.arn.to_string());
        out.extend(
            rows.into_iter()
                .map(|r| r.value)
                .filter(|t| matches!(t.status(), TaskStatus::Running | TaskStatus::Activating)),
        );
        if done {
            return Ok(out);
        }
    }
}

/// Gives one task its two-minute warning and returns it as written;
/// `None` if it was not serving or already wanted stopped.
async fn interrupt_one(store: &dyn Store, arn: &str) -> Result<Option<Task>, StoreError> {
    for _ in 0..8 {
        let Some(mut current) = store.get_task(arn).await? else { return Ok(None) };
        if !current.value.interrupt(now_epoch()) {
            return Ok(None);
        }
        match store.put_task(&current.value, Some(current.version)).await {
            Ok(written) => {
                tracing::info!(task = %arn, "spot task interrupted");
                return Ok(Some(written.value));
            }
            Err(StoreError::Conflict) => tokio::task::yield_now().await,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict)
}

/// The chance one running Spot task is interrupted in one draw, for a
/// rate of `per_hour` interruptions per task-hour.
pub fn draw_probability(per_hour: f64, interval: Duration) -> f64 {
    (per_hour.max(0.0) * interval.as_secs_f64() / 3600.0).min(1.0)
}

/// Interrupts running Spot tasks at random, each at `per_hour`
/// interruptions per hour it runs, until `shutdown`.
pub async fn run_interrupter(store: Arc<dyn Store>, per_hour: f64, shutdown: impl Future<Output = ()> + Send) {
    let p = draw_probability(per_hour, DRAW_INTERVAL);
    let run = async {
        loop {
            tokio::time::sleep(DRAW_INTERVAL).await;
            let tasks = match interruptible(store.as_ref()).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(error = %e, "spot interrupter cannot list tasks");
                    continue;
                }
            };
            let chosen: Vec<String> = {
                let mut rng = rand::rng();
                tasks.iter().filter(|_| rng.random_bool(p)).map(|t| t.arn.to_string()).collect()
            };
            for arn in chosen {
                if let Err(e) = interrupt_one(store.as_ref(), &arn).await {
                    tracing::warn!(task = %arn, error = %e, "spot interruption failed");
                }
            }
        }
    };
    tokio::select! {
        () = run => {}
        () = shutdown => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_per_task_hour() {
        assert!((draw_probability(6.0, Duration::from_secs(10)) - 6.0 * 10.0 / 3600.0).abs() < 1e-12);
        assert_eq!(draw_probability(0.0, Duration::from_secs(10)), 0.0);
        assert_eq!(draw_probability(1e9, Duration::from_secs(10)), 1.0);
        assert_eq!(draw_probability(-1.0, Duration::from_secs(10)), 0.0);
    }
}
