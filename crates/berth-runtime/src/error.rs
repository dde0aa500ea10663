//! The runtime's one error type.

use std::path::PathBuf;

/// Everything that can go wrong starting, supervising or releasing a task.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No OCI runtime binary passed the start-up probe.
    #[error("no working OCI runtime: {tried}")]
    NoWorkingRuntime {
        /// What was tried and why each failed.
        tried: String,
    },
    /// The cgroup layout of this host is not one Berth knows.
    #[error("unsupported cgroup layout: {0}")]
    UnsupportedCgroups(String),
    /// The `berth-shim` binary is missing.
    #[error("shim binary not found at {path}")]
    ShimNotFound {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The task or container spec cannot be run as given.
    #[error("invalid task spec: {0}")]
    InvalidSpec(String),
    /// `user` names a user or group the image does not have.
    #[error("unable to find user {user}: {reason}")]
    UnknownUser {
        /// The user as the spec gave it.
        user: String,
        /// What was missing.
        reason: String,
    },
    /// A task with this id already has state on this node.
    #[error("task {0} already exists")]
    TaskExists(String),
    /// No task with this id has state on this node.
    #[error("task {0} not found")]
    TaskNotFound(String),
    /// The task still has running containers.
    #[error("task {0} is still running")]
    TaskRunning(String),
    /// A file or directory operation failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A mount or unmount failed.
    #[error("{action} {path}")]
    Mount {
        /// What was being done.
        action: &'static str,
        /// The mount point.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: nix::Error,
    },
    /// A cgroup file could not be written or read.
    #[error("cgroup {path}: {action}")]
    Cgroup {
        /// What was being done.
        action: String,
        /// The cgroup file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The OCI runtime binary failed.
    #[error("{command} failed: {message}")]
    OciRuntime {
        /// The subcommand, e.g. `runc run`.
        command: String,
        /// The runtime's own error message.
        message: String,
    },
    /// The shim could not start the task.
    #[error("shim: {0}")]
    Shim(String),
    /// The OCI config could not be built.
    #[error("building the OCI config")]
    OciSpec(#[from] oci_spec::OciSpecError),
    /// A state file is not what Berth wrote.
    #[error("state file {path}")]
    State {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

impl RuntimeError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}
