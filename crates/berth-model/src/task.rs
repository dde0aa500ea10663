//! A new task from RunTask: its size, its overrides checked against its
//! task definition, and the ECS `Task` record it starts as.

use berth_wire::ecs::{Container, LaunchType, Tag, Task, TaskDefinition, TaskOverride};

use crate::lifecycle::TaskStatus;
use crate::records::TaskRecord;
use crate::{Account, ModelError, fargate};

/// RunTask starts at most this many tasks per call.
pub const MAX_COUNT: i32 = 10;

/// Everything a new task is made from, already resolved by the caller.
#[derive(Debug, Clone)]
pub struct NewTask<'a> {
    pub account: &'a Account,
    pub cluster_name: &'a str,
    /// 32 lowercase hex digits, as ECS task ids are.
    pub id: &'a str,
    pub definition: &'a TaskDefinition,
    pub overrides: Option<&'a TaskOverride>,
    pub started_by: Option<&'a str>,
    pub group: Option<&'a str>,
    pub tags: Vec<Tag>,
    pub enable_execute_command: bool,
    pub capacity_provider: Option<&'a str>,
    /// Seconds since the epoch.
    pub now: f64,
}

/// The task's size in CPU units and MiB: the overrides' if given (a valid
/// Fargate combination), else the task definition's.
pub fn size(definition: &TaskDefinition, overrides: Option<&TaskOverride>) -> Result<(u32, u32), ModelError> {
    let cpu = overrides.and_then(|o| o.cpu.as_deref()).or(definition.cpu.as_deref());
    let memory = overrides.and_then(|o| o.memory.as_deref()).or(definition.memory.as_deref());
    let (Some(cpu), Some(memory)) = (cpu, memory) else {
        return Err(ModelError::client(
            "The task needs task-level cpu and memory, in its task definition or in overrides.",
        ));
    };
    let (cpu, memory) = (fargate::parse_cpu(cpu)?, fargate::parse_memory(memory)?);
    fargate::check_size(cpu, memory)?;
    Ok((cpu, memory))
}

/// Checks overrides against the definition: every container override
/// names a container of it.
pub fn validate_overrides(definition: &TaskDefinition, overrides: Option<&TaskOverride>) -> Result<(), ModelError> {
    let names: Vec<&str> =
        definition.container_definitions.iter().flatten().filter_map(|c| c.name.as_deref()).collect();
    for o in overrides.and_then(|o| o.container_overrides.as_ref()).into_iter().flatten() {
        match o.name.as_deref() {
            Some(n) if names.contains(&n) => {}
            Some(n) => {
                return Err(ModelError::invalid(format!(
                    "Container Overrides contains container name '{n}', which is not in the task definition (containers: {}).",
                    names.join(", ")
                )));
            }
            None => return Err(ModelError::invalid("Each container override must name its container.")),
        }
    }
    Ok(())
}

/// The record of a task RunTask just accepted: PROVISIONING, desired
/// RUNNING, containers PENDING. Its node is chosen by the scheduler.
pub fn build(new: &NewTask<'_>) -> Result<TaskRecord, ModelError> {
    validate_overrides(new.definition, new.overrides)?;
    let (cpu, memory) = size(new.definition, new.overrides)?;
    let task_arn = new.account.task_arn(new.cluster_name, new.id);
    let family = new.definition.family.as_deref().unwrap_or_default();
    let containers = new
        .definition
        .container_definitions
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| Container {
            container_arn: Some(format!(
                "arn:aws:ecs:{}:{}:container/{}/{}/{:08x}-{}",
                new.account.region, new.account.account_id, new.cluster_name, new.id, i, &new.id[..8.min(new.id.len())]
            )),
            task_arn: Some(task_arn.clone()),
            name: c.name.clone(),
            image: c.image.clone(),
            last_status: Some("PENDING".into()),
            network_interfaces: Some(vec![]),
            cpu: Some(c.cpu.unwrap_or(0).to_string()),
            memory: c.memory.map(|m| m.to_string()),
            memory_reservation: c.memory_reservation.map(|m| m.to_string()),
            health_status: c.health_check.as_ref().map(|_| berth_wire::ecs::HealthStatus::Unknown),
            ..Container::default()
        })
        .collect();
    let overrides = new.overrides.cloned().unwrap_or_default();
    let task = Task {
        task_arn: Some(task_arn),
        cluster_arn: Some(new.account.cluster_arn(new.cluster_name)),
        task_definition_arn: new.definition.task_definition_arn.clone(),
        last_status: Some(TaskStatus::Provisioning.as_str().into()),
        desired_status: Some("RUNNING".into()),
        cpu: Some(cpu.to_string()),
        memory: Some(memory.to_string()),
        containers: Some(containers),
        created_at: Some(new.now),
        launch_type: Some(LaunchType::Fargate),
        capacity_provider_name: new.capacity_provider.map(str::to_owned),
        platform_version: Some("1.4.0".into()),
        platform_family: Some("Linux".into()),
        started_by: new.started_by.map(str::to_owned),
        group: Some(new.group.map_or_else(|| format!("family:{family}"), str::to_owned)),
        tags: Some(new.tags.clone()),
        overrides: Some(TaskOverride {
            container_overrides: Some(overrides.container_overrides.clone().unwrap_or_default()),
            inference_accelerator_overrides: Some(vec![]),
            ..overrides
        }),
        enable_execute_command: Some(new.enable_execute_command),
        attachments: Some(vec![]),
        health_status: Some(berth_wire::ecs::HealthStatus::Unknown),
        version: Some(1),
        ..Task::default()
    };
    Ok(TaskRecord { task, node_id: None, cpu, memory, network_configuration: None })
}

