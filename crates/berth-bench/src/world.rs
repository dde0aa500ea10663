//! What every benchmark stands on: the binaries, a work directory, the
//! loopback registry with the bench's images, and `berth up` processes
//! that stop every task they ran when they go (even on error or Ctrl-C).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use berth_testinfra::registry::{ImageSpec, LayerBuilder, OciLayout, Registry};
use berth_testinfra::server::{BerthProcess, links_in};
use serde_json::{Value, json};

use crate::client::Client;
use crate::procfs;

/// The container command of every bench task: an idle `sleep` under a
/// shell that exits on SIGTERM, so that StopTask measures Berth's own
/// teardown rather than the stopTimeout a PID 1 `sleep` (which ignores
/// SIGTERM) would wait out.
pub const SLEEP_SCRIPT: &str = "trap 'exit 0' TERM; sleep 3600 & wait";

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Blocks SIGINT and SIGTERM in every thread and turns the first of
/// them into [`interrupted`] (cleanup runs as the benchmarks unwind); a
/// second one exits at once. Call before starting any thread.
pub fn handle_signals() -> anyhow::Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block()?;
    std::thread::spawn(move || {
        let mut seen = 0;
        while let Ok(signal) = set.wait() {
            seen += 1;
            if seen == 1 {
                eprintln!("\n{signal}: stopping; cleaning up what the bench started (again to abandon the cleanup)");
                INTERRUPTED.store(true, Ordering::SeqCst);
            } else {
                eprintln!("{signal} again: exiting without cleaning up");
                std::process::exit(130);
            }
        }
    });
    Ok(())
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Fails once the run was interrupted.
pub fn check() -> anyhow::Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// Sleeps, failing early if interrupted.
pub fn sleep(d: Duration) -> anyhow::Result<()> {
    check()?;
    std::thread::sleep(d);
    check()
}

/// The binaries a run uses.
#[derive(Debug, Clone)]
pub struct Bins {
    pub berth: PathBuf,
    pub shim: PathBuf,
    /// This `berth up` takes `--default-subnet` and `--nft-table` (it
    /// gives tasks their own interfaces).
    pub networking: bool,
}

/// The default subnet and nftables tables of the bench's Berths (one at a
/// time): big enough for the density benchmark's 300 tasks, apart from
/// Berth's own default (10.89.0.0/16, table `berth`), testinfra's test
/// networks (10.200.0.0/13) and podman's (10.88.0.0/16).
pub const BENCH_CIDR: &str = "10.90.0.0/20";
pub const BENCH_NFT_TABLE: &str = "berthbench";

impl Bins {
    /// `berth` and `berth-shim` beside this executable (target/release),
    /// or in `dir`.
    pub fn find(dir: Option<&Path>) -> anyhow::Result<Self> {
        let dir = match dir {
            Some(d) => d.to_owned(),
            None => std::env::current_exe()?.parent().context("no executable dir")?.to_owned(),
        };
        let mut bins = Self { berth: dir.join("berth"), shim: dir.join("berth-shim"), networking: false };
        for b in [&bins.berth, &bins.shim] {
            ensure!(
                b.is_file(),
                "{} is missing: build it first with `cargo build --release -p berth-cli -p berth-runtime` \
                 (or point --bin-dir at a directory holding berth and berth-shim)",
                b.display()
            );
        }
        let help = Command::new(&bins.berth).args(["up", "--help"]).output()?;
        bins.networking = String::from_utf8_lossy(&help.stdout).contains("--default-subnet");
        Ok(bins)
    }
}

/// The loopback registry and the images pushed into it.
pub struct Images {
    pub registry: Registry,
    dir: PathBuf,
    /// Cold images pushed so far (`cold-N:latest`).
    cold: usize,
    pub big: Option<BigImage>,
}

/// The ~200 MB multi-layer image of the pull benchmark.
#[derive(Debug, Clone)]
pub struct BigImage {
    pub name: String,
    pub layers: usize,
    pub unpacked_bytes: u64,
    pub compressed_bytes: u64,
}

