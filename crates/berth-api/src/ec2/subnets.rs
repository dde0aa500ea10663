//! DescribeSubnets, CreateSubnet, DeleteSubnet over Berth's subnets.

use berth_model::network::{DEFAULT_SUBNET_ID, SubnetRecord};
use berth_wire::ec2::{
    CreateSubnetRequest, CreateSubnetResult, DeleteSubnetRequest, DescribeSubnetsRequest, DescribeSubnetsResult,
    HostnameType, PrivateDnsNameOptionsOnLaunch, ResourceType, Subnet, SubnetState,
};

use super::filters::{Filters, page, tag_list};
use super::tags::{subnet_tags, tags_for};
use super::vpc::vpc_not_found;
use super::{Call, VPC_ID, invalid, zone_id, zones};
use crate::ApiError;
use crate::berth::network as shared;

const FILTERS: &[&str] = &[
    "subnet-id",
    "vpc-id",
    "cidr-block",
    "cidr",
    "cidrBlock",
    "availability-zone",
    "availabilityZone",
    "availability-zone-id",
    "default-for-az",
    "defaultForAz",
    "state",
    "owner-id",
    "subnet-arn",
    "available-ip-address-count",
    "map-public-ip-on-launch",
];

pub(super) async fn describe(call: &Call<'_>, r: DescribeSubnetsRequest) -> Result<DescribeSubnetsResult, ApiError> {
    let filters = Filters::new(r.filters, FILTERS)?;
    let records: Vec<SubnetRecord> = call.store().list_subnets().await?.into_iter().map(|v| v.value).collect();
    if let Some(ids) = &r.subnet_ids
        && let Some(missing) = ids.iter().find(|id| !records.iter().any(|s| &s.id == *id))
    {
        return Err(shared::subnet_not_found(missing));
    }
    let zone = zones(call).await?.remove(0);
    let mut out = Vec::new();
    for s in records {
        if r.subnet_ids.as_ref().is_some_and(|ids| !ids.contains(&s.id)) {
            continue;
        }
        let subnet = subnet(call, &s, &zone).await?;
        let tags = subnet_tags(&s);
        let value = |name: &str| -> Vec<String> {
            let v = match name {
                "subnet-id" => s.id.clone(),
                "vpc-id" => VPC_ID.into(),
                "cidr-block" | "cidr" | "cidrBlock" => s.cidr.to_string(),
                "availability-zone" | "availabilityZone" => zone.clone(),
                "availability-zone-id" => zone_id(&zone),
                "default-for-az" | "defaultForAz" => (s.id == DEFAULT_SUBNET_ID).to_string(),
                "state" => "available".into(),
                "owner-id" => call.account_id().into(),
                "subnet-arn" => call.arn("subnet", &s.id),
                "available-ip-address-count" => subnet.available_ip_address_count.unwrap_or(0).to_string(),
                "map-public-ip-on-launch" => "false".into(),
                _ => return vec![],
            };
            vec![v]
        };
        if filters.matches(&tags, value) {
            out.push(subnet);
        }
    }
    let (subnets, next_token) =
        page(out, |s| s.subnet_id.clone().unwrap_or_default(), r.max_results, r.next_token.as_deref())?;
    Ok(DescribeSubnetsResult { subnets: Some(subnets), next_token })
}

pub(super) async fn subnet(call: &Call<'_>, s: &SubnetRecord, zone: &str) -> Result<Subnet, ApiError> {
    let available = shared::available_ips(call.store(), s).await?;
    Ok(Subnet {
        subnet_id: Some(s.id.clone()),
        subnet_arn: Some(call.arn("subnet", &s.id)),
        vpc_id: Some(VPC_ID.into()),
        owner_id: Some(call.account_id().into()),
        cidr_block: Some(s.cidr.to_string()),
        state: Some(SubnetState::Available),
        availability_zone: Some(zone.into()),
        availability_zone_id: Some(zone_id(zone)),
        available_ip_address_count: Some(i32::try_from(available).unwrap_or(i32::MAX)),
        default_for_az: Some(s.id == DEFAULT_SUBNET_ID),
        map_public_ip_on_launch: Some(false),
        map_customer_owned_ip_on_launch: Some(false),
        assign_ipv6_address_on_creation: Some(false),
        ipv6_cidr_block_association_set: Some(vec![]),
        ipv6_native: Some(false),
        enable_dns64: Some(false),
        private_dns_name_options_on_launch: Some(PrivateDnsNameOptionsOnLaunch {
            hostname_type: Some(HostnameType::IpName),
            enable_resource_name_dns_a_record: Some(false),
            enable_resource_name_dns_aaaa_record: Some(false),
        }),
        tags: Some(tag_list(&subnet_tags(s))),
        ..Default::default()
    })
}

pub(super) async fn create(call: &Call<'_>, r: CreateSubnetRequest) -> Result<CreateSubnetResult, ApiError> {
    if r.vpc_id != VPC_ID {
        return Err(vpc_not_found(&r.vpc_id));
    }
    if r.ipv6_cidr_block.is_some() || r.ipv6_native == Some(true) {
        return Err(invalid("Berth's VPC is IPv4 only: no IPv6 CIDR block can be given."));
    }
    if r.ipv4_ipam_pool_id.is_some() || r.outpost_arn.is_some() {
        return Err(invalid("IPAM pools and Outposts are not part of Berth's VPC."));
    }
    let Some(cidr) = r.cidr_block else {
        return Err(ApiError::service("MissingParameter", "The request must contain the parameter CidrBlock."));
    };
    let zones = zones(call).await?;
    if let Some(z) = &r.availability_zone
        && !zones.contains(z)
    {
        return Err(invalid(format!("Value ({z}) for parameter availabilityZone is invalid; Berth's zones: {}.", zones.join(", "))));
    }
    if let Some(z) = &r.availability_zone_id
        && !zones.iter().any(|name| zone_id(name) == *z)
    {
        return Err(invalid(format!("Value ({z}) for parameter availabilityZoneId is invalid.")));
    }
    let mut tags = tags_for(r.tag_specifications, ResourceType::Subnet)?;
    let name = tags.remove("Name").unwrap_or_default();
    let record = shared::new_subnet(call.api, &cidr, name, false, tags).await?;
    Ok(CreateSubnetResult { subnet: Some(subnet(call, &record, &zones[0]).await?) })
}

pub(super) async fn delete(call: &Call<'_>, r: DeleteSubnetRequest) -> Result<(), ApiError> {
    shared::remove_subnet(call.api, &r.subnet_id).await
}

