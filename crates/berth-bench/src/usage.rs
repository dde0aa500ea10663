//! 7. The usage sampler's cost at 300 idle tasks: CPU seconds it spends
//! per wall second, as a fraction of a core (target < 2 %).
//!
//! Synthetic cgroups, not real tasks: 300 idle tasks do not fit next to
//! the other benchmarks on a small machine, and their own CPU would hide
//! the sampler's. The bench lays out a cgroup v1 tree (this host's
//! layout: cpuacct and memory hierarchies, a task cgroup with one
//! container cgroup each, the files the kernel would show; v2 reads as
//! many files: cpu.stat, memory.current, memory.peak) and reads it through
//! berth-runtime's own `Cgroups` (from a synthetic mountinfo): per task
//! and tick exactly what the agent's sampler reads (the task's and its
//! container's usage), then the sampler's pure work (`Window::add_tick`,
//! the Prometheus gauges) and, once per publishing window, its datapoints
//! written to a SQLite store. Not counted: the store query listing the
//! node's tasks (which the agent's own loop makes every second anyway).

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use berth_model::usage::{TaskGauge, TaskSample, UsageBoard, Window};
use berth_runtime::cgroup::Cgroups;
use berth_runtime_api::TaskId;

use crate::Ctx;

const TASKS: usize = 300;
/// The sampler's default interval and ticks per publishing window.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
const TICKS_PER_WINDOW: usize = 12;

fn cpu_seconds() -> f64 {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).ok();
    u.map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    })
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(path.parent().context("parent")?)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// A cgroup v1 tree of `TASKS` idle tasks (cpuacct and memory
/// hierarchies, each task with one container), and the mountinfo naming it.
fn synthetic_tree(root: &Path) -> anyhow::Result<(String, Vec<TaskId>)> {
    let mut ids = Vec::new();
    for i in 0..TASKS {
        let id = TaskId::new(format!("{i:032x}"))?;
        for rel in [format!("berth/{}", id.as_str()), format!("berth/{}/main", id.as_str())] {
            write(&root.join("cpuacct").join(&rel).join("cpuacct.usage"), &format!("{}\n", 1_000_000 + i))?;
            write(&root.join("memory").join(&rel).join("memory.usage_in_bytes"), "1048576\n")?;
            write(&root.join("memory").join(&rel).join("memory.max_usage_in_bytes"), "2097152\n")?;
        }
        ids.push(id);
    }
    let line = |n: u32, dir: &str| format!("{n} 1 0:{n} / {} rw,nosuid - cgroup cgroup rw,{dir}\n", root.join(dir).display());
    Ok(([line(31, "cpu"), line(32, "cpuacct"), line(33, "memory"), line(34, "pids")].concat(), ids))
}

/// CPU seconds per tick of sampling `ids` through `cgroups` (and the
/// sampler's own work), over `ticks` ticks back to back.
fn measure(cgroups: &Cgroups, ids: &[TaskId], ticks: usize, store: &dyn berth_store::Store, rt: &tokio::runtime::Runtime) -> anyhow::Result<f64> {
    let board = UsageBoard::default();
    let mut window = Window::default();
    let began = cpu_seconds();
    for tick in 0..ticks {
        let mut samples = Vec::with_capacity(ids.len());
        let mut gauges = Vec::with_capacity(ids.len() * 2);
        for (i, id) in ids.iter().enumerate() {
            let cg = cgroups.task(id);
            let task = cg.usage().context("task usage")?;
            let container = cg.container_usage("main").context("container usage")?;
            let sample = TaskSample {
                cluster: "default".into(),
                service: Some(format!("svc{}", i % 10)),
                family: format!("fam{}", i % 10),
                cpu_reserved: 256.0,
                cpu_used: task.cpu_ns as f64 / 1e9,
                memory_reserved: 512.0,
                memory_used: task.memory_bytes as f64 / 1048576.0,
            };
            for (c, u) in [(None, task), (Some("main".to_owned()), container)] {
                gauges.push(TaskGauge {
                    cluster: sample.cluster.clone(),
                    service: sample.service.clone(),
                    task: id.as_str().to_owned(),
                    container: c,
                    cpu_used: u.cpu_ns as f64,
                    cpu_reserved: 256.0,
                    memory_used_bytes: u.memory_bytes as f64,
                    memory_reserved_bytes: 512.0 * 1048576.0,
                });
            }
            samples.push(sample);
        }
        window.add_tick(&samples);
        board.set(gauges);
        if (tick + 1) % TICKS_PER_WINDOW == 0 {
            let points = window.take(tick as i64 * 60_000);
            rt.block_on(store.put_datapoints(&points, tick as i64 * 60_000))?;
        }
    }
    Ok((cpu_seconds() - began) / ticks as f64)
}

pub fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let ticks = if ctx.opts.usage_ticks == 0 { 120 } else { ctx.opts.usage_ticks };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let db = ctx.work().join("usage-bench.db");
    let store = rt.block_on(berth_store::open(&format!("sqlite://{}", db.display())))?.records;
    let root = ctx.work().join("usage-cgroups");
    let (mountinfo, ids) = synthetic_tree(&root)?;
    let cgroups = Cgroups::from_mountinfo(&mountinfo)?;
    let per_tick = measure(&cgroups, &ids, ticks, store.as_ref(), &rt)?;
    let share = per_tick / SAMPLE_EVERY.as_secs_f64() * 100.0;
    eprintln!(
        "usage: {:.2} ms CPU per tick of {TASKS} tasks: {share:.3} % of a core at one tick per {} s",
        per_tick * 1000.0,
        SAMPLE_EVERY.as_secs()
    );
    let id = "usage-sampler-300";
    ctx.report.single(
        id,
        "% of a core",
        &format!("usage sampler, {TASKS} idle tasks (synthetic cgroup v1 tree), CPU per wall second at a {} s interval", SAMPLE_EVERY.as_secs()),
        share,
    );
    ctx.report.target(id, "< 2 % of a core", |f| f.value.headline() < 2.0);
    ctx.report.note("usage", "synthetic cgroup files read through berth-runtime's Cgroups; the node's task listing is not counted");
    Ok(())
}
