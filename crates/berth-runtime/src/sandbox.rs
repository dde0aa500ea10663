//! The sandbox [`TaskRuntime`]: OCI containers under a per-task shim.
//!
//! The value holds configuration only; each task's state is its directory
//! (see [`layout`](crate::layout)), so any instance can wait on, stop or
//! clean up any task, including those an earlier agent started.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use berth_runtime_api::{
    Capabilities, ContainerReport, ContainerState, Health, LogPaths, NetworkForm, RootfsForm,
    RuntimeError, RuntimeKind, TaskId, TaskReport, TaskRuntime, TaskSpec, TaskStats,
};

use crate::cgroup::{Cgroups, Limits};
use crate::layout::{TaskDir, oci_id};
use crate::manifest::{ProcessId, TaskManifest, read_json, write_json};
use crate::oci_cli::OciCli;
use crate::probe::{Probe, probe};
use crate::{RuntimeConfig, SandboxError, oci, rootfs, scratch, spec, user};

const MIB: u64 = 1024 * 1024;
/// How long a container may take to die after SIGKILL before stop gives up
/// waiting for its exit record.
const KILL_GRACE: Duration = Duration::from_secs(10);
/// How long the shim may take to exit once its containers have.
const SHIM_GRACE: Duration = Duration::from_secs(5);
/// How long `wait` lets a finished report settle its waiting containers.
const SETTLE: Duration = Duration::from_secs(1);

/// Runs tasks as OCI containers through runc or crun.
#[derive(Clone, Debug)]
pub struct SandboxRuntime {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: RuntimeConfig,
    probe: Probe,
    cgroups: Cgroups,
    /// Task manifests as read from disk: written once at start and never
    /// changed, so status reads (many a second while a task is young)
    /// need not parse them again.
    manifests: std::sync::Mutex<HashMap<TaskId, Arc<TaskManifest>>>,
}

impl SandboxRuntime {
    /// Detects cgroups, probes for a working OCI runtime and prepares the
    /// state directories.
    pub fn new(config: RuntimeConfig) -> Result<Self, SandboxError> {
        for dir in [&config.tasks_dir, &config.oci_root] {
            std::fs::create_dir_all(dir).map_err(SandboxError::io("creating", dir))?;
        }
        let cgroups = Cgroups::detect()?;
        let probe = probe(&config, &cgroups)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                probe,
                cgroups,
                manifests: std::sync::Mutex::default(),
            }),
        })
    }

    /// What the start-up probe chose.
    pub fn probe(&self) -> &Probe {
        &self.inner.probe
    }

    /// [`TaskRuntime::start`], blocking.
    pub fn start_blocking(&self, spec: &TaskSpec) -> Result<TaskReport, SandboxError> {
        self.inner.start(spec)
    }

    /// [`TaskRuntime::status`], blocking.
    pub fn status_blocking(&self, task: &TaskId) -> Result<TaskReport, SandboxError> {
        self.inner.status(task)
    }

    /// [`TaskRuntime::stop`], blocking; `grace` replaces every container's
    /// stopTimeout when given (`Duration::ZERO`: SIGKILL at once).
    pub fn stop_blocking(
        &self,
        task: &TaskId,
        grace: Option<Duration>,
    ) -> Result<TaskReport, SandboxError> {
        self.inner.stop(task, grace)
    }

    /// [`TaskRuntime::remove`], blocking.
    pub fn remove_blocking(&self, task: &TaskId) -> Result<(), SandboxError> {
        self.inner.remove(task)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, SandboxError> + Send + 'static,
    ) -> Result<T, RuntimeError> {
        let inner = Arc::clone(&self.inner);
        let result = tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| SandboxError::Shim(format!("runtime worker failed: {e}")))
            .and_then(|r| r);
        Ok(result?)
    }
}

/// What the sandbox takes: unpacked layers stacked as an overlay, and a
/// network namespace path every container joins.
pub const SANDBOX_CAPABILITIES: Capabilities = Capabilities {
    rootfs: RootfsForm::Layers,
    network: NetworkForm::Netns,
};

