//! Target groups: CreateTargetGroup, DescribeTargetGroups,
//! ModifyTargetGroup, DeleteTargetGroup, their attributes, and their
//! targets: RegisterTargets, DeregisterTargets, DescribeTargetHealth.
//!
//! Targets are IP addresses (type `ip`, Fargate's only type) inside a
//! Berth subnet. Health is the data plane's to find; until it writes a
//! target's row the target is `initial` (registration in progress); a
//! group no listener forwards to has `unused` targets; a deregistered
//! target is `draining` until its deregistration delay has passed, then
//! gone.

use std::collections::{BTreeMap, BTreeSet};

use berth_model::elb::{self, HealthCheck, HealthCheckChange, RegisteredTarget, TargetGroup};
use berth_wire::elbv2::{
    CreateTargetGroupInput, CreateTargetGroupOutput, DeleteTargetGroupInput, DeleteTargetGroupOutput,
    DeregisterTargetsInput, DeregisterTargetsOutput, DescribeTargetGroupAttributesInput,
    DescribeTargetGroupAttributesOutput, DescribeTargetGroupsInput, DescribeTargetGroupsOutput, DescribeTargetHealthInput,
    DescribeTargetHealthOutput, Matcher, ModifyTargetGroupAttributesInput, ModifyTargetGroupAttributesOutput,
    ModifyTargetGroupInput, ModifyTargetGroupOutput, RegisterTargetsInput, RegisterTargetsOutput, TargetDescription,
    TargetGroup as WireTargetGroup, TargetGroupAttribute, TargetGroupIpAddressTypeEnum, TargetHealth,
    TargetHealthDescription, TargetTypeEnum,
};
use berth_store::{StoreError, Versioned};

use super::{MAX_TARGET_GROUPS, MAX_TARGETS, err, new_id, now, page, pairs, protocol, retry, tags_from, validation, wire_protocol};
use crate::ec2::VPC_ID;
use crate::{Api, ApiError};

pub(crate) fn not_found() -> ApiError {
    err("TargetGroupNotFound", "One or more target groups not found")
}

pub(crate) async fn get(api: &Api, arn: &str) -> Result<Versioned<TargetGroup>, ApiError> {
    api.store.get_target_group(arn).await?.ok_or_else(not_found)
}

/// Which load balancers forward to each target group (through a
/// listener's default actions or a rule).
pub(crate) async fn users(api: &Api) -> Result<BTreeMap<String, BTreeSet<String>>, ApiError> {
    Ok(group_users(api.store.as_ref()).await?)
}

/// [`users`], from the store (the service controller's view too: a group
/// no listener uses judges none of its targets).
pub(crate) async fn group_users(store: &dyn berth_store::Store) -> Result<BTreeMap<String, BTreeSet<String>>, berth_store::StoreError> {
    let listeners: BTreeMap<String, String> =
        store.list_listeners(None).await?.into_iter().map(|l| (l.value.arn, l.value.load_balancer_arn)).collect();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rule in store.list_rules(None).await? {
        let Some(lb) = listeners.get(&rule.value.listener_arn) else { continue };
        for a in &rule.value.actions {
            for tg in a.target_groups() {
                out.entry(tg.to_owned()).or_default().insert(lb.clone());
            }
        }
    }
    Ok(out)
}

/// The health check settings of a Create or ModifyTargetGroup request
/// (their members have the same names).
macro_rules! health_change {
    ($r:expr) => {
        change(
            $r.health_check_enabled,
            $r.health_check_protocol.map(protocol).transpose()?,
            $r.health_check_port,
            $r.health_check_path,
            [$r.health_check_interval_seconds, $r.health_check_timeout_seconds, $r.healthy_threshold_count, $r.unhealthy_threshold_count],
            $r.matcher,
        )?
    };
}

