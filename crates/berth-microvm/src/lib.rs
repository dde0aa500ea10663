//! Berth's micro-VM task runtime: every task in its own guest kernel.
//!
//! [`MicroVmRuntime`] implements the boundary's `TaskRuntime` as
//! `RuntimeKind::MicroVm` (root filesystem as block devices, network as a
//! TAP). One task is one QEMU `microvm` guest ([`vmm`]):
//!
//! - **Kernel**: Debian's `linux-image-cloud-amd64` as a PVH `vmlinux`
//!   plus its virtio modules, prepared once by
//!   `scripts/microvm-kernel.sh` ([`guest::GuestKernel`]).
//! - **Initramfs**: built once per kernel and guest agent, shared by all
//!   tasks: `/init` is Berth's own `berth-guest` ([`guest::initramfs`]).
//! - **Disks**: each image's layers merged into a read-only ext4 image,
//!   built once and shared; a per-task sparse writable disk for the
//!   containers' overlay upper layers ([`disk`]).
//! - **Network**: `tap0` in the task's namespace, joined to its `eth0` by
//!   tc redirects; the guest's `eth0` takes the task's MAC and address
//!   ([`net`]).
//! - **Limits**: QEMU runs in the task's cgroup (`berth/<task>/vmm`), with
//!   the CPU quota of the task and a memory limit of the guest's RAM plus
//!   [`VMM_OVERHEAD_MIB`]; the guest's RAM is the task's memory plus
//!   [`GUEST_OVERHEAD_MIB`], and inside the guest the containers together
//!   are held to the task's memory by a guest cgroup (each to its own
//!   `memory` when it has one), so an OOM kill is the guest kernel's and
//!   reported per container.
//! - **Channel**: virtio-serial ports. Chosen over vsock (this host has no
//!   vhost-vsock; the userspace `vhost-device-vsock` daemon costs a process
//!   per task and a shared-memory backend) and over the task network (it
//!   would need an address and a listener the task's security groups
//!   could reach, and would be lost with the network). Each container's
//!   stdout and stderr are their own ports, appended by QEMU to the same
//!   `stdout.log`/`stderr.log` files the sandbox writes, with no copying
//!   process in between: output survives the agent, the log shipper reads
//!   it the same way, and a guest's write returns only once QEMU has taken
//!   it, so nothing is lost when the guest powers off. Guest events
//!   (started, exited with code/signal/OOM) are JSON lines on another
//!   port, appended to `events.log`; the host's requests (the task, then
//!   `stop`) go in through a FIFO.
//! - **Supervision**: `berth-vm-shim` ([`shim`]), double-spawned and
//!   `setsid` like the sandbox's shim, joins the task's cgroup and network
//!   namespace, runs QEMU, hands the guest its task and records how QEMU
//!   ended (`vm-exit.json`, with host OOM kills). Killing the agent leaves
//!   the shim and the VM running; a new agent reads the task directory
//!   ([`TaskRuntime::recover`](berth_runtime_api::TaskRuntime::recover)).
//!
//! Accelerator: KVM when a probe boot of the guest under KVM reaches
//! `/init` ([`probe_kvm`]); otherwise QEMU's TCG emulator, which runs the
//! same guest (a real separate kernel), only slower.
//!
//! Not yet (phase 1): dependsOn, health checks, ulimits and container CPU
//! shares inside the guest (a spec that uses the first two is refused);
//! per-container stats (the task's are the VMM's cgroup);
//! snapshot/restore starts (the guest takes its task after boot, over the
//! control port, so a booted idle guest could be restored per task).

pub mod disk;
pub mod guest;
pub mod net;
mod runtime;
pub mod shim;
pub mod vmm;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use runtime::{MicroVmRuntime, VmExit, VmManifest, VM_FORMAT, probe_kvm};
pub use vmm::Accel;

