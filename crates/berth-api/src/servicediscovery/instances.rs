//! Instances: registration, health, and discovery (DiscoverInstances,
//! which AWS serves on its `data-` host and Berth at the one endpoint).

use berth_model::discovery::{self as model, ATTR_INIT_HEALTH, DiscoveryError, Health, HealthFilter, Instance, OperationType};
use berth_store::Versioned;
use berth_wire::servicediscovery as wire;
use serde_json::Value;

use super::services::find;
use super::{invalid, limit, operation, page};
use crate::{Api, ApiError};

pub(super) async fn register(api: &Api, r: wire::RegisterInstanceRequest) -> Result<wire::RegisterInstanceResponse, ApiError> {
    let service = find(api, &r.service_id).await?.value;
    let initial = model::check_instance(&service, &r.instance_id, &r.attributes)?;
    let previous = api.store.get_instance(&service.id, &r.instance_id).await?;
    // Registering again replaces the attributes; the health stays unless
    // the request sets it.
    let health = match previous {
        Some(p) if !r.attributes.contains_key(ATTR_INIT_HEALTH) => p.value.health,
        _ => initial,
    };
    let op = operation(
        OperationType::RegisterInstance,
        &[("NAMESPACE", &service.namespace_id), ("SERVICE", &service.id), ("INSTANCE", &r.instance_id)],
    );
    let instance = Instance {
        service_id: service.id.clone(),
        id: r.instance_id,
        attributes: r.attributes,
        health,
        creator_request_id: r.creator_request_id,
        registered_at: op.created_at,
    };
    api.store.put_instance(&instance, Some(&op)).await.map_err(|e| match e {
        berth_store::StoreError::NotFound(_) => DiscoveryError::ServiceNotFound(service.id.clone()).into(),
        e => ApiError::from(e),
    })?;
    Ok(wire::RegisterInstanceResponse { operation_id: Some(op.id) })
}

async fn find_instance(api: &Api, service_id: &str, instance_id: &str) -> Result<Versioned<Instance>, ApiError> {
    api.store
        .get_instance(service_id, instance_id)
        .await?
        .ok_or_else(|| DiscoveryError::InstanceNotFound(format!("{instance_id} in the service {service_id}")).into())
}

pub(super) async fn deregister(api: &Api, r: wire::DeregisterInstanceRequest) -> Result<wire::DeregisterInstanceResponse, ApiError> {
    let service = find(api, &r.service_id).await?.value;
    let op = operation(
        OperationType::DeregisterInstance,
        &[("NAMESPACE", &service.namespace_id), ("SERVICE", &service.id), ("INSTANCE", &r.instance_id)],
    );
    if !api.store.delete_instance(&service.id, &r.instance_id, &op).await? {
        return Err(DiscoveryError::InstanceNotFound(format!("{} in the service {}", r.instance_id, service.id)).into());
    }
    Ok(wire::DeregisterInstanceResponse { operation_id: Some(op.id) })
}

fn wire_instance(api: &Api, i: &Instance) -> wire::Instance {
    wire::Instance {
        id: i.id.clone(),
        creator_request_id: i.creator_request_id.clone(),
        attributes: Some(i.attributes.clone()),
        created_by_account: Some(api.account().account_id.clone()),
    }
}

pub(super) async fn get(api: &Api, r: wire::GetInstanceRequest) -> Result<wire::GetInstanceResponse, ApiError> {
    let service = find(api, &r.service_id).await?.value;
    let i = find_instance(api, &service.id, &r.instance_id).await?.value;
    Ok(wire::GetInstanceResponse { resource_owner: Some(api.account().account_id.clone()), instance: Some(wire_instance(api, &i)) })
}

pub(super) async fn list(api: &Api, r: wire::ListInstancesRequest) -> Result<wire::ListInstancesResponse, ApiError> {
    let service = find(api, &r.service_id).await?.value;
    let all: Vec<Instance> = api.store.list_instances(&service.id).await?.into_iter().map(|v| v.value).collect();
    let (items, next_token) = page(all, |i| i.id.as_str(), r.next_token.as_deref(), r.max_results)?;
    let instances = items
        .iter()
        .map(|i| wire::InstanceSummary {
            id: Some(i.id.clone()),
            attributes: Some(i.attributes.clone()),
            created_by_account: Some(api.account().account_id.clone()),
        })
        .collect();
    Ok(wire::ListInstancesResponse { resource_owner: Some(api.account().account_id.clone()), instances: Some(instances), next_token })
}

fn wire_health(h: Health) -> wire::HealthStatus {
    match h {
        Health::Healthy => wire::HealthStatus::Healthy,
        Health::Unhealthy => wire::HealthStatus::Unhealthy,
    }
}

