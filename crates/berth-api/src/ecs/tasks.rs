//! RunTask, StartTask (refused, as on Fargate), StopTask, DescribeTasks,
//! ListTasks.
//!
//! RunTask builds the task records, asks the pure scheduler for a plan on
//! a snapshot of the nodes, and commits each placement through the
//! store's applier, which re-checks the node's capacity in the same
//! transaction. A task that no node can take is returned in `failures`
//! with ECS's reason and nothing is stored for it.

use berth_control::scheduler::{self, Demand, Shortage, Snapshot};
use berth_model::arn::{self, ResourceArn};
use berth_model::network;
use berth_model::records::{NodeRecord, TaskRecord};
use berth_model::task::{self as new_task, NewTask};
use berth_model::tags;
use berth_store::{NodeUsage, Page, StoreError, TaskFilter, Versioned};
use berth_wire::ecs::{
    AssignPublicIp, AwsVpcConfiguration, DescribeTasksRequest, NetworkConfiguration, DescribeTasksResponse, Failure, LaunchType, ListTasksRequest, ListTasksResponse,
    NetworkMode, PropagateTags, RunTaskRequest, RunTaskResponse, StartTaskRequest, StartTaskResponse, StopTaskRequest,
    StopTaskResponse, Task, TaskDefinitionStatus, TaskField, TaskStopCode,
};

use super::{Call, clusters, now_epoch, task_definitions, with_retry};
use crate::{ApiError, paging};

/// DescribeTasks takes at most this many tasks per call.
const MAX_DESCRIBE: usize = 100;
/// How often RunTask re-plans one task whose placement lost a race.
const PLACEMENT_ATTEMPTS: usize = 3;
/// A node whose agent has not heartbeated for this long takes no tasks
/// (agents heartbeat every 10 s).
const NODE_STALE_AFTER_SECS: i64 = 60;

pub async fn run(call: &Call<'_>, req: RunTaskRequest) -> Result<RunTaskResponse, ApiError> {
    let count = req.count.unwrap_or(1);
    if !(1..=new_task::MAX_COUNT).contains(&count) {
        return Err(ApiError::invalid_parameter(format!(
            "count must be between 1 and {}; {count} was given.",
            new_task::MAX_COUNT
        )));
    }
    let capacity_provider = capacity_provider(&req)?;
    let cluster = match req.cluster.as_deref() {
        None | Some("") => clusters::ensure_default(call).await?,
        Some(p) => clusters::active(call, &arn::cluster_name(call.account(), Some(p))?).await?,
    };
    let cluster_name = cluster.value.cluster_name.clone().unwrap_or_default();
    let definition = task_definitions::lookup(call, &req.task_definition).await?.value;
    if definition.definition.status != Some(TaskDefinitionStatus::Active) {
        return Err(ApiError::ecs("ClientException", "TaskDefinition is inactive"));
    }
    if definition.definition.network_mode == Some(NetworkMode::Awsvpc) && req.network_configuration.is_none() {
        return Err(ApiError::invalid_parameter(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
        ));
    }
    let network = match req.network_configuration.as_ref().and_then(|n| n.awsvpc_configuration.as_ref()) {
        Some(awsvpc) => Some(resolve_network(call, awsvpc).await?),
        None => None,
    };
    let mut task_tags = match req.propagate_tags {
        Some(PropagateTags::TaskDefinition) => definition.tags.clone(),
        _ => vec![],
    };
    task_tags = tags::merge(&task_tags, req.tags.as_deref().unwrap_or_default())?;

    let now = now_epoch();
    let mut records = Vec::new();
    for _ in 0..count {
        let id = uuid::Uuid::new_v4().simple().to_string();
        records.push(new_task::build(&NewTask {
            account: call.account(),
            cluster_name: &cluster_name,
            id: &id,
            definition: &definition.definition,
            overrides: req.overrides.as_ref(),
            started_by: req.started_by.as_deref(),
            group: req.group.as_deref(),
            tags: task_tags.clone(),
            enable_execute_command: req.enable_execute_command.unwrap_or(false),
            capacity_provider: capacity_provider.as_deref(),
            now,
        })?);
    }
    for r in &mut records {
        if let Some(net) = &network {
            // Security groups as resolved (the default group when none was given).
            r.network_configuration = Some(NetworkConfiguration {
                awsvpc_configuration: Some(AwsVpcConfiguration {
                    subnets: net.subnets.clone(),
                    security_groups: Some(net.security_groups.clone()),
                    assign_public_ip: Some(if net.assign_public_ip {
                        AssignPublicIp::Enabled
                    } else {
                        AssignPublicIp::Disabled
                    }),
                }),
            });
            let attachment_id = uuid::Uuid::new_v4().to_string();
            r.task.attachments = Some(vec![network::precreated_attachment(&attachment_id, &net.subnets[0])]);
        }
    }

    let nodes = call.store().list_nodes().await?;
    let demands: Vec<Demand> = records.iter().map(|r| Demand { cpu: r.cpu, memory: r.memory }).collect();
    let plan = scheduler::place(&snapshot(&nodes), &demands);
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for (record, decision) in records.into_iter().zip(plan) {
        match commit(call, record, decision).await? {
            Ok(task) => tasks.push(task),
            Err(shortage) => failures.push(Failure { arn: None, reason: Some(shortage.reason().into()), detail: None }),
        }
    }
    tracing::info!(cluster = %cluster_name, placed = tasks.len(), failed = failures.len(), "run task");
    Ok(RunTaskResponse { tasks: Some(tasks), failures: Some(failures) })
}

