//! Cloud Map (`servicediscovery`, AWS JSON 1.1, `X-Amz-Target:
//! Route53AutoNaming_v20170314.*`): namespaces, services, instances,
//! operations and tags, over the store's [`berth_store::DiscoveryStore`].
//! DiscoverInstances, which AWS serves on a `data-` host, is served here
//! at the same endpoint as the rest. Every operation completes before its
//! request returns (see [`berth_model::discovery`]); errors carry Cloud
//! Map's exception names (`NamespaceNotFound`, `ResourceInUse`, ...).

mod filters;
mod instances;
mod namespaces;
mod services;

use std::collections::BTreeMap;

use berth_model::discovery::{DiscoveryError, Operation, OperationType};
use berth_wire::servicediscovery::Action;
use serde::Serialize;
use serde_json::Value;

use crate::{Api, ApiError};

/// The SigV4 signing name (the model's endpoint prefix).
pub(crate) const SIGNING_NAME: &str = "servicediscovery";

impl From<DiscoveryError> for ApiError {
    fn from(e: DiscoveryError) -> Self {
        ApiError::service(e.aws_type(), e.to_string())
    }
}

pub(crate) async fn dispatch(api: &Api, action: Action) -> Result<Value, ApiError> {
    match action {
        Action::CreatePrivateDnsNamespace(r) => json(namespaces::create_private_dns(api, r).await?),
        Action::CreateHttpNamespace(r) => json(namespaces::create_http(api, r).await?),
        Action::CreatePublicDnsNamespace(_) => Err(invalid(
            "Berth does not serve public DNS namespaces (they need a Route 53 public hosted zone); \
             use CreatePrivateDnsNamespace or CreateHttpNamespace.",
        )),
        Action::GetNamespace(r) => json(namespaces::get(api, r).await?),
        Action::ListNamespaces(r) => json(namespaces::list(api, r).await?),
        Action::DeleteNamespace(r) => json(namespaces::delete(api, r).await?),
        Action::CreateService(r) => json(services::create(api, r).await?),
        Action::GetService(r) => json(services::get(api, r).await?),
        Action::ListServices(r) => json(services::list(api, r).await?),
        Action::UpdateService(r) => json(services::update(api, r).await?),
        Action::DeleteService(r) => json(services::delete(api, r).await?),
        Action::RegisterInstance(r) => json(instances::register(api, r).await?),
        Action::DeregisterInstance(r) => json(instances::deregister(api, r).await?),
        Action::GetInstance(r) => json(instances::get(api, r).await?),
        Action::ListInstances(r) => json(instances::list(api, r).await?),
        Action::GetInstancesHealthStatus(r) => json(instances::health_status(api, r).await?),
        Action::UpdateInstanceCustomHealthStatus(r) => json(instances::update_health(api, r).await?),
        Action::DiscoverInstances(r) => json(instances::discover(api, r).await?),
        Action::DiscoverInstancesRevision(r) => json(instances::discover_revision(api, r).await?),
        Action::GetOperation(r) => json(filters::get_operation(api, r).await?),
        Action::ListOperations(r) => json(filters::list_operations(api, r).await?),
        Action::TagResource(r) => json(namespaces::tag(api, r).await?),
        Action::UntagResource(r) => json(namespaces::untag(api, r).await?),
        Action::ListTagsForResource(r) => json(namespaces::list_tags(api, r).await?),
    }
}

fn json<T: Serialize>(value: T) -> Result<Value, ApiError> {
    Ok(serde_json::to_value(value).unwrap_or(Value::Object(Default::default())))
}

pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
    DiscoveryError::InvalidInput(message.into()).into()
}

/// A request that does not make the operation's input: a missing member
/// or a value outside an enumeration is Cloud Map's InvalidInput.
pub(crate) fn parse_error(e: ApiError) -> ApiError {
    match e {
        ApiError::Ecs { aws_type: "InvalidParameterException", message } => invalid(message),
        other => other,
    }
}

fn now() -> f64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e9
}

/// A fresh id: `prefix` and 16 lowercase letters and digits.
fn new_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{}", &hex[..16])
}

/// An operation id in Cloud Map's form (`32 characters-8 characters`).
fn new_operation_id() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("{a}-{}", &b[..8])
}

/// An operation Berth has carried out, on the given targets.
pub(crate) fn operation(kind: OperationType, targets: &[(&str, &str)]) -> Operation {
    let targets: BTreeMap<String, String> = targets.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Operation::succeeded(new_operation_id(), kind, now(), targets)
}

fn arn(api: &Api, kind: &str, id: &str) -> String {
    let a = api.account();
    format!("arn:aws:servicediscovery:{}:{}:{kind}/{id}", a.region, a.account_id)
}

/// The id a parameter names: the id itself or the resource's ARN.
fn id_of<'a>(param: &'a str, kind: &str) -> &'a str {
    param.rsplit_once(&format!(":{kind}/")).map_or(param, |(_, id)| id)
}

/// Cloud Map's page size: MaxResults 1..=100, default 100.
fn limit(max_results: Option<i32>, max: i32) -> Result<usize, ApiError> {
    match max_results {
        None => Ok(max as usize),
        Some(n) if (1..=max).contains(&n) => Ok(n as usize),
        Some(n) => Err(invalid(format!("MaxResults must be between 1 and {max}; {n} was given."))),
    }
}

/// One page of `items` (already in id order): those after the token's id,
/// at most `max`, and the token for the rest.
fn page<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> &str,
    next_token: Option<&str>,
    max_results: Option<i32>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let limit = limit(max_results, 100)?;
    let after: Option<String> = crate::paging::decode(next_token)
        .map_err(|_| invalid("The NextToken is not one a previous call returned."))?;
    let mut rest: Vec<T> = items.into_iter().filter(|i| after.as_deref().is_none_or(|a| id(i) > a)).collect();
    let token = (rest.len() > limit).then(|| {
        rest.truncate(limit);
        rest.last().map(|l| crate::paging::encode(&id(l)))
    });
    Ok((rest, token.flatten()))
}

fn to_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
