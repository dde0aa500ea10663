//! awsvpc networking in the model: subnets and security groups as Berth
//! resources with AWS-style ids, RunTask's `awsvpcConfiguration` checked
//! against them, and the ENI attachment a task shows in DescribeTasks.
//! Pure rules; the kernel side is `berth-net`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// The subnet every Berth has from its first start.
pub const DEFAULT_SUBNET_ID: &str = "subnet-default";
/// Its range unless the operator chooses another at first start.
pub const DEFAULT_SUBNET_CIDR: &str = "10.89.0.0/16";
/// The security group every Berth has from its first start: all traffic
/// from its own members, as in a default VPC.
pub const DEFAULT_SECURITY_GROUP_ID: &str = "sg-default";

/// ECS's limits on `awsvpcConfiguration`.
pub const MAX_SUBNETS: usize = 16;
pub const MAX_SECURITY_GROUPS: usize = 5;

/// Prefix lengths a subnet may have (AWS allows /16 to /28; Berth also
/// allows bigger ranges for hosts with many tasks).
pub const MIN_PREFIX: u8 = 8;
pub const MAX_PREFIX: u8 = 28;

/// The ENI attachment type ECS shows for awsvpc tasks.
pub const ENI_ATTACHMENT: &str = "ElasticNetworkInterface";

/// A subnet: a private IPv4 range tasks get addresses from (on each node,
/// a bridge holding its gateway, the range's first address).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetRecord {
    /// `subnet-…`.
    pub id: String,
    pub cidr: Ipv4Net,
    /// A name for people (AWS's Name tag).
    #[serde(default)]
    pub name: String,
    /// Whether tasks may reach beyond the host (masqueraded). Off unless
    /// the operator turns it on.
    #[serde(default)]
    pub egress: bool,
    /// Seconds since the epoch.
    pub created_at: f64,
    /// EC2 tags other than `Name` (which is `name`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl SubnetRecord {
    /// The gateway (the bridge's address): the first address of the range.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.cidr.network()) + 1)
    }
}

/// A security group: ingress rules (who may reach its members) and
/// egress rules (what its members may reach).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupRecord {
    /// `sg-…`.
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub ingress: Vec<IngressRule>,
    pub created_at: f64,
    /// Egress rules, a rule's `cidr`/`source_group` being the destination.
    /// A group stored before egress rules existed allowed everything out,
    /// and still does.
    #[serde(default = "allow_all_egress")]
    pub egress: Vec<IngressRule>,
    /// EC2 tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// The egress rule EC2 gives every new group: all traffic to anywhere.
pub fn allow_all_egress() -> Vec<IngressRule> {
    vec![IngressRule { protocol: "-1".into(), from_port: 0, to_port: 0, cidr: Some(Ipv4Net::default()), source_group: None }]
}

/// One rule, in EC2's terms: a protocol (`tcp`, `udp`, `icmp` or `-1`
/// for all), a port range (TCP/UDP), and one peer — the source of an
/// ingress rule, the destination of an egress rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRule {
    pub protocol: String,
    #[serde(default)]
    pub from_port: u16,
    #[serde(default)]
    pub to_port: u16,
    /// Source range, e.g. `10.89.0.0/16` (or `0.0.0.0/0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<Ipv4Net>,
    /// Source group: traffic from any task in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_group: Option<String>,
}

/// A subnet range Berth accepts: IPv4 CIDR in canonical form within the
/// allowed prefix lengths, not overlapping `others`.
pub fn parse_subnet_cidr(text: &str, others: &[SubnetRecord]) -> Result<Ipv4Net, ModelError> {
    let net: Ipv4Net = text
        .trim()
        .parse()
        .map_err(|_| ModelError::invalid(format!("Invalid CIDR block '{text}': give an IPv4 range like 10.89.0.0/16.")))?;
    if net.network() != net.addr() {
        return Err(ModelError::invalid(format!(
            "Invalid CIDR block '{text}': it has host bits set; did you mean {}/{}?",
            net.network(),
            net.prefix_len()
        )));
    }
    if !(MIN_PREFIX..=MAX_PREFIX).contains(&net.prefix_len()) {
        return Err(ModelError::invalid(format!(
            "Invalid CIDR block '{text}': the prefix length must be between /{MIN_PREFIX} and /{MAX_PREFIX}."
        )));
    }
    if !net.network().is_private() {
        return Err(ModelError::invalid(format!(
            "Invalid CIDR block '{text}': use a private range (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)."
        )));
    }
    if let Some(o) = others.iter().find(|o| o.cidr.contains(&net.network()) || net.contains(&o.cidr.network())) {
        return Err(ModelError::invalid(format!(
            "The CIDR '{text}' conflicts with subnet {} ({}).",
            o.id, o.cidr
        )));
    }
    Ok(net)
}

