//! `berth kernel fetch|build`: the micro-VM guest kernel, made once into
//! a kernel directory (`berth up --guest-kernel DIR`). The work is the
//! repo's scripts, built into the binary so an installed `berth` needs no
//! checkout: `fetch` is `scripts/microvm-kernel.sh` (Debian's cloud
//! kernel, downloaded and unpacked, never installed as the host's), `build`
//! is `scripts/microvm-kernel-build.sh` with the minimal config kept in
//! `crates/berth-microvm/kernel/` (Debian's linux-source; minutes).

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context as _;

const FETCH: &str = include_str!("../../../scripts/microvm-kernel.sh");
const BUILD: &str = include_str!("../../../scripts/microvm-kernel-build.sh");
const CONFIG: &str = include_str!("../../berth-microvm/kernel/microvm-x86_64.config");

#[derive(Debug, clap::Args)]
pub struct KernelArgs {
    #[command(subcommand)]
    command: KernelCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KernelCommand {
    /// Debian's linux-image-cloud-amd64 as a PVH vmlinux and its virtio
    /// modules [default DIR: /var/lib/berth/microvm/kernel].
    Fetch { dir: Option<PathBuf> },
    /// A minimal kernel (everything built in) from Debian's linux-source
    /// [default DIR: /var/lib/berth/microvm/kernel-minimal].
    Build { dir: Option<PathBuf> },
}

pub fn run(args: KernelArgs) -> anyhow::Result<()> {
    let work = tempfile::tempdir().context("a work directory")?;
    let (script, dir) = match args.command {
        KernelCommand::Fetch { dir } => (FETCH, dir),
        KernelCommand::Build { dir } => (BUILD, dir),
    };
    let path = work.path().join("kernel.sh");
    std::fs::write(&path, script)?;
    let config = work.path().join("microvm.config");
    std::fs::write(&config, CONFIG)?;
    let mut cmd = Command::new("bash");
    cmd.arg(&path).env("BERTH_KERNEL_CONFIG", &config);
    if let Some(d) = dir {
        cmd.arg(d);
    }
    let status = cmd.status().context("running bash")?;
    anyhow::ensure!(status.success(), "the guest kernel was not made ({status})");
    Ok(())
}
