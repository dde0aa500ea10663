//! ECS handlers: typed request in, typed response out. Nothing here sees
//! HTTP; the edge has already authenticated and parsed the call.

mod capacity;
mod clusters;
mod tagging;
mod task_definitions;
pub(crate) mod convert;
mod services;
pub(crate) mod tasks;

use std::future::Future;

use berth_store::StoreError;
use berth_wire::ecs::Action;
use serde::Serialize;
use serde_json::Value;

use crate::{Api, ApiError};

/// One authenticated call: the API state and facts about the request.
pub(crate) struct Call<'a> {
    pub api: &'a Api,
    /// Size of the raw request body (RegisterTaskDefinition's 64 KiB rule).
    pub body_len: usize,
}

impl Call<'_> {
    fn account(&self) -> &berth_model::Account {
        self.api.account()
    }

    fn store(&self) -> &dyn berth_store::Store {
        self.api.store.as_ref()
    }

    /// The IAM principal ECS records as `registeredBy`.
    fn principal_arn(&self) -> String {
        format!("arn:aws:iam::{}:root", self.account().account_id)
    }
}

pub(crate) async fn dispatch(call: &Call<'_>, action: Action) -> Result<Value, ApiError> {
    match action {
        Action::CreateCluster(r) => json(clusters::create(call, r).await?),
        Action::DescribeClusters(r) => json(clusters::describe(call, r).await?),
        Action::ListClusters(r) => json(clusters::list(call, r).await?),
        Action::UpdateCluster(r) => json(clusters::update(call, r).await?),
        Action::UpdateClusterSettings(r) => json(clusters::update_settings(call, r).await?),
        Action::DeleteCluster(r) => json(clusters::delete(call, r).await?),
        Action::RegisterTaskDefinition(r) => json(task_definitions::register(call, r).await?),
        Action::DescribeTaskDefinition(r) => json(task_definitions::describe(call, r).await?),
        Action::ListTaskDefinitions(r) => json(task_definitions::list(call, r).await?),
        Action::ListTaskDefinitionFamilies(r) => json(task_definitions::list_families(call, r).await?),
        Action::DeregisterTaskDefinition(r) => json(task_definitions::deregister(call, r).await?),
        Action::DeleteTaskDefinitions(r) => json(task_definitions::delete(call, r).await?),
        Action::RunTask(r) => json(tasks::run(call, r).await?),
        Action::StartTask(r) => json(tasks::start(call, r).await?),
        Action::StopTask(r) => json(tasks::stop(call, r).await?),
        Action::DescribeTasks(r) => json(tasks::describe(call, r).await?),
        Action::ListTasks(r) => json(tasks::list(call, r).await?),
        Action::DescribeCapacityProviders(r) => json(capacity::describe(call, r).await?),
        Action::PutClusterCapacityProviders(r) => json(clusters::put_capacity_providers(call, r).await?),
        Action::CreateService(r) => json(services::create(call, r).await?),
        Action::UpdateService(r) => json(services::update(call, r).await?),
        Action::DeleteService(r) => json(services::delete(call, r).await?),
        Action::DescribeServices(r) => json(services::describe(call, r).await?),
        Action::ListServices(r) => json(services::list(call, r).await?),
        Action::ListServicesByNamespace(r) => json(services::list_by_namespace(call, r).await?),
        Action::ListServiceDeployments(r) => json(services::list_deployments(call, r).await?),
        Action::DescribeServiceDeployments(r) => json(services::describe_deployments(call, r).await?),
        Action::DescribeServiceRevisions(r) => json(services::describe_revisions(call, r).await?),
        Action::StopServiceDeployment(r) => json(services::stop_deployment(call, r).await?),
        Action::TagResource(r) => json(tagging::tag(call, r).await?),
        Action::UntagResource(r) => json(tagging::untag(call, r).await?),
        Action::ListTagsForResource(r) => json(tagging::list(call, r).await?),
        other => Err(ApiError::UnknownOperation(format!(
            "The operation {} is not supported by Berth yet.",
            other.name()
        ))),
    }
}

fn json<T: Serialize>(v: T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::Internal(StoreError::Corrupt(e)))
}

/// Runs a read-modify-write until it applies without a version conflict.
/// Each attempt re-reads, so the change is applied to the latest record.
pub(crate) async fn with_retry<T, F, Fut>(mut attempt: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    const ATTEMPTS: usize = 20;
    for _ in 1..ATTEMPTS {
        match attempt().await {
            Err(ApiError::Internal(StoreError::Conflict)) => tokio::task::yield_now().await,
            other => return other,
        }
    }
    attempt().await
}

/// Seconds since the epoch, as AWS JSON timestamps are written.
pub(crate) fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64 / 1000.0)
        .unwrap_or(0.0)
}
