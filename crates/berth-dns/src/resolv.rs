//! The host's resolvers, from `/etc/resolv.conf`: where forwarded names go.

use std::net::{IpAddr, SocketAddr};

/// The `nameserver` addresses of a resolv.conf text, port 53, in order.
pub fn nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let l = l.split(['#', ';']).next()?.trim();
            let mut words = l.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            // A scoped IPv6 address (fe80::1%eth0) is not usable from
            // another namespace; it is skipped.
            let ip: IpAddr = words.next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

/// The host's resolvers from `/etc/resolv.conf` (none if it cannot be read).
pub fn host_resolvers() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf").map(|t| nameservers(&t)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nameserver_lines() {
        let cases: &[(&str, &[&str])] = &[
            ("nameserver 10.0.0.2\n", &["10.0.0.2:53"]),
            ("# comment\nsearch corp\nnameserver 1.1.1.1 \n  nameserver\t::1\n", &["1.1.1.1:53", "[::1]:53"]),
            ("nameserver fe80::1%eth0\nnameserver bogus\n", &[]),
            ("nameserver 9.9.9.9 # trailing\n;nameserver 8.8.8.8\n", &["9.9.9.9:53"]),
            ("", &[]),
        ];
        for (text, want) in cases {
            let got: Vec<String> = nameservers(text).iter().map(ToString::to_string).collect();
            assert_eq!(got, *want, "{text:?}");
        }
    }
}
