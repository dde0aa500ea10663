//! What the host already has — links, a bridge's ports, routes — asked
//! over the [`Network`]'s netlink connection (so in its namespace, the
//! host's), rather than read from `/sys/class/net` and `/proc/net/route`,
//! which show the namespace of whoever mounted them.
//!
//! Each question is one netlink request (a bridge's ports two: its index,
//! then a dump the kernel filters by controller), answered from memory
//! by the kernel. The agent asks whether its bridge exists on every task
//! launch: about 0.1 ms, against a few µs for the `/sys` stat it replaced
//! (the `berth-net` test times both), beside the dozen requests of an
//! attach.

use std::net::Ipv4Addr;

use futures_util::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::RouteMessageBuilder;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType,
};

use crate::{BLACKHOLE_METRIC, BridgeName, NetError, Network, Subnet, TaskNames};

/// A route of the host's main table whose range overlaps a subnet's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoute {
    /// Where the route goes.
    pub destination: Ipv4Net,
    /// The link it leaves by; `None` for a route without one (blackhole,
    /// unreachable, prohibit).
    pub device: Option<String>,
}

impl std::fmt::Display for HostRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}", self.destination, self.device.as_deref().unwrap_or("*"))
    }
}

impl Network {
    /// Whether the host has a link called `name`.
    pub async fn link_exists(&self, name: &str) -> Result<bool, NetError> {
        Ok(self.nl.link(name).await?.is_some())
    }

    /// The names of bridge `name`'s ports (tasks' veths); `None` if there
    /// is no link of that name.
    pub async fn bridge_ports(&self, name: &BridgeName) -> Result<Option<Vec<String>>, NetError> {
        let Some(link) = self.nl.link(name.as_str()).await? else {
            return Ok(None);
        };
        Ok(Some(self.nl.ports(link.header.index).await?))
    }

    /// Whether an earlier attach of the task left its namespace on the
    /// host (an agent restart cut it short): then [`Network::detach`]
    /// before attaching again, which refuses an existing namespace. A
    /// leftover veth needs no such care — [`Network::attach`] deletes it
    /// itself — so this is a file check, no netlink request.
    pub fn task_leftovers(&self, task_id: &str) -> Result<bool, NetError> {
        Ok(TaskNames::for_task(task_id)?.netns_path.exists())
    }

    /// A route of the host's main table (IPv4, the routes `ip route`
    /// shows) whose range overlaps `subnet`'s, leaving out the default
    /// route, routes via `bridge` (the subnet's own) and Berth's blackhole
    /// routes ([`BLACKHOLE_METRIC`]). Bridging such a subnet would cut the
    /// host off from the network the route leads to.
    pub async fn overlapping_route(
        &self,
        subnet: &Subnet,
        bridge: &BridgeName,
    ) -> Result<Option<HostRoute>, NetError> {
        let dump = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let routes: Vec<RouteMessage> = self
            .nl
            .handle
            .route()
            .get(dump)
            .execute()
            .try_collect()
            .await
            .map_err(|source| NetError::Netlink {
                action: "listing routes".to_string(),
                source,
            })?;
        for route in routes.iter().filter(|r| overlaps(r, subnet.net())) {
            let device = match device_index(route) {
                Some(index) => self.nl.link_name(index).await?,
                None => None,
            };
            if device.as_deref() == Some(bridge.as_str()) {
                continue;
            }
            if let Some(destination) = destination(route) {
                return Ok(Some(HostRoute { destination, device }));
            }
        }
        Ok(None)
    }
}

/// Whether a dumped route is one of the main table's that overlaps `ours`
/// and is not the default route or a Berth blackhole (pure: the device
/// is checked by the caller, who has to ask its name).
fn overlaps(route: &RouteMessage, ours: Ipv4Net) -> bool {
    let h = &route.header;
    let table = route
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(h.table));
    // /proc/net/route, which this replaces, showed the main table without
    // its broadcast and multicast entries.
    if table != u32::from(RouteHeader::RT_TABLE_MAIN)
        || matches!(h.kind, RouteType::Broadcast | RouteType::Multicast)
        || h.destination_prefix_length == 0
    {
        return false;
    }
    let metric = route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Priority(p) => Some(*p),
        _ => None,
    });
    if device_index(route).is_none() && metric == Some(BLACKHOLE_METRIC) {
        return false;
    }
    destination(route).is_some_and(|r| r.contains(&ours.network()) || ours.contains(&r.network()))
}

fn destination(route: &RouteMessage) -> Option<Ipv4Net> {
    let ip = route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
        _ => None,
    })?;
    Ipv4Net::new(ip, route.header.destination_prefix_length).ok()
}

/// The link a route leaves by (a multipath route's first hop's, as
/// /proc/net/route showed it).
fn device_index(route: &RouteMessage) -> Option<u32> {
    route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        RouteAttribute::MultiPath(hops) => hops.first().map(|h| h.interface_index),
        _ => None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn route(dest: &str, table: u8, kind: RouteType, oif: Option<u32>, metric: Option<u32>) -> RouteMessage {
        let net: Ipv4Net = dest.parse().unwrap();
        let mut r = RouteMessage::default();
        r.header.table = table;
        r.header.kind = kind;
        r.header.destination_prefix_length = net.prefix_len();
        r.attributes.push(RouteAttribute::Destination(RouteAddress::Inet(net.network())));
        r.attributes.extend(oif.map(RouteAttribute::Oif));
        r.attributes.extend(metric.map(RouteAttribute::Priority));
        r
    }

    #[test]
    fn only_main_table_routes_that_overlap_count() {
        let ours: Ipv4Net = "10.89.0.0/16".parse().unwrap();
        let main = RouteHeader::RT_TABLE_MAIN;
        let uni = RouteType::Unicast;
        assert!(overlaps(&route("10.89.3.0/24", main, uni, Some(2), None), ours), "inside");
        assert!(overlaps(&route("10.0.0.0/8", main, uni, Some(2), None), ours), "around");
        assert!(!overlaps(&route("10.90.0.0/16", main, uni, Some(2), None), ours), "beside");
        assert!(!overlaps(&route("0.0.0.0/0", main, uni, Some(2), None), ours), "the default route");
        assert!(!overlaps(&route("10.89.0.1/32", 255, RouteType::Local, Some(2), None), ours), "the local table");
        assert!(!overlaps(&route("10.89.0.0/16", main, RouteType::BlackHole, None, Some(BLACKHOLE_METRIC)), ours));
        assert!(
            overlaps(&route("10.89.0.0/16", main, RouteType::BlackHole, None, Some(7)), ours),
            "someone else's blackhole"
        );
        assert!(!overlaps(&route("10.89.255.255/32", main, RouteType::Broadcast, Some(2), None), ours));
    }
}
