//! Docker's defaults for a container's privileges and filesystem.
//! Sources: moby `oci/caps/defaults.go` (capabilities), `oci/defaults.go`
//! (masked and read-only paths, mounts), runc `libcontainer/specconv`.

use oci_spec::runtime::{Capability, Mount, MountBuilder};

use crate::SandboxError;

/// Docker's default capability set, and nothing else.
pub const CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Every capability, for `cap_add: ["ALL"]` (Docker's meaning).
pub const ALL_CAPABILITIES: [Capability; 41] = [
    Capability::AuditControl,
    Capability::AuditRead,
    Capability::AuditWrite,
    Capability::BlockSuspend,
    Capability::Bpf,
    Capability::CheckpointRestore,
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::IpcLock,
    Capability::IpcOwner,
    Capability::Kill,
    Capability::Lease,
    Capability::LinuxImmutable,
    Capability::MacAdmin,
    Capability::MacOverride,
    Capability::Mknod,
    Capability::NetAdmin,
    Capability::NetBindService,
    Capability::NetBroadcast,
    Capability::NetRaw,
    Capability::Perfmon,
    Capability::Setgid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::Setuid,
    Capability::SysAdmin,
    Capability::SysBoot,
    Capability::SysChroot,
    Capability::SysModule,
    Capability::SysNice,
    Capability::SysPacct,
    Capability::SysPtrace,
    Capability::SysRawio,
    Capability::SysResource,
    Capability::SysTime,
    Capability::SysTtyConfig,
    Capability::Syslog,
    Capability::WakeAlarm,
];

/// Paths hidden from the container (Docker's list).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths the container sees read-only (Docker's list).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The open-files limit when the task definition sets none (Fargate's).
pub const DEFAULT_NOFILE: u64 = 65535;

/// [`DEFAULT_NOFILE`], or the agent's own hard limit if that is lower:
/// raising a hard limit needs CAP_SYS_RESOURCE, which the agent may lack.
pub fn default_nofile() -> u64 {
    use nix::sys::resource::{Resource, getrlimit};
    getrlimit(Resource::RLIMIT_NOFILE).map_or(DEFAULT_NOFILE, |(_, hard)| hard.min(DEFAULT_NOFILE))
}

/// `soft` and `hard` as this host can grant them: a hard limit above the
/// agent's own needs CAP_SYS_RESOURCE, which a host may withhold (a
/// nested container); then the agent's hard limit is the most a container
/// gets, rather than a start that fails with "operation not permitted".
pub fn within_host(typ: oci_spec::runtime::PosixRlimitType, soft: u64, hard: u64) -> (u64, u64) {
    use nix::sys::resource::{Resource, getrlimit};
    use oci_spec::runtime::PosixRlimitType as T;
    let resource = match typ {
        T::RlimitNofile => Resource::RLIMIT_NOFILE,
        T::RlimitNproc => Resource::RLIMIT_NPROC,
        T::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        T::RlimitStack => Resource::RLIMIT_STACK,
        T::RlimitCore => Resource::RLIMIT_CORE,
        _ => return (soft, hard),
    };
    if can_raise_limits() {
        return (soft, hard);
    }
    match getrlimit(resource) {
        Ok((_, own)) if own < hard => (soft.min(own), own),
        _ => (soft, hard),
    }
}

/// Whether this process holds CAP_SYS_RESOURCE (bit 24 of CapEff).
fn can_raise_limits() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

/// Where the init binary appears in a container (Docker's path).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// Docker's default mounts: proc, a /dev tmpfs, devpts, shm, mqueue, and
/// read-only sysfs and cgroup.
pub fn mounts() -> Result<Vec<Mount>, SandboxError> {
    let m = |dest: &str, typ: &str, source: &str, options: &[&str]| {
        MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(source)
            .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .build()
    };
    Ok(vec![
        m("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        m(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        m(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        m(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        m(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        m(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        m(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
    ])
}
