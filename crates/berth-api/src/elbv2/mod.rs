//! Elastic Load Balancing v2 (`elasticloadbalancing`, AWS Query): the
//! control plane of Berth's load balancers over the store's records
//! (`berth_model::elb`). Typed requests in, typed responses out; nothing
//! here sees HTTP or XML. Traffic is the data plane's (it reads these
//! records and writes the targets' health back).
//!
//! - `load_balancers.rs`: Create/Describe/DeleteLoadBalancer, their
//!   attributes, DescribeCapacityReservation; a load balancer's node takes
//!   one address in each of its subnets (held under the load balancer's ARN)
//! - `target_groups.rs`: target groups, their attributes, targets and health
//! - `listeners.rs`: listeners, their attributes and actions
//! - `rules.rs`: listener rules and their conditions
//! - `tags.rs`: AddTags, RemoveTags, DescribeTags
//! - this file: dispatch, account limits, SSL policies, paging

mod listeners;
mod load_balancers;
mod rules;
mod tags;
pub(crate) mod target_groups;

use std::collections::BTreeMap;

use berth_model::elb::{self, ElbError};
use berth_wire::elbv2::{
    Action, Cipher, DescribeAccountLimitsInput, DescribeAccountLimitsOutput, DescribeSSLPoliciesInput,
    DescribeSSLPoliciesOutput, Limit, LoadBalancerTypeEnum, Output, SslPolicy,
};

use berth_store::StoreError;

use crate::{Api, ApiError};

/// ELBv2's quotas Berth enforces (DescribeAccountLimits shows them).
pub(crate) const MAX_LOAD_BALANCERS: usize = 50;
pub(crate) const MAX_TARGET_GROUPS: usize = 3000;
pub(crate) const MAX_LISTENERS: usize = 50;
pub(crate) const MAX_RULES: usize = 100;
pub(crate) const MAX_CERTIFICATES: usize = 25;
pub(crate) const MAX_TARGETS: usize = 1000;

impl From<ElbError> for ApiError {
    fn from(e: ElbError) -> Self {
        ApiError::service(e.code, e.message)
    }
}

pub(crate) fn err(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::service(code, message)
}

pub(crate) fn validation(message: impl Into<String>) -> ApiError {
    err("ValidationError", message)
}

pub(crate) async fn dispatch(api: &Api, action: Action) -> Result<Output, ApiError> {
    Ok(match action {
        Action::CreateLoadBalancer(r) => Output::CreateLoadBalancer(load_balancers::create(api, r).await?),
        Action::DescribeLoadBalancers(r) => Output::DescribeLoadBalancers(load_balancers::describe(api, r).await?),
        Action::DeleteLoadBalancer(r) => Output::DeleteLoadBalancer(load_balancers::delete(api, r).await?),
        Action::DescribeLoadBalancerAttributes(r) => {
            Output::DescribeLoadBalancerAttributes(load_balancers::describe_attributes(api, r).await?)
        }
        Action::ModifyLoadBalancerAttributes(r) => {
            Output::ModifyLoadBalancerAttributes(load_balancers::modify_attributes(api, r).await?)
        }
        Action::DescribeCapacityReservation(r) => {
            Output::DescribeCapacityReservation(load_balancers::capacity_reservation(api, r).await?)
        }
        Action::CreateTargetGroup(r) => Output::CreateTargetGroup(target_groups::create(api, r).await?),
        Action::DescribeTargetGroups(r) => Output::DescribeTargetGroups(target_groups::describe(api, r).await?),
        Action::ModifyTargetGroup(r) => Output::ModifyTargetGroup(target_groups::modify(api, r).await?),
        Action::DeleteTargetGroup(r) => Output::DeleteTargetGroup(target_groups::delete(api, r).await?),
        Action::DescribeTargetGroupAttributes(r) => {
            Output::DescribeTargetGroupAttributes(target_groups::describe_attributes(api, r).await?)
        }
        Action::ModifyTargetGroupAttributes(r) => {
            Output::ModifyTargetGroupAttributes(target_groups::modify_attributes(api, r).await?)
        }
        Action::RegisterTargets(r) => Output::RegisterTargets(target_groups::register(api, r).await?),
        Action::DeregisterTargets(r) => Output::DeregisterTargets(target_groups::deregister(api, r).await?),
        Action::DescribeTargetHealth(r) => Output::DescribeTargetHealth(target_groups::health(api, r).await?),
        Action::CreateListener(r) => Output::CreateListener(listeners::create(api, r).await?),
        Action::DescribeListeners(r) => Output::DescribeListeners(listeners::describe(api, r).await?),
        Action::ModifyListener(r) => Output::ModifyListener(listeners::modify(api, r).await?),
        Action::DeleteListener(r) => Output::DeleteListener(listeners::delete(api, r).await?),
        Action::DescribeListenerAttributes(r) => Output::DescribeListenerAttributes(listeners::describe_attributes(api, r).await?),
        Action::ModifyListenerAttributes(r) => Output::ModifyListenerAttributes(listeners::modify_attributes(api, r).await?),
        Action::CreateRule(r) => Output::CreateRule(rules::create(api, r).await?),
        Action::DescribeRules(r) => Output::DescribeRules(rules::describe(api, r).await?),
        Action::ModifyRule(r) => Output::ModifyRule(rules::modify(api, r).await?),
        Action::DeleteRule(r) => Output::DeleteRule(rules::delete(api, r).await?),
        Action::SetRulePriorities(r) => Output::SetRulePriorities(rules::set_priorities(api, r).await?),
        Action::AddTags(r) => Output::AddTags(tags::add(api, r).await?),
        Action::RemoveTags(r) => Output::RemoveTags(tags::remove(api, r).await?),
        Action::DescribeTags(r) => Output::DescribeTags(tags::describe(api, r).await?),
        Action::DescribeAccountLimits(r) => Output::DescribeAccountLimits(account_limits(r)?),
        Action::DescribeSSLPolicies(r) => Output::DescribeSSLPolicies(ssl_policies(r)?),
    })
}

