//! A task as Berth's domain knows it: typed statuses, parsed ARNs, its
//! interface's address as an `Ipv4Addr`. Only `berth-api` turns it into
//! the ECS wire `Task` that DescribeTasks shows.
//!
//! The task's `lastStatus` and `desiredStatus` are private: the lifecycle's
//! transition function ([`Task::apply`]) and [`Task::request_stop`] are the
//! only ways to change them, so no code path can skip a state or move one
//! backwards. Containers have their own small machine
//! ([`Container::advance`]).

use std::net::Ipv4Addr;

use berth_wire::ecs::TaskDefinition;
use serde::{Deserialize, Serialize};

use crate::arn::{ClusterArn, TaskArn, TaskDefinitionArn};
use crate::lifecycle::{
    self, ContainerStatus, DesiredStatus, InvalidContainerTransition, InvalidTransition, TaskEvent, TaskStatus,
};
use crate::{Account, ModelError, fargate};

pub mod stored;

/// RunTask starts at most this many tasks per call.
pub const MAX_COUNT: i32 = 10;

/// The platform version Fargate tasks report.
pub const PLATFORM_VERSION: &str = "1.4.0";

/// ECS's `stopCode`: why a task stopped, in ECS's categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StopCode {
    TaskFailedToStart,
    EssentialContainerExited,
    UserInitiated,
    ServiceSchedulerInitiated,
    SpotInterruption,
    TerminationNotice,
}

/// A task's or container's health, as ECS reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    Healthy,
    Unhealthy,
    #[default]
    Unknown,
}

/// Which runtime runs a task: each task records it, so that after a
/// restart the agent recovers it through the backend that started it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// OCI containers (runc) under the task's cgroup, in its netns.
    #[default]
    Sandbox,
    /// A guest kernel per task.
    Microvm,
}

/// A task's size in ECS units: CPU units (1024 per vCPU) and MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskSize {
    pub cpu: u32,
    pub memory: u32,
}

/// A resource tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// An environment variable of a container override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// RunTask's `overrides`, as far as Berth acts on them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default)]
    pub containers: Vec<ContainerOverride>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    /// `ephemeralStorage.sizeInGiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage_gib: Option<i32>,
}

/// One container's overrides.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOverride {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub environment: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i32>,
}

impl TaskOverrides {
    /// The overrides of one container, if any were given.
    pub fn container(&self, name: &str) -> Option<&ContainerOverride> {
        self.containers.iter().find(|c| c.name == name)
    }
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// A container port published on a host address (`networkBindings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortBinding {
    pub bind_ip: Ipv4Addr,
    pub container_port: u16,
    pub host_port: u16,
    pub protocol: Protocol,
}

/// A container of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    /// `arn:aws:ecs:…:container/CLUSTER/TASK/ID` (ECS shows it; nothing
    /// reads it back).
    pub arn: String,
    pub image: String,
    status: ContainerStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    /// `None` when the container has no health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatus>,
    #[serde(default)]
    pub bindings: Vec<PortBinding>,
    /// The container definition's `cpu` (units), `memory` and
    /// `memoryReservation` (MiB), as DescribeTasks shows them.
    pub cpu: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<u32>,
}

impl Container {
    pub fn status(&self) -> ContainerStatus {
        self.status
    }

    /// Moves the container's status forwards (or keeps it).
    pub fn advance(&mut self, to: ContainerStatus) -> Result<(), InvalidContainerTransition> {
        self.status = lifecycle::container_transition(self.status, to)?;
        Ok(())
    }
}

/// The task's awsvpc configuration as resolved at RunTask, and its ENI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Networking {
    /// The subnets it may take an address from, in the order given.
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
    pub eni: Eni,
}

/// The state of a task's ENI attachment, in ECS's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EniStatus {
    /// Chosen at RunTask; nothing exists on a node yet.
    Precreated,
    Attached,
    Deleted,
}

/// A task's elastic network interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Eni {
    /// The attachment's id (a UUID).
    pub attachment_id: String,
    pub status: EniStatus,
    pub subnet_id: String,
    /// Set once a node attached it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// Why a task stopped (or is stopping).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopReason {
    pub code: StopCode,
    pub reason: String,
}

/// The lifecycle's timestamps, seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskTimes {
    pub created_at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectivity_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_stopped_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<f64>,
}

