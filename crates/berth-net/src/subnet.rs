//! Subnets and IPv4 allocation: pure functions, no I/O.
//!
//! A [`Subnet`] is a validated IPv4 CIDR that a bridge serves. Like an AWS
//! VPC subnet, some of its addresses are never handed to tasks: the network
//! address, the gateway (the first host address, which the bridge holds)
//! and the broadcast address. [`allocate`] picks the lowest other address
//! not in the caller's set of used ones; keeping that set (in the store) is
//! the caller's job.
//!
//! A task's MAC address is derived from its IP ([`mac_for`]), so a
//! neighbour's ARP cache stays right when an address is reused by the next
//! task.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// The shortest prefix accepted: a /8 is already 16 million addresses.
pub const MIN_PREFIX: u8 = 8;
/// The longest prefix accepted: a /30 leaves one address for one task.
pub const MAX_PREFIX: u8 = 30;

/// Why a string is not a usable subnet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubnetError {
    /// Not of the form `a.b.c.d/len`.
    #[error("{input:?} is not an IPv4 CIDR such as 10.0.1.0/24")]
    Syntax {
        /// What was given.
        input: String,
    },
    /// The prefix length is outside [`MIN_PREFIX`]..=[`MAX_PREFIX`].
    #[error("{input:?}: prefix length /{prefix} must be between /{MIN_PREFIX} and /{MAX_PREFIX}")]
    PrefixLength {
        /// What was given.
        input: String,
        /// Its prefix length.
        prefix: u8,
    },
    /// Bits are set after the prefix (`10.0.1.5/24`).
    #[error("{input:?} has host bits set; did you mean {network}?")]
    HostBits {
        /// What was given.
        input: String,
        /// The network it lies in.
        network: Ipv4Net,
    },
}

/// A validated IPv4 subnet: a network address and a prefix of /8 to /30.
///
/// Serialises as its CIDR string (`"10.0.1.0/24"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet(Ipv4Net);

impl Subnet {
    /// Checks a network as a subnet (see [`SubnetError`]).
    pub fn new(net: Ipv4Net) -> Result<Self, SubnetError> {
        let input = net.to_string();
        if !(MIN_PREFIX..=MAX_PREFIX).contains(&net.prefix_len()) {
            return Err(SubnetError::PrefixLength {
                input,
                prefix: net.prefix_len(),
            });
        }
        if net.addr() != net.network() {
            return Err(SubnetError::HostBits {
                input,
                network: net.trunc(),
            });
        }
        Ok(Self(net))
    }

    /// The network as `ipnet` has it.
    pub fn net(&self) -> Ipv4Net {
        self.0
    }

    /// The network address (`10.0.1.0` of `10.0.1.0/24`).
    pub fn network(&self) -> Ipv4Addr {
        self.0.network()
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.0.prefix_len()
    }

    /// The gateway: the first host address, held by the subnet's bridge.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) + 1)
    }

    /// The broadcast address (the last one).
    pub fn broadcast(&self) -> Ipv4Addr {
        self.0.broadcast()
    }

    /// Whether `ip` lies in the subnet (reserved addresses included).
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.0.contains(&ip)
    }

    /// Whether `ip` may be given to a task: inside the subnet and not the
    /// network, gateway or broadcast address.
    pub fn is_assignable(&self, ip: Ipv4Addr) -> bool {
        self.contains(ip) && ip != self.network() && ip != self.gateway() && ip != self.broadcast()
    }
}

impl FromStr for Subnet {
    type Err = SubnetError;

    fn from_str(s: &str) -> Result<Self, SubnetError> {
        // Ipv4Net::from_str accepts "10.0.1.5/24" as is; we want to name
        // the host-bits mistake, so it is checked in `new`.
        let net = Ipv4Net::from_str(s.trim()).map_err(|_| SubnetError::Syntax {
            input: s.to_string(),
        })?;
        Self::new(net).map_err(|e| match e {
            SubnetError::PrefixLength { prefix, .. } => SubnetError::PrefixLength {
                input: s.to_string(),
                prefix,
            },
            SubnetError::HostBits { network, .. } => SubnetError::HostBits {
                input: s.to_string(),
                network,
            },
            other => other,
        })
    }
}