#[cfg(test)]
mod tests {
    use berth_wire::ecs::{ContainerDefinition, ContainerOverride};

    use super::*;

    fn account() -> Account {
        Account { region: "us-east-1".into(), account_id: "000000000000".into() }
    }

    fn definition() -> TaskDefinition {
        TaskDefinition {
            task_definition_arn: Some("arn:aws:ecs:us-east-1:000000000000:task-definition/web:3".into()),
            family: Some("web".into()),
            cpu: Some("512".into()),
            memory: Some("1024".into()),
            container_definitions: Some(vec![ContainerDefinition {
                name: Some("app".into()),
                image: Some("busybox".into()),
                memory: Some(256),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    fn new_task<'a>(acct: &'a Account, def: &'a TaskDefinition, o: Option<&'a TaskOverride>) -> NewTask<'a> {
        NewTask {
            account: acct,
            cluster_name: "prod",
            id: "0123456789abcdef0123456789abcdef",
            definition: def,
            overrides: o,
            started_by: Some("ci"),
            group: None,
            tags: vec![],
            enable_execute_command: false,
            capacity_provider: None,
            now: 1000.5,
        }
    }

    #[test]
    fn a_new_task_is_provisioning_with_pending_containers() {
        let (acct, def) = (account(), definition());
        let r = build(&new_task(&acct, &def, None)).unwrap();
        let t = &r.task;
        assert_eq!(t.task_arn.as_deref(), Some("arn:aws:ecs:us-east-1:000000000000:task/prod/0123456789abcdef0123456789abcdef"));
        assert_eq!(t.cluster_arn.as_deref(), Some("arn:aws:ecs:us-east-1:000000000000:cluster/prod"));
        assert_eq!((t.last_status.as_deref(), t.desired_status.as_deref()), (Some("PROVISIONING"), Some("RUNNING")));
        assert_eq!(t.group.as_deref(), Some("family:web"));
        assert_eq!(t.launch_type, Some(LaunchType::Fargate));
        let c = &t.containers.as_ref().unwrap()[0];
        assert_eq!((c.name.as_deref(), c.last_status.as_deref(), c.memory.as_deref()), (Some("app"), Some("PENDING"), Some("256")));
        assert_eq!((r.cpu, r.memory, r.node_id.as_deref()), (512, 1024, None));
    }

    #[test]
    fn overrides_resize_and_must_name_real_containers() {
        let (acct, def) = (account(), definition());
        let bigger = TaskOverride { cpu: Some("1 vCPU".into()), memory: Some("4 GB".into()), ..Default::default() };
        let r = build(&new_task(&acct, &def, Some(&bigger))).unwrap();
        assert_eq!((r.cpu, r.memory), (1024, 4096));
        assert_eq!(r.task.cpu.as_deref(), Some("1024"));

        let invalid = TaskOverride { cpu: Some("256".into()), memory: Some("4096".into()), ..Default::default() };
        assert_eq!(build(&new_task(&acct, &def, Some(&invalid))).unwrap_err().aws_type(), "ClientException");

        let ghost = TaskOverride {
            container_overrides: Some(vec![ContainerOverride { name: Some("ghost".into()), ..Default::default() }]),
            ..Default::default()
        };
        let err = build(&new_task(&acct, &def, Some(&ghost))).unwrap_err();
        assert_eq!(err.aws_type(), "InvalidParameterException");
        assert!(err.to_string().contains("ghost"), "{err}");
    }

    #[test]
    fn a_definition_without_size_needs_one_in_overrides() {
        let acct = account();
        let def = TaskDefinition { cpu: None, memory: None, ..definition() };
        assert!(build(&new_task(&acct, &def, None)).is_err());
        let o = TaskOverride { cpu: Some("256".into()), memory: Some("512".into()), ..Default::default() };
        assert_eq!(build(&new_task(&acct, &def, Some(&o))).unwrap().cpu, 256);
    }
}
