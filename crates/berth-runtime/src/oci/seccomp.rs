//! The default seccomp profile: Docker's semantics, an allow-list with
//! `SCMP_ACT_ERRNO` (EPERM) for everything else.
//!
//! The lists below follow moby's `profiles/seccomp/default.json` (the
//! profile Docker and containerd apply by default) as it applies to a
//! container with Docker's default capabilities: the unconditional
//! allow-list, `personality` limited to the same arguments, the x86
//! `arch_prctl`/`modify_ldt`, `clone` without namespace flags (no
//! CAP_SYS_ADMIN), `clone3` answered with ENOSYS so libc falls back to
//! `clone`, and `chroot` (CAP_SYS_CHROOT is in the default set). Names the
//! runtime's libseccomp does not know are skipped by the runtime.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

use crate::SandboxError;

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// The namespace flags `clone` may not carry without CAP_SYS_ADMIN:
/// CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID
/// | CLONE_NEWNET | CLONE_NEWCGROUP (moby's 2114060288).
const CLONE_NS_FLAGS: u64 = 0x7E02_0000;

/// `personality` values Docker allows: PER_LINUX, PER_LINUX32,
/// UNAME26, UNAME26|PER_LINUX32, and the query 0xffffffff.
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Syscalls allowed unconditionally.
#[rustfmt::skip]
pub const ALLOWED: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget", "capset", "chdir",
    "chmod", "chown", "chown32", "chroot", "clock_adjtime", "clock_adjtime64", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close",
    "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd",
    "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64",
    "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
    "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr",
    "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex",
    "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "futimesat", "getcpu", "getcwd",
    "getdents", "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid",
    "getuid32", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel",
    "ioctl", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set",
    "io_setup", "io_submit", "ipc", "kcmp", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr",
    "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise",
    "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod",
    "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap",
    "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at",
    "nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2", "pause", "pidfd_open",
    "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll",
    "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "process_vm_readv",
    "process_vm_writev", "pselect6", "pselect6_time64", "ptrace", "pwrite64", "pwritev", "pwritev2", "read",
    "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
    "remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop", "semtimedop",
    "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid",
    "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
    "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32",
    "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area",
    "set_tid_address", "setuid", "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown",
    "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socket", "socketcall", "socketpair",
    "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
    "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
    "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
    "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes",
    "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write", "writev",
];

/// Allowed on x86 only.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const ARCH_ALLOWED: &[&str] = &["arch_prctl", "modify_ldt"];
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
const ARCH_ALLOWED: &[&str] = &[];

#[cfg(target_arch = "x86_64")]
const ARCHES: &[Arch] = &[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32];
#[cfg(target_arch = "aarch64")]
const ARCHES: &[Arch] = &[Arch::ScmpArchAarch64, Arch::ScmpArchArm];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCHES: &[Arch] = &[Arch::ScmpArchNative];

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn allow(list: &[&str]) -> Result<LinuxSyscall, SandboxError> {
    Ok(LinuxSyscallBuilder::default()
        .names(names(list))
        .action(LinuxSeccompAction::ScmpActAllow)
        .build()?)
}

/// The profile.
pub fn profile() -> Result<LinuxSeccomp, SandboxError> {
    let mut syscalls = vec![allow(ALLOWED)?];
    if !ARCH_ALLOWED.is_empty() {
        syscalls.push(allow(ARCH_ALLOWED)?);
    }
    for value in PERSONALITIES {
        let arg = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(value)
            .op(LinuxSeccompOperator::ScmpCmpEq)
            .build()?;
        syscalls.push(
            LinuxSyscallBuilder::default()
                .names(names(&["personality"]))
                .action(LinuxSeccompAction::ScmpActAllow)
                .args(vec![arg])
                .build()?,
        );
    }
    // On s390 clone's flags are the second argument; everywhere Berth runs
    // they are the first.
    let no_ns = LinuxSeccompArgBuilder::default()
        .index(0usize)
        .value(CLONE_NS_FLAGS)
        .value_two(0u64)
        .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
        .build()?;
    syscalls.push(
        LinuxSyscallBuilder::default()
            .names(names(&["clone"]))
            .action(LinuxSeccompAction::ScmpActAllow)
            .args(vec![no_ns])
            .build()?,
    );
    syscalls.push(
        LinuxSyscallBuilder::default()
            .names(names(&["clone3"]))
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(ENOSYS)
            .build()?,
    );
    Ok(LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(EPERM)
        .architectures(ARCHES.to_vec())
        .syscalls(syscalls)
        .build()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn allow_list_with_eperm_default() {
        let p = profile().unwrap();
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(EPERM));
        let all: Vec<&String> = p
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .flat_map(|s| s.names())
            .collect();
        for denied in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "reboot",
            "kexec_load",
            "init_module",
            "bpf",
            "keyctl",
        ] {
            assert!(
                !all.iter().any(|n| *n == denied),
                "{denied} must not be allowed"
            );
        }
        for allowed in ["read", "execve", "clone", "wait4"] {
            assert!(
                all.iter().any(|n| *n == allowed),
                "{allowed} must be allowed"
            );
        }
    }

    #[test]
    fn masked_eq_uses_mask_then_value() {
        let json = serde_json::to_value(profile().unwrap()).unwrap();
        let clone = json["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["names"][0] == "clone")
            .unwrap();
        assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(clone["args"][0]["value"], 2114060288u64);
        assert_eq!(clone["args"][0]["valueTwo"], 0);
    }
}
