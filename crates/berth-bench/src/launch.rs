//! Benchmark 1, launch latency: RunTask → RUNNING, one task at a time, with the
//! image cached and from an empty cache; against `runc run` of an
//! equivalent bundle (the floor) and `podman run` (a peer).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::Ctx;
use crate::baseline::{Floor, Podman};
use crate::client::Client;
use crate::stats::ms;
use crate::world::{Berth, check};

const BENCH: &str = "launch";

/// One task's launch, as the client saw it and as Berth's timestamps say.
#[derive(Debug, Clone)]
pub struct Launch {
    /// RunTask sent → the first DescribeTasks that shows RUNNING.
    pub total: Duration,
    /// The RunTask call alone.
    pub call: Duration,
    /// The task id (last part of its ARN).
    pub id: String,
    /// Seconds between the task's timestamps (createdAt, connectivityAt,
    /// pullStartedAt, pullStoppedAt, startedAt).
    pub to_connected: f64,
    pub connected_to_pull: f64,
    pub pull: f64,
    pub start: f64,
    /// createdAt → startedAt: Berth's own RunTask → RUNNING.
    pub server: f64,
    /// StopTask sent → the first DescribeTasks that shows STOPPED.
    pub stop: Duration,
}

/// Runs one `family` task to RUNNING, then stops it and waits until it is
/// STOPPED (so the next launch starts on a quiet node).
pub fn launch_once(berth: &Berth, client: &mut Client, family: &str, poll: Duration) -> anyhow::Result<Launch> {
    check()?;
    let started = Instant::now();
    let (arn, call) = berth.run_task(client, family)?;
    let deadline = started + Duration::from_secs(120);
    let task = loop {
        let t = describe_one(client, &arn)?;
        match t["lastStatus"].as_str() {
            Some("RUNNING") => break t,
            Some("STOPPED") => anyhow::bail!("task {arn} stopped instead of running: {} {}", t["stopCode"], t["stoppedReason"]),
            _ => {}
        }
        anyhow::ensure!(Instant::now() < deadline, "task {arn} not RUNNING within 120 s: {}", t["lastStatus"]);
        std::thread::sleep(poll);
    };
    let total = started.elapsed();
    // A moment for the task's shell to set its SIGTERM trap: a signal that
    // comes first is ignored (PID 1), and the stop would wait out the
    // stopTimeout.
    std::thread::sleep(Duration::from_millis(50));
    let stop_started = Instant::now();
    client.ecs_ok("StopTask", &json!({"task": arn, "reason": "berth-bench"}))?;
    let deadline = stop_started + Duration::from_secs(60);
    let stopped = loop {
        let t = describe_one(client, &arn)?;
        if t["lastStatus"] == "STOPPED" {
            break t;
        }
        anyhow::ensure!(Instant::now() < deadline, "task {arn} not STOPPED within 60 s of StopTask: {}", t["lastStatus"]);
        std::thread::sleep(poll);
    };
    let stop = stop_started.elapsed();
    if stop > Duration::from_secs(1) {
        // Say where a slow stop spent its time (exit code 137: SIGKILL
        // after the stopTimeout, i.e. SIGTERM did not end the task).
        let at = |k: &str| stopped[k].as_f64().unwrap_or(f64::NAN);
        eprintln!(
            "[launch] slow stop of {arn}: {:.0} ms; exit code {}; stoppingAt → executionStoppedAt {:.0} ms, → stoppedAt {:.0} ms",
            ms(stop),
            stopped["containers"][0]["exitCode"],
            (at("executionStoppedAt") - at("stoppingAt")) * 1000.0,
            (at("stoppedAt") - at("stoppingAt")) * 1000.0
        );
    }
    let at = |k: &str| task[k].as_f64().with_context(|| format!("RUNNING task without {k}: {task}"));
    let (created, pull_started, pull_stopped, running) =
        (at("createdAt")?, at("pullStartedAt")?, at("pullStoppedAt")?, at("startedAt")?);
    let connected = task["connectivityAt"].as_f64().unwrap_or(created);
    Ok(Launch {
        id: crate::world::task_id(&arn),
        to_connected: connected - created,
        connected_to_pull: pull_started - connected,
        total,
        call,
        pull: pull_stopped - pull_started,
        start: running - pull_stopped,
        server: running - created,
        stop,
    })
}

