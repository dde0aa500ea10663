//! Benchmark 3, density: host memory per idle task beyond the container's own RSS
//! (shim, agent state, kernel objects), at 100 and 300 idle tasks.

use std::time::{Duration, Instant};

use crate::Ctx;
use crate::launch::{BIG_NODE, launch_once};
use crate::procfs::{self, Mem};
use crate::world::{Berth, sleep};

const BENCH: &str = "density";
const MIB: f64 = 1024.0 * 1024.0;
/// The kernel's unreclaimable memory in /proc/meminfo: what namespaces,
/// cgroups, mounts, processes and sockets cost.
const KERNEL: &[&str] = &["SUnreclaim", "KernelStack", "PageTables", "Percpu"];

/// Memory as the bench reads it at one moment.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    host_used: f64,
    kernel: f64,
    reclaimable_slab: f64,
    berth: Mem,
    shims: Mem,
    shim_count: usize,
    containers: Mem,
    container_procs: usize,
    cgroup_usage: f64,
    cgroup_kmem: f64,
}

impl Snapshot {
    fn take(berth: &Berth, ids: &[String]) -> Self {
        let info = procfs::meminfo();
        let get = |k: &str| info.get(k).copied().unwrap_or(0) as f64;
        let mut s = Snapshot {
            host_used: get("MemTotal") - get("MemAvailable"),
            kernel: KERNEL.iter().map(|k| get(k)).sum(),
            reclaimable_slab: get("SReclaimable"),
            berth: procfs::mem_of(berth.pid()).unwrap_or_default(),
            ..Default::default()
        };
        for pid in procfs::processes("berth-shim", &berth.data.display().to_string()) {
            if let Some(m) = procfs::mem_of(pid) {
                s.shims += m;
                s.shim_count += 1;
            }
        }
        for id in ids {
            let Some(cg) = procfs::task_memory_cgroup(id) else { continue };
            for pid in procfs::cgroup_procs(&cg) {
                if let Some(m) = procfs::mem_of(pid) {
                    s.containers += m;
                    s.container_procs += 1;
                }
            }
            s.cgroup_usage += procfs::cgroup_value(&cg, "memory.usage_in_bytes", None)
                .or_else(|| procfs::cgroup_value(&cg, "memory.current", None))
                .unwrap_or(0) as f64;
            s.cgroup_kmem += procfs::cgroup_value(&cg, "memory.kmem.usage_in_bytes", None)
                .or_else(|| procfs::cgroup_value(&cg, "memory.stat", Some("kernel")))
                .unwrap_or(0) as f64;
        }
        s
    }

    /// The median of each field over `n` snapshots a second apart (the
    /// host-wide counters move with whatever else the machine does).
    fn settled(berth: &Berth, ids: &[String], n: usize) -> anyhow::Result<Self> {
        let mut all = Vec::new();
        for i in 0..n {
            if i > 0 {
                sleep(Duration::from_secs(1))?;
            }
            all.push(Self::take(berth, ids));
        }
        let med = |f: &dyn Fn(&Snapshot) -> f64| {
            let mut v: Vec<f64> = all.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let medm = |f: fn(&Snapshot) -> Mem| Mem {
            rss: med(&|s| f(s).rss as f64) as u64,
            pss: med(&|s| f(s).pss as f64) as u64,
        };
        Ok(Snapshot {
            host_used: med(&|s| s.host_used),
            kernel: med(&|s| s.kernel),
            reclaimable_slab: med(&|s| s.reclaimable_slab),
            berth: medm(|s| s.berth),
            shims: medm(|s| s.shims),
            shim_count: all.iter().map(|s| s.shim_count).max().unwrap_or(0),
            containers: medm(|s| s.containers),
            container_procs: all.iter().map(|s| s.container_procs).max().unwrap_or(0),
            cgroup_usage: med(&|s| s.cgroup_usage),
            cgroup_kmem: med(&|s| s.cgroup_kmem),
        })
    }
}

pub fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let levels = ctx.opts.density.clone();
    let busybox = ctx.images()?.reference("busybox:latest");
    let berth = ctx.berth(BENCH, BIG_NODE, "info,sqlx=warn")?;
    berth.register_sleeper("bench-sleep", &busybox)?;
    let mut client = berth.client();
    launch_once(&berth, &mut client, "bench-sleep", Duration::from_millis(10))?;
    sleep(Duration::from_secs(3))?;
    let base = Snapshot::settled(&berth, &[], 3)?;
    let mut arns: Vec<String> = Vec::new();
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for &level in &levels {
        let more = level.saturating_sub(arns.len());
        eprintln!("[density] starting {more} more idle tasks (to {level})");
        let began = Instant::now();
        let launched = berth.launch_many("bench-sleep", more, 20, Duration::from_secs(300))?;
        if let Some(f) = launched.failures() {
            failures.push(format!("to {level}: {f}"));
        }
        arns.extend(launched.arns());
        berth.wait_all(&mut client, &arns, "RUNNING", Duration::from_secs(300), Duration::from_millis(200))?;
        eprintln!("[density] {level} tasks RUNNING after {:.1} s; letting them settle", began.elapsed().as_secs_f64());
        sleep(Duration::from_secs(5))?;
        let ids: Vec<String> = arns.iter().map(|a| crate::world::task_id(a)).collect();
        let snap = Snapshot::settled(&berth, &ids, 3)?;
        anyhow::ensure!(snap.shim_count >= level, "expected {level} shims, found {}", snap.shim_count);
        // Idle CPU: what Berth and the shims burn with nothing to do.
        let shim_pids = procfs::processes("berth-shim", &berth.data.display().to_string());
        let cpu = |pids: &[i32]| pids.iter().filter_map(|p| procfs::cpu_seconds(*p)).sum::<f64>();
        let (b0, s0, t0) = (procfs::cpu_seconds(berth.pid()).unwrap_or(0.0), cpu(&shim_pids), Instant::now());
        sleep(Duration::from_secs(5))?;
        let (b1, s1, wall) = (procfs::cpu_seconds(berth.pid()).unwrap_or(0.0), cpu(&shim_pids), t0.elapsed().as_secs_f64());
        results.push((level, snap, (b1 - b0) / wall, (s1 - s0) / wall));
    }

