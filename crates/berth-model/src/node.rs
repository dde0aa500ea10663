//! A node: a host whose agent runs tasks, and the capacity it offers.

use serde::{Deserialize, Serialize};

/// Whether a node takes new tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NodeStatus {
    /// Takes tasks.
    #[default]
    Active,
    /// Takes none; its tasks run on until they stop.
    Draining,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Draining => "DRAINING",
        }
    }
}

/// A node and what it offers. (Stored as JSON with these member names
/// since the first release that had nodes.)
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    /// The Availability Zone its tasks report.
    pub zone: String,
    /// CPU units offered to tasks (1024 per core, less the host's reserve).
    pub cpu: u32,
    /// Memory in MiB offered to tasks (less the host's reserve).
    pub memory: u32,
    pub status: NodeStatus,
    /// The part of `cpu`/`memory` offered as FARGATE_SPOT capacity
    /// (`berth up --spot-share`): Spot tasks are placed within it,
    /// on-demand tasks in the rest.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub spot_cpu: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub spot_memory: u32,
    /// Last heartbeat, seconds since the epoch.
    pub heartbeat_at: i64,
}

/// A node whose agent has not heartbeated for this long takes no tasks
/// (agents heartbeat every 10 s).
pub const STALE_AFTER_SECS: i64 = 60;

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// The Spot part of a capacity: `share` (0 to 1) of it, rounded down.
pub fn spot_part(total: u32, share: f64) -> u32 {
    (f64::from(total) * share.clamp(0.0, 1.0)).floor() as u32
}

impl Node {
    /// Whether the scheduler may place tasks on it at `now` (seconds).
    pub fn schedulable(&self, now: i64) -> bool {
        self.status == NodeStatus::Active && now - self.heartbeat_at <= STALE_AFTER_SECS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_earlier_releases_load() {
        // Written by the release before the typed domain.
        let node: Node = serde_json::from_str(include_str!("../tests/fixtures/node-v0.json")).unwrap();
        assert_eq!(node.status, NodeStatus::Active);
        let beat = node.heartbeat_at;
        assert!(node.schedulable(beat + 60));
        assert!(!node.schedulable(beat + 61), "stale after a minute without heartbeat");
        let draining = Node { status: NodeStatus::Draining, ..node };
        assert!(!draining.schedulable(beat));
    }
}