impl Images {
    /// Starts the registry and pushes `busybox:latest`.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let registry = Registry::start().context("cannot start docker-registry")?;
        let images = Self { registry, dir: dir.to_owned(), cold: 0, big: None };
        let layer = LayerBuilder::new().busybox()?.build();
        images.push_layers("busybox", &[layer])?;
        Ok(images)
    }

    /// `127.0.0.1:PORT/NAME`.
    pub fn reference(&self, name: &str) -> String {
        self.registry.reference(name)
    }

    fn push_layers(&self, repo: &str, layers: &[Vec<u8>]) -> anyhow::Result<()> {
        let layout_dir = self.dir.join(format!("layout-{repo}"));
        let _ = std::fs::remove_dir_all(&layout_dir);
        let mut layout = OciLayout::create(&layout_dir)?;
        layout.add_image(Some("latest"), layers, &ImageSpec::default())?;
        self.registry.push(&layout, "latest", &format!("{repo}:latest"))?;
        std::fs::remove_dir_all(&layout_dir)?;
        Ok(())
    }

    /// Names of `n` images nobody has pulled: busybox with a marker file
    /// in its one layer, so no layer is shared with another image.
    pub fn cold(&mut self, n: usize) -> anyhow::Result<Vec<String>> {
        let first = self.cold;
        for i in first..first + n {
            check()?;
            let marker = format!("cold image {i} of run {}\n", std::process::id());
            let layer = LayerBuilder::new().busybox()?.file("etc/bench-cold", marker.as_bytes(), 0o644).build();
            self.push_layers(&format!("cold-{i}"), &[layer])?;
        }
        self.cold += n;
        Ok((first..first + n).map(|i| format!("cold-{i}:latest")).collect())
    }

    /// Builds and pushes the pull benchmark's image once: `layers` layers
    /// of `mib / layers` MiB each, in files of 256 KiB that are three
    /// quarters random bytes and one quarter text (so gzip has about as
    /// much to do as on real binaries), plus busybox in the first layer.
    pub fn big(&mut self, mib: u64, layers: usize) -> anyhow::Result<BigImage> {
        if let Some(b) = &self.big {
            return Ok(b.clone());
        }
        use rand::{RngCore as _, SeedableRng as _};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0xbe47);
        const FILE: usize = 256 * 1024;
        let per_layer = (mib * 1024 * 1024) as usize / layers;
        let mut tars = Vec::new();
        let mut unpacked = 0u64;
        for l in 0..layers {
            check()?;
            let mut layer = if l == 0 { LayerBuilder::new().busybox()? } else { LayerBuilder::new() };
            layer = layer.dir(&format!("data{l}"), 0o755);
            for f in 0..per_layer / FILE {
                let mut bytes = vec![0u8; FILE];
                rng.fill_bytes(&mut bytes[..FILE * 3 / 4]);
                for (i, b) in bytes[FILE * 3 / 4..].iter_mut().enumerate() {
                    *b = b"berth bench filler text, "[i % 25];
                }
                unpacked += FILE as u64;
                layer = layer.file(&format!("data{l}/f{f:04}"), &bytes, 0o644);
            }
            tars.push(layer.build());
        }
        let layout_dir = self.dir.join("layout-big");
        let _ = std::fs::remove_dir_all(&layout_dir);
        let mut layout = OciLayout::create(&layout_dir)?;
        layout.add_image(Some("latest"), &tars, &ImageSpec::default())?;
        let compressed: u64 = std::fs::read_dir(layout_dir.join("blobs/sha256"))?
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        self.registry.push(&layout, "latest", "big:latest")?;
        std::fs::remove_dir_all(&layout_dir)?;
        let big = BigImage { name: "big:latest".into(), layers, unpacked_bytes: unpacked, compressed_bytes: compressed };
        self.big = Some(big.clone());
        Ok(big)
    }
}

/// What [`Berth::launch_many`] got: the RUNNING tasks (as DescribeTasks
/// showed them), those that failed to start (ARN, stop code and reason),
/// and each RunTask call's time (ms).
#[derive(Debug, Default)]
pub struct Launched {
    pub running: Vec<Value>,
    pub failed: Vec<(String, String)>,
    pub calls: Vec<f64>,
}

impl Launched {
    pub fn arns(&self) -> Vec<String> {
        self.running.iter().filter_map(|t| t["taskArn"].as_str().map(str::to_owned)).collect()
    }

