//! Namespaces (private DNS and HTTP) and the tags of namespaces and
//! services.

use std::collections::BTreeMap;

use berth_model::discovery::{
    self as model, DiscoveryError, Namespace, NamespaceSpec, NamespaceType, OperationType,
};
use berth_store::{StoreError, Versioned};
use berth_wire::servicediscovery as wire;

use super::filters::{Filter, kept, matches};
use super::{arn, id_of, invalid, new_id, operation, page, to_i32};
use crate::{Api, ApiError};

/// Cloud Map's SOA TTL unless the request gives one.
const DEFAULT_SOA_TTL: i64 = 15;
/// At most this many tags per resource.
const MAX_TAGS: usize = 50;

pub(super) async fn create_private_dns(
    api: &Api,
    r: wire::CreatePrivateDnsNamespaceRequest,
) -> Result<wire::CreatePrivateDnsNamespaceResponse, ApiError> {
    let soa_ttl = r.properties.as_ref().map_or(DEFAULT_SOA_TTL, |p| p.dns_properties.soa.ttl);
    let spec = NamespaceSpec { name: r.name, kind: NamespaceType::DnsPrivate, vpc: Some(r.vpc), soa_ttl: Some(soa_ttl) };
    let operation_id = create(api, spec, r.creator_request_id, r.description, r.tags).await?;
    Ok(wire::CreatePrivateDnsNamespaceResponse { operation_id: Some(operation_id) })
}

pub(super) async fn create_http(api: &Api, r: wire::CreateHttpNamespaceRequest) -> Result<wire::CreateHttpNamespaceResponse, ApiError> {
    let spec = NamespaceSpec { name: r.name, kind: NamespaceType::Http, vpc: None, soa_ttl: None };
    let operation_id = create(api, spec, r.creator_request_id, r.description, r.tags).await?;
    Ok(wire::CreateHttpNamespaceResponse { operation_id: Some(operation_id) })
}

