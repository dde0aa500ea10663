//! What /proc and /sys/fs/cgroup say: memory, processes, mounts, task
//! cgroups.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// /proc/meminfo in bytes.
pub fn meminfo() -> HashMap<String, u64> {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let kib: u64 = v.split_whitespace().next()?.parse().ok()?;
            Some((k.to_owned(), kib * 1024))
        })
        .collect()
}

/// A process's resident and proportional set sizes in bytes
/// (/proc/PID/smaps_rollup).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mem {
    pub rss: u64,
    pub pss: u64,
}

impl std::ops::AddAssign for Mem {
    fn add_assign(&mut self, o: Self) {
        self.rss += o.rss;
        self.pss += o.pss;
    }
}

pub fn mem_of(pid: i32) -> Option<Mem> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.split_whitespace().next()).and_then(|v| v.parse::<u64>().ok()))
            .unwrap_or(0)
            * 1024
    };
    Some(Mem { rss: field("Rss:"), pss: field("Pss:") })
}

/// Every process whose `comm` is `comm` and whose command line contains
/// `needle`.
pub fn processes(comm: &str, needle: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
                && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

/// User + system CPU seconds a process has used.
pub fn cpu_seconds(pid: i32) -> Option<f64> {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// User + system CPU seconds one thread of this process has used.
pub fn thread_cpu_seconds(tid: i32) -> Option<f64> {
    stat_cpu_seconds(&format!("/proc/self/task/{tid}/stat"))
}

fn stat_cpu_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: state is field 3, utime 14, stime 15 (1-based).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let tick = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
    Some((utime + stime) / tick)
}

/// Overlay mounts whose mount point is under `dir`.
pub fn overlay_mounts_under(dir: &Path) -> Vec<PathBuf> {
    let ours = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" - overlay "))
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| m.starts_with(&ours))
        .map(PathBuf::from)
        .collect()
}

/// Mount points (of any kind) under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let ours = format!("{}/", dir.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| m.starts_with(&ours))
        .map(PathBuf::from)
        .collect()
}

/// The cgroup hierarchies a task cgroup can be in (v1 controllers and the
/// v2/unified tree).
const HIERARCHIES: &[&str] = &["memory", "cpu", "cpuacct", "pids", "blkio", "devices", "freezer", "cpuset", "systemd", "unified", ""];

/// Existing cgroup directories named `PARENT/NAME` in any hierarchy.
pub fn cgroups_named(parent: &str, name: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = HIERARCHIES
        .iter()
        .map(|h| Path::new("/sys/fs/cgroup").join(h).join(parent).join(name))
        .filter(|p| p.is_dir())
        .collect();
    found.dedup();
    found
}

/// The memory cgroup directory of Berth task `id` (v1 memory controller,
/// else v2).
pub fn task_memory_cgroup(id: &str) -> Option<PathBuf> {
    ["/sys/fs/cgroup/memory/berth", "/sys/fs/cgroup/berth", "/sys/fs/cgroup/unified/berth"]
        .iter()
        .map(|p| Path::new(p).join(id))
        .find(|p| p.join("cgroup.procs").exists())
}

/// Processes in cgroup `dir` and all its children.
pub fn cgroup_procs(dir: &Path) -> Vec<i32> {
    let mut pids: Vec<i32> = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(Result::ok) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(cgroup_procs(&e.path()));
            }
        }
    }
    pids
}

/// A number in a cgroup file, or in a `key value` line of one.
pub fn cgroup_value(dir: &Path, file: &str, key: Option<&str>) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    match key {
        None => text.trim().parse().ok(),
        Some(k) => text.lines().find_map(|l| l.strip_prefix(k)?.strip_prefix(' ')?.trim().parse().ok()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id() as i32;
        let mem = mem_of(me).unwrap();
        assert!(mem.rss > 0 && mem.pss > 0 && mem.pss <= mem.rss, "{mem:?}");
        assert!(cpu_seconds(me).unwrap() >= 0.0);
        assert!(meminfo()["MemTotal"] > 0);
    }
}
