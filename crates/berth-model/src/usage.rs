//! Task usage as CloudWatch datapoints: [`Window`] gathers each sampling
//! tick's [`TaskSample`]s and gives, per publishing window, one statistic
//! set per metric (`AWS/ECS` CPUUtilization and MemoryUtilization with
//! ClusterName+ServiceName and ClusterName alone, the service's used over
//! its reserved summed over its tasks at each tick, as ECS computes it;
//! `ECS/ContainerInsights` CpuUtilized, CpuReserved, MemoryUtilized,
//! MemoryReserved and RunningTaskCount with ClusterName+ServiceName and
//! ClusterName+TaskDefinitionFamily). Pure: the agent samples and writes.

use std::collections::BTreeMap;

use crate::metrics::{Datapoint, Dimensions, MetricKey, Sample};
use crate::task::Task;

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

impl TaskSample {
    /// A task's sample from its counters: CPU time used over `seconds`,
    /// memory in use now.
    pub fn of(task: &Task, cpu_ns_delta: u64, seconds: f64, memory_bytes: u64) -> Self {
        Self {
            cluster: task.arn.cluster.clone(),
            service: task.group.strip_prefix("service:").map(str::to_owned),
            family: task.definition_arn.family.clone(),
            cpu_reserved: f64::from(task.size.cpu),
            cpu_used: cpu_units(cpu_ns_delta, seconds),
            memory_reserved: f64::from(task.size.memory),
            memory_used: mib(memory_bytes),
        }
    }
}

/// CPU time over an interval as CPU units (1024 a core).
pub fn cpu_units(cpu_ns_delta: u64, seconds: f64) -> f64 {
    cpu_ns_delta as f64 / 1e9 / seconds.max(1e-3) * 1024.0
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
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

/// One task's (or one of its containers') latest usage, for Prometheus.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskGauge {
    pub cluster: String,
    pub service: Option<String>,
    /// The task id.
    pub task: String,
    /// `None`: the whole task.
    pub container: Option<String>,
    /// CPU units used over the last sampling interval (1024 a core).
    pub cpu_used: f64,
    /// CPU units and MiB reserved (the task's; 0 for a container).
    pub cpu_reserved: f64,
    pub memory_used_bytes: f64,
    pub memory_reserved_bytes: f64,
}

/// The latest gauges, shared by the sampler (which replaces them each
/// tick) and `GET /metrics` (which renders them).
#[derive(Debug, Default)]
pub struct UsageBoard(std::sync::Mutex<Vec<TaskGauge>>);

impl UsageBoard {
    pub fn set(&self, gauges: Vec<TaskGauge>) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = gauges;
    }

    pub fn render(&self) -> String {
        prometheus(&self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The gauges in Prometheus text form: per task and container, and per
/// service (sums, and utilization as used over reserved).
pub fn prometheus(gauges: &[TaskGauge]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let families: [(&str, &str, fn(&TaskGauge) -> f64); 4] = [
        ("berth_task_cpu_used_units", "CPU used over the last sample, in CPU units (1024 a core).", |g| g.cpu_used),
        ("berth_task_cpu_reserved_units", "CPU reserved by the task, in CPU units.", |g| g.cpu_reserved),
        ("berth_task_memory_used_bytes", "Memory in use.", |g| g.memory_used_bytes),
        ("berth_task_memory_reserved_bytes", "Memory reserved by the task.", |g| g.memory_reserved_bytes),
    ];
    for (name, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for g in gauges.iter().filter(|g| g.container.is_none() || name.contains("used")) {
            let _ = writeln!(
                out,
                "{name}{{cluster=\"{}\",service=\"{}\",task=\"{}\",container=\"{}\"}} {}",
                label(&g.cluster),
                label(g.service.as_deref().unwrap_or("")),
                label(&g.task),
                label(g.container.as_deref().unwrap_or("")),
                value(g)
            );
        }
    }
    let mut services = BTreeMap::<(&str, &str), Sums>::new();
    for g in gauges.iter().filter(|g| g.container.is_none()) {
        if let Some(service) = &g.service {
            let s = services.entry((&g.cluster, service)).or_default();
            s.cpu_used += g.cpu_used;
            s.cpu_reserved += g.cpu_reserved;
            s.memory_used += g.memory_used_bytes;
            s.memory_reserved += g.memory_reserved_bytes;
            s.tasks += 1.0;
        }
    }
    let per_service: [(&str, &str, fn(&Sums) -> f64); 3] = [
        ("berth_service_cpu_utilization_percent", "The service's CPU used over reserved, summed over its running tasks.", |s| {
            if s.cpu_reserved > 0.0 { s.cpu_used / s.cpu_reserved * 100.0 } else { 0.0 }
        }),
        ("berth_service_memory_utilization_percent", "The service's memory used over reserved, summed over its running tasks.", |s| {
            if s.memory_reserved > 0.0 { s.memory_used / s.memory_reserved * 100.0 } else { 0.0 }
        }),
        ("berth_service_running_tasks", "The service's running tasks sampled on this node.", |s| s.tasks),
    ];
    for (name, help, value) in per_service {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for ((cluster, service), sums) in &services {
            let _ = writeln!(out, "{name}{{cluster=\"{}\",service=\"{}\"}} {}", label(cluster), label(service), value(sums));
        }
    }
    out
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

    #[test]
    fn prometheus_gauges_per_task_container_and_service() {
        let task = |id: &str, cpu_used: f64| TaskGauge {
            cluster: "c".into(),
            service: Some("web".into()),
            task: id.into(),
            container: None,
            cpu_used,
            cpu_reserved: 256.0,
            memory_used_bytes: 1024.0,
            memory_reserved_bytes: 4096.0,
        };
        let container = TaskGauge { container: Some("ma\"in".into()), cpu_reserved: 0.0, memory_reserved_bytes: 0.0, ..task("t1", 100.0) };
        let text = prometheus(&[task("t1", 256.0), task("t2", 0.0), container]);
        assert!(text.contains("berth_task_cpu_used_units{cluster=\"c\",service=\"web\",task=\"t1\",container=\"\"} 256"), "{text}");
        assert!(text.contains("berth_task_cpu_used_units{cluster=\"c\",service=\"web\",task=\"t1\",container=\"ma\\\"in\"} 100"), "{text}");
        assert!(!text.contains("berth_task_cpu_reserved_units{cluster=\"c\",service=\"web\",task=\"t1\",container=\"ma"), "{text}");
        assert!(text.contains("berth_service_cpu_utilization_percent{cluster=\"c\",service=\"web\"} 50"), "{text}");
        assert!(text.contains("berth_service_memory_utilization_percent{cluster=\"c\",service=\"web\"} 25"), "{text}");
        assert!(text.contains("berth_service_running_tasks{cluster=\"c\",service=\"web\"} 2"), "{text}");
        assert!(text.contains("# TYPE berth_task_memory_used_bytes gauge"), "{text}");
    }
}