/// Creates a namespace; a request retried with its `CreatorRequestId`
/// gets the first one's operation again, another request with that id is
/// a DuplicateRequest.
async fn create(
    api: &Api,
    spec: NamespaceSpec,
    creator_request_id: Option<String>,
    description: Option<String>,
    tags: Option<Vec<wire::Tag>>,
) -> Result<String, ApiError> {
    model::check_namespace(&spec)?;
    check_description(description.as_deref())?;
    let tags = tag_map(tags.unwrap_or_default(), &BTreeMap::new())?;
    let name = spec.name.strip_suffix('.').filter(|_| spec.kind == NamespaceType::DnsPrivate).unwrap_or(&spec.name).to_owned();
    let existing = api.store.list_namespaces().await?;
    if let Some(creator) = &creator_request_id
        && let Some(prior) = existing.iter().find(|n| n.value.creator_request_id.as_ref() == Some(creator))
    {
        if prior.value.name.eq_ignore_ascii_case(&name) && prior.value.kind == spec.kind {
            return Ok(prior.value.operation_id.clone());
        }
        return Err(DiscoveryError::DuplicateRequest {
            message: format!("The CreatorRequestId '{creator}' was already used by another request."),
            operation_id: prior.value.operation_id.clone(),
        }
        .into());
    }
    let message = format!("A namespace named '{name}' already exists.");
    let taken = || ApiError::from(DiscoveryError::NamespaceAlreadyExists(message.clone()));
    if existing.iter().any(|n| n.value.name.eq_ignore_ascii_case(&name)) {
        return Err(taken());
    }
    let id = new_id("ns-");
    let hosted_zone_id = (spec.kind == NamespaceType::DnsPrivate).then(|| format!("Z{}", id[3..].to_ascii_uppercase()));
    let op = operation(OperationType::CreateNamespace, &[("NAMESPACE", &id)]);
    let namespace = Namespace {
        arn: arn(api, "namespace", &id),
        id,
        name,
        kind: spec.kind,
        description,
        vpc: spec.vpc,
        hosted_zone_id,
        soa_ttl: spec.soa_ttl,
        creator_request_id,
        operation_id: op.id.clone(),
        created_at: op.created_at,
        tags,
    };
    match api.store.insert_namespace(&namespace, &op).await {
        Ok(_) => Ok(op.id),
        Err(StoreError::Conflict) => Err(taken()),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn check_description(d: Option<&str>) -> Result<(), ApiError> {
    match d {
        Some(d) if d.len() > 1024 => Err(invalid("Description must be at most 1024 characters.")),
        _ => Ok(()),
    }
}

pub(super) async fn find(api: &Api, id: &str) -> Result<Versioned<Namespace>, ApiError> {
    let id = id_of(id, "namespace");
    api.store.get_namespace(id).await?.ok_or_else(|| DiscoveryError::NamespaceNotFound(id.to_owned()).into())
}

fn properties(n: &Namespace) -> wire::NamespaceProperties {
    wire::NamespaceProperties {
        dns_properties: n.hosted_zone_id.as_ref().map(|z| wire::DnsProperties {
            hosted_zone_id: Some(z.clone()),
            soa: n.soa_ttl.map(|ttl| wire::SOA { ttl }),
        }),
        http_properties: Some(wire::HttpProperties { http_name: Some(n.name.clone()) }),
    }
}

fn wire_type(kind: NamespaceType) -> wire::NamespaceType {
    match kind {
        NamespaceType::DnsPrivate => wire::NamespaceType::DnsPrivate,
        NamespaceType::Http => wire::NamespaceType::Http,
    }
}

pub(super) async fn get(api: &Api, r: wire::GetNamespaceRequest) -> Result<wire::GetNamespaceResponse, ApiError> {
    let n = find(api, &r.id).await?.value;
    let count = api.store.list_discovery_services(Some(&n.id)).await?.len();
    Ok(wire::GetNamespaceResponse {
        namespace: Some(wire::Namespace {
            id: Some(n.id.clone()),
            arn: Some(n.arn.clone()),
            resource_owner: Some(api.account().account_id.clone()),
            name: Some(n.name.clone()),
            r#type: Some(wire_type(n.kind)),
            description: n.description.clone(),
            service_count: Some(to_i32(count)),
            properties: Some(properties(&n)),
            create_date: Some(n.created_at),
            creator_request_id: n.creator_request_id.clone(),
        }),
    })
}

pub(super) async fn list(api: &Api, r: wire::ListNamespacesRequest) -> Result<wire::ListNamespacesResponse, ApiError> {
    let filters = Filter::all(
        r.filters.unwrap_or_default().into_iter().map(|f| (f.name.as_str(), f.values, f.condition.map(|c| c.as_str()))),
    )?;
    let services = api.store.list_discovery_services(None).await?;
    let namespaces = api.store.list_namespaces().await?.into_iter().map(|n| n.value);
    let kept = kept(namespaces, &filters, |f, n| match f.name {
        "TYPE" => matches(f, n.kind.as_str(), &["EQ", "IN"]),
        "NAME" | "HTTP_NAME" => matches(f, &n.name, &["EQ", "BEGINS_WITH"]),
        _ => matches(f, "SELF", &["EQ"]),
    })?;
    let (items, next_token) = page(kept, |n| n.id.as_str(), r.next_token.as_deref(), r.max_results)?;
    let namespaces = items
        .into_iter()
        .map(|n| wire::NamespaceSummary {
            service_count: Some(to_i32(services.iter().filter(|s| s.value.namespace_id == n.id).count())),
            properties: Some(properties(&n)),
            id: Some(n.id),
            arn: Some(n.arn),
            resource_owner: Some(api.account().account_id.clone()),
            name: Some(n.name),
            r#type: Some(wire_type(n.kind)),
            description: n.description,
            create_date: Some(n.created_at),
        })
        .collect();
    Ok(wire::ListNamespacesResponse { namespaces: Some(namespaces), next_token })
}

pub(super) async fn delete(api: &Api, r: wire::DeleteNamespaceRequest) -> Result<wire::DeleteNamespaceResponse, ApiError> {
    let n = find(api, &r.id).await?.value;
    let op = operation(OperationType::DeleteNamespace, &[("NAMESPACE", &n.id)]);
    match api.store.delete_namespace(&n.id, &op).await {
        Ok(true) => Ok(wire::DeleteNamespaceResponse { operation_id: Some(op.id) }),
        Ok(false) => Err(DiscoveryError::NamespaceNotFound(n.id).into()),
        Err(StoreError::Rejected) => Err(DiscoveryError::ResourceInUse(format!(
            "The namespace {} has services: delete them first.",
            n.id
        ))
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// `tags` as a map, merged over `current`, within Cloud Map's limits.
pub(super) fn tag_map(tags: Vec<wire::Tag>, current: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = current.clone();
    for t in tags {
        if t.key.is_empty() || t.key.len() > 128 || t.value.len() > 256 {
            return Err(invalid(format!("Tag key '{}' must be 1 to 128 characters and its value at most 256.", t.key)));
        }
        if t.key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
            return Err(invalid(format!("Tag key '{}' uses the reserved prefix 'aws:'.", t.key)));
        }
        out.insert(t.key, t.value);
    }
    if out.len() > MAX_TAGS {
        return Err(DiscoveryError::TooManyTags(format!("A resource can have at most {MAX_TAGS} tags.")).into());
    }
    Ok(out)
}

/// The namespace or service an ARN names.
enum Tagged {
    Namespace(Versioned<Namespace>),
    Service(Versioned<model::DiscoveryService>),
}

async fn tagged(api: &Api, resource_arn: &str) -> Result<Tagged, ApiError> {
    let not_found = || ApiError::from(DiscoveryError::ResourceNotFound(format!("The resource {resource_arn} does not exist.")));
    let prefix = arn(api, "", "");
    let Some(rest) = resource_arn.strip_prefix(prefix.trim_end_matches('/')) else { return Err(not_found()) };
    if let Some(id) = rest.strip_prefix("namespace/") {
        return api.store.get_namespace(id).await?.map(Tagged::Namespace).ok_or_else(not_found);
    }
    if let Some(id) = rest.strip_prefix("service/") {
        return api.store.get_discovery_service(id).await?.map(Tagged::Service).ok_or_else(not_found);
    }
    Err(not_found())
}

/// Changes a resource's tags with `change`, retrying if it was written
/// meanwhile.
async fn retag(
    api: &Api,
    resource_arn: &str,
    change: impl Fn(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError>,
) -> Result<(), ApiError> {
    loop {
        let written = match tagged(api, resource_arn).await? {
            Tagged::Namespace(mut n) => {
                n.value.tags = change(&n.value.tags)?;
                api.store.update_namespace(&n.value, n.version).await.map(drop)
            }
            Tagged::Service(mut s) => {
                s.value.tags = change(&s.value.tags)?;
                api.store.update_discovery_service(&s.value, s.version, None).await.map(drop)
            }
        };
        match written {
            Err(StoreError::Conflict) => continue,
            other => return Ok(other?),
        }
    }
}

pub(super) async fn tag(api: &Api, r: wire::TagResourceRequest) -> Result<wire::TagResourceResponse, ApiError> {
    retag(api, &r.resource_arn, |current| tag_map(r.tags.clone(), current)).await?;
    Ok(wire::TagResourceResponse {})
}

pub(super) async fn untag(api: &Api, r: wire::UntagResourceRequest) -> Result<wire::UntagResourceResponse, ApiError> {
    retag(api, &r.resource_arn, |current| {
        Ok(current.iter().filter(|(k, _)| !r.tag_keys.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect())
    })
    .await?;
    Ok(wire::UntagResourceResponse {})
}

pub(super) async fn list_tags(api: &Api, r: wire::ListTagsForResourceRequest) -> Result<wire::ListTagsForResourceResponse, ApiError> {
    let tags = match tagged(api, &r.resource_arn).await? {
        Tagged::Namespace(n) => n.value.tags,
        Tagged::Service(s) => s.value.tags,
    };
    let tags = tags.into_iter().map(|(key, value)| wire::Tag { key, value }).collect();
    Ok(wire::ListTagsForResourceResponse { tags: Some(tags) })
}

