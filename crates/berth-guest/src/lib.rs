//! The micro-VM guest agent and what it and the host agree on.
//!
//! The `berth-guest` binary is the `/init` of every micro-VM's initramfs
//! (built statically: `-C target-feature=+crt-static`). This library is
//! the protocol between it and the host's `berth-microvm` runtime, over
//! virtio-serial ports (see [`ports`]):
//!
//! - host → guest, port [`ports::CONTROL`]: one line of JSON, the
//!   [`GuestTask`]; then [`STOP`] lines.
//! - guest → host, port [`ports::EVENTS`]: JSON lines of [`Event`]s,
//!   appended by QEMU to a file in the task's directory.
//! - per container, ports `<n>.out` / `<n>.err` (see [`ports::stdout`]):
//!   the container's raw stdout and stderr, which QEMU appends to the
//!   container's `stdout.log` / `stderr.log`, the files the sandbox
//!   runtime writes too.
//!
//! The task arrives after boot, over the control port, rather than in the
//! initramfs or the kernel command line: a booted, idle guest does not
//! depend on its task, so a later snapshot/restore start (one booted guest
//! saved per kernel, restored per task) needs no change here.
//!
//! Both sides ignore unknown fields; fields added later must be
//! `#[serde(default)]` ([`GUEST_FORMAT`] is bumped when a change is not
//! additive, and the guest refuses a task of a newer format).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// The protocol version this code speaks.
pub const GUEST_FORMAT: u32 = 1;

/// The control-port line that asks the guest to stop its task (SIGTERM
/// to every container).
pub const STOP: &str = "stop";

/// The control-port line `kill NAME`: SIGKILL container NAME now. The host
/// sends it once the container's stopTimeout has passed on the host's
/// clock: a guest's clock under an emulator (TCG) can run fast, so the
/// guest's own timer is only a backstop ([`KILL_BACKSTOP`]).
pub const KILL: &str = "kill";

/// How long after twice its stopTimeout the guest kills a container the
/// host did not (a host that went away).
pub const KILL_BACKSTOP: std::time::Duration = std::time::Duration::from_secs(5);

/// The kernel command-line word that makes the guest power off as soon as
/// it has booted (the KVM probe boot).
pub const PROBE_ARG: &str = "berth.probe=1";

/// The virtio-serial port names.
pub mod ports {
    /// Host → guest: the task, then stop requests.
    pub const CONTROL: &str = "berth.control";
    /// Guest → host: [`Event`](crate::Event) lines.
    pub const EVENTS: &str = "berth.events";

    /// The port of container number `index`'s stdout.
    pub fn stdout(index: usize) -> String {
        format!("berth.{index}.out")
    }

    /// The port of container number `index`'s stderr.
    pub fn stderr(index: usize) -> String {
        format!("berth.{index}.err")
    }
}

/// The virtio-blk serial of the task's writable disk.
pub const RW_DISK: &str = "berth-rw";

/// The virtio-blk serial of image disk number `index`.
pub fn image_disk(index: usize) -> String {
    format!("berth-img{index}")
}

/// What the guest runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestTask {
    /// [`GUEST_FORMAT`] of the writer.
    pub format_version: u32,
    /// The task id (for messages).
    pub task_id: String,
    /// The guest's hostname.
    pub hostname: String,
    /// The task's memory in MiB: the limit of all containers together.
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// The task's interface (`None`: the guest has only loopback).
    #[serde(default)]
    pub network: Option<GuestNetwork>,
    /// Files written into every container's root (`/etc/hosts`, ...).
    #[serde(default)]
    pub files: Vec<GuestFile>,
    /// The containers, started in this order.
    pub containers: Vec<GuestContainer>,
}

/// The guest's `eth0`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestNetwork {
    /// The task's address.
    pub ip: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
    /// The default gateway.
    pub gateway: Option<Ipv4Addr>,
}

/// A file given to every container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestFile {
    /// Absolute path inside the container.
    pub path: String,
    /// Its contents.
    pub contents: String,
}

/// One container: a process tree in its own mount and PID namespaces,
/// with an overlay root on its image disk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestContainer {
    /// The container's name.
    pub name: String,
    /// The image disk its root filesystem is ([`image_disk`] index).
    pub image: usize,
    /// argv.
    pub args: Vec<String>,
    /// `KEY=value` pairs.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// `uid`, `uid:gid`, `name` or `name:group`, resolved in its root.
    #[serde(default)]
    pub user: Option<String>,
    /// Its exit ends the task.
    pub essential: bool,
    /// Time between SIGTERM and SIGKILL on stop, in milliseconds.
    pub stop_timeout_ms: u64,
    /// Hard memory limit in MiB.
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// The root filesystem is read-only.
    #[serde(default)]
    pub readonly_root: bool,
}

/// What the guest reports, one JSON line each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Event {
    /// `/init` runs (the kernel's release, and ms since the guest booted).
    #[serde(rename_all = "camelCase")]
    Booted {
        /// `uname -r`.
        kernel: String,
        /// CLOCK_BOOTTIME at /init, in ms.
        uptime_ms: u64,
    },
    /// A container's process runs.
    #[serde(rename_all = "camelCase")]
    Started {
        /// Its name.
        container: String,
        /// Its pid in the guest.
        pid: i32,
    },
    /// A container's process ended.
    #[serde(rename_all = "camelCase")]
    Exited {
        /// Its name.
        container: String,
        /// Docker-style: `128 + signal` when killed.
        exit_code: i32,
        /// The signal that killed it.
        signal: Option<i32>,
        /// The OOM killer killed a process of it.
        oom_killed: bool,
        /// Unix time in ms (the guest's clock, set from the host's at boot).
        finished_at_ms: u64,
    },
    /// A container will never start.
    #[serde(rename_all = "camelCase")]
    NotStarted {
        /// Its name.
        container: String,
        /// ECS-style reason.
        reason: String,
    },
    /// The task could not be set up at all (disks, network, a bad task).
    #[serde(rename_all = "camelCase")]
    Failed {
        /// Why.
        reason: String,
    },
    /// Every container is done; the guest powers off now.
    PowerOff,
}

impl Event {
    /// Parses an events file: every complete line that is an event (a torn
    /// last line, written as the VM died, is skipped).
    pub fn parse_all(text: &str) -> Vec<Self> {
        text.lines()
            .filter_map(|l| serde_json::from_str(l.trim()).ok())
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn events_are_json_lines_with_a_tag() {
        let e = Event::Exited {
            container: "app".into(),
            exit_code: 137,
            signal: Some(9),
            oom_killed: true,
            finished_at_ms: 5,
        };
        let line = serde_json::to_string(&e).unwrap();
        assert!(line.starts_with(r#"{"event":"exited","container":"app","exitCode":137"#), "{line}");
        let text = format!("{line}\n{{\"event\":\"powerOff\"}}\n{{\"event\":\"sta");
        assert_eq!(Event::parse_all(&text), vec![e, Event::PowerOff]);
    }

    #[test]
    fn a_task_ignores_unknown_fields() {
        let t: GuestTask = serde_json::from_str(
            r#"{"formatVersion":1,"taskId":"t","hostname":"h","containers":[],"later":true}"#,
        )
        .unwrap();
        assert_eq!(t.memory_mib, None);
        assert!(t.files.is_empty());
    }
}