#[async_trait]
impl TaskRuntime for SandboxRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Sandbox
    }

    fn capabilities(&self) -> Capabilities {
        SANDBOX_CAPABILITIES
    }

    async fn start(&self, spec: &TaskSpec) -> Result<TaskReport, RuntimeError> {
        let spec = spec.clone();
        self.blocking(move |i| i.start(&spec)).await
    }

    async fn wait(&self, task: &TaskId) -> Result<TaskReport, RuntimeError> {
        // Exit records are files: poll them, every 5 ms in the task's first
        // second (short tasks and tests), then every 100 ms. The first
        // second is the task's, not this call's: the agent waits with a
        // timeout and calls again, which must not keep an idle task at the
        // fast rate for good (500 status reads a second per task).
        let young_until = self.inner.started_at(task).map(|t| t + Duration::from_secs(1));
        // The shim settles the containers that will never start in one
        // pass but records them one file at a time: a report read in
        // between is finished with some still Waiting. Give it a moment
        // to settle (bounded: a dead shim settles nothing).
        let mut settle_until = None;
        loop {
            let status = self.inner.status(task)?;
            let running = status.containers.iter().any(|c| matches!(c.state, ContainerState::Running { .. }));
            if !status.is_finished() && running && self.inner.shim(task).is_none() {
                // Nobody supervises these containers any more: their
                // exits would go unrecorded, their health unchecked and
                // their output uncapped. They are killed (their state is
                // then Lost) and the task ends.
                tracing::warn!(task = %task, "the task's shim is gone: killing its unsupervised containers");
                let t = task.clone();
                self.blocking(move |i| {
                    let record = i.record(&t)?;
                    i.terminate(&record, Some(Duration::ZERO)).map(drop)
                })
                .await?;
                continue;
            }
            if status.is_finished() {
                let until = *settle_until.get_or_insert_with(|| Instant::now() + SETTLE);
                if !status.any_waiting() || Instant::now() >= until {
                    return Ok(status);
                }
            }
            let young = young_until.is_some_and(|until| std::time::SystemTime::now() < until);
            let delay = if young { 5 } else { 100 };
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
    }

    async fn status(&self, task: &TaskId) -> Result<TaskReport, RuntimeError> {
        Ok(self.inner.status(task)?)
    }

    async fn stop(&self, task: &TaskId) -> Result<TaskReport, RuntimeError> {
        let task = task.clone();
        self.blocking(move |i| i.stop(&task, None)).await
    }

    async fn recover(&self, task: &TaskId) -> Result<TaskReport, RuntimeError> {
        let status = self.inner.status(task)?;
        tracing::info!(task = %task, finished = status.is_finished(), "recovered task");
        Ok(status)
    }

    async fn stats(&self, task: &TaskId) -> Result<TaskStats, RuntimeError> {
        let task = task.clone();
        self.blocking(move |i| i.stats(&task)).await
    }

    async fn remove(&self, task: &TaskId) -> Result<(), RuntimeError> {
        let task = task.clone();
        self.blocking(move |i| i.remove(&task)).await
    }

    async fn list(&self) -> Result<Vec<TaskId>, RuntimeError> {
        Ok(self.inner.list()?)
    }

    fn logs(&self, task: &TaskId, container: &str) -> LogPaths {
        let dir = self.inner.dir(task).container(container);
        LogPaths {
            stdout: dir.stdout(),
            stderr: dir.stderr(),
        }
    }
}

impl Inner {
    fn dir(&self, task: &TaskId) -> TaskDir {
        TaskDir::new(&self.config.tasks_dir, task.as_str())
    }

    fn cli(&self, record: &TaskManifest) -> OciCli {
        OciCli {
            binary: record.oci_runtime.clone(),
            root: record.oci_root.clone(),
        }
    }

    /// When the task was started: its record's modification time (the
    /// record is written once, at start).
    fn started_at(&self, task: &TaskId) -> Option<std::time::SystemTime> {
        std::fs::metadata(self.dir(task).manifest()).and_then(|m| m.modified()).ok()
    }

