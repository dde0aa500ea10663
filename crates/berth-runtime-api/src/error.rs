//! The boundary's error: what a caller of any runtime can tell apart.

/// A runtime call failed. Callers match on the first variants (a missing
/// task is not a failure when removing it, for example); everything that
/// is the backend's own business (mounts, cgroups, the OCI runtime, a
/// VMM) is [`Backend`](Self::Backend), whose message is the backend's.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The task or container spec cannot be run as given.
    #[error("invalid task spec: {0}")]
    InvalidSpec(String),
    /// A task with this id already has state on this node.
    #[error("task {0} already exists")]
    TaskExists(String),
    /// No task with this id has state on this node.
    #[error("task {0} not found")]
    TaskNotFound(String),
    /// The task still has running containers.
    #[error("task {0} is still running")]
    TaskRunning(String),
    /// The task's state on disk was written by a newer Berth, in a format
    /// this one does not know: it is left alone rather than misread.
    #[error("task {task}: state format {found} is newer than this Berth reads ({supported})")]
    FormatTooNew {
        /// The task.
        task: String,
        /// The format version found.
        found: u32,
        /// The newest version this code reads.
        supported: u32,
    },
    /// The backend failed.
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}
