//! A service and its deployments as the domain keeps them. The service
//! controller (`berth_control::service`) reconciles them; the API shows
//! them in ECS's shapes. Stored as JSON with a format version, like tasks.
//!
//! A deployment is one revision of the service — a task definition, a
//! network configuration, how tasks are launched — rolled out to the
//! service's desired count. Each has a number: its id is `ecs-svc/N` and
//! its service revision's ARN ends in `/N`, the link deploy tools (the
//! Terraform provider) follow from DescribeServices to
//! ListServiceDeployments.

use serde::{Deserialize, Serialize};

use crate::arn::{Account, ClusterArn, ServiceArn, TaskDefinitionArn};
use crate::network::TaskNetwork;
use crate::task::Tag;

/// The format this code writes for services.
pub const FORMAT_VERSION: u32 = 1;

/// How many events a service keeps (ECS shows the newest 100).
pub const EVENTS_KEPT: usize = 100;

/// How many drained deployments a service remembers for
/// ListServiceDeployments and DescribeServiceRevisions.
pub const HISTORY_KEPT: usize = 20;

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

impl DeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "PRIMARY",
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
        }
    }
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

/// CloudWatch alarms a deployment watches: recorded and shown (the
/// metrics issue acts on them).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentAlarms {
    pub alarm_names: Vec<String>,
    pub enable: bool,
    pub rollback: bool,
}

/// How a deployment may replace tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfiguration {
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
    #[serde(default)]
    pub circuit_breaker: Option<CircuitBreaker>,
    #[serde(default)]
    pub alarms: Option<DeploymentAlarms>,
}

impl Default for DeploymentConfiguration {
    /// ECS's defaults for a REPLICA service.
    fn default() -> Self {
        Self { minimum_healthy_percent: 100, maximum_percent: 200, circuit_breaker: None, alarms: None }
    }
}

impl DeploymentConfiguration {
    /// The fewest healthy tasks a deployment keeps: minimumHealthyPercent
    /// of `desired`, rounded up.
    pub fn min_healthy(&self, desired: u32) -> u32 {
        (u64::from(desired) * u64::from(self.minimum_healthy_percent)).div_ceil(100) as u32
    }

    /// The most tasks a deployment runs at once: maximumPercent of
    /// `desired`, rounded down (but never below `desired`).
    pub fn max_running(&self, desired: u32) -> u32 {
        ((u64::from(desired) * u64::from(self.maximum_percent)) / 100).max(u64::from(desired)) as u32
    }

    pub fn breaker(&self) -> CircuitBreaker {
        self.circuit_breaker.unwrap_or_default()
    }
}

/// `propagateTags`: where a service's tasks take their tags from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PropagateTags {
    #[default]
    None,
    Service,
    TaskDefinition,
}

/// One item of a capacity provider strategy (FARGATE or FARGATE_SPOT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProviderItem {
    pub capacity_provider: String,
    pub weight: u32,
    pub base: u32,
}

/// How a service's tasks are launched: `launchType FARGATE`, or a
/// capacity provider strategy, on a platform version.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Launch {
    /// Given as `launchType` (shown back as FARGATE); otherwise the
    /// strategy (or the cluster default) decides.
    #[serde(default)]
    pub launch_type: bool,
    #[serde(default)]
    pub capacity_provider_strategy: Vec<CapacityProviderItem>,
    /// As asked (`LATEST` when not given).
    pub platform_version: String,
}

/// A load balancer target group a service registers its tasks with
/// (`containerName`'s `containerPort` at the task's address).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerRef {
    #[serde(default)]
    pub target_group_arn: Option<String>,
    #[serde(default)]
    pub load_balancer_name: Option<String>,
    #[serde(default)]
    pub container_name: Option<String>,
    #[serde(default)]
    pub container_port: Option<i32>,
}

