//! Subnets and security groups: Berth resources with AWS-style ids that
//! RunTask's `awsvpcConfiguration` names. Errors use EC2's names
//! (`InvalidSubnetID.NotFound`, `DependencyViolation`, ...).
//!
//! The rules of making, changing and deleting them are here once
//! (`new_subnet`, `remove_subnet`, `new_group`, `remove_group`,
//! `change_rules`); Berth's operator API (`berth subnet`, `berth sg`) and
//! EC2's API (`crate::ec2`) are two front ends on the same records.

use std::collections::BTreeMap;

use berth_model::network::{
    self as model, DEFAULT_SECURITY_GROUP_ID, DEFAULT_SUBNET_ID, SecurityGroupRecord, SubnetRecord,
};
use berth_store::{Store, StoreError, TaskFilter};
use berth_wire::berth::{
    CreateSecurityGroupRequest, CreateSubnetRequest, DeleteSecurityGroupRequest, DeleteSubnetRequest, EmptyResponse,
    IngressRule, ListSecurityGroupsRequest, ListSecurityGroupsResponse, ListSubnetsRequest, ListSubnetsResponse,
    SecurityGroupDetail, SecurityGroupIngressRequest, SecurityGroupResponse, SubnetDetail, SubnetResponse,
};

use crate::{Api, ApiError};

