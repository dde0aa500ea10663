//! What the firewall enforces, as plain data: security groups, which task
//! is in which, the subnets (and whether they may reach beyond the host),
//! and the host services tasks may call. Checked by [`FirewallState::validate`].

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::{VethAttachment, BridgeName, MacAddr, NetError, Subnet};

/// A protocol a rule allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP, on the rule's port range.
    Tcp,
    /// UDP, on the rule's port range.
    Udp,
    /// Every ICMP type (the rule's ports are ignored).
    Icmp,
    /// All traffic (the rule's ports are ignored).
    All,
}

/// The peer of a rule: where allowed traffic may come from (an ingress
/// rule) or go to (an egress rule).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// Any address in a range (`0.0.0.0/0` is everyone).
    Cidr(Ipv4Net),
    /// Any task that is a member of the group with this id.
    Group(String),
}

/// One rule of a security group: ingress (what members accept, `source`
/// the sender) or egress (what members may send, `source` the
/// destination).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// What it allows.
    pub protocol: Protocol,
    /// First port, for TCP and UDP.
    pub from_port: u16,
    /// Last port (inclusive), for TCP and UDP.
    pub to_port: u16,
    /// From where.
    pub source: Source,
}

impl Rule {
    /// TCP to ports `from..=to` from `source`.
    pub fn tcp(from: u16, to: u16, source: Source) -> Self {
        Self {
            protocol: Protocol::Tcp,
            from_port: from,
            to_port: to,
            source,
        }
    }

    /// UDP to ports `from..=to` from `source`.
    pub fn udp(from: u16, to: u16, source: Source) -> Self {
        Self {
            protocol: Protocol::Udp,
            from_port: from,
            to_port: to,
            source,
        }
    }

    /// All ICMP from `source`.
    pub fn icmp(source: Source) -> Self {
        Self {
            protocol: Protocol::Icmp,
            from_port: 0,
            to_port: u16::MAX,
            source,
        }
    }

    /// All traffic from `source`.
    pub fn all(source: Source) -> Self {
        Self {
            protocol: Protocol::All,
            from_port: 0,
            to_port: u16::MAX,
            source,
        }
    }
}

/// A security group: what its member tasks accept and what they may
/// send. As in AWS, a task accepts inbound traffic that any one of its
/// groups' ingress rules allows, may send what any one of its groups'
/// egress rules allows, and replies to allowed traffic either way. A
/// packet from one task to another passes both: the sender's egress and
/// the receiver's ingress. Egress rules do not open the machine: traffic
/// to anything off Berth's bridges also needs its subnet's egress switch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroup {
    /// `sg-` and 1 to 32 letters or digits.
    pub id: String,
    /// What members accept.
    pub ingress: Vec<Rule>,
    /// What members may send (EC2's default: everything, anywhere).
    #[serde(default = "SecurityGroup::anywhere")]
    pub egress: Vec<Rule>,
}

impl SecurityGroup {
    /// A VPC's default group: all traffic from the group's own members,
    /// and out to anywhere.
    pub fn default_group(id: impl Into<String>) -> Self {
        let id = id.into();
        Self {
            ingress: vec![Rule::all(Source::Group(id.clone()))],
            egress: Self::anywhere(),
            id,
        }
    }

    /// EC2's default egress: all traffic to anywhere.
    pub fn anywhere() -> Vec<Rule> {
        vec![Rule::all(Source::Cidr(Ipv4Net::default()))]
    }
}

/// A task as the firewall sees it: its address and port, and its groups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskPolicy {
    /// The task's address.
    pub ip: Ipv4Addr,
    /// The host end of its veth (frames from it must come from `ip`, `mac`).
    pub host_veth: String,
    /// The MAC of its `eth0`.
    pub mac: MacAddr,
    /// The ids of the groups it is a member of.
    pub groups: Vec<String>,
}

impl TaskPolicy {
    /// The attached task `att` as a member of `groups`.
    pub fn new(att: &VethAttachment, groups: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            ip: att.ip,
            host_veth: att.host_veth.clone(),
            mac: att.mac,
            groups: groups.into_iter().map(Into::into).collect(),
        }
    }
}

/// A subnet served by a Berth bridge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetPolicy {
    /// Its bridge.
    pub bridge: BridgeName,
    /// The subnet.
    pub subnet: Subnet,
    /// Whether its tasks may reach beyond this host (masqueraded behind the
    /// host's address; needs `net.ipv4.ip_forward=1`). Off: task traffic
    /// never leaves the machine.
    pub egress: bool,
}