/// Checks a security group's rules; `known` says whether a group id exists.
pub fn validate_rules(rules: &[IngressRule], known: impl Fn(&str) -> bool) -> Result<(), ModelError> {
    for r in rules {
        match r.protocol.as_str() {
            "tcp" | "udp" => {
                if r.from_port > r.to_port {
                    return Err(ModelError::invalid(format!(
                        "Invalid port range {}-{} for {}: give 0 ≤ from ≤ to ≤ 65535.",
                        r.from_port, r.to_port, r.protocol
                    )));
                }
            }
            "icmp" | "-1" => {}
            other => {
                return Err(ModelError::invalid(format!(
                    "Invalid IP protocol '{other}': use tcp, udp, icmp or -1 (all)."
                )));
            }
        }
        match (&r.cidr, &r.source_group) {
            (Some(_), None) => {}
            (None, Some(g)) if known(g) => {}
            (None, Some(g)) => {
                return Err(ModelError::invalid(format!("The security group '{g}' does not exist.")));
            }
            _ => return Err(ModelError::invalid("Each rule needs exactly one source: a CIDR or a security group.")),
        }
    }
    Ok(())
}

/// The default group's rules: all traffic from its own members.
pub fn default_group_rules() -> Vec<IngressRule> {
    vec![IngressRule {
        protocol: "-1".into(),
        from_port: 0,
        to_port: 0,
        cidr: None,
        source_group: Some(DEFAULT_SECURITY_GROUP_ID.into()),
    }]
}

/// What a task's `awsvpcConfiguration` resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskNetwork {
    /// The subnets to choose from, in the order given.
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
}

/// RunTask's (or a service's) `awsvpcConfiguration`, as given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AwsVpcRequest {
    pub subnets: Vec<String>,
    pub security_groups: Option<Vec<String>>,
    /// `ENABLED` or `DISABLED` (ECS's spelling), if given.
    pub assign_public_ip: Option<String>,
}

/// Checks RunTask's `awsvpcConfiguration` as ECS does: subnets given (at
/// most 16) and known, security groups (at most 5) known, the default
/// group when none is given.
pub fn resolve_awsvpc(
    config: &AwsVpcRequest,
    subnet_exists: impl Fn(&str) -> bool,
    group_exists: impl Fn(&str) -> bool,
) -> Result<TaskNetwork, ModelError> {
    if config.subnets.is_empty() {
        return Err(ModelError::invalid("subnets can not be empty."));
    }
    if config.subnets.len() > MAX_SUBNETS {
        return Err(ModelError::invalid(format!("At most {MAX_SUBNETS} subnets can be given.")));
    }
    let groups = config.security_groups.clone().unwrap_or_default();
    if groups.len() > MAX_SECURITY_GROUPS {
        return Err(ModelError::invalid(format!("At most {MAX_SECURITY_GROUPS} security groups can be given.")));
    }
    if let Some(s) = config.subnets.iter().find(|s| !subnet_exists(s)) {
        return Err(ModelError::invalid(format!(
            "Error retrieving subnet information for [{s}]: The subnet ID '{s}' does not exist \
             (Berth's subnets: `berth subnet ls`)."
        )));
    }
    if let Some(g) = groups.iter().find(|g| !group_exists(g)) {
        return Err(ModelError::invalid(format!(
            "Error retrieving security group information for [{g}]: The security group '{g}' does not exist \
             (Berth's security groups: `berth sg ls`)."
        )));
    }
    let security_groups = if groups.is_empty() { vec![DEFAULT_SECURITY_GROUP_ID.to_owned()] } else { groups };
    let assign_public_ip = config.assign_public_ip.as_deref() == Some("ENABLED");
    Ok(TaskNetwork { subnets: config.subnets.clone(), security_groups, assign_public_ip })
}

/// The task's private DNS name, as EC2 writes it.
pub fn private_dns_name(ip: Ipv4Addr, region: &str) -> String {
    let dashed = ip.to_string().replace('.', "-");
    if region == "us-east-1" { format!("ip-{dashed}.ec2.internal") } else { format!("ip-{dashed}.{region}.compute.internal") }
}