impl TryFrom<String> for Subnet {
    type Error = SubnetError;
    fn try_from(s: String) -> Result<Self, SubnetError> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The lowest assignable address of `subnet` that is not in `reserved`, or
/// None when the subnet is full. Addresses in `reserved` outside the subnet
/// are ignored.
pub fn allocate(subnet: &Subnet, reserved: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let first = u32::from(subnet.gateway()) + 1;
    let last = u32::from(subnet.broadcast()) - 1;
    (first..=last)
        .map(Ipv4Addr::from)
        .find(|ip| !reserved.contains(ip))
}

/// A MAC address.
///
/// Serialises as `"02:be:0a:00:01:02"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MacAddr(pub [u8; 6]);

/// The first two octets of every MAC Berth derives: locally administered
/// (bit 1 of the first octet), unicast (bit 0 clear).
pub const MAC_PREFIX: [u8; 2] = [0x02, 0xbe];

/// The MAC address of the interface that holds `ip`: [`MAC_PREFIX`]
/// followed by the four octets of the address.
pub fn mac_for(ip: Ipv4Addr) -> MacAddr {
    let [a, b, c, d] = ip.octets();
    MacAddr([MAC_PREFIX[0], MAC_PREFIX[1], a, b, c, d])
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a MAC address such as 02:be:0a:00:01:02");
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Self(out))
    }
}

