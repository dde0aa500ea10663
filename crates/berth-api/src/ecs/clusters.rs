//! CreateCluster, DescribeClusters, ListClusters, UpdateCluster,
//! UpdateClusterSettings, DeleteCluster.

use berth_model::{arn, capacity, cluster, tags};
use berth_store::{Page, StoreError, Versioned};
use berth_wire::ecs::{
    CapacityProviderStrategyItem, Cluster, ClusterField, PutClusterCapacityProvidersRequest,
    PutClusterCapacityProvidersResponse, CreateClusterRequest, CreateClusterResponse, DeleteClusterRequest, DeleteClusterResponse,
    DescribeClustersRequest, DescribeClustersResponse, Failure, KeyValuePair, ListClustersRequest, ListClustersResponse,
    UpdateClusterRequest, UpdateClusterResponse, UpdateClusterSettingsRequest, UpdateClusterSettingsResponse,
};

use super::{Call, with_retry};
use crate::{ApiError, paging};

/// DescribeClusters takes at most this many clusters per call.
const MAX_DESCRIBE: usize = 100;

pub async fn create(call: &Call<'_>, req: CreateClusterRequest) -> Result<CreateClusterResponse, ApiError> {
    let name = req.cluster_name.clone().unwrap_or_else(|| cluster::DEFAULT_CLUSTER.to_owned());
    cluster::validate_name(&name)?;
    let settings = req.settings.clone().unwrap_or_default();
    cluster::validate_settings(&settings)?;
    let new_tags = req.tags.clone().unwrap_or_default();
    tags::validate(&new_tags)?;
    let mut fresh = cluster::new_cluster(call.account(), &name, settings, new_tags);
    // Fargate's two providers are on every cluster unless the request
    // names the ones it wants.
    if let Some(providers) = req.capacity_providers.clone() {
        fresh.capacity_providers = Some(providers);
    }
    let default = req.default_capacity_provider_strategy.clone().unwrap_or_default();
    check_providers(fresh.capacity_providers.as_deref().unwrap_or_default(), &default)?;
    fresh.configuration = req.configuration;
    fresh.default_capacity_provider_strategy = Some(default);
    let stored = with_retry(|| async {
        match call.store().get_cluster(&name).await? {
            // ECS returns an existing active cluster unchanged.
            Some(existing) if existing.value.status.as_deref() == Some(cluster::STATUS_ACTIVE) => Ok(existing),
            // A deleted (INACTIVE) cluster of that name comes back to life.
            Some(existing) => Ok(call.store().update_cluster(&fresh, existing.version).await?),
            None => Ok(call.store().insert_cluster(&fresh).await?),
        }
    })
    .await?;
    Ok(CreateClusterResponse { cluster: Some(with_counts(call, stored.value, &all_fields()).await?) })
}

