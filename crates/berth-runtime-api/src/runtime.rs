//! The one interface the agent drives tasks through.

use async_trait::async_trait;

use crate::{Capabilities, LogPaths, RuntimeError, RuntimeKind, TaskId, TaskReport, TaskSpec, TaskStats};

/// Runs tasks: sandboxes today, micro-VMs later (backend chosen at run
/// time, by the [`RuntimeKind`] the agent recorded for the task).
///
/// A task's state lives on disk, owned by the backend's per-task
/// supervisor, not in the value that implements this: an implementation
/// can be dropped (the agent killed) and a new one
/// [`recover`](TaskRuntime::recover)s the tasks it finds.
#[async_trait]
pub trait TaskRuntime: Send + Sync {
    /// Which backend this is; the agent records it per task.
    fn kind(&self) -> RuntimeKind;

    /// The forms of root filesystem and network this backend takes, so
    /// the agent prepares a task in them.
    fn capabilities(&self) -> Capabilities;

    /// How this backend's guests run, for backends that have guests: a
    /// micro-VM runtime says `kvm` or `tcg` (DescribeTasks shows it).
    fn accelerator(&self) -> Option<&'static str> {
        None
    }

    /// Starts every container of the task, in order. On error nothing of
    /// the task is left behind.
    async fn start(&self, spec: &TaskSpec) -> Result<TaskReport, RuntimeError>;

    /// Waits until the task is finished by ECS rules (an essential
    /// container exited, or all did) and reports every container.
    async fn wait(&self, task: &TaskId) -> Result<TaskReport, RuntimeError>;

    /// Reports every container now, without waiting.
    async fn status(&self, task: &TaskId) -> Result<TaskReport, RuntimeError>;

    /// Stops the task: SIGTERM to every running container, SIGKILL to those
    /// still running after their stopTimeout, then releases everything the
    /// task holds but its logs and exit records (see [`remove`](TaskRuntime::remove)).
    async fn stop(&self, task: &TaskId) -> Result<TaskReport, RuntimeError>;

    /// Re-attaches to a task started by an earlier instance (before an agent
    /// restart), reporting its containers, including exits that happened
    /// while no agent ran.
    async fn recover(&self, task: &TaskId) -> Result<TaskReport, RuntimeError>;

    /// CPU and memory use of the task and its running containers.
    async fn stats(&self, task: &TaskId) -> Result<TaskStats, RuntimeError>;

    /// Deletes what [`stop`](TaskRuntime::stop) kept (logs, exit records).
    /// Refuses while a container runs.
    async fn remove(&self, task: &TaskId) -> Result<(), RuntimeError>;

    /// The tasks this node holds state for (to recover after a restart).
    async fn list(&self) -> Result<Vec<TaskId>, RuntimeError>;

    /// Where a container's stdout and stderr are captured.
    fn logs(&self, task: &TaskId, container: &str) -> LogPaths;
}
