//! Security groups and their rules, as EC2 has them, over Berth's groups:
//! the rules made here are the rules the firewall enforces.
//!
//! A rule is one protocol, one port range and one peer (an IPv4 range or
//! a group); EC2's `IpPermission`s are written as such rules and shown
//! grouped back by protocol and ports. Each rule has a stable id
//! (`sgr-…`, a hash of the group, its direction and the rule). IPv4 only:
//! authorizing an IPv6 range or a prefix list is `InvalidParameterValue`,
//! revoking one is `InvalidPermission.NotFound` (the error Terraform
//! expects when it removes the IPv6 default egress rule EC2 adds in
//! dual-stack VPCs). Rule descriptions are not kept. ICMP rules cover
//! all of ICMP (type and code -1): Berth's firewall matches the protocol.

use std::collections::BTreeMap;

use berth_model::network::{IngressRule, SecurityGroupRecord};
use berth_wire::ec2::{
    AuthorizeSecurityGroupEgressRequest, AuthorizeSecurityGroupEgressResult, AuthorizeSecurityGroupIngressRequest,
    AuthorizeSecurityGroupIngressResult, CreateSecurityGroupRequest, CreateSecurityGroupResult, DeleteSecurityGroupRequest,
    DeleteSecurityGroupResult, DescribeSecurityGroupRulesRequest, DescribeSecurityGroupRulesResult,
    DescribeSecurityGroupsRequest, DescribeSecurityGroupsResult, IpPermission, IpRange, ReferencedSecurityGroup,
    ResourceType, RevokeSecurityGroupEgressRequest, RevokeSecurityGroupEgressResult, RevokeSecurityGroupIngressRequest,
    RevokeSecurityGroupIngressResult, SecurityGroup, SecurityGroupRule, UserIdGroupPair,
};
use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};

use super::filters::{Filters, page, tag_list};
use super::tags::tags_for;
use super::vpc::vpc_not_found;
use super::{Call, VPC_ID, invalid};
use crate::ApiError;
use crate::berth::network::{self as shared, Direction};

const GROUP_FILTERS: &[&str] = &[
    "group-name",
    "group-id",
    "vpc-id",
    "description",
    "owner-id",
    "ip-permission.protocol",
    "ip-permission.from-port",
    "ip-permission.to-port",
    "ip-permission.cidr",
    "ip-permission.group-id",
    "egress.ip-permission.protocol",
    "egress.ip-permission.cidr",
    "egress.ip-permission.group-id",
];

async fn all_groups(call: &Call<'_>) -> Result<Vec<SecurityGroupRecord>, ApiError> {
    Ok(call.store().list_security_groups().await?.into_iter().map(|v| v.value).collect())
}

fn by_name<'a>(groups: &'a [SecurityGroupRecord], name: &str) -> Result<&'a SecurityGroupRecord, ApiError> {
    groups.iter().find(|g| g.name == name).ok_or_else(|| {
        ApiError::service("InvalidGroup.NotFound", format!("The security group '{name}' does not exist in VPC '{VPC_ID}'"))
    })
}

/// The group a request names by id or (for the default VPC's calls) name.
fn resolve(groups: &[SecurityGroupRecord], id: Option<&str>, name: Option<&str>) -> Result<String, ApiError> {
    match (id, name) {
        (Some(id), _) => groups
            .iter()
            .find(|g| g.id == id)
            .map(|g| g.id.clone())
            .ok_or_else(|| shared::group_not_found(id)),
        (None, Some(name)) => by_name(groups, name).map(|g| g.id.clone()),
        (None, None) => Err(ApiError::service("MissingParameter", "The request must contain the parameter groupId or groupName.")),
    }
}