/// A service registry (Cloud Map) entry: recorded now, acted on by the
/// discovery issue.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryRef {
    #[serde(default)]
    pub registry_arn: Option<String>,
    #[serde(default)]
    pub port: Option<i32>,
    #[serde(default)]
    pub container_name: Option<String>,
    #[serde(default)]
    pub container_port: Option<i32>,
}

/// A task's address and port in one of its service's target groups, as
/// the service controller registered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub task_id: String,
    pub target_group_arn: String,
    pub ip: std::net::Ipv4Addr,
    pub port: u16,
}

/// A task the scheduler is taking out of its target groups before it
/// stops it: deregistered, its connections draining; stopped (for
/// `reason`) once its targets are gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DrainingTask {
    pub task_id: String,
    pub reason: String,
    pub targets: Vec<Registration>,
}

/// The launch throttle of a deployment whose tasks fail to start: after
/// each task that stopped before reaching RUNNING, the next launch waits
/// longer (`berth_control::service` has the schedule).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttle {
    /// Tasks in a row that failed to start.
    pub failures: u32,
    /// No launch before this time (epoch seconds).
    pub not_before: f64,
}

/// Waiting for room on a node: set when a launch found no node with room.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityWait {
    /// Launch attempts in a row that found no room.
    pub attempts: u32,
    /// Try again at (epoch seconds).
    pub not_before: f64,
}

/// One deployment of a service: a revision rolled out to its tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// The number in `ecs-svc/N` and in the service revision's ARN.
    pub number: u64,
    pub status: DeploymentStatus,
    pub task_definition: TaskDefinitionArn,
    #[serde(default)]
    pub network: Option<TaskNetwork>,
    #[serde(default)]
    pub launch: Launch,
    pub desired_count: u32,
    #[serde(default)]
    pub pending_count: u32,
    #[serde(default)]
    pub running_count: u32,
    /// Tasks of this deployment that failed to start or failed their
    /// health checks: the circuit breaker's count.
    #[serde(default)]
    pub failed_tasks: u32,
    pub rollout_state: RolloutState,
    #[serde(default)]
    pub rollout_state_reason: Option<String>,
    pub created_at: f64,
    pub updated_at: f64,
    /// When it completed, failed or was replaced.
    #[serde(default)]
    pub finished_at: Option<f64>,
    /// Rolled back to by the circuit breaker (or StopServiceDeployment).
    #[serde(default)]
    pub rollback: bool,
    /// A task of this deployment ran (RUNNING past its start): the
    /// breaker's first stage is over, and only failed health checks
    /// count from then on.
    #[serde(default)]
    pub ran: bool,
    /// The deployment this one replaced.
    #[serde(default)]
    pub source: Option<u64>,
    #[serde(default)]
    pub throttle: Throttle,
    #[serde(default)]
    pub capacity_wait: Option<CapacityWait>,
    /// Ids of this deployment's tasks launched and not yet seen STOPPED:
    /// how a task's end is counted once, and a task whose record the
    /// controller has not seen yet is not launched twice.
    #[serde(default)]
    pub in_flight: Vec<String>,
}

impl Deployment {
    /// `ecs-svc/N`, the id ECS shows.
    pub fn id(&self) -> String {
        deployment_id(self.number)
    }

    pub fn is_live(&self) -> bool {
        self.status != DeploymentStatus::Inactive
    }
}

/// `ecs-svc/N`.
pub fn deployment_id(number: u64) -> String {
    format!("ecs-svc/{number}")
}

