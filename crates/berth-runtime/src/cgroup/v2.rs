//! cgroup v2 files.

use std::path::Path;

use super::{BERTH_CGROUP, CPU_PERIOD_US, Limits, mkdir, read_key, read_u64, write};
use crate::SandboxError;
use berth_runtime_api::Usage;

const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// Lets children of `dir` use the controllers Berth limits.
fn delegate(dir: &Path) -> Result<(), SandboxError> {
    let available = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let enable: Vec<String> = CONTROLLERS
        .iter()
        .filter(|c| available.split_whitespace().any(|a| a == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if enable.is_empty() {
        return Ok(());
    }
    write(&dir.join("cgroup.subtree_control"), &enable.join(" "))
}

pub(super) fn create(root: &Path, rel: &Path, limits: &Limits) -> Result<(), SandboxError> {
    delegate(root)?;
    let berth = root.join(BERTH_CGROUP);
    mkdir(&berth)?;
    delegate(&berth)?;
    let dir = root.join(rel);
    mkdir(&dir)?;
    if let Some(quota) = limits.cpu_quota_us() {
        write(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?;
    }
    if let Some(bytes) = limits.memory_bytes {
        write(&dir.join("memory.max"), &bytes.to_string())?;
        let swap = dir.join("memory.swap.max");
        if swap.exists() {
            write(&swap, "0")?;
        }
    }
    if let Some(max) = limits.pids {
        write(&dir.join("pids.max"), &max.to_string())?;
    }
    delegate(&dir)
}

pub(super) fn usage(dir: &Path) -> Result<Usage, SandboxError> {
    let stat = dir.join("cpu.stat");
    let usec = read_key(&stat, "usage_usec").ok_or_else(|| SandboxError::Cgroup {
        action: "reading usage_usec".into(),
        path: stat.clone(),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    })?;
    Ok(Usage {
        cpu_ns: usec * 1000,
        memory_bytes: read_u64(&dir.join("memory.current"))?,
        memory_peak_bytes: read_u64(&dir.join("memory.peak")).ok(),
    })
}

pub(super) fn oom_kills(dir: &Path) -> u64 {
    read_key(&dir.join("memory.events"), "oom_kill").unwrap_or(0)
}