pub(super) async fn describe(call: &Call<'_>, r: DescribeSecurityGroupsRequest) -> Result<DescribeSecurityGroupsResult, ApiError> {
    let filters = Filters::new(r.filters, GROUP_FILTERS)?;
    let groups = all_groups(call).await?;
    for id in r.group_ids.iter().flatten() {
        if !groups.iter().any(|g| &g.id == id) {
            return Err(shared::group_not_found(id));
        }
    }
    for name in r.group_names.iter().flatten() {
        by_name(&groups, name)?;
    }
    let mut out = Vec::new();
    for g in &groups {
        if r.group_ids.as_ref().is_some_and(|ids| !ids.contains(&g.id)) {
            continue;
        }
        if r.group_names.as_ref().is_some_and(|names| !names.contains(&g.name)) {
            continue;
        }
        let value = |name: &str| -> Vec<String> {
            let rules = if name.starts_with("egress.") { &g.egress } else { &g.ingress };
            match name.trim_start_matches("egress.") {
                "group-name" => vec![g.name.clone()],
                "group-id" => vec![g.id.clone()],
                "vpc-id" => vec![VPC_ID.into()],
                "description" => vec![g.description.clone()],
                "owner-id" => vec![call.account_id().into()],
                "ip-permission.protocol" => rules.iter().map(|r| r.protocol.clone()).collect(),
                "ip-permission.from-port" => rules.iter().filter_map(|r| ports(r).map(|p| p.0.to_string())).collect(),
                "ip-permission.to-port" => rules.iter().filter_map(|r| ports(r).map(|p| p.1.to_string())).collect(),
                "ip-permission.cidr" => rules.iter().filter_map(|r| r.cidr.map(|c| c.to_string())).collect(),
                "ip-permission.group-id" => rules.iter().filter_map(|r| r.source_group.clone()).collect(),
                _ => vec![],
            }
        };
        if filters.matches(&g.tags, value) {
            out.push(group(call, g));
        }
    }
    let (groups, next_token) = page(out, |g| g.group_id.clone().unwrap_or_default(), r.max_results, r.next_token.as_deref())?;
    Ok(DescribeSecurityGroupsResult { security_groups: Some(groups), next_token })
}

fn group(call: &Call<'_>, g: &SecurityGroupRecord) -> SecurityGroup {
    SecurityGroup {
        group_id: Some(g.id.clone()),
        group_name: Some(g.name.clone()),
        description: Some(g.description.clone()),
        owner_id: Some(call.account_id().into()),
        vpc_id: Some(VPC_ID.into()),
        security_group_arn: Some(call.arn("security-group", &g.id)),
        ip_permissions: Some(permissions(call, &g.ingress)),
        ip_permissions_egress: Some(permissions(call, &g.egress)),
        tags: Some(tag_list(&g.tags)),
    }
}

/// The ports EC2 shows for a rule: TCP/UDP their range, ICMP -1/-1 (all
/// types and codes), all protocols none.
fn ports(r: &IngressRule) -> Option<(i32, i32)> {
    match r.protocol.as_str() {
        "tcp" | "udp" => Some((i32::from(r.from_port), i32::from(r.to_port))),
        "icmp" => Some((-1, -1)),
        _ => None,
    }
}

/// Rules grouped back into EC2's permissions, one per protocol and ports,
/// in the order their first rule has.
fn permissions(call: &Call<'_>, rules: &[IngressRule]) -> Vec<IpPermission> {
    let mut out: Vec<IpPermission> = Vec::new();
    for r in rules {
        let (from, to) = ports(r).unzip();
        let i = match out.iter().position(|p| p.ip_protocol.as_deref() == Some(&r.protocol) && p.from_port == from && p.to_port == to) {
            Some(i) => i,
            None => {
                out.push(IpPermission {
                    ip_protocol: Some(r.protocol.clone()),
                    from_port: from,
                    to_port: to,
                    ip_ranges: Some(vec![]),
                    ipv6_ranges: Some(vec![]),
                    prefix_list_ids: Some(vec![]),
                    user_id_group_pairs: Some(vec![]),
                });
                out.len() - 1
            }
        };
        let p = &mut out[i];
        if let Some(c) = r.cidr {
            p.ip_ranges.get_or_insert_default().push(IpRange { cidr_ip: Some(c.to_string()), description: None });
        }
        if let Some(g) = &r.source_group {
            p.user_id_group_pairs.get_or_insert_default().push(UserIdGroupPair {
                group_id: Some(g.clone()),
                user_id: Some(call.account_id().into()),
                ..Default::default()
            });
        }
    }
    out
}

/// A rule's stable id.
fn rule_id(group: &str, direction: Direction, r: &IngressRule) -> String {
    let peer = r.cidr.map(|c| c.to_string()).or_else(|| r.source_group.clone()).unwrap_or_default();
    let text = format!("{group}|{direction:?}|{}|{}|{}|{peer}", r.protocol, r.from_port, r.to_port);
    let digest = Sha256::digest(text.as_bytes());
    format!("sgr-{}", &hex::encode(digest)[..17])
}

