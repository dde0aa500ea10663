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
//! [`Window`] is the pure part (samples in, datapoints out); [`run`] the
//! loop around it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use berth_model::lifecycle::TaskStatus;
use berth_model::metrics::{Datapoint, Dimensions, MetricKey, Sample};
use berth_model::task::Task;
use berth_runtime_api::{TaskId, TaskRuntime};

use crate::plane::NodeControlPlane;

/// How often usage is sampled and published (the defaults; see
/// [`UsageConfig`]).
pub const DEFAULT_SAMPLE_EVERY: Duration = Duration::from_secs(5);
pub const DEFAULT_PUBLISH_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
pub struct UsageConfig {
    pub sample_every: Duration,
    pub publish_every: Duration,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self { sample_every: DEFAULT_SAMPLE_EVERY, publish_every: DEFAULT_PUBLISH_EVERY }
    }
}

/// One task's usage over one sampling interval.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSample {
    pub cluster: String,
    /// `None` for a task no service started.
    pub service: Option<String>,
    pub family: String,
    /// CPU units reserved (1024 a core) and used over the interval.
    pub cpu_reserved: f64,
    pub cpu_used: f64,
    /// MiB reserved and in use.
    pub memory_reserved: f64,
    pub memory_used: f64,
}

/// A group's sums at one sample.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    cpu_used: f64,
    cpu_reserved: f64,
    memory_used: f64,
    memory_reserved: f64,
    tasks: f64,
}

/// The samples of one publishing window, by group (dimensions), as
/// statistic sets of each metric.
#[derive(Debug, Default)]
pub struct Window {
    sets: BTreeMap<MetricKey, (String, Sample)>,
}

fn dims(pairs: &[(&str, &str)]) -> Dimensions {
    Dimensions::new(pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))).unwrap_or_default()
}

impl Window {
    /// Adds one sampling tick: every task's sample of that tick.
    pub fn add_tick(&mut self, samples: &[TaskSample]) {
        let mut services = BTreeMap::<(String, String), Sums>::new();
        let mut clusters = BTreeMap::<String, Sums>::new();
        let mut families = BTreeMap::<(String, String), Sums>::new();
        for s in samples {
            let add = |sums: &mut Sums| {
                sums.cpu_used += s.cpu_used;
                sums.cpu_reserved += s.cpu_reserved;
                sums.memory_used += s.memory_used;
                sums.memory_reserved += s.memory_reserved;
                sums.tasks += 1.0;
            };
            if let Some(service) = &s.service {
                add(services.entry((s.cluster.clone(), service.clone())).or_default());
                add(clusters.entry(s.cluster.clone()).or_default());
            }
            add(families.entry((s.cluster.clone(), s.family.clone())).or_default());
        }
        let percent = |used: f64, reserved: f64| if reserved > 0.0 { used / reserved * 100.0 } else { 0.0 };
        for ((cluster, service), sums) in &services {
            let d = dims(&[("ClusterName", cluster), ("ServiceName", service)]);
            self.utilization(&d, sums, percent);
            self.insights(&d, sums);
        }
        for (cluster, sums) in &clusters {
            self.utilization(&dims(&[("ClusterName", cluster)]), sums, percent);
        }
        for ((cluster, family), sums) in &families {
            self.insights(&dims(&[("ClusterName", cluster), ("TaskDefinitionFamily", family)]), sums);
        }
    }

    fn utilization(&mut self, d: &Dimensions, sums: &Sums, percent: impl Fn(f64, f64) -> f64) {
        self.add("AWS/ECS", "CPUUtilization", d, "Percent", percent(sums.cpu_used, sums.cpu_reserved));
        self.add("AWS/ECS", "MemoryUtilization", d, "Percent", percent(sums.memory_used, sums.memory_reserved));
    }

    fn insights(&mut self, d: &Dimensions, sums: &Sums) {
        const NS: &str = "ECS/ContainerInsights";
        self.add(NS, "CpuUtilized", d, "None", sums.cpu_used);
        self.add(NS, "CpuReserved", d, "None", sums.cpu_reserved);
        self.add(NS, "MemoryUtilized", d, "Megabytes", sums.memory_used);
        self.add(NS, "MemoryReserved", d, "Megabytes", sums.memory_reserved);
        self.add(NS, "RunningTaskCount", d, "Count", sums.tasks);
    }

