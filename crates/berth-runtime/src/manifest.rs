//! Files shared by the agent and the shim, and by one Berth and the next
//! across an upgrade (a task outlives the agent that started it): the task
//! manifest, the shim's pid, the exit, not-started and health records.
//! Written atomically (temp file, then rename).
//!
//! Formats, each held by a fixture written by the code before it
//! (`tests/fixtures/*-v0.*`, loaded by `tests/upgrade.rs`):
//! - `task.json`, the [`TaskManifest`], carries `formatVersion`
//!   ([`MANIFEST_FORMAT`]; absent in the files written before versioning,
//!   which read as 0). A newer version than this code knows is refused
//!   with [`RuntimeError::FormatTooNew`], never misread.
//! - `exit.json`, `not-started.json`, `health.json` (the boundary's
//!   `ContainerExit`, `NotStarted`, `Health` as JSON) and `shim.pid`
//!   (`"PID STARTTIME\n"`) are stable formats without a version: they
//!   only ever gain fields, which must be `#[serde(default)]`.
//!
//! Unknown fields are ignored in all of them on purpose, so that a file
//! with a field added by a later release of the same format version still
//! loads: one new field must never strand the running tasks.

use std::path::{Path, PathBuf};

use berth_runtime_api::{RuntimeError, TaskSpec};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::SandboxError;

/// The task manifest format this code writes, and the newest it reads.
/// 0: before versioning (no `formatVersion`); 1: `formatVersion` added.
pub const MANIFEST_FORMAT: u32 = 1;

/// What a task was started with; enough to supervise, stop and clean it
/// up from a fresh process, possibly of a later Berth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskManifest {
    /// The format of this file ([`MANIFEST_FORMAT`] when written here; 0
    /// when absent).
    #[serde(default)]
    pub format_version: u32,
    /// The spec.
    pub spec: TaskSpec,
    /// The OCI runtime binary.
    pub oci_runtime: PathBuf,
    /// The OCI runtime's state root (`--root`).
    pub oci_root: PathBuf,
    /// The cap of each container output file ([`crate::logcap`]); absent
    /// (older manifests) or 0: no cap.
    #[serde(default)]
    pub log_file_max_bytes: u64,
}

impl TaskManifest {
    /// A manifest in the current format.
    pub fn new(spec: TaskSpec, oci_runtime: PathBuf, oci_root: PathBuf) -> Self {
        Self {
            format_version: MANIFEST_FORMAT,
            spec,
            oci_runtime,
            oci_root,
            log_file_max_bytes: 0,
        }
    }

    /// Reads the manifest at `path`; `None` if there is none. The version
    /// is looked at before the rest, so a newer format is refused as such
    /// rather than failing (or succeeding) as a parse of fields it may
    /// have changed.
    pub fn read(path: &Path) -> Result<Option<Self>, SandboxError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Version {
            #[serde(default)]
            format_version: u32,
        }
        let Some(bytes) = read_bytes(path)? else {
            return Ok(None);
        };
        let parse_error = |source| SandboxError::State {
            path: path.into(),
            source,
        };
        let Version { format_version } = serde_json::from_slice(&bytes).map_err(parse_error)?;
        if format_version > MANIFEST_FORMAT {
            let task = path
                .parent()
                .and_then(Path::file_name)
                .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
            return Err(RuntimeError::FormatTooNew {
                task,
                found: format_version,
                supported: MANIFEST_FORMAT,
            }
            .into());
        }
        serde_json::from_slice(&bytes).map(Some).map_err(parse_error)
    }
}

/// Writes `value` as JSON to `path`, atomically, readable by its owner
/// only (0600): the task manifest holds the containers' environment,
/// secrets read from SSM and Secrets Manager included.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), SandboxError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| SandboxError::State {
        path: path.into(),
        source,
    })?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&bytes))
        .map_err(SandboxError::io("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(SandboxError::io("renaming", path))
}

/// Reads JSON from `path`; `None` if it does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, SandboxError> {
    let Some(bytes) = read_bytes(path)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| SandboxError::State {
            path: path.into(),
            source,
        })
}

/// The file's bytes; `None` if it does not exist.
fn read_bytes(path: &Path) -> Result<Option<Vec<u8>>, SandboxError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SandboxError::io("reading", path)(e)),
    }
}

