//! What this host offers to tasks.

/// CPU units and MiB a node offers, after the host's reserve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCapacity {
    pub cpu: u32,
    pub memory: u32,
}

/// The host's CPUs (1024 units each) and memory, less a reserve for the
/// host itself: 10% of memory, at least 512 MiB. CPU is enforced as a
/// quota, so all of it is offered.
pub fn host_capacity() -> HostCapacity {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as u32;
    let total_mib = meminfo_total_kib().map_or(1024, |kib| (kib / 1024) as u32);
    let reserve = (total_mib / 10).max(512).min(total_mib / 2);
    HostCapacity { cpu: cpus * 1024, memory: total_mib - reserve }
}

fn meminfo_total_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_whole_cores_and_keeps_a_memory_reserve() {
        let c = host_capacity();
        assert!(c.cpu >= 1024 && c.cpu.is_multiple_of(1024), "{c:?}");
        let total = meminfo_total_kib().unwrap() / 1024;
        assert!(u64::from(c.memory) < total && u64::from(c.memory) >= total / 2, "{c:?} of {total}");
    }
}
