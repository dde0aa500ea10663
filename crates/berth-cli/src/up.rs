//! `berth up`: the all-in-one server in the foreground.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use berth_api::{Api, ApiConfig};
use berth_model::Account;
use berth_model::node::{Node, NodeStatus};
use berth_store::{AccessKey, Store, StoreError, Stores};
use rand::Rng as _;
use rand::distr::Alphanumeric;

use crate::datadir::{self, DataDir};

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Where Berth keeps its state [default: $XDG_DATA_HOME/berth or ~/.local/share/berth].
    #[arg(long, env = "BERTH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address the API listens on (port 0 picks a free port).
    #[arg(long, env = "BERTH_LISTEN", default_value = "127.0.0.1:7420")]
    listen: SocketAddr,
    /// Store URL: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite in the data dir].
    #[arg(long, env = "BERTH_STORE")]
    store: Option<String>,
    /// The AWS region Berth answers as (in ARNs and SigV4 scopes).
    #[arg(long, env = "BERTH_REGION", default_value = "us-east-1")]
    region: String,
    /// The 12-digit account id in ARNs.
    #[arg(long, env = "BERTH_ACCOUNT_ID", default_value = "000000000000")]
    account_id: String,
    /// CPU units this node offers to tasks [default: 1024 per host CPU].
    #[arg(long, env = "BERTH_NODE_CPU")]
    node_cpu: Option<u32>,
    /// Memory in MiB this node offers to tasks [default: host memory less 10%, at least 512 MiB].
    #[arg(long, env = "BERTH_NODE_MEMORY")]
    node_memory: Option<u32>,
    /// The share (0 to 1) of this node's CPU and memory offered as
    /// FARGATE_SPOT capacity: Spot tasks are placed within it, on-demand
    /// (FARGATE) tasks in the rest. 0: no Spot capacity.
    #[arg(long, env = "BERTH_SPOT_SHARE", default_value_t = 0.0, value_parser = parse_share)]
    spot_share: f64,
    /// Random Spot interruptions, for testing resilience: each running
    /// FARGATE_SPOT task is interrupted at this rate per hour it runs
    /// (e.g. 2: twice an hour on average). 0: only `berth spot interrupt`.
    #[arg(long, env = "BERTH_SPOT_INTERRUPTION_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    spot_interruption_rate: f64,
    /// The Availability Zone this node's tasks report [default: REGION + "a"].
    #[arg(long, env = "BERTH_ZONE")]
    zone: Option<String>,
    /// The most bytes a container's stdout or stderr file holds before it
    /// is rotated to NAME.1 (sandbox isolation; 0: no cap).
    #[arg(long, env = "BERTH_LOG_FILE_MAX_BYTES", default_value_t = berth_runtime::DEFAULT_LOG_FILE_MAX_BYTES)]
    log_file_max_bytes: u64,
    /// The most bytes per second a task's awslogs output is shipped at
    /// (as PutLogEvents counts them); lines past it are dropped and counted.
    #[arg(long, env = "BERTH_LOG_SHIP_RATE", default_value_t = berth_agent::logs::DEFAULT_BYTES_PER_SECOND)]
    log_ship_rate: u64,
    /// Seconds between two samples of each task's cgroup usage (CPU,
    /// memory), published each minute as CloudWatch metrics.
    #[arg(long, env = "BERTH_USAGE_SAMPLE_SECONDS", default_value_t = 5)]
    usage_sample_seconds: u64,
    /// Run the API and store only, without this host's node agent.
    #[arg(long)]
    no_agent: bool,
    /// Seconds a cached image is used without asking its registry for the
    /// tag's digest (0: ask at every task start, with a cheap HEAD).
    #[arg(long, env = "BERTH_IMAGE_MAX_AGE", default_value_t = 0)]
    image_max_age: u64,
    /// A registry (host or host:port) spoken to over plain HTTP; loopback
    /// registries always are. Repeat for several.
    #[arg(long = "insecure-registry", env = "BERTH_INSECURE_REGISTRIES", value_delimiter = ',')]
    insecure_registries: Vec<String>,
    /// The range of the default subnet (`subnet-default`), used when Berth
    /// makes it at first start.
    #[arg(long, env = "BERTH_DEFAULT_SUBNET", default_value = berth_model::network::DEFAULT_SUBNET_CIDR)]
    default_subnet: String,
    /// The nftables tables Berth owns (an `inet` and a `bridge` table of
    /// this name). Change it only to run several Berths on one host.
    #[arg(long, env = "BERTH_NFT_TABLE", default_value = "berth")]
    nft_table: String,
    /// A host address on which tasks run with `assignPublicIp: ENABLED`
    /// publish their container ports (connections to ADDR:PORT go to the
    /// task, subject to its security groups).
    #[arg(long, env = "BERTH_PUBLIC_ADDRESS")]
    public_address: Option<std::net::Ipv4Addr>,
    /// Seconds a subnet's bridge stays after its last task on this host
    /// left (0: it goes with that task).
    #[arg(long, env = "BERTH_BRIDGE_IDLE", default_value_t = 30)]
    bridge_idle: u64,
    /// How this node isolates tasks: `sandbox` (OCI containers on the host
    /// kernel), `microvm` (a guest kernel per task: KVM where it works,
    /// else QEMU's TCG emulator, said loudly), or `auto` (a micro-VM when
    /// a KVM probe boot succeeds, else a sandbox).
    #[arg(long, env = "BERTH_ISOLATION", value_enum, default_value_t = Isolation::Sandbox)]
    isolation: Isolation,
    /// The micro-VM guest kernel directory (made by
    /// scripts/microvm-kernel.sh) [default: /var/lib/berth/microvm/kernel].
    #[arg(long, env = "BERTH_GUEST_KERNEL")]
    guest_kernel: Option<PathBuf>,
    /// Seconds a request's line and headers may take to arrive; also how
    /// long an idle keep-alive connection stays open.
    #[arg(long, env = "BERTH_HEADER_READ_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    header_read_timeout: u64,
    /// Seconds a request's body may take to arrive (image uploads: the
    /// longest pause between chunks); past it, a RequestTimeout error.
    #[arg(long, env = "BERTH_BODY_READ_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    body_read_timeout: u64,
    /// Connections the API serves at once; more wait in the kernel's
    /// listen backlog. Berth raises its open-file limit to the hard limit
    /// at start and caps this at half of it, so the node agent keeps
    /// descriptors for its own work.
    #[arg(long, env = "BERTH_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,
}

