//! A route-netlink connection and the few requests Berth makes over it.
//!
//! A netlink socket belongs to the network namespace of the thread that
//! opened it, for its whole life: [`Netlink::connect`] talks to the
//! caller's namespace, and [`crate::netns`] opens one from a thread inside
//! a task's namespace. The connection's driver runs as a tokio task that
//! ends when the [`Netlink`] is dropped, so nothing keeps a socket (and so
//! a namespace) alive after use.

use std::net::{IpAddr, Ipv4Addr};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

use crate::NetError;

const ENODEV: i32 = 19;
const ESRCH: i32 = 3;
pub(crate) const EEXIST: i32 = 17;

/// An open route-netlink connection; its driver task ends on drop.
pub(crate) struct Netlink {
    pub(crate) handle: Handle,
    driver: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        if let Some(driver) = &self.driver {
            driver.abort();
        }
    }
}

impl Netlink {
    /// Opens a connection in the calling thread's network namespace. Needs
    /// a tokio runtime (its reactor drives the socket).
    pub(crate) fn connect() -> Result<Self, NetError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetError::NetlinkSocket)?;
        Ok(Self {
            handle,
            driver: Some(tokio::spawn(conn)),
        })
    }

    /// Closes the socket and waits (briefly) until it is closed, so the
    /// namespace it belongs to is no longer referred to by it.
    pub(crate) async fn close(mut self) {
        let driver = self.driver.take();
        // The driver ends once the last handle is gone.
        drop(self);
        if let Some(driver) = driver {
            let abort = driver.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(1), driver)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// The link called `name`, if any.
    pub(crate) async fn link(&self, name: &str) -> Result<Option<LinkMessage>, NetError> {
        let found = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_next()
            .await;
        match found {
            Ok(link) => Ok(link),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
            Err(source) => Err(NetError::Netlink {
                action: format!("getting link {name}"),
                source,
            }),
        }
    }

    /// The index of the link called `name`.
    pub(crate) async fn index(&self, name: &str) -> Result<u32, NetError> {
        match self.link(name).await? {
            Some(link) => Ok(link.header.index),
            None => Err(NetError::NoSuchLink {
                name: name.to_string(),
            }),
        }
    }

    /// The name of the link with index `index`, if there is one.
    pub(crate) async fn link_name(&self, index: u32) -> Result<Option<String>, NetError> {
        let found = self
            .handle
            .link()
            .get()
            .match_index(index)
            .execute()
            .try_next()
            .await;
        match found {
            Ok(link) => Ok(link.as_ref().and_then(name).map(str::to_string)),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
            Err(source) => Err(NetError::Netlink {
                action: format!("getting link {index}"),
                source,
            }),
        }
    }

    /// The names of the links whose controller (bridge) is link `index`.
    /// The kernel filters the dump by controller, so it costs what the
    /// bridge has, not what the host has.
    pub(crate) async fn ports(&self, index: u32) -> Result<Vec<String>, NetError> {
        let mut request = self.handle.link().get();
        request
            .message_mut()
            .attributes
            .push(LinkAttribute::Controller(index));
        let links: Vec<LinkMessage> =
            request
                .execute()
                .try_collect()
                .await
                .map_err(|source| NetError::Netlink {
                    action: format!("listing the ports of link {index}"),
                    source,
                })?;
        // (Kernels before 4.14 ignore the filter and send every link.)
        Ok(links
            .iter()
            .filter(|l| controller(l) == Some(index))
            .filter_map(|l| name(l).map(str::to_string))
            .collect())
    }

    /// Deletes the link called `name`; false if there was none.
    pub(crate) async fn delete_link(&self, name: &str) -> Result<bool, NetError> {
        let Some(link) = self.link(name).await? else {
            return Ok(false);
        };
        match self.handle.link().del(link.header.index).execute().await {
            Ok(()) => Ok(true),
            // Gone between the two requests (its namespace went away, say).
            Err(e) if errno(&e) == Some(ENODEV) => Ok(false),
            Err(source) => Err(NetError::Netlink {
                action: format!("deleting link {name}"),
                source,
            }),
        }
    }

    /// Sets a link administratively up.
    pub(crate) async fn set_up(&self, index: u32, name: &str) -> Result<(), NetError> {
        self.set(
            LinkUnspec::new_with_index(index).up().build(),
            "setting up",
            name,
        )
        .await
    }

    /// Sends a RTM_SETLINK request.
    pub(crate) async fn set(
        &self,
        msg: LinkMessage,
        action: &str,
        name: &str,
    ) -> Result<(), NetError> {
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|source| NetError::Netlink {
                action: format!("{action} {name}"),
                source,
            })
    }

    /// The IPv4 addresses (with prefix lengths) on a link.
    pub(crate) async fn ipv4_addresses(&self, index: u32) -> Result<Vec<(Ipv4Addr, u8)>, NetError> {
        let msgs: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|source| NetError::Netlink {
                action: format!("listing addresses of link {index}"),
                source,
            })?;
        Ok(msgs
            .iter()
            // The dump is not filtered by the kernel on every version.
            .filter(|m| m.header.index == index)
            .flat_map(|m| {
                let prefix = m.header.prefix_len;
                m.attributes.iter().filter_map(move |a| match a {
                    AddressAttribute::Local(IpAddr::V4(ip)) => Some((*ip, prefix)),
                    _ => None,
                })
            })
            .collect())
    }

    /// Adds an IPv4 address to a link; an address already there is fine.
    pub(crate) async fn add_address(
        &self,
        index: u32,
        name: &str,
        ip: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), NetError> {
        match self
            .handle
            .address()
            .add(index, IpAddr::V4(ip), prefix)
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
            Err(source) => Err(NetError::Netlink {
                action: format!("adding {ip}/{prefix} to {name}"),
                source,
            }),
        }
    }

    /// Adds the default route via `gateway`.
    pub(crate) async fn add_default_route(&self, gateway: Ipv4Addr) -> Result<(), NetError> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .build();
        self.handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(|source| NetError::Netlink {
                action: format!("adding the default route via {gateway}"),
                source,
            })
    }
}

