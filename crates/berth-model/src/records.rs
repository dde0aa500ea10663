//! Stored records whose wire shape lacks something ECS keeps beside it.

use berth_wire::ecs::{Tag, TaskDefinition};
use serde::{Deserialize, Serialize};

/// A registered task definition and its tags. ECS returns the tags of a
/// task definition apart from it (`DescribeTaskDefinition.tags`), so the
/// wire `TaskDefinition` has no member for them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskDefinitionRecord {
    pub definition: TaskDefinition,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A task as Berth keeps it: the ECS `Task` that DescribeTasks returns,
/// plus where it was placed and what it reserved there.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task: berth_wire::ecs::Task,
    /// The node the scheduler placed it on.
    pub node_id: Option<String>,
    /// CPU units reserved on the node (the task's size).
    pub cpu: u32,
    /// Memory in MiB reserved on the node.
    pub memory: u32,
    /// RunTask's `networkConfiguration` (ECS keeps it; the wire `Task`
    /// shows it as the ENI attachment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<berth_wire::ecs::NetworkConfiguration>,
}

/// A node: a host whose agent runs tasks, and the capacity it offers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: String,
    /// The Availability Zone its tasks report.
    pub zone: String,
    /// CPU units offered to tasks (1024 per core, less the host's reserve).
    pub cpu: u32,
    /// Memory in MiB offered to tasks (less the host's reserve).
    pub memory: u32,
    /// `ACTIVE` (takes tasks) or `DRAINING` (takes none).
    pub status: String,
    /// Last heartbeat, seconds since the epoch.
    pub heartbeat_at: i64,
}

impl NodeRecord {
    pub const ACTIVE: &'static str = "ACTIVE";
    pub const DRAINING: &'static str = "DRAINING";
}
