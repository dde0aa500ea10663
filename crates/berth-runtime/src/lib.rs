//! Berth's task runtime: runs an ECS task's containers in sandboxes and
//! supervises them so they outlive the agent.
//!
//! - [`TaskRuntime`] is the one interface the agent drives (start, wait,
//!   stop, recover, stats); [`SandboxRuntime`] implements it over an OCI
//!   runtime binary. A micro-VM runtime will be a second implementation.
//! - A task is containers sharing a task cgroup (`berth/<task-id>`: CPU
//!   quota of cpu/1024 cores, hard memory limit without swap, pids limit;
//!   [`cgroup`]) and optionally a network namespace. Each container has an
//!   overlay root ([`rootfs`]) and an OCI config with Docker's defaults:
//!   its capability set, a seccomp allow-list, no_new_privileges, masked
//!   and read-only /proc paths, own mount/PID/IPC/UTS namespaces ([`oci`]).
//! - At start [`probe`] picks the OCI runtime that really runs a container
//!   here (crun, else runc) and the cgroup version.
//!
//! # How the agent drives it
//! ```text
//! SandboxRuntime::new(config)      probe once at agent start
//! start(&TaskSpec)                 PENDING → RUNNING (Err: TaskFailedToStart, nothing left)
//! wait(&id)                        an essential container exited (or all did)
//! stop(&id)                        SIGTERM, stopTimeout, SIGKILL; releases all but logs
//!                                  and exit records; returns every container's exit
//! (ship the rest of logs(&id, c))
//! remove(&id)                      deletes the task's directory
//! after an agent restart: list() → recover(&id) for each → wait/stop as usual
//! ```
//! A container's exit carries its code (`128 + signal` when killed) and
//! whether the OOM killer struck ([`ContainerExit::reason`] gives ECS's
//! `OutOfMemoryError: ...`). [`ContainerState::Lost`] means nobody saw how
//! it ended (its shim was killed, or the host rebooted).
//!
//! # Supervision: why Berth's own shim
//! Each task has one `berth-shim` process ([`shim`]): double-spawned and
//! `setsid` so it belongs to neither the agent's process tree nor its
//! session, a child subreaper so each container's PID 1 becomes its child
//! when `runc run --detach` exits, writing each container's exit code (and
//! OOM kills) to the task directory. Container stdout/stderr go straight to
//! files (no copying process in between), so output survives the agent and
//! the shim alike. Killing the agent leaves the shim and containers
//! running; a new agent reads the same directory ([`TaskRuntime::recover`]).
//! conmon would do the same per container, but adds a Debian package
//! dependency and its own protocol (sockets, exit files in its format)
//! for nothing Berth needs; the shim is ~200 lines that share the task
//! record's types with the agent.
//!
//! Under systemd the agent's unit needs `KillMode=process`, or a restart
//! would kill the shims in its cgroup.

pub mod cgroup;
mod config;
mod deps;
mod error;
mod health;
pub mod layout;
pub mod manifest;
pub mod oci;
mod oci_cli;
pub mod probe;
pub mod rootfs;
mod sandbox;
pub mod shim;
mod spec;
pub mod user;

pub use cgroup::CgroupVersion;
pub use config::RuntimeConfig;
pub use error::SandboxError;
pub use manifest::{MANIFEST_FORMAT, TaskManifest};
pub use probe::Probe;
pub use sandbox::SandboxRuntime;