/// `--isolation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Isolation {
    Sandbox,
    Microvm,
    Auto,
}

impl UpArgs {
    fn image_config(&self) -> berth_image::ImageStoreConfig {
        berth_image::ImageStoreConfig {
            insecure_registries: self.insecure_registries.clone(),
            max_age_secs: self.image_max_age,
            ..Default::default()
        }
    }
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    // Handlers first: a SIGTERM that comes as soon as we are up must shut
    // down cleanly, not kill the process with the default action.
    let shutdown = shutdown_signal()?;
    // Before anything opens descriptors: the agent and the edge share them.
    let nofile = berth_agent::serve::raise_nofile_limit();
    if args.account_id.len() != 12 || !args.account_id.bytes().all(|b| b.is_ascii_digit()) {
        anyhow::bail!("--account-id must be 12 digits, got {:?}", args.account_id);
    }
    let dir = DataDir::open(&args.data_dir.clone().unwrap_or_else(datadir::default_dir))?;
    let store_url = args.store.clone().unwrap_or_else(|| format!("sqlite://{}", dir.path.join("berth.db").display()));
    let stores =
        berth_store::open(&store_url).await.with_context(|| format!("cannot open store {}", redact(&store_url)))?;
    let store = stores.records.clone();
    let created = ensure_root_key(store.as_ref(), &dir).await?;
    berth_api::ensure_network_defaults(store.as_ref(), &args.default_subnet)
        .await
        .map_err(|e| anyhow::anyhow!("cannot make the default subnet {}: {e}", args.default_subnet))?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    dir.write_config(&args.region, &endpoint)?;
    // CloudWatch Logs retention: events past their group's retention go
    // every EXPIRY_INTERVAL, for as long as the process lives.
    tokio::spawn(berth_api::logs::run_expiry(stores.logs.clone(), std::future::pending()));
    tokio::spawn(berth_api::run_metric_retention(stores.records.clone(), std::future::pending()));
    // The service controller: keeps every service's tasks as its
    // deployments say. Level-triggered, so stopping it at exit (with the
    // process) loses nothing: the next start carries on from the store.
    tokio::spawn(berth_api::run_services(stores.records.clone(), std::future::pending()));