/// A host service transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// A service on the host that tasks may connect to (the task metadata
/// endpoint, say). Nothing else on the host is reachable from a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostService {
    /// TCP or UDP.
    pub transport: Transport,
    /// A host address (a bridge's gateway address, say).
    pub addr: Ipv4Addr,
    /// The port.
    pub port: u16,
}

impl HostService {
    /// TCP to `addr:port`.
    pub fn tcp(addr: Ipv4Addr, port: u16) -> Self {
        Self {
            transport: Transport::Tcp,
            addr,
            port,
        }
    }
}

/// A task port published on a host address (RunTask's `assignPublicIp:
/// ENABLED`): connections to `host_addr:host_port` go to the task, subject
/// to its security groups (the host's own connections always pass).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedPort {
    /// TCP or UDP.
    pub transport: Transport,
    /// The host address the operator chose.
    pub host_addr: Ipv4Addr,
    /// The port there.
    pub host_port: u16,
    /// The task's address.
    pub task_ip: Ipv4Addr,
    /// The port in the task.
    pub task_port: u16,
}

/// A link-local service tasks reach at a fixed address, as on Fargate
/// (the task-role credentials endpoint at `169.254.170.2:80`): TCP from a
/// task's bridge to `addr:port` is DNAT'ed to that subnet's gateway at
/// `gateway_port`, a host service there. Redirected to a local address,
/// it never leaves the machine, and the input chain admits it exactly as
/// it admits the gateway's port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkLocalService {
    /// The address tasks connect to (`169.254.170.2`).
    pub addr: Ipv4Addr,
    /// The port there (`80`).
    pub port: u16,
    /// The port on each subnet's gateway it is answered at.
    pub gateway_port: u16,
}

/// Everything the firewall enforces; [`crate::Firewall::apply`] makes the
/// kernel's rules match it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirewallState {
    /// Berth's subnets and their bridges.
    pub subnets: Vec<SubnetPolicy>,
    /// The security groups.
    pub groups: Vec<SecurityGroup>,
    /// The attached tasks and their groups.
    pub tasks: Vec<TaskPolicy>,
    /// Host services tasks may reach.
    pub host_services: Vec<HostService>,
    /// Task ports published on host addresses.
    #[serde(default)]
    pub published: Vec<PublishedPort>,
    /// Link-local services, redirected to each subnet's gateway.
    #[serde(default)]
    pub link_local: Vec<LinkLocalService>,
}

