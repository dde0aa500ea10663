//! Berth's sandbox task runtime: runs an ECS task's containers as OCI
//! containers and supervises them so they outlive the agent.
//!
//! - The boundary lives in `berth_runtime_api`: the [`TaskRuntime`] trait
//!   the agent drives (start, wait, stop, recover, stats, kind,
//!   capabilities), `TaskSpec`, `TaskReport`, the boundary `RuntimeError`.
//!   This crate re-exports none of it: callers import the boundary from
//!   there, and from here only [`SandboxRuntime`], [`RuntimeConfig`] and
//!   [`probe`]. The micro-VM runtime is a second implementation, in a
//!   crate of its own (`berth-microvm`).
//! - [`SandboxRuntime`] is [`RuntimeKind::Sandbox`] and takes
//!   [`RootfsForm::Layers`] (unpacked layers, stacked as an overlay) and
//!   [`NetworkForm::Netns`] (a namespace path the containers join). Its
//!   own failures are [`SandboxError`], which crosses the trait as a
//!   `RuntimeError` (the boundary's cases as themselves, the rest as
//!   `RuntimeError::Backend`).
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
//! # Upgrades
//! A task outlives the agent that started it, so its directory is read by
//! the next Berth. The task manifest (`task.json`, [`TaskManifest`])
//! carries a format version ([`MANIFEST_FORMAT`]; none = 0, the format
//! before versioning); a newer one is refused with
//! `RuntimeError::FormatTooNew`, never misread. The shim's exit, health
//! and not-started records and its pid file are stable formats. None of
//! them refuses unknown fields; each has a fixture written by the code
//! before it (`tests/fixtures`), loaded by the unit tests of [`manifest`]
//! and recovered by `tests/upgrade.rs`.
//!
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
//! for nothing Berth needs; the shim is ~500 lines that share the task
//! manifest's types with the agent.
//!
//! Under systemd the agent's unit needs `KillMode=process`, or a restart
//! would kill the shims in its cgroup.

pub mod cgroup;
mod config;
mod deps;
mod error;
mod health;
pub mod layout;
pub mod logcap;
pub mod manifest;
pub mod oci;
mod oci_cli;
pub mod probe;
pub mod rootfs;
mod sandbox;
pub mod scratch;
pub mod shim;
mod spec;
pub mod user;

pub use cgroup::CgroupVersion;
pub use config::{DEFAULT_LOG_FILE_MAX_BYTES, RuntimeConfig};
pub use error::SandboxError;
pub use manifest::{MANIFEST_FORMAT, TaskManifest};
pub use probe::Probe;
pub use sandbox::{SANDBOX_CAPABILITIES, SandboxRuntime};

#[cfg(doc)]
use berth_runtime_api::{ContainerExit, ContainerState, NetworkForm, RootfsForm, RuntimeKind, TaskRuntime};