fn describe_one(client: &mut Client, arn: &str) -> anyhow::Result<Value> {
    let v = client.ecs_ok("DescribeTasks", &json!({"tasks": [arn]}))?;
    Ok(v["tasks"][0].clone())
}

/// Node options big enough for any count of bench tasks (256 CPU/512 MiB
/// each): the node is over-committed on paper, which is the point of an
/// idle-task benchmark.
pub const BIG_NODE: &[&str] = &["--node-cpu", "1048576", "--node-memory", "4194304"];

pub fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (warm_n, cold_n) = (ctx.opts.launches, ctx.opts.cold_launches);
    let (podman_warm_n, podman_cold_n) = (ctx.opts.podman_launches, ctx.opts.podman_cold_launches);
    let poll = Duration::from_millis(ctx.opts.poll_ms);
    let busybox = ctx.images()?.reference("busybox:latest");
    let cold_images = ctx.images()?.cold(cold_n + podman_cold_n)?;
    let cold_refs: Vec<String> = cold_images.iter().map(|c| ctx.images().map(|i| i.reference(c))).collect::<Result<_, _>>()?;

    // Berth, image cached, then from an empty cache.
    let (warm, cold, runtime, (berth_config, berth_data), left) = {
        let berth = ctx.berth(BENCH, BIG_NODE, "info,sqlx=warn,berth_runtime=debug,berth_agent::network=debug")?;
        berth.register_sleeper("bench-sleep", &busybox)?;
        for (i, image) in cold_refs[..cold_n].iter().enumerate() {
            berth.register_sleeper(&format!("bench-cold-{i}"), image)?;
        }
        let mut client = berth.client();
        eprintln!("[launch] warm-up: 3 tasks (the first pulls and caches busybox)");
        for _ in 0..3 {
            launch_once(&berth, &mut client, "bench-sleep", poll)?;
        }
        let berth_config = berth_config(&berth, &mut client)?;
        eprintln!("[launch] {warm_n} sequential tasks, image cached");
        let mut warm = Vec::new();
        for i in 0..warm_n {
            warm.push(launch_once(&berth, &mut client, "bench-sleep", poll)?);
            progress(i + 1, warm_n);
        }
        eprintln!("[launch] {cold_n} sequential tasks, each of an image not in the cache");
        let mut cold = Vec::new();
        for i in 0..cold_n {
            cold.push(launch_once(&berth, &mut client, &format!("bench-cold-{i}"), poll)?);
            progress(i + 1, cold_n);
        }
        let runtime_starts = runtime_start_times(&berth.log);
        let runtime: Vec<f64> = warm.iter().filter_map(|l| runtime_starts.get(&l.id).copied()).collect();
        let data = berth.data.clone();
        (warm, cold, runtime, (berth_config, data), berth.finish())
    };
    ctx.leftovers(left);
    let r = &mut ctx.report;
    let sample = |v: &[Launch], f: fn(&Launch) -> f64| v.iter().map(f).collect::<Vec<f64>>();
    r.samples(
        "launch.warm",
        "ms",
        &format!(
            "RunTask sent → first DescribeTasks (polled every {} ms) showing RUNNING; busybox `sleep` task, image cached; {warm_n} sequential tasks, each stopped before the next",
            poll.as_millis()
        ),
        &sample(&warm, |l| ms(l.total)),
    );
    r.samples("launch.warm.server", "ms", "The same launches by Berth's own timestamps: createdAt → startedAt (ms resolution)", &sample(&warm, |l| l.server * 1000.0));
    r.samples("launch.warm.runtask_call", "ms", "The RunTask call alone (validate, schedule, store; returns PROVISIONING)", &sample(&warm, |l| ms(l.call)));
    r.samples(
        "launch.warm.phase.provision",
        "ms",
        "createdAt → connectivityAt: the agent picks the task up (on the store's notice of the placement), claims an address, makes the netns, veth and eth0 (netlink) and writes PENDING",
        &sample(&warm, |l| l.to_connected * 1000.0),
    );
    r.samples(
        "launch.warm.phase.firewall",
        "ms",
        "connectivityAt → pullStartedAt: the firewall re-rendered from the store and applied (nft), then the pullStartedAt write",
        &sample(&warm, |l| l.connected_to_pull * 1000.0),
    );
    r.samples("launch.warm.phase.image", "ms", "pullStartedAt → pullStoppedAt: image resolution with a cached image (a HEAD for the tag's digest) and the pullStoppedAt write", &sample(&warm, |l| l.pull * 1000.0));
    r.samples("launch.warm.phase.start", "ms", "pullStoppedAt → startedAt: the runtime's start and the ACTIVATING and RUNNING writes", &sample(&warm, |l| l.start * 1000.0));
    r.samples(
        "launch.warm.phase.runtime",
        "ms",
        "Of that, berth-runtime's own start by its debug log (\"task started\" elapsed): task cgroup, overlay mount, OCI config, berth-shim start → serve → runc run --detach",
        &runtime,
    );
    r.samples("launch.stop", "ms", "StopTask sent → first DescribeTasks showing STOPPED (SIGTERM ends the task's shell at once; includes unmount, cgroup and state removal)", &sample(&warm, |l| ms(l.stop)));
    r.samples(
        "launch.cold",
        "ms",
        &format!("As launch.warm, but each task's image (busybox with a marker file, ~1 MB gzip, one layer) is not in the cache: pull, verify, unpack included; {cold_n} tasks"),
        &sample(&cold, |l| ms(l.total)),
    );
    r.samples("launch.cold.phase.pull", "ms", "pullStartedAt → pullStoppedAt of the cold launches: pull and unpack", &sample(&cold, |l| l.pull * 1000.0));

    // The floor: runc run of an equivalent bundle with a new netns.
    let floor_dir = ctx.work().join("floor");
    match Floor::new(&floor_dir) {
        Err(e) => ctx.report.not_measured("launch.floor (runc run + netns)", &format!("{e:#}"), true),
        Ok(floor) => {
            eprintln!("[launch] floor: {warm_n} × {}", floor.describe());
            let mut samples = Vec::new();
            for _ in 0..3 {
                floor.launch_once()?;
            }
            for i in 0..warm_n {
                samples.push(ms(floor.launch_once()?));
                progress(i + 1, warm_n);
            }
            ctx.report.samples(
                "launch.floor",
                "ms",
                &format!(
                    "Baseline (the floor of a sandbox): overlay mount + config.json + `{}` of the same busybox command, runc's default spec (own mount/PID/IPC/UTS namespaces, a new netns created by the clone), the task's memory/CPU/pids limits; no seccomp, no shim, no API; {warm_n} sequential",
                    floor.describe()
                ),
                &samples,
            );
            ctx.leftovers(floor.leftovers());
        }
    }

    // The floor again with the OCI config Berth writes, with and without
    // its seccomp filter: what of the start is runc's work with Berth's
    // sandbox settings, and what is Berth's machinery around it.
    let variants_n = warm_n.div_ceil(2);
    for (seccomp, id) in [(true, "launch.floor.berth_config"), (false, "launch.floor.berth_config_no_seccomp")] {
        let dir = ctx.work().join(if seccomp { "floor-berth" } else { "floor-berth-noseccomp" });
        match Floor::with_berth_config(&dir, &berth_config, &berth_data, seccomp) {
            Err(e) => ctx.report.not_measured(id, &format!("{e:#}"), true),
            Ok(floor) => {
                eprintln!("[launch] {id}: {variants_n} × {}", floor.describe());
                floor.launch_once()?;
                let mut samples = Vec::new();
                for _ in 0..variants_n {
                    samples.push(ms(floor.launch_once()?));
                }
                let what = if seccomp {
                    format!(
                        "Profile: launch.floor with the config.json Berth wrote for one of its tasks (Docker's capabilities, masked paths, its mounts and limits, a seccomp allow-list of {} syscalls), a new netns as the floor's; {variants_n} sequential",
                        floor.seccomp_syscalls()
                    )
                } else {
                    format!("Profile: the same without the seccomp filter; {variants_n} sequential")
                };
                ctx.report.samples(id, "ms", &what, &samples);
                ctx.leftovers(floor.leftovers());
            }
        }
    }

    // The peer: podman run.
    let podman_dir = ctx.work().join("podman");
    match Podman::new(&podman_dir, &busybox) {
        Err(e) => ctx.report.not_measured("launch.podman (podman run)", &format!("{e:#}"), true),
        Ok(podman) => {
            eprintln!("[launch] podman: {podman_warm_n} × podman run -d (cached), {podman_cold_n} × from an empty cache");
            let mut warm = Vec::new();
            for i in 0..podman_warm_n {
                warm.push(ms(podman.run_once(&busybox, false)?));
                progress(i + 1, podman_warm_n);
            }
            let mut cold = Vec::new();
            for (i, image) in cold_refs[cold_n..].iter().enumerate() {
                cold.push(ms(podman.run_once(image, true)?));
                progress(i + 1, podman_cold_n);
            }
            let version = podman.version();
            ctx.report.samples(
                "launch.podman",
                "ms",
                &format!("Baseline (a peer): `podman run -d --network none` of the same image and command until it returns (container started), image cached; {version}, cgroupfs, own storage; {podman_warm_n} sequential"),
                &warm,
            );
            ctx.report.samples(
                "launch.podman.cold",
                "ms",
                &format!("`podman run -d` of an image not in its storage (pull included), the same kind of image as launch.cold; {podman_cold_n} sequential"),
                &cold,
            );
            ctx.leftovers(podman.leftovers());
        }
    }

    let r = &mut ctx.report;
    for (figure, baseline) in [
        ("launch.warm", "launch.floor"),
        ("launch.warm", "launch.podman"),
        ("launch.warm.server", "launch.floor"),
        ("launch.cold", "launch.podman.cold"),
        ("launch.cold", "launch.floor"),
        ("launch.floor.berth_config", "launch.floor"),
        ("launch.floor.berth_config_no_seccomp", "launch.floor"),
        ("launch.warm.phase.runtime", "launch.floor.berth_config"),
    ] {
        r.ratio(figure, baseline);
    }
    r.target("launch.warm", "p50 < 150 ms", |f| f.value.headline() < 150.0);
    if let Some(floor) = r.figure("launch.floor").map(|f| f.value.headline()) {
        r.target("launch.warm", &format!("p50 ≤ 2× floor ({:.1} ms)", 2.0 * floor), |f| f.value.headline() <= 2.0 * floor);
    }
    Ok(())
}

