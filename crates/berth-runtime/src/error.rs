//! The sandbox's error type, and how it crosses the boundary.

use std::path::PathBuf;

use berth_runtime_api::RuntimeError;

/// Everything that can go wrong starting, supervising or releasing a
/// sandboxed task. Crosses the [`TaskRuntime`](berth_runtime_api::TaskRuntime)
/// boundary as a [`RuntimeError`]: the boundary's own cases as themselves,
/// the rest as [`RuntimeError::Backend`].
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// One of the boundary's cases (invalid spec, no such task, ...).
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
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
    /// `user` names a user or group the image does not have.
    #[error("unable to find user {user}: {reason}")]
    UnknownUser {
        /// The user as the spec gave it.
        user: String,
        /// What was missing.
        reason: String,
    },
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
    /// The task's ephemeral storage could not be made.
    #[error("ephemeral storage: {0}")]
    Scratch(String),
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

impl From<SandboxError> for RuntimeError {
    fn from(e: SandboxError) -> Self {
        match e {
            SandboxError::Runtime(e) => e,
            other => Self::Backend(Box::new(other)),
        }
    }
}

impl SandboxError {
    /// The boundary's [`RuntimeError::InvalidSpec`].
    pub(crate) fn invalid(message: String) -> Self {
        Self::Runtime(RuntimeError::InvalidSpec(message))
    }

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
