//! CreateService, UpdateService, DeleteService, DescribeServices,
//! ListServices, ListServicesByNamespace, and the service deployment
//! calls (ListServiceDeployments, DescribeServiceDeployments,
//! DescribeServiceRevisions, StopServiceDeployment).
//!
//! Handlers write what the service should be — its desired count, a new
//! deployment, DRAINING — and nothing else: the service controller
//! (`crate::services`) starts and stops the tasks.

use berth_model::arn::{self, ResourceArn, ServiceArn};
use berth_model::network::TaskNetwork;
use berth_model::service::{self as model, RolloutState, Service, ServiceStatus, parse_child_arn};
use berth_model::tags;
use berth_store::{Page, Versioned};
use berth_wire::ecs::{
    CreateServiceRequest, CreateServiceResponse, DeleteServiceRequest, DeleteServiceResponse,
    DeploymentControllerType, DescribeServiceDeploymentsRequest, DescribeServiceDeploymentsResponse,
    DescribeServiceRevisionsRequest, DescribeServiceRevisionsResponse, DescribeServicesRequest,
    DescribeServicesResponse, Failure, LaunchType, ListServiceDeploymentsRequest, ListServiceDeploymentsResponse,
    ListServicesByNamespaceRequest, ListServicesByNamespaceResponse, ListServicesRequest, ListServicesResponse,
    NetworkConfiguration, NetworkMode, SchedulingStrategy, ServiceField, StopServiceDeploymentRequest,
    StopServiceDeploymentResponse, StopServiceDeploymentStopType, TaskDefinitionStatus, UpdateServiceRequest,
    UpdateServiceResponse,
};

use super::{Call, clusters, convert, now_epoch, task_definitions, tasks, with_retry};
use crate::{ApiError, paging};

/// DescribeServices takes at most this many services per call.
const MAX_DESCRIBE: usize = 10;
/// DescribeServiceDeployments and DescribeServiceRevisions: at most 20.
const MAX_DESCRIBE_DEPLOYMENTS: usize = 20;
/// The most tasks one service may want.
const MAX_DESIRED: i32 = 5000;

