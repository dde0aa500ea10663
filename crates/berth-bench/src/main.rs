//! `berth-bench`: measures a real `berth up` side by side with its
//! baselines, in the same run on the same machine, and prints a table.
//!
//! ```text
//! cargo build --release -p berth-bench -p berth-cli -p berth-runtime
//! target/release/berth-bench all          (or: ./scripts/bench.sh)
//! ```
//!
//! Each benchmark starts its own `berth up` on a fresh data dir (and the
//! run its own loopback registry); each stops and removes every task it
//! ran, even on an error or Ctrl-C, and the run checks that nothing was
//! left. Results go to `bench-results/` as JSON; the exit status is
//! non-zero only when a figure could not be measured (or something was
//! left behind), never because a figure is slow.

mod baseline;
mod client;
mod control;
mod density;
mod flood;
mod launch;
mod machine;
mod procfs;
mod proxy;
mod pull;
mod report;
mod stats;
mod throughput;
mod usage;
mod world;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::report::Report;
use crate::world::{Berth, Bins, Images};

#[derive(Debug, Parser)]
#[command(about = "Benchmarks Berth against its baselines (runc, podman, skopeo) on this machine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Where results are written (JSON, and the table as Markdown).
    #[arg(long, default_value = "bench-results", global = true)]
    out: PathBuf,
    /// The directory holding `berth` and `berth-shim` [default: this executable's].
    #[arg(long, global = true)]
    bin_dir: Option<PathBuf>,
    /// Where the run's scratch directory is made (data dirs, registry, bundles).
    #[arg(long, default_value = "/var/tmp", global = true)]
    work_dir: PathBuf,
    /// Small counts everywhere: checks the harness in a minute or two; its
    /// figures are not the benchmark's.
    #[arg(long, global = true)]
    quick: bool,
    /// Keep the scratch directory (berth logs, data dirs) after the run.
    #[arg(long, global = true)]
    keep_work: bool,
    #[command(flatten)]
    opts: Opts,
}

#[derive(Debug, Subcommand, Clone, Copy, PartialEq, Eq)]
enum Command {
    /// Every benchmark, in order.
    All,
    /// 1. Launch latency (cached and cold) vs runc and podman.
    Launch,
    /// 2. Launch throughput and stop-all time.
    Throughput,
    /// 3. Memory per idle task at 100 and 300 tasks.
    Density,
    /// 4. DescribeTasks/ListTasks latency and write throughput, SQLite and PostgreSQL.
    ControlPlane,
    /// 5. Pull and unpack of a ~200 MB image vs skopeo.
    Pull,
    /// 6. The load balancer's data plane (berth-lb) vs a direct connection: added latency, requests/s.
    Proxy,
    /// 7. The usage sampler's CPU cost at 300 idle tasks (synthetic cgroups).
    Usage,
    /// 8. DescribeTasks latency while one task floods awslogs, and the store's growth.
    Flood,
}

