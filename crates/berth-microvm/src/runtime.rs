//! The micro-VM [`TaskRuntime`]. The value holds configuration only; each
//! task's state is its directory, so any instance can wait on, stop or
//! clean up any task, including those an earlier agent started.
//!
//! ```text
//! <state>/tasks/<task-id>/
//!   vm.json *            the VmManifest (format version, spec, VM, VMM command, guest task)
//!   shim.pid * shim.log  the shim's "pid starttime" and its log
//!   qemu.pid * qemu.log  the VMM's "pid starttime" and its output
//!   console.log          the guest's serial console
//!   events.log *         the guest's events (JSON lines), appended by QEMU
//!   control.in .out      the control FIFOs (host → guest: the task, then "stop")
//!   rw.ext4              the task's writable disk (sparse)
//!   vm-exit.json *       how the VMM ended, written by the shim
//!   containers/<name>/stdout.log stderr.log   the container's output
//! <state>/images/<key>.ext4    shared read-only image disks
//! <state>/initramfs/           the shared initramfs
//! ```
//! Files marked * are read across an agent restart and an upgrade.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use berth_guest::{Event, GUEST_FORMAT, GuestContainer, GuestFile, GuestTask, ports};
use berth_runtime::cgroup::{Cgroups, Limits};
use berth_runtime::manifest::{ProcessId, read_json, write_json};
use berth_runtime_api::{
    Capabilities, ContainerExit, ContainerReport, ContainerState, LogPaths, NetworkForm, NotStarted, RootfsForm,
    RuntimeError, RuntimeKind, TaskId, TaskReport, TaskRuntime, TaskSpec, TaskStats,
};
use serde::{Deserialize, Serialize};

use crate::guest::{GuestKernel, initramfs};
use crate::vmm::{Accel, BASE_CMDLINE, Disk, Port, PortBackend, QemuMicrovm, VmConfig, Vmm};
use crate::{
    AccelChoice, DEFAULT_TASK_MEMORY_MIB, GUEST_OVERHEAD_MIB, MicroVmConfig, MicroVmError, VMM_OVERHEAD_MIB, beside_exe,
    disk, net,
};

/// The manifest format this code writes, and the newest it reads.
pub const VM_FORMAT: u32 = 1;

/// Time the guest has, beyond the containers' stop timeouts, to stop them,
/// report and power off before its VMM is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// How long the shim may take to record the VMM's end once it exited.
const SHIM_GRACE: Duration = Duration::from_secs(5);

/// What a task was started with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmManifest {
    /// [`VM_FORMAT`] when written here.
    #[serde(default)]
    pub format_version: u32,
    /// The task.
    pub spec: TaskSpec,
    /// The VM.
    pub vm: VmConfig,
    /// The VMM's command line, argv\[0\] first.
    pub argv: Vec<String>,
    /// What the guest is sent.
    pub guest: GuestTask,
}

impl VmManifest {
    /// Reads a manifest; a newer format is refused, never misread.
    pub fn read(path: &Path) -> Result<Self, MicroVmError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Version {
            #[serde(default)]
            format_version: u32,
            spec: VersionSpec,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct VersionSpec {
            task_id: String,
        }
        let Some(v) = read_json::<Version>(path)? else {
            let task = path.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned());
            return Err(RuntimeError::TaskNotFound(task.unwrap_or_default()).into());
        };
        if v.format_version > VM_FORMAT {
            return Err(RuntimeError::FormatTooNew { task: v.spec.task_id, found: v.format_version, supported: VM_FORMAT }.into());
        }
        read_json(path)?.ok_or_else(|| RuntimeError::TaskNotFound(v.spec.task_id).into())
    }
}

/// How the VMM ended, as the shim saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmExit {
    /// Its exit code, if it exited.
    pub exit_code: Option<i32>,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// The host's OOM killer struck the VMM's cgroup.
    pub oom_killed: bool,
    /// When the shim reaped it.
    pub finished_at: SystemTime,
}

/// A task directory.
#[derive(Clone, Debug)]
pub(crate) struct Layout(pub(crate) PathBuf);