fn rule(call: &Call<'_>, group: &str, direction: Direction, r: &IngressRule) -> SecurityGroupRule {
    let id = rule_id(group, direction, r);
    let (from, to) = ports(r).map_or((-1, -1), |p| p);
    SecurityGroupRule {
        security_group_rule_arn: Some(call.arn("security-group-rule", &id)),
        security_group_rule_id: Some(id),
        group_id: Some(group.into()),
        group_owner_id: Some(call.account_id().into()),
        is_egress: Some(direction == Direction::Egress),
        ip_protocol: Some(r.protocol.clone()),
        from_port: Some(from),
        to_port: Some(to),
        cidr_ipv4: r.cidr.map(|c| c.to_string()),
        referenced_group_info: r.source_group.as_ref().map(|g| ReferencedSecurityGroup {
            group_id: Some(g.clone()),
            user_id: Some(call.account_id().into()),
            ..Default::default()
        }),
        tags: Some(vec![]),
        ..Default::default()
    }
}

pub(super) async fn create(call: &Call<'_>, r: CreateSecurityGroupRequest) -> Result<CreateSecurityGroupResult, ApiError> {
    if let Some(vpc) = &r.vpc_id
        && vpc != VPC_ID
    {
        return Err(vpc_not_found(vpc));
    }
    if r.group_name.starts_with("sg-") {
        return Err(invalid(format!("Group names may not be in the format sg-*: '{}'.", r.group_name)));
    }
    if r.description.is_empty() || r.description.len() > 255 {
        return Err(invalid("The group description must be 1 to 255 characters."));
    }
    let tags = tags_for(r.tag_specifications, ResourceType::SecurityGroup)?;
    let g = shared::new_group(call.api, &r.group_name, r.description, Vec::new(), tags).await?;
    Ok(CreateSecurityGroupResult {
        security_group_arn: Some(call.arn("security-group", &g.id)),
        tags: Some(tag_list(&g.tags)),
        group_id: Some(g.id),
    })
}

