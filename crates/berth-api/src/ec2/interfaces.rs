//! DescribeNetworkInterfaces: each live task's ENI, as EC2 shows the
//! interfaces ECS makes for Fargate tasks — its id (`eni-…` from the
//! attachment), private address and DNS name, MAC, subnet, the task's
//! groups, `in-use`, requester-managed, described as ECS describes it
//! (`arn:aws:ecs:REGION:ACCOUNT:attachment/ATTACHMENT-ID`) — and each load
//! balancer node's, as ELB's (`ELB app/NAME/ID`, requester `amazon-elb`):
//! where a user finds an ALB's addresses.

use std::collections::BTreeMap;

use berth_model::network::{eni_id, private_dns_name};
use berth_model::task::{EniStatus, Task};
use berth_store::{Page, TaskFilter};
use berth_wire::ec2::{
    AttachmentStatus, DescribeNetworkInterfacesRequest, DescribeNetworkInterfacesResult, GroupIdentifier, NetworkInterface,
    NetworkInterfaceAttachment, NetworkInterfacePrivateIpAddress, NetworkInterfaceStatus, NetworkInterfaceType,
};

use super::filters::{Filters, page};
use super::{Call, VPC_ID, zone_id, zones};
use crate::ApiError;

const FILTERS: &[&str] = &[
    "network-interface-id",
    "subnet-id",
    "vpc-id",
    "group-id",
    "group-name",
    "private-ip-address",
    "addresses.private-ip-address",
    "private-dns-name",
    "mac-address",
    "description",
    "status",
    "interface-type",
    "requester-managed",
    "owner-id",
    "availability-zone",
    "attachment.status",
];

/// The id ECS's service account has as requester of task ENIs.
const ECS_REQUESTER: &str = "amazon-ecs";
/// The same for load balancer nodes.
const ELB_REQUESTER: &str = "amazon-elb";

/// An interface as EC2 lists it, whoever made it.
struct Eni {
    id: String,
    subnet_id: String,
    ip: std::net::Ipv4Addr,
    mac: Option<String>,
    groups: Vec<String>,
    description: String,
    requester: &'static str,
}

/// Every interface: live tasks' attached ENIs and load balancer nodes'.
async fn interfaces(call: &Call<'_>) -> Result<Vec<Eni>, ApiError> {
    let mut out = Vec::new();
    for task in live_tasks(call).await? {
        let Some(net) = &task.network else { continue };
        let (EniStatus::Attached, Some(ip)) = (net.eni.status, net.eni.ip) else { continue };
        out.push(Eni {
            id: eni_id(&net.eni.attachment_id),
            subnet_id: net.eni.subnet_id.clone(),
            ip,
            mac: net.eni.mac.clone(),
            groups: net.security_groups.clone(),
            description: format!("arn:aws:ecs:{}:{}:attachment/{}", call.region(), call.account_id(), net.eni.attachment_id),
            requester: ECS_REQUESTER,
        });
    }
    for lb in call.store().list_load_balancers().await? {
        let lb = lb.value;
        let kind = match lb.lb_type {
            berth_model::elb::LbType::Application => "app",
            berth_model::elb::LbType::Network => "net",
        };
        for n in &lb.nodes {
            out.push(Eni {
                id: eni_id(&format!("{}{}", lb.id, n.address.octets().iter().map(|o| format!("{o:02x}")).collect::<String>())),
                subnet_id: n.subnet_id.clone(),
                ip: n.address,
                mac: None,
                groups: lb.security_groups.clone(),
                description: format!("ELB {kind}/{}/{}", lb.name, lb.id),
                requester: ELB_REQUESTER,
            });
        }
    }
    Ok(out)
}

async fn live_tasks(call: &Call<'_>) -> Result<Vec<Task>, ApiError> {
    let filter = TaskFilter { live_only: true, ..Default::default() };
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let rows = call.store().list_tasks(&filter, Page { after: after.take(), limit: 500 }).await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.value.arn.to_string());
        out.extend(rows.into_iter().map(|v| v.value));
    }
    Ok(out)
}

