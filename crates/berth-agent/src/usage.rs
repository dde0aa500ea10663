//! Usage sampling: every `sample_every` the agent reads each running
//! task's cgroup counters through the runtime (`TaskRuntime::stats`: CPU
//! time and memory in use, a few small files per task, no thread per
//! task), and every `publish_every` it writes what the window saw as
//! CloudWatch datapoints, one per metric and window (statistic sets), not
//! one per task and sample:
//!
//! - `AWS/ECS` `CPUUtilization`, `MemoryUtilization` (Percent) with
//!   `ClusterName, ServiceName` and with `ClusterName` alone: at each
//!   sample the service's used CPU (memory) summed over its tasks, over
//!   its reserved CPU (memory) summed, as ECS computes it;
//! - `ECS/ContainerInsights` `CpuUtilized`, `CpuReserved` (CPU units),
//!   `MemoryUtilized`, `MemoryReserved` (Megabytes), `RunningTaskCount`
//!   with `ClusterName, ServiceName` and with `ClusterName,
//!   TaskDefinitionFamily`.
//!
//! `berth_model::usage::Window` is the pure part (samples in, datapoints
//! out); [`run`] the loop around it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_model::lifecycle::TaskStatus;
use berth_model::usage::{TaskGauge, TaskSample, UsageBoard, Window, cpu_units};
use berth_runtime_api::{TaskId, TaskRuntime};

use crate::plane::NodeControlPlane;

/// How often usage is sampled and published (the defaults; see
/// [`UsageConfig`]).
pub const DEFAULT_SAMPLE_EVERY: Duration = Duration::from_secs(5);
pub const DEFAULT_PUBLISH_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct UsageConfig {
    pub sample_every: Duration,
    pub publish_every: Duration,
    /// Where each tick's per-task and per-container gauges go (for
    /// Prometheus at `GET /metrics`).
    pub board: Option<Arc<UsageBoard>>,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self { sample_every: DEFAULT_SAMPLE_EVERY, publish_every: DEFAULT_PUBLISH_EVERY, board: None }
    }
}

/// A task's CPU counter at its last sample.
#[derive(Debug, Clone, Copy)]
struct Last {
    cpu_ns: u64,
    at: std::time::Instant,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Samples and publishes until the agent ends (the caller aborts it).
pub async fn run(plane: Arc<dyn NodeControlPlane>, runtime: Arc<dyn TaskRuntime>, node_id: String, config: UsageConfig) {
    let mut tick = tokio::time::interval(config.sample_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: HashMap<String, Last> = HashMap::new();
    let mut window = Window::default();
    let publish_ms = config.publish_every.as_millis().max(1) as i64;
    let mut window_start = now_ms().div_euclid(publish_ms) * publish_ms;
    loop {
        tick.tick().await;
        let tasks = match plane.live_tasks(&node_id).await {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!(error = %e, "usage: listing tasks failed");
                continue;
            }
        };
        let mut samples = Vec::new();
        let mut gauges = Vec::new();
        let mut seen = HashMap::new();
        for t in tasks.iter().map(|v| &v.value).filter(|t| t.status() == TaskStatus::Running) {
            let Ok(id) = TaskId::new(t.id()) else { continue };
            let Ok(stats) = runtime.stats(&id).await else { continue };
            let now = std::time::Instant::now();
            let arn = t.arn.to_string();
            let service = t.group.strip_prefix("service:").map(str::to_owned);
            let gauge = |container: Option<&str>, key: &str, cpu_ns: u64, memory: u64| {
                let cpu_used = last.get(key).map_or(0.0, |prev: &Last| {
                    cpu_units(cpu_ns.saturating_sub(prev.cpu_ns), now.duration_since(prev.at).as_secs_f64())
                });
                let whole = container.is_none();
                TaskGauge {
                    cluster: t.arn.cluster.clone(),
                    service: service.clone(),
                    task: t.id().to_owned(),
                    container: container.map(str::to_owned),
                    cpu_used,
                    cpu_reserved: if whole { f64::from(t.size.cpu) } else { 0.0 },
                    memory_used_bytes: memory as f64,
                    memory_reserved_bytes: if whole { f64::from(t.size.memory) * 1024.0 * 1024.0 } else { 0.0 },
                }
            };
            if config.board.is_some() {
                gauges.push(gauge(None, &arn, stats.task.cpu_ns, stats.task.memory_bytes));
                for (name, u) in &stats.containers {
                    let key = format!("{arn}/{name}");
                    gauges.push(gauge(Some(name), &key, u.cpu_ns, u.memory_bytes));
                    seen.insert(key, Last { cpu_ns: u.cpu_ns, at: now });
                }
            }
            if let Some(prev) = last.get(&arn) {
                let seconds = now.duration_since(prev.at).as_secs_f64();
                samples.push(TaskSample::of(t, stats.task.cpu_ns.saturating_sub(prev.cpu_ns), seconds, stats.task.memory_bytes));
            }
            seen.insert(arn, Last { cpu_ns: stats.task.cpu_ns, at: now });
        }
        last = seen;
        if let Some(board) = &config.board {
            board.set(gauges);
        }
        if !samples.is_empty() {
            window.add_tick(&samples);
        }
        let now = now_ms();
        if now >= window_start + publish_ms {
            let points = window.take(window_start);
            window_start = now.div_euclid(publish_ms) * publish_ms;
            if !points.is_empty()
                && let Err(e) = plane.put_datapoints(&points, now).await
            {
                tracing::warn!(error = %e, "usage: publishing datapoints failed");
            }
        }
    }
}