impl Layout {
    pub(crate) fn manifest(&self) -> PathBuf {
        self.0.join("vm.json")
    }
    pub(crate) fn shim_pid(&self) -> PathBuf {
        self.0.join("shim.pid")
    }
    pub(crate) fn shim_log(&self) -> PathBuf {
        self.0.join("shim.log")
    }
    pub(crate) fn vmm_pid(&self) -> PathBuf {
        self.0.join("qemu.pid")
    }
    pub(crate) fn vmm_log(&self) -> PathBuf {
        self.0.join("qemu.log")
    }
    fn console(&self) -> PathBuf {
        self.0.join("console.log")
    }
    fn events(&self) -> PathBuf {
        self.0.join("events.log")
    }
    fn control(&self) -> PathBuf {
        self.0.join("control")
    }
    pub(crate) fn control_in(&self) -> PathBuf {
        self.0.join("control.in")
    }
    fn control_out(&self) -> PathBuf {
        self.0.join("control.out")
    }
    fn rw_disk(&self) -> PathBuf {
        self.0.join("rw.ext4")
    }
    pub(crate) fn vm_exit(&self) -> PathBuf {
        self.0.join("vm-exit.json")
    }
    fn container(&self, name: &str) -> PathBuf {
        self.0.join("containers").join(name)
    }
}

/// Runs tasks as micro-VMs.
#[derive(Clone, Debug)]
pub struct MicroVmRuntime {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: MicroVmConfig,
    kernel: GuestKernel,
    initramfs: PathBuf,
    accel: Accel,
    shim: PathBuf,
    cgroups: Cgroups,
}

/// What the micro-VM runtime takes: disk images and a TAP.
pub const MICROVM_CAPABILITIES: Capabilities = Capabilities { rootfs: RootfsForm::BlockDevice, network: NetworkForm::Tap };

impl MicroVmRuntime {
    /// Loads the guest kernel, builds the shared initramfs (once), checks
    /// QEMU and picks the accelerator (probing KVM under `Auto`).
    pub fn new(config: MicroVmConfig) -> Result<Self, MicroVmError> {
        let tasks = config.state_dir.join("tasks");
        std::fs::create_dir_all(&tasks).map_err(MicroVmError::io("creating", &tasks))?;
        let kernel = GuestKernel::load(&config.kernel_dir)?;
        let init = config.guest_init.clone().unwrap_or_else(|| beside_exe("berth-guest"));
        let initramfs = initramfs(&kernel, &init, &config.state_dir.join("initramfs"))?;
        let version = Command::new(&config.qemu).arg("--version").output();
        match version {
            Ok(out) if out.status.success() => {}
            _ => {
                return Err(MicroVmError::Setup(format!(
                    "{} does not run (Debian package qemu-system-x86)",
                    config.qemu.display()
                )));
            }
        }
        let shim = config.shim.clone().unwrap_or_else(|| beside_exe("berth-vm-shim"));
        if !shim.is_file() {
            return Err(MicroVmError::Setup(format!("no micro-VM shim at {}", shim.display())));
        }
        let accel = match config.accel {
            AccelChoice::Tcg => Accel::Tcg,
            AccelChoice::Kvm | AccelChoice::Auto => {
                let kvm = probe(&config, &kernel, &initramfs);
                match (kvm, config.accel) {
                    (Ok(()), _) => Accel::Kvm,
                    (Err(why), AccelChoice::Kvm) => {
                        return Err(MicroVmError::Setup(format!("KVM was asked for, but cannot run the guest: {why}")));
                    }
                    (Err(why), _) => {
                        tracing::warn!(
                            reason = %why,
                            "micro-VMs run under QEMU's TCG emulator: KVM cannot run the guest here (slow, but each task still has its own kernel)"
                        );
                        Accel::Tcg
                    }
                }
            }
        };
        let cgroups = Cgroups::detect()?;
        Ok(Self { inner: Arc::new(Inner { config, kernel, initramfs, accel, shim, cgroups }) })
    }

    /// The accelerator guests run with.
    pub fn accel(&self) -> Accel {
        self.inner.accel
    }

    /// The guest kernel's release.
    pub fn kernel_release(&self) -> &str {
        &self.inner.kernel.release
    }

    /// [`TaskRuntime::stop`], blocking.
    pub fn stop_blocking(&self, task: &TaskId) -> Result<TaskReport, MicroVmError> {
        self.inner.stop(task)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, MicroVmError> + Send + 'static,
    ) -> Result<T, RuntimeError> {
        let inner = Arc::clone(&self.inner);
        let result = tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| MicroVmError::Setup(format!("runtime worker failed: {e}")))
            .and_then(|r| r);
        Ok(result?)
    }
}

