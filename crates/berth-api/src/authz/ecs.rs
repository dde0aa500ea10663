//! What each ECS action asks of IAM (Service Authorization Reference,
//! "Actions defined by Amazon Elastic Container Service"): the resource
//! ARN, the `ecs:cluster` key of task and service actions, request tags,
//! the resources' own tags (`aws:ResourceTag/…`, from the store), and
//! `iam:PassRole` for the roles a call hands to ECS.

use berth_model::Account;
use berth_model::arn::{ResourceArn, cluster_name, task_definition_ref};
use berth_wire::ecs::{Action, Tag, TaskOverride};

use super::{ask, ask_any, with_tag_keys, with_tags};
use crate::caller::{Caller, IamRequest};
use crate::{Api, ApiError};

/// The task definition revision a call names, as the store has it: its
/// ARN (a bare family resolved to its latest ACTIVE revision) and roles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TaskDefinitionFacts {
    pub arn: String,
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
}

/// The requests of `action`, reading the task definition it names (for
/// its revision's ARN and the roles it passes) and the tags of the
/// resources it names (`aws:ResourceTag/…`). The root is allowed
/// everything: nothing is read for it.
pub(crate) async fn requests(api: &Api, caller: &Caller, action: &Action) -> Result<Vec<IamRequest>, ApiError> {
    if caller.is_root() {
        return Ok(Vec::new());
    }
    let named = match action {
        Action::RunTask(r) => Some(&r.task_definition),
        Action::StartTask(r) => Some(&r.task_definition),
        Action::CreateService(r) => r.task_definition.as_ref(),
        Action::UpdateService(r) => r.task_definition.as_ref(),
        _ => None,
    };
    let facts = match named {
        Some(param) => lookup(api, param).await?,
        None => None,
    };
    resource_tags(api, table(api.account(), action, facts.as_ref())).await
}

/// `aws:ResourceTag/KEY` and `ecs:ResourceTag/KEY` of each ECS resource a
/// request names, from the store; a request on several resources with
/// tags becomes one request per resource (each with its own tags).
async fn resource_tags(api: &Api, requests: Vec<IamRequest>) -> Result<Vec<IamRequest>, ApiError> {
    let mut out = Vec::with_capacity(requests.len());
    for r in requests {
        if !r.action.starts_with("ecs:") {
            out.push(r);
            continue;
        }
        let mut each = Vec::with_capacity(r.resources.len());
        for resource in &r.resources {
            each.push((resource.clone(), tags_of(api, resource).await?));
        }
        if each.iter().all(|(_, tags)| tags.is_empty()) {
            out.push(r);
            continue;
        }
        for (resource, tags) in each {
            let mut one = IamRequest { resources: vec![resource], ..r.clone() };
            for (k, v) in tags {
                one = one.key(&format!("aws:ResourceTag/{k}"), [v.clone()]).key(&format!("ecs:ResourceTag/{k}"), [v]);
            }
            out.push(one);
        }
    }
    Ok(out)
}

/// The tags of the cluster, task definition, task or service an ECS ARN
/// names (none for one the store does not have).
async fn tags_of(api: &Api, arn: &str) -> Result<Vec<(String, String)>, ApiError> {
    let wire = |tags: Option<Vec<Tag>>| -> Vec<(String, String)> {
        tags.into_iter().flatten().filter_map(|t| Some((t.key?, t.value.unwrap_or_default()))).collect()
    };
    let model = |tags: Vec<berth_model::task::Tag>| tags.into_iter().map(|t| (t.key, t.value)).collect();
    let store = api.store.as_ref();
    Ok(match ResourceArn::parse(api.account(), arn) {
        Ok(ResourceArn::Cluster { name }) => store.get_cluster(&name).await?.map(|c| wire(c.value.tags)).unwrap_or_default(),
        Ok(ResourceArn::TaskDefinition { family, revision }) => {
            store.get_task_definition(&family, revision).await?.map(|t| wire(Some(t.value.tags))).unwrap_or_default()
        }
        Ok(ResourceArn::Task { .. }) => store.get_task(arn).await?.map(|t| model(t.value.tags)).unwrap_or_default(),
        Ok(ResourceArn::Service { .. }) => store.get_service(arn).await?.map(|s| model(s.value.tags)).unwrap_or_default(),
        Err(_) => Vec::new(),
    })
}