    // The meter: every task's usage records, per second, in the store.
    tokio::spawn(berth_api::run_meter(stores.records.clone(), std::future::pending()));
    if args.spot_interruption_rate > 0.0 {
        tracing::warn!(per_hour = args.spot_interruption_rate, "random Spot interruptions are on");
        tokio::spawn(berth_api::spot::run_interrupter(stores.records.clone(), args.spot_interruption_rate, std::future::pending()));
    }

    let account = Account { region: args.region.clone(), account_id: args.account_id.clone() };
    let mut config = ApiConfig::new(account);
    config.prices = read_prices(&dir.path.join(PRICES_FILE))?;
    config.body_read_timeout = std::time::Duration::from_secs(args.body_read_timeout);
    if let Some(min) = test_min_session_seconds()? {
        tracing::warn!(min_session_seconds = min, "BERTH_TEST_MIN_SESSION_SECONDS lowers STS's shortest session: for tests only");
        config.min_session_seconds = min;
    }
    // The key SecureString parameters and secret values are sealed under:
    // DATA_DIR/secrets.key, made (0600) on the first start.
    let cipher = std::sync::Arc::new(berth_secrets::Cipher::load_or_create(&dir.path)?);
    let mut api = Api::new(stores.clone(), config).with_cipher(cipher.clone());
    let agent = if args.no_agent {
        None
    } else {
        let images = std::sync::Arc::new(
            berth_image::ImageStore::open(dir.path.join("images"), args.image_config())
                .context("cannot open the image cache")?,
        );
        let usage = std::sync::Arc::new(berth_model::usage::UsageBoard::default());
        api = api.with_images(images.clone()).with_usage(usage.clone());
        // Tasks reach the same API on their gateway (AWS_ENDPOINT_URL).
        Some(start_agent(&args, &dir, stores, images, cipher, usage, berth_api::router(api.clone())).await?)
    };
    let app = berth_api::router(api);

    crate::out::outln!("Berth is up.");
    crate::out::outln!("  endpoint:     {endpoint}");
    crate::out::outln!("  data dir:     {}", dir.path.display());
    crate::out::outln!("  store:        {}", redact(&store_url));
    crate::out::outln!(
        "  credentials:  {}{}",
        dir.credentials_path().display(),
        if created { " (new root access key)" } else { "" }
    );
    crate::out::outln!("  config:       {}", dir.config_path().display());
    crate::out::outln!(
        "  try:          AWS_SHARED_CREDENTIALS_FILE={} AWS_CONFIG_FILE={} aws ecs list-clusters",
        dir.credentials_path().display(),
        dir.config_path().display()
    );
    tracing::info!(%endpoint, data_dir = %dir.path.display(), "berth is up");

    let limits = berth_agent::serve::EdgeLimits {
        header_read_timeout: std::time::Duration::from_secs(args.header_read_timeout),
        max_connections: berth_agent::serve::connection_limit(usize::try_from(args.max_connections).unwrap_or(usize::MAX), nofile),
    };
    if (limits.max_connections as u64) < args.max_connections {
        tracing::warn!(
            max_connections = limits.max_connections,
            open_file_limit = nofile,
            "--max-connections is capped at half the open-file limit"
        );
    }
    tracing::info!(max_connections = limits.max_connections, open_file_limit = nofile, "serving");
    // The peer's address is aws:SourceIp in IAM conditions (ConnectInfo).
    berth_agent::serve::serve(listener, app, limits, shutdown).await;
    if let Some((stop, handle)) = agent {
        let _ = stop.send(());
        let _ = handle.await;
    }
    tracing::info!("berth stopped");
    drop(dir);
    Ok(())
}