    fn record(&self, task: &TaskId) -> Result<Arc<TaskManifest>, SandboxError> {
        let path = self.dir(task).manifest();
        let cached = self.cache().get(task).cloned();
        match cached {
            // Still there (another instance may have removed the task).
            Some(record) if path.exists() => Ok(record),
            _ => {
                let record = TaskManifest::read(&path)?
                    .ok_or_else(|| RuntimeError::TaskNotFound(task.to_string()))?;
                let record = Arc::new(record);
                self.cache().insert(task.clone(), record.clone());
                Ok(record)
            }
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<TaskId, Arc<TaskManifest>>> {
        self.manifests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn start(&self, spec: &TaskSpec) -> Result<TaskReport, SandboxError> {
        spec::validate(spec)?;
        let dir = self.dir(&spec.task_id);
        match std::fs::create_dir(dir.path()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(RuntimeError::TaskExists(spec.task_id.to_string()).into());
            }
            Err(e) => return Err(SandboxError::io("creating", dir.path())(e)),
        }
        let record = TaskManifest {
            log_file_max_bytes: self.config.log_file_max_bytes,
            ..TaskManifest::new(
                spec.clone(),
                self.probe.oci_runtime.clone(),
                self.config.oci_root.clone(),
            )
        };
        let started = Instant::now();
        match self.prepare(&record, &dir).and_then(|()| self.launch(&dir)) {
            Ok(()) => {
                tracing::debug!(task = %spec.task_id, elapsed = ?started.elapsed(), "task started");
                self.status(&spec.task_id)
            }
            Err(e) => {
                tracing::warn!(task = %spec.task_id, error = %e, "task failed to start");
                if let Err(cleanup) = self
                    .terminate(&record, Some(Duration::ZERO))
                    .and_then(|_| self.release(&record))
                {
                    tracing::error!(task = %spec.task_id, error = %cleanup, "cleaning up a task that failed to start");
                }
                let _ = std::fs::remove_dir_all(dir.path());
                self.cache().remove(&spec.task_id);
                Err(e)
            }
        }
    }

    /// Cgroup, root filesystems, bundles and the record: everything but
    /// the processes.
    fn prepare(&self, record: &TaskManifest, dir: &TaskDir) -> Result<(), SandboxError> {
        let spec = &record.spec;
        // The record goes first so that a failure below can be cleaned up
        // like any task.
        write_json(&dir.manifest(), record)?;
        let pids_limit = spec.pids_limit.unwrap_or(self.config.pids_limit);
        let cgroup = self.cgroups.task(&spec.task_id);
        cgroup.create(&Limits {
            cpu_units: spec.cpu,
            memory_bytes: spec.memory_mib.map(|m| m * MIB),
            pids: Some(pids_limit),
        })?;
        let hostname = spec
            .hostname
            .clone()
            .unwrap_or_else(|| spec.task_id.to_string());
        self.probe.scratch.create(&dir.scratch_image(), &dir.scratch(), spec.ephemeral_storage_gib)?;
        let volumes = dir.volumes();
        for v in spec.volumes() {
            let d = volumes.join(v);
            std::fs::create_dir_all(&d).map_err(SandboxError::io("creating", &d))?;
        }
        for c in &spec.containers {
            let cdir = dir.container(&c.name);
            let (upper, work) = (dir.upper(&c.name), dir.work(&c.name));
            for d in [cdir.rootfs(), upper.clone(), work.clone()] {
                std::fs::create_dir_all(&d).map_err(SandboxError::io("creating", &d))?;
            }
            rootfs::mount_overlay(&c.layers, &upper, &work, &cdir.rootfs())?;
            let init = if c.init_process_enabled {
                if !self.config.init.is_file() {
                    return Err(SandboxError::invalid(format!(
                        "container {}: initProcessEnabled needs a static init at {} (Debian package tini)",
                        c.name,
                        self.config.init.display()
                    )));
                }
                Some(self.config.init.as_path())
            } else {
                None
            };
            let config = oci::build(&oci::Context {
                container: c,
                hostname: &hostname,
                cgroups_path: cgroup.container_path(&c.name),
                netns: spec.netns.as_deref(),
                user: user::resolve(c.user(), &cdir.rootfs())?,
                pids_limit,
                init,
                cgroup_ns: self.probe.cgroups == crate::CgroupVersion::V2,
                volumes: &volumes,
            })?;
            config.save(cdir.config())?;
            // The OCI config holds the process's environment (secrets
            // included): the runtime's owner alone reads it.
            {
                use std::os::unix::fs::PermissionsExt as _;
                let path = cdir.config();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(SandboxError::io("restricting", &path))?;
            }
        }
        Ok(())
    }

    fn launch(&self, dir: &TaskDir) -> Result<(), SandboxError> {
        let out = Command::new(&self.probe.shim)
            .arg("start")
            .arg(dir.path())
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(SandboxError::io("running", &self.probe.shim))?;
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && answer == crate::shim::READY {
            return Ok(());
        }
        let message = answer
            .strip_prefix("error: ")
            .unwrap_or(&answer)
            .to_string();
        let message = if message.is_empty() {
            String::from_utf8_lossy(&out.stderr).trim().to_string()
        } else {
            message
        };
        Err(SandboxError::Shim(message))
    }

    fn status(&self, task: &TaskId) -> Result<TaskReport, SandboxError> {
        let record = self.record(task)?;
        Ok(self.status_of(&record))
    }

    fn shim(&self, task: &TaskId) -> Option<ProcessId> {
        ProcessId::read(&self.dir(task).shim_pid()).filter(ProcessId::is_alive)
    }

    fn status_of(&self, record: &TaskManifest) -> TaskReport {
        let task = &record.spec.task_id;
        let dir = self.dir(task);
        let shim_alive = self.shim(task).is_some();
        let containers = record
            .spec
            .containers
            .iter()
            .map(|c| {
                let cdir = dir.container(&c.name);
                let recorded = || {
                    let exited = read_json(&cdir.exit_file())
                        .ok()
                        .flatten()
                        .map(ContainerState::Exited);
                    exited.or_else(|| {
                        read_json(&cdir.not_started_file())
                            .ok()
                            .flatten()
                            .map(ContainerState::NotStarted)
                    })
                };
                let state = recorded().unwrap_or_else(|| {
                    let pid: Option<i32> = std::fs::read_to_string(cdir.pid_file())
                        .ok()
                        .and_then(|p| p.trim().parse().ok());
                    let cgroup = self.cgroups.task(task).container_path(&c.name);
                    match pid {
                        Some(pid) if shim_alive => ContainerState::Running { pid },
                        None if shim_alive => ContainerState::Waiting,
                        // Unsupervised: the shim died, the container did not.
                        Some(pid) if in_cgroup(pid, &cgroup) => ContainerState::Running { pid },
                        // The shim may have recorded the end and gone
                        // between the two looks.
                        _ => recorded().unwrap_or(ContainerState::Lost),
                    }
                });
                let health = c.health_check.as_ref().map(|_| {
                    read_json(&cdir.health_file())
                        .ok()
                        .flatten()
                        .unwrap_or_else(Health::unknown)
                });
                ContainerReport {
                    name: c.name.clone(),
                    essential: c.essential,
                    state,
                    health,
                }
            })
            .collect();
        TaskReport {
            task_id: task.clone(),
            containers,
        }
    }

    /// Stops the task's containers: dependents before what they depend on
    /// (ECS's shutdown order), each with SIGTERM, then SIGKILL once its
    /// stop timeout (or `grace`) has passed, until all are done. Writes the
    /// stop marker first, so the shim starts no container that still waits.
    fn terminate(
        &self,
        record: &TaskManifest,
        grace: Option<Duration>,
    ) -> Result<TaskReport, SandboxError> {
        let task = record.spec.task_id.as_str();
        let marker = self.dir(&record.spec.task_id).stop_marker();
        if let Err(e) = std::fs::write(&marker, b"") {
            tracing::warn!(task, error = %e, "writing the stop marker");
        }
        let cli = self.cli(record);
        let containers = &record.spec.containers;
        // When each container was sent SIGTERM, SIGKILL.
        let mut termed: HashMap<&str, Instant> = HashMap::new();
        let mut killed: HashMap<&str, Instant> = HashMap::new();
        loop {
            let status = self.status_of(record);
            if status.all_done() {
                return Ok(status);
            }
            let done = |name: &str| status.container(name).is_none_or(ContainerState::is_done);
            let now = Instant::now();
            for c in containers {
                let name = c.name.as_str();
                if done(name) {
                    continue;
                }
                let timeout = grace.unwrap_or_else(|| c.stop_timeout());
                let dependents_done = containers
                    .iter()
                    .filter(|d| d.depends_on.iter().any(|dep| dep.container == c.name))
                    .all(|d| done(&d.name));
                if !termed.contains_key(name) && (dependents_done || grace == Some(Duration::ZERO))
                {
                    if !timeout.is_zero()
                        && let Err(e) = cli.kill(&oci_id(task, name), "TERM")
                    {
                        tracing::warn!(task, container = name, error = %e, "SIGTERM failed");
                    }
                    termed.insert(name, now);
                }
                let term_due = termed.get(name).is_some_and(|at| now >= *at + timeout);
                if term_due && !killed.contains_key(name) {
                    if let Err(e) = cli.kill(&oci_id(task, name), "KILL") {
                        tracing::warn!(task, container = name, error = %e, "SIGKILL failed");
                    }
                    killed.insert(name, now);
                }
            }
            if killed.values().any(|at| now >= *at + KILL_GRACE) {
                tracing::error!(task, "containers did not exit after SIGKILL");
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(&self, task: &TaskId, grace: Option<Duration>) -> Result<TaskReport, SandboxError> {
        let record = self.record(task)?;
        self.terminate(&record, grace)?;
        self.release(&record)?;
        Ok(self.status_of(&record))
    }

    /// Releases what a task holds once its containers are done: the shim,
    /// the OCI runtime's state, the overlay mounts, the cgroups, the
    /// writable layers and bundles. Idempotent.
    fn release(&self, record: &TaskManifest) -> Result<(), SandboxError> {
        let task = &record.spec.task_id;
        let dir = self.dir(task);
        if let Some(shim) = self.shim(task) {
            let deadline = Instant::now() + SHIM_GRACE;
            while shim.is_alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if shim.is_alive() {
                tracing::warn!(task = %task, pid = shim.pid, "shim still running; killing it");
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(shim.pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let cli = self.cli(record);
        let mut first_error = None;
        for c in &record.spec.containers {
            if let Err(e) = cli.delete(&oci_id(task.as_str(), &c.name)) {
                tracing::warn!(task = %task, container = %c.name, error = %e, "deleting the OCI container");
                first_error.get_or_insert(e);
            }
        }
        let mut overlays_gone = true;
        for c in &record.spec.containers {
            let cdir = dir.container(&c.name);
            match rootfs::unmount(&cdir.rootfs()) {
                Ok(()) => {
                    if let Err(e) = remove_dir(&cdir.bundle()) {
                        first_error.get_or_insert(e);
                    }
                }
                Err(e) => {
                    overlays_gone = false;
                    first_error.get_or_insert(e);
                }
            }
        }
        // The writable layers and volumes go with the task's storage,
        // once no overlay uses it (a task of an older Berth kept its
        // layers in containers/NAME/: the task directory's removal takes
        // them).
        if overlays_gone
            && let Err(e) = scratch::release(&dir.scratch_image(), &dir.scratch()).and_then(|()| remove_dir(&dir.scratch()))
        {
            first_error.get_or_insert(e);
        }
        if let Err(e) = self.cgroups.task(task).remove() {
            first_error.get_or_insert(e);
        }
        first_error.map_or(Ok(()), Err)
    }

    fn remove(&self, task: &TaskId) -> Result<(), SandboxError> {
        let record = self.record(task)?;
        if !self.status_of(&record).all_done() {
            return Err(RuntimeError::TaskRunning(task.to_string()).into());
        }
        self.release(&record)?;
        self.cache().remove(task);
        remove_dir(self.dir(task).path())
    }

    fn stats(&self, task: &TaskId) -> Result<TaskStats, SandboxError> {
        let record = self.record(task)?;
        let cgroup = self.cgroups.task(task);
        let containers = record
            .spec
            .containers
            .iter()
            .filter_map(|c| cgroup.container_usage(&c.name).map(|u| (c.name.clone(), u)))
            .collect();
        Ok(TaskStats {
            task: cgroup.usage()?,
            containers,
        })
    }

    fn list(&self) -> Result<Vec<TaskId>, SandboxError> {
        let dir = &self.config.tasks_dir;
        let entries = std::fs::read_dir(dir).map_err(SandboxError::io("listing", dir))?;
        let mut ids: Vec<TaskId> = entries
            .flatten()
            .filter(|e| e.path().join("task.json").is_file())
            .filter_map(|e| TaskId::new(e.file_name().to_string_lossy().into_owned()).ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// True when `pid` is a live (not zombie) process in the cgroup at `path`
/// (as `/proc/PID/cgroup` shows it): only the container's own process can
/// be, so a reused pid is not mistaken for it.
fn in_cgroup(pid: i32, path: &Path) -> bool {
    let proc = Path::new("/proc").join(pid.to_string());
    let alive = std::fs::read_to_string(proc.join("stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| !s[i + 1..].trim_start().starts_with('Z'))
        })
        .unwrap_or(false);
    let cgroups = std::fs::read_to_string(proc.join("cgroup")).unwrap_or_default();
    let path = path.display().to_string();
    alive && cgroups.lines().any(|l| l.ends_with(&path))
}

fn remove_dir(path: &Path) -> Result<(), SandboxError> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(SandboxError::io("removing", path)(e))
        }
        _ => Ok(()),
    }
}
