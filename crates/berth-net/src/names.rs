//! The names Berth gives kernel objects, derived from what they serve so
//! that tear-down finds them again from the task id alone (after an agent
//! restart, say).
//!
//! - A bridge: any valid interface name ([`BridgeName::new`]), or
//!   `berth` + the subnet's network address in hex + its prefix length
//!   ([`BridgeName::for_subnet`]: `berth0afa030024` for 10.250.3.0/24).
//! - A task's network namespace: `/run/netns/berth-<task id>`, where
//!   `ip netns exec berth-<task id> ...` finds it.
//! - A task's host-side veth: `bv` + 13 hex digits of the SHA-256 of the
//!   task id (interface names have at most 15 bytes, task ids up to 64).
//!   Its alias (`ip link` shows it) is `berth task <task id>`.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{NetError, Subnet};

/// Where named network namespaces live (iproute2's `NETNS_RUN_DIR`).
pub const NETNS_DIR: &str = "/run/netns";

/// The prefix of every network namespace Berth names.
pub const NETNS_PREFIX: &str = "berth-";

/// The prefix of every host-side veth Berth names.
pub const VETH_PREFIX: &str = "bv";

/// Linux's IFNAMSIZ less the terminating NUL.
pub const MAX_IFNAME: usize = 15;

/// A valid bridge interface name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BridgeName(String);

impl BridgeName {
    /// Checks an interface name: 1 to 15 bytes of `[A-Za-z0-9_.-]`, not
    /// `.` or `..`.
    pub fn new(name: impl Into<String>) -> Result<Self, NetError> {
        let name = name.into();
        check_ifname("bridge", &name)?;
        Ok(Self(name))
    }

    /// The bridge Berth makes for a subnet: `berth` + the network address
    /// as 8 hex digits + the prefix length as 2 digits.
    pub fn for_subnet(subnet: &Subnet) -> Self {
        Self(format!(
            "berth{:08x}{:02}",
            u32::from(subnet.network()),
            subnet.prefix()
        ))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BridgeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for BridgeName {
    type Error = NetError;
    fn try_from(s: String) -> Result<Self, NetError> {
        Self::new(s)
    }
}

impl From<BridgeName> for String {
    fn from(b: BridgeName) -> String {
        b.0
    }
}

/// The names of one task's network objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskNames {
    /// The task id they derive from.
    pub task_id: String,
    /// The network namespace's name (`berth-<task id>`).
    pub netns: String,
    /// Its file, `/run/netns/berth-<task id>`.
    pub netns_path: PathBuf,
    /// The host end of the veth.
    pub host_veth: String,
}

impl TaskNames {
    /// The names for a task id of 1 to 64 characters of `[A-Za-z0-9_-]`
    /// (the form ECS task ids and Berth's runtime use).
    pub fn for_task(task_id: &str) -> Result<Self, NetError> {
        let valid = !task_id.is_empty()
            && task_id.len() <= 64
            && task_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(NetError::InvalidName {
                what: "task id",
                name: task_id.to_string(),
                reason: "must be 1-64 characters of [A-Za-z0-9_-]",
            });
        }
        let netns = format!("{NETNS_PREFIX}{task_id}");
        let digest = hex::encode(Sha256::digest(task_id.as_bytes()));
        let host_veth = format!("{VETH_PREFIX}{}", &digest[..MAX_IFNAME - VETH_PREFIX.len()]);
        Ok(Self {
            task_id: task_id.to_string(),
            netns_path: PathBuf::from(NETNS_DIR).join(&netns),
            netns,
            host_veth,
        })
    }

    /// The alias set on the host veth.
    pub fn veth_alias(&self) -> String {
        format!("berth task {}", self.task_id)
    }
}

pub(crate) fn check_ifname(what: &'static str, name: &str) -> Result<(), NetError> {
    let reason = if name.is_empty() || name.len() > MAX_IFNAME {
        Some("interface names have 1 to 15 bytes")
    } else if name == "." || name == ".." {
        Some("is not an interface name")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        Some("must be of [A-Za-z0-9_.-]")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(NetError::InvalidName {
            what,
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn bridge_names_fit_ifnamsiz() {
        for ok in ["berth0", "b", "berth-a.b_c", "123456789012345"] {
            assert_eq!(BridgeName::new(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "1234567890123456", ".", "..", "br 0", "br/0", "brü"] {
            assert!(BridgeName::new(bad).is_err(), "{bad:?}");
        }
        let err = BridgeName::new("berth-much-too-long")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid bridge \"berth-much-too-long\": interface names have 1 to 15 bytes"
        );
    }

    #[test]
    fn a_subnets_bridge_is_named_for_it() {
        let cases = [
            ("10.250.3.0/24", "berth0afa030024"),
            ("10.0.0.0/8", "berth0a00000008"),
            ("192.168.7.4/30", "berthc0a8070430"),
        ];
        for (cidr, want) in cases {
            let name = BridgeName::for_subnet(&cidr.parse().unwrap());
            assert_eq!(name.as_str(), want);
            assert!(BridgeName::new(name.as_str()).is_ok(), "{want} is valid");
        }
    }

    #[test]
    fn task_names_derive_from_the_id() {
        let n = TaskNames::for_task("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(n.netns, "berth-0123456789abcdef0123456789abcdef");
        assert_eq!(
            n.netns_path,
            PathBuf::from("/run/netns/berth-0123456789abcdef0123456789abcdef")
        );
        assert_eq!(n.host_veth.len(), MAX_IFNAME);
        assert!(n.host_veth.starts_with("bv"));
        check_ifname("veth", &n.host_veth).unwrap();
        assert_eq!(
            n,
            TaskNames::for_task("0123456789abcdef0123456789abcdef").unwrap(),
            "stable"
        );
        // Ids sharing a long prefix still get different veths.
        let a = TaskNames::for_task("test-task-0001").unwrap();
        let b = TaskNames::for_task("test-task-0002").unwrap();
        assert_ne!(a.host_veth, b.host_veth);
        assert_eq!(a.veth_alias(), "berth task test-task-0001");
    }

    #[test]
    fn task_ids_are_checked() {
        for bad in ["", "a/b", "../x", "a b", &"x".repeat(65)] {
            assert!(TaskNames::for_task(bad).is_err(), "{bad:?}");
        }
        assert!(TaskNames::for_task(&"x".repeat(64)).is_ok());
    }
}
