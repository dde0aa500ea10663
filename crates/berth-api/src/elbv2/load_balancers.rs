//! CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer, their
//! attributes, and DescribeCapacityReservation.
//!
//! A load balancer's node takes one address of each of its subnets, held
//! in the same claims tasks' addresses are (holder: the load balancer's
//! ARN) and freed when it is deleted; the record keeps the address, for
//! the node's interface. All of Berth's subnets are in the VPC
//! `vpc-default` and in its first zone (as DescribeSubnets shows them),
//! so one subnet per load balancer is Berth's usual case: AWS's two
//! zones are not required, two subnets of one zone are refused as AWS
//! refuses them.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use berth_model::elb::{self, LbNode, LbState, LbType, LoadBalancer, Scheme};
use berth_model::network::DEFAULT_SECURITY_GROUP_ID;
use berth_wire::elbv2::{
    AvailabilityZone, CreateLoadBalancerInput, CreateLoadBalancerOutput, DeleteLoadBalancerInput,
    DeleteLoadBalancerOutput, DescribeCapacityReservationInput, DescribeCapacityReservationOutput,
    DescribeLoadBalancerAttributesInput, DescribeLoadBalancerAttributesOutput, DescribeLoadBalancersInput,
    DescribeLoadBalancersOutput, IpAddressType, LoadBalancer as WireLoadBalancer, LoadBalancerAddress,
    LoadBalancerAttribute, LoadBalancerSchemeEnum, LoadBalancerState, LoadBalancerStateEnum, LoadBalancerTypeEnum,
    ModifyLoadBalancerAttributesInput, ModifyLoadBalancerAttributesOutput,
};
use berth_store::{StoreError, Versioned};

use super::{MAX_LOAD_BALANCERS, err, new_id, now, page, pairs, retry, tags_from, validation};
use crate::ec2::VPC_ID;
use crate::{Api, ApiError};

pub(crate) fn not_found() -> ApiError {
    err("LoadBalancerNotFound", "One or more load balancers not found")
}

pub(crate) async fn get(api: &Api, arn: &str) -> Result<Versioned<LoadBalancer>, ApiError> {
    api.store.get_load_balancer(arn).await?.ok_or_else(not_found)
}

/// The zone every Berth subnet is in (see `ec2::zones`).
pub(crate) async fn zone(api: &Api) -> Result<String, ApiError> {
    let mut zones: Vec<String> = api.store.list_nodes().await?.into_iter().map(|n| n.node.zone).collect();
    zones.sort();
    Ok(zones.into_iter().next().unwrap_or_else(|| format!("{}a", api.account().region)))
}

/// The lowest free address of a subnet for a load balancer's node (never
/// the network, gateway or broadcast address).
fn lowest_free(cidr: ipnet::Ipv4Net) -> impl Fn(&BTreeSet<String>) -> Option<String> + Send + Sync {
    move |held: &BTreeSet<String>| {
        let (first, last) = (u32::from(cidr.network()) + 2, u32::from(cidr.broadcast()).saturating_sub(1));
        (first..=last).map(Ipv4Addr::from).map(|ip| ip.to_string()).find(|ip| !held.contains(ip))
    }
}