impl FirewallState {
    /// Checks that ids are well-formed and unique, that every group a task
    /// or rule names exists, that port ranges are ranges, and that every
    /// task lies in one of the subnets.
    pub fn validate(&self) -> Result<(), NetError> {
        let bad = |reason: String| Err(NetError::InvalidPolicy(reason));
        let mut bridges = BTreeSet::new();
        for s in &self.subnets {
            if !bridges.insert(s.bridge.as_str()) {
                return bad(format!("bridge {} serves two subnets", s.bridge));
            }
        }
        let mut groups = BTreeSet::new();
        for g in &self.groups {
            check_group_id(&g.id)?;
            if !groups.insert(g.id.as_str()) {
                return bad(format!("security group {} is defined twice", g.id));
            }
        }
        for g in &self.groups {
            for r in g.ingress.iter().chain(&g.egress) {
                if matches!(r.protocol, Protocol::Tcp | Protocol::Udp) && r.from_port > r.to_port {
                    return bad(format!(
                        "{}: port range {}-{} is empty",
                        g.id, r.from_port, r.to_port
                    ));
                }
                if let Source::Group(src) = &r.source
                    && !groups.contains(src.as_str())
                {
                    return bad(format!("{}: peer group {src} does not exist", g.id));
                }
            }
        }
        let mut published = BTreeSet::new();
        for p in &self.published {
            if !published.insert((p.transport, p.host_addr, p.host_port)) {
                return bad(format!("{}:{} ({:?}) is published twice", p.host_addr, p.host_port, p.transport));
            }
            if !self.tasks.iter().any(|t| t.ip == p.task_ip) {
                return bad(format!("{}:{} is published for {}, which is no task", p.host_addr, p.host_port, p.task_ip));
            }
        }
        let mut ips = BTreeSet::new();
        let mut veths = BTreeSet::new();
        for t in &self.tasks {
            if !ips.insert(t.ip) {
                return bad(format!("two tasks have address {}", t.ip));
            }
            if !veths.insert(t.host_veth.as_str()) {
                return bad(format!("two tasks have veth {}", t.host_veth));
            }
            crate::names::check_ifname("veth", &t.host_veth)?;
            if !self.subnets.iter().any(|s| s.subnet.is_assignable(t.ip)) {
                return bad(format!("task address {} is in none of the subnets", t.ip));
            }
            for g in &t.groups {
                if !groups.contains(g.as_str()) {
                    return bad(format!(
                        "task {} is in security group {g}, which does not exist",
                        t.ip
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_group_id(id: &str) -> Result<(), NetError> {
    let rest = id.strip_prefix("sg-").unwrap_or("");
    if rest.is_empty() || rest.len() > 32 || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(NetError::InvalidName {
            what: "security group id",
            name: id.to_string(),
            reason: "must be sg- and 1-32 letters or digits",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn state() -> FirewallState {
        FirewallState {
            subnets: vec![SubnetPolicy {
                bridge: BridgeName::new("berthtest").unwrap(),
                subnet: "10.250.9.0/24".parse().unwrap(),
                egress: false,
            }],
            groups: vec![SecurityGroup::default_group("sg-default")],
            tasks: vec![TaskPolicy {
                ip: "10.250.9.2".parse().unwrap(),
                host_veth: "bv0000000000001".into(),
                mac: crate::mac_for("10.250.9.2".parse().unwrap()),
                groups: vec!["sg-default".into()],
            }],
            host_services: vec![],
            published: vec![],
            link_local: vec![],
        }
    }

    #[test]
    fn a_consistent_state_is_valid() {
        state().validate().unwrap();
        FirewallState::default().validate().unwrap();
    }

    #[test]
    fn inconsistencies_are_named() {
        type Break = fn(&mut FirewallState);
        let cases: &[(Break, &str)] = &[
            (
                |s| s.groups[0].id = "default".into(),
                "invalid security group id \"default\"",
            ),
            (
                |s| s.groups[0].id = "sg-a_b".into(),
                "must be sg- and 1-32 letters or digits",
            ),
            (
                |s| s.groups.push(SecurityGroup::default_group("sg-default")),
                "defined twice",
            ),
            (
                |s| {
                    s.groups[0].ingress.push(Rule::tcp(
                        90,
                        80,
                        Source::Cidr("0.0.0.0/0".parse().unwrap()),
                    ))
                },
                "port range 90-80 is empty",
            ),
            (
                |s| {
                    s.groups[0]
                        .ingress
                        .push(Rule::all(Source::Group("sg-nope".into())))
                },
                "peer group sg-nope does not exist",
            ),
            (
                |s| s.tasks[0].groups.push("sg-nope".into()),
                "in security group sg-nope, which does not exist",
            ),
            (
                |s| s.tasks.push(s.tasks[0].clone()),
                "two tasks have address 10.250.9.2",
            ),
            (
                |s| s.tasks[0].ip = "10.250.10.2".parse().unwrap(),
                "in none of the subnets",
            ),
            (
                |s| s.tasks[0].ip = "10.250.9.1".parse().unwrap(),
                "in none of the subnets",
            ),
            (
                |s| s.subnets.push(s.subnets[0].clone()),
                "bridge berthtest serves two subnets",
            ),
        ];
        for (i, (breaks, want)) in cases.iter().enumerate() {
            let mut s = state();
            breaks(&mut s);
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains(want), "case {i}: {err:?} lacks {want:?}");
        }
    }

    #[test]
    fn icmp_and_all_ignore_ports() {
        let mut s = state();
        s.groups[0].ingress.push(Rule {
            protocol: Protocol::Icmp,
            from_port: 9,
            to_port: 1,
            source: Source::Group("sg-default".into()),
        });
        s.validate().unwrap();
    }

    #[test]
    fn the_state_has_a_json_form() {
        let json = serde_json::to_value(state()).unwrap();
        assert_eq!(
            json["groups"][0]["ingress"][0]["source"]["group"],
            "sg-default"
        );
        assert_eq!(json["groups"][0]["ingress"][0]["protocol"], "all");
        assert_eq!(json["subnets"][0]["subnet"], "10.250.9.0/24");
        assert_eq!(
            serde_json::from_value::<FirewallState>(json).unwrap(),
            state()
        );
    }
}