fn account_limits(r: DescribeAccountLimitsInput) -> Result<DescribeAccountLimitsOutput, ApiError> {
    let limits = [
        ("application-load-balancers", MAX_LOAD_BALANCERS),
        ("network-load-balancers", MAX_LOAD_BALANCERS),
        ("target-groups", MAX_TARGET_GROUPS),
        ("listeners-per-application-load-balancer", MAX_LISTENERS),
        ("listeners-per-network-load-balancer", MAX_LISTENERS),
        ("rules-per-application-load-balancer", MAX_RULES),
        ("certificates-per-application-load-balancer", MAX_CERTIFICATES),
        ("targets-per-target-group", MAX_TARGETS),
    ];
    let all: Vec<Limit> =
        limits.iter().map(|(n, m)| Limit { name: Some((*n).to_owned()), max: Some(m.to_string()) }).collect();
    let (limits, next_marker) = page(all, |l| l.name.clone().unwrap_or_default(), r.marker.as_deref(), r.page_size)?;
    Ok(DescribeAccountLimitsOutput { limits: Some(limits), next_marker })
}

fn ssl_policies(r: DescribeSSLPoliciesInput) -> Result<DescribeSSLPoliciesOutput, ApiError> {
    if let Some(missing) = r.names.iter().flatten().find(|n| !elb::SSL_POLICIES.contains(&n.as_str())) {
        return Err(err("SSLPolicyNotFound", format!("SSL policy '{missing}' not found")));
    }
    let types = match r.load_balancer_type {
        Some(LoadBalancerTypeEnum::Gateway) => return Ok(DescribeSSLPoliciesOutput { ssl_policies: Some(vec![]), next_marker: None }),
        _ => vec!["application".to_owned(), "network".to_owned()],
    };
    let all: Vec<SslPolicy> = elb::SSL_POLICIES
        .iter()
        .filter(|n| r.names.as_ref().is_none_or(|names| names.iter().any(|x| x == *n)))
        .map(|n| SslPolicy {
            name: Some((*n).to_owned()),
            ssl_protocols: Some(if n.contains("TLS13-1-3") { vec!["TLSv1.3".into()] } else { vec!["TLSv1.2".into(), "TLSv1.3".into()] }),
            ciphers: Some(vec![Cipher { name: Some("ECDHE-ECDSA-AES128-GCM-SHA256".into()), priority: Some(1) }]),
            supported_load_balancer_types: Some(types.clone()),
        })
        .collect();
    let (ssl_policies, next_marker) = page(all, |p| p.name.clone().unwrap_or_default(), r.marker.as_deref(), r.page_size)?;
    Ok(DescribeSSLPoliciesOutput { ssl_policies: Some(ssl_policies), next_marker })
}

