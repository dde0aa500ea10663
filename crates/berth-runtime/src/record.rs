//! Files shared by the agent and the shim: the task record, the shim's
//! pid, exit records. Written atomically (temp file, then rename).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::RuntimeError;
use crate::spec::TaskSpec;

/// What a task was started with; enough to supervise, stop and clean it
/// up from a fresh process.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskRecord {
    /// The spec.
    pub spec: TaskSpec,
    /// The OCI runtime binary.
    pub oci_runtime: PathBuf,
    /// The OCI runtime's state root (`--root`).
    pub oci_root: PathBuf,
}

/// Writes `value` as JSON to `path`, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), RuntimeError> {
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| RuntimeError::State {
        path: path.into(),
        source,
    })?;
    std::fs::write(&tmp, bytes).map_err(RuntimeError::io("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(RuntimeError::io("renaming", path))
}

/// Reads JSON from `path`; `None` if it does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, RuntimeError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| RuntimeError::State {
                    path: path.into(),
                    source,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RuntimeError::io("reading", path)(e)),
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
    pub fn write(&self, path: &Path) -> Result<(), RuntimeError> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{} {}\n", self.pid, self.start_time))
            .map_err(RuntimeError::io("writing", &tmp))?;
        std::fs::rename(&tmp, path).map_err(RuntimeError::io("renaming", path))
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
}

/// Writes the task record exactly as this code writes it, as the fixture
/// later versions must still read (`cargo test -p berth-runtime --lib
/// write_v0_fixture -- --ignored`).
#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod fixture {
    use std::time::Duration;

    use super::*;
    use crate::spec::{
        BindMount, Condition, ContainerSpec, Dependency, HealthCheck, ImageConfig, TaskId, Ulimit,
    };

    #[test]
    #[ignore = "writes the v0 fixture; run once before the format changes"]
    fn write_v0_fixture() {
        let image = ImageConfig {
            env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".into(), "LANG=C.UTF-8".into()],
            entrypoint: Some(vec!["/docker-entrypoint.sh".into()]),
            cmd: Some(vec!["nginx".into(), "-g".into(), "daemon off;".into()]),
            working_dir: Some("/srv".into()),
            user: Some("101".into()),
        };
        let layers = vec![
            PathBuf::from("/var/lib/berth/images/layers/sha256-1111111111111111111111111111111111111111111111111111111111111111"),
            PathBuf::from("/var/lib/berth/images/layers/sha256-2222222222222222222222222222222222222222222222222222222222222222"),
        ];
        let mut web = ContainerSpec::new("web", layers.clone(), image.clone());
        web.environment.insert("MODE".into(), "production".into());
        web.environment.insert("PORT".into(), "8080".into());
        web.user = Some("nginx:nginx".into());
        web.ulimits = vec![Ulimit {
            name: "nofile".into(),
            soft_limit: 4096,
            hard_limit: 8192,
        }];
        web.stop_timeout = Some(Duration::from_secs(10));
        web.cpu = Some(256);
        web.memory_mib = Some(384);
        web.memory_reservation_mib = Some(128);
        web.mounts = vec![
            BindMount {
                source: "/var/lib/berth/network/tasks/0f3c9a7e5b2d4c1a8e6f7a9b0c1d2e3f/resolv.conf".into(),
                destination: "/etc/resolv.conf".into(),
                read_only: true,
            },
            BindMount {
                source: "/var/lib/berth/volumes/data".into(),
                destination: "/data".into(),
                read_only: false,
            },
        ];
        web.health_check = Some(HealthCheck {
            command: vec!["/bin/sh".into(), "-c".into(), "wget -q -O- http://localhost:8080/".into()],
            interval: Duration::from_secs(5),
            timeout: Duration::from_millis(2500),
            retries: 2,
            start_period: Duration::from_secs(1),
        });
        web.start_timeout = Some(Duration::from_secs(60));
        let mut sidecar = ContainerSpec::new("log-router", layers, ImageConfig::default());
        sidecar.command = Some(vec!["sleep".into(), "1000".into()]);
        sidecar.entry_point = Some(vec!["/bin/busybox".into()]);
        sidecar.essential = false;
        sidecar.init_process_enabled = true;
        sidecar.readonly_root_filesystem = true;
        sidecar.working_directory = Some("/tmp".into());
        sidecar.depends_on = vec![Dependency {
            container: "web".into(),
            condition: Condition::Healthy,
        }];
        let mut spec = TaskSpec::new(
            TaskId::new("0f3c9a7e5b2d4c1a8e6f7a9b0c1d2e3f").unwrap(),
            vec![web, sidecar],
        );
        spec.cpu = Some(512);
        spec.memory_mib = Some(1024);
        spec.pids_limit = Some(512);
        spec.netns = Some("/run/netns/berth-0f3c9a7e5b2d".into());
        spec.hostname = Some("ip-10-0-1-17".into());
        let record = TaskRecord {
            spec,
            oci_runtime: "/usr/sbin/runc".into(),
            oci_root: "/var/lib/berth/runtime/oci".into(),
        };
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        std::fs::create_dir_all(&dir).unwrap();
        write_json(&dir.join("task-manifest-v0.json"), &record).unwrap();
        // The shim's other records, as it writes them today.
        use crate::status::{ContainerExit, Health, HealthStatus, NotStarted};
        let finished_at = std::time::SystemTime::UNIX_EPOCH + Duration::new(1_796_000_000, 123_456_789);
        let exit = ContainerExit {
            exit_code: 137,
            signal: Some(9),
            oom_killed: true,
            finished_at,
        };
        write_json(&dir.join("exit-v0.json"), &exit).unwrap();
        let not_started = NotStarted {
            reason: "CannotStartContainerError: the task was stopped before the container started".into(),
        };
        write_json(&dir.join("not-started-v0.json"), &not_started).unwrap();
        let health = Health {
            status: HealthStatus::Unhealthy,
            failing_streak: 3,
            checks: 7,
            last_exit_code: Some(1),
        };
        write_json(&dir.join("health-v0.json"), &health).unwrap();
        ProcessId {
            pid: 4242,
            start_time: 987_654,
        }
        .write(&dir.join("shim-v0.pid"))
        .unwrap();
    }
}