/// RunTask's `awsvpcConfiguration` against Berth's subnets and security groups.
async fn resolve_network(call: &Call<'_>, awsvpc: &AwsVpcConfiguration) -> Result<network::TaskNetwork, ApiError> {
    let subnets: Vec<String> = call.store().list_subnets().await?.into_iter().map(|v| v.value.id).collect();
    let groups: Vec<String> = call.store().list_security_groups().await?.into_iter().map(|v| v.value.id).collect();
    let net = network::resolve_awsvpc(awsvpc, |s| subnets.iter().any(|k| k == s), |g| groups.iter().any(|k| k == g))?;
    Ok(net)
}

/// Commits one placement; when the node filled up meanwhile, plans again
/// on a fresh snapshot (a few times) before reporting the shortage.
async fn commit(
    call: &Call<'_>,
    mut record: TaskRecord,
    mut decision: Result<String, Shortage>,
) -> Result<Result<Task, Shortage>, ApiError> {
    let demand = Demand { cpu: record.cpu, memory: record.memory };
    for _ in 0..PLACEMENT_ATTEMPTS {
        let node_id = match decision {
            Ok(node_id) => node_id,
            Err(shortage) => return Ok(Err(shortage)),
        };
        if let Some(node) = call.store().get_node(&node_id).await? {
            record.task.availability_zone = Some(node.zone);
            let fits = move |u: &NodeUsage| scheduler::fits(&as_scheduler_node(u), demand);
            match call.store().place_task(&record, &node_id, &fits).await {
                Ok(placed) => return Ok(Ok(placed.value.task)),
                Err(StoreError::Rejected | StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // The node filled up or went away since the snapshot: plan again.
        let nodes = call.store().list_nodes().await?;
        decision = scheduler::place(&snapshot(&nodes), &[demand]).remove(0);
    }
    Ok(Err(decision.err().unwrap_or(Shortage::Cpu)))
}

fn as_scheduler_node(u: &NodeUsage) -> scheduler::Node {
    scheduler::Node {
        id: u.node.id.clone(),
        zone: u.node.zone.clone(),
        cpu_total: u.node.cpu,
        memory_total: u.node.memory,
        cpu_used: u.cpu_used,
        memory_used: u.memory_used,
        tasks: u.tasks,
        schedulable: u.node.status == NodeRecord::ACTIVE && now_epoch() as i64 - u.node.heartbeat_at <= NODE_STALE_AFTER_SECS,
    }
}

fn snapshot(nodes: &[NodeUsage]) -> Snapshot {
    Snapshot { nodes: nodes.iter().map(as_scheduler_node).collect() }
}

/// Berth runs Fargate tasks: launchType FARGATE, or a capacity provider
/// strategy of FARGATE/FARGATE_SPOT. Returns the provider to record.
fn capacity_provider(req: &RunTaskRequest) -> Result<Option<String>, ApiError> {
    let strategy = req.capacity_provider_strategy.as_deref().unwrap_or_default();
    match (req.launch_type, strategy.is_empty()) {
        (Some(_), false) => Err(ApiError::invalid_parameter(
            "Specifying both a launchType and capacityProviderStrategy is not supported.",
        )),
        (Some(LaunchType::Fargate) | None, true) => Ok(None),
        (Some(other), true) => Err(ApiError::invalid_parameter(format!(
            "Launch type {other} is not supported: Berth runs tasks the Fargate way (launchType FARGATE)."
        ))),
        (None, false) => {
            for item in strategy {
                if item.capacity_provider != "FARGATE" && item.capacity_provider != "FARGATE_SPOT" {
                    return Err(ApiError::invalid_parameter(format!(
                        "The specified capacity provider {} was not found. Berth offers FARGATE and FARGATE_SPOT.",
                        item.capacity_provider
                    )));
                }
            }
            let best = strategy.iter().max_by_key(|i| (i.base.unwrap_or(0), i.weight.unwrap_or(0)));
            Ok(best.map(|i| i.capacity_provider.clone()))
        }
    }
}

pub async fn start(_call: &Call<'_>, _req: StartTaskRequest) -> Result<StartTaskResponse, ApiError> {
    Err(ApiError::invalid_parameter(
        "StartTask places tasks on container instances, which Fargate (and Berth) does not have. Use RunTask.",
    ))
}

pub async fn stop(call: &Call<'_>, req: StopTaskRequest) -> Result<StopTaskResponse, ApiError> {
    let task_arn = task_arn(call, req.cluster.as_deref(), &req.task)?;
    let reason = req.reason.filter(|r| !r.is_empty()).unwrap_or_else(|| "Task stopped by user".to_owned());
    let stopped = with_retry(|| async {
        let current = get(call, &task_arn).await?;
        let mut record = current.value;
        if record.task.desired_status.as_deref() == Some("STOPPED") {
            return Ok(Versioned { version: current.version, value: record });
        }
        let t = &mut record.task;
        t.desired_status = Some("STOPPED".into());
        t.stop_code = Some(TaskStopCode::UserInitiated);
        t.stopped_reason = Some(reason.clone());
        t.stopping_at = Some(now_epoch());
        t.version = Some(t.version.unwrap_or(1) + 1);
        Ok(call.store().put_task(&record, Some(current.version)).await?)
    })
    .await?;
    tracing::info!(task = %task_arn, "stop requested");
    Ok(StopTaskResponse { task: Some(stopped.value.task) })
}

pub async fn describe(call: &Call<'_>, req: DescribeTasksRequest) -> Result<DescribeTasksResponse, ApiError> {
    if req.tasks.is_empty() || req.tasks.len() > MAX_DESCRIBE {
        return Err(ApiError::invalid_parameter(format!(
            "tasks must name 1 to {MAX_DESCRIBE} tasks; {} were given.",
            req.tasks.len()
        )));
    }
    let with_tags = req.include.unwrap_or_default().contains(&TaskField::Tags);
    let arns = req.tasks.iter().map(|p| task_arn(call, req.cluster.as_deref(), p)).collect::<Result<Vec<_>, _>>()?;
    // One read for all of them, answered in the order asked.
    let mut found: std::collections::HashMap<String, Task> = call
        .store()
        .get_tasks(&arns)
        .await?
        .into_iter()
        .filter_map(|r| Some((r.value.task.task_arn.clone()?, r.value.task)))
        .collect();
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for arn in arns {
        match found.remove(&arn) {
            Some(mut t) => {
                if !with_tags {
                    t.tags = None;
                }
                tasks.push(t);
            }
            None if tasks.iter().any(|t: &Task| t.task_arn.as_deref() == Some(arn.as_str())) => {}
            None => failures.push(Failure { arn: Some(arn), reason: Some("MISSING".into()), detail: None }),
        }
    }
    Ok(DescribeTasksResponse { tasks: Some(tasks), failures: Some(failures) })
}

pub async fn list(call: &Call<'_>, req: ListTasksRequest) -> Result<ListTasksResponse, ApiError> {
    let limit = paging::limit(req.max_results)?;
    let after = paging::decode::<String>(req.next_token.as_deref())?;
    let cluster_name = arn::cluster_name(call.account(), req.cluster.as_deref())?;
    let cluster = clusters::active(call, &cluster_name).await?;
    if req.container_instance.is_some() || req.daemon_name.is_some() {
        // Fargate tasks run on no container instance and in no daemon.
        return Ok(ListTasksResponse { task_arns: Some(vec![]), next_token: None });
    }
    let filter = TaskFilter {
        cluster_arn: cluster.value.cluster_arn,
        family: req.family,
        started_by: req.started_by,
        group: req.service_name.map(|s| format!("service:{s}")),
        desired_status: Some(req.desired_status.unwrap_or_default().as_str().to_owned()),
        launch_type: req.launch_type.map(|l| l.as_str().to_owned()),
        node_id: None,
        live_only: false,
    };
    let rows = call.store().list_tasks(&filter, Page { after, limit: limit + 1 }).await?;
    let (rows, next_token) = paging::finish(rows, limit, |r| r.value.task.task_arn.clone().unwrap_or_default());
    Ok(ListTasksResponse {
        task_arns: Some(rows.into_iter().filter_map(|r| r.value.task.task_arn).collect()),
        next_token,
    })
}

/// A task named by ARN, or by id within `cluster` (default: `default`).
fn task_arn(call: &Call<'_>, cluster: Option<&str>, param: &str) -> Result<String, ApiError> {
    if param.starts_with("arn:") {
        return match ResourceArn::parse(call.account(), param)? {
            ResourceArn::Task { .. } => Ok(param.to_owned()),
            _ => Err(ApiError::invalid_parameter(format!("{param} is not a task ARN."))),
        };
    }
    if param.is_empty() || !param.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(ApiError::invalid_parameter(format!("Invalid task id '{param}'.")));
    }
    let cluster = arn::cluster_name(call.account(), cluster)?;
    Ok(call.account().task_arn(&cluster, param))
}

async fn get(call: &Call<'_>, task_arn: &str) -> Result<Versioned<TaskRecord>, ApiError> {
    call.store()
        .get_task(task_arn)
        .await?
        .ok_or_else(|| ApiError::invalid_parameter("The referenced task was not found."))
}
