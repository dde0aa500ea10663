//! RunTask, StartTask (refused, as on Fargate), StopTask, DescribeTasks,
//! ListTasks.
//!
//! RunTask builds the tasks and hands them to `berth_control::placement`,
//! which plans on a snapshot of the nodes and commits each placement
//! through the store's applier (re-checking the node's capacity in the
//! same transaction). A task that no node can take is returned in
//! `failures` with ECS's reason and nothing is stored for it.

use berth_control::placement::{self, Commit, PlacementTarget};
use berth_control::scheduler::{self, Demand, Snapshot};
use berth_model::arn::{self, ResourceArn};
use berth_model::capacity;
use berth_model::lifecycle::DesiredStatus;
use berth_model::service::CapacityProviderItem;
use berth_model::network::{self, AwsVpcRequest};
use berth_model::task::{self as new_task, NewTask, StopCode};
use berth_model::tags;
use berth_store::{NodeUsage, Page, Store, StoreError, TaskFilter, Versioned};
use berth_wire::ecs::{
    DesiredStatus as WireDesiredStatus,
    AwsVpcConfiguration, CapacityProviderStrategyItem, DescribeTasksRequest, DescribeTasksResponse, Failure, LaunchType, ListTasksRequest,
    ListTasksResponse, NetworkMode, PropagateTags, RunTaskRequest, RunTaskResponse, StartTaskRequest, StartTaskResponse,
    StopTaskRequest, StopTaskResponse, TaskDefinitionStatus, TaskField,
};

use super::{Call, clusters, convert, now_epoch, task_definitions, with_retry};
use crate::{ApiError, paging};

/// DescribeTasks takes at most this many tasks per call.
const MAX_DESCRIBE: usize = 100;

pub async fn run(call: &Call<'_>, req: RunTaskRequest) -> Result<RunTaskResponse, ApiError> {
    let count = req.count.unwrap_or(1);
    if !(1..=new_task::MAX_COUNT).contains(&count) {
        return Err(ApiError::invalid_parameter(format!(
            "count must be between 1 and {}; {count} was given.",
            new_task::MAX_COUNT
        )));
    }
    check_capacity(req.launch_type, req.capacity_provider_strategy.as_deref().unwrap_or_default())?;
    let cluster = match req.cluster.as_deref() {
        None | Some("") => clusters::ensure_default(call).await?,
        Some(p) => clusters::active(call, &arn::cluster_name(call.account(), Some(p))?).await?,
    };
    let cluster_name = cluster.value.cluster_name.clone().unwrap_or_default();
    let strategy =
        run_strategy(&cluster.value, req.launch_type, req.capacity_provider_strategy.as_deref().unwrap_or_default())?;
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

    let cluster_arn = cluster.value.cluster_arn.clone().unwrap_or_default();
    let token = match req.client_token.as_deref() {
        Some(token) => match client_token::claim(call, &cluster_arn, token, &req).await? {
            client_token::Claim::Run => Some(token),
            client_token::Claim::Done(response) => return Ok(response),
        },
        None => None,
    };
    // With a token, the tasks' ids are the token's: a retry after a
    // server died between placing them and settling the token makes no
    // second set (it finds the first and places only what is missing).
    let count = usize::try_from(count).unwrap_or(1);
    let (ids, found) = match token {
        Some(token) => {
            let ids = client_token::task_ids(&cluster_arn, token, &client_token::digest(&req)?, count);
            let arns: Vec<String> = ids.iter().map(|id| call.account().task(&cluster_name, id).to_string()).collect();
            (ids, call.store().get_tasks(&arns).await?)
        }
        None => ((0..count).map(|_| uuid::Uuid::new_v4().simple().to_string()).collect(), Vec::new()),
    };
    // Base first, then by weight, over this call's tasks (a retry gives
    // each missing task the provider the first attempt would have).
    let providers = capacity::assign(&strategy, &[], u32::try_from(count).unwrap_or(1));
    let missing: Vec<(String, Option<&str>)> = ids
        .into_iter()
        .enumerate()
        .filter(|(_, id)| !found.iter().any(|t| t.value.id() == id))
        .map(|(i, id)| (id, providers.get(i).map(|p| strategy[*p].capacity_provider.as_str())))
        .collect();
    let result = if missing.is_empty() {
        Ok(RunTaskResponse { tasks: Some(Vec::new()), failures: Some(Vec::new()) })
    } else {
        launch(call, &req, &missing, &cluster_name, &definition, network, &task_tags).await
    };
    let result = result.map(|mut r| {
        if !found.is_empty() {
            tracing::info!(cluster = %cluster_name, found = found.len(), "run task: a retry found the tasks its token placed");
            let mut tasks: Vec<_> = found.iter().map(|t| convert::task(&t.value, t.version)).collect();
            tasks.extend(r.tasks.take().unwrap_or_default());
            r.tasks = Some(tasks);
        }
        r
    });
    if let Some(token) = token {
        let placed: Option<Vec<String>> = match &result {
            Ok(r) => Some(r.tasks.iter().flatten().filter_map(|t| t.task_arn.clone()).collect()),
            Err(_) => None,
        };
        // A request that placed nothing (or failed) frees its token: a retry runs.
        let placed = placed.filter(|arns| !arns.is_empty());
        call.store().settle_client_token(&cluster_arn, token, placed.as_deref()).await?;
    }
    result
}

