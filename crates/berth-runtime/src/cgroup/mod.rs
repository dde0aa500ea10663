//! Task cgroups: a `berth/<task-id>` cgroup carrying the task's limits,
//! with one child per container (created by the OCI runtime from the
//! container's `cgroupsPath`). Works on cgroup v1 (one hierarchy per
//! controller, possibly beside a cgroup2 mount: "hybrid") and v2.

mod v1;
mod v2;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_runtime_api::Usage;
use berth_runtime_api::TaskId;

use crate::SandboxError;

/// The parent of every cgroup Berth makes.
pub const BERTH_CGROUP: &str = "berth";

/// Which cgroup interface this host has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Legacy: one hierarchy per controller.
    V1,
    /// Unified.
    V2,
}

/// This host's cgroup mounts.
#[derive(Clone, Debug)]
pub struct Cgroups {
    layout: Layout,
}

#[derive(Clone, Debug)]
enum Layout {
    V1 {
        /// Controller name → mount point.
        controllers: BTreeMap<String, PathBuf>,
        /// Every hierarchy's mount point (named ones and a hybrid cgroup2
        /// too): the OCI runtime may create the container's cgroup in each.
        hierarchies: Vec<PathBuf>,
    },
    V2 {
        root: PathBuf,
    },
}

/// Limits on a task cgroup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// CPU in ECS units (1024 = one core).
    pub cpu_units: Option<u32>,
    /// Hard memory limit (no swap beyond it).
    pub memory_bytes: Option<u64>,
    /// Process limit.
    pub pids: Option<i64>,
}

/// The CFS period Berth uses, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;

impl Limits {
    /// The CFS quota for `cpu_units`, in microseconds per [`CPU_PERIOD_US`].
    pub fn cpu_quota_us(&self) -> Option<u64> {
        self.cpu_units
            .map(|u| (u64::from(u) * CPU_PERIOD_US / 1024).max(1000))
    }
}

impl Cgroups {
    /// Reads the cgroup mounts from `/proc/self/mountinfo`.
    pub fn detect() -> Result<Self, SandboxError> {
        let path = "/proc/self/mountinfo";
        let text = std::fs::read_to_string(path).map_err(SandboxError::io("reading", path))?;
        Self::from_mountinfo(&text)
    }

    /// The mounts a `/proc/self/mountinfo` text lists (the benchmark reads
    /// synthetic cgroup trees through this).
    pub fn from_mountinfo(text: &str) -> Result<Self, SandboxError> {
        let mut controllers = BTreeMap::new();
        let mut hierarchies = Vec::new();
        let mut unified_root = None;
        for line in text.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(sep) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            let (Some(mount_point), Some(fstype), Some(super_opts)) =
                (fields.get(4), fields.get(sep + 1), fields.get(sep + 3))
            else {
                continue;
            };
            let mount_point = PathBuf::from(mount_point);
            match *fstype {
                "cgroup2" => {
                    if mount_point == Path::new("/sys/fs/cgroup") {
                        unified_root = Some(mount_point.clone());
                    }
                    if !hierarchies.contains(&mount_point) {
                        hierarchies.push(mount_point);
                    }
                }
                "cgroup" => {
                    for opt in super_opts.split(',') {
                        if !matches!(opt, "rw" | "ro") && !opt.contains('=') {
                            controllers
                                .entry(opt.to_string())
                                .or_insert_with(|| mount_point.clone());
                        }
                    }
                    if !hierarchies.contains(&mount_point) {
                        hierarchies.push(mount_point);
                    }
                }
                _ => {}
            }
        }
        if let Some(root) = unified_root {
            return Ok(Self {
                layout: Layout::V2 { root },
            });
        }
        for needed in ["cpu", "cpuacct", "memory", "pids"] {
            if !controllers.contains_key(needed) {
                return Err(SandboxError::UnsupportedCgroups(format!(
                    "no cgroup2 at /sys/fs/cgroup and no v1 hierarchy with the {needed} controller"
                )));
            }
        }
        Ok(Self {
            layout: Layout::V1 {
                controllers,
                hierarchies,
            },
        })
    }

    /// The interface in use.
    pub fn version(&self) -> CgroupVersion {
        match self.layout {
            Layout::V1 { .. } => CgroupVersion::V1,
            Layout::V2 { .. } => CgroupVersion::V2,
        }
    }

    /// The cgroup of a task.
    pub fn task(&self, task: &TaskId) -> TaskCgroup<'_> {
        self.at(Path::new(BERTH_CGROUP).join(task.as_str()))
    }

    /// A cgroup at `rel` under every hierarchy's root.
    pub(crate) fn at(&self, rel: PathBuf) -> TaskCgroup<'_> {
        TaskCgroup { cgroups: self, rel }
    }

    fn controller_dir(&self, controller: &str, rel: &Path) -> PathBuf {
        match &self.layout {
            Layout::V1 { controllers, .. } => controllers
                .get(controller)
                .map_or_else(|| PathBuf::from("/nonexistent"), |m| m.join(rel)),
            Layout::V2 { root } => root.join(rel),
        }
    }

    fn all_dirs(&self, rel: &Path) -> Vec<PathBuf> {
        match &self.layout {
            Layout::V1 { hierarchies, .. } => hierarchies.iter().map(|h| h.join(rel)).collect(),
            Layout::V2 { root } => vec![root.join(rel)],
        }
    }
}