/// A task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub arn: TaskArn,
    pub definition_arn: TaskDefinitionArn,
    status: TaskStatus,
    desired: DesiredStatus,
    pub size: TaskSize,
    pub containers: Vec<Container>,
    /// The node the scheduler placed it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider: Option<String>,
    pub platform_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    /// ECS's task group: `family:NAME`, `service:NAME` or RunTask's own.
    pub group: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub overrides: TaskOverrides,
    #[serde(default)]
    pub enable_execute_command: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Networking>,
    #[serde(default)]
    pub health: HealthStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopReason>,
    pub times: TaskTimes,
    #[serde(default)]
    pub runtime: RuntimeKind,
    /// How the task's guest runs, for runtimes with guests (`kvm`, `tcg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<String>,
    /// Its ephemeral storage in GiB ([`ephemeral_storage_gib`]); absent
    /// for tasks stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage_gib: Option<u32>,
}

/// Fargate's ephemeral storage when neither the definition nor RunTask
/// gives one.
pub const DEFAULT_EPHEMERAL_STORAGE_GIB: u32 = 20;

/// A task's ephemeral storage: RunTask's override, else the definition's
/// `ephemeralStorage.sizeInGiB`, else Fargate's 20 GiB.
pub fn ephemeral_storage_gib(definition: &TaskDefinition, overrides: &TaskOverrides) -> u32 {
    overrides
        .ephemeral_storage_gib
        .or_else(|| definition.ephemeral_storage.as_ref().map(|e| e.size_in_gi_b))
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_EPHEMERAL_STORAGE_GIB)
}

impl Task {
    pub fn status(&self) -> TaskStatus {
        self.status
    }

    pub fn desired(&self) -> DesiredStatus {
        self.desired
    }

    pub fn cluster_arn(&self) -> ClusterArn {
        self.arn.cluster_arn()
    }

    pub fn family(&self) -> &str {
        &self.definition_arn.family
    }

    /// The runtime's and the node's name for the task: its id.
    pub fn id(&self) -> &str {
        &self.arn.id
    }

    /// The address a node attached for the task, if any.
    pub fn ip(&self) -> Option<Ipv4Addr> {
        self.network.as_ref().and_then(|n| n.eni.ip)
    }

    /// Applies `event` through the lifecycle's transition function; the
    /// only way `lastStatus` changes.
    ///
    /// A task that ends by itself (it failed to start, or an essential
    /// container exited) is wanted STOPPED from then on, as ECS sets it.
    pub fn apply(&mut self, event: TaskEvent) -> Result<TaskStatus, InvalidTransition> {
        self.status = lifecycle::transition(self.status, event)?;
        self.settle_desired(event);
        Ok(self.status)
    }

    /// Applies several events in order, all or nothing.
    pub fn apply_all(&mut self, events: &[TaskEvent]) -> Result<TaskStatus, InvalidTransition> {
        let to = events.iter().try_fold(self.status, |at, e| lifecycle::transition(at, *e))?;
        self.status = to;
        for e in events {
            self.settle_desired(*e);
        }
        Ok(to)
    }

    /// What an event means beyond `lastStatus`: a task that ends (by
    /// itself, or by a Spot interruption) is wanted STOPPED; the Spot
    /// warning's stopCode TerminationNotice becomes SpotInterruption when
    /// the task has stopped, as Fargate reports it.
    fn settle_desired(&mut self, event: TaskEvent) {
        let ended = matches!(event, TaskEvent::StartFailed | TaskEvent::EssentialContainerExited);
        if event == TaskEvent::SpotInterrupted && self.desired == DesiredStatus::Running {
            self.stop.get_or_insert_with(|| StopReason {
                code: StopCode::TerminationNotice,
                reason: crate::capacity::SPOT_INTERRUPTED_REASON.to_owned(),
            });
            self.desired = DesiredStatus::Stopped;
        }
        if ended || self.status == TaskStatus::Stopped {
            self.desired = DesiredStatus::Stopped;
        }
        if self.status == TaskStatus::Stopped
            && let Some(stop) = self.stop.as_mut().filter(|s| s.code == StopCode::TerminationNotice)
        {
            stop.code = StopCode::SpotInterruption;
        }
    }