fn change(
    enabled: Option<bool>,
    protocol: Option<elb::Protocol>,
    port: Option<String>,
    path: Option<String>,
    times: [Option<i32>; 4],
    matcher: Option<Matcher>,
) -> Result<HealthCheckChange, ApiError> {
    if matcher.as_ref().is_some_and(|m| m.grpc_code.is_some()) {
        return Err(validation("gRPC health checks are not supported by Berth"));
    }
    Ok(HealthCheckChange {
        enabled,
        protocol,
        port,
        path,
        interval_seconds: times[0],
        timeout_seconds: times[1],
        healthy_threshold: times[2],
        unhealthy_threshold: times[3],
        matcher: matcher.and_then(|m| m.http_code),
    })
}

pub(super) async fn create(api: &Api, r: CreateTargetGroupInput) -> Result<CreateTargetGroupOutput, ApiError> {
    elb::validate_name(&r.name, "Target group")?;
    // Berth's only target type; omitted means it too.
    if let Some(t) = r.target_type
        && t != TargetTypeEnum::Ip
    {
        elb::check_target_type(t.as_str())?;
    }
    if r.ip_address_type.is_some_and(|t| t != TargetGroupIpAddressTypeEnum::Ipv4) {
        return Err(validation("Berth's VPC is IPv4 only: the IP address type must be 'ipv4'"));
    }
    let p = protocol(r.protocol.ok_or_else(|| validation("A protocol must be specified for target groups of type 'ip'"))?)?;
    let port = elb::port(r.port.ok_or_else(|| validation("A port must be specified for target groups of type 'ip'"))?, "Port")?;
    let vpc = r.vpc_id.ok_or_else(|| validation("A VPC ID must be specified for target groups of type 'ip'"))?;
    if vpc != VPC_ID {
        return Err(validation(format!("The VPC ID '{vpc}' is not found")));
    }
    let c = health_change!(r);
    let health_check = HealthCheck::defaults(p).changed(&c, p)?;
    let protocol_version = match (p, r.protocol_version.as_deref()) {
        (elb::Protocol::Tcp, Some(_)) => return Err(validation("A protocol version can only be given for HTTP and HTTPS target groups")),
        (elb::Protocol::Tcp, None) => None,
        (_, None | Some("HTTP1")) => Some("HTTP1".to_owned()),
        (_, Some(v)) => return Err(validation(format!("Protocol version '{v}' is not supported: Berth forwards HTTP1 to targets"))),
    };
    let tags = tags_from(r.tags)?;
    let existing = api.store.list_target_groups().await?;
    if let Some(same) = existing.iter().find(|t| t.value.name == r.name) {
        let t = &same.value;
        if t.protocol == p && t.port == port && t.health_check == health_check {
            return Ok(CreateTargetGroupOutput { target_groups: Some(vec![wire(t, &BTreeSet::new())]) });
        }
        return Err(err("DuplicateTargetGroupName", format!("A target group with the same name '{}' exists, but with different settings", r.name)));
    }
    if existing.len() >= MAX_TARGET_GROUPS {
        return Err(err("TooManyTargetGroups", format!("The maximum number of target groups ({MAX_TARGET_GROUPS}) has been reached")));
    }
    let account = api.account();
    let id = new_id();
    let tg = TargetGroup {
        arn: elb::target_group_arn(&account.region, &account.account_id, &r.name, &id),
        name: r.name.clone(),
        id,
        protocol: p,
        port,
        vpc_id: VPC_ID.to_owned(),
        protocol_version,
        health_check,
        attributes: elb::target_group_defaults(p),
        created_at: now(),
        tags,
    };
    match api.store.put_target_group(&tg, None).await {
        Ok(_) => Ok(CreateTargetGroupOutput { target_groups: Some(vec![wire(&tg, &BTreeSet::new())]) }),
        Err(StoreError::Conflict) => {
            Err(err("DuplicateTargetGroupName", format!("A target group with the name '{}' already exists", r.name)))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn wire(t: &TargetGroup, load_balancers: &BTreeSet<String>) -> WireTargetGroup {
    let h = &t.health_check;
    WireTargetGroup {
        target_group_arn: Some(t.arn.clone()),
        target_group_name: Some(t.name.clone()),
        protocol: Some(wire_protocol(t.protocol)),
        port: Some(i32::from(t.port)),
        vpc_id: Some(t.vpc_id.clone()),
        health_check_protocol: Some(wire_protocol(h.protocol)),
        health_check_port: Some(h.port.as_string()),
        health_check_enabled: Some(h.enabled),
        health_check_interval_seconds: Some(h.interval_seconds as i32),
        health_check_timeout_seconds: Some(h.timeout_seconds as i32),
        healthy_threshold_count: Some(h.healthy_threshold as i32),
        unhealthy_threshold_count: Some(h.unhealthy_threshold as i32),
        health_check_path: h.path.clone(),
        matcher: h.matcher.clone().map(|c| Matcher { http_code: Some(c), grpc_code: None }),
        load_balancer_arns: Some(load_balancers.iter().cloned().collect()),
        target_type: Some(TargetTypeEnum::Ip),
        protocol_version: t.protocol_version.clone(),
        ip_address_type: Some(TargetGroupIpAddressTypeEnum::Ipv4),
        target_control_port: None,
    }
}

pub(super) async fn describe(api: &Api, r: DescribeTargetGroupsInput) -> Result<DescribeTargetGroupsOutput, ApiError> {
    let all: Vec<TargetGroup> = api.store.list_target_groups().await?.into_iter().map(|v| v.value).collect();
    if let Some(arns) = &r.target_group_arns
        && arns.iter().any(|a| !all.iter().any(|t| &t.arn == a))
    {
        return Err(not_found());
    }
    if let Some(names) = &r.names
        && let Some(missing) = names.iter().find(|n| !all.iter().any(|t| &t.name == *n))
    {
        return Err(err("TargetGroupNotFound", format!("Target groups '[{missing}]' not found")));
    }
    if let Some(lb) = &r.load_balancer_arn {
        super::load_balancers::get(api, lb).await?;
    }
    let users = users(api).await?;
    let none = BTreeSet::new();
    let wanted: Vec<TargetGroup> = all
        .into_iter()
        .filter(|t| r.target_group_arns.as_ref().is_none_or(|a| a.contains(&t.arn)))
        .filter(|t| r.names.as_ref().is_none_or(|n| n.contains(&t.name)))
        .filter(|t| r.load_balancer_arn.as_ref().is_none_or(|lb| users.get(&t.arn).is_some_and(|u| u.contains(lb))))
        .collect();
    let (items, next_marker) = page(wanted, |t| t.name.clone(), r.marker.as_deref(), r.page_size)?;
    let target_groups = items.iter().map(|t| wire(t, users.get(&t.arn).unwrap_or(&none))).collect();
    Ok(DescribeTargetGroupsOutput { target_groups: Some(target_groups), next_marker })
}

pub(super) async fn modify(api: &Api, r: ModifyTargetGroupInput) -> Result<ModifyTargetGroupOutput, ApiError> {
    let arn = r.target_group_arn.clone();
    let c = health_change!(r);
    let (arn, c) = (&arn, &c);
    let next = retry(move || async move {
        let tg = get(api, arn).await?;
        let mut next = tg.value.clone();
        next.health_check = tg.value.health_check.changed(c, tg.value.protocol)?;
        Ok(api.store.put_target_group(&next, Some(tg.version)).await.map(|_| next))
    })
    .await?;
    let lbs = users(api).await?.get(&next.arn).cloned().unwrap_or_default();
    Ok(ModifyTargetGroupOutput { target_groups: Some(vec![wire(&next, &lbs)]) })
}

pub(super) async fn delete(api: &Api, r: DeleteTargetGroupInput) -> Result<DeleteTargetGroupOutput, ApiError> {
    let Some(tg) = api.store.get_target_group(&r.target_group_arn).await? else {
        return Ok(DeleteTargetGroupOutput {});
    };
    if let Some(lbs) = users(api).await?.get(&tg.value.arn) {
        let lb = lbs.iter().next().cloned().unwrap_or_default();
        return Err(err("ResourceInUse", format!("Target group '{}' is currently in use by a listener or a rule of load balancer '{lb}'", tg.value.arn)));
    }
    api.store.delete_target_group(&tg.value.arn).await?;
    Ok(DeleteTargetGroupOutput {})
}

fn attributes(t: &TargetGroup) -> Vec<TargetGroupAttribute> {
    t.attributes.iter().map(|(k, v)| TargetGroupAttribute { key: Some(k.clone()), value: Some(v.clone()) }).collect()
}

pub(super) async fn describe_attributes(
    api: &Api,
    r: DescribeTargetGroupAttributesInput,
) -> Result<DescribeTargetGroupAttributesOutput, ApiError> {
    let tg = get(api, &r.target_group_arn).await?;
    Ok(DescribeTargetGroupAttributesOutput { attributes: Some(attributes(&tg.value)) })
}

pub(super) async fn modify_attributes(
    api: &Api,
    r: ModifyTargetGroupAttributesInput,
) -> Result<ModifyTargetGroupAttributesOutput, ApiError> {
    let changes = pairs(r.attributes.iter().map(|a| (&a.key, &a.value)))?;
    let (r, changes) = (&r, &changes);
    let next = retry(move || async move {
        let tg = get(api, &r.target_group_arn).await?;
        let mut next = tg.value.clone();
        next.attributes = elb::apply_target_group_attributes(&tg.value, changes)?;
        Ok(api.store.put_target_group(&next, Some(tg.version)).await.map(|_| next))
    })
    .await?;
    Ok(ModifyTargetGroupAttributesOutput { attributes: Some(attributes(&next)) })
}

/// A target's address and port (the group's port when none is given).
fn address(tg: &TargetGroup, t: &TargetDescription) -> Result<(std::net::Ipv4Addr, u16), ApiError> {
    let ip = t.id.parse().map_err(|_| {
        err("InvalidTarget", format!("The target ID '{}' is not an IPv4 address: Berth's target groups have targets of type 'ip'", t.id))
    })?;
    let port = match t.port {
        Some(p) => elb::port(p, "Target port")?,
        None => tg.port,
    };
    Ok((ip, port))
}

pub(super) async fn register(api: &Api, r: RegisterTargetsInput) -> Result<RegisterTargetsOutput, ApiError> {
    let tg = get(api, &r.target_group_arn).await?.value;
    if r.targets.is_empty() || r.targets.len() > elb::MAX_TARGETS_PER_CALL {
        return Err(validation(format!("From 1 to {} targets must be given", elb::MAX_TARGETS_PER_CALL)));
    }
    let subnets: Vec<(String, ipnet::Ipv4Net)> =
        api.store.list_subnets().await?.into_iter().map(|s| (s.value.id, s.value.cidr)).collect();
    let zone = super::load_balancers::zone(api).await?;
    let lb_addresses: BTreeSet<std::net::Ipv4Addr> =
        api.store.list_load_balancers().await?.iter().flat_map(|l| l.value.nodes.iter().map(|n| n.address)).collect();
    let at = now();
    let mut targets = Vec::new();
    for t in &r.targets {
        let (ip, port) = address(&tg, t)?;
        elb::check_target_address(ip, &subnets)?;
        if lb_addresses.contains(&ip) {
            return Err(err("InvalidTarget", format!("The IP address '{ip}' is a load balancer's and cannot be a target")));
        }
        if let Some(z) = &t.availability_zone
            && z != &zone
        {
            return Err(validation(format!("Availability Zone '{z}' is not the zone of the target's subnet ('{zone}')")));
        }
        targets.push(RegisteredTarget { target_group_arn: tg.arn.clone(), id: ip, port, zone: zone.clone(), registered_at: at, draining_until: None });
    }
    let existing = api.store.list_targets(&tg.arn).await?;
    let total = existing.iter().filter(|e| !targets.iter().any(|t| t.id == e.id && t.port == e.port)).count() + targets.len();
    if total > MAX_TARGETS {
        return Err(err("TooManyTargets", format!("A target group can have at most {MAX_TARGETS} targets")));
    }
    // Registering a registered target (not draining) again changes nothing.
    targets.retain(|t| !existing.iter().any(|e| e.id == t.id && e.port == t.port && e.draining_until.is_none()));
    if !targets.is_empty() {
        api.store.register_targets(&targets).await?;
    }
    Ok(RegisterTargetsOutput {})
}

pub(super) async fn deregister(api: &Api, r: DeregisterTargetsInput) -> Result<DeregisterTargetsOutput, ApiError> {
    let tg = get(api, &r.target_group_arn).await?.value;
    let registered = api.store.list_targets(&tg.arn).await?;
    let mut keys = Vec::new();
    for t in &r.targets {
        let (ip, port) = address(&tg, t)?;
        if !registered.iter().any(|e| e.id == ip && e.port == port) {
            return Err(err("InvalidTarget", format!("The following targets are not registered in target group '{}': '{ip}:{port}'", tg.arn)));
        }
        keys.push((ip, port));
    }
    api.store.deregister_targets(&tg.arn, &keys, now() + f64::from(tg.deregistration_delay())).await?;
    Ok(DeregisterTargetsOutput {})
}

pub(super) async fn health(api: &Api, r: DescribeTargetHealthInput) -> Result<DescribeTargetHealthOutput, ApiError> {
    let tg = get(api, &r.target_group_arn).await?.value;
    // Targets whose deregistration delay has passed are gone.
    api.store.remove_drained_targets(now()).await?;
    let registered = api.store.list_targets(&tg.arn).await?;
    let rows = api.store.list_target_health(&tg.arn).await?;
    let in_use = users(api).await?.contains_key(&tg.arn);
    let describe = |t: &RegisteredTarget| {
        let row = rows.iter().find(|h| h.id == t.id && h.port == t.port);
        let (state, reason, description) = elb::effective_health(t, row, in_use);
        TargetHealthDescription {
            target: Some(TargetDescription {
                id: t.id.to_string(),
                port: Some(i32::from(t.port)),
                availability_zone: Some(t.zone.clone()),
                quic_server_id: None,
            }),
            health_check_port: Some(match tg.health_check.port {
                elb::HealthCheckPort::TrafficPort => t.port.to_string(),
                elb::HealthCheckPort::Port(p) => p.to_string(),
            }),
            target_health: Some(TargetHealth {
                state: state.as_str().parse().ok(),
                reason: reason.and_then(|r| r.as_str().parse().ok()),
                description,
            }),
            ..Default::default()
        }
    };
    let descriptions = match &r.targets {
        None => registered.iter().map(describe).collect(),
        Some(asked) => {
            let mut out = Vec::new();
            for t in asked {
                let (ip, port) = address(&tg, t)?;
                match registered.iter().find(|e| e.id == ip && e.port == port) {
                    Some(e) => out.push(describe(e)),
                    None => {
                        let reason = elb::HealthReason::NotRegistered;
                        out.push(TargetHealthDescription {
                            target: Some(TargetDescription { id: t.id.clone(), port: Some(i32::from(port)), ..Default::default() }),
                            target_health: Some(TargetHealth {
                                state: elb::HealthState::Unused.as_str().parse().ok(),
                                reason: reason.as_str().parse().ok(),
                                description: Some(reason.description().to_owned()),
                            }),
                            ..Default::default()
                        });
                    }
                }
            }
            out
        }
    };
    Ok(DescribeTargetHealthOutput { target_health_descriptions: Some(descriptions) })
}