async fn lookup(api: &Api, param: &str) -> Result<Option<TaskDefinitionFacts>, ApiError> {
    let Ok((family, revision)) = task_definition_ref(api.account(), param) else { return Ok(None) };
    let record = match revision {
        Some(rev) => api.store.get_task_definition(&family, rev).await?,
        None => api.store.latest_active_task_definition(&family).await?,
    };
    Ok(record.map(|r| {
        let d = r.value.definition;
        TaskDefinitionFacts {
            arn: d.task_definition_arn.unwrap_or_else(|| task_definition_arn(api.account(), param)),
            task_role_arn: d.task_role_arn,
            execution_role_arn: d.execution_role_arn,
        }
    }))
}

/// The table: action → requests. `td` is the task definition the action
/// names, when the store has it.
pub(crate) fn table(account: &Account, action: &Action, td: Option<&TaskDefinitionFacts>) -> Vec<IamRequest> {
    let op = action.name();
    let ecs = |resources: Vec<String>| ask("ecs", op, resources);
    let td_arn = |param: &str| td.map_or_else(|| task_definition_arn(account, param), |t| t.arn.clone());
    let td_roles = || td.map(|t| [t.task_role_arn.clone(), t.execution_role_arn.clone()]).unwrap_or_default();
    match action {
        Action::CreateCluster(r) => vec![tagged(ask_any("ecs", op), r.tags.iter().flatten())],
        Action::DescribeClusters(r) => {
            let names = r.clusters.clone().unwrap_or_else(|| vec![String::new()]);
            vec![ecs(names.iter().map(|c| cluster_arn(account, Some(c))).collect())]
        }
        Action::UpdateCluster(r) => vec![ecs(vec![cluster_arn(account, Some(&r.cluster))])],
        Action::UpdateClusterSettings(r) => vec![ecs(vec![cluster_arn(account, Some(&r.cluster))])],
        Action::PutClusterCapacityProviders(r) => vec![ecs(vec![cluster_arn(account, Some(&r.cluster))])],
        Action::DeleteCluster(r) => vec![ecs(vec![cluster_arn(account, Some(&r.cluster))])],
        Action::RegisterTaskDefinition(r) => {
            let mut out = vec![tagged(ask_any("ecs", op), r.tags.iter().flatten())];
            out.extend(pass_roles([r.task_role_arn.clone(), r.execution_role_arn.clone()]));
            out
        }
        Action::DeleteTaskDefinitions(r) => vec![ecs(r.task_definitions.iter().map(|t| task_definition_arn(account, t)).collect())],
        Action::RunTask(r) => {
            let mut out = launch(account, op, td_arn(&r.task_definition), r.cluster.as_deref(), r.tags.iter().flatten(), r.overrides.as_ref(), td);
            if let Some(exec) = r.enable_execute_command {
                out[0] = out[0].clone().key("ecs:enable-execute-command", [exec.to_string()]);
            }
            let providers: Vec<String> = r.capacity_provider_strategy.iter().flatten().map(|s| s.capacity_provider.clone()).collect();
            if !providers.is_empty() {
                out[0] = out[0].clone().key("ecs:capacity-provider", providers);
            }
            out
        }
        Action::StartTask(r) => {
            let mut out = launch(account, op, td_arn(&r.task_definition), r.cluster.as_deref(), r.tags.iter().flatten(), r.overrides.as_ref(), td);
            out[0] = out[0].clone().key("ecs:container-instances", r.container_instances.iter().cloned());
            out
        }
        Action::StopTask(r) => vec![in_cluster(ecs(vec![task_arn(account, r.cluster.as_deref(), &r.task)]), account, r.cluster.as_deref())],
        Action::DescribeTasks(r) => {
            let tasks = r.tasks.iter().map(|t| task_arn(account, r.cluster.as_deref(), t)).collect();
            vec![in_cluster(ecs(tasks), account, r.cluster.as_deref())]
        }
        Action::ListTasks(r) => vec![in_cluster(ask_any("ecs", op), account, r.cluster.as_deref())],
        Action::ListServices(r) => vec![in_cluster(ask_any("ecs", op), account, r.cluster.as_deref())],
        Action::CreateService(r) => {
            let service = service_arn(account, r.cluster.as_deref(), &r.service_name);
            let mut create = tagged(in_cluster(ecs(vec![service]), account, r.cluster.as_deref()), r.tags.iter().flatten());
            if let Some(t) = &r.task_definition {
                create = create.key("ecs:task-definition", [td_arn(t)]);
            }
            let [task_role, exec_role] = td_roles();
            let mut out = vec![create];
            out.extend(pass_roles([task_role, exec_role, r.role.clone()]));
            out
        }
        Action::UpdateService(r) => {
            let service = service_arn(account, r.cluster.as_deref(), &r.service);
            let mut update = in_cluster(ecs(vec![service]), account, r.cluster.as_deref());
            if let Some(t) = &r.task_definition {
                update = update.key("ecs:task-definition", [td_arn(t)]);
            }
            let [task_role, exec_role] = td_roles();
            let mut out = vec![update];
            out.extend(pass_roles([task_role, exec_role]));
            out
        }
        Action::DeleteService(r) => {
            vec![in_cluster(ecs(vec![service_arn(account, r.cluster.as_deref(), &r.service)]), account, r.cluster.as_deref())]
        }
        Action::DescribeServices(r) => {
            let services = r.services.iter().map(|s| service_arn(account, r.cluster.as_deref(), s)).collect();
            vec![in_cluster(ecs(services), account, r.cluster.as_deref())]
        }
        Action::ListServiceDeployments(r) => {
            vec![in_cluster(ecs(vec![service_arn(account, r.cluster.as_deref(), &r.service)]), account, r.cluster.as_deref())]
        }
        Action::DescribeServiceDeployments(r) => vec![ecs(r.service_deployment_arns.clone())],
        Action::DescribeServiceRevisions(r) => vec![ecs(r.service_revision_arns.clone())],
        Action::StopServiceDeployment(r) => vec![ecs(vec![r.service_deployment_arn.clone()])],
        Action::TagResource(r) => vec![tagged(ecs(vec![r.resource_arn.clone()]), &r.tags)],
        Action::UntagResource(r) => vec![with_tag_keys(ecs(vec![r.resource_arn.clone()]), &r.tag_keys)],
        Action::ListTagsForResource(r) => vec![ecs(vec![r.resource_arn.clone()])],
        // ListClusters, DescribeTaskDefinition, ListTaskDefinitions,
        // ListTaskDefinitionFamilies, DeregisterTaskDefinition,
        // DescribeCapacityProviders, ListServicesByNamespace, …: no
        // resource type.
        _ => vec![ask_any("ecs", op)],
    }
}

