//! The runtime's configuration (one serde struct, as in the config file).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the sandbox runtime keeps state and which binaries it uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Task state: one directory per task (bundles, writable layers, logs,
    /// exit records).
    pub tasks_dir: PathBuf,
    /// The OCI runtime's state root (`--root`).
    pub oci_root: PathBuf,
    /// Use this OCI runtime binary instead of probing for crun, then runc.
    pub oci_runtime: Option<PathBuf>,
    /// The `berth-shim` binary; by default `berth-shim` beside the running
    /// executable.
    pub shim: Option<PathBuf>,
    /// A static init binary mounted into containers with
    /// `initProcessEnabled` (Debian's `tini` package ships one).
    pub init: PathBuf,
    /// The process limit of a task (and of each of its containers) when
    /// the spec sets none.
    pub pids_limit: i64,
    /// The most bytes a container's `stdout.log` or `stderr.log` holds
    /// before it is rotated to `NAME.1` ([`crate::logcap`]); 0: no cap.
    pub log_file_max_bytes: u64,
}

/// The default cap of a container's output file: 64 MiB.
pub const DEFAULT_LOG_FILE_MAX_BYTES: u64 = 64 << 20;

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self::in_dir(Path::new("/var/lib/berth/runtime"))
    }
}

impl RuntimeConfig {
    /// Defaults with all state under `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            tasks_dir: dir.join("tasks"),
            oci_root: dir.join("oci"),
            oci_runtime: None,
            shim: None,
            init: PathBuf::from("/usr/bin/tini-static"),
            pids_limit: 1024,
            log_file_max_bytes: DEFAULT_LOG_FILE_MAX_BYTES,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_refused() {
        let ok: RuntimeConfig =
            serde_json::from_str(r#"{"ociRuntime": "/usr/sbin/runc", "pidsLimit": 64}"#).unwrap();
        assert_eq!(ok.pids_limit, 64);
        assert_eq!(ok.tasks_dir, RuntimeConfig::default().tasks_dir);
        assert!(serde_json::from_str::<RuntimeConfig>(r#"{"pidLimit": 64}"#).is_err());
    }
}
