//! The task's network, VM side. The agent gives every task a network
//! namespace whose `eth0` (a veth on the subnet's bridge) has the task's
//! address, MAC and default route. For a micro-VM this adds a TAP device
//! `tap0` in that namespace and joins it to `eth0` with two tc `mirred`
//! redirects (every frame in on one goes out of the other, as Kata
//! Containers' default does), so the guest's `eth0`, which gets the same
//! MAC and address, is the task's interface: the bridge, the firewall
//! (security groups match on the task's address and port) and the
//! metadata endpoint see the task exactly as they see a sandbox.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use berth_guest::GuestNetwork;

use crate::MicroVmError;

/// The TAP's name inside the task's namespace.
pub const TAP: &str = "tap0";

/// What the guest's interface takes over from the namespace's `eth0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// The MAC.
    pub mac: String,
    /// Address, prefix and gateway.
    pub guest: GuestNetwork,
}

fn run(netns: &Path, args: &[&str]) -> Result<String, MicroVmError> {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .arg("--")
        .args(args)
        .output()
        .map_err(MicroVmError::io("running nsenter", Path::new("nsenter")))?;
    if !out.status.success() {
        return Err(MicroVmError::Setup(format!(
            "{} (in {}): {}",
            args.join(" "),
            netns.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Reads `eth0`, adds `tap0` and the redirects.
pub fn attach(netns: &Path) -> Result<Interface, MicroVmError> {
    let iface = read_eth0(netns)?;
    // A TAP left by an attempt that failed half-way goes first.
    let _ = run(netns, &["ip", "link", "del", TAP]);
    let _ = run(netns, &["tc", "qdisc", "del", "dev", "eth0", "ingress"]);
    run(netns, &["ip", "tuntap", "add", "dev", TAP, "mode", "tap"])?;
    run(netns, &["ip", "link", "set", TAP, "up"])?;
    for (from, to) in [("eth0", TAP), (TAP, "eth0")] {
        run(netns, &["tc", "qdisc", "add", "dev", from, "ingress"])?;
        run(
            netns,
            &[
                "tc", "filter", "add", "dev", from, "parent", "ffff:", "protocol", "all", "u32", "match", "u8", "0",
                "0", "action", "mirred", "egress", "redirect", "dev", to,
            ],
        )?;
    }
    Ok(iface)
}

/// Removes `tap0` and the redirect (when the namespace is still there).
pub fn detach(netns: &Path) -> Result<(), MicroVmError> {
    if !netns.exists() {
        return Ok(());
    }
    let has_tap = run(netns, &["ip", "-o", "link", "show", TAP]).is_ok();
    if has_tap {
        run(netns, &["ip", "link", "del", TAP])?;
    }
    let _ = run(netns, &["tc", "qdisc", "del", "dev", "eth0", "ingress"]);
    Ok(())
}

fn read_eth0(netns: &Path) -> Result<Interface, MicroVmError> {
    let bad = |what: &str| MicroVmError::Setup(format!("the task's eth0 in {}: {what}", netns.display()));
    let addr: serde_json::Value = serde_json::from_str(&run(netns, &["ip", "-j", "addr", "show", "dev", "eth0"])?)
        .map_err(|_| bad("unreadable `ip -j addr`"))?;
    let link = addr.get(0).ok_or_else(|| bad("no such interface"))?;
    let mac = link.get("address").and_then(|m| m.as_str()).ok_or_else(|| bad("no MAC"))?.to_owned();
    let inet = link
        .get("addr_info")
        .and_then(|a| a.as_array())
        .and_then(|a| a.iter().find(|i| i.get("family").and_then(|f| f.as_str()) == Some("inet")))
        .ok_or_else(|| bad("no IPv4 address"))?;
    let ip: Ipv4Addr = inet.get("local").and_then(|l| l.as_str()).and_then(|l| l.parse().ok()).ok_or_else(|| bad("bad address"))?;
    let prefix = inet.get("prefixlen").and_then(serde_json::Value::as_u64).ok_or_else(|| bad("no prefix"))? as u8;
    let routes: serde_json::Value =
        serde_json::from_str(&run(netns, &["ip", "-j", "route", "show", "default"])?).unwrap_or_default();
    let gateway = routes.get(0).and_then(|r| r.get("gateway")).and_then(|g| g.as_str()).and_then(|g| g.parse().ok());
    Ok(Interface { mac, guest: GuestNetwork { ip, prefix, gateway } })
}