pub(super) async fn create(api: &Api, r: CreateLoadBalancerInput) -> Result<CreateLoadBalancerOutput, ApiError> {
    elb::validate_name(&r.name, "Load balancer")?;
    let lb_type = match r.r#type.unwrap_or(LoadBalancerTypeEnum::Application) {
        LoadBalancerTypeEnum::Application => LbType::Application,
        LoadBalancerTypeEnum::Network => LbType::Network,
        LoadBalancerTypeEnum::Gateway => return Err(validation("Gateway load balancers are not supported by Berth")),
    };
    let scheme = match r.scheme.unwrap_or(LoadBalancerSchemeEnum::InternetFacing) {
        LoadBalancerSchemeEnum::Internal => Scheme::Internal,
        LoadBalancerSchemeEnum::InternetFacing => Scheme::InternetFacing,
    };
    if r.ip_address_type.is_some_and(|t| t != IpAddressType::Ipv4) {
        return Err(validation("Berth's VPC is IPv4 only: the IP address type must be 'ipv4'"));
    }
    let mut subnet_ids: Vec<String> = r.subnets.unwrap_or_default();
    for m in r.subnet_mappings.unwrap_or_default() {
        if m.allocation_id.is_some() || m.i_pv6_address.is_some() {
            return Err(validation("Elastic IP allocations and IPv6 addresses are not part of Berth's VPC"));
        }
        subnet_ids.extend(m.subnet_id);
    }
    if subnet_ids.is_empty() {
        return Err(validation("At least one subnet must be specified"));
    }
    let mut subnets = Vec::new();
    for id in &subnet_ids {
        let s = api.store.get_subnet(id).await?.ok_or_else(|| err("SubnetNotFound", format!("The subnet ID '{id}' is not valid")))?;
        if subnets.iter().any(|x: &berth_model::network::SubnetRecord| x.id == s.value.id) {
            return Err(validation(format!("Subnet '{id}' is given more than once")));
        }
        subnets.push(s.value);
    }
    if subnets.len() > 1 {
        return Err(err(
            "InvalidConfigurationRequest",
            "A load balancer cannot be attached to multiple subnets in the same Availability Zone (Berth's subnets are all in one zone)",
        ));
    }
    let mut groups = r.security_groups.unwrap_or_default();
    if groups.is_empty() && lb_type == LbType::Application {
        groups.push(DEFAULT_SECURITY_GROUP_ID.to_owned());
    }
    for g in &groups {
        if api.store.get_security_group(g).await?.is_none() {
            return Err(err("InvalidSecurityGroup", format!("Security group '{g}' does not exist in VPC '{VPC_ID}'")));
        }
    }
    let tags = tags_from(r.tags)?;
    let existing = api.store.list_load_balancers().await?;
    if let Some(same) = existing.iter().find(|l| l.value.name == r.name) {
        // CreateLoadBalancer is idempotent: the same settings answer the
        // load balancer that exists.
        let l = &same.value;
        let same_subnets = l.nodes.iter().map(|n| &n.subnet_id).eq(subnets.iter().map(|s| &s.id));
        if l.lb_type == lb_type && l.scheme == scheme && same_subnets {
            return Ok(CreateLoadBalancerOutput { load_balancers: Some(vec![wire(api, l)]) });
        }
        return Err(err("DuplicateLoadBalancerName", format!("A load balancer with the same name '{}' exists, but with different settings", r.name)));
    }
    if existing.len() >= MAX_LOAD_BALANCERS {
        return Err(err("TooManyLoadBalancers", format!("The maximum number of load balancers ({MAX_LOAD_BALANCERS}) has been reached")));
    }
    let account = api.account();
    let id = new_id();
    let arn = elb::load_balancer_arn(&account.region, &account.account_id, lb_type, &r.name, &id);
    let zone = zone(api).await?;
    let mut nodes = Vec::new();
    for s in &subnets {
        let claimed = match api.store.claim_free_ip(&s.id, &arn, &lowest_free(s.cidr)).await {
            Ok(c) => c,
            Err(StoreError::NotFound(_)) => None,
            Err(e) => {
                api.store.release_ips(&arn).await?;
                return Err(e.into());
            }
        };
        let Some(ip) = claimed.and_then(|ip| ip.parse().ok()) else {
            api.store.release_ips(&arn).await?;
            return Err(err("InvalidSubnet", format!("Not enough IP space available in subnet '{}'", s.id)));
        };
        nodes.push(LbNode { subnet_id: s.id.clone(), zone: zone.clone(), address: ip });
    }
    let lb = LoadBalancer {
        dns_name: elb::dns_name(&r.name, &id, &account.region, lb_type, scheme),
        arn: arn.clone(),
        name: r.name.clone(),
        id,
        lb_type,
        scheme,
        state: LbState::Provisioning,
        vpc_id: VPC_ID.to_owned(),
        created_at: now(),
        nodes,
        security_groups: groups,
        attributes: elb::load_balancer_defaults(lb_type),
        tags,
    };
    match api.store.put_load_balancer(&lb, None).await {
        Ok(_) => Ok(CreateLoadBalancerOutput { load_balancers: Some(vec![wire(api, &lb)]) }),
        Err(e) => {
            api.store.release_ips(&arn).await?;
            Err(match e {
                StoreError::Conflict => err("DuplicateLoadBalancerName", format!("A load balancer with the name '{}' already exists", r.name)),
                e => e.into(),
            })
        }
    }
}

pub(crate) fn wire(api: &Api, l: &LoadBalancer) -> WireLoadBalancer {
    WireLoadBalancer {
        load_balancer_arn: Some(l.arn.clone()),
        dns_name: Some(l.dns_name.clone()),
        canonical_hosted_zone_id: Some(elb::canonical_hosted_zone_id(&api.account().region, l.lb_type).to_owned()),
        created_time: Some(l.created_at),
        load_balancer_name: Some(l.name.clone()),
        scheme: Some(match l.scheme {
            Scheme::Internal => LoadBalancerSchemeEnum::Internal,
            Scheme::InternetFacing => LoadBalancerSchemeEnum::InternetFacing,
        }),
        vpc_id: Some(l.vpc_id.clone()),
        state: Some(LoadBalancerState { code: l.state.as_str().parse::<LoadBalancerStateEnum>().ok(), reason: None }),
        r#type: Some(match l.lb_type {
            LbType::Application => LoadBalancerTypeEnum::Application,
            LbType::Network => LoadBalancerTypeEnum::Network,
        }),
        availability_zones: Some(
            l.nodes
                .iter()
                .map(|n| AvailabilityZone {
                    zone_name: Some(n.zone.clone()),
                    subnet_id: Some(n.subnet_id.clone()),
                    load_balancer_addresses: (l.lb_type == LbType::Network).then(|| {
                        vec![LoadBalancerAddress { private_i_pv4_address: Some(n.address.to_string()), ..Default::default() }]
                    }),
                    ..Default::default()
                })
                .collect(),
        ),
        security_groups: (!l.security_groups.is_empty() || l.lb_type == LbType::Application).then(|| l.security_groups.clone()),
        ip_address_type: Some(IpAddressType::Ipv4),
        ..Default::default()
    }
}

