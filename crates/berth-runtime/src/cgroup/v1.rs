//! cgroup v1 files.

use std::path::Path;

use super::{CPU_PERIOD_US, Limits, mkdir, read_key, read_u64, write};
use crate::SandboxError;
use berth_runtime_api::Usage;

pub(super) fn create(
    cpu: &Path,
    cpuacct: &Path,
    memory: &Path,
    pids: &Path,
    limits: &Limits,
) -> Result<(), SandboxError> {
    for dir in [cpu, cpuacct, memory, pids] {
        mkdir(dir)?;
    }
    if let Some(quota) = limits.cpu_quota_us() {
        write(&cpu.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
        write(&cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
    }
    if let Some(bytes) = limits.memory_bytes {
        write(&memory.join("memory.limit_in_bytes"), &bytes.to_string())?;
        // Without swap accounting (no memsw files) there is nothing to cap.
        let memsw = memory.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            write(&memsw, &bytes.to_string())?;
        }
    }
    if let Some(max) = limits.pids {
        write(&pids.join("pids.max"), &max.to_string())?;
    }
    Ok(())
}

pub(super) fn usage(cpuacct: &Path, memory: &Path) -> Result<Usage, SandboxError> {
    Ok(Usage {
        cpu_ns: read_u64(&cpuacct.join("cpuacct.usage"))?,
        memory_bytes: read_u64(&memory.join("memory.usage_in_bytes"))?,
        memory_peak_bytes: read_u64(&memory.join("memory.max_usage_in_bytes")).ok(),
    })
}

pub(super) fn oom_kills(memory: &Path) -> u64 {
    read_key(&memory.join("memory.oom_control"), "oom_kill").unwrap_or(0)
}