/// Whether a KVM guest boots here: the micro-VM runtime's kernel and
/// initramfs started under `-accel kvm` until `/init` reports.
pub fn probe_kvm(config: &MicroVmConfig) -> Result<(), MicroVmError> {
    let kernel = GuestKernel::load(&config.kernel_dir)?;
    let init = config.guest_init.clone().unwrap_or_else(|| beside_exe("berth-guest"));
    let initramfs = initramfs(&kernel, &init, &config.state_dir.join("initramfs"))?;
    probe(config, &kernel, &initramfs)
}

fn probe(config: &MicroVmConfig, kernel: &GuestKernel, initramfs: &Path) -> Result<(), MicroVmError> {
    if std::fs::File::options().read(true).write(true).open("/dev/kvm").is_err() {
        return Err(MicroVmError::Setup("/dev/kvm cannot be opened".into()));
    }
    let dir = config.state_dir.join(format!("probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(MicroVmError::io("creating", &dir))?;
    let layout = Layout(dir.clone());
    let vm = VmConfig {
        accel: Accel::Kvm,
        vcpus: 1,
        memory_mib: 128,
        kernel: kernel.vmlinux.clone(),
        initrd: initramfs.to_path_buf(),
        cmdline: format!("{BASE_CMDLINE} {}", berth_guest::PROBE_ARG),
        disks: Vec::new(),
        tap: None,
        ports: vec![
            Port { name: ports::EVENTS.into(), backend: PortBackend::AppendFile(layout.events()) },
            Port { name: ports::CONTROL.into(), backend: PortBackend::AppendFile(layout.control_out()) },
        ],
        console: layout.console(),
    };
    let argv = QemuMicrovm { binary: config.qemu.clone() }.command(&vm);
    let result = (|| {
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(MicroVmError::io("running", &config.qemu))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let booted = std::fs::read_to_string(layout.events())
                .map(|t| Event::parse_all(&t).iter().any(|e| matches!(e, Event::Booted { .. })))
                .unwrap_or(false);
            if booted {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                let first = err.lines().next().unwrap_or_default().to_owned();
                return Err(MicroVmError::Guest(format!("the KVM guest died ({status}) before /init: {first}")));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(MicroVmError::Guest("the KVM guest did not reach /init in 20 s".into()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[async_trait]
impl TaskRuntime for MicroVmRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::MicroVm
    }

    fn capabilities(&self) -> Capabilities {
        MICROVM_CAPABILITIES
    }

    fn accelerator(&self) -> Option<&'static str> {
        Some(self.inner.accel.as_str())
    }

    async fn start(&self, spec: &TaskSpec) -> Result<TaskReport, RuntimeError> {
        let spec = spec.clone();
        self.blocking(move |i| i.start(&spec)).await
    }

    async fn wait(&self, task: &TaskId) -> Result<TaskReport, RuntimeError> {
        loop {
            let status = self.inner.status(task)?;
            if status.is_finished() {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn status(&self, task: &TaskId) -> Result<TaskReport, RuntimeError> {
        Ok(self.inner.status(task)?)
    }

    async fn stop(&self, task: &TaskId) -> Result<TaskReport, RuntimeError> {
        let task = task.clone();
        self.blocking(move |i| i.stop(&task)).await
    }

    async fn recover(&self, task: &TaskId) -> Result<TaskReport, RuntimeError> {
        let status = self.inner.status(task)?;
        tracing::info!(task = %task, finished = status.is_finished(), "recovered micro-VM task");
        Ok(status)
    }

    async fn stats(&self, task: &TaskId) -> Result<TaskStats, RuntimeError> {
        let task = task.clone();
        self.blocking(move |i| {
            i.manifest(&task)?;
            let usage = i.cgroups.task(&task).usage()?;
            Ok(TaskStats { task: usage, containers: Vec::new() })
        })
        .await
    }

    async fn remove(&self, task: &TaskId) -> Result<(), RuntimeError> {
        let task = task.clone();
        self.blocking(move |i| i.remove(&task)).await
    }

    async fn list(&self) -> Result<Vec<TaskId>, RuntimeError> {
        Ok(self.inner.list()?)
    }

    fn logs(&self, task: &TaskId, container: &str) -> LogPaths {
        let dir = self.inner.layout(task).container(container);
        LogPaths { stdout: dir.join("stdout.log"), stderr: dir.join("stderr.log") }
    }
}

impl Inner {
    fn layout(&self, task: &TaskId) -> Layout {
        Layout(self.config.state_dir.join("tasks").join(task.as_str()))
    }

    fn manifest(&self, task: &TaskId) -> Result<VmManifest, MicroVmError> {
        VmManifest::read(&self.layout(task).manifest())
    }

    fn start(&self, spec: &TaskSpec) -> Result<TaskReport, MicroVmError> {
        spec.validate()?;
        for c in &spec.containers {
            let unsupported = if !c.depends_on.is_empty() {
                Some("dependsOn")
            } else if c.health_check.is_some() {
                Some("healthCheck")
            } else {
                None
            };
            if let Some(what) = unsupported {
                return Err(RuntimeError::InvalidSpec(format!(
                    "container {}: {what} is not supported by the microvm runtime yet",
                    c.name
                ))
                .into());
            }
        }
        let layout = self.layout(&spec.task_id);
        match std::fs::create_dir(&layout.0) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(RuntimeError::TaskExists(spec.task_id.to_string()).into());
            }
            Err(e) => return Err(MicroVmError::io("creating", &layout.0)(e)),
        }
        let started = Instant::now();
        let result = self.prepare(spec, &layout).and_then(|()| self.launch(&layout)).and_then(|()| self.until_started(spec, &layout));
        match result {
            Ok(report) => {
                tracing::debug!(task = %spec.task_id, elapsed = ?started.elapsed(), accel = self.accel.as_str(), "micro-VM task started");
                Ok(report)
            }
            Err(e) => {
                tracing::warn!(task = %spec.task_id, error = %e, "micro-VM task failed to start");
                if let Err(cleanup) = self.release(&spec.task_id, spec.netns.as_deref()) {
                    tracing::error!(task = %spec.task_id, error = %cleanup, "cleaning up a micro-VM that failed to start");
                }
                let _ = std::fs::remove_dir_all(&layout.0);
                Err(e)
            }
        }
    }

    /// Cgroup, disks, network, FIFOs and the manifest.
    fn prepare(&self, spec: &TaskSpec, layout: &Layout) -> Result<(), MicroVmError> {
        let task_mib = spec.memory_mib.unwrap_or(DEFAULT_TASK_MEMORY_MIB);
        let guest_mib = task_mib + GUEST_OVERHEAD_MIB;
        let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let vcpus = spec.cpu.map_or(1, |c| c.div_ceil(1024)).clamp(1, host_cpus);
        self.cgroups.task(&spec.task_id).create(&Limits {
            cpu_units: spec.cpu,
            memory_bytes: Some((guest_mib + VMM_OVERHEAD_MIB) * 1024 * 1024),
            pids: Some(self.config.pids_limit),
        })?;
        // One shared image disk per distinct image.
        let mut images: Vec<Vec<PathBuf>> = Vec::new();
        let mut disks = Vec::new();
        let mut containers = Vec::new();
        for c in &spec.containers {
            let index = match images.iter().position(|l| *l == c.layers) {
                Some(i) => i,
                None => {
                    let path = disk::image_disk(&c.layers, &self.config.state_dir.join("images"))?;
                    disks.push(Disk { path, serial: berth_guest::image_disk(images.len()), read_only: true });
                    images.push(c.layers.clone());
                    images.len() - 1
                }
            };
            containers.push(GuestContainer {
                name: c.name.clone(),
                image: index,
                args: c.args()?,
                env: c.env(),
                cwd: c.cwd(),
                user: c.user().map(str::to_owned),
                essential: c.essential,
                stop_timeout_ms: c.stop_timeout().as_millis() as u64,
                memory_mib: c.memory_mib,
                readonly_root: c.readonly_root_filesystem,
            });
            let dir = layout.container(&c.name);
            std::fs::create_dir_all(&dir).map_err(MicroVmError::io("creating", &dir))?;
            for f in ["stdout.log", "stderr.log"] {
                std::fs::File::create(dir.join(f)).map_err(MicroVmError::io("creating", &dir.join(f)))?;
            }
        }
        // The task's own size when it gives one (the agent always does).
        let scratch_mib = spec.ephemeral_storage_gib.map_or(self.config.ephemeral_storage_mib, |g| u64::from(g) * 1024);
        disk::scratch_disk(&layout.rw_disk(), scratch_mib)?;
        disks.push(Disk { path: layout.rw_disk(), serial: berth_guest::RW_DISK.into(), read_only: false });
        // Files the agent gives containers by bind mount (/etc/hosts, ...)
        // are copied into the guest.
        let files = spec
            .containers
            .first()
            .map(|c| {
                c.mounts
                    .iter()
                    .filter(|m| m.source.is_file())
                    .filter_map(|m| {
                        let contents = std::fs::read_to_string(&m.source).ok()?;
                        Some(GuestFile { path: m.destination.clone(), contents })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let interface = match &spec.netns {
            Some(netns) => Some(net::attach(netns)?),
            None => None,
        };
        for p in [layout.control_in(), layout.control_out()] {
            nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(|e| MicroVmError::Setup(format!("{}: {e}", p.display())))?;
        }
        let mut vm_ports = vec![
            Port { name: ports::EVENTS.into(), backend: PortBackend::AppendFile(layout.events()) },
            Port { name: ports::CONTROL.into(), backend: PortBackend::Fifo(layout.control()) },
        ];
        for (i, c) in spec.containers.iter().enumerate() {
            let dir = layout.container(&c.name);
            vm_ports.push(Port { name: ports::stdout(i), backend: PortBackend::AppendFile(dir.join("stdout.log")) });
            vm_ports.push(Port { name: ports::stderr(i), backend: PortBackend::AppendFile(dir.join("stderr.log")) });
        }
        let vm = VmConfig {
            accel: self.accel,
            vcpus,
            memory_mib: guest_mib,
            kernel: self.kernel.vmlinux.clone(),
            initrd: self.initramfs.clone(),
            cmdline: BASE_CMDLINE.to_owned(),
            disks,
            tap: interface.as_ref().map(|i| (net::TAP.to_owned(), i.mac.clone())),
            ports: vm_ports,
            console: layout.console(),
        };
        let argv = QemuMicrovm { binary: self.config.qemu.clone() }
            .command(&vm)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let guest = GuestTask {
            format_version: GUEST_FORMAT,
            task_id: spec.task_id.to_string(),
            hostname: spec.hostname.clone().unwrap_or_else(|| spec.task_id.to_string()),
            memory_mib: Some(task_mib),
            network: interface.map(|i| i.guest),
            files,
            containers,
        };
        let manifest = VmManifest { format_version: VM_FORMAT, spec: spec.clone(), vm, argv, guest };
        write_json(&layout.manifest(), &manifest)?;
        Ok(())
    }

    fn launch(&self, layout: &Layout) -> Result<(), MicroVmError> {
        let out = Command::new(&self.shim)
            .arg("start")
            .arg(&layout.0)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(MicroVmError::io("running", &self.shim))?;
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && answer == crate::shim::READY {
            return Ok(());
        }
        let message = answer.strip_prefix("error: ").unwrap_or(&answer).to_string();
        let message = if message.is_empty() { String::from_utf8_lossy(&out.stderr).trim().to_string() } else { message };
        Err(MicroVmError::Guest(format!("{message}{}", self.vmm_output(layout))))
    }

    /// Waits until every container runs or is done (the guest booted and
    /// started them), or the VM is gone.
    fn until_started(&self, spec: &TaskSpec, layout: &Layout) -> Result<TaskReport, MicroVmError> {
        let deadline = Instant::now() + Duration::from_secs(self.config.boot_timeout_secs);
        loop {
            let events = read_events(layout);
            if let Some(reason) = events.iter().find_map(|e| match e {
                Event::Failed { reason } => Some(reason.clone()),
                _ => None,
            }) {
                return Err(MicroVmError::Guest(reason));
            }
            let report = self.status(&spec.task_id)?;
            if !report.any_waiting() {
                if report.containers.iter().any(|c| c.state == ContainerState::Lost) {
                    return Err(MicroVmError::Guest(format!("the VM ended before its containers started{}", self.vmm_output(layout))));
                }
                return Ok(report);
            }
            if Instant::now() > deadline {
                return Err(MicroVmError::Guest(format!(
                    "the guest did not start its containers within {} s{}",
                    self.config.boot_timeout_secs,
                    self.vmm_output(layout)
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last lines of the VMM's and the console's output, for errors.
    fn vmm_output(&self, layout: &Layout) -> String {
        let tail = |p: PathBuf| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            lines[lines.len().saturating_sub(3)..].join(" | ")
        };
        let (q, c) = (tail(layout.vmm_log()), tail(layout.console()));
        match (q.is_empty(), c.is_empty()) {
            (true, true) => String::new(),
            _ => format!(" (qemu: {q}; console: {c})"),
        }
    }

    fn status(&self, task: &TaskId) -> Result<TaskReport, MicroVmError> {
        let manifest = self.manifest(task)?;
        Ok(self.status_of(&manifest))
    }

    fn vmm(&self, task: &TaskId) -> Option<ProcessId> {
        ProcessId::read(&self.layout(task).vmm_pid()).filter(ProcessId::is_alive)
    }

    fn shim(&self, task: &TaskId) -> Option<ProcessId> {
        ProcessId::read(&self.layout(task).shim_pid()).filter(ProcessId::is_alive)
    }

    fn status_of(&self, manifest: &VmManifest) -> TaskReport {
        let task = &manifest.spec.task_id;
        let layout = self.layout(task);
        let vmm = self.vmm(task);
        let shim_alive = vmm.is_some() || ProcessId::read(&layout.shim_pid()).is_none_or(|p| p.is_alive());
        let events = read_events(&layout);
        let vm_exit: Option<VmExit> = read_json(&layout.vm_exit()).ok().flatten();
        let mut states: HashMap<&str, ContainerState> = HashMap::new();
        for e in &events {
            match e {
                // A guest's processes have no host pid: the VMM's stands for them.
                Event::Started { container, .. } => {
                    states.insert(container, ContainerState::Running { pid: vmm.map_or(0, |p| p.pid) });
                }
                Event::Exited { container, exit_code, signal, oom_killed, finished_at_ms } => {
                    let exit = ContainerExit {
                        exit_code: *exit_code,
                        signal: *signal,
                        oom_killed: *oom_killed,
                        finished_at: SystemTime::UNIX_EPOCH + Duration::from_millis(*finished_at_ms),
                    };
                    states.insert(container, ContainerState::Exited(exit));
                }
                Event::NotStarted { container, reason } => {
                    states.insert(container, ContainerState::NotStarted(NotStarted { reason: reason.clone() }));
                }
                _ => {}
            }
        }
        let containers = manifest
            .spec
            .containers
            .iter()
            .map(|c| {
                let state = match states.remove(c.name.as_str()) {
                    Some(s @ (ContainerState::Exited(_) | ContainerState::NotStarted(_))) => s,
                    running if shim_alive => running.unwrap_or(ContainerState::Waiting),
                    // The VM is gone without the guest's word on this container.
                    _ => match &vm_exit {
                        Some(x) if x.oom_killed => ContainerState::Exited(ContainerExit {
                            exit_code: 137,
                            signal: Some(9),
                            oom_killed: true,
                            finished_at: x.finished_at,
                        }),
                        _ => ContainerState::Lost,
                    },
                };
                ContainerReport { name: c.name.clone(), essential: c.essential, state, health: None }
            })
            .collect();
        TaskReport { task_id: task.clone(), containers }
    }

    /// Asks the guest to stop (SIGTERM; `kill NAME` once a container's
    /// stopTimeout passed on the host's clock; power off); kills the VMM if it does not end in time; then
    /// releases everything but the logs and the records.
    fn stop(&self, task: &TaskId) -> Result<TaskReport, MicroVmError> {
        let manifest = self.manifest(task)?;
        let layout = self.layout(task);
        if let Some(vmm) = self.vmm(task) {
            let containers = &manifest.spec.containers;
            let longest = containers.iter().map(|c| c.stop_timeout()).max().unwrap_or_default();
            if let Err(e) = send_line(&layout, berth_guest::STOP) {
                tracing::warn!(task = %task, error = %e, "asking the guest to stop");
            }
            // Each container's stopTimeout is measured here, on the host's
            // clock (a guest's can run fast under TCG): then `kill NAME`.
            let termed = Instant::now();
            let deadline = termed + longest + STOP_GRACE;
            let mut killed = vec![false; containers.len()];
            while vmm.is_alive() && Instant::now() < deadline {
                for (c, killed) in containers.iter().zip(killed.iter_mut()) {
                    if !*killed && termed.elapsed() >= c.stop_timeout() {
                        *killed = true;
                        if let Err(e) = send_line(&layout, &format!("{} {}", berth_guest::KILL, c.name)) {
                            tracing::warn!(task = %task, container = %c.name, error = %e, "asking the guest to kill");
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if vmm.is_alive() {
                tracing::warn!(task = %task, pid = vmm.pid, "the guest did not power off in time; killing its VMM");
                kill(vmm);
            }
        }
        self.release(task, manifest.spec.netns.as_deref())?;
        Ok(self.status_of(&manifest))
    }

    /// Releases what a task holds: the VMM and shim, the TAP, the cgroup,
    /// the writable disk, the FIFOs. Idempotent.
    fn release(&self, task: &TaskId, netns: Option<&Path>) -> Result<(), MicroVmError> {
        let layout = self.layout(task);
        if let Some(vmm) = self.vmm(task) {
            kill(vmm);
        }
        if let Some(shim) = self.shim(task) {
            let deadline = Instant::now() + SHIM_GRACE;
            while shim.is_alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if shim.is_alive() {
                tracing::warn!(task = %task, pid = shim.pid, "micro-VM shim still running; killing it");
                kill(shim);
            }
        }
        let mut first_error = None;
        if let Some(netns) = netns
            && let Err(e) = net::detach(netns)
        {
            first_error.get_or_insert(e);
        }
        for p in [layout.rw_disk(), layout.control_in(), layout.control_out()] {
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    first_error.get_or_insert(MicroVmError::io("removing", &p)(e));
                }
                _ => {}
            }
        }
        if let Err(e) = self.cgroups.task(task).remove() {
            first_error.get_or_insert(e.into());
        }
        first_error.map_or(Ok(()), Err)
    }

    fn remove(&self, task: &TaskId) -> Result<(), MicroVmError> {
        let manifest = self.manifest(task)?;
        if !self.status_of(&manifest).all_done() {
            return Err(RuntimeError::TaskRunning(task.to_string()).into());
        }
        self.release(task, manifest.spec.netns.as_deref())?;
        let dir = self.layout(task).0;
        std::fs::remove_dir_all(&dir).map_err(MicroVmError::io("removing", &dir))
    }

    fn list(&self) -> Result<Vec<TaskId>, MicroVmError> {
        let dir = self.config.state_dir.join("tasks");
        let entries = std::fs::read_dir(&dir).map_err(MicroVmError::io("listing", &dir))?;
        let mut ids: Vec<TaskId> = entries
            .flatten()
            .filter(|e| e.path().join("vm.json").is_file())
            .filter_map(|e| TaskId::new(e.file_name().to_string_lossy().into_owned()).ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn read_events(layout: &Layout) -> Vec<Event> {
    std::fs::read_to_string(layout.events()).map(|t| Event::parse_all(&t)).unwrap_or_default()
}

/// Writes the stop request into the control FIFO (non-blocking: with no
/// VMM to read it, there is nobody to ask).
/// Writes one control line to the guest.
fn send_line(layout: &Layout, line: &str) -> Result<(), MicroVmError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = layout.control_in();
    let mut f = std::fs::File::options()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&path)
        .map_err(MicroVmError::io("opening", &path))?;
    f.write_all(format!("{line}\n").as_bytes()).map_err(MicroVmError::io("writing", &path))
}

fn kill(p: ProcessId) {
    if p.is_alive() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid), nix::sys::signal::Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while p.is_alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn a_newer_manifest_is_refused_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t1").join("vm.json");
        std::fs::create_dir(path.parent().unwrap()).unwrap();
        std::fs::write(&path, r#"{"formatVersion": 99, "spec": {"taskId": "t1"}}"#).unwrap();
        match VmManifest::read(&path) {
            Err(MicroVmError::Runtime(RuntimeError::FormatTooNew { found: 99, .. })) => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            VmManifest::read(&dir.path().join("none/vm.json")),
            Err(MicroVmError::Runtime(RuntimeError::TaskNotFound(_)))
        ));
    }
}
