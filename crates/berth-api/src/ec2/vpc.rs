//! The VPC, the zones, the region, the account's attributes: what a
//! Berth is, as EC2 describes it.

use std::collections::BTreeMap;

use berth_wire::ec2::{
    AccountAttribute, AccountAttributeName, AccountAttributeValue, AvailabilityZone, AvailabilityZoneOptInStatus,
    AvailabilityZoneState, DescribeAccountAttributesRequest, DescribeAccountAttributesResult,
    DescribeAvailabilityZonesRequest, DescribeAvailabilityZonesResult, DescribeRegionsRequest, DescribeRegionsResult,
    DescribeVpcsRequest, DescribeVpcsResult, Region, Tenancy, Vpc, VpcCidrBlockAssociation, VpcCidrBlockState,
    VpcCidrBlockStateCode, VpcState,
};

use super::filters::{Filters, page};
use super::{Call, VPC_ID, invalid, zone_id, zones};
use crate::ApiError;

/// The VPC's blocks: the private ranges Berth takes subnets from.
pub(super) const VPC_CIDRS: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

pub(super) fn vpc_not_found(id: &str) -> ApiError {
    ApiError::service("InvalidVpcID.NotFound", format!("The vpc ID '{id}' does not exist (Berth has one VPC, {VPC_ID})."))
}

pub(super) fn describe_vpcs(call: &Call<'_>, r: DescribeVpcsRequest) -> Result<DescribeVpcsResult, ApiError> {
    let filters = Filters::new(
        r.filters,
        &["vpc-id", "state", "is-default", "cidr", "cidr-block-association.cidr-block", "cidr-block-association.state", "owner-id", "dhcp-options-id"],
    )?;
    if let Some(id) = r.vpc_ids.iter().flatten().find(|id| id.as_str() != VPC_ID) {
        return Err(vpc_not_found(id));
    }
    let values = |name: &str| -> Vec<String> {
        match name {
            "vpc-id" => vec![VPC_ID.into()],
            "state" => vec!["available".into()],
            "is-default" => vec!["true".into()],
            "cidr" => vec![VPC_CIDRS[0].into()],
            "cidr-block-association.cidr-block" => VPC_CIDRS.iter().map(|c| c.to_string()).collect(),
            "cidr-block-association.state" => vec!["associated".into()],
            "owner-id" => vec![call.account_id().into()],
            "dhcp-options-id" => vec!["default".into()],
            _ => vec![],
        }
    };
    let vpcs: Vec<Vpc> = if filters.matches(&BTreeMap::new(), values) { vec![vpc(call)] } else { vec![] };
    let (vpcs, next_token) = page(vpcs, |v| v.vpc_id.clone().unwrap_or_default(), r.max_results, r.next_token.as_deref())?;
    Ok(DescribeVpcsResult { vpcs: Some(vpcs), next_token })
}

fn vpc(call: &Call<'_>) -> Vpc {
    Vpc {
        vpc_id: Some(VPC_ID.into()),
        owner_id: Some(call.account_id().into()),
        cidr_block: Some(VPC_CIDRS[0].into()),
        cidr_block_association_set: Some(
            VPC_CIDRS
                .iter()
                .enumerate()
                .map(|(i, c)| VpcCidrBlockAssociation {
                    association_id: Some(format!("vpc-cidr-assoc-default{i}")),
                    cidr_block: Some(c.to_string()),
                    cidr_block_state: Some(VpcCidrBlockState {
                        state: Some(VpcCidrBlockStateCode::Associated),
                        status_message: None,
                    }),
                })
                .collect(),
        ),
        ipv6_cidr_block_association_set: Some(vec![]),
        is_default: Some(true),
        state: Some(VpcState::Available),
        instance_tenancy: Some(Tenancy::Default),
        dhcp_options_id: Some("default".into()),
        tags: Some(vec![]),
        ..Default::default()
    }
}