    if let Some(hold) = std::env::var("BERTH_BENCH_HOLD_SECS").ok().and_then(|s| s.parse().ok()) {
        // For profiling the idle state by hand (perf, strace).
        eprintln!("[density] holding {} idle tasks for {hold} s: berth pid {}", arns.len(), berth.pid());
        sleep(Duration::from_secs(hold))?;
    }
    eprintln!("[density] stopping {} tasks", arns.len());
    for chunk in arns.chunks(50) {
        berth.stop_tasks(&mut client, chunk)?;
    }
    berth.wait_all(&mut client, &arns, "STOPPED", Duration::from_secs(300), Duration::from_millis(200))?;
    let left = berth.finish();
    ctx.leftovers(left);

    let r = &mut ctx.report;
    for f in failures {
        r.note(BENCH, f);
    }
    r.note(
        BENCH,
        "Method: at 0 tasks and at each level (after 5 s idle; the median of 3 readings 1 s apart), the bench reads the PSS (/proc/PID/smaps_rollup) of the berth process (API, store, agent) and of every berth-shim of its data dir, \
         the RSS/PSS of the processes in each task's memory cgroup (the container's own), and /proc/meminfo. \
         Platform memory per task = (Σ shim PSS + Δ berth PSS + Δ unreclaimable kernel memory (SUnreclaim + KernelStack + PageTables + Percpu: namespaces, cgroups, mounts, the containers' page tables and kernel stacks)) / tasks. \
         The cross-check is host-wide: Δ(MemTotal − MemAvailable) / tasks − the container's RSS, which moves with anything else the machine does.",
    );
    for (level, s, berth_cpu, shim_cpu) in &results {
        let n = *level as f64;
        let shim = s.shims.pss as f64 / n;
        let agent = (s.berth.pss as f64 - base.berth.pss as f64) / n;
        let kernel = (s.kernel - base.kernel) / n;
        let platform = shim + agent + kernel;
        let container_rss = s.containers.rss as f64 / n;
        let host = (s.host_used - base.host_used) / n - container_rss;
        let id = format!("density.{level}.platform_per_task");
        r.single(
            &id,
            "MiB",
            &format!("{level} idle tasks: (Σ shim PSS + Δ berth PSS + Δ unreclaimable kernel memory) / {level}, beyond the container's own RSS; see the density note for the method"),
            platform / MIB,
        );
        r.target(&id, "≤ 5 MiB per idle task", |f| f.value.headline() <= 5.0);
        r.single(&format!("density.{level}.shim_pss"), "MiB", &format!("Per task: PSS of its berth-shim (RSS {:.2} MiB)", s.shims.rss as f64 / n / MIB), shim / MIB);
        r.single(&format!("density.{level}.agent_pss"), "MiB", &format!("Per task: growth of the berth process's PSS since 0 tasks ({:.1} → {:.1} MiB)", base.berth.pss as f64 / MIB, s.berth.pss as f64 / MIB), agent / MIB);
        r.single(
            &format!("density.{level}.kernel"),
            "MiB",
            &format!(
                "Per task: growth of unreclaimable kernel memory ({}); reclaimable slab (dentries, inodes) grew a further {:.2} MiB per task, not counted",
                KERNEL.join(" + "),
                (s.reclaimable_slab - base.reclaimable_slab) / n / MIB
            ),
            kernel / MIB,
        );
        r.single(
            &format!("density.{level}.container_rss"),
            "MiB",
            &format!(
                "Per task: RSS of the container's own processes ({} processes in all; PSS {:.2} MiB per task); the task cgroups charge {:.2} MiB per task, {:.2} MiB of it kernel memory",
                s.container_procs,
                s.containers.pss as f64 / n / MIB,
                s.cgroup_usage / n / MIB,
                s.cgroup_kmem / n / MIB
            ),
            container_rss / MIB,
        );
        r.note(
            BENCH,
            format!(
                "{level} tasks, host-wide cross-check: Δ(MemTotal − MemAvailable) / tasks − the container's RSS = {:.2} MiB per task (counts whatever else the machine did meanwhile: meaningless on a shared machine)",
                host / MIB
            ),
        );
        r.single(&format!("density.{level}.idle_cpu"), "cores", &format!("CPU used while the {level} tasks idle, over 5 s: berth {berth_cpu:.3} cores, all shims {shim_cpu:.3} cores (this figure: both)"), berth_cpu + shim_cpu);
    }
    Ok(())
}
