//! Services: a name in a namespace, its DNS records and health checking.

use berth_model::discovery::{
    self as model, DiscoveryError, DiscoveryService, DnsConfig, DnsRecord, OperationType, RecordType,
    RoutingPolicy, ServiceSpec, ServiceType,
};
use berth_store::{StoreError, Versioned};
use berth_wire::servicediscovery as wire;

use super::filters::{Filter, kept, matches};
use super::namespaces::{check_description, tag_map};
use super::{arn, id_of, invalid, new_id, operation, page, to_i32};
use crate::{Api, ApiError};

fn records(list: &[wire::DnsRecord]) -> Result<Vec<DnsRecord>, ApiError> {
    list.iter().map(|r| Ok(DnsRecord { kind: RecordType::parse(r.r#type.as_str())?, ttl: r.ttl })).collect()
}

pub(super) async fn create(api: &Api, r: wire::CreateServiceRequest) -> Result<wire::CreateServiceResponse, ApiError> {
    check_description(r.description.as_deref())?;
    // The namespace is the request's, or (deprecated) its DnsConfig's.
    let ns_param = r.namespace_id.clone().or_else(|| r.dns_config.as_ref().and_then(|d| d.namespace_id.clone()));
    let Some(ns_param) = ns_param else { return Err(invalid("CreateService needs a NamespaceId.")) };
    let namespace = super::namespaces::find(api, &ns_param).await?.value;
    let dns = match &r.dns_config {
        None => None,
        Some(d) => Some(DnsConfig {
            routing_policy: match d.routing_policy {
                Some(wire::RoutingPolicy::Weighted) => RoutingPolicy::Weighted,
                _ => RoutingPolicy::Multivalue,
            },
            records: records(&d.dns_records)?,
        }),
    };
    let spec = ServiceSpec {
        name: r.name.clone(),
        dns,
        http_only: r.r#type.is_some(),
        custom_health: r.health_check_custom_config.as_ref().map(|c| c.failure_threshold.unwrap_or(1)),
        route53_health_check: r.health_check_config.is_some(),
    };
    let kind = model::check_service(&spec, &namespace)?;
    let tags = tag_map(r.tags.unwrap_or_default(), &Default::default())?;
    let existing = api.store.list_discovery_services(Some(&namespace.id)).await?;
    let already = |s: &DiscoveryService| {
        ApiError::from(DiscoveryError::ServiceAlreadyExists(format!(
            "A service named '{}' already exists in the namespace {} ({}).",
            s.name, namespace.id, s.id
        )))
    };
    if let Some(prior) = existing.iter().find(|s| s.value.name.eq_ignore_ascii_case(&spec.name)) {
        // A retried request (the same CreatorRequestId) gets the service.
        if r.creator_request_id.is_some() && prior.value.creator_request_id == r.creator_request_id {
            return Ok(wire::CreateServiceResponse { service: Some(wire_service(api, &prior.value, 0)) });
        }
        return Err(already(&prior.value));
    }
    let id = new_id("srv-");
    let service = DiscoveryService {
        arn: arn(api, "service", &id),
        id,
        name: spec.name,
        namespace_id: namespace.id.clone(),
        description: r.description,
        dns: spec.dns,
        custom_health: spec.custom_health,
        kind,
        creator_request_id: r.creator_request_id,
        created_at: super::now(),
        tags,
    };
    match api.store.insert_discovery_service(&service).await {
        Ok(_) => Ok(wire::CreateServiceResponse { service: Some(wire_service(api, &service, 0)) }),
        Err(StoreError::Conflict) => Err(already(&service)),
        Err(StoreError::NotFound(_)) => Err(DiscoveryError::NamespaceNotFound(namespace.id).into()),
        Err(e) => Err(e.into()),
    }
}

fn wire_dns(s: &DiscoveryService) -> Option<wire::DnsConfig> {
    s.dns.as_ref().map(|d| wire::DnsConfig {
        namespace_id: Some(s.namespace_id.clone()),
        routing_policy: Some(match d.routing_policy {
            RoutingPolicy::Multivalue => wire::RoutingPolicy::Multivalue,
            RoutingPolicy::Weighted => wire::RoutingPolicy::Weighted,
        }),
        dns_records: d
            .records
            .iter()
            .filter_map(|r| Some(wire::DnsRecord { r#type: r.kind.as_str().parse().ok()?, ttl: r.ttl }))
            .collect(),
    })
}

fn wire_type(kind: ServiceType) -> wire::ServiceType {
    match kind {
        ServiceType::Http => wire::ServiceType::Http,
        ServiceType::DnsHttp => wire::ServiceType::DnsHttp,
    }
}

fn wire_service(api: &Api, s: &DiscoveryService, instances: usize) -> wire::Service {
    let account = api.account().account_id.clone();
    wire::Service {
        id: Some(s.id.clone()),
        arn: Some(s.arn.clone()),
        resource_owner: Some(account.clone()),
        name: Some(s.name.clone()),
        namespace_id: Some(s.namespace_id.clone()),
        description: s.description.clone(),
        instance_count: Some(to_i32(instances)),
        dns_config: wire_dns(s),
        r#type: Some(wire_type(s.kind)),
        health_check_config: None,
        health_check_custom_config: s.custom_health.map(|t| wire::HealthCheckCustomConfig { failure_threshold: Some(t) }),
        create_date: Some(s.created_at),
        creator_request_id: s.creator_request_id.clone(),
        created_by_account: Some(account),
    }
}

pub(super) async fn find(api: &Api, id: &str) -> Result<Versioned<DiscoveryService>, ApiError> {
    let id = id_of(id, "service");
    api.store.get_discovery_service(id).await?.ok_or_else(|| DiscoveryError::ServiceNotFound(id.to_owned()).into())
}

pub(super) async fn get(api: &Api, r: wire::GetServiceRequest) -> Result<wire::GetServiceResponse, ApiError> {
    let s = find(api, &r.id).await?.value;
    let count = api.store.list_instances(&s.id).await?.len();
    Ok(wire::GetServiceResponse { service: Some(wire_service(api, &s, count)) })
}

pub(super) async fn list(api: &Api, r: wire::ListServicesRequest) -> Result<wire::ListServicesResponse, ApiError> {
    let filters = Filter::all(
        r.filters.unwrap_or_default().into_iter().map(|f| (f.name.as_str(), f.values, f.condition.map(|c| c.as_str()))),
    )?;
    let all = api.store.list_discovery_services(None).await?.into_iter().map(|s| s.value);
    let kept = kept(all, &filters, |f, s| match f.name {
        "NAMESPACE_ID" => matches(f, &s.namespace_id, &["EQ"]),
        _ => matches(f, "SELF", &["EQ"]),
    })?;
    let (items, next_token) = page(kept, |s| s.id.as_str(), r.next_token.as_deref(), r.max_results)?;
    let mut services = Vec::with_capacity(items.len());
    for s in items {
        let w = wire_service(api, &s, api.store.list_instances(&s.id).await?.len());
        services.push(wire::ServiceSummary {
            id: w.id,
            arn: w.arn,
            resource_owner: w.resource_owner,
            name: w.name,
            r#type: w.r#type,
            description: w.description,
            instance_count: w.instance_count,
            dns_config: w.dns_config,
            health_check_config: None,
            health_check_custom_config: w.health_check_custom_config,
            create_date: w.create_date,
            created_by_account: w.created_by_account,
        });
    }
    Ok(wire::ListServicesResponse { services: Some(services), next_token })
}

/// UpdateService: the description and the DNS records' TTLs (the record
/// types stay as created, as in Cloud Map).
pub(super) async fn update(api: &Api, r: wire::UpdateServiceRequest) -> Result<wire::UpdateServiceResponse, ApiError> {
    if r.service.health_check_config.is_some() {
        return Err(invalid("HealthCheckConfig needs Route 53 health checks, which Berth does not serve."));
    }
    check_description(r.service.description.as_deref())?;
    loop {
        let mut s = find(api, &r.id).await?;
        if let Some(d) = &r.service.description {
            s.value.description = Some(d.clone());
        }
        if let Some(change) = &r.service.dns_config {
            let new = records(&change.dns_records)?;
            model::check_dns_records(&new)?;
            let Some(dns) = s.value.dns.as_mut() else {
                return Err(invalid(format!("The service {} has no DNS records to update.", s.value.id)));
            };
            let mut old: Vec<RecordType> = dns.records.iter().map(|r| r.kind).collect();
            let mut asked: Vec<RecordType> = new.iter().map(|r| r.kind).collect();
            old.sort();
            asked.sort();
            if old != asked {
                return Err(invalid("UpdateService cannot change the DNS record types of a service, only their TTLs."));
            }
            dns.records = new;
        }
        let ns = super::namespaces::find(api, &s.value.namespace_id).await?.value;
        let op = operation(OperationType::UpdateService, &[("NAMESPACE", &ns.id), ("SERVICE", &s.value.id)]);
        match api.store.update_discovery_service(&s.value, s.version, Some(&op)).await {
            Ok(_) => return Ok(wire::UpdateServiceResponse { operation_id: Some(op.id) }),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

pub(super) async fn delete(api: &Api, r: wire::DeleteServiceRequest) -> Result<wire::DeleteServiceResponse, ApiError> {
    let s = find(api, &r.id).await?.value;
    match api.store.delete_discovery_service(&s.id).await {
        Ok(true) => Ok(wire::DeleteServiceResponse {}),
        Ok(false) => Err(DiscoveryError::ServiceNotFound(s.id).into()),
        Err(StoreError::Rejected) => Err(DiscoveryError::ResourceInUse(format!(
            "The service {} has registered instances: deregister them first.",
            s.id
        ))
        .into()),
        Err(e) => Err(e.into()),
    }
}