/// A process identity that survives pid reuse: pid and start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessId {
    /// pid.
    pub pid: i32,
    /// Start time in clock ticks after boot (field 22 of /proc/PID/stat).
    pub start_time: u64,
}

impl ProcessId {
    /// The identity of a running process.
    pub fn of(pid: i32) -> Option<Self> {
        start_time(pid).map(|start_time| Self { pid, start_time })
    }

    /// True while this very process exists (and is not a zombie).
    pub fn is_alive(&self) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            return false;
        };
        let fields: Vec<&str> = after.split(' ').collect();
        fields.first() != Some(&"Z")
            && fields.get(19).and_then(|s| s.parse().ok()) == Some(self.start_time)
    }

    /// Writes `pid start_time` to `path`.
    pub fn write(&self, path: &Path) -> Result<(), SandboxError> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{} {}\n", self.pid, self.start_time))
            .map_err(SandboxError::io("writing", &tmp))?;
        std::fs::rename(&tmp, path).map_err(SandboxError::io("renaming", path))
    }

    /// Reads what [`write`](Self::write) wrote.
    pub fn read(path: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(path).ok()?;
        let (pid, start) = text.trim().split_once(' ')?;
        Some(Self {
            pid: pid.parse().ok()?,
            start_time: start.parse().ok()?,
        })
    }
}

fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: skip past the last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_survives_a_round_trip() {
        let me = ProcessId::of(std::process::id() as i32).unwrap();
        assert!(me.is_alive());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pid");
        me.write(&path).unwrap();
        assert_eq!(ProcessId::read(&path), Some(me));
        let other = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other.is_alive());
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    /// `json` as `<dir>/TASK/task.json`, read back.
    fn read_as_manifest(json: &serde_json::Value) -> Result<Option<TaskManifest>, SandboxError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t1").join("task.json");
        std::fs::create_dir(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_vec(json).unwrap()).unwrap();
        TaskManifest::read(&path)
    }

    fn v0() -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(fixture("task-manifest-v0.json")).unwrap()).unwrap()
    }

    #[test]
    fn a_manifest_from_before_versioning_loads_as_version_0() {
        let m = TaskManifest::read(&fixture("task-manifest-v0.json"))
            .unwrap()
            .unwrap();
        assert_eq!(m.format_version, 0);
        assert_eq!(m.oci_runtime, Path::new("/usr/sbin/runc"));
        assert_eq!(m.oci_root, Path::new("/var/lib/berth/runtime/oci"));
        let spec = &m.spec;
        assert_eq!(spec.task_id.as_str(), "0f3c9a7e5b2d4c1a8e6f7a9b0c1d2e3f");
        assert_eq!(spec.netns.as_deref(), Some(Path::new("/run/netns/berth-0f3c9a7e5b2d")));
        assert_eq!((spec.cpu, spec.memory_mib, spec.pids_limit), (Some(512), Some(1024), Some(512)));
        let names: Vec<_> = spec.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["web", "log-router"]);
        let (web, router) = (&spec.containers[0], &spec.containers[1]);
        assert!(web.essential && !router.essential);
        assert_eq!(web.layers.len(), 2);
        assert_eq!(web.environment["PORT"], "8080");
        assert_eq!(web.user(), Some("nginx:nginx"));
        assert_eq!(web.ulimits[0].hard_limit, 8192);
        assert_eq!(web.mounts[0].destination, "/etc/resolv.conf");
        assert!(web.mounts[0].read_only);
        assert_eq!(web.stop_timeout(), std::time::Duration::from_secs(10));
        let hc = web.health_check.as_ref().unwrap();
        assert_eq!((hc.retries, hc.timeout), (2, std::time::Duration::from_millis(2500)));
        assert_eq!(router.depends_on[0].container, "web");
        assert_eq!(router.depends_on[0].condition, berth_runtime_api::Condition::Healthy);
        assert_eq!(router.args().unwrap(), ["/bin/busybox", "sleep", "1000"]);
        assert!(router.init_process_enabled && router.readonly_root_filesystem);
        spec.validate().unwrap();
    }

    #[test]
    fn manifests_are_written_in_the_current_format_and_read_back() {
        let old = TaskManifest::read(&fixture("task-manifest-v0.json"))
            .unwrap()
            .unwrap();
        let m = TaskManifest::new(old.spec, old.oci_runtime, old.oci_root);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("task.json");
        write_json(&path, &m).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["formatVersion"], MANIFEST_FORMAT);
        // Version 1 is version 0 plus the version and fields read with a
        // default when absent: nothing else moved.
        assert_eq!(json["logFileMaxBytes"], 0);
        let mut without = json.clone();
        without.as_object_mut().unwrap().remove("formatVersion");
        without.as_object_mut().unwrap().remove("logFileMaxBytes");
        assert_eq!(without, v0());
        assert_eq!(TaskManifest::read(&path).unwrap(), Some(m));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut json = v0();
        json["formatVersion"] = MANIFEST_FORMAT.into();
        json["runtimeKind"] = "sandbox".into();
        json["spec"]["ephemeralStorageGib"] = 21.into();
        json["spec"]["containers"][0]["secrets"] = serde_json::json!([{"name": "A"}]);
        json["spec"]["containers"][0]["healthCheck"]["startInterval"] = serde_json::json!({"secs": 1, "nanos": 0});
        let m = read_as_manifest(&json).unwrap().unwrap();
        assert_eq!(m.format_version, MANIFEST_FORMAT);
        assert_eq!(m.spec.containers.len(), 2);
    }

    #[test]
    fn a_newer_format_is_refused_not_misread() {
        let mut json = v0();
        json["formatVersion"] = (MANIFEST_FORMAT + 1).into();
        // Even one this code could parse: a newer format may mean other things.
        let err = read_as_manifest(&json).unwrap_err();
        match RuntimeError::from(err) {
            RuntimeError::FormatTooNew { task, found, supported } => {
                assert_eq!((task.as_str(), found, supported), ("t1", MANIFEST_FORMAT + 1, MANIFEST_FORMAT));
            }
            other => panic!("expected FormatTooNew, got {other:?}"),
        }
        // And one it could not: still the version, not a parse error.
        let err = read_as_manifest(&serde_json::json!({"formatVersion": 9, "spec": "elsewhere"})).unwrap_err();
        assert!(err.to_string().contains("format 9 is newer"), "{err}");
    }

    #[test]
    fn the_shims_records_from_before_still_load() {
        use berth_runtime_api::{ContainerExit, Health, HealthStatus, NotStarted};
        let exit: ContainerExit = read_json(&fixture("exit-v0.json")).unwrap().unwrap();
        assert_eq!((exit.exit_code, exit.signal, exit.oom_killed), (137, Some(9), true));
        assert_eq!(
            exit.finished_at,
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::new(1_796_000_000, 123_456_789)
        );
        assert_eq!(exit.reason(), Some(berth_runtime_api::OOM_REASON));
        let health: Health = read_json(&fixture("health-v0.json")).unwrap().unwrap();
        assert_eq!(
            health,
            Health {
                status: HealthStatus::Unhealthy,
                failing_streak: 3,
                checks: 7,
                last_exit_code: Some(1),
            }
        );
        let never: NotStarted = read_json(&fixture("not-started-v0.json")).unwrap().unwrap();
        assert!(never.reason.starts_with("CannotStartContainerError: "));
        assert_eq!(
            ProcessId::read(&fixture("shim-v0.pid")),
            Some(ProcessId {
                pid: 4242,
                start_time: 987_654
            })
        );
        // What the shim writes now reads as the fixtures do (same bytes).
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("exit-v0.json", serde_json::to_vec_pretty(&exit).unwrap()),
            ("health-v0.json", serde_json::to_vec_pretty(&health).unwrap()),
            ("not-started-v0.json", serde_json::to_vec_pretty(&never).unwrap()),
        ] {
            assert_eq!(bytes, std::fs::read(fixture(name)).unwrap(), "{name}");
        }
        let pid = dir.path().join("shim.pid");
        ProcessId { pid: 4242, start_time: 987_654 }.write(&pid).unwrap();
        assert_eq!(std::fs::read(&pid).unwrap(), std::fs::read(fixture("shim-v0.pid")).unwrap());
    }
}