/// The price table's file in the data dir (JSON; see README "Reading the bill").
const PRICES_FILE: &str = "prices.json";

/// Fargate's default prices, with the data dir's `prices.json` over them
/// region by region when it exists.
fn read_prices(path: &std::path::Path) -> anyhow::Result<berth_model::metering::PriceTable> {
    use berth_model::metering::PriceTable;
    match std::fs::read(path) {
        Ok(bytes) => {
            let overrides: PriceTable =
                serde_json::from_slice(&bytes).with_context(|| format!("{} is not a price table", path.display()))?;
            tracing::info!(path = %path.display(), regions = overrides.regions.len(), "price table overrides");
            Ok(PriceTable::with_overrides(overrides))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PriceTable::default()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display()))),
    }
}

fn parse_share(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s} is not a number"))?;
    if (0.0..=1.0).contains(&v) { Ok(v) } else { Err(format!("{s} is not between 0 and 1")) }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s} is not a number"))?;
    if v.is_finite() && v >= 0.0 { Ok(v) } else { Err(format!("{s} is not a rate of 0 or more per hour")) }
}

/// Registers this host as a node and starts its agent. Tasks belong to
/// their shims: stopping the agent (or killing berth) leaves them running.
async fn start_agent(
    args: &UpArgs,
    dir: &DataDir,
    stores: Stores,
    images: std::sync::Arc<berth_image::ImageStore>,
    cipher: std::sync::Arc<berth_secrets::Cipher>,
    usage: std::sync::Arc<berth_model::usage::UsageBoard>,
    api: axum::Router,
) -> anyhow::Result<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>)> {
    use std::sync::Arc;

    let capacity = berth_agent::host_capacity();
    let cpu = args.node_cpu.unwrap_or(capacity.cpu);
    let memory = args.node_memory.unwrap_or(capacity.memory);
    let node = Node {
        id: dir.node_id()?,
        zone: args.zone.clone().unwrap_or_else(|| format!("{}a", args.region)),
        cpu,
        memory,
        spot_cpu: berth_model::node::spot_part(cpu, args.spot_share),
        spot_memory: berth_model::node::spot_part(memory, args.spot_share),
        status: NodeStatus::Active,
        heartbeat_at: 0,
    };
    let runtime = task_runtime(args, dir)?;
    // Placements and stop requests reach the agent as store notices at
    // once; the poll only catches what notices cannot carry.
    let config = berth_agent::AgentConfig {
        node: node.clone(),
        poll_interval: std::time::Duration::from_secs(1),
        log_bytes_per_second: args.log_ship_rate,
        usage: berth_agent::usage::UsageConfig { board: Some(usage), ..usage_config(args)? },
    };
    // Containers' secrets are opened with the key the API seals them under.
    let plane: Arc<dyn berth_agent::plane::NodeControlPlane> =
        Arc::new(berth_agent::plane::StorePlane::new(stores.clone()).with_cipher(cipher));
    // The key of tasks' credentials ids: kept, so ids stay valid across restarts.
    let credentials_key = berth_agent::credentials::EndpointKey::load_or_create(&dir.path.join("task-credentials.key"))
        .context("cannot read or make the task credentials key")?;
    let metadata =
        berth_agent::metadata::MetadataServer::new(plane.clone(), runtime.clone(), node.id.clone(), credentials_key)
            .with_api(api);
    let network = berth_agent::network::NodeNetwork::new(
        plane.clone(),
        node.id.clone(),
        berth_agent::network::NetworkConfig {
            nft_table: args.nft_table.clone(),
            state_dir: dir.path.join("network"),
            host_services: Vec::new(),
            region: args.region.clone(),
            public_address: args.public_address,
            bridge_idle: std::time::Duration::from_secs(args.bridge_idle),
            gateway_dns: true,
        },
        Some(metadata),
    )
    .context("no task networking on this host (needs root, bridges, network namespaces, nftables and br_netfilter)")?;
    // The load balancers' nodes live on this host's bridges.
    tokio::spawn(berth_agent::balancers::run_balancers(
        stores.records.clone(),
        network.clone(),
        config.usage.publish_every,
        std::future::pending(),
    ));
    // Berth's DNS server on each subnet's gateway (tasks' resolv.conf
    // names it): Cloud Map names, tasks' private DNS names, and the host's
    // resolvers for subnets with egress. It binds a gateway once its
    // bridge exists (a task notice or the periodic resync after the agent
    // made it).
    let dns = Arc::new(berth_api::dns::DnsServer::new());
    tokio::spawn(berth_api::run_dns(
        stores.records.clone(),
        dns,
        args.region.clone(),
        berth_agent::network::DNS_PORT,
        std::future::pending(),
    ));
    let agent = Arc::new(berth_agent::Agent::on_plane(plane, images, runtime, config).with_network(network));
    agent.register().await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    Ok((stop, handle))
}

