//! The machine a run measured, read from /proc and the tools' versions.

use std::process::Command;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub kernel: String,
    pub memory_gib: f64,
    pub os: String,
    pub cgroups: String,
    pub oci_runtime: String,
    /// Load average when the run began (other work on the machine skews figures).
    pub loadavg: String,
}

impl Machine {
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_owned()))
            .unwrap_or_else(|| "unknown".into());
        let cores = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
        let kernel = read_trim("/proc/sys/kernel/osrelease");
        let memory_gib = crate::procfs::meminfo().get("MemTotal").copied().unwrap_or(0) as f64 / (1024.0 * 1024.0 * 1024.0);
        let os = std::fs::read_to_string("/etc/os-release")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_owned()))
            .unwrap_or_else(|| "unknown".into());
        let debian = read_trim("/etc/debian_version");
        let os = if debian.is_empty() { os } else { format!("{os} ({debian})") };
        let cgroups = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            "v2".to_owned()
        } else if std::path::Path::new("/sys/fs/cgroup/unified").exists() {
            "v1 (hybrid)".to_owned()
        } else {
            "v1".to_owned()
        };
        Self {
            cpu_model,
            cores,
            kernel,
            memory_gib,
            os,
            cgroups,
            oci_runtime: version("runc", &["--version"]),
            loadavg: read_trim("/proc/loadavg"),
        }
    }

    pub fn one_line(&self) -> String {
        format!(
            "{} × {} cores, {:.1} GiB, kernel {}, {}, cgroups {}, {}; load average at start {}",
            self.cpu_model, self.cores, self.memory_gib, self.kernel, self.os, self.cgroups, self.oci_runtime, self.loadavg
        )
    }
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default().trim().to_owned()
}

/// The first line of `BIN ARGS`, or "BIN: not found".
pub fn version(bin: &str, args: &[&str]) -> String {
    match Command::new(bin).args(args).output() {
        Ok(out) if out.status.success() => {
            String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().trim().to_owned()
        }
        _ => format!("{bin}: not found"),
    }
}
