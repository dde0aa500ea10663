//! A task's interface: its own network namespace and a veth pair, one end
//! (`eth0`, the task's address, a default route via the gateway) inside,
//! the other a port of the subnet's bridge.
//!
//! The veth is created with its peer already in the task's namespace and
//! already named `eth0` (one RTM_NEWLINK with the peer's namespace fd), so
//! no temporary name ever appears on the host. Deleting either end deletes
//! both; [`Network::detach`] deletes the host end, then unmounts and removes
//! the namespace file, and is happy to find any of them already gone.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth};
use serde::{Deserialize, Serialize};

use crate::netlink::Netlink;
use crate::{BridgeName, MacAddr, NetError, Network, Subnet, TaskNames, mac_for, netns};

/// The interface name of a task's end of the veth.
pub const TASK_IFNAME: &str = "eth0";

/// What [`Network::attach`] is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachRequest {
    /// The task id (1-64 of `[A-Za-z0-9_-]`), which names everything.
    pub task_id: String,
    /// The bridge of the task's subnet ([`Network::ensure_bridge`] first).
    pub bridge: BridgeName,
    /// The subnet.
    pub subnet: Subnet,
    /// The task's address, from [`crate::allocate`].
    pub ip: Ipv4Addr,
}

/// A task's network, as attached: its netns and the veth pair into the
/// subnet's bridge (named apart from the ECS wire `Attachment`, the ENI as
/// DescribeTasks shows it). Everything in it follows from the request, so a
/// restarted agent can rebuild it without asking the kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VethAttachment {
    /// The task id.
    pub task_id: String,
    /// The namespace file for the OCI runtime (`linux.namespaces` path).
    pub netns_path: PathBuf,
    /// The bridge the host end is a port of.
    pub bridge: BridgeName,
    /// The host end of the veth.
    pub host_veth: String,
    /// The MAC address of the task's `eth0`.
    pub mac: MacAddr,
    /// The task's address.
    pub ip: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
    /// The default gateway (the bridge's address).
    pub gateway: Ipv4Addr,
}

impl VethAttachment {
    /// The attachment `req` makes (or made).
    pub fn for_request(req: &AttachRequest) -> Result<Self, NetError> {
        let names = TaskNames::for_task(&req.task_id)?;
        if !req.subnet.is_assignable(req.ip) {
            let reason = if !req.subnet.contains(req.ip) {
                "outside the subnet"
            } else {
                "reserved (network, gateway or broadcast address)"
            };
            return Err(NetError::InvalidAddress {
                ip: req.ip,
                subnet: req.subnet,
                reason,
            });
        }
        Ok(Self {
            task_id: names.task_id,
            netns_path: names.netns_path,
            bridge: req.bridge.clone(),
            host_veth: names.host_veth,
            mac: mac_for(req.ip),
            ip: req.ip,
            prefix: req.subnet.prefix(),
            gateway: req.subnet.gateway(),
        })
    }
}

impl Network {
    /// Gives a task its network namespace and interface. The bridge must
    /// exist. A task that already has a namespace here is
    /// [`NetError::AlreadyAttached`] (detach it first); on any other error
    /// everything this call made is released again.
    ///
    /// Until the next [`crate::Firewall::apply`] names the task, the
    /// firewall drops all its traffic.
    pub async fn attach(&self, req: &AttachRequest) -> Result<VethAttachment, NetError> {
        let att = VethAttachment::for_request(req)?;
        let names = TaskNames::for_task(&req.task_id)?;
        let bridge = self.nl.index(req.bridge.as_str()).await?;
        let inner = netns::create(&names).await?;
        let configured = self.configure(&att, &names, bridge, &inner).await;
        inner.close().await;
        if let Err(e) = configured {
            if let Err(cleanup) = self.detach(&req.task_id).await {
                tracing::warn!(task_id = %req.task_id, error = %cleanup, "releasing a failed attach");
            }
            return Err(e);
        }
        tracing::debug!(task_id = %att.task_id, ip = %att.ip, veth = %att.host_veth, "attached");
        Ok(att)
    }