pub(super) async fn describe(api: &Api, r: DescribeLoadBalancersInput) -> Result<DescribeLoadBalancersOutput, ApiError> {
    let all: Vec<LoadBalancer> = api.store.list_load_balancers().await?.into_iter().map(|v| v.value).collect();
    if let Some(arns) = &r.load_balancer_arns {
        if arns.len() > 20 {
            return Err(validation("At most 20 load balancer ARNs can be given"));
        }
        if arns.iter().any(|a| !all.iter().any(|l| &l.arn == a)) {
            return Err(not_found());
        }
    }
    if let Some(names) = &r.names
        && let Some(missing) = names.iter().find(|n| !all.iter().any(|l| &l.name == *n))
    {
        return Err(err("LoadBalancerNotFound", format!("Load balancers '[{missing}]' not found")));
    }
    let wanted: Vec<LoadBalancer> = all
        .into_iter()
        .filter(|l| r.load_balancer_arns.as_ref().is_none_or(|a| a.contains(&l.arn)))
        .filter(|l| r.names.as_ref().is_none_or(|n| n.contains(&l.name)))
        .collect();
    let (items, next_marker) = page(wanted, |l| l.name.clone(), r.marker.as_deref(), r.page_size)?;
    Ok(DescribeLoadBalancersOutput { load_balancers: Some(items.iter().map(|l| wire(api, l)).collect()), next_marker })
}

pub(super) async fn delete(api: &Api, r: DeleteLoadBalancerInput) -> Result<DeleteLoadBalancerOutput, ApiError> {
    // Deleting one that is gone succeeds, as in ELBv2.
    let Some(lb) = api.store.get_load_balancer(&r.load_balancer_arn).await? else {
        return Ok(DeleteLoadBalancerOutput {});
    };
    if lb.value.deletion_protected() {
        return Err(err(
            "OperationNotPermitted",
            format!("Load balancer '{}' cannot be deleted because deletion protection is enabled", lb.value.arn),
        ));
    }
    api.store.delete_load_balancer(&lb.value.arn).await?;
    Ok(DeleteLoadBalancerOutput {})
}

fn attributes(l: &LoadBalancer) -> Vec<LoadBalancerAttribute> {
    l.attributes.iter().map(|(k, v)| LoadBalancerAttribute { key: Some(k.clone()), value: Some(v.clone()) }).collect()
}

pub(super) async fn describe_attributes(
    api: &Api,
    r: DescribeLoadBalancerAttributesInput,
) -> Result<DescribeLoadBalancerAttributesOutput, ApiError> {
    let lb = get(api, &r.load_balancer_arn).await?;
    Ok(DescribeLoadBalancerAttributesOutput { attributes: Some(attributes(&lb.value)) })
}

pub(super) async fn modify_attributes(
    api: &Api,
    r: ModifyLoadBalancerAttributesInput,
) -> Result<ModifyLoadBalancerAttributesOutput, ApiError> {
    let changes = pairs(r.attributes.iter().map(|a| (&a.key, &a.value)))?;
    let (r, changes) = (&r, &changes);
    let next = retry(move || async move {
        let lb = get(api, &r.load_balancer_arn).await?;
        let mut next = lb.value.clone();
        next.attributes = elb::apply_load_balancer_attributes(&lb.value, changes)?;
        Ok(api.store.put_load_balancer(&next, Some(lb.version)).await.map(|_| next))
    })
    .await?;
    Ok(ModifyLoadBalancerAttributesOutput { attributes: Some(attributes(&next)) })
}

/// No capacity is reserved in Berth: a load balancer's node is sized by
/// its host; the answer says so (no minimum, no zonal states).
pub(super) async fn capacity_reservation(
    api: &Api,
    r: DescribeCapacityReservationInput,
) -> Result<DescribeCapacityReservationOutput, ApiError> {
    get(api, &r.load_balancer_arn).await?;
    Ok(DescribeCapacityReservationOutput {
        last_modified_time: None,
        decrease_requests_remaining: None,
        minimum_load_balancer_capacity: None,
        capacity_reservation_state: Some(vec![]),
    })
}