pub(super) async fn describe(
    call: &Call<'_>,
    r: DescribeNetworkInterfacesRequest,
) -> Result<DescribeNetworkInterfacesResult, ApiError> {
    let filters = Filters::new(r.filters, FILTERS)?;
    let names: BTreeMap<String, String> =
        call.store().list_security_groups().await?.into_iter().map(|g| (g.value.id, g.value.name)).collect();
    let zone = zones(call).await?.remove(0);
    let mut out = Vec::new();
    for eni in interfaces(call).await? {
        let Eni { id, subnet_id, ip, mac: eni_mac, groups: group_ids, description, requester } = eni;
        let dns = private_dns_name(ip, call.region());
        let groups: Vec<GroupIdentifier> = group_ids
            .iter()
            .map(|g| GroupIdentifier { group_id: Some(g.clone()), group_name: names.get(g).cloned() })
            .collect();
        let mac = eni_mac.clone().unwrap_or_default();
        let value = |name: &str| -> Vec<String> {
            match name {
                "network-interface-id" => vec![id.clone()],
                "subnet-id" => vec![subnet_id.clone()],
                "vpc-id" => vec![VPC_ID.into()],
                "group-id" => group_ids.clone(),
                "group-name" => group_ids.iter().filter_map(|g| names.get(g).cloned()).collect(),
                "private-ip-address" | "addresses.private-ip-address" => vec![ip.to_string()],
                "private-dns-name" => vec![dns.clone()],
                "mac-address" => vec![mac.clone()],
                "description" => vec![description.clone()],
                "status" => vec!["in-use".into()],
                "interface-type" => vec!["interface".into()],
                "requester-managed" => vec!["true".into()],
                "owner-id" => vec![call.account_id().into()],
                "availability-zone" => vec![zone.clone()],
                "attachment.status" => vec!["attached".into()],
                _ => vec![],
            }
        };
        if r.network_interface_ids.as_ref().is_some_and(|ids| !ids.contains(&id)) || !filters.matches(&BTreeMap::new(), value) {
            continue;
        }
        let attachment_id = format!("ela-attach-{}", &id[4..]);
        out.push(NetworkInterface {
            network_interface_id: Some(id),
            subnet_id: Some(subnet_id),
            vpc_id: Some(VPC_ID.into()),
            availability_zone: Some(zone.clone()),
            availability_zone_id: Some(zone_id(&zone)),
            description: Some(description),
            groups: Some(groups),
            interface_type: Some(NetworkInterfaceType::Interface),
            mac_address: eni_mac,
            owner_id: Some(call.account_id().into()),
            private_dns_name: Some(dns.clone()),
            private_ip_address: Some(ip.to_string()),
            private_ip_addresses: Some(vec![NetworkInterfacePrivateIpAddress {
                primary: Some(true),
                private_dns_name: Some(dns),
                private_ip_address: Some(ip.to_string()),
                association: None,
            }]),
            ipv6_addresses: Some(vec![]),
            requester_id: Some(requester.into()),
            requester_managed: Some(true),
            source_dest_check: Some(true),
            status: Some(NetworkInterfaceStatus::InUse),
            attachment: Some(NetworkInterfaceAttachment {
                attachment_id: Some(attachment_id),
                status: Some(AttachmentStatus::Attached),
                device_index: Some(1),
                network_card_index: Some(0),
                delete_on_termination: Some(false),
                instance_owner_id: Some(requester.into()),
                ..Default::default()
            }),
            tag_set: Some(vec![]),
            ..Default::default()
        });
    }
    if let Some(ids) = &r.network_interface_ids
        && let Some(missing) = ids.iter().find(|id| !out.iter().any(|n| n.network_interface_id.as_ref() == Some(id)))
    {
        return Err(ApiError::service(
            "InvalidNetworkInterfaceID.NotFound",
            format!("The networkInterface ID '{missing}' does not exist"),
        ));
    }
    let (interfaces, next_token) =
        page(out, |n| n.network_interface_id.clone().unwrap_or_default(), r.max_results, r.next_token.as_deref())?;
    Ok(DescribeNetworkInterfacesResult { network_interfaces: Some(interfaces), next_token })
}