/// One page of `items` (in their order) after `marker`, at most
/// `page_size` (1..=400, default 400) of them, and the marker of the rest.
/// A marker is the last item's key, opaque to clients.
pub(crate) fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    marker: Option<&str>,
    page_size: Option<i32>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = match page_size {
        None => 400,
        Some(n) if (1..=400).contains(&n) => n as usize,
        Some(n) => return Err(validation(format!("Page size '{n}' must be from 1 to 400"))),
    };
    let start = match marker.filter(|m| !m.is_empty()) {
        None => 0,
        Some(m) => {
            let after: String = crate::paging::decode(Some(m))
                .map_err(|_| validation("The marker is not valid: it was not returned by a previous call"))?
                .unwrap_or_default();
            items.iter().position(|i| key(i) > after).unwrap_or(items.len())
        }
    };
    let rest: Vec<T> = items.into_iter().skip(start).collect();
    let more = rest.len() > size;
    let page: Vec<T> = rest.into_iter().take(size).collect();
    let next = if more { page.last().map(|i| crate::paging::encode(&key(i))) } else { None };
    Ok((page, next))
}

/// Attribute pairs from the wire (`Key`, `Value`).
pub(crate) fn pairs<'a>(items: impl IntoIterator<Item = (&'a Option<String>, &'a Option<String>)>) -> Result<Vec<(String, String)>, ApiError> {
    items
        .into_iter()
        .map(|(k, v)| match k {
            Some(k) => Ok((k.clone(), v.clone().unwrap_or_default())),
            None => Err(validation("An attribute must have a key")),
        })
        .collect()
}

/// Tags of a create call: ELBv2's limits (50, keys 1..=128, values
/// 0..=256, no `aws:` prefix, no key twice).
pub(crate) fn tags_from(tags: Option<Vec<berth_wire::elbv2::Tag>>) -> Result<BTreeMap<String, String>, ApiError> {
    tags::merge(&BTreeMap::new(), &tags.unwrap_or_default())
}

/// A new 16-hex-digit resource id.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

pub(crate) fn now() -> f64 {
    crate::berth::network::now()
}

/// Runs a read-change-write until it meets no concurrent write (a
/// conflict: re-read and try again), at most eight times.
pub(crate) async fn retry<T, F>(mut attempt: impl FnMut() -> F) -> Result<T, ApiError>
where
    F: std::future::Future<Output = Result<Result<T, StoreError>, ApiError>>,
{
    for _ in 0..8 {
        match attempt().await? {
            Ok(v) => return Ok(v),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Internal(StoreError::Conflict))
}

/// The model's protocol from the wire's: HTTP, HTTPS and TCP.
pub(crate) fn protocol(p: berth_wire::elbv2::ProtocolEnum) -> Result<elb::Protocol, ApiError> {
    elb::Protocol::parse(p.as_str()).ok_or_else(|| {
        err("UnsupportedProtocol", format!("Protocol '{}' is not supported: Berth's load balancers speak HTTP, HTTPS and TCP", p.as_str()))
    })
}

pub(crate) fn wire_protocol(p: elb::Protocol) -> berth_wire::elbv2::ProtocolEnum {
    p.as_str().parse().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_markers_to_the_end() {
        let items: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
        let (a, m) = page(items.clone(), Clone::clone, None, Some(2)).unwrap();
        assert_eq!(a, ["k0", "k1"]);
        let (b, m) = page(items.clone(), Clone::clone, m.as_deref(), Some(2)).unwrap();
        assert_eq!(b, ["k2", "k3"]);
        let (c, m) = page(items.clone(), Clone::clone, m.as_deref(), Some(2)).unwrap();
        assert_eq!((c, m), (vec!["k4".to_owned()], None));
        assert!(page(items.clone(), Clone::clone, None, Some(401)).is_err());
        assert!(page(items, Clone::clone, Some("nonsense!"), None).is_err());
    }
}