pub(super) async fn delete(call: &Call<'_>, r: DeleteSecurityGroupRequest) -> Result<DeleteSecurityGroupResult, ApiError> {
    let groups = all_groups(call).await?;
    let id = resolve(&groups, r.group_id.as_deref(), r.group_name.as_deref())?;
    shared::remove_group(call.api, &id).await?;
    Ok(DeleteSecurityGroupResult { r#return: Some(true), group_id: Some(id) })
}

/// What a request's permissions become: Berth's rules, or for a revoke of
/// something Berth can never hold, the `InvalidPermission.NotFound` EC2
/// would give.
fn to_rules(
    perms: &[IpPermission],
    groups: &[SecurityGroupRecord],
    revoking: bool,
    group_id: &str,
) -> Result<Vec<IngressRule>, ApiError> {
    let not_found = || {
        ApiError::service(
            "InvalidPermission.NotFound",
            format!("The specified rule does not exist in this security group ({group_id}): Berth's groups hold IPv4 rules only."),
        )
    };
    let mut out = Vec::new();
    for p in perms {
        let protocol = match p.ip_protocol.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("-1" | "all") => "-1",
            Some("tcp" | "6") => "tcp",
            Some("udp" | "17") => "udp",
            Some("icmp" | "1") => "icmp",
            Some(other) => return Err(invalid(format!("Invalid value '{other}' for IP protocol: use tcp, udp, icmp or -1."))),
            None => return Err(ApiError::service("MissingParameter", "The request must contain the parameter ipProtocol.")),
        };
        let (from, to) = match protocol {
            "tcp" | "udp" => {
                let (Some(from), Some(to)) = (p.from_port, p.to_port) else {
                    return Err(invalid(format!("Invalid value for portRange: {protocol} needs FromPort and ToPort.")));
                };
                let from = u16::try_from(from).map_err(|_| invalid(format!("Invalid value '{from}' for fromPort.")))?;
                let to = u16::try_from(to).map_err(|_| invalid(format!("Invalid value '{to}' for toPort.")))?;
                if from > to {
                    return Err(invalid(format!("Invalid port range {from}-{to}: FromPort must not exceed ToPort.")));
                }
                (from, to)
            }
            "icmp" => {
                if p.from_port.is_some_and(|v| v != -1) || p.to_port.is_some_and(|v| v != -1) {
                    return Err(invalid(
                        "Berth's firewall matches all of ICMP: give FromPort -1 and ToPort -1 (every type and code).",
                    ));
                }
                (0, 0)
            }
            _ => (0, 0),
        };
        let ipv6 = p.ipv6_ranges.as_ref().is_some_and(|r| !r.is_empty());
        let prefixes = p.prefix_list_ids.as_ref().is_some_and(|r| !r.is_empty());
        if ipv6 || prefixes {
            if revoking {
                return Err(not_found());
            }
            return Err(invalid("Berth's VPC is IPv4 only: IPv6 ranges and prefix lists cannot be given."));
        }
        let mut peers = Vec::new();
        for range in p.ip_ranges.iter().flatten() {
            let text = range.cidr_ip.as_deref().unwrap_or("");
            let net: Ipv4Net = text.parse().map_err(|_| invalid(format!("CIDR block {text} is malformed")))?;
            if net.network() != net.addr() {
                return Err(invalid(format!("CIDR block {text} is malformed: it has host bits set")));
            }
            peers.push((Some(net), None));
        }
        for pair in p.user_id_group_pairs.iter().flatten() {
            let id = match (&pair.group_id, &pair.group_name) {
                (Some(id), _) => {
                    if !groups.iter().any(|g| &g.id == id) {
                        return Err(shared::group_not_found(id));
                    }
                    id.clone()
                }
                (None, Some(name)) => by_name(groups, name)?.id.clone(),
                (None, None) => return Err(invalid("A UserIdGroupPair needs a GroupId or GroupName.")),
            };
            peers.push((None, Some(id)));
        }
        if peers.is_empty() {
            return Err(invalid("Each IpPermission needs a peer: an IpRange or a UserIdGroupPair."));
        }
        for (cidr, source_group) in peers {
            out.push(IngressRule { protocol: protocol.into(), from_port: from, to_port: to, cidr, source_group });
        }
    }
    if out.is_empty() {
        return Err(ApiError::service("MissingParameter", "The request must contain the parameter ipPermissions."));
    }
    Ok(out)
}

/// The older form: one permission in top-level members.
fn legacy(
    protocol: Option<String>,
    from: Option<i32>,
    to: Option<i32>,
    cidr: Option<String>,
    source_group_name: Option<String>,
) -> Option<IpPermission> {
    if protocol.is_none() && cidr.is_none() && source_group_name.is_none() {
        return None;
    }
    Some(IpPermission {
        ip_protocol: protocol.or(Some("-1".into())),
        from_port: from,
        to_port: to,
        ip_ranges: cidr.map(|c| vec![IpRange { cidr_ip: Some(c), description: None }]),
        user_id_group_pairs: source_group_name.map(|n| vec![UserIdGroupPair { group_name: Some(n), ..Default::default() }]),
        ..Default::default()
    })
}

async fn authorize(
    call: &Call<'_>,
    group_id: Option<&str>,
    group_name: Option<&str>,
    direction: Direction,
    perms: Vec<IpPermission>,
) -> Result<Vec<SecurityGroupRule>, ApiError> {
    let groups = all_groups(call).await?;
    let id = resolve(&groups, group_id, group_name)?;
    let rules = to_rules(&perms, &groups, false, &id)?;
    shared::change_rules(call.api, &id, direction, &rules, true).await?;
    Ok(rules.iter().map(|r| rule(call, &id, direction, r)).collect())
}

async fn revoke(
    call: &Call<'_>,
    group_id: Option<&str>,
    group_name: Option<&str>,
    direction: Direction,
    perms: Vec<IpPermission>,
    rule_ids: Vec<String>,
) -> Result<(), ApiError> {
    let groups = all_groups(call).await?;
    let id = resolve(&groups, group_id, group_name)?;
    let mut rules = if perms.is_empty() && !rule_ids.is_empty() { Vec::new() } else { to_rules(&perms, &groups, true, &id)? };
    if !rule_ids.is_empty() {
        let g = groups.iter().find(|g| g.id == id).ok_or_else(|| shared::group_not_found(&id))?;
        let held = match direction {
            Direction::Ingress => &g.ingress,
            Direction::Egress => &g.egress,
        };
        for rid in &rule_ids {
            let r = held.iter().find(|r| rule_id(&id, direction, r) == *rid).ok_or_else(|| {
                ApiError::service("InvalidSecurityGroupRuleId.NotFound", format!("The security group rule ID '{rid}' does not exist in {id}."))
            })?;
            rules.push(r.clone());
        }
    }
    shared::change_rules(call.api, &id, direction, &rules, false).await?;
    Ok(())
}

pub(super) async fn authorize_ingress(
    call: &Call<'_>,
    r: AuthorizeSecurityGroupIngressRequest,
) -> Result<AuthorizeSecurityGroupIngressResult, ApiError> {
    let perms = r
        .ip_permissions
        .unwrap_or_default()
        .into_iter()
        .chain(legacy(r.ip_protocol, r.from_port, r.to_port, r.cidr_ip, r.source_security_group_name))
        .collect();
    let rules = authorize(call, r.group_id.as_deref(), r.group_name.as_deref(), Direction::Ingress, perms).await?;
    Ok(AuthorizeSecurityGroupIngressResult { r#return: Some(true), security_group_rules: Some(rules) })
}

pub(super) async fn authorize_egress(
    call: &Call<'_>,
    r: AuthorizeSecurityGroupEgressRequest,
) -> Result<AuthorizeSecurityGroupEgressResult, ApiError> {
    let perms = r
        .ip_permissions
        .unwrap_or_default()
        .into_iter()
        .chain(legacy(r.ip_protocol, r.from_port, r.to_port, r.cidr_ip, r.source_security_group_name))
        .collect();
    let rules = authorize(call, Some(&r.group_id), None, Direction::Egress, perms).await?;
    Ok(AuthorizeSecurityGroupEgressResult { r#return: Some(true), security_group_rules: Some(rules) })
}

pub(super) async fn revoke_ingress(
    call: &Call<'_>,
    r: RevokeSecurityGroupIngressRequest,
) -> Result<RevokeSecurityGroupIngressResult, ApiError> {
    let perms = r
        .ip_permissions
        .unwrap_or_default()
        .into_iter()
        .chain(legacy(r.ip_protocol, r.from_port, r.to_port, r.cidr_ip, r.source_security_group_name))
        .collect();
    let ids = r.security_group_rule_ids.unwrap_or_default();
    revoke(call, r.group_id.as_deref(), r.group_name.as_deref(), Direction::Ingress, perms, ids).await?;
    Ok(RevokeSecurityGroupIngressResult { r#return: Some(true), ..Default::default() })
}

pub(super) async fn revoke_egress(
    call: &Call<'_>,
    r: RevokeSecurityGroupEgressRequest,
) -> Result<RevokeSecurityGroupEgressResult, ApiError> {
    let perms = r
        .ip_permissions
        .unwrap_or_default()
        .into_iter()
        .chain(legacy(r.ip_protocol, r.from_port, r.to_port, r.cidr_ip, r.source_security_group_name))
        .collect();
    let ids = r.security_group_rule_ids.unwrap_or_default();
    revoke(call, Some(&r.group_id), None, Direction::Egress, perms, ids).await?;
    Ok(RevokeSecurityGroupEgressResult { r#return: Some(true), ..Default::default() })
}

pub(super) async fn describe_rules(
    call: &Call<'_>,
    r: DescribeSecurityGroupRulesRequest,
) -> Result<DescribeSecurityGroupRulesResult, ApiError> {
    let filters = Filters::new(r.filters, &["group-id", "security-group-rule-id"])?;
    let groups = all_groups(call).await?;
    let mut out = Vec::new();
    for g in &groups {
        for (direction, rules) in [(Direction::Ingress, &g.ingress), (Direction::Egress, &g.egress)] {
            for rl in rules {
                let id = rule_id(&g.id, direction, rl);
                let value = |name: &str| -> Vec<String> {
                    match name {
                        "group-id" => vec![g.id.clone()],
                        "security-group-rule-id" => vec![id.clone()],
                        _ => vec![],
                    }
                };
                if filters.matches(&BTreeMap::new(), value) {
                    out.push(rule(call, &g.id, direction, rl));
                }
            }
        }
    }
    if let Some(ids) = &r.security_group_rule_ids {
        if let Some(missing) = ids.iter().find(|id| !out.iter().any(|r| r.security_group_rule_id.as_ref() == Some(id))) {
            return Err(ApiError::service(
                "InvalidSecurityGroupRuleId.NotFound",
                format!("The security group rule ID '{missing}' does not exist."),
            ));
        }
        out.retain(|r| r.security_group_rule_id.as_ref().is_some_and(|id| ids.contains(id)));
    }
    let (rules, next_token) =
        page(out, |r| r.security_group_rule_id.clone().unwrap_or_default(), r.max_results, r.next_token.as_deref())?;
    Ok(DescribeSecurityGroupRulesResult { security_group_rules: Some(rules), next_token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_stable_and_per_direction() {
        let r = IngressRule { protocol: "tcp".into(), from_port: 80, to_port: 80, cidr: None, source_group: Some("sg-a".into()) };
        let a = rule_id("sg-x", Direction::Ingress, &r);
        assert_eq!(a, rule_id("sg-x", Direction::Ingress, &r.clone()));
        assert_ne!(a, rule_id("sg-x", Direction::Egress, &r));
        assert!(a.starts_with("sgr-") && a.len() == 21);
    }
}