impl TryFrom<String> for MacAddr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<MacAddr> for String {
    fn from(m: MacAddr) -> String {
        m.to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn set(ips: &[&str]) -> BTreeSet<Ipv4Addr> {
        ips.iter().map(|s| ip(s)).collect()
    }

    #[test]
    fn parsing_accepts_networks_and_names_each_mistake() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("10.0.1.0/24", Ok("10.0.1.0/24")),
            (" 10.250.0.0/16 ", Ok("10.250.0.0/16")),
            ("10.0.0.0/8", Ok("10.0.0.0/8")),
            ("192.168.7.4/30", Ok("192.168.7.4/30")),
            (
                "10.0.1.5/24",
                Err("\"10.0.1.5/24\" has host bits set; did you mean 10.0.1.0/24?"),
            ),
            (
                "10.0.0.0/31",
                Err("\"10.0.0.0/31\": prefix length /31 must be between /8 and /30"),
            ),
            (
                "10.0.0.0/32",
                Err("\"10.0.0.0/32\": prefix length /32 must be between /8 and /30"),
            ),
            (
                "0.0.0.0/0",
                Err("\"0.0.0.0/0\": prefix length /0 must be between /8 and /30"),
            ),
            (
                "10.0.0.0/7",
                Err("\"10.0.0.0/7\": prefix length /7 must be between /8 and /30"),
            ),
            (
                "10.0.1.0",
                Err("\"10.0.1.0\" is not an IPv4 CIDR such as 10.0.1.0/24"),
            ),
            (
                "10.0.1.0/33",
                Err("\"10.0.1.0/33\" is not an IPv4 CIDR such as 10.0.1.0/24"),
            ),
            (
                "10.0.1/24",
                Err("\"10.0.1/24\" is not an IPv4 CIDR such as 10.0.1.0/24"),
            ),
            (
                "fd00::/64",
                Err("\"fd00::/64\" is not an IPv4 CIDR such as 10.0.1.0/24"),
            ),
            ("", Err("\"\" is not an IPv4 CIDR such as 10.0.1.0/24")),
        ];
        for (input, want) in cases {
            let got = input
                .parse::<Subnet>()
                .map(|s| s.to_string())
                .map_err(|e| e.to_string());
            assert_eq!(
                got,
                want.map(str::to_string).map_err(str::to_string),
                "{input:?}"
            );
        }
    }

    #[test]
    fn reserved_addresses_of_a_subnet() {
        let cases = [
            ("10.0.1.0/24", "10.0.1.0", "10.0.1.1", "10.0.1.255"),
            (
                "10.250.0.0/16",
                "10.250.0.0",
                "10.250.0.1",
                "10.250.255.255",
            ),
            (
                "192.168.7.4/30",
                "192.168.7.4",
                "192.168.7.5",
                "192.168.7.7",
            ),
        ];
        for (cidr, network, gateway, broadcast) in cases {
            let s: Subnet = cidr.parse().unwrap();
            assert_eq!(
                (s.network(), s.gateway(), s.broadcast()),
                (ip(network), ip(gateway), ip(broadcast)),
                "{cidr}"
            );
            for reserved in [network, gateway, broadcast] {
                assert!(!s.is_assignable(ip(reserved)), "{cidr} {reserved}");
            }
        }
        let s: Subnet = "10.0.1.0/24".parse().unwrap();
        assert!(s.is_assignable(ip("10.0.1.2")));
        assert!(!s.is_assignable(ip("10.0.2.2")), "outside");
    }

    #[test]
    fn allocate_takes_the_lowest_free_address() {
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("10.0.1.0/24", &[], Some("10.0.1.2")),
            ("10.0.1.0/24", &["10.0.1.2"], Some("10.0.1.3")),
            ("10.0.1.0/24", &["10.0.1.2", "10.0.1.4"], Some("10.0.1.3")),
            ("10.0.1.0/24", &["10.0.1.3"], Some("10.0.1.2")),
            // Addresses of other subnets do not matter.
            ("10.0.1.0/24", &["10.0.2.2", "10.0.0.2"], Some("10.0.1.2")),
            // A /30 has exactly one address for a task.
            ("192.168.7.4/30", &[], Some("192.168.7.6")),
            ("192.168.7.4/30", &["192.168.7.6"], None),
            // A /29: .2 to .6.
            (
                "10.9.0.0/29",
                &["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5"],
                Some("10.9.0.6"),
            ),
            (
                "10.9.0.0/29",
                &["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"],
                None,
            ),
            // Crossing an octet boundary in a /16.
            ("10.250.0.0/16", &[], Some("10.250.0.2")),
        ];
        for (cidr, used, want) in cases {
            let s: Subnet = cidr.parse().unwrap();
            assert_eq!(
                allocate(&s, &set(used)),
                want.map(ip),
                "{cidr} minus {used:?}"
            );
        }
    }

    #[test]
    fn allocate_never_hands_out_a_reserved_address_and_fills_the_subnet() {
        let s: Subnet = "10.3.0.0/26".parse().unwrap();
        let mut used = BTreeSet::new();
        while let Some(next) = allocate(&s, &used) {
            assert!(s.is_assignable(next), "{next}");
            assert!(used.insert(next), "{next} handed out twice");
        }
        assert_eq!(used.len(), 64 - 3);
        let s: Subnet = "10.4.0.0/23".parse().unwrap();
        let mut used: BTreeSet<_> = (0..255).map(|i| Ipv4Addr::new(10, 4, 0, i)).collect();
        used.remove(&ip("10.4.0.0"));
        assert_eq!(
            allocate(&s, &used),
            Some(ip("10.4.0.255")),
            "not a broadcast in a /23"
        );
    }

    #[test]
    fn macs_are_local_unicast_and_follow_the_ip() {
        let mac = mac_for(ip("10.250.3.17"));
        assert_eq!(mac.to_string(), "02:be:0a:fa:03:11");
        assert_eq!(mac.0[0] & 0b10, 0b10, "locally administered");
        assert_eq!(mac.0[0] & 0b01, 0, "unicast");
        assert_eq!("02:be:0a:fa:03:11".parse::<MacAddr>(), Ok(mac));
        for bad in [
            "02:be:0a:fa:03",
            "02:be:0a:fa:03:11:00",
            "2:be:0a:fa:03:11",
            "zz:be:0a:fa:03:11",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn subnets_and_macs_serialise_as_strings() {
        let s: Subnet = "10.0.1.0/24".parse().unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"10.0.1.0/24\"");
        assert!(serde_json::from_str::<Subnet>("\"10.0.1.9/24\"").is_err());
        let m = mac_for(ip("10.0.1.2"));
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"02:be:0a:00:01:02\"");
        assert_eq!(
            serde_json::from_str::<MacAddr>("\"02:be:0a:00:01:02\"").unwrap(),
            m
        );
    }
}