/// The node's task runtime, as `--isolation` says.
fn task_runtime(args: &UpArgs, dir: &DataDir) -> anyhow::Result<std::sync::Arc<dyn berth_runtime_api::TaskRuntime>> {
    let microvm_config = |accel| berth_microvm::MicroVmConfig {
        kernel_dir: args.guest_kernel.clone().unwrap_or_else(|| berth_microvm::MicroVmConfig::default().kernel_dir),
        accel,
        ..berth_microvm::MicroVmConfig::in_dir(&dir.path.join("microvm"))
    };
    let microvm = |accel| -> anyhow::Result<std::sync::Arc<dyn berth_runtime_api::TaskRuntime>> {
        let runtime = berth_microvm::MicroVmRuntime::new(microvm_config(accel))
            .context("no micro-VM runtime on this host (needs qemu-system-x86, e2fsprogs, and a guest kernel from scripts/microvm-kernel.sh)")?;
        match runtime.accel() {
            berth_microvm::Accel::Kvm => crate::out::outln!("  isolation:    microvm (KVM, guest kernel {})", runtime.kernel_release()),
            berth_microvm::Accel::Tcg => {
                crate::out::outln!(
                    "  isolation:    microvm under QEMU's TCG EMULATOR: no working KVM here (each task still has its own kernel, {}, but boots and runs far slower)",
                    runtime.kernel_release()
                );
                tracing::warn!("micro-VM tasks run under TCG, without KVM");
            }
        }
        Ok(std::sync::Arc::new(runtime))
    };
    if args.isolation == Isolation::Microvm {
        return microvm(berth_microvm::AccelChoice::Auto);
    }
    if args.isolation == Isolation::Auto {
        match berth_microvm::probe_kvm(&microvm_config(berth_microvm::AccelChoice::Kvm)) {
            Ok(()) => return microvm(berth_microvm::AccelChoice::Kvm),
            Err(e) => {
                crate::out::outln!("  isolation:    sandbox (auto: no KVM guest boots here: {e})");
                tracing::info!(reason = %e, "isolation auto: sandbox");
            }
        }
    }
    let config = berth_runtime::RuntimeConfig {
        log_file_max_bytes: args.log_file_max_bytes,
        ..berth_runtime::RuntimeConfig::in_dir(&dir.path.join("runtime"))
    };
    let runtime = berth_runtime::SandboxRuntime::new(config)
        .context("no task runtime on this host (install runc, or run with --no-agent)")?;
    tracing::info!(runtime = ?runtime.probe(), "task runtime");
    Ok(std::sync::Arc::new(runtime))
}

