//! A service and its deployments as the domain keeps them. The service
//! scheduler (its own issue) reconciles them; the API shows them in ECS's
//! shapes. Stored as JSON with a format version, like tasks.

use serde::{Deserialize, Serialize};

use crate::arn::{ClusterArn, ServiceArn, TaskDefinitionArn};
use crate::task::Tag;

/// The format this code writes for services.
pub const FORMAT_VERSION: u32 = 1;

/// A service's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceStatus {
    #[default]
    Active,
    /// Deleted; its tasks are being stopped.
    Draining,
    /// Deleted and drained.
    Inactive,
}

impl ServiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Draining => "DRAINING",
            Self::Inactive => "INACTIVE",
        }
    }

    /// Still counted by its cluster (ECS's activeServicesCount).
    pub fn is_live(self) -> bool {
        matches!(self, Self::Active | Self::Draining)
    }
}

/// A deployment's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    /// The newest: what the service converges to.
    Primary,
    /// An older one still holding tasks.
    Active,
    /// Drained.
    Inactive,
}

/// A deployment's `rolloutState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RolloutState {
    InProgress,
    Completed,
    Failed,
}

/// The deployment circuit breaker of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
}

/// How a deployment may replace tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfiguration {
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
    #[serde(default)]
    pub circuit_breaker: Option<CircuitBreaker>,
}

impl Default for DeploymentConfiguration {
    /// ECS's defaults for a REPLICA service.
    fn default() -> Self {
        Self { minimum_healthy_percent: 100, maximum_percent: 200, circuit_breaker: None }
    }
}

/// One deployment of a service: a task definition and network
/// configuration rolled out to `desired_count` tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// `ecs-svc/` and a number.
    pub id: String,
    pub status: DeploymentStatus,
    pub task_definition: TaskDefinitionArn,
    pub desired_count: u32,
    pub pending_count: u32,
    pub running_count: u32,
    pub failed_tasks: u32,
    pub rollout_state: RolloutState,
    #[serde(default)]
    pub rollout_state_reason: Option<String>,
    pub created_at: f64,
    pub updated_at: f64,
}

/// A service event (newest first in `Service::events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEvent {
    pub id: String,
    pub created_at: f64,
    pub message: String,
}

/// A service: N copies of a task definition kept running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub arn: ServiceArn,
    pub status: ServiceStatus,
    pub desired_count: u32,
    pub task_definition: TaskDefinitionArn,
    #[serde(default)]
    pub network: Option<crate::network::TaskNetwork>,
    #[serde(default)]
    pub deployment_configuration: DeploymentConfiguration,
    #[serde(default)]
    pub deployments: Vec<Deployment>,
    #[serde(default)]
    pub events: Vec<ServiceEvent>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub health_check_grace_period_seconds: Option<u32>,
    pub created_at: f64,
}

impl Service {
    /// A new ACTIVE service of `desired_count` tasks, with ECS's default
    /// deployment configuration and no deployment yet.
    pub fn new(arn: ServiceArn, task_definition: TaskDefinitionArn, desired_count: u32, created_at: f64) -> Self {
        Self {
            arn,
            status: ServiceStatus::Active,
            desired_count,
            task_definition,
            network: None,
            deployment_configuration: DeploymentConfiguration::default(),
            deployments: Vec::new(),
            events: Vec::new(),
            tags: Vec::new(),
            health_check_grace_period_seconds: None,
            created_at,
        }
    }

    pub fn name(&self) -> &str {
        &self.arn.name
    }

    pub fn cluster_arn(&self) -> ClusterArn {
        self.arn.cluster_arn()
    }

    /// The task group of its tasks (`service:NAME`), as ECS sets it.
    pub fn task_group(&self) -> String {
        format!("service:{}", self.arn.name)
    }

    pub fn primary(&self) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.status == DeploymentStatus::Primary)
    }
}