pub async fn create(call: &Call<'_>, req: CreateServiceRequest) -> Result<CreateServiceResponse, ApiError> {
    validate_name(&req.service_name)?;
    if req.scheduling_strategy == Some(SchedulingStrategy::Daemon) {
        return Err(ApiError::invalid_parameter("The DAEMON scheduling strategy is not supported by Fargate (or Berth)."));
    }
    check_controller(req.deployment_controller.as_ref().map(|c| c.r#type))?;
    let Some(definition_ref) = req.task_definition.as_deref() else {
        return Err(ApiError::invalid_parameter("TaskDefinition must be specified for a service of the ECS deployment controller."));
    };
    let desired = match req.desired_count {
        Some(n) => desired_count(n)?,
        None => {
            return Err(ApiError::invalid_parameter("desiredCount must be specified for a service of the REPLICA scheduling strategy."));
        }
    };
    let cluster = match req.cluster.as_deref() {
        None | Some("") => clusters::ensure_default(call).await?,
        Some(p) => clusters::active(call, &arn::cluster_name(call.account(), Some(p))?).await?,
    };
    let cluster_name = cluster.value.cluster_name.clone().unwrap_or_default();
    let definition = active_definition(call, definition_ref).await?;
    let network = network(call, &definition, req.network_configuration.as_ref()).await?;
    let mut launch = launch(req.launch_type, req.capacity_provider_strategy.as_deref(), req.platform_version.as_deref(), None)?;
    // Neither a launch type nor a strategy: the cluster's default strategy.
    if req.launch_type.is_none() && launch.capacity_provider_strategy.is_empty() {
        let default = cluster.value.default_capacity_provider_strategy.as_deref().unwrap_or_default();
        launch.capacity_provider_strategy = convert::strategy_from_wire(default);
    }
    let associated = cluster.value.capacity_providers.clone().unwrap_or_default();
    berth_model::capacity::validate_strategy(&launch.capacity_provider_strategy, Some(&associated))?;
    let new_tags = req.tags.clone().unwrap_or_default();
    tags::validate(&new_tags)?;
    let mut deployment_configuration = model::DeploymentConfiguration::default();
    if let Some(given) = &req.deployment_configuration {
        deployment_configuration = convert::merge_deployment_configuration(&deployment_configuration, given);
    }
    validate_percentages(&deployment_configuration)?;

    let now = now_epoch();
    let service_arn = call.account().service(&cluster_name, &req.service_name);
    let mut s = Service::new(service_arn.clone(), definition.value.arn()?, desired, now);
    s.network = network;
    s.launch = launch;
    s.deployment_configuration = deployment_configuration;
    s.tags = convert::tags_from_wire(&new_tags);
    s.health_check_grace_period_seconds = grace_period(req.health_check_grace_period_seconds)?;
    s.propagate_tags = req.propagate_tags.map(convert::propagate_tags_from_wire).unwrap_or_default();
    s.enable_ecs_managed_tags = req.enable_ecs_managed_tags.unwrap_or(false);
    s.enable_execute_command = req.enable_execute_command.unwrap_or(false);
    s.load_balancers = convert::load_balancers_from_wire(req.load_balancers.as_deref().unwrap_or_default());
    check_load_balancers(call, &s.load_balancers, Some(&definition.value.definition)).await?;
    s.service_registries = convert::registries_from_wire(req.service_registries.as_deref().unwrap_or_default());
    s.created_by = Some(call.principal_arn());
    s.deploy(fresh_number(), now);

    let stored = with_retry(|| async {
        let existing = call.store().get_service(&service_arn.to_string()).await?;
        match existing {
            Some(e) if e.value.status.is_live() => {
                Err(ApiError::invalid_parameter("Creation of service was not idempotent."))
            }
            // A deleted (INACTIVE) service of that name is replaced.
            Some(e) => Ok(call.store().put_service(&s, Some(e.version)).await?),
            None => Ok(call.store().put_service(&s, None).await?),
        }
    })
    .await?;
    tracing::info!(service = %service_arn, desired, "service created");
    Ok(CreateServiceResponse { service: Some(convert::service(&stored.value, true)) })
}

/// CreateService's and UpdateService's checks of `loadBalancers`, as ECS
/// makes them: a target group (Fargate has no classic load balancers)
/// that exists and that a listener forwards to, and a container port the
/// task definition maps (when it is known here).
async fn check_load_balancers(
    call: &Call<'_>,
    lbs: &[model::LoadBalancerRef],
    definition: Option<&berth_wire::ecs::TaskDefinition>,
) -> Result<(), ApiError> {
    if lbs.is_empty() {
        return Ok(());
    }
    let users = crate::elbv2::target_groups::group_users(call.store()).await?;
    for lb in lbs {
        let Some(tg) = lb.target_group_arn.as_deref() else {
            return Err(ApiError::invalid_parameter(
                "targetGroupArn must be specified: a Fargate service's load balancer is an application or network load balancer's target group.",
            ));
        };
        if call.store().get_target_group(tg).await?.is_none() {
            return Err(ApiError::invalid_parameter(format!("The target group {tg} does not exist.")));
        }
        if !users.contains_key(tg) {
            return Err(ApiError::invalid_parameter(format!(
                "The target group with targetGroupArn {tg} does not have an associated load balancer."
            )));
        }
        let (Some(name), Some(port)) = (lb.container_name.as_deref(), lb.container_port) else {
            return Err(ApiError::invalid_parameter("containerName and containerPort must be specified with a targetGroupArn."));
        };
        let Some(definition) = definition else { continue };
        let mapped = definition
            .container_definitions
            .iter()
            .flatten()
            .filter(|c| c.name.as_deref() == Some(name))
            .flat_map(|c| c.port_mappings.iter().flatten())
            .any(|m| m.container_port == Some(port));
        if !mapped {
            return Err(ApiError::invalid_parameter(format!("The container {name} did not have a container port {port} defined.")));
        }
    }
    Ok(())
}

pub async fn update(call: &Call<'_>, req: UpdateServiceRequest) -> Result<UpdateServiceResponse, ApiError> {
    let service_arn = service_arn(call, req.cluster.as_deref(), &req.service)?;
    clusters::active(call, &service_arn.cluster).await?;
    check_controller(req.deployment_controller.as_ref().map(|c| c.r#type))?;
    let desired = req.desired_count.map(desired_count).transpose()?;
    let grace = grace_period(req.health_check_grace_period_seconds)?;
    // What the request names is read once; the service may change between retries.
    let definition = match req.task_definition.as_deref() {
        Some(r) => Some(active_definition(call, r).await?),
        None => None,
    };
    let updated = with_retry(|| async {
        let current = get(call, &service_arn).await?;
        if current.value.status != ServiceStatus::Active {
            return Err(ApiError::ecs("ServiceNotActiveException", "Service was not ACTIVE."));
        }
        let mut s = current.value.clone();
        let mut redeploy = req.force_new_deployment.unwrap_or(false);
        if let Some(d) = &definition {
            let arn = d.value.arn()?;
            redeploy |= arn != s.task_definition;
            s.task_definition = arn;
        }
        let definition_now = match &definition {
            Some(d) => d.clone(),
            None => task_definitions::lookup(call, &s.task_definition.to_string()).await?,
        };
        if let Some(n) = &req.network_configuration {
            let net = network(call, &definition_now, Some(n)).await?;
            redeploy |= net != s.network;
            s.network = net;
        } else if definition.is_some() && s.network.is_none() {
            s.network = network(call, &definition_now, None).await?;
        }
        if req.capacity_provider_strategy.is_some() || req.platform_version.is_some() {
            let launch = launch(None, req.capacity_provider_strategy.as_deref(), req.platform_version.as_deref(), Some(&s.launch))?;
            redeploy |= launch != s.launch;
            s.launch = launch;
        }
        if let Some(given) = &req.deployment_configuration {
            s.deployment_configuration = convert::merge_deployment_configuration(&s.deployment_configuration, given);
            validate_percentages(&s.deployment_configuration)?;
        }
        if let Some(lbs) = &req.load_balancers {
            let lbs = convert::load_balancers_from_wire(lbs);
            check_load_balancers(call, &lbs, None).await?;
            redeploy |= lbs != s.load_balancers;
            s.load_balancers = lbs;
        }
        if let Some(regs) = &req.service_registries {
            let regs = convert::registries_from_wire(regs);
            redeploy |= regs != s.service_registries;
            s.service_registries = regs;
        }
        if let Some(n) = desired {
            s.desired_count = n;
        }
        if grace.is_some() {
            s.health_check_grace_period_seconds = grace;
        }
        if let Some(p) = req.propagate_tags {
            s.propagate_tags = convert::propagate_tags_from_wire(p);
        }
        if let Some(e) = req.enable_execute_command {
            s.enable_execute_command = e;
        }
        if let Some(e) = req.enable_ecs_managed_tags {
            s.enable_ecs_managed_tags = e;
        }
        if redeploy {
            s.deploy(fresh_number(), now_epoch());
        }
        if s == current.value {
            return Ok(current);
        }
        Ok(call.store().put_service(&s, Some(current.version)).await?)
    })
    .await?;
    tracing::info!(service = %service_arn, desired = updated.value.desired_count, "service updated");
    Ok(UpdateServiceResponse { service: Some(convert::service(&updated.value, false)) })
}

pub async fn delete(call: &Call<'_>, req: DeleteServiceRequest) -> Result<DeleteServiceResponse, ApiError> {
    let service_arn = service_arn(call, req.cluster.as_deref(), &req.service)?;
    clusters::active(call, &service_arn.cluster).await?;
    let force = req.force.unwrap_or(false);
    let deleted = with_retry(|| async {
        let current = get(call, &service_arn).await?;
        match current.value.status {
            ServiceStatus::Active => {}
            ServiceStatus::Draining => return Ok(current),
            ServiceStatus::Inactive => return Err(ApiError::ecs("ServiceNotActiveException", "Service was not ACTIVE.")),
        }
        if current.value.desired_count > 0 && !force {
            return Err(ApiError::invalid_parameter("The service cannot be stopped while it is scaled above 0."));
        }
        let mut s = current.value;
        s.status = ServiceStatus::Draining;
        s.desired_count = 0;
        s.deleted_at = Some(now_epoch());
        Ok(call.store().put_service(&s, Some(current.version)).await?)
    })
    .await?;
    tracing::info!(service = %service_arn, force, "service deleted");
    Ok(DeleteServiceResponse { service: Some(convert::service(&deleted.value, false)) })
}

pub async fn describe(call: &Call<'_>, req: DescribeServicesRequest) -> Result<DescribeServicesResponse, ApiError> {
    if req.services.is_empty() || req.services.len() > MAX_DESCRIBE {
        return Err(ApiError::invalid_parameter(format!(
            "services must name 1 to {MAX_DESCRIBE} services; {} were given.",
            req.services.len()
        )));
    }
    let cluster = arn::cluster_name(call.account(), req.cluster.as_deref())?;
    clusters::active(call, &cluster).await?;
    let with_tags = req.include.unwrap_or_default().contains(&ServiceField::Tags);
    let mut services = Vec::new();
    let mut failures = Vec::new();
    for param in &req.services {
        let arn = service_arn(call, Some(&cluster), param)?;
        match call.store().get_service(&arn.to_string()).await? {
            Some(s) => services.push(convert::service(&s.value, with_tags)),
            None => failures.push(Failure { arn: Some(arn.to_string()), reason: Some("MISSING".into()), detail: None }),
        }
    }
    Ok(DescribeServicesResponse { services: Some(services), failures: Some(failures) })
}

pub async fn list(call: &Call<'_>, req: ListServicesRequest) -> Result<ListServicesResponse, ApiError> {
    let limit = paging::limit(req.max_results)?;
    let after = paging::decode::<String>(req.next_token.as_deref())?;
    let cluster = arn::cluster_name(call.account(), req.cluster.as_deref())?;
    let cluster = clusters::active(call, &cluster).await?;
    // Every service is a Fargate REPLICA service.
    let fargate = matches!(req.launch_type, None | Some(LaunchType::Fargate));
    let replica = matches!(req.scheduling_strategy, None | Some(SchedulingStrategy::Replica));
    if !fargate || !replica {
        return Ok(ListServicesResponse { service_arns: Some(vec![]), next_token: None });
    }
    let cluster_arn = cluster.value.cluster_arn.unwrap_or_default();
    let rows =
        call.store().list_services(Some(&cluster_arn), &[ServiceStatus::Active], Page { after, limit: limit + 1 }).await?;
    let (rows, next_token) = paging::finish(rows, limit, |r| r.value.arn.to_string());
    Ok(ListServicesResponse { service_arns: Some(rows.into_iter().map(|r| r.value.arn.to_string()).collect()), next_token })
}

/// Berth has no Cloud Map namespaces yet (the discovery issue adds
/// them), so every namespace named is one that does not exist.
pub async fn list_by_namespace(
    _call: &Call<'_>,
    req: ListServicesByNamespaceRequest,
) -> Result<ListServicesByNamespaceResponse, ApiError> {
    paging::limit(req.max_results)?;
    Err(ApiError::ecs("NamespaceNotFoundException", format!("The namespace {} was not found.", req.namespace)))
}

pub async fn list_deployments(
    call: &Call<'_>,
    req: ListServiceDeploymentsRequest,
) -> Result<ListServiceDeploymentsResponse, ApiError> {
    let limit = match req.max_results {
        None => 20,
        Some(n) if (1..=100).contains(&n) => n as usize,
        Some(n) => return Err(ApiError::invalid_parameter(format!("maxResults must be between 1 and 100; {n} was given."))),
    };
    let after = paging::decode::<u64>(req.next_token.as_deref())?;
    let service_arn = service_arn(call, req.cluster.as_deref(), &req.service)?;
    clusters::active(call, &service_arn.cluster).await?;
    let s = get(call, &service_arn).await?.value;
    let wanted = req.status.unwrap_or_default();
    let window = req.created_at.unwrap_or_default();
    let mut briefs: Vec<(u64, f64, _)> = s
        .deployments
        .iter()
        .map(|d| (d.number, d.created_at, convert::deployment_brief(&s, d)))
        .filter(|(_, _, b)| wanted.is_empty() || b.status.is_some_and(|st| wanted.contains(&st)))
        .filter(|(_, created, _)| window.after.is_none_or(|a| *created > a) && window.before.is_none_or(|b| *created < b))
        .collect();
    // Newest first; the token is the number of the last one given.
    briefs.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal).then(b.0.cmp(&a.0)));
    if let Some(last) = after {
        match briefs.iter().position(|(n, _, _)| *n == last) {
            Some(i) => {
                briefs.drain(..=i);
            }
            None => briefs.clear(),
        }
    }
    let next_token = (briefs.len() > limit).then(|| paging::encode(&briefs[limit - 1].0));
    briefs.truncate(limit);
    Ok(ListServiceDeploymentsResponse {
        service_deployments: Some(briefs.into_iter().map(|(_, _, b)| b).collect()),
        next_token,
    })
}

pub async fn describe_deployments(
    call: &Call<'_>,
    req: DescribeServiceDeploymentsRequest,
) -> Result<DescribeServiceDeploymentsResponse, ApiError> {
    let (found, failures) =
        describe_children(call, &req.service_deployment_arns, "serviceDeploymentArns", "service-deployment", convert::service_deployment)
            .await?;
    Ok(DescribeServiceDeploymentsResponse { service_deployments: Some(found), failures: Some(failures) })
}

pub async fn describe_revisions(
    call: &Call<'_>,
    req: DescribeServiceRevisionsRequest,
) -> Result<DescribeServiceRevisionsResponse, ApiError> {
    let (found, failures) =
        describe_children(call, &req.service_revision_arns, "serviceRevisionArns", "service-revision", convert::revision).await?;
    Ok(DescribeServiceRevisionsResponse { service_revisions: Some(found), failures: Some(failures) })
}

/// The deployments (or revisions) `arns` name, each shown by `show`;
/// those that do not exist as `MISSING` failures.
async fn describe_children<T>(
    call: &Call<'_>,
    arns: &[String],
    member: &str,
    kind: &str,
    show: fn(&Service, &model::Deployment) -> T,
) -> Result<(Vec<T>, Vec<Failure>), ApiError> {
    if arns.is_empty() || arns.len() > MAX_DESCRIBE_DEPLOYMENTS {
        return Err(ApiError::invalid_parameter(format!(
            "{member} must name 1 to {MAX_DESCRIBE_DEPLOYMENTS} ARNs; {} were given.",
            arns.len()
        )));
    }
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for a in arns {
        let Some((service_arn, number)) = parse_child_arn(call.account(), a, kind) else {
            return Err(ApiError::invalid_parameter(format!("The ARN provided is invalid: {a}")));
        };
        let service = call.store().get_service(&service_arn.to_string()).await?.map(|v| v.value);
        match service.as_ref().and_then(|s| s.deployment(number).map(|d| (s, d))) {
            Some((s, d)) => found.push(show(s, d)),
            None => failures.push(Failure { arn: Some(a.clone()), reason: Some("MISSING".into()), detail: None }),
        }
    }
    Ok((found, failures))
}

/// StopServiceDeployment with stopType ROLLBACK: the deployment in
/// progress is stopped and the last completed one becomes PRIMARY again,
/// as the circuit breaker would do it.
pub async fn stop_deployment(
    call: &Call<'_>,
    req: StopServiceDeploymentRequest,
) -> Result<StopServiceDeploymentResponse, ApiError> {
    if req.stop_type.is_some_and(|t| t != StopServiceDeploymentStopType::Rollback) {
        return Err(ApiError::invalid_parameter("stopType must be ROLLBACK."));
    }
    let not_found = || ApiError::ecs("ServiceDeploymentNotFoundException", "The service deployment does not exist.");
    let (service_arn, number) =
        parse_child_arn(call.account(), &req.service_deployment_arn, "service-deployment").ok_or_else(not_found)?;
    with_retry(|| async {
        let current = call.store().get_service(&service_arn.to_string()).await?.ok_or_else(not_found)?;
        let mut s = current.value;
        let d = s.deployment(number).ok_or_else(not_found)?;
        if d.status != model::DeploymentStatus::Primary || d.rollout_state != RolloutState::InProgress || d.rollback {
            return Err(ApiError::ecs("ConflictException", "The service deployment is not in progress: there is nothing to stop."));
        }
        let now = now_epoch();
        let good = s
            .deployments
            .iter()
            .filter(|x| x.rollout_state == RolloutState::Completed)
            .max_by(|a, b| a.created_at.partial_cmp(&b.created_at).unwrap_or(std::cmp::Ordering::Equal))
            .map(|x| x.number)
            .ok_or_else(|| ApiError::invalid_parameter("The service has no completed deployment to roll back to."))?;
        if let Some(d) = s.deployments.iter_mut().find(|x| x.number == number) {
            d.rollout_state = RolloutState::Failed;
            d.rollout_state_reason = Some("Service deployment stopped by StopServiceDeployment.".into());
            d.finished_at = Some(now);
        }
        s.roll_back_to(good, now);
        call.store().put_service(&s, Some(current.version)).await?;
        Ok(())
    })
    .await?;
    Ok(StopServiceDeploymentResponse { service_deployment_arn: Some(req.service_deployment_arn) })
}

/// A service named by name (in `cluster`) or ARN.
fn service_arn(call: &Call<'_>, cluster: Option<&str>, param: &str) -> Result<ServiceArn, ApiError> {
    if param.starts_with("arn:") {
        return match ResourceArn::parse(call.account(), param)? {
            ResourceArn::Service { cluster, name } => Ok(call.account().service(&cluster, &name)),
            _ => Err(ApiError::invalid_parameter(format!("{param} is not a service ARN."))),
        };
    }
    validate_name(param)?;
    let cluster = arn::cluster_name(call.account(), cluster)?;
    Ok(call.account().service(&cluster, param))
}

async fn get(call: &Call<'_>, arn: &ServiceArn) -> Result<Versioned<Service>, ApiError> {
    call.store()
        .get_service(&arn.to_string())
        .await?
        .ok_or_else(|| ApiError::ecs("ServiceNotFoundException", "Service not found."))
}

/// Up to 255 letters, numbers, hyphens and underscores.
fn validate_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        return Ok(());
    }
    Err(ApiError::invalid_parameter(format!(
        "serviceName '{name}' is invalid: up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed."
    )))
}

