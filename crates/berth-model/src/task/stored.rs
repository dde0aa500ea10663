//! The stored form of a task, and the formats earlier releases wrote.
//!
//! A stored task is its typed [`Task`] as JSON with a `formatVersion`
//! beside it. Format 0 (no `formatVersion`) is what Berth wrote before the
//! domain was typed: the ECS wire `Task` under `task`, with `node_id`,
//! `cpu`, `memory` and `network_configuration` beside it. It is read here
//! through structs of its own, frozen as that release wrote them, so that
//! a change to botocore's model (the wire crate) can never make an old row
//! unreadable. Rows are rewritten in the current format the next time the
//! task is written.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::{
    Container, ContainerOverride, EnvVar, Eni, EniStatus, HealthStatus, Networking, PortBinding, Protocol,
    RuntimeKind, StopCode, StopReason, Tag, Task, TaskOverrides, TaskSize, TaskTimes,
};
use crate::arn::{TaskArn, TaskDefinitionArn};
use crate::lifecycle::{ContainerStatus, DesiredStatus, TaskStatus};

/// The format this code writes.
pub const FORMAT_VERSION: u32 = 1;

/// Why a stored task could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StoredTaskError {
    #[error("stored task is not valid")]
    Json(#[from] serde_json::Error),
    #[error("stored task has format {0}, newer than this Berth knows ({FORMAT_VERSION}): upgrade Berth")]
    TooNew(u32),
    #[error("stored task (format 0) lacks {0}")]
    Missing(&'static str),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    format_version: u32,
    #[serde(flatten)]
    task: &'a Task,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Version {
    #[serde(default)]
    format_version: u32,
}

/// The task as stored: JSON in the current format.
pub fn encode(task: &Task) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Envelope { format_version: FORMAT_VERSION, task })
}

/// Reads a stored task of any format this code knows.
pub fn decode(json: &str) -> Result<Task, StoredTaskError> {
    let Version { format_version } = serde_json::from_str(json)?;
    match format_version {
        0 => from_v0(serde_json::from_str(json)?),
        FORMAT_VERSION => Ok(serde_json::from_str(json)?),
        newer => Err(StoredTaskError::TooNew(newer)),
    }
}

// --- format 0: the wire `Task` and its placement, as written before 2026-12-03 ---

