//! Test infrastructure: a busybox image layer, a runtime in a temp dir,
//! and guards that release what a test started even when it fails.
#![allow(dead_code, clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_runtime::{RuntimeConfig, SandboxRuntime};
use berth_runtime_api::{ContainerSpec, ImageConfig, TaskId, TaskSpec};

/// None (after a loud message) when the test cannot run here: it needs
/// root (mounts, cgroups, namespaces) and Debian's busybox-static.
pub fn require_root(test: &str) -> Option<()> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: {test}: needs root (mounts, cgroups, namespaces)");
        return None;
    }
    if !Path::new("/bin/busybox").is_file() {
        eprintln!("SKIPPED: {test}: needs /bin/busybox (Debian package busybox-static)");
        return None;
    }
    Some(())
}

/// Like [`require_root`], and the static init for initProcessEnabled.
pub fn require_init(test: &str) -> Option<()> {
    require_root(test)?;
    let init = RuntimeConfig::default().init;
    if !init.is_file() {
        eprintln!(
            "SKIPPED: {test}: needs {} (Debian package tini)",
            init.display()
        );
        return None;
    }
    Some(())
}

/// A temp dir holding a busybox layer and the runtime's state.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub layer: PathBuf,
    pub runtime: SandboxRuntime,
}

impl Harness {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-runtime-test")
            .tempdir()
            .unwrap();
        let layer = dir.path().join("layer");
        busybox_rootfs(&layer);
        let runtime = SandboxRuntime::new(Self::config(dir.path())).unwrap();
        Self {
            dir,
            layer,
            runtime,
        }
    }

    pub fn config(dir: &Path) -> RuntimeConfig {
        RuntimeConfig {
            shim: Some(PathBuf::from(env!("CARGO_BIN_EXE_berth-shim"))),
            ..RuntimeConfig::in_dir(&dir.join("state"))
        }
    }

    /// Another runtime instance over the same state (an agent restart).
    pub fn restart(&self) -> SandboxRuntime {
        SandboxRuntime::new(Self::config(self.dir.path())).unwrap()
    }

    /// A container running `sh -c SCRIPT` from the busybox layer.
    pub fn sh(&self, name: &str, script: &str) -> ContainerSpec {
        let mut c = ContainerSpec::new(name, vec![self.layer.clone()], image());
        c.command = Some(vec!["sh".into(), "-c".into(), script.into()]);
        c
    }

    /// A one-container task with a fresh id.
    pub fn task(&self, prefix: &str, container: ContainerSpec) -> TaskSpec {
        TaskSpec::new(unique_id(prefix), vec![container])
    }

    /// Releases the task when dropped.
    pub fn guard(&self, task: &TaskId) -> TaskGuard {
        TaskGuard {
            runtime: self.runtime.clone(),
            task: task.clone(),
        }
    }

    pub fn stdout(&self, task: &TaskId, container: &str) -> String {
        let paths = berth_runtime_api::TaskRuntime::logs(&self.runtime, task, container);
        std::fs::read_to_string(paths.stdout).unwrap_or_default()
    }

    pub fn stderr(&self, task: &TaskId, container: &str) -> String {
        let paths = berth_runtime_api::TaskRuntime::logs(&self.runtime, task, container);
        std::fs::read_to_string(paths.stderr).unwrap_or_default()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }
}

pub fn image() -> ImageConfig {
    ImageConfig {
        env: vec!["PATH=/bin".into()],
        cmd: Some(vec!["sh".into()]),
        ..ImageConfig::default()
    }
}

/// A task id no other test (or test run) uses.
pub fn unique_id(prefix: &str) -> TaskId {
    static N: AtomicUsize = AtomicUsize::new(0);
    TaskId::new(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
    .unwrap()
}

/// Stops (SIGKILL at once) and removes a task on drop; errors ignored.
pub struct TaskGuard {
    runtime: SandboxRuntime,
    task: TaskId,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let _ = self.runtime.stop_blocking(&self.task, Some(Duration::ZERO));
        let _ = self.runtime.remove_blocking(&self.task);
    }
}

/// A root filesystem of Debian's static busybox with the applets tests use.
pub fn busybox_rootfs(dir: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.is_file(),
        "tests need Debian's busybox-static at /bin/busybox"
    );
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy(busybox, dir.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "echo", "sleep", "cat", "dd", "head", "true", "false", "id", "touch", "ls",
        "readlink", "seq", "yes", "grep",
    ] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/tmp:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
}

/// Things of a task still on the host, for leak checks.
pub fn leftovers(task: &TaskId, state_dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let task_dir = state_dir.join("tasks").join(task.as_str());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for line in mountinfo
        .lines()
        .filter(|l| l.contains(task_dir.to_str().unwrap()))
    {
        found.push(format!("mount: {line}"));
    }
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = hierarchy.path().join("berth").join(task.as_str());
        if dir.exists() {
            found.push(format!("cgroup: {}", dir.display()));
        }
    }
    if Path::new("/sys/fs/cgroup/berth")
        .join(task.as_str())
        .exists()
    {
        found.push("cgroup: /sys/fs/cgroup/berth/TASK".into());
    }
    for proc in std::fs::read_dir("/proc").unwrap().flatten() {
        // A zombie holds nothing but its pid until its parent reaps it;
        // an orphan's parent is the host's init, which is not ours to hurry.
        let stat = std::fs::read_to_string(proc.path().join("stat")).unwrap_or_default();
        if stat
            .rfind(')')
            .is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z'))
        {
            continue;
        }
        let cgroup = std::fs::read_to_string(proc.path().join("cgroup")).unwrap_or_default();
        let cmdline = std::fs::read(proc.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cgroup.contains(&format!("/berth/{}/", task))
            || cmdline.contains(task_dir.to_str().unwrap())
        {
            found.push(format!(
                "process {}: {}",
                proc.file_name().to_string_lossy(),
                cmdline.replace('\0', " ")
            ));
        }
    }
    // A loop device still backed by the task's ephemeral storage image.
    for dev in std::fs::read_dir("/sys/block").into_iter().flatten().flatten() {
        let backing = std::fs::read_to_string(dev.path().join("loop/backing_file")).unwrap_or_default();
        if backing.contains(task_dir.to_str().unwrap()) {
            found.push(format!("loop device {}: {}", dev.file_name().to_string_lossy(), backing.trim()));
        }
    }
    let oci_state = state_dir.join("oci");
    for entry in std::fs::read_dir(&oci_state)
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(&format!("{task}."))
        {
            found.push(format!("OCI runtime state: {}", entry.path().display()));
        }
    }
    found
}
