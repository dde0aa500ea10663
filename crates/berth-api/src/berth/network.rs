//! Subnets and security groups: Berth resources with AWS-style ids that
//! RunTask's `awsvpcConfiguration` names. Errors use EC2's names
//! (`InvalidSubnetID.NotFound`, `DependencyViolation`, ...).

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
        let subnet =
            SubnetRecord { id: DEFAULT_SUBNET_ID.into(), cidr, name: "default".into(), egress: false, created_at: now() };
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
        };
        match store.put_security_group(&group, None).await {
            Ok(_) | Err(StoreError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

pub(super) async fn create_subnet(api: &Api, req: CreateSubnetRequest) -> Result<SubnetResponse, ApiError> {
    let others: Vec<SubnetRecord> = api.store.list_subnets().await?.into_iter().map(|v| v.value).collect();
    let cidr = model::parse_subnet_cidr(&req.cidr_block, &others).map_err(|e| ec2("InvalidSubnet.Range", e))?;
    let subnet = SubnetRecord {
        id: format!("subnet-{}", random_hex()),
        cidr,
        name: req.name.unwrap_or_default(),
        egress: req.egress.unwrap_or(false),
        created_at: now(),
    };
    api.store.put_subnet(&subnet, None).await?;
    tracing::info!(subnet = %subnet.id, %cidr, egress = subnet.egress, "subnet created");
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
    match api.store.delete_subnet(&req.subnet_id).await {
        Ok(true) => Ok(EmptyResponse {}),
        Ok(false) => Err(subnet_not_found(&req.subnet_id)),
        Err(StoreError::Rejected) => Err(ApiError::ecs(
            "DependencyViolation",
            format!("The subnet '{}' has dependencies and cannot be deleted: tasks hold addresses in it.", req.subnet_id),
        )),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn create_group(api: &Api, req: CreateSecurityGroupRequest) -> Result<SecurityGroupResponse, ApiError> {
    let name = req.group_name.trim().to_owned();
    if name.is_empty() || name.len() > 255 {
        return Err(ApiError::ecs("InvalidParameterValue", "groupName must be 1 to 255 characters."));
    }
    let groups: Vec<SecurityGroupRecord> = api.store.list_security_groups().await?.into_iter().map(|v| v.value).collect();
    if groups.iter().any(|g| g.name == name) {
        return Err(ApiError::ecs("InvalidGroup.Duplicate", format!("The security group '{name}' already exists.")));
    }
    let id = format!("sg-{}", random_hex());
    let ingress = rules(req.ingress.as_deref().unwrap_or_default())?;
    let known = |g: &str| g == id || groups.iter().any(|k| k.id == g);
    model::validate_rules(&ingress, known).map_err(|e| ec2("InvalidParameterValue", e))?;
    let group = SecurityGroupRecord { id, name, description: req.description.unwrap_or_default(), ingress, created_at: now() };
    api.store.put_security_group(&group, None).await?;
    tracing::info!(group = %group.id, name = %group.name, "security group created");
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
    let id = req.group_id;
    if id == DEFAULT_SECURITY_GROUP_ID {
        return Err(ApiError::ecs("CannotDelete", "The default security group cannot be deleted."));
    }
    if api.store.get_security_group(&id).await?.is_none() {
        return Err(group_not_found(&id));
    }
    let referenced = api.store.list_security_groups().await?.into_iter().find(|g| {
        g.value.id != id && g.value.ingress.iter().any(|r| r.source_group.as_deref() == Some(id.as_str()))
    });
    if let Some(g) = referenced {
        return Err(ApiError::ecs(
            "DependencyViolation",
            format!("The security group '{id}' is a rule's source in '{}' and cannot be deleted.", g.value.id),
        ));
    }
    if let Some(task) = live_task_in_group(api.store.as_ref(), &id).await? {
        return Err(ApiError::ecs(
            "DependencyViolation",
            format!("The security group '{id}' is in use by task {task} and cannot be deleted."),
        ));
    }
    api.store.delete_security_group(&id).await?;
    Ok(EmptyResponse {})
}

/// AuthorizeSecurityGroupIngress (`add`) and RevokeSecurityGroupIngress.
pub(super) async fn change_ingress(
    api: &Api,
    req: SecurityGroupIngressRequest,
    add: bool,
) -> Result<SecurityGroupResponse, ApiError> {
    let changes = rules(&req.rules)?;
    crate::ecs::with_retry(|| async {
        let current = api.store.get_security_group(&req.group_id).await?.ok_or_else(|| group_not_found(&req.group_id))?;
        let mut group = current.value;
        if add {
            let groups: Vec<String> =
                api.store.list_security_groups().await?.into_iter().map(|g| g.value.id).collect();
            model::validate_rules(&changes, |g| groups.iter().any(|k| k == g)).map_err(|e| ec2("InvalidParameterValue", e))?;
            if let Some(dup) = changes.iter().find(|r| group.ingress.contains(r)) {
                return Err(ApiError::ecs(
                    "InvalidPermission.Duplicate",
                    format!("The rule {} {}-{} already exists in {}.", dup.protocol, dup.from_port, dup.to_port, group.id),
                ));
            }
            group.ingress.extend(changes.iter().cloned());
        } else {
            if let Some(missing) = changes.iter().find(|r| !group.ingress.contains(r)) {
                return Err(ApiError::ecs(
                    "InvalidPermission.NotFound",
                    format!("The rule {} {}-{} is not in {}.", missing.protocol, missing.from_port, missing.to_port, group.id),
                ));
            }
            group.ingress.retain(|r| !changes.contains(r));
        }
        api.store.put_security_group(&group, Some(current.version)).await?;
        Ok(SecurityGroupResponse { security_group: group_detail(&group) })
    })
    .await
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
    let held = store.allocated_ips(&s.id).await?.len() as u64;
    let size = 1u64 << (32 - u32::from(s.cidr.prefix_len()));
    Ok(SubnetDetail {
        subnet_id: s.id.clone(),
        cidr_block: s.cidr.to_string(),
        name: s.name.clone(),
        egress: s.egress,
        // Network, gateway and broadcast addresses are never handed out.
        available_ip_address_count: size.saturating_sub(3 + held),
        default_for_berth: s.id == DEFAULT_SUBNET_ID,
        created_at: s.created_at,
    })
}

fn group_detail(g: &SecurityGroupRecord) -> SecurityGroupDetail {
    SecurityGroupDetail {
        group_id: g.id.clone(),
        group_name: g.name.clone(),
        description: g.description.clone(),
        ingress: g
            .ingress
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
            .collect(),
        created_at: g.created_at,
    }
}

async fn live_task_in_group(store: &dyn Store, group: &str) -> Result<Option<String>, ApiError> {
    let filter = TaskFilter { live_only: true, ..Default::default() };
    let member = |t: &berth_model::task::Task| t.network.as_ref().is_some_and(|n| n.security_groups.iter().any(|g| g == group));
    Ok(berth_store::find_task(store, &filter, member).await?.map(|t| t.arn.to_string()))
}

fn subnet_not_found(id: &str) -> ApiError {
    ApiError::ecs("InvalidSubnetID.NotFound", format!("The subnet ID '{id}' does not exist."))
}

fn group_not_found(id: &str) -> ApiError {
    ApiError::ecs("InvalidGroup.NotFound", format!("The security group '{id}' does not exist."))
}

fn ec2(aws_type: &'static str, e: berth_model::ModelError) -> ApiError {
    ApiError::ecs(aws_type, e.to_string())
}

fn random_hex() -> String {
    let u = uuid::Uuid::new_v4().simple().to_string();
    u[..17].to_owned()
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64 / 1000.0)
}