/// Makes the default subnet (`cidr`, at first start) and the default
/// security group if they are missing.
pub async fn ensure_defaults(store: &dyn Store, cidr: &str) -> Result<(), ApiError> {
    if store.get_subnet(DEFAULT_SUBNET_ID).await?.is_none() {
        let others: Vec<SubnetRecord> = store.list_subnets().await?.into_iter().map(|v| v.value).collect();
        let cidr = model::parse_subnet_cidr(cidr, &others)?;
        let subnet = SubnetRecord {
            id: DEFAULT_SUBNET_ID.into(),
            cidr,
            name: "default".into(),
            egress: false,
            created_at: now(),
            tags: BTreeMap::new(),
        };
        match store.put_subnet(&subnet, None).await {
            Ok(_) | Err(StoreError::Conflict) => tracing::info!(subnet = DEFAULT_SUBNET_ID, %cidr, "default subnet"),
            Err(e) => return Err(e.into()),
        }
    }
    if store.get_security_group(DEFAULT_SECURITY_GROUP_ID).await?.is_none() {
        let group = SecurityGroupRecord {
            id: DEFAULT_SECURITY_GROUP_ID.into(),
            name: "default".into(),
            description: "default security group: all traffic from its members".into(),
            ingress: model::default_group_rules(),
            created_at: now(),
            egress: model::allow_all_egress(),
            tags: BTreeMap::new(),
        };
        match store.put_security_group(&group, None).await {
            Ok(_) | Err(StoreError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

pub(super) async fn create_subnet(api: &Api, req: CreateSubnetRequest) -> Result<SubnetResponse, ApiError> {
    let subnet =
        new_subnet(api, &req.cidr_block, req.name.unwrap_or_default(), req.egress.unwrap_or(false), BTreeMap::new()).await?;
    Ok(SubnetResponse { subnet: subnet_detail(api.store.as_ref(), &subnet).await? })
}

pub(super) async fn list_subnets(api: &Api, _req: ListSubnetsRequest) -> Result<ListSubnetsResponse, ApiError> {
    let mut subnets = Vec::new();
    for s in api.store.list_subnets().await? {
        subnets.push(subnet_detail(api.store.as_ref(), &s.value).await?);
    }
    Ok(ListSubnetsResponse { subnets })
}

pub(super) async fn delete_subnet(api: &Api, req: DeleteSubnetRequest) -> Result<EmptyResponse, ApiError> {
    remove_subnet(api, &req.subnet_id).await?;
    Ok(EmptyResponse {})
}

pub(super) async fn create_group(api: &Api, req: CreateSecurityGroupRequest) -> Result<SecurityGroupResponse, ApiError> {
    let ingress = rules(req.ingress.as_deref().unwrap_or_default())?;
    let group = new_group(api, &req.group_name, req.description.unwrap_or_default(), ingress, BTreeMap::new()).await?;
    Ok(SecurityGroupResponse { security_group: group_detail(&group) })
}

pub(super) async fn list_groups(
    api: &Api,
    _req: ListSecurityGroupsRequest,
) -> Result<ListSecurityGroupsResponse, ApiError> {
    let groups = api.store.list_security_groups().await?;
    Ok(ListSecurityGroupsResponse { security_groups: groups.iter().map(|g| group_detail(&g.value)).collect() })
}

pub(super) async fn delete_group(api: &Api, req: DeleteSecurityGroupRequest) -> Result<EmptyResponse, ApiError> {
    remove_group(api, &req.group_id).await?;
    Ok(EmptyResponse {})
}

/// AuthorizeSecurityGroupIngress (`add`) and RevokeSecurityGroupIngress.
pub(super) async fn change_ingress(
    api: &Api,
    req: SecurityGroupIngressRequest,
    add: bool,
) -> Result<SecurityGroupResponse, ApiError> {
    let changes = rules(&req.rules)?;
    let group = change_rules(api, &req.group_id, Direction::Ingress, &changes, add).await?;
    Ok(SecurityGroupResponse { security_group: group_detail(&group) })
}

/// Makes a subnet: a private range within Berth's limits
/// (`InvalidSubnet.Range`) that overlaps no other (`InvalidSubnet.Conflict`).
pub(crate) async fn new_subnet(
    api: &Api,
    cidr: &str,
    name: String,
    egress: bool,
    tags: BTreeMap<String, String>,
) -> Result<SubnetRecord, ApiError> {
    let cidr = model::parse_subnet_cidr(cidr, &[]).map_err(|e| ec2("InvalidSubnet.Range", e))?;
    let others: Vec<SubnetRecord> = api.store.list_subnets().await?.into_iter().map(|v| v.value).collect();
    model::parse_subnet_cidr(&cidr.to_string(), &others).map_err(|e| ec2("InvalidSubnet.Conflict", e))?;
    let subnet = SubnetRecord { id: format!("subnet-{}", random_hex()), cidr, name, egress, created_at: now(), tags };
    api.store.put_subnet(&subnet, None).await?;
    tracing::info!(subnet = %subnet.id, %cidr, egress = subnet.egress, "subnet created");
    Ok(subnet)
}

/// Deletes a subnet; `DependencyViolation` while tasks hold addresses in it.
pub(crate) async fn remove_subnet(api: &Api, id: &str) -> Result<(), ApiError> {
    match api.store.delete_subnet(id).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(subnet_not_found(id)),
        Err(StoreError::Rejected) => Err(ApiError::ecs(
            "DependencyViolation",
            format!("The subnet '{id}' has dependencies and cannot be deleted: tasks hold addresses in it."),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Makes a security group with `ingress` rules and EC2's default egress
/// rule (all traffic anywhere); names are unique (`InvalidGroup.Duplicate`).
pub(crate) async fn new_group(
    api: &Api,
    name: &str,
    description: String,
    ingress: Vec<model::IngressRule>,
    tags: BTreeMap<String, String>,
) -> Result<SecurityGroupRecord, ApiError> {
    let name = name.trim().to_owned();
    if name.is_empty() || name.len() > 255 {
        return Err(ApiError::ecs("InvalidParameterValue", "groupName must be 1 to 255 characters."));
    }
    let groups: Vec<SecurityGroupRecord> = api.store.list_security_groups().await?.into_iter().map(|v| v.value).collect();
    if groups.iter().any(|g| g.name == name) {
        return Err(ApiError::ecs("InvalidGroup.Duplicate", format!("The security group '{name}' already exists.")));
    }
    let id = format!("sg-{}", random_hex());
    let known = |g: &str| g == id || groups.iter().any(|k| k.id == g);
    model::validate_rules(&ingress, known).map_err(|e| ec2("InvalidParameterValue", e))?;
    let group = SecurityGroupRecord {
        id,
        name,
        description,
        ingress,
        created_at: now(),
        egress: model::allow_all_egress(),
        tags,
    };
    api.store.put_security_group(&group, None).await?;
    tracing::info!(group = %group.id, name = %group.name, "security group created");
    Ok(group)
}

/// Deletes a group: never the default (`CannotDelete`), nor one another
/// group's rule names or a live task is in (`DependencyViolation`).
pub(crate) async fn remove_group(api: &Api, id: &str) -> Result<(), ApiError> {
    if id == DEFAULT_SECURITY_GROUP_ID {
        return Err(ApiError::ecs("CannotDelete", "The default security group cannot be deleted."));
    }
    if api.store.get_security_group(id).await?.is_none() {
        return Err(group_not_found(id));
    }
    let referenced = api.store.list_security_groups().await?.into_iter().find(|g| {
        g.value.id != id
            && g.value.ingress.iter().chain(&g.value.egress).any(|r| r.source_group.as_deref() == Some(id))
    });
    if let Some(g) = referenced {
        return Err(ApiError::ecs(
            "DependencyViolation",
            format!("The security group '{id}' is a rule's peer in '{}' and cannot be deleted.", g.value.id),
        ));
    }
    if let Some(task) = live_task_in_group(api.store.as_ref(), id).await? {
        return Err(ApiError::ecs(
            "DependencyViolation",
            format!("The security group '{id}' is in use by task {task} and cannot be deleted."),
        ));
    }
    api.store.delete_security_group(id).await?;
    tracing::info!(group = %id, "security group deleted");
    Ok(())
}

/// Which rules of a group a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Ingress,
    Egress,
}

/// Adds (`add`) or removes rules of a group: an added rule that is there
/// already is `InvalidPermission.Duplicate`, a removed one that is not
/// `InvalidPermission.NotFound`; all or nothing.
pub(crate) async fn change_rules(
    api: &Api,
    group_id: &str,
    direction: Direction,
    changes: &[model::IngressRule],
    add: bool,
) -> Result<SecurityGroupRecord, ApiError> {
    crate::ecs::with_retry(|| async {
        let current = api.store.get_security_group(group_id).await?.ok_or_else(|| group_not_found(group_id))?;
        let mut group = current.value;
        let id = group.id.clone();
        let rules = match direction {
            Direction::Ingress => &mut group.ingress,
            Direction::Egress => &mut group.egress,
        };
        if add {
            let groups: Vec<String> =
                api.store.list_security_groups().await?.into_iter().map(|g| g.value.id).collect();
            model::validate_rules(changes, |g| groups.iter().any(|k| k == g)).map_err(|e| ec2("InvalidParameterValue", e))?;
            if let Some(dup) = changes.iter().enumerate().find(|(i, r)| rules.contains(r) || changes[..*i].contains(r)) {
                let dup = dup.1;
                return Err(ApiError::ecs(
                    "InvalidPermission.Duplicate",
                    format!("the specified rule \"peer: {}, {}, {}-{}\" already exists in {id}", peer(dup), dup.protocol, dup.from_port, dup.to_port),
                ));
            }
            rules.extend(changes.iter().cloned());
        } else {
            if let Some(missing) = changes.iter().find(|r| !rules.contains(r)) {
                return Err(ApiError::ecs(
                    "InvalidPermission.NotFound",
                    format!(
                        "The specified rule does not exist in this security group: peer {}, {} {}-{} in {id}.",
                        peer(missing), missing.protocol, missing.from_port, missing.to_port
                    ),
                ));
            }
            rules.retain(|r| !changes.contains(r));
        }
        api.store.put_security_group(&group, Some(current.version)).await?;
        Ok(group)
    })
    .await
}

fn peer(r: &model::IngressRule) -> String {
    match (&r.cidr, &r.source_group) {
        (Some(c), _) => c.to_string(),
        (None, Some(g)) => g.clone(),
        (None, None) => "none".into(),
    }
}

/// Addresses of a subnet a task can still get (network, gateway and
/// broadcast addresses are never handed out).
pub(crate) async fn available_ips(store: &dyn Store, s: &SubnetRecord) -> Result<u64, ApiError> {
    let held = store.allocated_ips(&s.id).await?.len() as u64;
    let size = 1u64 << (32 - u32::from(s.cidr.prefix_len()));
    Ok(size.saturating_sub(3 + held))
}

/// The model's rules from the wire's, ports normalised: TCP/UDP need
/// them (one port when only `fromPort` is given); others ignore them.
fn rules(wire: &[IngressRule]) -> Result<Vec<model::IngressRule>, ApiError> {
    wire.iter()
        .map(|r| {
            let protocol = r.ip_protocol.to_ascii_lowercase();
            let protocol = if protocol == "all" { "-1".to_owned() } else { protocol };
            let ported = protocol == "tcp" || protocol == "udp";
            let from = if ported { r.from_port.unwrap_or(0) } else { 0 };
            let to = if ported { r.to_port.unwrap_or(from) } else { 0 };
            let cidr = match &r.cidr_ip {
                Some(c) => Some(c.parse().map_err(|_| {
                    ApiError::ecs("InvalidParameterValue", format!("Invalid CIDR '{c}': give an IPv4 range like 10.0.0.0/16."))
                })?),
                None => None,
            };
            Ok(model::IngressRule { protocol, from_port: from, to_port: to, cidr, source_group: r.source_group_id.clone() })
        })
        .collect()
}

async fn subnet_detail(store: &dyn Store, s: &SubnetRecord) -> Result<SubnetDetail, ApiError> {
    let available = available_ips(store, s).await?;
    Ok(SubnetDetail {
        subnet_id: s.id.clone(),
        cidr_block: s.cidr.to_string(),
        name: s.name.clone(),
        egress: s.egress,
        available_ip_address_count: available,
        default_for_berth: s.id == DEFAULT_SUBNET_ID,
        created_at: s.created_at,
    })
}

fn group_detail(g: &SecurityGroupRecord) -> SecurityGroupDetail {
    let rules = |rules: &[berth_model::network::IngressRule]| -> Vec<IngressRule> {
        rules
            .iter()
            .map(|r| {
                let ported = r.protocol == "tcp" || r.protocol == "udp";
                IngressRule {
                    ip_protocol: r.protocol.clone(),
                    from_port: ported.then_some(r.from_port),
                    to_port: ported.then_some(r.to_port),
                    cidr_ip: r.cidr.map(|c| c.to_string()),
                    source_group_id: r.source_group.clone(),
                }
            })
            .collect()
    };
    SecurityGroupDetail {
        group_id: g.id.clone(),
        group_name: g.name.clone(),
        description: g.description.clone(),
        ingress: rules(&g.ingress),
        egress: rules(&g.egress),
        created_at: g.created_at,
    }
}

pub(crate) async fn live_task_in_group(store: &dyn Store, group: &str) -> Result<Option<String>, ApiError> {
    let filter = TaskFilter { live_only: true, ..Default::default() };
    let member = |t: &berth_model::task::Task| t.network.as_ref().is_some_and(|n| n.security_groups.iter().any(|g| g == group));
    Ok(berth_store::find_task(store, &filter, member).await?.map(|t| t.arn.to_string()))
}

pub(crate) fn subnet_not_found(id: &str) -> ApiError {
    ApiError::ecs("InvalidSubnetID.NotFound", format!("The subnet ID '{id}' does not exist."))
}

pub(crate) fn group_not_found(id: &str) -> ApiError {
    ApiError::ecs("InvalidGroup.NotFound", format!("The security group '{id}' does not exist."))
}

fn ec2(aws_type: &'static str, e: berth_model::ModelError) -> ApiError {
    ApiError::ecs(aws_type, e.to_string())
}

pub(crate) fn random_hex() -> String {
    let u = uuid::Uuid::new_v4().simple().to_string();
    u[..17].to_owned()
}

pub(crate) fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64 / 1000.0)
}