    /// How many failed to start, and the commonest reason.
    pub fn failures(&self) -> Option<String> {
        if self.failed.is_empty() {
            return None;
        }
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for (_, reason) in &self.failed {
            *counts.entry(reason.as_str()).or_default() += 1;
        }
        let (reason, n) = counts.into_iter().max_by_key(|(_, n)| *n)?;
        Some(format!("{} tasks failed to start and were replaced ({n} × \"{reason}\")", self.failed.len()))
    }
}

/// A `berth up` of the bench's. Dropping it (or [`Berth::finish`]) stops
/// every task it runs, waits (bounded) until they are STOPPED, removes by
/// hand whatever is left, then kills the process.
pub struct Berth {
    pub name: String,
    pub data: PathBuf,
    pub log: PathBuf,
    client: Mutex<Client>,
    /// ARNs of every task the bench asked this Berth to run.
    started: Mutex<BTreeSet<String>>,
    process: Option<BerthProcess>,
    pub subnet: String,
    /// Started with its agent: tasks it places run here, and stop.
    agent: bool,
    /// Started with the bench's network (removed when it goes).
    networking: bool,
    finished: bool,
}

impl Berth {
    /// `berth up` on a fresh data dir `WORK/NAME/data`, its log (stderr,
    /// filtered by `log_filter`) in `WORK/NAME/berth.log`, in its own
    /// process group (a terminal's Ctrl-C reaches the bench only, which
    /// then stops the tasks through it).
    pub fn start(bins: &Bins, work: &Path, name: &str, args: &[&str], log_filter: &str, subnet: &str) -> anyhow::Result<Self> {
        use std::os::unix::process::CommandExt as _;
        let root = work.join(name);
        let data = root.join("data");
        std::fs::create_dir_all(&root)?;
        let log = root.join("berth.log");
        let log_file = std::fs::File::create(&log)?;
        let mut args = args.to_vec();
        if bins.networking {
            args.extend(["--default-subnet", BENCH_CIDR, "--nft-table", BENCH_NFT_TABLE]);
        }
        let process = BerthProcess::start_with(&bins.berth, &data, &args, &[("BERTH_LOG", log_filter)], |cmd| {
            cmd.stderr(log_file).process_group(0);
        })
        .with_context(|| {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
            format!("berth up ({name}) did not start; its log ends: {}", tail.join(" / "))
        })?;
        let client = Client::new(&process.endpoint, process.creds()?)?;
        Ok(Self {
            name: name.to_owned(),
            data,
            log,
            client: Mutex::new(client),
            started: Mutex::default(),
            process: Some(process),
            subnet: subnet.to_owned(),
            agent: !args.contains(&"--no-agent"),
            networking: bins.networking,
            finished: false,
        })
    }

    pub fn pid(&self) -> i32 {
        self.process.as_ref().map_or(0, |p| p.pid() as i32)
    }

