//! The crate's error type for everything that touches the kernel.
//!
//! Pure parsing has its own [`SubnetError`](crate::SubnetError), which is
//! what an API handler wants to show a user.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::SubnetError;

/// Everything that can go wrong creating or releasing bridges, network
/// namespaces, veths and firewall rules.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A name Berth would give a kernel object is not valid.
    #[error("invalid {what} {name:?}: {reason}")]
    InvalidName {
        /// What the name is for (`bridge`, `task id`, `nft table`).
        what: &'static str,
        /// The name.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A subnet is not valid.
    #[error(transparent)]
    Subnet(#[from] SubnetError),
    /// An address cannot be a task's in its subnet.
    #[error("{ip} cannot be a task's address in {subnet}: {reason}")]
    InvalidAddress {
        /// The address.
        ip: Ipv4Addr,
        /// The subnet.
        subnet: crate::Subnet,
        /// Why not.
        reason: &'static str,
    },
    /// A netlink socket could not be opened.
    #[error("opening a netlink socket")]
    NetlinkSocket(#[source] std::io::Error),
    /// A netlink request failed.
    #[error("netlink: {action}")]
    Netlink {
        /// What was being done, naming the object.
        action: String,
        /// The kernel's (or the netlink library's) error.
        #[source]
        source: rtnetlink::Error,
    },
    /// A link Berth expected is missing.
    #[error("no link named {name}")]
    NoSuchLink {
        /// The link's name.
        name: String,
    },
    /// A link with a bridge's name exists but is not a bridge.
    #[error("{name} exists and is not a bridge")]
    NotABridge {
        /// The link's name.
        name: String,
    },
    /// `remove_bridge` on a bridge that still has ports.
    #[error("bridge {name} is in use by {ports:?}")]
    BridgeInUse {
        /// The bridge.
        name: String,
        /// Its ports.
        ports: Vec<String>,
    },
    /// The task already has a network namespace on this host.
    #[error("task {task_id} is already attached ({path} exists)")]
    AlreadyAttached {
        /// The task.
        task_id: String,
        /// Its network namespace file.
        path: PathBuf,
    },
    /// A namespace, mount or unmount system call failed.
    #[error("{action} {path}")]
    Namespace {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: nix::Error,
    },
    /// A file operation failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A helper thread died before answering (a bug, or out of threads).
    #[error("{0} thread panicked or could not start")]
    Thread(&'static str),
    /// `nft` could not be run.
    #[error("running {program}")]
    NftSpawn {
        /// The program.
        program: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `nft` refused a ruleset.
    #[error("{program} refused the ruleset: {stderr}")]
    NftFailed {
        /// The program.
        program: PathBuf,
        /// What it printed.
        stderr: String,
    },
    /// A firewall state contradicts itself.
    #[error("invalid firewall state: {0}")]
    InvalidPolicy(String),
    /// The host cannot enforce security groups on bridged traffic.
    #[error("bridged traffic bypasses the firewall: {0}")]
    NoBridgeNetfilter(String),
}
