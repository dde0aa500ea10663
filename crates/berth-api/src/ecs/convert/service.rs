//! Services, deployments and service revisions as ECS shows them, and a
//! service's settings from CreateService/UpdateService's wire shapes.

use berth_model::network::TaskNetwork;
use berth_model::service::{
    self as model, CapacityProviderItem, Deployment, DeploymentStatus, Launch, LoadBalancerRef, RegistryRef,
    RolloutState, Service,
};
use berth_model::task::PLATFORM_VERSION;
use berth_wire::ecs as wire;

use super::tags_to_wire;

/// ECS's service-linked role, which every Fargate service shows.
fn role_arn(s: &Service) -> String {
    format!("arn:aws:iam::{}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS", s.arn.account.account_id)
}

/// The wire `Service` DescribeServices shows; tags only when asked.
pub fn service(s: &Service, with_tags: bool) -> wire::Service {
    let live: Vec<&Deployment> = s.deployments.iter().filter(|d| d.is_live()).collect();
    let running: u32 = live.iter().map(|d| d.running_count).sum();
    let pending: u32 = live.iter().map(|d| d.pending_count).sum();
    let (launch_type, strategy) = launch(&s.launch);
    wire::Service {
        service_arn: Some(s.arn.to_string()),
        service_name: Some(s.name().to_owned()),
        cluster_arn: Some(s.cluster_arn().to_string()),
        load_balancers: Some(s.load_balancers.iter().map(load_balancer).collect()),
        service_registries: Some(s.service_registries.iter().map(registry).collect()),
        status: Some(s.status.as_str().to_owned()),
        desired_count: Some(s.desired_count as i32),
        running_count: Some(running as i32),
        pending_count: Some(pending as i32),
        launch_type,
        capacity_provider_strategy: strategy,
        platform_version: Some(s.launch.platform_version.clone()),
        platform_family: Some("Linux".into()),
        task_definition: Some(s.task_definition.to_string()),
        deployment_configuration: Some(deployment_configuration(&s.deployment_configuration)),
        task_sets: None,
        deployments: Some(live.iter().map(|d| deployment(d)).collect()),
        role_arn: Some(role_arn(s)),
        events: Some(
            s.events
                .iter()
                .map(|e| wire::ServiceEvent {
                    id: Some(e.id.clone()),
                    created_at: Some(e.created_at),
                    message: Some(e.message.clone()),
                })
                .collect(),
        ),
        created_at: Some(s.created_at),
        current_service_deployment: s.primary().map(|d| s.deployment_arn(d.number)),
        current_service_revisions: Some(
            live.iter()
                .map(|d| wire::ServiceCurrentRevisionSummary {
                    arn: Some(s.revision_arn(d.number)),
                    requested_task_count: Some(requested(d) as i32),
                    running_task_count: Some(d.running_count as i32),
                    pending_task_count: Some(d.pending_count as i32),
                })
                .collect(),
        ),
        placement_constraints: Some(vec![]),
        placement_strategy: Some(vec![]),
        network_configuration: s.network.as_ref().map(network),
        health_check_grace_period_seconds: Some(s.health_check_grace_period_seconds.unwrap_or(0) as i32),
        scheduling_strategy: Some(wire::SchedulingStrategy::Replica),
        deployment_controller: Some(wire::DeploymentController { r#type: wire::DeploymentControllerType::Ecs }),
        tags: with_tags.then(|| tags_to_wire(&s.tags)),
        created_by: s.created_by.clone(),
        enable_ecs_managed_tags: Some(s.enable_ecs_managed_tags),
        propagate_tags: Some(propagate_tags(s.propagate_tags)),
        enable_execute_command: Some(s.enable_execute_command),
        availability_zone_rebalancing: Some(wire::AvailabilityZoneRebalancing::Disabled),
        resource_management_type: None,
    }
}

/// How many tasks a deployment is meant to hold now: the desired count
/// for the PRIMARY, what it still holds for an older one.
fn requested(d: &Deployment) -> u32 {
    match d.status {
        DeploymentStatus::Primary => d.desired_count,
        _ => d.running_count + d.pending_count,
    }
}

fn deployment(d: &Deployment) -> wire::Deployment {
    let (launch_type, strategy) = launch(&d.launch);
    wire::Deployment {
        id: Some(d.id()),
        status: Some(d.status.as_str().to_owned()),
        task_definition: Some(d.task_definition.to_string()),
        desired_count: Some(requested(d) as i32),
        pending_count: Some(d.pending_count as i32),
        running_count: Some(d.running_count as i32),
        failed_tasks: Some(d.failed_tasks as i32),
        created_at: Some(d.created_at),
        updated_at: Some(d.updated_at),
        capacity_provider_strategy: strategy,
        launch_type,
        platform_version: Some(PLATFORM_VERSION.to_owned()),
        platform_family: Some("Linux".into()),
        network_configuration: d.network.as_ref().map(network),
        rollout_state: Some(rollout_state(d.rollout_state)),
        rollout_state_reason: d.rollout_state_reason.clone(),
        ..Default::default()
    }
}

fn rollout_state(r: RolloutState) -> wire::DeploymentRolloutState {
    match r {
        RolloutState::InProgress => wire::DeploymentRolloutState::InProgress,
        RolloutState::Completed => wire::DeploymentRolloutState::Completed,
        RolloutState::Failed => wire::DeploymentRolloutState::Failed,
    }
}

/// launchType FARGATE when given (or nothing else was), else the strategy.
fn launch(l: &Launch) -> (Option<wire::LaunchType>, Option<Vec<wire::CapacityProviderStrategyItem>>) {
    if l.launch_type || l.capacity_provider_strategy.is_empty() {
        return (Some(wire::LaunchType::Fargate), None);
    }
    let items = l
        .capacity_provider_strategy
        .iter()
        .map(|i| wire::CapacityProviderStrategyItem {
            capacity_provider: i.capacity_provider.clone(),
            weight: Some(i.weight as i32),
            base: Some(i.base as i32),
        })
        .collect();
    (None, Some(items))
}

/// A capacity provider strategy as the domain keeps it.
pub fn strategy_from_wire(items: &[wire::CapacityProviderStrategyItem]) -> Vec<CapacityProviderItem> {
    items
        .iter()
        .map(|i| CapacityProviderItem {
            capacity_provider: i.capacity_provider.clone(),
            weight: i.weight.unwrap_or(0).max(0) as u32,
            base: i.base.unwrap_or(0).max(0) as u32,
        })
        .collect()
}

pub fn network(n: &TaskNetwork) -> wire::NetworkConfiguration {
    wire::NetworkConfiguration {
        awsvpc_configuration: Some(wire::AwsVpcConfiguration {
            subnets: n.subnets.clone(),
            security_groups: Some(n.security_groups.clone()),
            assign_public_ip: Some(if n.assign_public_ip {
                wire::AssignPublicIp::Enabled
            } else {
                wire::AssignPublicIp::Disabled
            }),
        }),
    }
}

fn deployment_configuration(c: &model::DeploymentConfiguration) -> wire::DeploymentConfiguration {
    let breaker = c.breaker();
    wire::DeploymentConfiguration {
        deployment_circuit_breaker: Some(wire::DeploymentCircuitBreaker { enable: breaker.enable, rollback: breaker.rollback }),
        maximum_percent: Some(c.maximum_percent as i32),
        minimum_healthy_percent: Some(c.minimum_healthy_percent as i32),
        alarms: Some(c.alarms.as_ref().map_or_else(
            || wire::DeploymentAlarms { alarm_names: vec![], rollback: false, enable: false },
            |a| wire::DeploymentAlarms { alarm_names: a.alarm_names.clone(), rollback: a.rollback, enable: a.enable },
        )),
        ..Default::default()
    }
}

/// UpdateService's (or CreateService's) deploymentConfiguration over the
/// one a service has: members not given keep their value.
pub fn merge_deployment_configuration(
    current: &model::DeploymentConfiguration,
    given: &wire::DeploymentConfiguration,
) -> model::DeploymentConfiguration {
    let mut c = current.clone();
    if let Some(n) = given.minimum_healthy_percent {
        c.minimum_healthy_percent = n.max(0) as u32;
    }
    if let Some(n) = given.maximum_percent {
        c.maximum_percent = n.max(0) as u32;
    }
    if let Some(b) = &given.deployment_circuit_breaker {
        c.circuit_breaker = Some(model::CircuitBreaker { enable: b.enable, rollback: b.rollback });
    }
    if let Some(a) = &given.alarms {
        c.alarms = Some(model::DeploymentAlarms { alarm_names: a.alarm_names.clone(), enable: a.enable, rollback: a.rollback });
    }
    c
}

pub fn propagate_tags(p: model::PropagateTags) -> wire::PropagateTags {
    match p {
        model::PropagateTags::None => wire::PropagateTags::None,
        model::PropagateTags::Service => wire::PropagateTags::Service,
        model::PropagateTags::TaskDefinition => wire::PropagateTags::TaskDefinition,
    }
}

pub fn propagate_tags_from_wire(p: wire::PropagateTags) -> model::PropagateTags {
    match p {
        wire::PropagateTags::None => model::PropagateTags::None,
        wire::PropagateTags::Service => model::PropagateTags::Service,
        wire::PropagateTags::TaskDefinition => model::PropagateTags::TaskDefinition,
    }
}

fn load_balancer(l: &LoadBalancerRef) -> wire::LoadBalancer {
    wire::LoadBalancer {
        target_group_arn: l.target_group_arn.clone(),
        load_balancer_name: l.load_balancer_name.clone(),
        container_name: l.container_name.clone(),
        container_port: l.container_port,
        advanced_configuration: None,
    }
}

pub fn load_balancers_from_wire(items: &[wire::LoadBalancer]) -> Vec<LoadBalancerRef> {
    items
        .iter()
        .map(|l| LoadBalancerRef {
            target_group_arn: l.target_group_arn.clone(),
            load_balancer_name: l.load_balancer_name.clone(),
            container_name: l.container_name.clone(),
            container_port: l.container_port,
        })
        .collect()
}

fn registry(r: &RegistryRef) -> wire::ServiceRegistry {
    wire::ServiceRegistry {
        registry_arn: r.registry_arn.clone(),
        port: r.port,
        container_name: r.container_name.clone(),
        container_port: r.container_port,
    }
}

pub fn registries_from_wire(items: &[wire::ServiceRegistry]) -> Vec<RegistryRef> {
    items
        .iter()
        .map(|r| RegistryRef {
            registry_arn: r.registry_arn.clone(),
            port: r.port,
            container_name: r.container_name.clone(),
            container_port: r.container_port,
        })
        .collect()
}

/// A deployment as a service deployment (ListServiceDeployments'
/// status): a failed one shows how its rollback went.
pub fn deployment_status(s: &Service, d: &Deployment) -> (wire::ServiceDeploymentStatus, Option<String>) {
    use wire::ServiceDeploymentStatus as S;
    match d.rollout_state {
        RolloutState::Completed => (S::Successful, d.rollout_state_reason.clone()),
        // A completed deployment the breaker made PRIMARY again: its own
        // deployment succeeded; the rollback shows on the failed one.
        RolloutState::InProgress if d.rollback => (S::Successful, None),
        RolloutState::InProgress if d.status == DeploymentStatus::Primary => (S::InProgress, d.rollout_state_reason.clone()),
        RolloutState::InProgress => (S::Stopped, Some("Superseded by a newer deployment.".into())),
        RolloutState::Failed => {
            let reason = d.rollout_state_reason.clone();
            match rollback_of(s, d).map(|r| r.rollout_state) {
                Some(RolloutState::InProgress) => (S::RollbackInProgress, reason),
                Some(RolloutState::Completed) => (S::RollbackSuccessful, reason),
                Some(RolloutState::Failed) => (S::RollbackFailed, reason),
                None => (S::Stopped, reason),
            }
        }
    }
}

/// The deployment rolled back to when `d` failed, if any.
fn rollback_of<'s>(s: &'s Service, d: &Deployment) -> Option<&'s Deployment> {
    s.deployments.iter().find(|r| r.rollback && r.source == Some(d.number))
}