/// RunTask and StartTask: the task definition revision in a cluster,
/// with the request's tags, and `iam:PassRole` for the task's roles (the
/// overrides', else the definition's).
fn launch<'t>(
    account: &Account,
    op: &str,
    td_arn: String,
    cluster: Option<&str>,
    tags: impl IntoIterator<Item = &'t Tag>,
    overrides: Option<&TaskOverride>,
    td: Option<&TaskDefinitionFacts>,
) -> Vec<IamRequest> {
    let mut out = vec![tagged(in_cluster(ask("ecs", op, [td_arn]), account, cluster), tags)];
    out.extend(pass_roles([
        overrides.and_then(|o| o.task_role_arn.clone()).or_else(|| td.and_then(|t| t.task_role_arn.clone())),
        overrides.and_then(|o| o.execution_role_arn.clone()).or_else(|| td.and_then(|t| t.execution_role_arn.clone())),
    ]));
    out
}

fn tagged<'t>(r: IamRequest, tags: impl IntoIterator<Item = &'t Tag>) -> IamRequest {
    let tags = tags.into_iter().filter_map(|t| Some((t.key.as_deref()?, t.value.as_deref().unwrap_or(""))));
    with_tags(r, tags)
}

/// The `ecs:cluster` key: the ARN of the cluster the call names.
fn in_cluster(r: IamRequest, account: &Account, cluster: Option<&str>) -> IamRequest {
    r.key("ecs:cluster", [cluster_arn(account, cluster)])
}

/// `iam:PassRole` on each role handed to ECS tasks.
fn pass_roles(roles: impl IntoIterator<Item = Option<String>>) -> Vec<IamRequest> {
    let mut roles: Vec<String> = roles.into_iter().flatten().filter(|r| !r.is_empty()).collect();
    roles.sort();
    roles.dedup();
    roles
        .into_iter()
        .map(|role| ask("iam", "PassRole", [role]).key("iam:PassedToService", ["ecs-tasks.amazonaws.com".to_owned()]))
        .collect()
}