#[derive(Deserialize)]
struct V0Record {
    task: V0Task,
    #[serde(default)]
    node_id: Option<String>,
    #[serde(default)]
    cpu: u32,
    #[serde(default)]
    memory: u32,
    #[serde(default)]
    network_configuration: Option<V0NetworkConfiguration>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V0NetworkConfiguration {
    awsvpc_configuration: Option<V0AwsVpc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V0AwsVpc {
    #[serde(default)]
    subnets: Vec<String>,
    #[serde(default)]
    security_groups: Option<Vec<String>>,
    #[serde(default)]
    assign_public_ip: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct V0Task {
    task_arn: Option<String>,
    task_definition_arn: Option<String>,
    last_status: Option<String>,
    desired_status: Option<String>,
    containers: Option<Vec<V0Container>>,
    availability_zone: Option<String>,
    capacity_provider_name: Option<String>,
    platform_version: Option<String>,
    started_by: Option<String>,
    group: Option<String>,
    tags: Option<Vec<V0Tag>>,
    overrides: Option<V0Overrides>,
    enable_execute_command: Option<bool>,
    attachments: Option<Vec<V0Attachment>>,
    health_status: Option<HealthStatus>,
    stop_code: Option<StopCode>,
    stopped_reason: Option<String>,
    created_at: Option<f64>,
    connectivity_at: Option<f64>,
    pull_started_at: Option<f64>,
    pull_stopped_at: Option<f64>,
    started_at: Option<f64>,
    stopping_at: Option<f64>,
    execution_stopped_at: Option<f64>,
    stopped_at: Option<f64>,
    ephemeral_storage: Option<V0EphemeralStorage>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct V0Container {
    container_arn: Option<String>,
    name: Option<String>,
    image: Option<String>,
    last_status: Option<String>,
    exit_code: Option<i32>,
    reason: Option<String>,
    runtime_id: Option<String>,
    health_status: Option<HealthStatus>,
    network_bindings: Option<Vec<V0Binding>>,
    cpu: Option<String>,
    memory: Option<String>,
    memory_reservation: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct V0Binding {
    #[serde(rename = "bindIP")]
    bind_ip: Option<String>,
    container_port: Option<i32>,
    host_port: Option<i32>,
    protocol: Option<Protocol>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct V0Tag {
    key: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct V0Overrides {
    container_overrides: Option<Vec<V0ContainerOverride>>,
    cpu: Option<String>,
    memory: Option<String>,
    task_role_arn: Option<String>,
    execution_role_arn: Option<String>,
    ephemeral_storage: Option<V0EphemeralStorage>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct V0EphemeralStorage {
    #[serde(rename = "sizeInGiB")]
    size_in_gib: Option<i32>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct V0ContainerOverride {
    name: Option<String>,
    command: Option<Vec<String>>,
    environment: Option<Vec<V0KeyValue>>,
    cpu: Option<i32>,
    memory: Option<i32>,
    memory_reservation: Option<i32>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct V0KeyValue {
    name: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct V0Attachment {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<String>,
    details: Option<Vec<V0KeyValue>>,
}

impl V0Attachment {
    fn detail(&self, name: &str) -> Option<&str> {
        self.details.iter().flatten().find(|d| d.name.as_deref() == Some(name))?.value.as_deref()
    }
}

fn parse_status(s: Option<&str>) -> TaskStatus {
    s.and_then(TaskStatus::parse).unwrap_or(TaskStatus::Provisioning)
}

fn container_status(s: Option<&str>) -> ContainerStatus {
    match s {
        Some("RUNNING") => ContainerStatus::Running,
        Some("STOPPED") => ContainerStatus::Stopped,
        _ => ContainerStatus::Pending,
    }
}

fn number<T: std::str::FromStr>(s: Option<&str>) -> Option<T> {
    s.and_then(|v| v.parse().ok())
}

fn from_v0(r: V0Record) -> Result<Task, StoredTaskError> {
    let t = r.task;
    let arn: TaskArn =
        t.task_arn.as_deref().and_then(|a| a.parse().ok()).ok_or(StoredTaskError::Missing("a valid taskArn"))?;
    let definition_arn: TaskDefinitionArn = t
        .task_definition_arn
        .as_deref()
        .and_then(|a| a.parse().ok())
        .ok_or(StoredTaskError::Missing("a valid taskDefinitionArn"))?;
    let eni = t.attachments.iter().flatten().find(|a| a.kind.as_deref() == Some("ElasticNetworkInterface"));
    let network = r.network_configuration.and_then(|n| n.awsvpc_configuration).map(|a| {
        let status = match eni.and_then(|e| e.status.as_deref()) {
            Some("ATTACHED") => EniStatus::Attached,
            Some("DELETED") => EniStatus::Deleted,
            _ => EniStatus::Precreated,
        };
        Networking {
            eni: Eni {
                attachment_id: eni.and_then(|e| e.id.clone()).unwrap_or_default(),
                status,
                subnet_id: eni
                    .and_then(|e| e.detail("subnetId"))
                    .map(str::to_owned)
                    .or_else(|| a.subnets.first().cloned())
                    .unwrap_or_default(),
                ip: eni.and_then(|e| e.detail("privateIPv4Address")).and_then(|ip| ip.parse::<Ipv4Addr>().ok()),
                mac: eni.and_then(|e| e.detail("macAddress")).map(str::to_owned),
            },
            subnets: a.subnets,
            security_groups: a.security_groups.unwrap_or_default(),
            assign_public_ip: a.assign_public_ip.as_deref() == Some("ENABLED"),
        }
    });
    let containers = t
        .containers
        .unwrap_or_default()
        .into_iter()
        .map(|c| Container {
            name: c.name.unwrap_or_default(),
            arn: c.container_arn.unwrap_or_default(),
            image: c.image.unwrap_or_default(),
            status: container_status(c.last_status.as_deref()),
            exit_code: c.exit_code,
            reason: c.reason,
            runtime_id: c.runtime_id,
            health: c.health_status,
            bindings: c
                .network_bindings
                .unwrap_or_default()
                .into_iter()
                .filter_map(|b| {
                    Some(PortBinding {
                        bind_ip: b.bind_ip?.parse().ok()?,
                        container_port: u16::try_from(b.container_port?).ok()?,
                        host_port: u16::try_from(b.host_port?).ok()?,
                        protocol: b.protocol.unwrap_or_default(),
                    })
                })
                .collect(),
            cpu: number(c.cpu.as_deref()).unwrap_or(0),
            memory: number(c.memory.as_deref()),
            memory_reservation: number(c.memory_reservation.as_deref()),
        })
        .collect();
    let overrides = t.overrides.map_or_else(TaskOverrides::default, |o| TaskOverrides {
        cpu: o.cpu,
        memory: o.memory,
        containers: o
            .container_overrides
            .unwrap_or_default()
            .into_iter()
            .map(|c| ContainerOverride {
                name: c.name.unwrap_or_default(),
                command: c.command,
                environment: c
                    .environment
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|kv| Some(EnvVar { name: kv.name?, value: kv.value.unwrap_or_default() }))
                    .collect(),
                cpu: c.cpu,
                memory: c.memory,
                memory_reservation: c.memory_reservation,
            })
            .collect(),
        task_role_arn: o.task_role_arn,
        execution_role_arn: o.execution_role_arn,
        ephemeral_storage_gib: o.ephemeral_storage.and_then(|e| e.size_in_gib),
    });
    let stop = t.stop_code.map(|code| StopReason { code, reason: t.stopped_reason.clone().unwrap_or_default() });
    Ok(Task {
        group: t.group.unwrap_or_else(|| format!("family:{}", definition_arn.family)),
        arn,
        definition_arn,
        status: parse_status(t.last_status.as_deref()),
        desired: t.desired_status.as_deref().and_then(DesiredStatus::parse).unwrap_or_default(),
        size: TaskSize { cpu: r.cpu, memory: r.memory },
        containers,
        node_id: r.node_id,
        availability_zone: t.availability_zone,
        capacity_provider: t.capacity_provider_name,
        platform_version: t.platform_version.unwrap_or_else(|| super::PLATFORM_VERSION.to_owned()),
        started_by: t.started_by,
        tags: t
            .tags
            .unwrap_or_default()
            .into_iter()
            .filter_map(|tag| Some(Tag { key: tag.key?, value: tag.value.unwrap_or_default() }))
            .collect(),
        overrides,
        enable_execute_command: t.enable_execute_command.unwrap_or(false),
        network,
        health: t.health_status.unwrap_or_default(),
        stop,
        times: TaskTimes {
            created_at: t.created_at.unwrap_or(0.0),
            connectivity_at: t.connectivity_at,
            pull_started_at: t.pull_started_at,
            pull_stopped_at: t.pull_stopped_at,
            started_at: t.started_at,
            stopping_at: t.stopping_at,
            execution_stopped_at: t.execution_stopped_at,
            stopped_at: t.stopped_at,
        },
        runtime: RuntimeKind::Sandbox,
        accelerator: None,
        ephemeral_storage_gib: t.ephemeral_storage.and_then(|e| e.size_in_gib).and_then(|g| u32::try_from(g).ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::tests::{account, definition, new_task};

    #[test]
    fn the_current_format_round_trips() {
        let (acct, def) = (account(), definition());
        let mut t = crate::task::build(new_task(&acct, &def, TaskOverrides::default())).unwrap();
        t.apply(crate::lifecycle::TaskEvent::Provisioned).unwrap();
        let json = encode(&t).unwrap();
        assert!(json.contains("\"formatVersion\":1"), "{json}");
        assert!(json.contains("\"status\":\"PENDING\""), "{json}");
        assert_eq!(decode(&json).unwrap(), t);
    }

    #[test]
    fn a_newer_format_is_refused_not_misread() {
        let (acct, def) = (account(), definition());
        let t = crate::task::build(new_task(&acct, &def, TaskOverrides::default())).unwrap();
        let json = encode(&t).unwrap().replace("\"formatVersion\":1", "\"formatVersion\":9");
        assert!(matches!(decode(&json), Err(StoredTaskError::TooNew(9))));
    }

    /// Rows written by the release before the typed domain (captured from
    /// a real `berth up`: a RUNNING awsvpc task with a published port, and
    /// a STOPPED one) still load, with everything the agent acts on.
    #[test]
    fn rows_of_format_0_still_load() {
        let running = decode(include_str!("../../tests/fixtures/task-v0-running.json")).unwrap();
        assert_eq!(running.status(), TaskStatus::Running);
        assert_eq!(running.desired(), DesiredStatus::Running);
        assert_eq!(running.arn.cluster, "default");
        assert_eq!(running.arn.id.len(), 32);
        assert_eq!(running.definition_arn.family, "web");
        assert!(running.node_id.is_some());
        assert_eq!(running.size, TaskSize { cpu: 256, memory: 512 });
        let net = running.network.as_ref().unwrap();
        assert_eq!(net.eni.status, EniStatus::Attached);
        assert!(net.eni.ip.is_some());
        assert!(net.eni.mac.is_some());
        assert!(!net.security_groups.is_empty());
        let c = &running.containers[0];
        assert_eq!(c.status(), ContainerStatus::Running);
        assert_eq!(c.bindings.len(), 1, "the published port");
        assert_eq!((c.bindings[0].container_port, c.bindings[0].protocol), (8080, Protocol::Tcp));
        assert_eq!(running.overrides.container("web").unwrap().environment[0].name, "A");
        assert_eq!(running.tags, [Tag { key: "k".into(), value: "v".into() }]);
        assert_eq!(running.started_by.as_deref(), Some("fixture"));
        assert!(net.assign_public_ip);
        assert!(running.times.started_at.is_some());

        let stopped = decode(include_str!("../../tests/fixtures/task-v0-stopped.json")).unwrap();
        assert_eq!(stopped.status(), TaskStatus::Stopped);
        assert_eq!(stopped.desired(), DesiredStatus::Running, "ECS leaves desiredStatus as it was");
        assert_eq!(stopped.network.as_ref().unwrap().eni.status, EniStatus::Deleted);
        let stop = stopped.stop.as_ref().unwrap();
        assert_eq!(stop.code, StopCode::EssentialContainerExited);
        assert_eq!(stopped.containers[0].exit_code, Some(3));
        assert_eq!(stopped.containers[0].status(), ContainerStatus::Stopped);
        // Read once, the row is written back in the current format.
        assert_eq!(decode(&encode(&stopped).unwrap()).unwrap(), stopped);
    }
}