/// The counts and sizes (defaults: the benchmark as specified).
#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Sequential launches with the image cached (Berth and the runc floor).
    #[arg(long, default_value_t = 100, global = true)]
    launches: usize,
    /// Sequential launches from an empty cache.
    #[arg(long, default_value_t = 100, global = true)]
    cold_launches: usize,
    /// podman runs, image cached.
    #[arg(long, default_value_t = 30, global = true)]
    podman_launches: usize,
    /// podman runs of an image not in its storage.
    #[arg(long, default_value_t = 20, global = true)]
    podman_cold_launches: usize,
    /// How often a launch polls DescribeTasks for RUNNING (ms).
    #[arg(long, default_value_t = 5, global = true)]
    poll_ms: u64,
    /// Tasks of the throughput benchmark.
    #[arg(long, default_value_t = 200, global = true)]
    throughput_tasks: usize,
    /// RunTask (and StopTask) calls in flight.
    #[arg(long, default_value_t = 50, global = true)]
    in_flight: usize,
    /// Idle task counts at which memory is measured.
    #[arg(long, value_delimiter = ',', default_value = "100,300", global = true)]
    density: Vec<usize>,
    /// Task records in the store for the control-plane benchmark.
    #[arg(long, default_value_t = 10_000, global = true)]
    seed_tasks: usize,
    /// Calls per control-plane figure.
    #[arg(long, default_value_t = 300, global = true)]
    control_calls: usize,
    /// Clients at once for the write-throughput figures.
    #[arg(long, default_value_t = 8, global = true)]
    control_writers: usize,
    /// Size of the pull benchmark's image (MiB unpacked).
    #[arg(long, default_value_t = 200, global = true)]
    pull_mib: u64,
    #[arg(long, default_value_t = 5, global = true)]
    pull_layers: usize,
    /// Rounds of the pull benchmark (each: Berth, skopeo).
    #[arg(long, default_value_t = 3, global = true)]
    pull_reps: usize,
    /// Sequential requests per latency figure of the proxy benchmark (each way).
    #[arg(long, default_value_t = 5000, global = true)]
    proxy_requests: usize,
    /// Keep-alive connections of the proxy's requests/s figures.
    #[arg(long, default_value_t = 16, global = true)]
    proxy_connections: usize,
    /// Seconds of each requests/s run of the proxy benchmark.
    #[arg(long, default_value_t = 5, global = true)]
    proxy_seconds: u64,
    /// The subnet RunTask names (awsvpcConfiguration).
    #[arg(long, default_value = "subnet-default", global = true)]
    subnet: String,
    /// Sampling ticks of the usage benchmark (0: 120, ten minutes' worth at 5 s).
    #[arg(long, default_value_t = 0, global = true)]
    usage_ticks: usize,
    /// DescribeTasks calls per figure of the log-flood benchmark.
    #[arg(long, default_value_t = 2000, global = true)]
    flood_calls: usize,
    /// Seconds the log-flood benchmark's task floods.
    #[arg(long, default_value_t = 30, global = true)]
    flood_seconds: u64,
}

impl Opts {
    fn quick(mut self) -> Self {
        self.launches = 10;
        self.cold_launches = 3;
        self.podman_launches = 3;
        self.podman_cold_launches = 2;
        self.throughput_tasks = 40;
        self.in_flight = 10;
        self.density = vec![10, 30];
        self.seed_tasks = 1000;
        self.control_calls = 50;
        self.pull_mib = 40;
        self.pull_layers = 2;
        self.pull_reps = 1;
        self.proxy_requests = 500;
        self.proxy_connections = 8;
        self.proxy_seconds = 1;
        self.usage_ticks = 24;
        self.flood_calls = 200;
        self.flood_seconds = 8;
        self
    }
}

/// What the benchmarks share.
pub struct Ctx {
    /// `berth` and `berth-shim` (not looked for when only the proxy benchmark runs).
    bins: Option<Bins>,
    work: tempfile::TempDir,
    pub opts: Opts,
    images: Option<Images>,
    pub report: Report,
    bench: &'static str,
}

impl Ctx {
    /// The registry with the bench's images, started on first use.
    pub fn images(&mut self) -> anyhow::Result<&mut Images> {
        if self.images.is_none() {
            eprintln!("[setup] starting docker-registry on loopback and pushing busybox");
            self.images = Some(Images::start(&self.work.path().join("registry"))?);
        }
        self.images.as_mut().context("registry")
    }

    /// A fresh `berth up` named `name` (its data dir and log under the work dir).
    pub fn berth(&self, name: &str, args: &[&str], log_filter: &str) -> anyhow::Result<Berth> {
        let bins = self.bins.as_ref().context("this benchmark needs the berth binaries")?;
        Berth::start(bins, self.work.path(), name, args, log_filter, &self.opts.subnet)
    }

    pub fn work(&self) -> &Path {
        self.work.path()
    }