/// The number in `ecs-svc/N`, if `id` is one.
pub fn deployment_number(id: &str) -> Option<u64> {
    id.strip_prefix("ecs-svc/")?.parse().ok()
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
    /// The task definition of the newest deployment.
    pub task_definition: TaskDefinitionArn,
    #[serde(default)]
    pub network: Option<TaskNetwork>,
    #[serde(default)]
    pub launch: Launch,
    #[serde(default)]
    pub deployment_configuration: DeploymentConfiguration,
    /// Live deployments (PRIMARY first), then drained ones, newest first.
    #[serde(default)]
    pub deployments: Vec<Deployment>,
    #[serde(default)]
    pub events: Vec<ServiceEvent>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub health_check_grace_period_seconds: Option<u32>,
    #[serde(default)]
    pub propagate_tags: PropagateTags,
    #[serde(default)]
    pub enable_ecs_managed_tags: bool,
    #[serde(default)]
    pub enable_execute_command: bool,
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancerRef>,
    #[serde(default)]
    pub service_registries: Vec<RegistryRef>,
    /// The targets the controller registered for live tasks.
    #[serde(default)]
    pub registered: Vec<Registration>,
    /// Tasks being drained out of their target groups before they stop.
    #[serde(default)]
    pub draining: Vec<DrainingTask>,
    /// The IAM principal that created it (`createdBy`).
    #[serde(default)]
    pub created_by: Option<String>,
    /// The last time the service said it reached a steady state.
    #[serde(default)]
    pub steady_since: Option<f64>,
    pub created_at: f64,
    /// When DeleteService was called.
    #[serde(default)]
    pub deleted_at: Option<f64>,
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
            launch: Launch { platform_version: "LATEST".into(), ..Launch::default() },
            deployment_configuration: DeploymentConfiguration::default(),
            deployments: Vec::new(),
            events: Vec::new(),
            tags: Vec::new(),
            health_check_grace_period_seconds: None,
            propagate_tags: PropagateTags::None,
            enable_ecs_managed_tags: false,
            enable_execute_command: false,
            load_balancers: Vec::new(),
            service_registries: Vec::new(),
            registered: Vec::new(),
            draining: Vec::new(),
            created_by: None,
            steady_since: None,
            created_at,
            deleted_at: None,
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

    pub fn primary_mut(&mut self) -> Option<&mut Deployment> {
        self.deployments.iter_mut().find(|d| d.status == DeploymentStatus::Primary)
    }

    pub fn deployment(&self, number: u64) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.number == number)
    }

    /// Starts a new PRIMARY deployment numbered `number` of what the
    /// service now says (task definition, network, launch), for its
    /// desired count; the PRIMARY before becomes ACTIVE and is drained by
    /// the controller.
    pub fn deploy(&mut self, number: u64, now: f64) {
        let mut source = None;
        for d in self.deployments.iter_mut().filter(|d| d.status == DeploymentStatus::Primary) {
            d.status = DeploymentStatus::Active;
            d.updated_at = now;
            if d.rollout_state == RolloutState::InProgress {
                d.finished_at.get_or_insert(now);
            }
            source = Some(d.number);
        }
        let deployment = Deployment {
            number,
            status: DeploymentStatus::Primary,
            task_definition: self.task_definition.clone(),
            network: self.network.clone(),
            launch: self.launch.clone(),
            desired_count: self.desired_count,
            pending_count: 0,
            running_count: 0,
            failed_tasks: 0,
            rollout_state: RolloutState::InProgress,
            rollout_state_reason: Some(format!("ECS deployment {} in progress.", deployment_id(number))),
            created_at: now,
            updated_at: now,
            finished_at: None,
            rollback: false,
            ran: false,
            source,
            throttle: Throttle::default(),
            capacity_wait: None,
            in_flight: Vec::new(),
        };
        self.deployments.insert(0, deployment);
        self.steady_since = None;
    }

    /// Rolls back to deployment `number` (the last COMPLETED one): it is
    /// PRIMARY and IN_PROGRESS again, as ECS's circuit breaker does it,
    /// and the service's revision is its again; the PRIMARY before
    /// becomes ACTIVE and is drained. `false` if there is no such
    /// deployment.
    pub fn roll_back_to(&mut self, number: u64, now: f64) -> bool {
        let Some(i) = self.deployments.iter().position(|d| d.number == number) else { return false };
        let reason = format!("ECS deployment circuit breaker: rolling back to deploymentId {}.", deployment_id(number));
        let mut source = None;
        for d in self.deployments.iter_mut().filter(|d| d.status == DeploymentStatus::Primary) {
            d.status = DeploymentStatus::Active;
            d.updated_at = now;
            source = Some(d.number);
        }
        let mut d = self.deployments.remove(i);
        d.status = DeploymentStatus::Primary;
        d.rollout_state = RolloutState::InProgress;
        d.rollout_state_reason = Some(reason);
        d.desired_count = self.desired_count;
        d.failed_tasks = 0;
        d.ran = false;
        d.rollback = true;
        d.source = source;
        d.throttle = Throttle::default();
        d.capacity_wait = None;
        d.finished_at = None;
        d.updated_at = now;
        self.task_definition = d.task_definition.clone();
        self.network = d.network.clone();
        self.launch = d.launch.clone();
        self.deployments.insert(0, d);
        self.steady_since = None;
        true
    }

    /// Adds an event unless the same message was said within `window`
    /// seconds (ECS omits repeats of a cause for six hours).
    pub fn push_event_once(&mut self, id: String, message: String, now: f64, window: f64) {
        if self.events.iter().any(|e| e.message == message && now - e.created_at < window) {
            return;
        }
        self.push_event(id, message, now);
    }

    /// Adds an event (newest first), keeping the newest [`EVENTS_KEPT`].
    pub fn push_event(&mut self, id: String, message: String, now: f64) {
        self.events.insert(0, ServiceEvent { id, created_at: now, message });
        self.events.truncate(EVENTS_KEPT);
    }

    /// The ARN of the service revision a deployment rolled out.
    pub fn revision_arn(&self, number: u64) -> String {
        revision_arn(&self.arn, number)
    }

    /// The ARN of a service deployment (ListServiceDeployments).
    pub fn deployment_arn(&self, number: u64) -> String {
        format!("{}:service-deployment/{}/{}/{number}", self.arn.account.prefix(), self.arn.cluster, self.arn.name)
    }

    /// Drops drained deployments beyond the newest [`HISTORY_KEPT`].
    pub fn trim_history(&mut self) {
        let mut inactive = 0;
        self.deployments.retain(|d| {
            if d.status != DeploymentStatus::Inactive {
                return true;
            }
            inactive += 1;
            inactive <= HISTORY_KEPT
        });
    }
}

