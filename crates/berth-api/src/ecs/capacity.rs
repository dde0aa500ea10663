//! DescribeCapacityProviders: Fargate's two, which every account has.

use berth_wire::ecs::{
    CapacityProvider, CapacityProviderStatus, CapacityProviderType, DescribeCapacityProvidersRequest,
    DescribeCapacityProvidersResponse, Failure,
};

use super::Call;
use crate::ApiError;

/// The capacity providers Berth offers, as ECS names them.
const PROVIDERS: [(&str, CapacityProviderType); 2] =
    [("FARGATE", CapacityProviderType::Fargate), ("FARGATE_SPOT", CapacityProviderType::FargateSpot)];

pub async fn describe(
    call: &Call<'_>,
    req: DescribeCapacityProvidersRequest,
) -> Result<DescribeCapacityProvidersResponse, ApiError> {
    if let Some(n) = req.max_results.filter(|n| !(1..=10).contains(n)) {
        return Err(ApiError::invalid_parameter(format!("maxResults must be between 1 and 10; {n} was given.")));
    }
    let prefix = format!("arn:aws:ecs:{}:{}:capacity-provider/", call.account().region, call.account().account_id);
    let provider = |name: &str, kind: CapacityProviderType| CapacityProvider {
        capacity_provider_arn: Some(format!("{prefix}{name}")),
        name: Some(name.to_owned()),
        status: Some(CapacityProviderStatus::Active),
        tags: Some(vec![]),
        r#type: Some(kind),
        ..Default::default()
    };
    let asked = req.capacity_providers.unwrap_or_default();
    if asked.is_empty() {
        let all = PROVIDERS.iter().map(|(n, k)| provider(n, *k)).collect();
        return Ok(DescribeCapacityProvidersResponse { capacity_providers: Some(all), failures: Some(vec![]), next_token: None });
    }
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for a in asked {
        let name = a.strip_prefix(&prefix).unwrap_or(&a);
        match PROVIDERS.iter().find(|(n, _)| *n == name) {
            Some((n, k)) => found.push(provider(n, *k)),
            None => failures.push(Failure { arn: Some(a.clone()), reason: Some("MISSING".into()), detail: None }),
        }
    }
    Ok(DescribeCapacityProvidersResponse { capacity_providers: Some(found), failures: Some(failures), next_token: None })
}