/// Creates the root access key on first start (from `BERTH_ACCESS_KEY_ID`
/// and `BERTH_SECRET_ACCESS_KEY` if set, else random) and writes the
/// credentials file. Returns whether a key was created.
async fn ensure_root_key(store: &dyn Store, dir: &DataDir) -> anyhow::Result<bool> {
    if store.count_access_keys().await? > 0 {
        return Ok(false);
    }
    let id = std::env::var("BERTH_ACCESS_KEY_ID").ok().filter(|s| !s.is_empty());
    let secret = std::env::var("BERTH_SECRET_ACCESS_KEY").ok().filter(|s| !s.is_empty());
    let (access_key_id, secret_access_key) = match (id, secret) {
        (Some(i), Some(s)) => (i, s),
        (None, None) => (format!("AKIA{}", random(16).to_uppercase()), random(40)),
        _ => anyhow::bail!("set both BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY, or neither"),
    };
    let created_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    let key = AccessKey { access_key_id, secret_access_key, created_at };
    match store.insert_access_key(&key).await {
        Ok(()) | Err(StoreError::Conflict) => {}
        Err(e) => return Err(e.into()),
    }
    dir.write_credentials(&key.access_key_id, &key.secret_access_key)?;
    tracing::info!(access_key_id = %key.access_key_id, "created root access key");
    Ok(true)
}

fn random(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// A store URL without its password, for printing.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}@{}", &url[..s + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Installs the SIGTERM and SIGINT handlers now, and returns a future
/// that completes on the first of them.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    })
}

/// How usage is sampled: every `--usage-sample-seconds`, published each
/// minute; `BERTH_TEST_METRICS_PERIOD_SECONDS` (a test knob, never set
/// otherwise) publishes every N seconds instead, sampling at least every
/// N/3, so a test sees datapoints without waiting minutes.
fn usage_config(args: &UpArgs) -> anyhow::Result<berth_agent::usage::UsageConfig> {
    anyhow::ensure!((1..=60).contains(&args.usage_sample_seconds), "--usage-sample-seconds must be 1 to 60");
    let mut config = berth_agent::usage::UsageConfig {
        sample_every: std::time::Duration::from_secs(args.usage_sample_seconds),
        ..Default::default()
    };
    if let Ok(v) = std::env::var("BERTH_TEST_METRICS_PERIOD_SECONDS") {
        let n: u64 = v.parse().with_context(|| format!("BERTH_TEST_METRICS_PERIOD_SECONDS={v} is not a number of seconds"))?;
        anyhow::ensure!((1..=60).contains(&n), "BERTH_TEST_METRICS_PERIOD_SECONDS must be 1 to 60, not {n}");
        tracing::warn!(seconds = n, "BERTH_TEST_METRICS_PERIOD_SECONDS shortens the usage publishing period: for tests only");
        config.publish_every = std::time::Duration::from_secs(n);
        config.sample_every = config.sample_every.min(std::time::Duration::from_secs((n / 3).max(1)));
    }
    Ok(config)
}

/// `BERTH_TEST_MIN_SESSION_SECONDS`: a test knob (never set otherwise)
/// that lowers the shortest session AssumeRole and GetSessionToken give
/// below STS's 900 s, so a test can watch credentials expire.
fn test_min_session_seconds() -> anyhow::Result<Option<i64>> {
    match std::env::var("BERTH_TEST_MIN_SESSION_SECONDS") {
        Err(_) => Ok(None),
        Ok(v) => {
            let n: i64 = v.parse().with_context(|| format!("BERTH_TEST_MIN_SESSION_SECONDS={v} is not a number of seconds"))?;
            anyhow::ensure!((1..=900).contains(&n), "BERTH_TEST_MIN_SESSION_SECONDS must be 1 to 900, not {n}");
            Ok(Some(n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn store_urls_are_printed_without_passwords() {
        assert_eq!(redact("postgres://berth:hunter2@db:5432/berth"), "postgres://berth@db:5432/berth");
        assert_eq!(redact("sqlite:///var/lib/berth/berth.db"), "sqlite:///var/lib/berth/berth.db");
    }
}