    /// A client of its own (a connection per thread).
    pub fn client(&self) -> Client {
        self.client.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// A call on the shared connection that must answer 200.
    pub fn ecs(&self, op: &str, body: &Value) -> anyhow::Result<Value> {
        self.client.lock().unwrap_or_else(std::sync::PoisonError::into_inner).ecs_ok(op, body)
    }

    /// Registers `family`: one busybox container running [`SLEEP_SCRIPT`].
    pub fn register_sleeper(&self, family: &str, image: &str) -> anyhow::Result<()> {
        self.ecs("RegisterTaskDefinition", &sleeper_definition(family, image))?;
        Ok(())
    }

    /// RunTask of one `family` task; its ARN and the call's time.
    pub fn run_task(&self, client: &mut Client, family: &str) -> anyhow::Result<(String, Duration)> {
        let body = json!({"taskDefinition": family,
                          "networkConfiguration": {"awsvpcConfiguration": {"subnets": [self.subnet]}}});
        // Recorded before the call: a call that fails half-way may still
        // have started a task, and cleanup looks for it by listing too.
        let answer = client.ecs("RunTask", &body)?;
        ensure!(answer.status == 200, "RunTask answered HTTP {}: {}", answer.status, answer.body);
        let arn = answer.body["tasks"][0]["taskArn"]
            .as_str()
            .with_context(|| format!("RunTask placed no task: {}", answer.body))?
            .to_owned();
        self.started.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(arn.clone());
        Ok((arn, answer.took))
    }

    /// DescribeTasks of any number of tasks (100 per call).
    pub fn describe(&self, client: &mut Client, arns: &[String]) -> anyhow::Result<Vec<Value>> {
        let mut tasks = Vec::new();
        for chunk in arns.chunks(100) {
            let v = client.ecs_ok("DescribeTasks", &json!({"tasks": chunk}))?;
            tasks.extend(v["tasks"].as_array().cloned().unwrap_or_default());
        }
        Ok(tasks)
    }

    /// Polls until every task is `status`; fails if one STOPPED while
    /// waiting for RUNNING, or after `within`.
    pub fn wait_all(&self, client: &mut Client, arns: &[String], status: &str, within: Duration, poll: Duration) -> anyhow::Result<Vec<Value>> {
        let deadline = Instant::now() + within;
        loop {
            check()?;
            let tasks = self.describe(client, arns)?;
            if status == "RUNNING"
                && let Some(t) = tasks.iter().find(|t| t["lastStatus"] == "STOPPED")
            {
                bail!("task {} stopped instead of running: {} {}", t["taskArn"], t["stopCode"], t["stoppedReason"]);
            }
            if tasks.len() == arns.len() && tasks.iter().all(|t| t["lastStatus"] == status) {
                return Ok(tasks);
            }
            if Instant::now() > deadline {
                let not: Vec<String> = tasks
                    .iter()
                    .filter(|t| t["lastStatus"] != status)
                    .take(3)
                    .map(|t| format!("{} is {}", t["taskArn"], t["lastStatus"]))
                    .collect();
                bail!("tasks not {status} within {within:?}: {}", not.join(", "));
            }
            std::thread::sleep(poll);
        }
    }

    /// Runs `family` tasks until `count` of them are RUNNING, `in_flight`
    /// RunTask calls at a time; a task that fails to start is recorded and
    /// replaced, up to `count` replacements in all.
    pub fn launch_many(&self, family: &str, count: usize, in_flight: usize, within: Duration) -> anyhow::Result<Launched> {
        use std::sync::atomic::AtomicUsize;
        let deadline = Instant::now() + within;
        let mut client = self.client();
        let mut out = Launched::default();
        let mut calls_made = 0;
        while out.running.len() < count {
            check()?;
            let need = count - out.running.len();
            anyhow::ensure!(
                calls_made + need <= 2 * count,
                "only {} of {count} tasks reached RUNNING after {calls_made} RunTask calls; {} failed to start, e.g. {}",
                out.running.len(),
                out.failed.len(),
                out.failed.first().map_or("-", |f| f.1.as_str())
            );
            calls_made += need;
            let next = AtomicUsize::new(0);
            let arns = Mutex::new(Vec::new());
            let calls = Mutex::new(Vec::new());
            let errors = Mutex::new(Vec::new());
            std::thread::scope(|s| {
                for _ in 0..in_flight.min(need) {
                    s.spawn(|| {
                        let mut c = self.client();
                        while next.fetch_add(1, Ordering::SeqCst) < need && !interrupted() {
                            match self.run_task(&mut c, family) {
                                Ok((arn, took)) => {
                                    arns.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(arn);
                                    calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(crate::stats::ms(took));
                                }
                                Err(e) => errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(format!("{e:#}")),
                            }
                        }
                    });
                }
            });
            check()?;
            let errors = errors.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
            anyhow::ensure!(errors.is_empty(), "{} RunTask calls failed, e.g. {}", errors.len(), errors[0]);
            out.calls.extend(calls.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner));
            let mut pending = arns.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
            while !pending.is_empty() {
                check()?;
                let tasks = self.describe(&mut client, &pending)?;
                for t in &tasks {
                    let arn = t["taskArn"].as_str().unwrap_or_default().to_owned();
                    match t["lastStatus"].as_str() {
                        Some("RUNNING") => out.running.push(t.clone()),
                        Some("STOPPED") | Some("DEPROVISIONING") | Some("STOPPING") | Some("DEACTIVATING") => {
                            let reason = format!("{} {}", t["stopCode"].as_str().unwrap_or("?"), t["stoppedReason"].as_str().unwrap_or("?"));
                            out.failed.push((arn, reason));
                        }
                        _ => continue,
                    }
                    pending.retain(|p| *p != t["taskArn"].as_str().unwrap_or_default());
                }
                if Instant::now() > deadline {
                    bail!("{} tasks not RUNNING within {within:?} ({} running, {} failed)", pending.len(), out.running.len(), out.failed.len());
                }
                if !pending.is_empty() {
                    // Slow enough not to load Berth (DescribeTasks of 100
                    // tasks costs milliseconds); the figures come from the
                    // tasks' own timestamps, not from when this saw them.
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
        Ok(out)
    }

    /// StopTask of each; returns when the calls are made.
    pub fn stop_tasks(&self, client: &mut Client, arns: &[String]) -> anyhow::Result<()> {
        for arn in arns {
            client.ecs_ok("StopTask", &json!({"task": arn, "reason": "berth-bench"}))?;
        }
        Ok(())
    }

    /// Task ids (the last part of the ARN) of every task it was asked to run.
    pub fn task_ids(&self) -> Vec<String> {
        self.started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|a| task_id(a))
            .collect()
    }

    /// What this Berth's tasks still hold on the host.
    pub fn leftovers(&self) -> Vec<String> {
        leftovers(&self.data, &self.task_ids())
    }

    /// Stops every task, waits until STOPPED (bounded), removes by hand
    /// what is left, kills berth; then says what it found left behind
    /// after the graceful part (empty: nothing).
    pub fn finish(mut self) -> Vec<String> {
        let left = self.cleanup();
        self.finished = true;
        left
    }

    fn cleanup(&mut self) -> Vec<String> {
        if !self.agent {
            // Without an agent nothing ran on this host: there is nothing
            // to stop (placed tasks are records only), only berth itself.
            if let Some(mut p) = self.process.take() {
                let _ = p.terminate();
            }
            let left = self.leftovers();
            self.remove_network();
            return left;
        }
        let mut client = self.client();
        let mut arns: BTreeSet<String> = self.started.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        for desired in ["RUNNING", "STOPPED"] {
            let mut token: Option<String> = None;
            for _ in 0..1000 {
                let mut body = json!({"desiredStatus": desired, "maxResults": 100});
                if let Some(t) = &token {
                    body["nextToken"] = json!(t);
                }
                let Ok(v) = client.ecs_ok("ListTasks", &body) else { break };
                arns.extend(v["taskArns"].as_array().into_iter().flatten().filter_map(|a| a.as_str().map(str::to_owned)));
                token = v["nextToken"].as_str().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
        }
        self.started.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(arns.iter().cloned());
        let arns: Vec<String> = arns.into_iter().collect();
        let live = |client: &mut Client| -> Option<Vec<String>> {
            let tasks = self.describe(client, &arns).ok()?;
            Some(tasks.iter().filter(|t| t["lastStatus"] != "STOPPED").filter_map(|t| t["taskArn"].as_str().map(str::to_owned)).collect())
        };
        if let Some(running) = live(&mut client) {
            for arn in &running {
                let _ = client.ecs("StopTask", &json!({"task": arn, "reason": "berth-bench cleanup"}));
            }
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline {
                match live(&mut client) {
                    Some(l) if l.is_empty() => break,
                    Some(_) => std::thread::sleep(Duration::from_millis(200)),
                    None => break,
                }
            }
        }
        let mut left = self.leftovers();
        // Tasks can be STOPPED a moment before their last directory goes.
        for _ in 0..20 {
            if left.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            left = self.leftovers();
        }
        if let Some(mut p) = self.process.take() {
            let _ = p.terminate();
        }
        if !left.is_empty() {
            eprintln!("[{}] left behind after stopping its tasks: {}; removing by hand", self.name, left.join("; "));
            force_cleanup(&self.data, &self.task_ids());
        }
        self.remove_network();
        left
    }

    /// Berth keeps its bridge, nftables tables and blackhole route across
    /// restarts; the bench's Berth is gone for good, so they go too.
    fn remove_network(&self) {
        if self.networking {
            remove_network(BENCH_CIDR, BENCH_NFT_TABLE);
        }
    }
}

/// Deletes the nftables tables `table` (inet, bridge), the blackhole route
/// of `cidr` and the links holding an address in `cidr` (the bridge).
pub fn remove_network(cidr: &str, table: &str) {
    let quiet = |args: &[&str], bin: &str| {
        let _ = Command::new(bin).args(args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status();
    };
    for family in ["inet", "bridge"] {
        quiet(&["delete", "table", family, table], "nft");
    }
    quiet(&["route", "del", "blackhole", cidr, "metric", "4242"], "ip");
    for link in links_in(cidr) {
        quiet(&["link", "del", &link], "ip");
    }
}

/// Links enslaved to `bridge` (the host ends of tasks' veths).
pub fn ports_of(bridge: &str) -> usize {
    Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(0)
}

impl Drop for Berth {
    fn drop(&mut self) {
        if !self.finished {
            let left = self.cleanup();
            if !left.is_empty() {
                eprintln!("[{}] cleanup on the error path found: {}", self.name, left.join("; "));
            }
        }
    }
}

pub fn sleeper_definition(family: &str, image: &str) -> Value {
    json!({"family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
           "cpu": "256", "memory": "512",
           "containerDefinitions": [{"name": "main", "image": image,
                                     "command": ["sh", "-c", SLEEP_SCRIPT], "stopTimeout": 2}]})
}

/// Overlay mounts under `data`, cgroups of `ids`, shims and runc state of
/// `data`, as readable lines.
pub fn leftovers(data: &Path, ids: &[String]) -> Vec<String> {
    let mut left = Vec::new();
    let mounts = procfs::mounts_under(data);
    if !mounts.is_empty() {
        left.push(format!("{} mounts (overlay roots, netns files; e.g. {})", mounts.len(), mounts[0].display()));
    }
    let ports: usize = links_in(BENCH_CIDR).iter().map(|b| ports_of(b)).sum();
    if ports > 0 {
        left.push(format!("{ports} veths on the bench's bridge"));
    }
    let cgroups: Vec<PathBuf> = ids.iter().flat_map(|id| procfs::cgroups_named("berth", id)).collect();
    if !cgroups.is_empty() {
        left.push(format!("{} task cgroups (e.g. {})", cgroups.len(), cgroups[0].display()));
    }
    let shims = procfs::processes("berth-shim", &data.display().to_string());
    if !shims.is_empty() {
        left.push(format!("{} berth-shim processes (e.g. pid {})", shims.len(), shims[0]));
    }
    let tasks_dir = data.join("runtime/tasks");
    let task_dirs = std::fs::read_dir(&tasks_dir).map(|d| d.count()).unwrap_or(0);
    if task_dirs > 0 {
        left.push(format!("{task_dirs} task directories in {}", tasks_dir.display()));
    }
    left
}

/// The last resort: kills `data`'s shims (by pid), deletes its runc
/// containers, unmounts what is mounted under it (overlay roots, netns
/// files) and removes the tasks' cgroups.
pub fn force_cleanup(data: &Path, ids: &[String]) {
    for pid in procfs::processes("berth-shim", &data.display().to_string()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    let oci_root = data.join("runtime/oci");
    if let Ok(out) = Command::new("runc").arg("--root").arg(&oci_root).args(["list", "-q"]).output() {
        for id in String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()) {
            let _ = Command::new("runc").arg("--root").arg(&oci_root).args(["delete", "-f", id]).output();
        }
    }
    let mut mounts = procfs::mounts_under(data);
    mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    for m in mounts {
        let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
    }
    for id in ids {
        for cg in procfs::cgroups_named("berth", id) {
            remove_cgroup_tree(&cg);
        }
    }
}

/// Removes a cgroup directory and its children (deepest first).
pub fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(Result::ok) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Runs a command to completion in its own process group (so Ctrl-C
/// reaches only the bench); its stdout, or an error with its stderr.
pub fn run(cmd: &mut Command) -> anyhow::Result<String> {
    use std::os::unix::process::CommandExt as _;
    let out = cmd.process_group(0).output().with_context(|| format!("cannot run {cmd:?}"))?;
    ensure!(out.status.success(), "{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The id of the task an ARN names (the runtime's and the node's name
/// for it); the ARN as it is when it is not a task ARN.
pub fn task_id(arn: &str) -> String {
    arn.parse::<berth_model::arn::TaskArn>().map_or_else(|_| arn.to_owned(), |a| a.id)
}