pub(super) async fn health_status(
    api: &Api,
    r: wire::GetInstancesHealthStatusRequest,
) -> Result<wire::GetInstancesHealthStatusResponse, ApiError> {
    let service = find(api, &r.service_id).await?.value;
    let mut all: Vec<Instance> = api.store.list_instances(&service.id).await?.into_iter().map(|v| v.value).collect();
    if let Some(wanted) = &r.instances {
        if wanted.is_empty() || wanted.len() > 10 {
            return Err(invalid("Instances must name 1 to 10 instances."));
        }
        if let Some(missing) = wanted.iter().find(|w| !all.iter().any(|i| &i.id == *w)) {
            return Err(DiscoveryError::InstanceNotFound(format!("{missing} in the service {}", service.id)).into());
        }
        all.retain(|i| wanted.contains(&i.id));
    }
    let (items, next_token) = page(all, |i| i.id.as_str(), r.next_token.as_deref(), r.max_results)?;
    let status = items.iter().map(|i| (i.id.clone(), wire_health(i.health))).collect();
    Ok(wire::GetInstancesHealthStatusResponse { status: Some(status), next_token })
}

pub(super) async fn update_health(api: &Api, r: wire::UpdateInstanceCustomHealthStatusRequest) -> Result<Value, ApiError> {
    let service = find(api, &r.service_id).await?.value;
    if service.custom_health.is_none() {
        return Err(DiscoveryError::CustomHealthNotFound(format!(
            "The service {} has no HealthCheckCustomConfig.",
            service.id
        ))
        .into());
    }
    let mut i = find_instance(api, &service.id, &r.instance_id).await?.value;
    let health = match r.status {
        wire::CustomHealthStatus::Healthy => Health::Healthy,
        wire::CustomHealthStatus::Unhealthy => Health::Unhealthy,
    };
    if i.health != health {
        i.health = health;
        api.store.put_instance(&i, None).await?;
    }
    Ok(Value::Object(Default::default()))
}

/// The service `service_name` of the namespace `namespace_name` (names
/// compare without case).
async fn by_names(api: &Api, namespace_name: &str, service_name: &str) -> Result<model::DiscoveryService, ApiError> {
    let trimmed = namespace_name.strip_suffix('.').unwrap_or(namespace_name);
    let ns = api
        .store
        .list_namespaces()
        .await?
        .into_iter()
        .find(|n| n.value.name.eq_ignore_ascii_case(trimmed))
        .ok_or_else(|| DiscoveryError::NamespaceNotFound(namespace_name.to_owned()))?;
    api.store
        .list_discovery_services(Some(&ns.value.id))
        .await?
        .into_iter()
        .find(|s| s.value.name.eq_ignore_ascii_case(service_name))
        .map(|s| s.value)
        .ok_or_else(|| DiscoveryError::ServiceNotFound(format!("{service_name} in the namespace {namespace_name}")).into())
}

fn owner_is_self(api: &Api, owner: Option<&str>) -> Result<(), ApiError> {
    match owner {
        Some(o) if o != api.account().account_id => Err(invalid(format!("The account {o} shares no namespace with this one."))),
        _ => Ok(()),
    }
}

pub(super) async fn discover(api: &Api, r: wire::DiscoverInstancesRequest) -> Result<wire::DiscoverInstancesResponse, ApiError> {
    owner_is_self(api, r.owner_account.as_deref())?;
    let max = limit(r.max_results, 1000)?;
    let service = by_names(api, &r.namespace_name, &r.service_name).await?;
    let revision = api.store.discovery_revision(&service.id).await?;
    let all: Vec<Instance> = api.store.list_instances(&service.id).await?.into_iter().map(|v| v.value).collect();
    let filter = match r.health_status.unwrap_or_default() {
        wire::HealthStatusFilter::Healthy => HealthFilter::Healthy,
        wire::HealthStatusFilter::Unhealthy => HealthFilter::Unhealthy,
        wire::HealthStatusFilter::All => HealthFilter::All,
        wire::HealthStatusFilter::HealthyOrElseAll => HealthFilter::HealthyOrElseAll,
    };
    let found = model::discover(
        &all,
        &r.query_parameters.unwrap_or_default(),
        &r.optional_parameters.unwrap_or_default(),
        filter,
        max,
    );
    let instances = found
        .into_iter()
        .map(|i| wire::HttpInstanceSummary {
            instance_id: Some(i.id.clone()),
            namespace_name: Some(r.namespace_name.clone()),
            service_name: Some(service.name.clone()),
            health_status: Some(wire_health(i.health)),
            attributes: Some(i.attributes.clone()),
        })
        .collect();
    Ok(wire::DiscoverInstancesResponse { instances: Some(instances), instances_revision: Some(revision) })
}

pub(super) async fn discover_revision(
    api: &Api,
    r: wire::DiscoverInstancesRevisionRequest,
) -> Result<wire::DiscoverInstancesRevisionResponse, ApiError> {
    owner_is_self(api, r.owner_account.as_deref())?;
    let service = by_names(api, &r.namespace_name, &r.service_name).await?;
    Ok(wire::DiscoverInstancesRevisionResponse { instances_revision: Some(api.store.discovery_revision(&service.id).await?) })
}