impl Netlink {
    /// Adds a blackhole route for `dest/prefix` with `metric` (a kernel
    /// route of a present bridge, metric 0, wins over it). Idempotent.
    pub(crate) async fn add_blackhole(&self, dest: Ipv4Addr, prefix: u8, metric: u32) -> Result<(), NetError> {
        let route = blackhole(dest, prefix, metric);
        match self.handle.route().add(route).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
            Err(source) => Err(NetError::Netlink { action: format!("adding a blackhole route for {dest}/{prefix}"), source }),
        }
    }

    /// Deletes that blackhole route; one that is gone is fine.
    pub(crate) async fn delete_blackhole(&self, dest: Ipv4Addr, prefix: u8, metric: u32) -> Result<(), NetError> {
        let route = blackhole(dest, prefix, metric);
        match self.handle.route().del(route).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(ESRCH) => Ok(()),
            Err(source) => Err(NetError::Netlink { action: format!("deleting the blackhole route for {dest}/{prefix}"), source }),
        }
    }
}

fn blackhole(dest: Ipv4Addr, prefix: u8, metric: u32) -> rtnetlink::packet_route::route::RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(dest, prefix)
        .kind(rtnetlink::packet_route::route::RouteType::BlackHole)
        .priority(metric)
        .build()
}

/// The errno of a kernel error reply, positive (ENODEV = 19).
pub(crate) fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}

/// A link's name.
pub(crate) fn name(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

/// A link's kind (`bridge`, `veth`, ...).
pub(crate) fn kind(link: &LinkMessage) -> Option<&InfoKind> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(k) => Some(k),
            _ => None,
        }),
        _ => None,
    })
}

/// The index of the bridge (or other controller) a link is a port of.
pub(crate) fn controller(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Controller(i) => Some(*i),
        _ => None,
    })
}