pub async fn describe(call: &Call<'_>, req: DescribeClustersRequest) -> Result<DescribeClustersResponse, ApiError> {
    let include = req.include.unwrap_or_default();
    let names = req.clusters.unwrap_or_default();
    if names.len() > MAX_DESCRIBE {
        return Err(ApiError::invalid_parameter(format!(
            "At most {MAX_DESCRIBE} clusters can be described in one call; {} were given.",
            names.len()
        )));
    }
    let mut clusters = Vec::new();
    let mut failures = Vec::new();
    if names.is_empty() {
        // No clusters named: the default cluster, created on first use.
        let default = ensure_default(call).await?;
        clusters.push(with_counts(call, default.value, &include).await?);
    }
    for param in &names {
        let name = arn::cluster_name(call.account(), Some(param))?;
        match call.store().get_cluster(&name).await? {
            Some(c) => clusters.push(with_counts(call, c.value, &include).await?),
            None => failures.push(Failure {
                arn: Some(call.account().cluster_arn(&name)),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    Ok(DescribeClustersResponse { clusters: Some(clusters), failures: Some(failures) })
}

pub async fn list(call: &Call<'_>, req: ListClustersRequest) -> Result<ListClustersResponse, ApiError> {
    let limit = paging::limit(req.max_results)?;
    let after = paging::decode::<String>(req.next_token.as_deref())?;
    let rows = call
        .store()
        .list_clusters(Some(cluster::STATUS_ACTIVE), Page { after, limit: limit + 1 })
        .await?;
    let (rows, next_token) = paging::finish(rows, limit, |c| c.value.cluster_name.clone().unwrap_or_default());
    Ok(ListClustersResponse {
        cluster_arns: Some(rows.into_iter().filter_map(|c| c.value.cluster_arn).collect()),
        next_token,
    })
}

pub async fn update(call: &Call<'_>, req: UpdateClusterRequest) -> Result<UpdateClusterResponse, ApiError> {
    let settings = req.settings.clone().unwrap_or_default();
    cluster::validate_settings(&settings)?;
    let name = arn::cluster_name(call.account(), Some(&req.cluster))?;
    let updated = with_retry(|| async {
        let current = active(call, &name).await?;
        let mut c = current.value;
        let mut merged = c.settings.take().unwrap_or_default();
        cluster::merge_settings(&mut merged, &settings);
        c.settings = Some(merged);
        if let Some(conf) = &req.configuration {
            c.configuration = Some(conf.clone());
        }
        Ok(call.store().update_cluster(&c, current.version).await?)
    })
    .await?;
    Ok(UpdateClusterResponse { cluster: Some(with_counts(call, updated.value, &all_fields()).await?) })
}

/// PutClusterCapacityProviders: the cluster's providers and its default
/// strategy, replaced together.
pub async fn put_capacity_providers(
    call: &Call<'_>,
    req: PutClusterCapacityProvidersRequest,
) -> Result<PutClusterCapacityProvidersResponse, ApiError> {
    check_providers(&req.capacity_providers, &req.default_capacity_provider_strategy)?;
    let name = arn::cluster_name(call.account(), Some(&req.cluster))?;
    let updated = with_retry(|| async {
        let current = active(call, &name).await?;
        let mut c = current.value;
        c.capacity_providers = Some(req.capacity_providers.clone());
        c.default_capacity_provider_strategy = Some(req.default_capacity_provider_strategy.clone());
        Ok(call.store().update_cluster(&c, current.version).await?)
    })
    .await?;
    Ok(PutClusterCapacityProvidersResponse { cluster: Some(with_counts(call, updated.value, &all_fields()).await?) })
}

/// A cluster's providers and default strategy, as ECS checks them.
fn check_providers(providers: &[String], default: &[CapacityProviderStrategyItem]) -> Result<(), ApiError> {
    super::tasks::check_capacity(None, default)?;
    capacity::validate_cluster_providers(providers, &super::convert::strategy_from_wire(default))?;
    Ok(())
}

pub async fn update_settings(
    call: &Call<'_>,
    req: UpdateClusterSettingsRequest,
) -> Result<UpdateClusterSettingsResponse, ApiError> {
    let resp = update(
        call,
        UpdateClusterRequest { cluster: req.cluster, settings: Some(req.settings), ..UpdateClusterRequest::default() },
    )
    .await?;
    Ok(UpdateClusterSettingsResponse { cluster: resp.cluster })
}

pub async fn delete(call: &Call<'_>, req: DeleteClusterRequest) -> Result<DeleteClusterResponse, ApiError> {
    let name = arn::cluster_name(call.account(), Some(&req.cluster))?;
    let deleted = with_retry(|| async {
        let current = active(call, &name).await?;
        let usage = call.store().cluster_usage(&call.account().cluster_arn(&name)).await?;
        if usage.active_services > 0 {
            return Err(ApiError::ecs(
                "ClusterContainsServicesException",
                "The Cluster cannot be deleted while Services are active.",
            ));
        }
        if usage.live_tasks > 0 {
            return Err(ApiError::ecs(
                "ClusterContainsTasksException",
                "The Cluster cannot be deleted while Tasks are active.",
            ));
        }
        let mut c = current.value;
        c.status = Some(cluster::STATUS_INACTIVE.to_owned());
        Ok(call.store().update_cluster(&c, current.version).await?)
    })
    .await?;
    Ok(DeleteClusterResponse { cluster: Some(with_counts(call, deleted.value, &all_fields()).await?) })
}

/// The ACTIVE cluster of that name, or ClusterNotFoundException.
pub(super) async fn active(call: &Call<'_>, name: &str) -> Result<Versioned<Cluster>, ApiError> {
    match call.store().get_cluster(name).await? {
        Some(c) if c.value.status.as_deref() == Some(cluster::STATUS_ACTIVE) => Ok(c),
        _ => Err(ApiError::cluster_not_found()),
    }
}

/// The default cluster, created the first time something uses it.
pub(super) async fn ensure_default(call: &Call<'_>) -> Result<Versioned<Cluster>, ApiError> {
    let name = cluster::DEFAULT_CLUSTER;
    if let Some(c) = call.store().get_cluster(name).await? {
        return Ok(c);
    }
    let fresh = cluster::new_cluster(call.account(), name, vec![], vec![]);
    match call.store().insert_cluster(&fresh).await {
        Ok(c) => Ok(c),
        // Someone else created it meanwhile.
        Err(StoreError::Conflict) => call.store().get_cluster(name).await?.ok_or_else(ApiError::cluster_not_found),
        Err(e) => Err(e.into()),
    }
}

fn all_fields() -> Vec<ClusterField> {
    vec![ClusterField::Settings, ClusterField::Tags, ClusterField::Configurations]
}

/// Fills the live counts and drops what `include` does not ask for, as
/// DescribeClusters does.
async fn with_counts(call: &Call<'_>, mut c: Cluster, include: &[ClusterField]) -> Result<Cluster, ApiError> {
    let usage = call.store().cluster_usage(c.cluster_arn.as_deref().unwrap_or("")).await?;
    c.running_tasks_count = Some(usage.running_tasks as i32);
    c.pending_tasks_count = Some(usage.pending_tasks as i32);
    c.active_services_count = Some(usage.active_services as i32);
    c.registered_container_instances_count = Some(0);
    let wants = |f: ClusterField| include.contains(&f);
    if wants(ClusterField::Statistics) {
        let stat = |name: &str, v: i64| KeyValuePair { name: Some(name.into()), value: Some(v.to_string()) };
        c.statistics = Some(vec![
            stat("runningEC2TasksCount", 0),
            stat("runningFargateTasksCount", usage.running_tasks),
            stat("pendingEC2TasksCount", 0),
            stat("pendingFargateTasksCount", usage.pending_tasks),
            stat("activeEC2ServiceCount", 0),
            stat("activeFargateServiceCount", usage.active_services),
            stat("drainingEC2ServiceCount", 0),
            stat("drainingFargateServiceCount", 0),
        ]);
    } else {
        c.statistics = Some(vec![]);
    }
    if !wants(ClusterField::Tags) {
        c.tags = None;
    }
    if !wants(ClusterField::Settings) {
        c.settings = None;
    }
    if !wants(ClusterField::Configurations) {
        c.configuration = None;
    }
    if !wants(ClusterField::Attachments) {
        c.attachments = None;
    }
    Ok(c)
}