    /// Records what a benchmark's cleanup check found left behind.
    pub fn leftovers(&mut self, left: Vec<String>) {
        let bench = self.bench;
        self.report.leftovers.extend(left.into_iter().map(|l| format!("{bench}: {l}")));
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    world::handle_signals()?;
    // The proxy and usage benchmarks run in this process: no berth, no root.
    let needs_berth = !matches!(cli.command, Command::Proxy | Command::Usage);
    anyhow::ensure!(!needs_berth || nix::unistd::geteuid().is_root(), "berth-bench needs root (mounts, cgroups, namespaces)");
    // One run at a time: runs share the bench's subnet, nftables table and
    // cgroup names, and would skew each other's figures anyway.
    let lock_path = if nix::unistd::geteuid().is_root() { "/run/berth-bench.lock".into() } else { std::env::temp_dir().join("berth-bench.lock") };
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| anyhow::anyhow!("another berth-bench is running (it holds {})", lock_path.display()))?;
    let bins = if needs_berth { Some(Bins::find(cli.bin_dir.as_deref())?) } else { None };
    anyhow::ensure!(
        !needs_berth || berth_testinfra::registry::registry_tools_available(true),
        "install the bench's Debian packages first (./scripts/bench.sh does)"
    );
    std::fs::create_dir_all(&cli.work_dir)?;
    let work = tempfile::Builder::new().prefix("berth-bench-").tempdir_in(&cli.work_dir)?;
    let opts = if cli.quick { cli.opts.clone().quick() } else { cli.opts.clone() };
    let began = Instant::now();
    let mut report = Report {
        machine: Some(machine::Machine::read()),
        commit: commit(),
        started_at: time::OffsetDateTime::now_utc()
            .format(&time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"))?,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        ..Default::default()
    };
    if let Some(m) = &report.machine {
        eprintln!("machine: {}", m.one_line());
    }
    if let Some(bins) = &bins {
        eprintln!(
            "berth: {} (built {}){}",
            bins.berth.display(),
            built(&bins.berth),
            if bins.networking { "; task networking: yes" } else { "; task networking: not in this build" }
        );
    }
    eprintln!("work dir: {}", work.path().display());
    let mut ctx = Ctx { bins, work, opts, images: None, report: std::mem::take(&mut report), bench: "setup" };

    type Bench = fn(&mut Ctx) -> anyhow::Result<()>;
    let benches: [(&'static str, Command, Bench); 8] = [
        ("launch", Command::Launch, launch::run),
        ("throughput", Command::Throughput, throughput::run),
        ("density", Command::Density, density::run),
        ("control-plane", Command::ControlPlane, control::run),
        ("pull", Command::Pull, pull::run_bench),
        ("proxy", Command::Proxy, proxy::run),
        ("usage", Command::Usage, usage::run),
        ("flood", Command::Flood, flood::run),
    ];
    for (name, command, bench) in benches {
        if cli.command != Command::All && cli.command != command {
            continue;
        }
        if world::interrupted() {
            break;
        }
        ctx.bench = name;
        let bench_began = Instant::now();
        eprintln!("== {name}");
        if let Err(e) = bench(&mut ctx) {
            ctx.report.not_measured(name, &format!("{e:#}"), false);
        }
        eprintln!("== {name}: {:.0} s", bench_began.elapsed().as_secs_f64());
    }
    let mut report = std::mem::take(&mut ctx.report);
    if cli.keep_work {
        let kept = ctx.work.keep();
        eprintln!("kept the work dir: {}", kept.display());
        ctx.work = tempfile::Builder::new().prefix("berth-bench-empty-").tempdir_in(&cli.work_dir)?;
    }
    drop(ctx); // registry and work dir go
    report.seconds = began.elapsed().as_secs_f64();
    let table = report.markdown();
    println!("{table}");
    match report.write_json(&cli.out) {
        Ok(path) => {
            let _ = std::fs::write(cli.out.join("latest.md"), &table);
            eprintln!("results: {} (and latest.json, latest.md)", path.display());
        }
        Err(e) => eprintln!("cannot write results: {e:#}"),
    }
    if report.failed() {
        eprintln!("berth-bench: some figures could not be measured (see 'not measured' above)");
        return Ok(ExitCode::FAILURE);
    }
    if !report.leftovers.is_empty() {
        eprintln!("berth-bench: the run left things behind: {}", report.leftovers.join("; "));
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

/// `git describe`-like: the short commit, `+dirty` when the tree differs.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]) else { return "unknown".into() };
    let dirty = git(&["status", "--porcelain", "--untracked-files=no", "--", "crates", "Cargo.lock"]).is_some_and(|s| !s.is_empty());
    if dirty { format!("{head}+dirty") } else { head }
}

fn built(bin: &Path) -> String {
    bin.metadata()
        .and_then(|m| m.modified())
        .ok()
        .map(|t| time::OffsetDateTime::from(t).format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
        .unwrap_or_else(|| "unknown".into())
}
