//! The `berth` binary.

mod client;
mod cost;
mod datadir;
mod iam;
mod image;
mod kernel;
mod lb;
mod logs;
mod network;
mod out;
mod service;
mod spot;
mod up;
mod xml;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "berth", version, about = "Serverless containers on your own machines, behind the ECS API.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the all-in-one server in the foreground: the ECS API and the
    /// embedded store in the data dir.
    Up(up::UpArgs),
    /// The node's image cache: pull, ls, rm, import, load.
    Image(image::ImageArgs),
    /// A task's container output (awslogs); `-f` follows it until the task stops.
    Logs(logs::LogsArgs),
    /// Subnets tasks get their addresses from: ls, create, delete.
    Subnet(network::SubnetArgs),
    /// Security groups: ls, create, delete, allow, revoke.
    Sg(network::SgArgs),
    /// Services (ECS's): ls, describe, events.
    Service(service::ServiceArgs),
    /// Load balancers (ELBv2's): ls, describe, targets.
    Lb(lb::LbArgs),
    /// IAM: whoami (who the configured credentials sign as).
    Iam(iam::IamArgs),
    /// Fargate Spot: interrupt (reclaim Spot capacity from running tasks).
    Spot(spot::SpotArgs),
    /// What tasks cost: per-second Fargate usage priced by the price table.
    Cost(cost::CostArgs),
    /// The micro-VM guest kernel: fetch (Debian's cloud kernel) or build (a minimal one).
    Kernel(kernel::KernelArgs),
}

/// The longest argument taken: a path (PATH_MAX) is the longest there is.
const MAX_ARGUMENT: usize = 4096;

fn main() -> anyhow::Result<()> {
    if let Some((i, arg)) = std::env::args_os().enumerate().skip(1).find(|(_, a)| a.len() > MAX_ARGUMENT) {
        anyhow::bail!(
            "argument {i} is {} bytes long; the longest Berth takes is {MAX_ARGUMENT} (names are at most 255 \
             characters, ARNs and paths shorter than that)",
            arg.len()
        );
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| "info,sqlx=warn,hickory_server=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Up(args) => runtime.block_on(up::run(args)),
        Command::Image(args) => runtime.block_on(image::run(args)),
        Command::Logs(args) => runtime.block_on(logs::run(args)),
        Command::Subnet(args) => runtime.block_on(network::subnet(args)),
        Command::Sg(args) => runtime.block_on(network::sg(args)),
        Command::Service(args) => runtime.block_on(service::run(args)),
        Command::Lb(args) => runtime.block_on(lb::run(args)),
        Command::Iam(args) => runtime.block_on(iam::run(args)),
        Command::Spot(args) => runtime.block_on(spot::run(args)),
        Command::Cost(args) => runtime.block_on(cost::run(args)),
        Command::Kernel(args) => kernel::run(args),
    }
}