fn desired_count(n: i32) -> Result<u32, ApiError> {
    if !(0..=MAX_DESIRED).contains(&n) {
        return Err(ApiError::invalid_parameter(format!("desiredCount must be between 0 and {MAX_DESIRED}; {n} was given.")));
    }
    Ok(n as u32)
}

fn grace_period(n: Option<i32>) -> Result<Option<u32>, ApiError> {
    match n {
        None => Ok(None),
        Some(n) if (0..=2_147_483_647).contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(ApiError::invalid_parameter(format!("healthCheckGracePeriodSeconds must not be negative; {n} was given."))),
    }
}

fn check_controller(kind: Option<DeploymentControllerType>) -> Result<(), ApiError> {
    match kind {
        None | Some(DeploymentControllerType::Ecs) => Ok(()),
        Some(other) => Err(ApiError::invalid_parameter(format!(
            "The deployment controller {other} is not supported: Berth runs rolling deployments (deploymentController ECS)."
        ))),
    }
}

fn validate_percentages(c: &model::DeploymentConfiguration) -> Result<(), ApiError> {
    if c.minimum_healthy_percent > 100 {
        return Err(ApiError::invalid_parameter(format!(
            "deploymentConfiguration.minimumHealthyPercent must be between 0 and 100; {} was given.",
            c.minimum_healthy_percent
        )));
    }
    if c.maximum_percent < 100 || c.maximum_percent > 1000 {
        return Err(ApiError::invalid_parameter(format!(
            "deploymentConfiguration.maximumPercent must be between 100 and 1000; {} was given.",
            c.maximum_percent
        )));
    }
    Ok(())
}