/// Guest RAM beyond the task's memory: the guest kernel, `/init`, page
/// cache of the image disk.
pub const GUEST_OVERHEAD_MIB: u64 = 64;

/// The VMM's own memory beyond the guest's RAM, in the task's cgroup
/// limit: QEMU, its TCG translation cache ([`vmm::TCG_TB_MIB`]) and the
/// kernel image it maps.
pub const VMM_OVERHEAD_MIB: u64 = 192;

/// Guest RAM of a task without a memory size.
pub const DEFAULT_TASK_MEMORY_MIB: u64 = 512;

/// Which accelerator to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccelChoice {
    /// KVM if a probe boot succeeds, else TCG.
    #[default]
    Auto,
    /// KVM, or fail.
    Kvm,
    /// TCG, without probing.
    Tcg,
}

/// The micro-VM runtime's configuration (one serde struct, as in a
/// config file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MicroVmConfig {
    /// State: `tasks/<id>/`, `images/` (shared image disks), `initramfs/`.
    pub state_dir: PathBuf,
    /// The guest kernel directory (`scripts/microvm-kernel.sh DIR`).
    pub kernel_dir: PathBuf,
    /// The guest agent binary (`berth-guest`, best built static); by
    /// default `berth-guest` beside the running executable.
    pub guest_init: Option<PathBuf>,
    /// `qemu-system-x86_64`.
    pub qemu: PathBuf,
    /// The `berth-vm-shim` binary; by default beside the running executable.
    pub shim: Option<PathBuf>,
    /// Accelerator.
    pub accel: AccelChoice,
    /// Size of each task's writable disk (sparse), in MiB: Fargate's
    /// default ephemeral storage is 20 GiB.
    pub ephemeral_storage_mib: u64,
    /// The process limit of the VMM's cgroup.
    pub pids_limit: i64,
    /// How long a guest may take from QEMU's start to its containers running.
    pub boot_timeout_secs: u64,
}

impl Default for MicroVmConfig {
    fn default() -> Self {
        Self::in_dir(Path::new("/var/lib/berth/microvm"))
    }
}

impl MicroVmConfig {
    /// Defaults with all state under `dir`, and the kernel where
    /// `scripts/microvm-kernel.sh` puts it by default.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            state_dir: dir.to_path_buf(),
            kernel_dir: PathBuf::from("/var/lib/berth/microvm/kernel"),
            guest_init: None,
            qemu: PathBuf::from("qemu-system-x86_64"),
            shim: None,
            accel: AccelChoice::Auto,
            ephemeral_storage_mib: 20 * 1024,
            pids_limit: 1024,
            boot_timeout_secs: 120,
        }
    }
}

/// The runtime's failures.
#[derive(Debug, thiserror::Error)]
pub enum MicroVmError {
    /// One of the boundary's cases.
    #[error(transparent)]
    Runtime(#[from] berth_runtime_api::RuntimeError),
    /// A file or process operation failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done.
        action: String,
        /// To what.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Preparing the VM (kernel, disks, network) failed.
    #[error("{0}")]
    Setup(String),
    /// The sandbox runtime's helpers (cgroups, state files) failed.
    #[error(transparent)]
    Sandbox(#[from] berth_runtime::SandboxError),
    /// The guest did not come up, or reported a failure.
    #[error("{0}")]
    Guest(String),
}

impl MicroVmError {
    /// An `Io` error maker for `map_err`.
    pub fn io(action: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let (action, path) = (action.to_owned(), path.to_path_buf());
        move |source| Self::Io { action, path, source }
    }
}

impl From<MicroVmError> for berth_runtime_api::RuntimeError {
    fn from(e: MicroVmError) -> Self {
        match e {
            MicroVmError::Runtime(r) => r,
            MicroVmError::Sandbox(s) => s.into(),
            other => Self::Backend(Box::new(other)),
        }
    }
}

/// `name` beside the running executable.
fn beside_exe(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}
