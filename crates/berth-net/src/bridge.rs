//! One Linux bridge per subnet, holding the subnet's gateway address.
//!
//! The bridge's MAC is set from the gateway address ([`crate::mac_for`]):
//! a bridge without one takes the lowest MAC of its ports, which changes
//! as tasks come and go and leaves stale gateway entries in the tasks' ARP
//! caches. STP stays off (the default), so a port forwards at once.
//! `nf_call_iptables` is set on the bridge itself, so bridged IPv4 goes
//! through the inet hooks (and Berth's security groups) whatever the
//! global `net.bridge.bridge-nf-call-iptables` says.

use rtnetlink::LinkBridge;
use rtnetlink::packet_route::link::InfoKind;

use crate::netlink::{self, EEXIST};
use crate::{BridgeName, NetError, Network, Subnet, mac_for};

/// The metric of the blackhole route each subnet has: traffic for a
/// subnet whose bridge is not (or no longer) here is dropped on the host
/// instead of following the default route off the machine.
pub const BLACKHOLE_METRIC: u32 = 4242;

impl Network {
    /// Makes sure the host never routes `subnet` anywhere but to its
    /// bridge: a blackhole route with [`BLACKHOLE_METRIC`] catches its
    /// traffic whenever the bridge is absent. Idempotent.
    pub async fn ensure_blackhole(&self, subnet: &Subnet) -> Result<(), NetError> {
        self.nl.add_blackhole(subnet.network(), subnet.prefix(), BLACKHOLE_METRIC).await
    }

    /// Removes [`Network::ensure_blackhole`]'s route (the subnet is gone).
    pub async fn remove_blackhole(&self, subnet: &Subnet) -> Result<(), NetError> {
        self.nl.delete_blackhole(subnet.network(), subnet.prefix(), BLACKHOLE_METRIC).await
    }

    /// Makes sure bridge `name` exists, is up, holds `subnet`'s gateway
    /// address and sends bridged IPv4 through netfilter. Idempotent; other
    /// addresses already on the bridge are left alone. A link of that name
    /// that is not a bridge is an error.
    pub async fn ensure_bridge(&self, name: &BridgeName, subnet: &Subnet) -> Result<(), NetError> {
        let nl = &self.nl;
        let gateway = subnet.gateway();
        let index = match nl.link(name.as_str()).await? {
            Some(link) => {
                if netlink::kind(&link) != Some(&InfoKind::Bridge) {
                    return Err(NetError::NotABridge {
                        name: name.to_string(),
                    });
                }
                let change = LinkBridge::new(name.as_str())
                    .index(link.header.index)
                    .nf_call_iptables(true)
                    .build();
                nl.handle
                    .link()
                    .change(change)
                    .execute()
                    .await
                    .map_err(|source| NetError::Netlink {
                        action: format!("setting nf_call_iptables on {name}"),
                        source,
                    })?;
                link.header.index
            }
            None => {
                let add = LinkBridge::new(name.as_str())
                    .address(mac_for(gateway).0.to_vec())
                    .nf_call_iptables(true)
                    .build();
                match nl.handle.link().add(add).execute().await {
                    Ok(()) => {}
                    // Another caller made it meanwhile: settle it below.
                    Err(e) if netlink::errno(&e) == Some(EEXIST) => {}
                    Err(source) => {
                        return Err(NetError::Netlink {
                            action: format!("adding bridge {name}"),
                            source,
                        });
                    }
                }
                nl.index(name.as_str()).await?
            }
        };
        let have = nl.ipv4_addresses(index).await?;
        if !have.contains(&(gateway, subnet.prefix())) {
            nl.add_address(index, name.as_str(), gateway, subnet.prefix())
                .await?;
        }
        nl.set_up(index, name.as_str()).await?;
        tracing::debug!(bridge = %name, %subnet, %gateway, "bridge ready");
        Ok(())
    }

    /// Deletes bridge `name` if it has no ports left. A bridge that is
    /// already gone is fine; one with ports is [`NetError::BridgeInUse`].
    pub async fn remove_bridge(&self, name: &BridgeName) -> Result<(), NetError> {
        let nl = &self.nl;
        let Some(link) = nl.link(name.as_str()).await? else {
            return Ok(());
        };
        if netlink::kind(&link) != Some(&InfoKind::Bridge) {
            return Err(NetError::NotABridge {
                name: name.to_string(),
            });
        }
        let ports = nl.ports(link.header.index).await?;
        if !ports.is_empty() {
            return Err(NetError::BridgeInUse {
                name: name.to_string(),
                ports,
            });
        }
        nl.delete_link(name.as_str()).await?;
        tracing::debug!(bridge = %name, "bridge removed");
        Ok(())
    }
}
