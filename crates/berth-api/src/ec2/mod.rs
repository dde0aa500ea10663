//! EC2 (`ec2`, the EC2 protocol): the VPC subset over Berth's subnets and
//! security groups, the same records `berth subnet` and `berth sg` show.
//! Typed requests in, typed responses out; nothing here sees HTTP or XML.
//!
//! One VPC per Berth, `vpc-default` (CreateVpc is not served): it holds
//! every subnet, and its CIDR blocks are the private ranges Berth takes
//! subnets from (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16). IPv4 only.
//!
//! - `vpc.rs`: DescribeVpcs, DescribeAvailabilityZones, DescribeRegions,
//!   DescribeAccountAttributes
//! - `subnets.rs`: DescribeSubnets, CreateSubnet, DeleteSubnet
//! - `groups.rs`: security groups and their rules
//! - `interfaces.rs`: DescribeNetworkInterfaces (the tasks' ENIs)
//! - `tags.rs`: CreateTags, DeleteTags, DescribeTags
//! - `filters.rs`: EC2's `Filter.N.Name`/`Value.M` matching, pages

mod filters;
mod groups;
mod interfaces;
mod subnets;
mod tags;
mod vpc;

use berth_wire::ec2::{Action, Output};

use crate::{Api, ApiError};

/// The one VPC of a Berth.
pub(crate) const VPC_ID: &str = "vpc-default";

/// One authenticated EC2 call.
pub(crate) struct Call<'a> {
    pub api: &'a Api,
    /// The signing key.
    pub access_key_id: &'a str,
}

impl Call<'_> {
    fn store(&self) -> &dyn berth_store::Store {
        self.api.store.as_ref()
    }

    fn account_id(&self) -> &str {
        &self.api.account().account_id
    }

    fn region(&self) -> &str {
        &self.api.account().region
    }

    fn arn(&self, kind: &str, id: &str) -> String {
        format!("arn:aws:ec2:{}:{}:{kind}/{id}", self.region(), self.account_id())
    }
}

pub(crate) async fn dispatch(call: &Call<'_>, action: Action) -> Result<Output, ApiError> {
    tracing::debug!(access_key_id = call.access_key_id, action = action.name(), "ec2");
    Ok(match action {
        Action::DescribeVpcs(r) => Output::DescribeVpcs(vpc::describe_vpcs(call, r)?),
        Action::DescribeAvailabilityZones(r) => Output::DescribeAvailabilityZones(vpc::describe_zones(call, r).await?),
        Action::DescribeRegions(r) => Output::DescribeRegions(vpc::describe_regions(call, r)?),
        Action::DescribeAccountAttributes(r) => Output::DescribeAccountAttributes(vpc::describe_account_attributes(r)),
        Action::DescribeSubnets(r) => Output::DescribeSubnets(subnets::describe(call, r).await?),
        Action::CreateSubnet(r) => Output::CreateSubnet(subnets::create(call, r).await?),
        Action::DeleteSubnet(r) => {
            subnets::delete(call, r).await?;
            Output::DeleteSubnet
        }
        Action::DescribeSecurityGroups(r) => Output::DescribeSecurityGroups(groups::describe(call, r).await?),
        Action::CreateSecurityGroup(r) => Output::CreateSecurityGroup(groups::create(call, r).await?),
        Action::DeleteSecurityGroup(r) => Output::DeleteSecurityGroup(groups::delete(call, r).await?),
        Action::AuthorizeSecurityGroupIngress(r) => {
            Output::AuthorizeSecurityGroupIngress(groups::authorize_ingress(call, r).await?)
        }
        Action::AuthorizeSecurityGroupEgress(r) => {
            Output::AuthorizeSecurityGroupEgress(groups::authorize_egress(call, r).await?)
        }
        Action::RevokeSecurityGroupIngress(r) => Output::RevokeSecurityGroupIngress(groups::revoke_ingress(call, r).await?),
        Action::RevokeSecurityGroupEgress(r) => Output::RevokeSecurityGroupEgress(groups::revoke_egress(call, r).await?),
        Action::DescribeSecurityGroupRules(r) => Output::DescribeSecurityGroupRules(groups::describe_rules(call, r).await?),
        Action::DescribeNetworkInterfaces(r) => Output::DescribeNetworkInterfaces(interfaces::describe(call, r).await?),
        Action::CreateTags(r) => {
            tags::create(call, r).await?;
            Output::CreateTags
        }
        Action::DeleteTags(r) => {
            tags::delete(call, r).await?;
            Output::DeleteTags
        }
        Action::DescribeTags(r) => Output::DescribeTags(tags::describe(call, r).await?),
    })
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::service("InvalidParameterValue", message)
}

/// The zones subnets are in: this Berth's nodes' zones, or the region's
/// first zone before any node joined.
async fn zones(call: &Call<'_>) -> Result<Vec<String>, ApiError> {
    let mut zones: Vec<String> = call.store().list_nodes().await?.into_iter().map(|n| n.node.zone).collect();
    if zones.is_empty() {
        zones.push(format!("{}a", call.region()));
    }
    zones.sort();
    zones.dedup();
    Ok(zones)
}

/// EC2's zone id for a zone name: the region's short form and the zone's
/// letter, e.g. `use1-az1` for `us-east-1a`.
fn zone_id(zone: &str) -> String {
    let (region, letter) = zone.split_at(zone.len().saturating_sub(1));
    let short: String = region
        .split('-')
        .map(|p| if p.chars().all(|c| c.is_ascii_digit()) { p.to_owned() } else { p.chars().take(if p.len() > 2 { 1 } else { 2 }).collect() })
        .collect();
    let n = letter.chars().next().map_or(1, |c| (c as u32).saturating_sub('a' as u32) + 1);
    format!("{short}-az{n}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn zone_ids_follow_ec2s_form() {
        assert_eq!(super::zone_id("us-east-1a"), "use1-az1");
        assert_eq!(super::zone_id("eu-west-2c"), "euw2-az3");
    }
}
