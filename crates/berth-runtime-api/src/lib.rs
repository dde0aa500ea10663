//! The task runtime boundary: what the agent and every runtime backend
//! agree on, and nothing else.
//!
//! - [`TaskRuntime`]: start, wait, status, stop, recover, stats, remove,
//!   list, logs, plus [`kind`](TaskRuntime::kind),
//!   [`capabilities`](TaskRuntime::capabilities) and
//!   [`accelerator`](TaskRuntime::accelerator).
//! - What to run: [`TaskSpec`] of [`ContainerSpec`]s, in ECS's terms, with
//!   the pure rules every backend applies ([`TaskSpec::validate`]).
//! - What a runtime reports: [`TaskReport`] of [`ContainerReport`]s
//!   (state, exit, health), [`TaskStats`], [`LogPaths`].
//! - Which backend and which forms: [`RuntimeKind`] (recorded per task,
//!   so a restarted agent recovers each task through the backend that
//!   started it), [`Capabilities`] ([`RootfsForm`], [`NetworkForm`]).
//! - [`RuntimeError`]: the cases callers tell apart; the rest is the
//!   backend's.
//!
//! Backends: `berth-runtime`'s `SandboxRuntime` (OCI containers under a
//! per-task shim: layers + netns); `berth-microvm`'s `MicroVmRuntime`
//! ([`RuntimeKind::MicroVm`]: a QEMU guest per task, block devices + TAP).
//!
//! No I/O here: types, serde, and pure rules.

mod capabilities;
mod error;
mod report;
mod runtime;
mod spec;

pub use capabilities::{Capabilities, NetworkForm, RootfsForm, RuntimeKind, RuntimeKindError};
pub use error::RuntimeError;
pub use report::{
    ContainerExit, ContainerReport, ContainerState, Health, HealthStatus, LogPaths, NotStarted,
    OOM_REASON, TaskReport, TaskStats, Usage,
};
pub use runtime::TaskRuntime;
pub use spec::{
    BindMount, Condition, ContainerSpec, MAX_EPHEMERAL_STORAGE_GIB, DEFAULT_PATH, DEFAULT_START_TIMEOUT, DEFAULT_STOP_TIMEOUT,
    Dependency, HealthCheck, ImageConfig, TaskId, TaskSpec, Ulimit, VolumeMount,
};