/// One task's cgroup (`berth/<task-id>`) in every hierarchy.
#[derive(Debug)]
pub struct TaskCgroup<'a> {
    cgroups: &'a Cgroups,
    rel: PathBuf,
}

impl TaskCgroup<'_> {
    /// The container's `cgroupsPath` for the OCI config.
    pub fn container_path(&self, container: &str) -> PathBuf {
        Path::new("/").join(&self.rel).join(container)
    }

    /// Creates the task cgroup and applies the limits.
    pub fn create(&self, limits: &Limits) -> Result<(), SandboxError> {
        match &self.cgroups.layout {
            Layout::V1 { .. } => {
                let dir = |c: &str| self.cgroups.controller_dir(c, &self.rel);
                v1::create(
                    &dir("cpu"),
                    &dir("cpuacct"),
                    &dir("memory"),
                    &dir("pids"),
                    limits,
                )
            }
            Layout::V2 { root } => v2::create(root, &self.rel, limits),
        }
    }

    /// Usage of the whole task.
    pub fn usage(&self) -> Result<Usage, SandboxError> {
        self.usage_at(&self.rel)
    }

    /// Usage of one container, while its cgroup exists.
    pub fn container_usage(&self, container: &str) -> Option<Usage> {
        self.usage_at(&self.rel.join(container)).ok()
    }

    fn usage_at(&self, rel: &Path) -> Result<Usage, SandboxError> {
        match &self.cgroups.layout {
            Layout::V1 { .. } => v1::usage(
                &self.cgroups.controller_dir("cpuacct", rel),
                &self.cgroups.controller_dir("memory", rel),
            ),
            Layout::V2 { root } => v2::usage(&root.join(rel)),
        }
    }

    /// How many processes of the container the OOM killer killed (0 once
    /// the container's cgroup is gone).
    pub fn oom_kills(&self, container: &str) -> u64 {
        let rel = self.rel.join(container);
        match &self.cgroups.layout {
            Layout::V1 { .. } => v1::oom_kills(&self.cgroups.controller_dir("memory", &rel)),
            Layout::V2 { root } => v2::oom_kills(&root.join(rel)),
        }
    }

    /// Moves process `pid` into the task's child cgroup `child`, made in
    /// every hierarchy if need be (the micro-VM runtime's VMM process: on
    /// cgroup v2 a process cannot sit in the task's own cgroup once its
    /// controllers are delegated to children).
    /// On v1 only the hierarchies of the controllers Berth limits are
    /// joined (a new cpuset cgroup, say, has no CPUs until given some).
    pub fn join(&self, child: &str, pid: u32) -> Result<(), SandboxError> {
        let rel = self.rel.join(child);
        let mut dirs = match &self.cgroups.layout {
            Layout::V1 { .. } => ["cpu", "cpuacct", "memory", "pids"]
                .iter()
                .map(|c| self.cgroups.controller_dir(c, &rel))
                .collect(),
            Layout::V2 { root } => vec![root.join(&rel)],
        };
        dirs.sort();
        dirs.dedup();
        for dir in dirs {
            mkdir(&dir)?;
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// True while any hierarchy still has the task's cgroup.
    pub fn exists(&self) -> bool {
        self.cgroups.all_dirs(&self.rel).iter().any(|d| d.exists())
    }

    /// Removes the task's cgroup and its children from every hierarchy.
    /// A process still in one is killed first (it can only be the task's).
    pub fn remove(&self) -> Result<(), SandboxError> {
        for dir in self.cgroups.all_dirs(&self.rel) {
            remove_tree(&dir)?;
        }
        Ok(())
    }
}

fn remove_tree(dir: &Path) -> Result<(), SandboxError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(SandboxError::Cgroup {
                action: "listing".into(),
                path: dir.into(),
                source,
            });
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    for attempt in 0.. {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) if attempt >= 200 => {
                return Err(SandboxError::Cgroup {
                    action: "removing".into(),
                    path: dir.into(),
                    source,
                });
            }
            Err(_) => {
                kill_members(dir);
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    Ok(())
}

fn kill_members(dir: &Path) {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

pub(crate) fn write(path: &Path, value: &str) -> Result<(), SandboxError> {
    std::fs::write(path, value).map_err(|source| SandboxError::Cgroup {
        action: format!("writing {value:?}"),
        path: path.into(),
        source,
    })
}

pub(crate) fn read_u64(path: &Path) -> Result<u64, SandboxError> {
    let text = std::fs::read_to_string(path).map_err(|source| SandboxError::Cgroup {
        action: "reading".into(),
        path: path.into(),
        source,
    })?;
    text.trim().parse().map_err(|_| SandboxError::Cgroup {
        action: format!("parsing {:?}", text.trim()),
        path: path.into(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidData),
    })
}

/// The value of `key` in a flat-keyed file (`key value` lines).
pub(crate) fn read_key(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

pub(crate) fn mkdir(dir: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(dir).map_err(|source| SandboxError::Cgroup {
        action: "creating".into(),
        path: dir.into(),
        source,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 31 0:32 / /sys/fs/cgroup/pids rw,relatime shared:5 - cgroup cgroup rw,pids
36 31 0:33 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
37 31 0:34 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_is_v1_and_cleans_every_hierarchy() {
        let cg = Cgroups::from_mountinfo(HYBRID).unwrap();
        assert_eq!(cg.version(), CgroupVersion::V1);
        let dirs = cg.all_dirs(Path::new("berth/t"));
        assert_eq!(dirs.len(), 6);
        assert!(dirs.contains(&PathBuf::from("/sys/fs/cgroup/unified/berth/t")));
        assert!(dirs.contains(&PathBuf::from("/sys/fs/cgroup/systemd/berth/t")));
        assert_eq!(
            cg.controller_dir("pids", Path::new("x")),
            PathBuf::from("/sys/fs/cgroup/pids/x")
        );
    }

    #[test]
    fn unified_is_v2() {
        let cg = Cgroups::from_mountinfo(
            "29 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
        )
        .unwrap();
        assert_eq!(cg.version(), CgroupVersion::V2);
        let t = cg.task(&TaskId::new("abc").unwrap());
        assert_eq!(t.container_path("web"), PathBuf::from("/berth/abc/web"));
    }

    #[test]
    fn missing_controllers_is_an_error() {
        assert!(Cgroups::from_mountinfo("1 0 0:1 / / rw - ext4 /dev/vda rw\n").is_err());
    }

    #[test]
    fn quota_is_a_fraction_of_a_core() {
        let l = Limits {
            cpu_units: Some(256),
            ..Limits::default()
        };
        assert_eq!(l.cpu_quota_us(), Some(25_000));
        let l = Limits {
            cpu_units: Some(2048),
            ..Limits::default()
        };
        assert_eq!(l.cpu_quota_us(), Some(200_000));
    }
}