/// The network interface id ECS shows: `eni-` and 17 hex digits of the
/// attachment id.
pub fn eni_id(attachment_id: &str) -> String {
    let hex: String = attachment_id.chars().filter(char::is_ascii_hexdigit).take(17).collect();
    format!("eni-{hex:0<17}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(id: &str, cidr: &str) -> SubnetRecord {
        SubnetRecord {
            id: id.into(),
            cidr: cidr.parse().unwrap(),
            name: String::new(),
            egress: false,
            created_at: 0.0,
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn subnet_ranges_are_checked() {
        let existing = [subnet("subnet-a", "10.89.0.0/16")];
        assert_eq!(parse_subnet_cidr("10.90.0.0/24", &existing).unwrap().to_string(), "10.90.0.0/24");
        let err = |t: &str| parse_subnet_cidr(t, &existing).unwrap_err().to_string();
        assert!(err("10.90.0.5/24").contains("did you mean 10.90.0.0/24"));
        assert!(err("10.89.3.0/24").contains("conflicts with subnet subnet-a"));
        assert!(err("10.0.0.0/7").contains("prefix length"));
        assert!(err("10.90.0.0/30").contains("prefix length"));
        assert!(err("8.8.8.0/24").contains("private range"));
        assert!(err("nonsense").contains("Invalid CIDR block"));
        assert_eq!(subnet("s", "10.89.0.0/16").gateway(), Ipv4Addr::new(10, 89, 0, 1));
    }

    #[test]
    fn rules_are_checked() {
        let rule = |p: &str, from, to, cidr: Option<&str>, group: Option<&str>| IngressRule {
            protocol: p.into(),
            from_port: from,
            to_port: to,
            cidr: cidr.map(|c| c.parse().unwrap()),
            source_group: group.map(Into::into),
        };
        let known = |g: &str| g == "sg-a";
        assert!(validate_rules(&[rule("tcp", 80, 80, Some("0.0.0.0/0"), None)], known).is_ok());
        assert!(validate_rules(&[rule("-1", 0, 0, None, Some("sg-a"))], known).is_ok());
        let err = |r: IngressRule| validate_rules(&[r], known).unwrap_err().to_string();
        assert!(err(rule("tcp", 90, 80, Some("0.0.0.0/0"), None)).contains("port range"));
        assert!(validate_rules(&[rule("tcp", 0, 65535, Some("0.0.0.0/0"), None)], known).is_ok());
        assert!(err(rule("sctp", 1, 2, Some("0.0.0.0/0"), None)).contains("protocol"));
        assert!(err(rule("tcp", 1, 2, None, Some("sg-b"))).contains("'sg-b' does not exist"));
        assert!(err(rule("tcp", 1, 2, None, None)).contains("exactly one source"));
    }

    #[test]
    fn awsvpc_configuration_as_ecs_checks_it() {
        let cfg = |subnets: &[&str], groups: Option<&[&str]>| AwsVpcRequest {
            subnets: subnets.iter().map(|s| s.to_string()).collect(),
            security_groups: groups.map(|g| g.iter().map(|s| s.to_string()).collect()),
            assign_public_ip: None,
        };
        let subnets = |s: &str| s.starts_with("subnet-ok");
        let groups = |g: &str| g.starts_with("sg-ok");
        let net = resolve_awsvpc(&cfg(&["subnet-ok1", "subnet-ok2"], None), subnets, groups).unwrap();
        assert_eq!(net.security_groups, [DEFAULT_SECURITY_GROUP_ID]);
        assert_eq!(net.subnets, ["subnet-ok1", "subnet-ok2"]);
        let err = |c| resolve_awsvpc(&c, subnets, groups).unwrap_err();
        let e = err(cfg(&["subnet-ok1", "subnet-nope"], None));
        assert_eq!(e.aws_type(), "InvalidParameterException");
        assert!(e.to_string().contains("The subnet ID 'subnet-nope' does not exist"), "{e}");
        assert!(err(cfg(&["subnet-ok"], Some(&["sg-nope"]))).to_string().contains("'sg-nope' does not exist"));
        assert!(err(cfg(&[], None)).to_string().contains("subnets can not be empty"));
        assert!(err(cfg(&["subnet-ok"], Some(&["sg-ok"; 6]))).to_string().contains("At most 5"));
    }

    #[test]
    fn groups_stored_before_egress_rules_allow_everything_out() {
        let old = r#"{"id":"sg-1","name":"web","ingress":[],"createdAt":1.0}"#;
        let g: SecurityGroupRecord = serde_json::from_str(old).unwrap();
        assert_eq!(g.egress, allow_all_egress());
        assert_eq!(g.egress[0].cidr.unwrap().to_string(), "0.0.0.0/0");
        assert!(g.tags.is_empty());
        let s: SubnetRecord = serde_json::from_str(r#"{"id":"subnet-1","cidr":"10.9.0.0/24","createdAt":1.0}"#).unwrap();
        assert!(s.tags.is_empty());
    }

    #[test]
    fn eni_names_are_as_ec2_writes_them() {
        assert_eq!(eni_id("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"), "eni-0f1e2d3c4b5a69788");
        assert_eq!(private_dns_name(Ipv4Addr::new(10, 89, 0, 7), "us-east-1"), "ip-10-89-0-7.ec2.internal");
        assert_eq!(private_dns_name(Ipv4Addr::new(10, 0, 0, 1), "eu-west-1"), "ip-10-0-0-1.eu-west-1.compute.internal");
    }
}