    /// Fargate Spot takes the task's capacity back (the two-minute
    /// warning): through the transition function, desiredStatus STOPPED
    /// with lastStatus unchanged, stopCode TerminationNotice. `false` (and
    /// nothing changes) for a task that is not serving or already wanted
    /// stopped.
    pub fn interrupt(&mut self, now: f64) -> bool {
        if self.desired == DesiredStatus::Stopped {
            return false;
        }
        if self.apply(TaskEvent::SpotInterrupted).is_err() {
            return false;
        }
        self.times.stopping_at = Some(now);
        true
    }

    /// Someone wants the task stopped (StopTask, a service). `false` when
    /// it already was wanted stopped or has stopped, and nothing changes
    /// then: the first reason and times stay.
    pub fn request_stop(&mut self, code: StopCode, reason: &str, now: f64) -> bool {
        if self.desired == DesiredStatus::Stopped || self.status == TaskStatus::Stopped {
            return false;
        }
        self.desired = DesiredStatus::Stopped;
        self.stop.get_or_insert_with(|| StopReason { code, reason: reason.to_owned() });
        self.times.stopping_at = Some(now);
        true
    }

    /// Records why the task is ending, unless a reason was given already
    /// (a StopTask's reason wins over the exit it caused).
    pub fn set_stop_reason(&mut self, code: StopCode, reason: &str) {
        self.stop.get_or_insert_with(|| StopReason { code, reason: reason.to_owned() });
    }

    pub fn container_mut(&mut self, name: &str) -> Option<&mut Container> {
        self.containers.iter_mut().find(|c| c.name == name)
    }

    /// The node attached the task's ENI with this address.
    pub fn attach(&mut self, subnet_id: &str, ip: Ipv4Addr, mac: &str) {
        if let Some(net) = &mut self.network {
            net.eni.status = EniStatus::Attached;
            net.eni.subnet_id = subnet_id.to_owned();
            net.eni.ip = Some(ip);
            net.eni.mac = Some(mac.to_owned());
        }
    }

    /// The ENI is gone (DEPROVISIONING released it).
    pub fn detach(&mut self) {
        if let Some(net) = &mut self.network {
            net.eni.status = EniStatus::Deleted;
        }
    }

    /// Every container is STOPPED, with `reason` where none was recorded.
    pub fn stop_all_containers(&mut self, reason: Option<&str>) {
        for c in &mut self.containers {
            c.status = ContainerStatus::Stopped;
            if let Some(r) = reason {
                c.reason = Some(r.to_owned());
            }
        }
    }
}

/// Everything a new task is made from, already resolved by the caller.
#[derive(Debug, Clone)]
pub struct NewTask<'a> {
    pub account: &'a Account,
    pub cluster_name: &'a str,
    /// 32 lowercase hex digits, as ECS task ids are.
    pub id: &'a str,
    pub definition: &'a TaskDefinition,
    pub overrides: TaskOverrides,
    pub started_by: Option<&'a str>,
    pub group: Option<&'a str>,
    pub tags: Vec<Tag>,
    pub enable_execute_command: bool,
    pub capacity_provider: Option<&'a str>,
    /// Resolved awsvpc configuration and the attachment id chosen for it.
    pub network: Option<(crate::network::TaskNetwork, String)>,
    /// Seconds since the epoch.
    pub now: f64,
}

impl<'a> NewTask<'a> {
    /// A task of `definition` with nothing else asked for: no overrides,
    /// tags or network, started by no one.
    pub fn plain(account: &'a Account, cluster_name: &'a str, id: &'a str, definition: &'a TaskDefinition, now: f64) -> Self {
        Self {
            account,
            cluster_name,
            id,
            definition,
            overrides: TaskOverrides::default(),
            started_by: None,
            group: None,
            tags: Vec::new(),
            enable_execute_command: false,
            capacity_provider: None,
            network: None,
            now,
        }
    }
}

/// The task's size in CPU units and MiB: the overrides' if given (a valid
/// Fargate combination), else the task definition's.
pub fn size(definition: &TaskDefinition, overrides: &TaskOverrides) -> Result<TaskSize, ModelError> {
    let cpu = overrides.cpu.as_deref().or(definition.cpu.as_deref());
    let memory = overrides.memory.as_deref().or(definition.memory.as_deref());
    let (Some(cpu), Some(memory)) = (cpu, memory) else {
        return Err(ModelError::client(
            "The task needs task-level cpu and memory, in its task definition or in overrides.",
        ));
    };
    let (cpu, memory) = (fargate::parse_cpu(cpu)?, fargate::parse_memory(memory)?);
    fargate::check_size(cpu, memory)?;
    Ok(TaskSize { cpu, memory })
}