/// Builds the `count` tasks and places them.
#[allow(clippy::too_many_arguments)]
async fn launch(
    call: &Call<'_>,
    req: &RunTaskRequest,
    ids: &[(String, Option<&str>)],
    cluster_name: &str,
    definition: &berth_model::records::TaskDefinitionRecord,
    network: Option<network::TaskNetwork>,
    task_tags: &[berth_wire::ecs::Tag],
) -> Result<RunTaskResponse, ApiError> {
    let now = now_epoch();
    let overrides = convert::overrides_from_wire(req.overrides.as_ref());
    let mut new_tasks = Vec::new();
    for (id, capacity_provider) in ids {
        new_tasks.push(new_task::build(NewTask {
            account: call.account(),
            cluster_name,
            id,
            definition: &definition.definition,
            overrides: overrides.clone(),
            started_by: req.started_by.as_deref(),
            group: req.group.as_deref(),
            tags: convert::tags_from_wire(task_tags),
            enable_execute_command: req.enable_execute_command.unwrap_or(false),
            capacity_provider: *capacity_provider,
            // Security groups as resolved (the default group when none was given).
            network: network.clone().map(|net| (net, uuid::Uuid::new_v4().to_string())),
            now,
        })?);
    }
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for outcome in placement::apply(&StoreTarget(call.store()), new_tasks).await? {
        match outcome {
            Ok(placed) => tasks.push(convert::task(&placed.value, placed.version)),
            Err(shortage) => failures.push(Failure { arn: None, reason: Some(shortage.reason().into()), detail: None }),
        }
    }
    tracing::info!(cluster = %cluster_name, placed = tasks.len(), failed = failures.len(), "run task");
    Ok(RunTaskResponse { tasks: Some(tasks), failures: Some(failures) })
}

/// RunTask's `clientToken` (ECS's idempotency): per cluster, for 24
/// hours; a retry with the same token and parameters gets the first
/// request's tasks, one with other parameters a ConflictException.
mod client_token {
    use std::time::Duration;

    use berth_store::{TokenClaim, TokenHolder};
    use berth_wire::ecs::{RunTaskRequest, RunTaskResponse};
    use sha2::Digest as _;

    use super::super::{Call, convert};
    use crate::ApiError;

    /// ECS keeps a RunTask client token this long.
    const TTL_SECS: i64 = 24 * 60 * 60;
    /// A claim unsettled this long belongs to a request whose server died.
    const PENDING_SECS: i64 = 60;
    const MAX_LEN: usize = 64;

    pub(super) enum Claim {
        /// This request holds the token: run, then settle it.
        Run,
        /// An earlier request with this token and these parameters ran.
        Done(RunTaskResponse),
    }

