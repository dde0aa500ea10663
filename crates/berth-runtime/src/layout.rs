//! Where a task's state lives on disk: `<tasks-dir>/<task-id>/`. Files
//! marked * are read across an upgrade (see [`crate::manifest`] for their
//! formats); the rest are the OCI runtime's, or live only as long as one
//! shim or one check.
//!
//! ```text
//! task.json *                the TaskManifest (format version, spec, runtime binary, root)
//! shim.pid * shim.log        the shim's "pid starttime" and its own log
//! stopping                   written by `stop`: start no more containers
//! scratch.img                the task's ephemeral storage, loop-mounted at scratch/
//!                            ([`crate::scratch`]; absent when not enforced)
//! scratch/
//!   volumes/<volume>/        a task volume, bind-mounted into the containers that mount it
//!   containers/<name>/upper/ work/   a container's overlay writable layer
//! containers/<name>/
//!   bundle/config.json       OCI bundle; bundle/rootfs is the overlay
//!   stdout.log stderr.log    the container's output
//!   init.pid runc.log        written by the OCI runtime
//!   exit.json *              the ContainerExit, written by the shim
//!   not-started.json *       why it never started (NotStarted), by the shim
//!   health.json *            its health check's findings (Health), by the shim
//!   check.pid                the running health check's pid (runc exec)
//!   awslogs.json             the agent's log shipper: offsets shipped so far (its format
//!                            is the agent's: berth-agent/src/logs)
//! ```

use std::path::{Path, PathBuf};

/// A task's directory.
#[derive(Clone, Debug)]
pub struct TaskDir(PathBuf);

impl TaskDir {
    /// The directory of `task` under `tasks_dir`.
    pub fn new(tasks_dir: &Path, task: &str) -> Self {
        Self(tasks_dir.join(task))
    }

    /// The task directory at `path`.
    pub fn at(path: &Path) -> Self {
        Self(path.to_path_buf())
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The task manifest.
    pub fn manifest(&self) -> PathBuf {
        self.0.join("task.json")
    }

    /// The shim's pid file.
    pub fn shim_pid(&self) -> PathBuf {
        self.0.join("shim.pid")
    }

    /// The shim's log.
    pub fn shim_log(&self) -> PathBuf {
        self.0.join("shim.log")
    }

    /// Present once a stop began: the shim starts no more containers.
    pub fn stop_marker(&self) -> PathBuf {
        self.0.join("stopping")
    }

    /// The task's ephemeral storage: where its volumes and its
    /// containers' writable layers live.
    pub fn scratch(&self) -> PathBuf {
        self.0.join("scratch")
    }

    /// The image file mounted at [`Self::scratch`], when enforced.
    pub fn scratch_image(&self) -> PathBuf {
        self.0.join("scratch.img")
    }

    /// The task's volumes.
    pub fn volumes(&self) -> PathBuf {
        self.scratch().join("volumes")
    }

    /// A container's overlay upper dir.
    pub fn upper(&self, container: &str) -> PathBuf {
        self.scratch().join("containers").join(container).join("upper")
    }

    /// A container's overlay work dir.
    pub fn work(&self, container: &str) -> PathBuf {
        self.scratch().join("containers").join(container).join("work")
    }

    /// A container's directory.
    pub fn container(&self, name: &str) -> ContainerDir {
        ContainerDir(self.0.join("containers").join(name))
    }
}

/// A container's directory.
#[derive(Clone, Debug)]
pub struct ContainerDir(PathBuf);

impl ContainerDir {
    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// The OCI bundle.
    pub fn bundle(&self) -> PathBuf {
        self.0.join("bundle")
    }
    /// The root filesystem mount point.
    pub fn rootfs(&self) -> PathBuf {
        self.0.join("bundle/rootfs")
    }
    /// The OCI config.
    pub fn config(&self) -> PathBuf {
        self.0.join("bundle/config.json")
    }
    /// Captured stdout.
    pub fn stdout(&self) -> PathBuf {
        self.0.join("stdout.log")
    }
    /// Captured stderr.
    pub fn stderr(&self) -> PathBuf {
        self.0.join("stderr.log")
    }
    /// The container init's host pid, written by the OCI runtime.
    pub fn pid_file(&self) -> PathBuf {
        self.0.join("init.pid")
    }
    /// The OCI runtime's log.
    pub fn runtime_log(&self) -> PathBuf {
        self.0.join("runc.log")
    }
    /// The exit record.
    pub fn exit_file(&self) -> PathBuf {
        self.0.join("exit.json")
    }
    /// The record of a container that never started.
    pub fn not_started_file(&self) -> PathBuf {
        self.0.join("not-started.json")
    }
    /// The health record.
    pub fn health_file(&self) -> PathBuf {
        self.0.join("health.json")
    }
    /// The pid of a running health check (inside the container).
    pub fn check_pid_file(&self) -> PathBuf {
        self.0.join("check.pid")
    }
}

/// The OCI runtime's id of a container: `<task>.<container>` (neither
/// part can contain a dot, so ids never collide).
pub fn oci_id(task: &str, container: &str) -> String {
    format!("{task}.{container}")
}
