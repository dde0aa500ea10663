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
