//! The kernel side of awsvpc networking: what gives each Berth task its
//! own network, as on Fargate.
//!
//! - A subnet is a Linux bridge holding the subnet's gateway address
//!   ([`Network::ensure_bridge`]); [`allocate`] picks task addresses from it
//!   (pure: the caller keeps the set of used ones).
//! - A task gets a named network namespace (`/run/netns/berth-<task id>`)
//!   with one interface, `eth0`: its end of a veth pair whose other end is
//!   a bridge port, with the task's address, a MAC derived from it, and a
//!   default route via the gateway ([`Network::attach`], [`Network::detach`]).
//!   The OCI runtime joins the namespace by path; every container of the
//!   task shares it.
//! - Security groups, host isolation and egress are one nftables ruleset
//!   rendered from a [`FirewallState`] and swapped in atomically
//!   ([`Firewall::apply`]).
//!
//! Everything goes over netlink (`rtnetlink`) and plain system calls
//! (`nix`); only the firewall runs a program, `nft`, with JSON commands.
//!
//! # How the agent drives it
//! ```text
//! Network::connect()                                once, inside a tokio runtime
//! Firewall::check_host(); Firewall::new("berth")
//! ensure_bridge(&BridgeName::for_subnet(&s), &s)    per subnet, idempotent
//! allocate(&s, &used)                               → the task's IP (record it)
//! attach(&AttachRequest { task_id, bridge, subnet, ip })  → VethAttachment
//! firewall.apply(&state)                            after every attach/detach/group change
//! (start the containers in att.netns_path)
//! detach(task_id)                                   after the containers are gone; idempotent
//! firewall.apply(&state); remove_bridge(..) when the subnet has no tasks left
//! ```
//!
//! Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN), a kernel with network
//! namespaces, veth, bridge, nf_tables (inet, bridge, nat) and
//! `br_netfilter`, and the `nft` binary (Debian package `nftables`).

mod attach;
mod bridge;
mod error;
pub mod firewall;
mod host;
mod names;
mod netlink;
pub mod netns;
mod subnet;

pub use attach::{AttachRequest, VethAttachment, TASK_IFNAME};
pub use bridge::BLACKHOLE_METRIC;
pub use error::NetError;
pub use host::HostRoute;
pub use firewall::{
    Firewall, FirewallState, HostService, LinkLocalService, Protocol, PublishedPort, Rule, SecurityGroup, Source,
    SubnetPolicy, TaskPolicy, Transport,
};
pub use ipnet::Ipv4Net;
pub use names::{BridgeName, MAX_IFNAME, NETNS_DIR, NETNS_PREFIX, TaskNames, VETH_PREFIX};
pub use subnet::{
    MAC_PREFIX, MAX_PREFIX, MIN_PREFIX, MacAddr, Subnet, SubnetError, allocate, mac_for,
};

/// The host's network: a netlink connection in the namespace of the
/// thread that made it (the host's), through which bridges are made and
/// tasks attached and detached.
pub struct Network {
    nl: netlink::Netlink,
}

impl Network {
    /// Connects to the kernel. Must be called inside a tokio runtime, from
    /// a thread in the host's network namespace.
    pub fn connect() -> Result<Self, NetError> {
        Ok(Self {
            nl: netlink::Netlink::connect()?,
        })
    }
}