    /// Up to 64 ASCII characters from 33 to 126, as ECS takes them.
    pub(super) fn check(token: &str) -> Result<(), ApiError> {
        if token.is_empty() || token.len() > MAX_LEN || !token.bytes().all(|b| (33..=126).contains(&b)) {
            return Err(ApiError::invalid_parameter(format!(
                "Invalid clientToken: give 1 to {MAX_LEN} ASCII characters between '!' and '~' (no spaces); \
                 {} characters were given.",
                token.chars().count()
            )));
        }
        Ok(())
    }

    /// The ids of the `count` tasks a RunTask with `token` makes: the
    /// same for a retry of the same request, so a retry after a crash
    /// finds the tasks the first attempt placed. (A token is kept 24 h;
    /// its reuse after that, with the same parameters, finds the old
    /// tasks if they are still stored.)
    pub(super) fn task_ids(cluster_arn: &str, token: &str, digest: &str, count: usize) -> Vec<String> {
        (0..count)
            .map(|i| {
                let seed = format!("{cluster_arn}\n{token}\n{digest}\n{i}");
                hex::encode(&sha2::Sha256::digest(seed.as_bytes())[..16])
            })
            .collect()
    }

    /// The request's parameters without its token, as a digest.
    pub(super) fn digest(req: &RunTaskRequest) -> Result<String, ApiError> {
        let bare = RunTaskRequest { client_token: None, ..req.clone() };
        let body = serde_json::to_vec(&bare).map_err(berth_store::StoreError::Corrupt)?;
        Ok(hex::encode(sha2::Sha256::digest(&body)))
    }