/// The OCI config Berth writes for a task: runs one to RUNNING, reads its
/// bundle's config.json, stops it.
fn berth_config(berth: &Berth, client: &mut Client) -> anyhow::Result<Value> {
    let (arn, _) = berth.run_task(client, "bench-sleep")?;
    berth.wait_all(client, std::slice::from_ref(&arn), "RUNNING", Duration::from_secs(60), Duration::from_millis(10))?;
    let id = crate::world::task_id(&arn);
    let id = id.as_str();
    let path = berth.data.join("runtime/tasks").join(id).join("containers/main/bundle/config.json");
    let config = std::fs::read(&path).with_context(|| format!("reading {}", path.display()));
    std::thread::sleep(Duration::from_millis(50));
    berth.stop_tasks(client, std::slice::from_ref(&arn))?;
    berth.wait_all(client, std::slice::from_ref(&arn), "STOPPED", Duration::from_secs(60), Duration::from_millis(10))?;
    Ok(serde_json::from_slice(&config?)?)
}

fn progress(done: usize, of: usize) {
    if done.is_multiple_of(25) || done == of {
        eprintln!("  {done}/{of}");
    }
}

/// The `elapsed` of every "task started" line berth-runtime logged (debug),
/// in ms, by task id.
pub fn runtime_start_times(log: &std::path::Path) -> std::collections::HashMap<String, f64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("task started"))
        .filter_map(|l| {
            let id = l.split("task=").nth(1)?.split_whitespace().next()?.to_owned();
            let ms = l.split("elapsed=").nth(1)?.split_whitespace().next().and_then(parse_debug_duration)?;
            Some((id, ms))
        })
        .collect()
}

/// A `Duration`'s Debug form (`12.3ms`, `950.1µs`, `1.2s`, `800ns`) in ms.
pub fn parse_debug_duration(s: &str) -> Option<f64> {
    let s = s.trim_end_matches([',', '"']);
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "s" => n * 1000.0,
        "ms" => n,
        "µs" | "us" => n / 1000.0,
        "ns" => n / 1_000_000.0,
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn debug_durations_parse() {
        assert_eq!(parse_debug_duration("12.5ms"), Some(12.5));
        assert_eq!(parse_debug_duration("1.5s"), Some(1500.0));
        assert_eq!(parse_debug_duration("250µs"), Some(0.25));
        assert_eq!(parse_debug_duration("nonsense"), None);
    }
}