    fn add(&mut self, namespace: &str, name: &str, d: &Dimensions, unit: &str, value: f64) {
        let key = MetricKey::new(namespace, name, d.clone());
        match self.sets.get_mut(&key) {
            Some((_, s)) => s.merge(&Sample::set(1.0, value, value, value)),
            None => {
                self.sets.insert(key, (unit.to_owned(), Sample::set(1.0, value, value, value)));
            }
        }
    }

    /// The window's datapoints at `timestamp_ms`, emptying it.
    pub fn take(&mut self, timestamp_ms: i64) -> Vec<Datapoint> {
        std::mem::take(&mut self.sets)
            .into_iter()
            .map(|(key, (unit, sample))| Datapoint { key, timestamp_ms, unit, resolution_s: 60, sample })
            .collect()
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

/// One task's sample from its counters: CPU time used over `seconds`,
/// memory in use now.
pub fn task_sample(task: &Task, cpu_ns_delta: u64, seconds: f64, memory_bytes: u64) -> TaskSample {
    let cores = cpu_ns_delta as f64 / 1e9 / seconds.max(1e-3);
    TaskSample {
        cluster: task.arn.cluster.clone(),
        service: task.group.strip_prefix("service:").map(str::to_owned),
        family: task.definition_arn.family.clone(),
        cpu_reserved: f64::from(task.size.cpu),
        cpu_used: cores * 1024.0,
        memory_reserved: f64::from(task.size.memory),
        memory_used: memory_bytes as f64 / (1024.0 * 1024.0),
    }
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
        let mut seen = HashMap::new();
        for t in tasks.iter().map(|v| &v.value).filter(|t| t.status() == TaskStatus::Running) {
            let Ok(id) = TaskId::new(t.id()) else { continue };
            let Ok(stats) = runtime.stats(&id).await else { continue };
            let now = std::time::Instant::now();
            let arn = t.arn.to_string();
            if let Some(prev) = last.get(&arn) {
                let seconds = now.duration_since(prev.at).as_secs_f64();
                samples.push(task_sample(t, stats.task.cpu_ns.saturating_sub(prev.cpu_ns), seconds, stats.task.memory_bytes));
            }
            seen.insert(arn, Last { cpu_ns: stats.task.cpu_ns, at: now });
        }
        last = seen;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(service: Option<&str>, cpu_used: f64, cpu_reserved: f64) -> TaskSample {
        TaskSample {
            cluster: "c".into(),
            service: service.map(str::to_owned),
            family: "f".into(),
            cpu_reserved,
            cpu_used,
            memory_reserved: 512.0,
            memory_used: 128.0,
        }
    }

    fn find<'a>(points: &'a [Datapoint], ns: &str, name: &str, d: &[(&str, &str)]) -> &'a Datapoint {
        points
            .iter()
            .find(|p| p.key.namespace == ns && p.key.metric_name == name && p.key.dimensions == dims(d))
            .unwrap_or_else(|| panic!("{ns} {name} {d:?}"))
    }

    #[test]
    fn service_utilization_is_used_over_reserved_summed_per_tick() {
        let mut w = Window::default();
        // Two ticks: a spinning 256-unit task and an idle 1024-unit one.
        w.add_tick(&[sample(Some("web"), 256.0, 256.0), sample(Some("web"), 0.0, 1024.0), sample(None, 10.0, 256.0)]);
        w.add_tick(&[sample(Some("web"), 256.0, 256.0), sample(Some("web"), 256.0, 1024.0)]);
        let points = w.take(60_000);
        let cpu = find(&points, "AWS/ECS", "CPUUtilization", &[("ClusterName", "c"), ("ServiceName", "web")]);
        assert_eq!(cpu.timestamp_ms, 60_000);
        assert_eq!(cpu.unit, "Percent");
        assert_eq!(cpu.sample.count, 2.0);
        assert_eq!(cpu.sample.min, 20.0);
        assert_eq!(cpu.sample.max, 40.0);
        assert_eq!(cpu.sample.sum, 60.0);
        let mem = find(&points, "AWS/ECS", "MemoryUtilization", &[("ClusterName", "c")]);
        assert_eq!(mem.sample.max, 25.0);
        let running = find(&points, "ECS/ContainerInsights", "RunningTaskCount", &[("ClusterName", "c"), ("TaskDefinitionFamily", "f")]);
        assert_eq!((running.sample.min, running.sample.max), (2.0, 3.0), "tasks of no service count for the family");
        let reserved = find(&points, "ECS/ContainerInsights", "CpuReserved", &[("ClusterName", "c"), ("ServiceName", "web")]);
        assert_eq!(reserved.sample.max, 1280.0);
        assert!(w.take(0).is_empty(), "taking empties the window");
    }
}