/// A cluster name or ARN (none: `default`) as its ARN.
fn cluster_arn(account: &Account, param: Option<&str>) -> String {
    match cluster_name(account, param) {
        Ok(name) => account.cluster_arn(&name),
        Err(_) => param.unwrap_or_default().to_owned(),
    }
}

/// A task definition `family:revision` or ARN as its ARN; a bare family
/// (not in the store) as `task-definition/FAMILY`.
fn task_definition_arn(account: &Account, param: &str) -> String {
    match task_definition_ref(account, param) {
        Ok((family, Some(rev))) => account.task_definition_arn(&family, rev),
        Ok((family, None)) => format!("{}:task-definition/{family}", account.prefix()),
        Err(_) => param.to_owned(),
    }
}

/// A task id or ARN as its ARN (ECS's format: `task/CLUSTER/ID`).
fn task_arn(account: &Account, cluster: Option<&str>, param: &str) -> String {
    if param.starts_with("arn:") {
        return param.to_owned();
    }
    let cluster = cluster_name(account, cluster).unwrap_or_default();
    account.task_arn(&cluster, param)
}

/// A service name or ARN as its ARN (`service/CLUSTER/NAME`).
fn service_arn(account: &Account, cluster: Option<&str>, param: &str) -> String {
    if param.starts_with("arn:") {
        return match ResourceArn::parse(account, param) {
            Ok(ResourceArn::Service { cluster, name }) => account.service_arn(&cluster, &name),
            _ => param.to_owned(),
        };
    }
    let cluster = cluster_name(account, cluster).unwrap_or_default();
    account.service_arn(&cluster, param)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::tests::account;

    fn parse(op: &str, json: &str) -> Action {
        match Action::parse(op, json.as_bytes()) {
            Ok(Some(a)) => a,
            other => panic!("{op}: {other:?}"),
        }
    }

    fn one(r: &IamRequest) -> (&str, Vec<&str>) {
        (r.action.as_str(), r.resources.iter().map(String::as_str).collect())
    }

    fn key<'r>(r: &'r IamRequest, k: &str) -> Vec<&'r str> {
        r.keys.get(k).map(|v| v.iter().map(String::as_str).collect()).unwrap_or_default()
    }

    #[test]
    fn run_task_names_the_revision_the_cluster_and_the_roles() {
        let a = account();
        let td = TaskDefinitionFacts {
            arn: "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3".into(),
            task_role_arn: Some("arn:aws:iam::123456789012:role/app".into()),
            execution_role_arn: Some("arn:aws:iam::123456789012:role/exec".into()),
        };
        let run = parse("RunTask", r#"{"cluster":"prod","taskDefinition":"web","tags":[{"key":"team","value":"a"}]}"#);
        let out = table(&a, &run, Some(&td));
        assert_eq!(one(&out[0]), ("ecs:RunTask", vec!["arn:aws:ecs:us-east-1:123456789012:task-definition/web:3"]));
        assert_eq!(key(&out[0], "ecs:cluster"), vec!["arn:aws:ecs:us-east-1:123456789012:cluster/prod"]);
        assert_eq!(key(&out[0], "aws:requesttag/team"), vec!["a"]);
        assert_eq!(key(&out[0], "aws:tagkeys"), vec!["team"]);
        assert_eq!(out.len(), 3);
        assert_eq!(one(&out[1]), ("iam:PassRole", vec!["arn:aws:iam::123456789012:role/app"]));
        assert_eq!(one(&out[2]), ("iam:PassRole", vec!["arn:aws:iam::123456789012:role/exec"]));
        assert_eq!(key(&out[1], "iam:passedtoservice"), vec!["ecs-tasks.amazonaws.com"]);

        // overrides replace the definition's roles; no cluster is `default`
        let run = parse("RunTask", r#"{"taskDefinition":"web:3","overrides":{"taskRoleArn":"arn:aws:iam::123456789012:role/other"}}"#);
        let out = table(&a, &run, Some(&TaskDefinitionFacts { task_role_arn: Some("arn:aws:iam::123456789012:role/app".into()), ..td.clone() }));
        assert_eq!(key(&out[0], "ecs:cluster"), vec!["arn:aws:ecs:us-east-1:123456789012:cluster/default"]);
        assert_eq!(out.iter().skip(1).map(|r| r.resources[0].as_str()).collect::<Vec<_>>(), ["arn:aws:iam::123456789012:role/exec", "arn:aws:iam::123456789012:role/other"]);

        // a definition without roles passes none; an unknown one is named as given
        let out = table(&a, &parse("RunTask", r#"{"taskDefinition":"web:7"}"#), None);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].resources, ["arn:aws:ecs:us-east-1:123456789012:task-definition/web:7"]);
    }

    #[test]
    fn tasks_and_services_carry_their_cluster() {
        let a = account();
        let out = table(&a, &parse("DescribeTasks", r#"{"cluster":"arn:aws:ecs:us-east-1:123456789012:cluster/prod","tasks":["0123abcd"]}"#), None);
        assert_eq!(one(&out[0]), ("ecs:DescribeTasks", vec!["arn:aws:ecs:us-east-1:123456789012:task/prod/0123abcd"]));
        assert_eq!(key(&out[0], "ecs:cluster"), vec!["arn:aws:ecs:us-east-1:123456789012:cluster/prod"]);
        let out = table(&a, &parse("StopTask", r#"{"task":"arn:aws:ecs:us-east-1:123456789012:task/dev/ff"}"#), None);
        assert_eq!(out[0].resources, ["arn:aws:ecs:us-east-1:123456789012:task/dev/ff"]);
        let out = table(&a, &parse("CreateService", r#"{"cluster":"prod","serviceName":"web","taskDefinition":"web:1","role":"arn:aws:iam::123456789012:role/lb"}"#), None);
        assert_eq!(one(&out[0]), ("ecs:CreateService", vec!["arn:aws:ecs:us-east-1:123456789012:service/prod/web"]));
        assert_eq!(key(&out[0], "ecs:task-definition"), vec!["arn:aws:ecs:us-east-1:123456789012:task-definition/web:1"]);
        assert_eq!(one(&out[1]), ("iam:PassRole", vec!["arn:aws:iam::123456789012:role/lb"]));
        let out = table(&a, &parse("ListTasks", r#"{"cluster":"prod"}"#), None);
        assert_eq!(one(&out[0]), ("ecs:ListTasks", vec!["*"]));
        assert_eq!(key(&out[0], "ecs:cluster"), vec!["arn:aws:ecs:us-east-1:123456789012:cluster/prod"]);
    }

    #[test]
    fn clusters_definitions_and_tags() {
        let a = account();
        assert_eq!(one(&table(&a, &parse("ListClusters", "{}"), None)[0]), ("ecs:ListClusters", vec!["*"]));
        let out = table(&a, &parse("DescribeClusters", "{}"), None);
        assert_eq!(out[0].resources, ["arn:aws:ecs:us-east-1:123456789012:cluster/default"]);
        let out = table(&a, &parse("DeleteCluster", r#"{"cluster":"prod"}"#), None);
        assert_eq!(one(&out[0]), ("ecs:DeleteCluster", vec!["arn:aws:ecs:us-east-1:123456789012:cluster/prod"]));
        let out = table(&a, &parse("CreateCluster", r#"{"clusterName":"x","tags":[{"key":"env","value":"prod"}]}"#), None);
        assert_eq!(key(&out[0], "aws:requesttag/env"), vec!["prod"]);
        let reg = parse(
            "RegisterTaskDefinition",
            r#"{"family":"web","containerDefinitions":[],"taskRoleArn":"arn:aws:iam::123456789012:role/app","executionRoleArn":"arn:aws:iam::123456789012:role/app"}"#,
        );
        let out = table(&a, &reg, None);
        assert_eq!(out.iter().map(one).collect::<Vec<_>>(), [("ecs:RegisterTaskDefinition", vec!["*"]), ("iam:PassRole", vec!["arn:aws:iam::123456789012:role/app"])]);
        let out = table(&a, &parse("UntagResource", r#"{"resourceArn":"arn:aws:ecs:us-east-1:123456789012:cluster/x","tagKeys":["a","b"]}"#), None);
        assert_eq!(key(&out[0], "aws:tagkeys"), vec!["a", "b"]);
    }
}