    async fn configure(
        &self,
        att: &VethAttachment,
        names: &TaskNames,
        bridge: u32,
        inner: &Netlink,
    ) -> Result<(), NetError> {
        // The namespace is new, so a veth of this name is a leftover of a
        // crash between two steps of an earlier attach.
        self.nl.delete_link(&att.host_veth).await?;
        let ns = File::open(&att.netns_path).map_err(|source| NetError::Io {
            action: "opening",
            path: att.netns_path.clone(),
            source,
        })?;
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(TASK_IFNAME)
            .address(att.mac.0.to_vec())
            .setns_by_fd(ns.as_raw_fd())
            .build();
        let veth = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(att.host_veth.clone())
            .controller(bridge)
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        self.nl
            .handle
            .link()
            .add(veth)
            .execute()
            .await
            .map_err(|source| NetError::Netlink {
                action: format!(
                    "adding veth {} (peer {TASK_IFNAME} in {})",
                    att.host_veth, names.netns
                ),
                source,
            })?;
        drop(ns);
        let host = self.nl.index(&att.host_veth).await?;
        let alias = LinkUnspec::new_with_index(host)
            .alias(names.veth_alias())
            .build();
        self.nl
            .set(alias, "setting the alias of", &att.host_veth)
            .await?;

        let lo = inner.index("lo").await?;
        inner.set_up(lo, "lo").await?;
        let eth0 = inner.index(TASK_IFNAME).await?;
        inner
            .add_address(eth0, TASK_IFNAME, att.ip, att.prefix)
            .await?;
        inner.set_up(eth0, TASK_IFNAME).await?;
        inner.add_default_route(att.gateway).await
    }

    /// Releases a task's network: deletes its veth (both ends), unmounts
    /// and removes its namespace file. Idempotent: anything already gone
    /// is fine, so it also cleans up after a crashed attach.
    pub async fn detach(&self, task_id: &str) -> Result<(), NetError> {
        let names = TaskNames::for_task(task_id)?;
        self.nl.delete_link(&names.host_veth).await?;
        netns::remove(&names.netns_path)?;
        tracing::debug!(task_id, "detached");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn req(ip: &str) -> AttachRequest {
        AttachRequest {
            task_id: "t-1".to_string(),
            bridge: BridgeName::new("berthtest").unwrap(),
            subnet: "10.250.7.0/24".parse().unwrap(),
            ip: ip.parse().unwrap(),
        }
    }

    #[test]
    fn an_attachment_follows_from_its_request() {
        let att = VethAttachment::for_request(&req("10.250.7.9")).unwrap();
        assert_eq!(att.netns_path, PathBuf::from("/run/netns/berth-t-1"));
        assert_eq!(att.mac.to_string(), "02:be:0a:fa:07:09");
        assert_eq!(
            (att.prefix, att.gateway),
            (24, "10.250.7.1".parse().unwrap())
        );
        assert_eq!(att.host_veth, TaskNames::for_task("t-1").unwrap().host_veth);
        let json = serde_json::to_value(&att).unwrap();
        assert_eq!(json["netnsPath"], "/run/netns/berth-t-1");
        assert_eq!(json["mac"], "02:be:0a:fa:07:09");
        assert_eq!(serde_json::from_value::<VethAttachment>(json).unwrap(), att);
    }

    #[test]
    fn reserved_and_foreign_addresses_are_refused() {
        for (ip, reason) in [
            ("10.250.7.0", "reserved"),
            ("10.250.7.1", "reserved"),
            ("10.250.7.255", "reserved"),
            ("10.250.8.2", "outside"),
        ] {
            let err = VethAttachment::for_request(&req(ip)).unwrap_err().to_string();
            assert!(err.contains(reason), "{ip}: {err}");
        }
    }
}