/// The service and deployment number a service-deployment or
/// service-revision ARN of this account names: `kind` is
/// `service-deployment` or `service-revision`.
pub fn parse_child_arn(account: &Account, arn: &str, kind: &str) -> Option<(ServiceArn, u64)> {
    let rest = arn.strip_prefix(&format!("{}:{kind}/", account.prefix()))?;
    let mut parts = rest.split('/');
    let (cluster, name, number) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || cluster.is_empty() || name.is_empty() {
        return None;
    }
    Some((account.service(cluster, name), number.parse().ok()?))
}

/// `arn:aws:ecs:REGION:ACCOUNT:service-revision/CLUSTER/SERVICE/N`.
pub fn revision_arn(service: &ServiceArn, number: u64) -> String {
    format!("{}:service-revision/{}/{}/{number}", service.account.prefix(), service.cluster, service.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn service(desired: u32) -> Service {
        let acct = testing::account();
        let def: TaskDefinitionArn = format!("{}:task-definition/web:1", acct.prefix()).parse().unwrap();
        Service::new(acct.service("default", "web"), def, desired, 0.0)
    }

    #[test]
    fn percentages_round_as_ecs_says() {
        let c = DeploymentConfiguration { minimum_healthy_percent: 50, maximum_percent: 200, ..Default::default() };
        assert_eq!((c.min_healthy(3), c.max_running(3)), (2, 6));
        let c = DeploymentConfiguration { minimum_healthy_percent: 100, maximum_percent: 150, ..Default::default() };
        assert_eq!((c.min_healthy(3), c.max_running(3)), (3, 4), "150 % of 3 is 4.5, rounded down");
        let c = DeploymentConfiguration { minimum_healthy_percent: 0, maximum_percent: 100, ..Default::default() };
        assert_eq!((c.min_healthy(1), c.max_running(1)), (0, 1));
        let c = DeploymentConfiguration { minimum_healthy_percent: 33, maximum_percent: 100, ..Default::default() };
        assert_eq!(c.min_healthy(4), 2, "1.32 rounds up to 2");
    }

    #[test]
    fn a_new_deployment_demotes_the_primary_and_names_its_source() {
        let mut s = service(2);
        s.deploy(7, 1.0);
        assert_eq!(s.primary().unwrap().id(), "ecs-svc/7");
        s.deploy(9, 2.0);
        let [new, old] = s.deployments.as_slice() else { panic!("two deployments") };
        assert_eq!((new.number, new.status, new.source), (9, DeploymentStatus::Primary, Some(7)));
        assert_eq!((old.status, old.finished_at), (DeploymentStatus::Active, Some(2.0)));
        assert!(s.revision_arn(9).ends_with(":service-revision/default/web/9"));
        assert_eq!(deployment_number(&new.id()), Some(9));
        let acct = testing::account();
        assert_eq!(parse_child_arn(&acct, &s.revision_arn(9), "service-revision"), Some((s.arn.clone(), 9)));
        assert_eq!(parse_child_arn(&acct, &s.deployment_arn(9), "service-deployment"), Some((s.arn.clone(), 9)));
        assert_eq!(parse_child_arn(&acct, &s.deployment_arn(9), "service-revision"), None);
        assert_eq!(parse_child_arn(&acct, &format!("{}/x", s.revision_arn(9)), "service-revision"), None);
        assert_eq!(deployment_number("ecs-svc/x"), None);
    }

    #[test]
    fn a_rollback_makes_the_completed_deployment_primary_again() {
        let mut s = service(2);
        s.deploy(7, 1.0);
        s.deployments[0].rollout_state = RolloutState::Completed;
        let good = s.task_definition.clone();
        s.task_definition = format!("{}:task-definition/web:2", s.arn.account.prefix()).parse().unwrap();
        s.deploy(9, 2.0);
        assert!(s.roll_back_to(7, 3.0));
        let p = s.primary().unwrap();
        assert_eq!((p.number, p.rollout_state, p.rollback, p.source), (7, RolloutState::InProgress, true, Some(9)));
        assert_eq!(p.rollout_state_reason.as_deref(), Some("ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/7."));
        assert_eq!(s.task_definition, good, "the service's revision is the good one again");
        assert_eq!(s.deployment(9).unwrap().status, DeploymentStatus::Active);
        assert!(!s.roll_back_to(42, 4.0));
    }

    #[test]
    fn a_repeated_cause_is_said_once_per_window() {
        let mut s = service(1);
        s.push_event_once("a".into(), "m".into(), 0.0, 60.0);
        s.push_event_once("b".into(), "m".into(), 30.0, 60.0);
        s.push_event_once("c".into(), "m".into(), 61.0, 60.0);
        assert_eq!(s.events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["c", "a"]);
    }

    #[test]
    fn events_are_newest_first_and_capped() {
        let mut s = service(1);
        for i in 0..(EVENTS_KEPT + 5) {
            s.push_event(i.to_string(), format!("event {i}"), i as f64);
        }
        assert_eq!(s.events.len(), EVENTS_KEPT);
        assert_eq!(s.events[0].message, format!("event {}", EVENTS_KEPT + 4));
    }

    #[test]
    fn history_keeps_the_newest_drained_deployments() {
        let mut s = service(1);
        for n in 0..(HISTORY_KEPT as u64 + 5) {
            s.deploy(n, n as f64);
            for d in s.deployments.iter_mut().filter(|d| d.status == DeploymentStatus::Active) {
                d.status = DeploymentStatus::Inactive;
            }
        }
        s.trim_history();
        assert_eq!(s.deployments.len(), HISTORY_KEPT + 1, "the primary and the newest drained ones");
        assert_eq!(s.deployments[1].number, HISTORY_KEPT as u64 + 3);
    }
}