/// Checks overrides against the definition: every container override
/// names a container of it.
pub fn validate_overrides(definition: &TaskDefinition, overrides: &TaskOverrides) -> Result<(), ModelError> {
    let names: Vec<&str> =
        definition.container_definitions.iter().flatten().filter_map(|c| c.name.as_deref()).collect();
    for o in &overrides.containers {
        if o.name.is_empty() {
            return Err(ModelError::invalid("Each container override must name its container."));
        }
        if !names.contains(&o.name.as_str()) {
            return Err(ModelError::invalid(format!(
                "Container Overrides contains container name '{}', which is not in the task definition (containers: {}).",
                o.name,
                names.join(", ")
            )));
        }
    }
    Ok(())
}

/// The task RunTask just accepted: PROVISIONING, desired RUNNING,
/// containers PENDING. Its node is chosen by the scheduler.
pub fn build(new: NewTask<'_>) -> Result<Task, ModelError> {
    validate_overrides(new.definition, &new.overrides)?;
    let size = size(new.definition, &new.overrides)?;
    let storage_gib = ephemeral_storage_gib(new.definition, &new.overrides);
    let arn = new.account.task(new.cluster_name, new.id);
    let definition_arn = new
        .definition
        .task_definition_arn
        .as_deref()
        .and_then(|a| a.parse::<TaskDefinitionArn>().ok())
        .ok_or_else(|| ModelError::client("The task definition has no valid ARN."))?;
    let containers = new
        .definition
        .container_definitions
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| Container {
            arn: format!(
                "arn:aws:ecs:{}:{}:container/{}/{}/{:08x}-{}",
                new.account.region, new.account.account_id, new.cluster_name, new.id, i, &new.id[..8.min(new.id.len())]
            ),
            name: c.name.clone().unwrap_or_default(),
            image: c.image.clone().unwrap_or_default(),
            status: ContainerStatus::Pending,
            exit_code: None,
            reason: None,
            runtime_id: None,
            health: c.health_check.as_ref().map(|_| HealthStatus::Unknown),
            bindings: Vec::new(),
            cpu: u32::try_from(c.cpu.unwrap_or(0)).unwrap_or(0),
            memory: c.memory.and_then(|m| u32::try_from(m).ok()),
            memory_reservation: c.memory_reservation.and_then(|m| u32::try_from(m).ok()),
        })
        .collect();
    let network = new.network.map(|(net, attachment_id)| Networking {
        eni: Eni {
            attachment_id,
            status: EniStatus::Precreated,
            subnet_id: net.subnets.first().cloned().unwrap_or_default(),
            ip: None,
            mac: None,
        },
        subnets: net.subnets,
        security_groups: net.security_groups,
        assign_public_ip: net.assign_public_ip,
    });
    Ok(Task {
        arn,
        group: new.group.map_or_else(|| format!("family:{}", definition_arn.family), str::to_owned),
        definition_arn,
        status: TaskStatus::Provisioning,
        desired: DesiredStatus::Running,
        size,
        containers,
        node_id: None,
        availability_zone: None,
        capacity_provider: new.capacity_provider.map(str::to_owned),
        platform_version: PLATFORM_VERSION.to_owned(),
        started_by: new.started_by.map(str::to_owned),
        tags: new.tags,
        overrides: new.overrides,
        enable_execute_command: new.enable_execute_command,
        network,
        health: HealthStatus::Unknown,
        stop: None,
        times: TaskTimes { created_at: new.now, ..TaskTimes::default() },
        runtime: RuntimeKind::Sandbox,
        accelerator: None,
        ephemeral_storage_gib: Some(storage_gib),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use berth_wire::ecs::ContainerDefinition;

    use super::*;

    pub(crate) fn account() -> Account {
        Account { region: "us-east-1".into(), account_id: "000000000000".into() }
    }

    pub(crate) fn definition() -> TaskDefinition {
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

    pub(crate) fn new_task<'a>(acct: &'a Account, def: &'a TaskDefinition, o: TaskOverrides) -> NewTask<'a> {
        NewTask {
            overrides: o,
            started_by: Some("ci"),
            ..NewTask::plain(acct, "prod", "0123456789abcdef0123456789abcdef", def, 1000.5)
        }
    }

    #[test]
    fn a_new_task_is_provisioning_with_pending_containers() {
        let (acct, def) = (account(), definition());
        let t = build(new_task(&acct, &def, TaskOverrides::default())).unwrap();
        assert_eq!(t.arn.to_string(), "arn:aws:ecs:us-east-1:000000000000:task/prod/0123456789abcdef0123456789abcdef");
        assert_eq!(t.cluster_arn().to_string(), "arn:aws:ecs:us-east-1:000000000000:cluster/prod");
        assert_eq!((t.status(), t.desired()), (TaskStatus::Provisioning, DesiredStatus::Running));
        assert_eq!(t.group, "family:web");
        assert_eq!((t.definition_arn.family.as_str(), t.definition_arn.revision), ("web", 3));
        let c = &t.containers[0];
        assert_eq!((c.name.as_str(), c.status(), c.memory), ("app", ContainerStatus::Pending, Some(256)));
        assert_eq!((t.size, t.node_id.as_deref()), (TaskSize { cpu: 512, memory: 1024 }, None));
    }

    #[test]
    fn overrides_resize_and_must_name_real_containers() {
        let (acct, def) = (account(), definition());
        let bigger = TaskOverrides { cpu: Some("1 vCPU".into()), memory: Some("4 GB".into()), ..Default::default() };
        assert_eq!(build(new_task(&acct, &def, bigger)).unwrap().size, TaskSize { cpu: 1024, memory: 4096 });

        let invalid = TaskOverrides { cpu: Some("256".into()), memory: Some("4096".into()), ..Default::default() };
        assert_eq!(build(new_task(&acct, &def, invalid)).unwrap_err().aws_type(), "ClientException");

        let ghost = TaskOverrides {
            containers: vec![ContainerOverride { name: "ghost".into(), ..Default::default() }],
            ..Default::default()
        };
        let err = build(new_task(&acct, &def, ghost)).unwrap_err();
        assert_eq!(err.aws_type(), "InvalidParameterException");
        assert!(err.to_string().contains("ghost"), "{err}");
    }

    #[test]
    fn a_definition_without_size_needs_one_in_overrides() {
        let acct = account();
        let def = TaskDefinition { cpu: None, memory: None, ..definition() };
        assert!(build(new_task(&acct, &def, TaskOverrides::default())).is_err());
        let o = TaskOverrides { cpu: Some("256".into()), memory: Some("512".into()), ..Default::default() };
        assert_eq!(build(new_task(&acct, &def, o)).unwrap().size.cpu, 256);
    }

    #[test]
    fn status_changes_only_through_the_lifecycle() {
        let (acct, def) = (account(), definition());
        let mut t = build(new_task(&acct, &def, TaskOverrides::default())).unwrap();
        assert!(t.apply(TaskEvent::Activated).is_err(), "PROVISIONING cannot skip to RUNNING");
        assert_eq!(t.status(), TaskStatus::Provisioning, "a refused event changes nothing");
        let all = [TaskEvent::Provisioned, TaskEvent::ContainersStarted, TaskEvent::Activated];
        assert_eq!(t.apply_all(&all).unwrap(), TaskStatus::Running);
        // All or nothing: the second event is invalid from RUNNING.
        assert!(t.apply_all(&[TaskEvent::StopRequested, TaskEvent::Provisioned]).is_err());
        assert_eq!(t.status(), TaskStatus::Running);
    }

    #[test]
    fn a_stop_request_keeps_its_first_reason() {
        let (acct, def) = (account(), definition());
        let mut t = build(new_task(&acct, &def, TaskOverrides::default())).unwrap();
        assert!(t.request_stop(StopCode::UserInitiated, "bye", 5.0));
        assert!(!t.request_stop(StopCode::ServiceSchedulerInitiated, "again", 6.0));
        t.set_stop_reason(StopCode::EssentialContainerExited, "exit");
        let stop = t.stop.as_ref().unwrap();
        assert_eq!((stop.code, stop.reason.as_str(), t.times.stopping_at), (StopCode::UserInitiated, "bye", Some(5.0)));
        assert_eq!(t.desired(), DesiredStatus::Stopped);
    }

    #[test]
    fn a_task_that_ends_by_itself_is_wanted_stopped_and_a_stop_after_changes_nothing() {
        let (acct, def) = (account(), definition());
        let mut t = build(new_task(&acct, &def, TaskOverrides::default())).unwrap();
        t.apply_all(&[TaskEvent::Provisioned, TaskEvent::ContainersStarted, TaskEvent::Activated]).unwrap();
        assert_eq!(t.desired(), DesiredStatus::Running);
        t.apply(TaskEvent::EssentialContainerExited).unwrap();
        assert_eq!(t.desired(), DesiredStatus::Stopped, "ECS sets desiredStatus STOPPED when a task stops itself");
        t.set_stop_reason(StopCode::EssentialContainerExited, "Essential container in task exited");
        t.apply_all(&[TaskEvent::Deactivated, TaskEvent::ContainersStopped, TaskEvent::Deprovisioned]).unwrap();
        let before = t.clone();
        assert!(!t.request_stop(StopCode::UserInitiated, "too late", 99.0));
        assert_eq!(t, before, "StopTask on a STOPPED task changes nothing");

        let mut failed = build(new_task(&acct, &def, TaskOverrides::default())).unwrap();
        failed.apply(TaskEvent::StartFailed).unwrap();
        assert_eq!(failed.desired(), DesiredStatus::Stopped);
    }

    #[test]
    fn a_spot_interruption_warns_then_ends_as_spot_interruption() {
        let (acct, def) = (account(), definition());
        let mut t = build(new_task(&acct, &def, TaskOverrides::default())).unwrap();
        assert!(!t.interrupt(1.0), "a task that does not serve yet is not interrupted");
        t.apply_all(&[TaskEvent::Provisioned, TaskEvent::ContainersStarted, TaskEvent::Activated]).unwrap();
        assert!(t.interrupt(7.0));
        assert_eq!((t.status(), t.desired()), (TaskStatus::Running, DesiredStatus::Stopped));
        let stop = t.stop.clone().unwrap();
        assert_eq!((stop.code, stop.reason.as_str()), (StopCode::TerminationNotice, "Your Spot Task was interrupted."));
        assert_eq!(t.times.stopping_at, Some(7.0));
        assert!(!t.interrupt(8.0), "a second warning changes nothing");
        // The exit its SIGTERM causes does not replace the reason.
        t.apply(TaskEvent::StopRequested).unwrap();
        t.apply(TaskEvent::EssentialContainerExited).unwrap();
        t.set_stop_reason(StopCode::EssentialContainerExited, "Essential container in task exited");
        t.apply_all(&[TaskEvent::Deactivated, TaskEvent::ContainersStopped]).unwrap();
        assert_eq!(t.stop.as_ref().unwrap().code, StopCode::TerminationNotice, "still the warning until STOPPED");
        t.apply(TaskEvent::Deprovisioned).unwrap();
        let stop = t.stop.as_ref().unwrap();
        assert_eq!((stop.code, stop.reason.as_str()), (StopCode::SpotInterruption, "Your Spot Task was interrupted."));
    }

    #[test]
    fn the_eni_gets_its_address_and_goes() {
        let (acct, def) = (account(), definition());
        let net = crate::network::TaskNetwork {
            subnets: vec!["subnet-a".into(), "subnet-b".into()],
            security_groups: vec!["sg-1".into()],
            assign_public_ip: false,
        };
        let mut new = new_task(&acct, &def, TaskOverrides::default());
        new.network = Some((net, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into()));
        let mut t = build(new).unwrap();
        assert_eq!(t.network.as_ref().unwrap().eni.status, EniStatus::Precreated);
        assert_eq!(t.ip(), None);
        t.attach("subnet-b", Ipv4Addr::new(10, 89, 0, 7), "02:be:0a:59:00:07");
        let eni = &t.network.as_ref().unwrap().eni;
        assert_eq!((eni.status, eni.subnet_id.as_str()), (EniStatus::Attached, "subnet-b"));
        assert_eq!(t.ip(), Some(Ipv4Addr::new(10, 89, 0, 7)));
        t.detach();
        assert_eq!(t.network.as_ref().unwrap().eni.status, EniStatus::Deleted);
    }
}