pub fn deployment_brief(s: &Service, d: &Deployment) -> wire::ServiceDeploymentBrief {
    let (status, status_reason) = deployment_status(s, d);
    wire::ServiceDeploymentBrief {
        service_deployment_arn: Some(s.deployment_arn(d.number)),
        service_arn: Some(s.arn.to_string()),
        cluster_arn: Some(s.cluster_arn().to_string()),
        started_at: Some(d.created_at),
        created_at: Some(d.created_at),
        finished_at: d.finished_at,
        target_service_revision_arn: Some(s.revision_arn(d.number)),
        status: Some(status),
        status_reason,
    }
}

pub fn service_deployment(s: &Service, d: &Deployment) -> wire::ServiceDeployment {
    use wire::ServiceDeploymentRollbackMonitorsStatus as M;
    let (status, status_reason) = deployment_status(s, d);
    let summary = |x: &Deployment| wire::ServiceRevisionSummary {
        arn: Some(s.revision_arn(x.number)),
        requested_task_count: Some(requested(x) as i32),
        running_task_count: Some(x.running_count as i32),
        pending_task_count: Some(x.pending_count as i32),
        ..Default::default()
    };
    let breaker = s.deployment_configuration.breaker();
    let breaker_status = match (breaker.enable, d.rollout_state) {
        (false, _) => M::Disabled,
        (true, RolloutState::Failed) => M::Triggered,
        (true, RolloutState::InProgress) => M::Monitoring,
        (true, RolloutState::Completed) => M::MonitoringComplete,
    };
    let rollback = rollback_of(s, d).map(|r| wire::Rollback {
        reason: r.rollout_state_reason.clone(),
        started_at: Some(r.updated_at),
        service_revision_arn: Some(s.revision_arn(r.number)),
    });
    wire::ServiceDeployment {
        service_deployment_arn: Some(s.deployment_arn(d.number)),
        service_arn: Some(s.arn.to_string()),
        cluster_arn: Some(s.cluster_arn().to_string()),
        created_at: Some(d.created_at),
        started_at: Some(d.created_at),
        finished_at: d.finished_at,
        stopped_at: None,
        updated_at: Some(d.updated_at),
        source_service_revisions: Some(
            d.source.and_then(|n| s.deployment(n)).map(summary).into_iter().collect(),
        ),
        target_service_revision: Some(summary(d)),
        status: Some(status),
        status_reason,
        lifecycle_stage: None,
        lifecycle_hook_details: None,
        deployment_configuration: Some(deployment_configuration(&s.deployment_configuration)),
        rollback,
        deployment_circuit_breaker: Some(wire::ServiceDeploymentCircuitBreaker {
            status: Some(breaker_status),
            failure_count: Some(d.failed_tasks as i32),
            threshold: Some(berth_control::service::rules::failure_threshold(s.desired_count) as i32),
        }),
        alarms: Some(wire::ServiceDeploymentAlarms { status: Some(M::Disabled), alarm_names: None, triggered_alarm_names: None }),
    }
}

pub fn revision(s: &Service, d: &Deployment) -> wire::ServiceRevision {
    let (launch_type, strategy) = launch(&d.launch);
    wire::ServiceRevision {
        service_revision_arn: Some(s.revision_arn(d.number)),
        service_arn: Some(s.arn.to_string()),
        cluster_arn: Some(s.cluster_arn().to_string()),
        task_definition: Some(d.task_definition.to_string()),
        capacity_provider_strategy: strategy,
        launch_type,
        platform_version: Some(PLATFORM_VERSION.to_owned()),
        platform_family: Some("Linux".into()),
        load_balancers: Some(s.load_balancers.iter().map(load_balancer).collect()),
        service_registries: Some(s.service_registries.iter().map(registry).collect()),
        network_configuration: d.network.as_ref().map(network),
        guard_duty_enabled: Some(false),
        created_at: Some(d.created_at),
        ..Default::default()
    }
}