pub(super) async fn describe_zones(
    call: &Call<'_>,
    r: DescribeAvailabilityZonesRequest,
) -> Result<DescribeAvailabilityZonesResult, ApiError> {
    let filters =
        Filters::new(r.filters, &["zone-name", "zone-id", "state", "region-name", "zone-type", "opt-in-status", "group-name"])?;
    let zones = zones(call).await?;
    for name in r.zone_names.iter().flatten() {
        if !zones.contains(name) {
            return Err(invalid(format!("Invalid availability zone: [{name}]; Berth's zones: {}.", zones.join(", "))));
        }
    }
    let ids: Vec<String> = zones.iter().map(|z| zone_id(z)).collect();
    for id in r.zone_ids.iter().flatten() {
        if !ids.contains(id) {
            return Err(invalid(format!("Invalid availability zone id: [{id}]; Berth's zones: {}.", ids.join(", "))));
        }
    }
    let region = call.region().to_owned();
    let out = zones
        .into_iter()
        .filter(|z| r.zone_names.as_ref().is_none_or(|n| n.contains(z)))
        .filter(|z| r.zone_ids.as_ref().is_none_or(|n| n.contains(&zone_id(z))))
        .filter(|z| {
            filters.matches(&BTreeMap::new(), |name| match name {
                "zone-name" => vec![z.clone()],
                "zone-id" => vec![zone_id(z)],
                "state" => vec!["available".into()],
                "region-name" | "group-name" => vec![region.clone()],
                "zone-type" => vec!["availability-zone".into()],
                "opt-in-status" => vec!["opt-in-not-required".into()],
                _ => vec![],
            })
        })
        .map(|z| AvailabilityZone {
            zone_id: Some(zone_id(&z)),
            zone_name: Some(z),
            state: Some(AvailabilityZoneState::Available),
            opt_in_status: Some(AvailabilityZoneOptInStatus::OptInNotRequired),
            region_name: Some(region.clone()),
            group_name: Some(region.clone()),
            network_border_group: Some(region.clone()),
            zone_type: Some("availability-zone".into()),
            messages: Some(vec![]),
            ..Default::default()
        })
        .collect();
    Ok(DescribeAvailabilityZonesResult { availability_zones: Some(out) })
}

pub(super) fn describe_regions(call: &Call<'_>, r: DescribeRegionsRequest) -> Result<DescribeRegionsResult, ApiError> {
    let filters = Filters::new(r.filters, &["region-name", "opt-in-status", "endpoint"])?;
    let region = call.region().to_owned();
    if let Some(other) = r.region_names.iter().flatten().find(|n| **n != region) {
        return Err(invalid(format!("Invalid region: {other}; this Berth is region {region}.")));
    }
    let matches = filters.matches(&BTreeMap::new(), |name| match name {
        "region-name" => vec![region.clone()],
        "opt-in-status" => vec!["opt-in-not-required".into()],
        _ => vec![],
    });
    let regions = if matches {
        vec![Region { region_name: Some(region), opt_in_status: Some("opt-in-not-required".into()), ..Default::default() }]
    } else {
        vec![]
    };
    Ok(DescribeRegionsResult { regions: Some(regions) })
}

pub(super) fn describe_account_attributes(r: DescribeAccountAttributesRequest) -> DescribeAccountAttributesResult {
    let all = [AccountAttributeName::SupportedPlatforms, AccountAttributeName::DefaultVpc];
    let names = r.attribute_names.unwrap_or_else(|| all.to_vec());
    let attributes = names
        .into_iter()
        .map(|n| AccountAttribute {
            attribute_name: Some(n.as_str().into()),
            attribute_values: Some(vec![AccountAttributeValue {
                attribute_value: Some(match n {
                    AccountAttributeName::SupportedPlatforms => "VPC".into(),
                    AccountAttributeName::DefaultVpc => VPC_ID.into(),
                }),
            }]),
        })
        .collect();
    DescribeAccountAttributesResult { account_attributes: Some(attributes) }
}
