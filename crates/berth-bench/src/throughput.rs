//! Benchmark 2, launch throughput: tasks reaching RUNNING per second with 50
//! RunTask calls in flight until 200 run; then StopTask of all and the
//! time until all are STOPPED and cleaned up.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;

use crate::Ctx;
use crate::baseline::Floor;
use crate::launch::{BIG_NODE, launch_once};
use crate::stats::percentile;
use crate::world::check;

const BENCH: &str = "throughput";

pub fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let total = ctx.opts.throughput_tasks;
    let in_flight = ctx.opts.in_flight;
    let busybox = ctx.images()?.reference("busybox:latest");
    let berth = ctx.berth(BENCH, BIG_NODE, "info,sqlx=warn")?;
    berth.register_sleeper("bench-sleep", &busybox)?;
    let mut client = berth.client();
    launch_once(&berth, &mut client, "bench-sleep", Duration::from_millis(10))?; // pulls and caches the image

    eprintln!("[throughput] {total} RunTask calls, {in_flight} in flight");
    let epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?.as_secs_f64();
    let began = Instant::now();
    let launched = berth.launch_many("bench-sleep", total, in_flight, Duration::from_secs(300))?;
    let all_seen = began.elapsed();
    let mut started: Vec<f64> = launched
        .running
        .iter()
        .map(|t| t["startedAt"].as_f64().map(|s| s - epoch).context("a RUNNING task without startedAt"))
        .collect::<Result<_, _>>()?;
    started.sort_by(f64::total_cmp);
    let last = started[started.len() - 1];
    let (t10, t90) = (percentile(&started, 10.0), percentile(&started, 90.0));
    let sustained = if t90 > t10 { 0.8 * started.len() as f64 / (t90 - t10) } else { f64::NAN };
    let arns = launched.arns();
    let failures = launched.failures();

    eprintln!("[throughput] StopTask of all {total}, {in_flight} in flight");
    let stop_began = Instant::now();
    let next = AtomicUsize::new(0);
    let stop_errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..in_flight {
            s.spawn(|| {
                let mut c = berth.client();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= arns.len() || crate::world::interrupted() {
                        break;
                    }
                    if let Err(e) = berth.stop_tasks(&mut c, &arns[i..=i]) {
                        stop_errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(format!("{e:#}"));
                    }
                }
            });
        }
    });
    check()?;
    let stop_errors = stop_errors.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    anyhow::ensure!(stop_errors.is_empty(), "{} StopTask calls failed, e.g. {}", stop_errors.len(), stop_errors[0]);
    let stop_calls = stop_began.elapsed();
    berth.wait_all(&mut client, &arns, "STOPPED", Duration::from_secs(300), Duration::from_millis(250))?;
    let all_stopped = stop_began.elapsed();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !berth.leftovers().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let cleaned = stop_began.elapsed();
    let left = berth.finish();
    ctx.leftovers(left);

    let r = &mut ctx.report;
    r.single(
        "throughput.launch",
        "tasks/s",
        &format!(
            "{total} tasks / (last startedAt − first RunTask sent), {in_flight} RunTask calls in flight (each count 1) from the bench's threads; the last task was RUNNING {last:.2} s after the first call (seen by DescribeTasks polled every 500 ms at {:.2} s){}",
            all_seen.as_secs_f64(),
            failures.as_ref().map_or(String::new(), |f| format!("; {f}"))
        ),
        total as f64 / last,
    );
    r.single(
        "throughput.launch.sustained",
        "tasks/s",
        &format!("Tasks reaching RUNNING per second between the 10th and 90th percentile of startedAt ({t10:.2} s → {t90:.2} s)"),
        sustained,
    );
    r.samples("throughput.runtask_call", "ms", &format!("Each RunTask call's time under that load ({in_flight} in flight)"), &launched.calls);
    r.single(
        "throughput.stop_all",
        "s",
        &format!("StopTask of all {total} ({in_flight} in flight; the calls took {:.2} s) → all STOPPED (DescribeTasks polled every 250 ms)", stop_calls.as_secs_f64()),
        all_stopped.as_secs_f64(),
    );
    r.single(
        "throughput.stop_all.cleaned",
        "s",
        "StopTask of all → nothing of theirs left on the host (no overlay mount, task cgroup, shim or task directory)",
        cleaned.as_secs_f64(),
    );
    r.target("throughput.launch.sustained", "≥ 20 tasks/s sustained", |f| f.value.headline() >= 20.0);
    r.single(
        "throughput.failed_to_start",
        "tasks",
        &failures.unwrap_or_else(|| "Tasks that failed to start during the throughput run (each replaced by another RunTask)".into()),
        launched.failed.len() as f64,
    );

    // The floor's throughput: runc run of the same bundle, as many in flight.
    let floor_dir = ctx.work().join("floor-throughput");
    match Floor::new(&floor_dir) {
        Err(e) => ctx.report.not_measured("throughput.floor", &format!("{e:#}"), true),
        Ok(floor) => {
            eprintln!("[throughput] floor: {total} × {}, {in_flight} in flight", floor.describe());
            let began = Instant::now();
            let next = AtomicUsize::new(0);
            let ids = Mutex::new(Vec::new());
            let errors = Mutex::new(Vec::new());
            std::thread::scope(|s| {
                for _ in 0..in_flight {
                    s.spawn(|| {
                        while next.fetch_add(1, Ordering::SeqCst) < total && !crate::world::interrupted() {
                            match floor.start() {
                                Ok((id, _)) => ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(id),
                                Err(e) => errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(format!("{e:#}")),
                            }
                        }
                    });
                }
            });
            let took = began.elapsed();
            let ids = ids.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
            let errors = errors.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
            let removed_began = Instant::now();
            for id in &ids {
                floor.remove(id)?;
            }
            let removed = removed_began.elapsed();
            check()?;
            if errors.is_empty() {
                ctx.report.single(
                    "throughput.floor",
                    "containers/s",
                    &format!(
                        "Baseline: {total} × (overlay mount + `{}`) from {in_flight} threads / wall time; removing them all (runc delete -f, umount) took {:.2} s, one at a time",
                        floor.describe(),
                        removed.as_secs_f64()
                    ),
                    total as f64 / took.as_secs_f64(),
                );
            } else {
                ctx.report.not_measured("throughput.floor", &format!("{} runc runs failed, e.g. {}", errors.len(), errors[0]), true);
            }
            ctx.leftovers(floor.leftovers());
        }
    }
    ctx.report.ratio("throughput.launch", "throughput.floor");
    ctx.report.ratio("throughput.launch.sustained", "throughput.floor");
    Ok(())
}