    pub(super) async fn claim(
        call: &Call<'_>,
        cluster_arn: &str,
        token: &str,
        req: &RunTaskRequest,
    ) -> Result<Claim, ApiError> {
        check(token)?;
        let digest = digest(req)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(u64::try_from(PENDING_SECS).unwrap_or(60) + 5);
        loop {
            let now = super::now_epoch() as i64;
            let held = call
                .store()
                .claim_client_token(&TokenClaim {
                    cluster_arn,
                    token,
                    digest: &digest,
                    now,
                    ttl_secs: TTL_SECS,
                    pending_secs: PENDING_SECS,
                })
                .await?;
            match held {
                TokenHolder::Claimed => return Ok(Claim::Run),
                TokenHolder::Taken { same_request: false, task_arns } => {
                    return Err(ApiError::Conflict {
                        message: format!(
                            "The clientToken '{token}' is already in use with a different RunTask request in this \
                             cluster. Run RunTask with a new clientToken, or with this one and the original \
                             parameters."
                        ),
                        resource_ids: task_arns.unwrap_or_default(),
                    });
                }
                TokenHolder::Taken { same_request: true, task_arns: Some(arns) } => {
                    let tasks = call.store().get_tasks(&arns).await?;
                    let tasks = tasks.iter().map(|t| convert::task(&t.value, t.version)).collect();
                    return Ok(Claim::Done(RunTaskResponse { tasks: Some(tasks), failures: Some(vec![]) }));
                }
                // The first request is still placing its tasks: wait for it
                // (or, should its server have died, for its claim to lapse).
                TokenHolder::Taken { same_request: true, task_arns: None } => {
                    if std::time::Instant::now() > deadline {
                        return Err(ApiError::ecs(
                            "ServerException",
                            "An earlier RunTask request with this clientToken is still placing its tasks. \
                             Retry the request.",
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_tokens_task_ids_are_its_own_and_stable() {
            let a = task_ids("arn:c", "t", "d", 3);
            assert_eq!(a, task_ids("arn:c", "t", "d", 3), "a retry makes the same ids");
            assert_eq!(a.len(), 3);
            assert!(a.iter().all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())));
            assert_eq!(a.iter().collect::<std::collections::BTreeSet<_>>().len(), 3);
            for other in [task_ids("arn:c2", "t", "d", 1), task_ids("arn:c", "t2", "d", 1), task_ids("arn:c", "t", "d2", 1)] {
                assert!(!a.contains(&other[0]));
            }
        }

        #[test]
        fn tokens_are_1_to_64_printable_ascii_characters() {
            for ok in ["a", "!~", &"x".repeat(64), "9f1c2e0a-1b2c-4d5e-8f90-0123456789ab"] {
                assert!(check(ok).is_ok(), "{ok}");
            }
            for bad in ["", "with space", &"x".repeat(65), "tab\there", "é"] {
                let err = check(bad).unwrap_err();
                assert_eq!(err.aws_type(), "InvalidParameterException", "{bad:?}");
            }
        }

        #[test]
        fn the_digest_ignores_the_token_and_nothing_else() {
            let req = |token: &str, count: i32| RunTaskRequest {
                task_definition: "web:1".into(),
                client_token: Some(token.into()),
                count: Some(count),
                ..Default::default()
            };
            assert_eq!(digest(&req("a", 1)).unwrap(), digest(&req("b", 1)).unwrap());
            assert_ne!(digest(&req("a", 1)).unwrap(), digest(&req("a", 2)).unwrap());
        }
    }
}

/// RunTask's `awsvpcConfiguration` against Berth's subnets and security groups.
pub(super) async fn resolve_network(call: &Call<'_>, awsvpc: &AwsVpcConfiguration) -> Result<network::TaskNetwork, ApiError> {
    let subnets: Vec<String> = call.store().list_subnets().await?.into_iter().map(|v| v.value.id).collect();
    let groups: Vec<String> = call.store().list_security_groups().await?.into_iter().map(|v| v.value.id).collect();
    let request = AwsVpcRequest {
        subnets: awsvpc.subnets.clone(),
        security_groups: awsvpc.security_groups.clone(),
        assign_public_ip: awsvpc.assign_public_ip.map(|a| a.as_str().to_owned()),
    };
    let net = network::resolve_awsvpc(&request, |s| subnets.iter().any(|k| k == s), |g| groups.iter().any(|k| k == g))?;
    Ok(net)
}

/// The store as the placement applier's target.
pub(crate) struct StoreTarget<'a>(pub &'a dyn Store);

impl PlacementTarget for StoreTarget<'_> {
    type Placed = Versioned<new_task::Task>;
    type Error = StoreError;

    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let now = now_epoch() as i64;
        let nodes = self.0.list_nodes().await?;
        Ok(Snapshot { nodes: nodes.iter().map(|u| as_scheduler_node(u, now)).collect() })
    }

    async fn commit(&self, task: &new_task::Task, node_id: &str, demand: Demand) -> Result<Commit<Self::Placed>, StoreError> {
        let now = now_epoch() as i64;
        let fits = move |u: &NodeUsage| scheduler::fits(&as_scheduler_node(u, now), demand);
        match self.0.place_task(task, node_id, &fits).await {
            Ok(placed) => Ok(Commit::Placed(placed)),
            Err(StoreError::Rejected | StoreError::NotFound(_)) => Ok(Commit::NoRoom),
            Err(e) => Err(e),
        }
    }
}

fn as_scheduler_node(u: &NodeUsage, now: i64) -> scheduler::Node {
    scheduler::Node {
        id: u.node.id.clone(),
        zone: u.node.zone.clone(),
        cpu_total: u.node.cpu,
        memory_total: u.node.memory,
        cpu_used: u.cpu_used,
        memory_used: u.memory_used,
        tasks: u.tasks,
        schedulable: u.node.schedulable(now),
        spot: scheduler::SpotPool {
            cpu_total: u.node.spot_cpu,
            memory_total: u.node.spot_memory,
            cpu_used: u.spot_cpu_used,
            memory_used: u.spot_memory_used,
        },
    }
}

/// The strategy RunTask's tasks are split by: the request's, else the
/// cluster's default (none for launchType FARGATE, or when neither is
/// given). Checked as ECS checks it, against the providers associated
/// with the cluster.
fn run_strategy(
    cluster: &berth_wire::ecs::Cluster,
    launch_type: Option<LaunchType>,
    strategy: &[CapacityProviderStrategyItem],
) -> Result<Vec<CapacityProviderItem>, ApiError> {
    check_capacity(launch_type, strategy)?;
    let associated = cluster.capacity_providers.clone().unwrap_or_default();
    if !strategy.is_empty() {
        let items = convert::strategy_from_wire(strategy);
        capacity::validate_strategy(&items, Some(&associated))?;
        return Ok(items);
    }
    if launch_type.is_some() {
        return Ok(Vec::new());
    }
    Ok(convert::strategy_from_wire(cluster.default_capacity_provider_strategy.as_deref().unwrap_or_default()))
}

/// A launch type or capacity provider strategy Berth can honour: launch
/// type FARGATE, or a strategy of Fargate's providers (never both).
pub(super) fn check_capacity(
    launch_type: Option<LaunchType>,
    strategy: &[CapacityProviderStrategyItem],
) -> Result<(), ApiError> {
    match (launch_type, strategy.is_empty()) {
        (Some(_), false) => Err(ApiError::invalid_parameter(
            "Specifying both a launchType and capacityProviderStrategy is not supported.",
        )),
        (Some(LaunchType::Fargate) | None, true) => Ok(()),
        (Some(other), true) => Err(ApiError::invalid_parameter(format!(
            "Launch type {other} is not supported: Berth runs tasks the Fargate way (launchType FARGATE)."
        ))),
        (None, false) => {
            for item in strategy {
                let name = &item.capacity_provider;
                if item.weight.is_some_and(|w| w < 0) || item.base.is_some_and(|b| b < 0) {
                    return Err(ApiError::invalid_parameter(format!(
                        "The base and weight of capacity provider {name} cannot be negative."
                    )));
                }
            }
            capacity::validate_strategy(&convert::strategy_from_wire(strategy), None)?;
            Ok(())
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
        let mut current = get(call, &task_arn).await?;
        if !current.value.request_stop(StopCode::UserInitiated, &reason, now_epoch()) {
            return Ok(current);
        }
        Ok(call.store().put_task(&current.value, Some(current.version)).await?)
    })
    .await?;
    tracing::info!(task = %task_arn, "stop requested");
    Ok(StopTaskResponse { task: Some(convert::task(&stopped.value, stopped.version)) })
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
    let mut found: std::collections::HashMap<String, Versioned<new_task::Task>> =
        call.store().get_tasks(&arns).await?.into_iter().map(|r| (r.value.arn.to_string(), r)).collect();
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    let mut answered = std::collections::HashSet::new();
    for arn in arns {
        match found.remove(&arn) {
            Some(r) => {
                let mut t = convert::task(&r.value, r.version);
                if !with_tags {
                    t.tags = None;
                }
                answered.insert(arn);
                tasks.push(t);
            }
            None if answered.contains(&arn) => {}
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
    // Tasks are only ever wanted RUNNING or STOPPED: ECS lists none for PENDING.
    let desired_status = match req.desired_status.unwrap_or_default() {
        WireDesiredStatus::Running => DesiredStatus::Running,
        WireDesiredStatus::Stopped => DesiredStatus::Stopped,
        WireDesiredStatus::Pending => return Ok(ListTasksResponse { task_arns: Some(vec![]), next_token: None }),
    };
    if let Some(name) = &req.service_name {
        let service = call.account().service(&cluster_name, name).to_string();
        if call.store().get_service(&service).await?.is_none() {
            return Err(ApiError::ecs("ServiceNotFoundException", "Service not found."));
        }
    }
    let filter = TaskFilter {
        cluster_arn: cluster.value.cluster_arn,
        family: req.family,
        started_by: req.started_by,
        group: req.service_name.map(|s| format!("service:{s}")),
        desired_status: Some(desired_status),
        launch_type: req.launch_type.map(|l| l.as_str().to_owned()),
        node_id: None,
        capacity_provider: None,
        live_only: false,
    };
    let rows = call.store().list_tasks(&filter, Page { after, limit: limit + 1 }).await?;
    let (rows, next_token) = paging::finish(rows, limit, |r| r.value.arn.to_string());
    Ok(ListTasksResponse {
        task_arns: Some(rows.into_iter().map(|r| r.value.arn.to_string()).collect()),
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

async fn get(call: &Call<'_>, task_arn: &str) -> Result<Versioned<new_task::Task>, ApiError> {
    call.store()
        .get_task(task_arn)
        .await?
        .ok_or_else(|| ApiError::invalid_parameter("The referenced task was not found."))
}