/// An ACTIVE task definition revision, or ECS's error.
async fn active_definition(
    call: &Call<'_>,
    param: &str,
) -> Result<Versioned<berth_model::records::TaskDefinitionRecord>, ApiError> {
    let d = task_definitions::lookup(call, param).await?;
    if d.value.definition.status != Some(TaskDefinitionStatus::Active) {
        return Err(ApiError::ecs("ClientException", "TaskDefinition is inactive"));
    }
    Ok(d)
}

/// The service's network: an awsvpc task definition needs one, resolved
/// against Berth's subnets and security groups as RunTask does.
async fn network(
    call: &Call<'_>,
    definition: &Versioned<berth_model::records::TaskDefinitionRecord>,
    given: Option<&NetworkConfiguration>,
) -> Result<Option<TaskNetwork>, ApiError> {
    let awsvpc = given.and_then(|n| n.awsvpc_configuration.as_ref());
    match awsvpc {
        Some(a) => Ok(Some(tasks::resolve_network(call, a).await?)),
        None if definition.value.definition.network_mode == Some(NetworkMode::Awsvpc) => Err(ApiError::invalid_parameter(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
        )),
        None => Ok(None),
    }
}

/// How tasks are launched, from the request (or, for UpdateService, what
/// the service had where the request is silent).
fn launch(
    launch_type: Option<LaunchType>,
    strategy: Option<&[berth_wire::ecs::CapacityProviderStrategyItem]>,
    platform_version: Option<&str>,
    current: Option<&model::Launch>,
) -> Result<model::Launch, ApiError> {
    tasks::check_capacity(launch_type, strategy.unwrap_or_default())?;
    let mut l = current.cloned().unwrap_or_else(|| model::Launch { platform_version: "LATEST".into(), ..Default::default() });
    if let Some(s) = strategy {
        l.capacity_provider_strategy = convert::strategy_from_wire(s);
        l.launch_type = s.is_empty();
    }
    if launch_type.is_some() {
        l.launch_type = true;
    }
    if let Some(p) = platform_version {
        if p != "LATEST" && p != berth_model::task::PLATFORM_VERSION {
            return Err(ApiError::invalid_parameter(format!(
                "The specified platform version {p} does not exist. Berth runs LATEST ({}).",
                berth_model::task::PLATFORM_VERSION
            )));
        }
        l.platform_version = p.to_owned();
    }
    Ok(l)
}

/// A deployment number as ECS writes them: 19 digits.
pub(crate) fn fresh_number() -> u64 {
    let r = uuid::Uuid::new_v4().as_u128() as u64;
    1_000_000_000_000_000_000 + r % 8_000_000_000_000_000_000
}
